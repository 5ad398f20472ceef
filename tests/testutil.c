/*
** testutil.c: see testutil.h.
*/
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "buf.h"

char *tu_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/yztest-XXXXXX",
           base && *base ? base : "/tmp");
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return yz_strdup(d);
}

void tu_rmrf(const char *path) {
  if (!path) return;
  pid_t pid = fork();
  if (pid == 0) {
    execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
}

static void mkdirs_for(const char *file) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", file);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(buf, 0700);
      *p = '/';
    }
}

void tu_write(const char *dir, const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  mkdirs_for(path);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

char *tu_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  yz_buf b;
  yz_buf_init(&b, 256u << 20);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) yz_buf_add(&b, chunk, n);
  fclose(f);
  char *s = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return s;
}

char *tu_datadir(const char *config) {
  char *d = tu_tmpdir();
  tu_write(d, "yizhan.conf.lua", config ? config : "");
  char p[4096];
  snprintf(p, sizeof p, "%s/plugins", d);
  mkdir(p, 0700);
  return d;
}

yz_host *tu_host(const char *dir) {
  yz_host *h = NULL;
  char err[YZ_ERRMSG_MAX];
  int rc = yz_host_open(dir, &h, err, sizeof err);
  if (rc != YZ_OK) fprintf(stderr, "tu_host: %s\n", err);
  assert_int_equal(rc, YZ_OK);
  char log[4096];
  snprintf(log, sizeof log, "%s/log.txt", dir);
  h->log.out = fopen(log, "a");
  return h;
}

/* Prepares 'sql' as the core and steps to its first row; *v is its first
** column, valid until the returned statement is released. */
static yz_stmt *first_row(yz_store *s, const char *sql, yz_value *v) {
  yz_stmt *st;
  int rc = yz_store_prepare(s, NULL, sql, &st);
  if (rc != YZ_OK) fprintf(stderr, "%s: %s\n", sql, yz_store_errmsg(s));
  assert_int_equal(rc, YZ_OK);
  assert_int_equal(yz_stmt_step(st), YZ_ROW);
  yz_stmt_column(st, 0, v);
  return st;
}

char *tu_query(yz_store *s, const char *sql) {
  yz_value v;
  yz_stmt *st = first_row(s, sql, &v);
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  switch (v.type) {
    case YZ_INT: yz_buf_addf(&b, "%lld", (long long)v.i); break;
    case YZ_REAL: yz_buf_addf(&b, "%g", v.d); break;
    case YZ_TEXT: yz_buf_add(&b, v.s, v.n); break;
    case YZ_NULL: yz_buf_adds(&b, "NULL"); break;
    default: yz_buf_adds(&b, "?"); break;
  }
  yz_stmt_release(st);
  char *text = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return text;
}

int64_t tu_int(yz_store *s, const char *sql) {
  yz_value v;
  yz_stmt *st = first_row(s, sql, &v);
  yz_stmt_release(st);
  assert_int_equal(v.type, YZ_INT);
  return v.i;
}

yz_store *tu_db_open(const char *dir) {
  char path[4300], err[512];
  snprintf(path, sizeof path, "%s/yizhan.db", dir);
  yz_store *s;
  if (yz_store_open(&s, path, err, sizeof err) != YZ_OK) fail_msg("%s", err);
  return s;
}

char *tu_db_text(const char *dir, const char *sql) {
  yz_store *s = tu_db_open(dir);
  char *v = tu_query(s, sql);
  yz_store_close(s);
  return v;
}

int64_t tu_db_int(const char *dir, const char *sql) {
  yz_store *s = tu_db_open(dir);
  int64_t v = tu_int(s, sql);
  yz_store_close(s);
  return v;
}

const char *tu_eval(yz_plugin *p, const char *code, yz_buf *out, int want) {
  yz_buf_reset(out);
  int rc = yz_plugin_eval(p, code, out);
  if (rc != want)
    fprintf(stderr, "expected %s from:\n  %s\ngot:\n  %s\n",
            want == YZ_OK ? "success" : "an error", code, yz_buf_str(out));
  assert_int_equal(rc, want);
  return yz_buf_str(out);
}

static char *slurp_fd(int fd) {
  yz_buf b;
  yz_buf_init(&b, 64u << 20);
  char chunk[8192];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0)
    yz_buf_add(&b, chunk, (size_t)n);
  char *s = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return s;
}

/* Starts the binary with args, its stdout to outp and stderr to errp
** (appending when both are one file), its stdin from inp; returns the pid. */
static pid_t spawn_yizhan_in(const char *const *args, const char *outp,
                             const char *errp, const char *inp) {
  int argc = 0;
  while (args[argc]) argc++;
  const char **argv = calloc((size_t)argc + 2, sizeof *argv);
  argv[0] = YZ_TEST_BINARY;
  for (int i = 0; i < argc; i++) argv[i + 1] = args[i];
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int same = strcmp(outp, errp) == 0;
    int flags = O_WRONLY | O_CREAT | (same ? O_APPEND : O_TRUNC);
    int o = open(outp, flags, 0600);
    int e = same ? o : open(errp, flags, 0600);
    int in = open(inp, O_RDONLY);
    dup2(o, 1);
    dup2(e, 2);
    dup2(in, 0);
    execv(YZ_TEST_BINARY, (char *const *)argv);
    _exit(127);
  }
  free(argv);
  return pid;
}

/* The same with stdin from /dev/null. */
static pid_t spawn_yizhan(const char *const *args, const char *outp,
                          const char *errp) {
  return spawn_yizhan_in(args, outp, errp, "/dev/null");
}

char *tu_bulk_datadir(void) {
  char *dir = tu_datadir(NULL);
  tu_write(dir, "plugins/bulk.lua",
           "return { name = 'bulk', version = '1', access = { send = true } "
           "}\n");
  return dir;
}

tu_run tu_yizhan(const char *const *args) {
  return tu_yizhan_input(args, NULL);
}

tu_run tu_yizhan_input(const char *const *args, const char *input) {
  tu_run r = {0};
  char *dir = tu_tmpdir();
  char outp[4096], errp[4096], inp[4096];
  snprintf(outp, sizeof outp, "%s/out", dir);
  snprintf(errp, sizeof errp, "%s/err", dir);
  snprintf(inp, sizeof inp, "%s/in", dir);
  if (input) tu_write(dir, "in", input);
  pid_t pid = spawn_yizhan_in(args, outp, errp, input ? inp : "/dev/null");
  int st;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  int fd = open(outp, O_RDONLY);
  r.out = slurp_fd(fd);
  close(fd);
  fd = open(errp, O_RDONLY);
  r.err = slurp_fd(fd);
  close(fd);
  tu_rmrf(dir);
  free(dir);
  return r;
}

int tu_yizhan_start(const char *const *args, const char *logfile) {
  return (int)spawn_yizhan(args, logfile, logfile);
}

void tu_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

double tu_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void tu_run_free(tu_run *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

int tu_contains(const char *hay, const char *needle) {
  if (hay && strstr(hay, needle)) return 1;
  fprintf(stderr, "expected to find:\n  %s\nin:\n%s\n", needle,
          hay ? hay : "(null)");
  return 0;
}

/* ------------------------------------------------------------- gateway */

tu_gateway tu_gateway_start(const char *const *args) {
  tu_gateway g = {0};
  g.dir = tu_tmpdir();
  char portf[4200], logf[4200];
  snprintf(portf, sizeof portf, "%s/port", g.dir);
  snprintf(logf, sizeof logf, "%s/gw.jsonl", g.dir);
  g.log = strdup(logf);
  int argc = 0;
  while (args && args[argc]) argc++;
  const char **argv = calloc((size_t)argc + 8, sizeof *argv);
  int n = 0;
  argv[n++] = "python3";
  argv[n++] = YZ_SOURCE_DIR "/tests/gateway/mockgw.py";
  argv[n++] = "--port-file";
  argv[n++] = portf;
  argv[n++] = "--log";
  argv[n++] = logf;
  for (int i = 0; i < argc; i++) argv[n++] = args[i];
  g.pid = fork();
  assert_true(g.pid >= 0);
  if (g.pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  free(argv);
  for (int i = 0; i < 1000; i++) {
    char *p = tu_read(portf);
    if (p) {
      g.port = atoi(p);
      free(p);
      break;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (!g.port) fail_msg("the mock gateway did not start");
  return g;
}

void tu_gateway_stop(tu_gateway *g) {
  if (g->pid > 0) {
    kill(g->pid, SIGTERM);
    waitpid(g->pid, NULL, 0);
    g->pid = 0;
  }
  if (g->dir) {
    tu_rmrf(g->dir);
    free(g->dir);
    g->dir = NULL;
  }
  free(g->log);
  g->log = NULL;
}

int tu_gateway_count(const tu_gateway *g, const char *needle) {
  char *text = tu_read(g->log);
  int n = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (strstr(line, needle)) n++;
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return n;
}

static char *req_field(const cJSON *obj, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return yz_strdup(cJSON_IsString(v) ? v->valuestring : "");
}

tu_gw_req *tu_gateway_requests(const tu_gateway *g, size_t *n) {
  char *text = tu_read(g->log);
  size_t cap = 64, count = 0;
  tu_gw_req *r = calloc(cap, sizeof *r);
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (!nl) break; /* a line still being written */
    *nl = 0;
    cJSON *j = cJSON_Parse(line);
    if (!j) fail_msg("gateway log: not JSON: %s", line);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "params");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "t");
    if (count == cap) r = realloc(r, (cap *= 2) * sizeof *r);
    tu_gw_req *q = &r[count++];
    q->t = cJSON_IsNumber(t) ? t->valuedouble : 0;
    q->key = req_field(params, "key");
    q->to = req_field(params, "to");
    q->text = req_field(params, "text");
    q->outcome = req_field(j, "outcome");
    q->accepted = !strcmp(q->outcome, "ok") || !strcmp(q->outcome, "slow");
    cJSON_Delete(j);
    line = nl + 1;
  }
  free(text);
  *n = count;
  return r;
}

void tu_gateway_requests_free(tu_gw_req *r, size_t n) {
  for (size_t i = 0; r && i < n; i++) {
    free(r[i].key);
    free(r[i].to);
    free(r[i].text);
    free(r[i].outcome);
  }
  free(r);
}
