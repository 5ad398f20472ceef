/*
** test_gateway.c: the yizhan binary delivering through the generic HTTP
** channel to the mock gateway (tests/gateway/mockgw.py), judged from the
** gateway's own request log: a mix of faults (5xx, 429, timeouts, resets,
** garbage, slow answers, rejected numbers) ends with every deliverable
** message accepted exactly once and every rejected one dead after one try;
** a 429's Retry-After is honoured; the daemon keeps to the channel's tps
** as the gateway sees it.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

typedef struct fixture {
  char *dir;    /* data directory */
  tu_gateway g; /* the mock gateway */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_bulk_datadir();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_gateway_stop(&f->g);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Starts the gateway with 'args' and writes a configuration with one http
** channel 'gw' pointed at it; 'extra' adds to (or overrides) its options. */
static void start(fixture *f, const char *const *args, const char *extra) {
  f->g = tu_gateway_start(args);
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
           "  max_in_flight = 64%s } }\n"
           "plugins = { bulk = {} }\n",
           f->g.port, extra);
  tu_write(f->dir, "yizhan.conf.lua", config);
}

/* Runs yizhan -d DIR with the given arguments. */
static tu_run yz_argv(fixture *f, const char *const *argv) {
  const char *args[16] = {"-d", f->dir};
  int n = 2;
  for (int i = 0; argv[i] && n < 15; i++) args[n++] = argv[i];
  args[n] = NULL;
  return tu_yizhan(args);
}
#define yz(f, ...) yz_argv(f, (const char *const[]){__VA_ARGS__, NULL})

static void eval_ok(fixture *f, const char *code) {
  tu_run r = yz(f, "eval", "bulk", code);
  if (r.status != 0) fprintf(stderr, "eval: %s%s\n", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
}

/* An integer query on the data directory's database. */
static int64_t db_int(fixture *f, const char *sql) {
  char path[4300], err[512];
  snprintf(path, sizeof path, "%s/yizhan.db", f->dir);
  yz_store *s;
  if (yz_store_open(&s, path, err, sizeof err) != YZ_OK) fail_msg("%s", err);
  int64_t v = tu_int(s, sql);
  yz_store_close(s);
  return v;
}

static int64_t unsettled(fixture *f) {
  return db_int(f,
                "SELECT count(*) FROM yz_outbox WHERE state IN ('queued', "
                "'sending', 'failed')");
}

/* Runs 'run --until-idle' again and again until no message waits (queued,
** sending or failed), for at most 'limit' seconds. */
static void settle(fixture *f, double limit) {
  double t0 = tu_now_s();
  for (;;) {
    tu_run r = yz(f, "run", "--until-idle");
    if (r.status != 0) fprintf(stderr, "run --until-idle: %s\n", r.err);
    assert_int_equal(r.status, 0);
    tu_run_free(&r);
    if (unsettled(f) == 0) return;
    if (tu_now_s() - t0 > limit) {
      r = yz(f, "outbox", "stats", "--json");
      fail_msg("not settled after %.0f s:\n%s", limit, r.out);
    }
    tu_sleep_ms(100);
  }
}

/* The index i of a key "m<i>" (0 for any other). */
static int key_index(const char *key) {
  return key[0] == 'm' ? atoi(key + 1) : 0;
}

#define FAULT_N 300
/* Every 60th message goes to +8613999..., which the gateway rejects. */
#define REJECTED(i) ((i) % 60 == 0)

static void a_fault_mix_delivers_each_message_exactly_once(void **state) {
  fixture *f = *state;
  const char *args[] = {"--faults",
                        "500=0.1,429=0.05,timeout=0.02,slow=0.05,reset=0.05,"
                        "garbage=0.05",
                        "--seed",
                        "7",
                        "--hang-s",
                        "3",
                        "--reject-prefix",
                        "+8613999",
                        NULL};
  start(f, args, ", tps = 50");
  char code[512];
  snprintf(code, sizeof code,
           "for i = 1, %d do\n"
           "  local to = (i %% 60 == 0) and 13999000000 + i or 13800000000 "
           "+ i\n"
           "  host.send{ to = tostring(to), text = '本月请给父母写一封信 ' "
           ".. i, key = 'm' .. i }\n"
           "end return 'ok'",
           FAULT_N);
  eval_ok(f, code);
  double t0 = tu_now_s();
  settle(f, 60);
  double took = tu_now_s() - t0;

  size_t n;
  tu_gw_req *req = tu_gateway_requests(&f->g, &n);
  int accepted[FAULT_N + 1] = {0}, seen[FAULT_N + 1] = {0};
  int outcomes[8] = {0};
  const char *names[8] = {"ok",    "slow",    "500",     "429",
                          "reset", "timeout", "garbage", "reject"};
  for (size_t i = 0; i < n; i++) {
    int k = key_index(req[i].key);
    assert_true(k >= 1 && k <= FAULT_N);
    seen[k]++;
    accepted[k] += req[i].accepted;
    for (int j = 0; j < 8; j++)
      if (!strcmp(req[i].outcome, names[j])) outcomes[j]++;
  }
  int rejected = 0;
  for (int k = 1; k <= FAULT_N; k++) {
    if (REJECTED(k)) {
      rejected++;
      if (seen[k] != 1 || accepted[k] != 0)
        fail_msg("rejected m%d: %d request(s), %d accepted", k, seen[k],
                 accepted[k]);
    } else if (accepted[k] != 1) {
      fail_msg("m%d accepted %d times by the gateway", k, accepted[k]);
    }
  }
  assert_int_equal(rejected, 5);
  /* Every fault happened at least once (the draws are seeded). */
  for (int j = 0; j < 8; j++) {
    if (outcomes[j] == 0) fail_msg("no '%s' outcome in the log", names[j]);
  }
  print_message(
      "fault mix: %zu requests for %d messages in %.1f s: ok %d, "
      "slow %d, 500 %d, 429 %d, reset %d, timeout %d, garbage %d, "
      "reject %d\n",
      n, FAULT_N, took, outcomes[0], outcomes[1], outcomes[2], outcomes[3],
      outcomes[4], outcomes[5], outcomes[6], outcomes[7]);
  tu_gateway_requests_free(req, n);

  assert_int_equal(db_int(f, "SELECT count(*) FROM yz_outbox"), FAULT_N);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'sent' AND recipient NOT LIKE '+8613999%'"),
                   FAULT_N - 5);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE recipient "
                          "LIKE '+8613999%' AND state = 'dead' AND attempts "
                          "= 1 AND last_error LIKE '%400%'"),
                   5);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE in_doubt "
                          "> 0"),
                   0);
}

static void retry_after_is_honoured(void **state) {
  fixture *f = *state;
  /* Every key's first request gets 429 with Retry-After: 2, the next is
  ** accepted; the channel's own backoff would be at most 1 s. */
  const char *args[] = {"--faults", "429=1",         "--fault-limit-per-key",
                        "1",        "--retry-after", "2",
                        NULL};
  start(f, args, "");
  tu_run r = yz(f, "send", "--to", "13800138000", "--text",
                "请给爸爸妈妈打个电话", "--key", "ra1");
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  settle(f, 20);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE key = 'ra1' "
                          "AND state = 'sent' AND attempts = 2"),
                   1);
  size_t n;
  tu_gw_req *req = tu_gateway_requests(&f->g, &n);
  assert_int_equal(n, 2);
  assert_string_equal(req[0].outcome, "429");
  assert_true(req[1].accepted);
  double gap = req[1].t - req[0].t;
  print_message("Retry-After 2: second attempt %.3f s after the first\n", gap);
  assert_true(gap >= 1.9);
  assert_true(gap < 6); /* honoured, not stuck */
  tu_gateway_requests_free(req, n);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define TPS 20
#define RATE_N 100

static void the_rate_limit_holds_at_the_gateway(void **state) {
  fixture *f = *state;
  start(f, NULL, ", tps = 20");
  char code[512];
  snprintf(code, sizeof code,
           "for i = 1, %d do host.send{ to = tostring(13800000000 + i), "
           "text = '本月请给父母写一封信 ' .. i, key = 'm' .. i } end "
           "return 'ok'",
           RATE_N);
  eval_ok(f, code);
  /* One 'run --until-idle' sends them all, at the configured rate (it
  ** waits for the bucket's tokens rather than calling itself idle). */
  tu_run r =
      tu_yizhan((const char *[]){"-d", f->dir, "run", "--until-idle", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'sent'"),
                   RATE_N);

  size_t n;
  tu_gw_req *req = tu_gateway_requests(&f->g, &n);
  assert_int_equal(n, RATE_N);
  double t[RATE_N];
  for (size_t i = 0; i < n; i++) {
    assert_true(req[i].accepted);
    t[i] = req[i].t;
  }
  tu_gateway_requests_free(req, n);
  qsort(t, RATE_N, sizeof t[0], cmp_double);
  /* The most in any one-second window: at most the burst plus a second's
  ** worth. */
  int most = 0;
  for (int i = 0, j = 0; i < RATE_N; i++) {
    while (j < RATE_N && t[j] < t[i] + 1.0) j++;
    if (j - i > most) most = j - i;
  }
  double span = t[RATE_N - 1] - t[0];
  double rate = (RATE_N - TPS) / span; /* beyond the initial burst */
  print_message(
      "tps %d: %d messages in %.2f s, %.1f/s after the burst, at "
      "most %d in any 1 s window\n",
      TPS, RATE_N, span, rate, most);
  assert_true(most <= 2 * TPS);
  assert_true(span >= (RATE_N - TPS) / (double)TPS * 0.95);
  assert_true(span < 3.0 * RATE_N / TPS); /* and it is not far slower */
}

int main(void) {
  setenv("YIZHAN_SHIPPED_PLUGINS", YZ_SOURCE_DIR "/plugins", 0);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(a_fault_mix_delivers_each_message_exactly_once),
      T(retry_after_is_honoured),
      T(the_rate_limit_holds_at_the_gateway),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
