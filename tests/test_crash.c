/*
** test_crash.c: the daemon killed with SIGKILL in the middle of delivering
** 20,000 messages, three times, and started again each time. Judged from
** the mock gateway's request log and the outbox: no message is lost, and a
** message the gateway took twice was in doubt at a kill (claimed, its
** outcome not yet committed) and went again with the same key and text.
*/
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define N 20000

typedef struct fixture {
  char *dir;    /* data directory */
  tu_gateway g; /* the mock gateway */
  pid_t pid;    /* the daemon, while it runs */
  long scanned; /* bytes of the gateway's log counted so far */
  long lines;   /* ... and the lines in them */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_bulk_datadir();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->pid > 0) {
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
  }
  tu_gateway_stop(&f->g);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Requests in the gateway's log so far (read on from where we stopped). */
static long gateway_lines(fixture *f) {
  FILE *in = fopen(f->g.log, "rb");
  if (!in) return 0;
  fseek(in, f->scanned, SEEK_SET);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) {
    for (size_t i = 0; i < n; i++) f->lines += chunk[i] == '\n';
    f->scanned += (long)n;
  }
  fclose(in);
  return f->lines;
}

static int64_t db_int(fixture *f, const char *sql) {
  return tu_db_int(f->dir, sql);
}

static int64_t sent(fixture *f) {
  return db_int(f, "SELECT count(*) FROM yz_outbox WHERE state = 'sent'");
}

static void show_daemon_log(fixture *f) {
  char path[4300];
  snprintf(path, sizeof path, "%s/daemon.log", f->dir);
  char *log = tu_read(path);
  fprintf(stderr, "daemon log:\n%s\n", log ? log : "(none)");
  free(log);
}

static void start_daemon(fixture *f) {
  char log[4300];
  snprintf(log, sizeof log, "%s/daemon.log", f->dir);
  const char *args[] = {"-d", f->dir, "run", NULL};
  f->pid = tu_yizhan_start(args, log);
}

/* Fails the test if the daemon has exited. */
static void assert_daemon_running(fixture *f) {
  int st;
  if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
    f->pid = 0;
    show_daemon_log(f);
    fail_msg("the daemon exited (status %d)", st);
  }
}

static int key_index(const char *key) {
  return key[0] == 'm' ? atoi(key + 1) : 0;
}

static void killed_three_times_nothing_is_lost(void **state) {
  fixture *f = *state;
  /* The gateway's stderr to a file: it prints a traceback for every
  ** connection a killed daemon drops. */
  char gwerr[4300];
  snprintf(gwerr, sizeof gwerr, "%s/gateway.err", f->dir);
  int saved = dup(2), fd = open(gwerr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  f->g = tu_gateway_start(NULL);
  dup2(saved, 2);
  close(saved);
  close(fd);
  char config[2048];
  snprintf(config, sizeof config,
           "quiet_hours = false\n"
           "channels = { gw = { type = 'http', url = "
           "'http://127.0.0.1:%d/send',\n"
           "  body = { to = '{{to}}', text = '{{text}}', key = '{{key}}' },\n"
           "  ok_when = { status = 200, json = { code = 0 } }, id_field = "
           "'msgid', timeout = 2,\n"
           "  retry_base = 0.2, retry_cap = 1, max_attempts = 10, daily_cap "
           "= false,\n"
           "  max_in_flight = 64 } }\n"
           "plugins = { bulk = {} }\n",
           f->g.port);
  tu_write(f->dir, "yizhan.conf.lua", config);
  char code[512];
  snprintf(code, sizeof code,
           "for i = 1, %d do host.send{ to = tostring(13800000000 + i), "
           "text = '本月请给父母写一封信 ' .. i, key = 'm' .. i } end "
           "return 'ok'",
           N);
  const char *eval[] = {"-d", f->dir, "eval", "bulk", code, NULL};
  tu_run r = tu_yizhan(eval);
  if (r.status != 0) fprintf(stderr, "eval: %s%s\n", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  assert_int_equal(db_int(f, "SELECT count(*) FROM yz_outbox"), N);

  /* Killed after about 2k, 8k and 14k requests reached the gateway. */
  const long at[] = {2000, 8000, 14000};
  long lines_at[3];
  int64_t sent_at[3];
  int mid_run = 0;
  double t0 = tu_now_s();
  for (int k = 0; k < 3; k++) {
    start_daemon(f);
    double started = tu_now_s();
    while (gateway_lines(f) < at[k]) {
      assert_daemon_running(f);
      if (tu_now_s() - started > 60) {
        show_daemon_log(f);
        fail_msg("only %ld requests after 60 s", f->lines);
      }
      tu_sleep_ms(5);
    }
    assert_daemon_running(f); /* still running: killed mid-run */
    kill(f->pid, SIGKILL);
    int st;
    waitpid(f->pid, &st, 0);
    f->pid = 0;
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    lines_at[k] = gateway_lines(f);
    sent_at[k] = sent(f);
    if (sent_at[k] < N) mid_run++;
  }
  /* The last start finishes the run. */
  start_daemon(f);
  double started = tu_now_s();
  while (sent(f) < N) {
    assert_daemon_running(f);
    if (tu_now_s() - started > 90) {
      show_daemon_log(f);
      fail_msg("%lld of %d sent after 90 s", (long long)sent(f), N);
    }
    tu_sleep_ms(100);
  }
  kill(f->pid, SIGTERM);
  int st;
  waitpid(f->pid, &st, 0);
  f->pid = 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) show_daemon_log(f);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  double took = tu_now_s() - t0;
  assert_int_equal(mid_run, 3);

  /* The gateway's view: how often each key was accepted, with what text. */
  size_t n;
  tu_gw_req *req = tu_gateway_requests(&f->g, &n);
  int *accepted = calloc(N + 1, sizeof *accepted);
  const char **text = calloc(N + 1, sizeof *text);
  int refused = 0; /* a request cut short by a kill: bad_request */
  for (size_t i = 0; i < n; i++) {
    if (!req[i].accepted) {
      refused++;
      continue;
    }
    int k = key_index(req[i].key);
    if (k < 1 || k > N) fail_msg("unknown key '%s'", req[i].key);
    char want[128];
    snprintf(want, sizeof want, "本月请给父母写一封信 %d", k);
    assert_string_equal(req[i].text, want);
    if (accepted[k]++ == 0)
      text[k] = req[i].text;
    else
      assert_string_equal(req[i].text, text[k]); /* the same message */
  }
  /* The outbox's view: every message sent; the in-doubt ones. */
  int *doubt = calloc(N + 1, sizeof *doubt);
  yz_store *s = tu_db_open(f->dir);
  yz_stmt *q;
  assert_int_equal(yz_store_prepare(s, NULL,
                                    "SELECT key, in_doubt, state FROM "
                                    "yz_outbox",
                                    &q),
                   YZ_OK);
  int rows = 0, in_doubt = 0;
  while (yz_stmt_step(q) == YZ_ROW) {
    yz_value key, d, sv;
    yz_stmt_column(q, 0, &key);
    yz_stmt_column(q, 1, &d);
    yz_stmt_column(q, 2, &sv);
    assert_int_equal(key.type, YZ_TEXT);
    char kbuf[32];
    snprintf(kbuf, sizeof kbuf, "%.*s", (int)key.n, key.s);
    int k = key_index(kbuf);
    assert_true(k >= 1 && k <= N);
    assert_int_equal(sv.n, 4);
    assert_memory_equal(sv.s, "sent", 4);
    doubt[k] = (int)d.i;
    in_doubt += d.i > 0;
    rows++;
  }
  yz_stmt_release(q);
  yz_store_close(s);
  assert_int_equal(rows, N);

  int lost = 0, dup = 0, dup_not_in_doubt = 0;
  for (int k = 1; k <= N; k++) {
    if (accepted[k] == 0) {
      if (lost++ < 10) fprintf(stderr, "m%d never reached the gateway\n", k);
    } else if (accepted[k] > 1) {
      dup++;
      if (doubt[k] == 0 && dup_not_in_doubt++ < 10)
        fprintf(stderr, "m%d accepted %d times, never in doubt\n", k,
                accepted[k]);
    }
  }
  print_message(
      "crash: %d messages, %zu requests in %.1f s; killed at %ld, "
      "%ld, %ld requests (%lld, %lld, %lld sent); %d in doubt, %d "
      "accepted twice or more, %d requests not accepted\n",
      N, n, took, lines_at[0], lines_at[1], lines_at[2], (long long)sent_at[0],
      (long long)sent_at[1], (long long)sent_at[2], in_doubt, dup, refused);
  assert_int_equal(lost, 0);
  assert_int_equal(dup_not_in_doubt, 0);
  free(doubt);
  free(text);
  free(accepted);
  tu_gateway_requests_free(req, n);
}

int main(void) {
  setenv("YIZHAN_SHIPPED_PLUGINS", YZ_SOURCE_DIR "/plugins", 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(killed_three_times_nothing_is_lost, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
