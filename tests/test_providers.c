/*
** test_providers.c: the yizhan binary delivering template messages through
** the aliyun and tencent channel plugins to their mock providers
** (tests/gateway/mock_aliyun.py, mock_tencent.py), which verify every
** signature the way the real services do. Judged from the outbox, the
** binary's exit status and stderr, the mock's request log and its /stats.
**
** Each case runs against both providers unless the runner at the end lists
** it for one:
** batches and receipts, a failed receipt, flow control and its retry, a
** refused number (alone in a batch), a wrong secret (the channel pauses,
** with one request, not a storm), a lost answer looked up before sending
** again (Aliyun), 5xx, an empty balance (an alert), config errors, and a
** daemon killed while a request hangs (Aliyun).
**
** The file is divided into: the providers' descriptions, the mock and the
** data directory, helpers reading the mock's log and stats and the outbox,
** then the cases and the runner.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "testutil.h"

/* ------------------------------------------------------------ providers */

/* What differs between the two providers, for cases that run on both. */
typedef struct provider {
  const char *name;       /* the channel's name and type */
  const char *script;     /* the mock, under tests/gateway */
  const char *secret_env; /* the variable env() reads the secret from */
  const char *secret;     /* the secret the mock accepts */
  const char *limit;      /* a per-number flow-control code */
  const char *illegal;    /* the code of a number the provider refuses */
  const char *balance;    /* the code of an exhausted account */
  const char *alert_word; /* what the balance alert must mention */
  const char *receipts;   /* the action that polls receipts */
  const char *lookup;     /* the action that looks a message in doubt up */
  int tencent;            /* 1 for Tencent */
} provider;

static provider ALIYUN = {
    "aliyun",
    "mock_aliyun.py",
    "ALI_SK",
    "testSecret",
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.AMOUNT_NOT_ENOUGH",
    "balance",
    "QuerySendDetails",
    "QuerySendDetails",
    0,
};

static provider TENCENT = {
    "tencent",
    "mock_tencent.py",
    "TC_SK",
    "testKey",
    "LimitExceeded.PhoneNumberOneHourLimit",
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "package",
    "PullSmsSendStatus",
    "PullSmsSendStatusByPhoneNumber",
    1,
};

/* The top-level template every case sends. */
#define LETTER "{{child}}同学{{month}}月还没有给父母写信。"

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
  const provider *pv; /* which provider this run of the case is for */
  char *dir;          /* data directory */
  char *run;          /* the mock's scratch folder */
  int mock;           /* the mock's pid (0: not running) */
  int port;           /* where it listens */
  int daemon;         /* a 'yizhan run' daemon's pid (0: none) */
  char log[4200];     /* the mock's request log */
  char faults[4200];  /* its faults file */
  char rcpts[4200];   /* its receipts file */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->pv = *state;
  f->dir = tu_datadir(NULL);
  f->run = tu_tmpdir();
  snprintf(f->log, sizeof f->log, "%s/log.jsonl", f->run);
  snprintf(f->faults, sizeof f->faults, "%s/faults.json", f->run);
  snprintf(f->rcpts, sizeof f->rcpts, "%s/receipts.json", f->run);
  setenv(f->pv->secret_env, f->pv->secret, 1);
  *state = f;
  return 0;
}

/* Stops the mock by its pid: SIGTERM, and SIGKILL if it is still there
** after 5 s (a Python server has been seen to miss a SIGTERM). */
static void mock_stop(fixture *f) {
  if (f->mock <= 0) return;
  kill(f->mock, SIGTERM);
  for (int i = 0; i < 500; i++) {
    if (waitpid(f->mock, NULL, WNOHANG) == f->mock) {
      f->mock = 0;
      return;
    }
    if (i == 100) kill(f->mock, SIGTERM); /* once more after a second */
    tu_sleep_ms(10);
  }
  kill(f->mock, SIGKILL);
  waitpid(f->mock, NULL, 0);
  f->mock = 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->daemon > 0) {
    kill(f->daemon, SIGKILL);
    waitpid(f->daemon, NULL, 0);
  }
  mock_stop(f);
  tu_rmrf(f->dir);
  tu_rmrf(f->run);
  free(f->dir);
  free(f->run);
  free(f);
  return 0;
}

/* Writes path through path.tmp and a rename, as the mocks want: they re-read
** the file on each request and must never see half of it. */
static void write_atomic(const char *path, const char *text) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *out = fopen(tmp, "wb");
  assert_non_null(out);
  fputs(text, out);
  assert_int_equal(fclose(out), 0);
  assert_int_equal(rename(tmp, path), 0);
}

/* The configuration of the provider's channel pointed at port: 'secret' is
** the Lua expression of its secret, 'more' more top-level templates. */
static void write_config(fixture *f, int port, const char *secret,
                         const char *more) {
  char conf[4096];
  char env[64];
  snprintf(env, sizeof env, "env(\"%s\")", f->pv->secret_env);
  if (!secret) secret = env;
  if (!f->pv->tencent)
    snprintf(conf, sizeof conf,
             "quiet_hours = false\n"
             "templates = { %s letter = \"" LETTER
             "\" }\n"
             "channels = {\n"
             "  aliyun = { type = \"aliyun\", url = \"http://127.0.0.1:%d/\", "
             "access_key_id = \"testId\",\n"
             "    access_key_secret = %s, sign_name = \"某县教育局\",\n"
             "    templates = { letter = \"SMS_1\" }, retry_base = 1, "
             "limit_delay = 1 },\n"
             "}\n",
             more, port, secret);
  else
    snprintf(conf, sizeof conf,
             "quiet_hours = false\n"
             "templates = { %s letter = \"" LETTER
             "\" }\n"
             "channels = {\n"
             "  tencent = { type = \"tencent\", url = "
             "\"http://127.0.0.1:%d/\", secret_id = \"AKIDtest\",\n"
             "    secret_key = %s, sign_name = \"某县教育局\", sdk_app_id = "
             "\"1400000001\",\n"
             "    templates = { letter = { code = \"1234567\", params = { "
             "\"month\", \"child\" } } },\n"
             "    retry_base = 1, limit_delay = 1 },\n"
             "}\n",
             more, port, secret);
  tu_write(f->dir, "yizhan.conf.lua", conf);
}

/* Starts the provider's mock (a request that hangs holds hang_s seconds;
** 'extra' are more arguments, or NULL), waits until it listens and writes
** the configuration pointing at it. */
static void start_args(fixture *f, const char *hang_s,
                       const char *const *extra) {
  char portf[4300], pidf[4300], errf[4300];
  snprintf(portf, sizeof portf, "%s/port", f->run);
  snprintf(pidf, sizeof pidf, "%s/pid", f->run);
  snprintf(errf, sizeof errf, "%s/mock.err", f->run);
  char script[1024];
  snprintf(script, sizeof script, "%s/tests/gateway/%s", YZ_SOURCE_DIR,
           f->pv->script);
  const char *ali[] = {"--access-key-id",
                       "testId",
                       "--access-key-secret",
                       "testSecret",
                       "--template",
                       "SMS_1=child,month",
                       NULL};
  const char *tc[] = {"--secret-id",
                      "AKIDtest",
                      "--secret-key",
                      "testKey",
                      "--sdk-app-id",
                      "1400000001",
                      "--template",
                      "1234567=2",
                      "--replay-check",
                      "SendSms",
                      NULL};
  const char *argv[40] = {"python3",     script,   "--port",     "0",
                          "--port-file", portf,    "--pid-file", pidf,
                          "--log",       f->log,   "--faults",   f->faults,
                          "--receipts",  f->rcpts, "--hang-s",   hang_s};
  int n = 16;
  for (const char *const *a = f->pv->tencent ? tc : ali; *a; a++)
    argv[n++] = *a;
  for (const char *const *a = extra; a && *a && n < 39; a++) argv[n++] = *a;
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int err = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(err, 1);
    dup2(err, 2);
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  f->mock = pid;
  for (int i = 0; i < 1000 && !f->port; i++) {
    char *p = tu_read(portf);
    if (p) {
      f->port = atoi(p);
      free(p);
      break;
    }
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      f->mock = 0;
      char *why = tu_read(errf);
      fail_msg("the mock %s ended at start:\n%s", f->pv->script,
               why ? why : "");
    }
    tu_sleep_ms(10);
  }
  if (!f->port) fail_msg("the mock %s did not start", f->pv->script);
  write_config(f, f->port, NULL, "");
}
#define start(f, hang_s) start_args(f, hang_s, NULL)

/* Runs yizhan -d DIR with the given arguments. */
static tu_run yz_argv(fixture *f, const char *const *argv) {
  const char *args[24] = {"-d", f->dir};
  int n = 2;
  for (int i = 0; argv[i] && n < 23; i++) args[n++] = argv[i];
  args[n] = NULL;
  return tu_yizhan(args);
}
#define yz(f, ...) yz_argv(f, (const char *const[]){__VA_ARGS__, NULL})

/* Queues the letter to 'to' with child and month as its parameters. */
static void send_letter(fixture *f, const char *to, const char *child,
                        const char *month) {
  char params[256];
  snprintf(params, sizeof params, "child=%s,month=%s", child, month);
  tu_run r =
      yz(f, "send", "--to", to, "--template", "letter", "--params", params);
  if (r.status != 0) fprintf(stderr, "send: %s%s\n", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
}

/* 'run --until-idle', which must exit with 'want'; the caller frees it. */
static tu_run run_idle(fixture *f, int want) {
  tu_run r = yz(f, "run", "--until-idle");
  if (r.status != want)
    fprintf(stderr, "run --until-idle exited %d, not %d:\n%s\n", r.status, want,
            r.err);
  assert_int_equal(r.status, want);
  return r;
}

static void run_idle_ok(fixture *f) {
  tu_run r = run_idle(f, 0);
  tu_run_free(&r);
}

/* ------------------------------------------------------------ the outbox */

/* An integer query on the data directory's database. */
static int64_t db_int(fixture *f, const char *sql) {
  return tu_db_int(f->dir, sql);
}

/* A text query (malloc'd; "NULL" for a null). */
static char *db_text(fixture *f, const char *sql) {
  return tu_db_text(f->dir, sql);
}

/* The state, attempts, in_doubt and last_error of the message to +86
** 'national', as "state attempts in_doubt | last_error" (malloc'd). */
static char *row_of(fixture *f, const char *national) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT state || ' ' || attempts || ' ' || in_doubt || ' | ' || "
           "coalesce(last_error, '') FROM yz_outbox WHERE recipient = "
           "'+86%s'",
           national);
  return db_text(f, sql);
}

/* Asserts the message to 'national' is in 'state' after 'attempts'
** attempts (and, when 'error' is not NULL, its last_error contains it). */
static void expect_msg(fixture *f, const char *national, const char *state,
                       int attempts, const char *error) {
  char *row = row_of(f, national);
  char want[128];
  snprintf(want, sizeof want, "%s %d ", state, attempts);
  if (strncmp(row, want, strlen(want)) != 0)
    fail_msg("message to %s: expected '%s...', got '%s'", national, want, row);
  if (error && !strstr(strchr(row, '|'), error))
    fail_msg("message to %s: its last_error lacks '%s': '%s'", national, error,
             row);
  free(row);
}

static double wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Sleeps until every message that waits for a retry is due (at most 3 s:
** retry_base and limit_delay are 1 s). */
static void wait_until_due(fixture *f) {
  int64_t next = db_int(f,
                        "SELECT coalesce(max(next_at), 0) FROM yz_outbox "
                        "WHERE state IN ('queued', 'failed')");
  double wait = (double)next - wall_ms();
  if (wait > 3000) fail_msg("the retry is %.0f ms away, not ~1 s", wait);
  if (wait > 0) tu_sleep_ms((long)wait + 100);
}

/* ------------------------------------------------------------ the mock */

/* The mock's request log: a JSON array of its complete lines. */
static cJSON *mock_log(fixture *f) {
  char *text = tu_read(f->log);
  cJSON *all = cJSON_CreateArray();
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (!nl) break; /* a line still being written */
    *nl = 0;
    cJSON *j = cJSON_Parse(line);
    if (!j) fail_msg("mock log: not JSON: %s", line);
    cJSON_AddItemToArray(all, j);
    line = nl + 1;
  }
  free(text);
  return all;
}

static const char *str_of(const cJSON *obj, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsString(v) ? v->valuestring : "";
}

static int has_phone(const cJSON *req, const char *national) {
  const cJSON *p;
  cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(req, "phones")) {
    if (cJSON_IsString(p) && strcmp(p->valuestring, national) == 0) return 1;
  }
  return 0;
}

static int phone_count(const cJSON *req) {
  return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(req, "phones"));
}

/* Requests of 'action' in the log, for 'national' (NULL: any number). */
static int requests(fixture *f, const char *action, const char *national) {
  cJSON *all = mock_log(f);
  int n = 0;
  const cJSON *req;
  cJSON_ArrayForEach(req, all) {
    if (strcmp(str_of(req, "action"), action) == 0 &&
        (!national || has_phone(req, national)))
      n++;
  }
  cJSON_Delete(all);
  return n;
}

/* The i-th (from 0) SendSms of the log, detached (the caller deletes it);
** fails the test when there is none. */
static cJSON *send_request(fixture *f, int i) {
  cJSON *all = mock_log(f);
  int k = 0;
  for (int at = 0; at < cJSON_GetArraySize(all); at++) {
    cJSON *req = cJSON_GetArrayItem(all, at);
    if (strcmp(str_of(req, "action"), "SendSms") == 0 && k++ == i) {
      cJSON *mine = cJSON_DetachItemFromArray(all, at);
      cJSON_Delete(all);
      return mine;
    }
  }
  cJSON_Delete(all);
  fail_msg("the mock's log has no SendSms #%d", i + 1);
  return NULL;
}

/* GET path on the mock; the answer's body (malloc'd). */
static char *mock_get(fixture *f, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)f->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    fail_msg("connect to the mock: %s", strerror(errno));
  char req[256];
  int len = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: "
                     "close\r\n\r\n",
                     path);
  assert_int_equal(write(fd, req, (size_t)len), len);
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0)
    yz_buf_add(&b, chunk, (size_t)n);
  close(fd);
  const char *body = strstr(yz_buf_str(&b), "\r\n\r\n");
  char *copy = body ? yz_strdup(body + 4) : NULL;
  if (!copy) fail_msg("the mock's answer to %s: %s", path, yz_buf_str(&b));
  yz_buf_free(&b);
  return copy;
}

/* A count from the mock's /stats: stats[group][name], 0 when absent
** (name NULL: stats[group] itself). */
static int stat_of(fixture *f, const char *group, const char *name) {
  char *text = mock_get(f, "/stats");
  cJSON *j = cJSON_Parse(text);
  if (!j) fail_msg("/stats: not JSON: %s", text);
  free(text);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, group);
  if (name) v = cJSON_GetObjectItemCaseSensitive(v, name);
  int n = cJSON_IsNumber(v) ? v->valueint : 0;
  cJSON_Delete(j);
  return n;
}

/* How many times the mock took a message for 'national'. */
static int accepted(fixture *f, const char *national) {
  return stat_of(f, "accepted", national);
}

/* Lines of text holding both a and b. */
static int lines_with(const char *text, const char *a, const char *b) {
  int n = 0;
  const char *line = text;
  while (line && *line) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    char *copy = calloc(1, len + 1);
    memcpy(copy, line, len);
    if (strstr(copy, a) && strstr(copy, b)) n++;
    free(copy);
    line = nl ? nl + 1 : NULL;
  }
  return n;
}

/* ------------------------------------------------------------ cases */

static void three_messages_alike_go_in_one_request_and_all_four_are_delivered(
    void **state) {
  fixture *f = *state;
  start(f, "1");
  send_letter(f, "13800000001", "张*明", "10");
  send_letter(f, "13800000002", "张*明", "10");
  send_letter(f, "13800000003", "张*明", "10");
  /* The same template with other parameters: a request of its own. */
  tu_run r = yz(f, "send", "--to", "13800000004", "--template", "letter",
                "--params", "{\"child\":\"李*\",\"month\":\"10\"}");
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  run_idle_ok(f);

  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'delivered' AND attempts = 1 AND in_doubt = 0 AND "
                          "gateway_id IS NOT NULL"),
                   4);
  assert_int_equal(requests(f, "SendSms", NULL), 2);
  cJSON *batch = send_request(f, 0), *alone = send_request(f, 1);
  if (has_phone(batch, "13800000004")) { /* the order is not promised */
    cJSON *t = batch;
    batch = alone;
    alone = t;
  }
  assert_int_equal(phone_count(batch), 3);
  assert_true(has_phone(batch, "13800000001"));
  assert_true(has_phone(batch, "13800000002"));
  assert_true(has_phone(batch, "13800000003"));
  assert_int_equal(phone_count(alone), 1);
  assert_true(has_phone(alone, "13800000004"));

  /* The approved template and its parameters, as each provider wants them;
  ** a lone message carries its key (for a lookup or a receipt). */
  const cJSON *bp = cJSON_GetObjectItemCaseSensitive(batch, "params");
  const cJSON *ap = cJSON_GetObjectItemCaseSensitive(alone, "params");
  char *key = db_text(f,
                      "SELECT key FROM yz_outbox WHERE recipient = "
                      "'+8613800000004'");
  if (!f->pv->tencent) {
    assert_string_equal(str_of(bp, "TemplateCode"), "SMS_1");
    cJSON *tp = cJSON_Parse(str_of(bp, "TemplateParam"));
    assert_non_null(tp);
    assert_string_equal(str_of(tp, "child"), "张*明");
    assert_string_equal(str_of(tp, "month"), "10");
    cJSON_Delete(tp);
    assert_string_equal(str_of(ap, "OutId"), key);
  } else {
    assert_string_equal(str_of(bp, "TemplateId"), "1234567");
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(bp, "TemplateParamSet");
    assert_int_equal(cJSON_GetArraySize(set), 2); /* in the map's order */
    assert_string_equal(cJSON_GetArrayItem(set, 0)->valuestring, "10");
    assert_string_equal(cJSON_GetArrayItem(set, 1)->valuestring, "张*明");
    assert_string_equal(str_of(ap, "SessionContext"), key);
  }
  free(key);
  cJSON_Delete(batch);
  cJSON_Delete(alone);
  /* The receipts were asked for before the run ended. */
  assert_true(requests(f, f->pv->receipts, NULL) >= 1);
  assert_int_equal(stat_of(f, "accepted_total", NULL), 4);
}

static void a_failed_receipt_makes_the_message_dead(void **state) {
  fixture *f = *state;
  start(f, "1");
  write_atomic(f->rcpts, "{\"13800000012\": \"MOBILE_NOT_ON_SERVICE\"}");
  send_letter(f, "13800000011", "张*明", "10");
  send_letter(f, "13800000012", "王*", "10");
  run_idle_ok(f);
  expect_msg(f, "13800000011", "delivered", 1, NULL);
  expect_msg(f, "13800000012", "dead", 1, "MOBILE_NOT_ON_SERVICE");
  assert_int_equal(accepted(f, "13800000012"), 1); /* and not sent again */
}

static void flow_control_waits_limit_delay_then_delivers(void **state) {
  fixture *f = *state;
  start(f, "1");
  char faults[256];
  snprintf(faults, sizeof faults, "{\"13800000021\": [\"%s\", \"ok\"]}",
           f->pv->limit);
  write_atomic(f->faults, faults);
  send_letter(f, "13800000021", "张*明", "10");
  double t0 = wall_ms();
  run_idle_ok(f);
  double t1 = wall_ms();
  /* Waiting for a quota is not the message's fault: no attempt used. */
  expect_msg(f, "13800000021", "failed", 0, f->pv->limit);
  /* limit_delay = 1 s after the answer, not the channel's backoff. */
  int64_t next = db_int(f,
                        "SELECT next_at FROM yz_outbox WHERE recipient = "
                        "'+8613800000021'");
  if ((double)next < t0 + 900 || (double)next > t1 + 1100)
    fail_msg("next_at is %.0f ms after the run began (%.0f ms long)",
             (double)next - t0, t1 - t0);
  assert_int_equal(accepted(f, "13800000021"), 0);

  wait_until_due(f);
  run_idle_ok(f);
  expect_msg(f, "13800000021", "delivered", 1, NULL);
  assert_int_equal(accepted(f, "13800000021"), 1);
  assert_int_equal(requests(f, "SendSms", "13800000021"), 2);
}

/* A recipient's daily quota at the provider: the message waits for the
** next day in China (a minute past midnight, UTC+8), no attempt used. */
static void a_daily_limit_waits_for_midnight_in_china(void **state) {
  fixture *f = *state;
  start(f, "1");
  const char *code = f->pv->tencent ? "LimitExceeded.PhoneNumberDailyLimit"
                                    : "isv.DAY_LIMIT_CONTROL";
  char faults[256];
  snprintf(faults, sizeof faults, "{\"13800000023\": \"%s\"}", code);
  write_atomic(f->faults, faults);
  send_letter(f, "13800000023", "张*明", "10");
  run_idle_ok(f);
  expect_msg(f, "13800000023", "failed", 0, code);
  int64_t next = db_int(f,
                        "SELECT next_at FROM yz_outbox WHERE recipient = "
                        "'+8613800000023'");
  int64_t now_s = (int64_t)time(NULL);
  int64_t midnight = now_s - (now_s + 8 * 3600) % 86400 + 86400;
  if (llabs(next / 1000 - (midnight + 60)) > 3)
    fail_msg("next_at %lld s, expected %lld (a minute past midnight UTC+8)",
             (long long)(next / 1000), (long long)(midnight + 60));
  assert_int_equal(accepted(f, "13800000023"), 0);
}

static void a_refused_number_is_dead_and_its_batch_still_goes(void **state) {
  fixture *f = *state;
  start(f, "1");
  char faults[256];
  snprintf(faults, sizeof faults, "{\"13800000032\": \"%s\"}", f->pv->illegal);
  write_atomic(f->faults, faults);
  send_letter(f, "13800000031", "张*明", "10");
  send_letter(f, "13800000032", "张*明", "10");
  send_letter(f, "13800000033", "张*明", "10");
  run_idle_ok(f);
  expect_msg(f, "13800000032", "dead", 1, f->pv->illegal);
  expect_msg(f, "13800000031", "delivered", 1, NULL);
  expect_msg(f, "13800000033", "delivered", 1, NULL);
  /* They went together first. */
  cJSON *first = send_request(f, 0);
  assert_int_equal(phone_count(first), 3);
  cJSON_Delete(first);
  assert_int_equal(accepted(f, "13800000031"), 1);
  assert_int_equal(accepted(f, "13800000033"), 1);
  assert_int_equal(accepted(f, "13800000032"), 0);
  /* Aliyun refuses the whole request and each goes alone; Tencent answers
  ** each number of the one request. */
  assert_int_equal(requests(f, "SendSms", NULL), f->pv->tencent ? 1 : 4);
}

static void a_wrong_secret_pauses_the_channel_with_one_request(void **state) {
  fixture *f = *state;
  start(f, "1");
  setenv(f->pv->secret_env, "wrong", 1);
  for (int i = 1; i <= 5; i++) {
    char to[32], month[8];
    snprintf(to, sizeof to, "1380000004%d", i);
    snprintf(month, sizeof month, "%d", i);
    send_letter(f, to, "张*明", month);
  }
  tu_run r = run_idle(f, 1);
  assert_true(tu_contains(r.err, "signature"));
  if (lines_with(r.err, "level=", "paused") != 1)
    fail_msg("'paused' is not said once in the log:\n%s", r.err);
  tu_run_free(&r);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'queued' AND attempts = 0"),
                   5);
  int first = requests(f, "SendSms", NULL);

  r = run_idle(f, 1); /* still wrong */
  tu_run_free(&r);
  int second = requests(f, "SendSms", NULL) - first;
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'queued' AND attempts = 0"),
                   5);

  setenv(f->pv->secret_env, f->pv->secret, 1);
  run_idle_ok(f);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'delivered' AND attempts = 1"),
                   5);
  assert_int_equal(stat_of(f, "accepted_total", NULL), 5);
  /* No retry storm: a refused credential is learnt from one request. */
  if (first != 1 || second > 1)
    fail_msg(
        "a wrong secret: %d SendSms in the first run (expected 1) and %d "
        "in the second (expected at most 1)",
        first, second);
}

/* Credentials the provider refuses for another reason than the secret: the
** same pause, one request, the cause named. */
static void refused_credentials_pause(fixture *f, const char *needle) {
  for (int i = 1; i <= 3; i++) {
    char to[32], month[8];
    snprintf(to, sizeof to, "1380000005%d", i);
    snprintf(month, sizeof month, "%d", i);
    send_letter(f, to, "张*明", month);
  }
  tu_run r = run_idle(f, 1);
  if (!tu_contains(r.err, needle) || lines_with(r.err, "level=", "paused") != 1)
    fail_msg("expected one 'paused' line naming '%s':\n%s", needle, r.err);
  tu_run_free(&r);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'queued' AND attempts = 0"),
                   3);
  assert_int_equal(requests(f, "SendSms", NULL), 1);
  assert_int_equal(stat_of(f, "accepted_total", NULL), 0);
}

static void a_skewed_clock_pauses_the_channel_naming_the_clock(void **state) {
  fixture *f = *state;
  /* The provider's clock an hour ahead of ours. */
  start_args(f, "1", (const char *const[]){"--clock-skew-s", "3600", NULL});
  refused_credentials_pause(f, "clock");
}

static void an_unknown_key_id_pauses_the_channel(void **state) {
  fixture *f = *state;
  /* The provider knows another key id than the configured one. */
  if (f->pv->tencent)
    start_args(f, "1", (const char *const[]){"--secret-id", "AKIDother", NULL});
  else
    start_args(f, "1",
               (const char *const[]){"--access-key-id", "otherId", NULL});
  refused_credentials_pause(f, f->pv->tencent ? "secret_id" : "access_key_id");
}

/* The quick live test an administrator runs: send --wait with no daemon
** delivers it at once and says so. */
static void send_wait_is_a_quick_live_test(void **state) {
  fixture *f = *state;
  start(f, "1");
  tu_run r =
      yz(f, "send", "--channel", f->pv->name, "--to", "138 0000 0061",
         "--template", "letter", "--params",
         "{\"child\":\"张*明\",\"month\":\"12\"}", "--wait", "--timeout", "20");
  if (r.status != 0 || !tu_contains(r.out, "sent"))
    fail_msg("send --wait: exit %d\n%s%s", r.status, r.out, r.err);
  tu_run_free(&r);
  assert_int_equal(accepted(f, "13800000061"), 1);
  char *params = db_text(f, "SELECT params FROM yz_outbox");
  assert_string_equal(params, "{\"child\":\"张*明\",\"month\":\"12\"}");
  free(params);
}

static void a_lost_answer_is_looked_up_not_sent_again(void **state) {
  fixture *f = *state;
  start(f, "1");
  write_atomic(f->faults, "{\"13800000051\": [\"lost\"]}");
  send_letter(f, "13800000051", "张*明", "10");
  run_idle_ok(f);
  char *row = row_of(f, "13800000051");
  if (strncmp(row, "failed ", 7) != 0 && strncmp(row, "queued ", 7) != 0)
    fail_msg("after a lost answer: '%s'", row);
  free(row);
  assert_int_equal(accepted(f, "13800000051"), 1); /* it did arrive */

  wait_until_due(f);
  run_idle_ok(f);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state IN "
                          "('sent', 'delivered')"),
                   1);
  assert_int_equal(accepted(f, "13800000051"), 1);
  assert_int_equal(requests(f, "SendSms", "13800000051"), 1);
  assert_true(requests(f, f->pv->lookup, "13800000051") >= 1);
}

/* When the lookup itself fails (the provider cannot be reached), the
** message is not sent again blind: it waits for a lookup that works. */
static void a_failed_lookup_does_not_send_again(void **state) {
  fixture *f = *state;
  start(f, "1");
  write_atomic(f->faults, "{\"13800000052\": [\"lost\"]}");
  send_letter(f, "13800000052", "张*明", "10");
  run_idle_ok(f);
  assert_int_equal(accepted(f, "13800000052"), 1);
  int sends = requests(f, "SendSms", "13800000052");
  mock_stop(f); /* nothing answers now: the lookup cannot work */
  wait_until_due(f);
  run_idle_ok(f);
  char *row = row_of(f, "13800000052");
  if (strncmp(row, "failed ", 7) != 0 || !tu_contains(row, "cannot tell"))
    fail_msg("after a failed lookup: '%s'", row);
  free(row);
  assert_int_equal(sends, 1);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state IN "
                          "('sent', 'delivered')"),
                   0);
}

/* One guardian with two children: the same text twice to one number goes
** in two requests, and each message gets its own receipt. */
static void one_number_twice_goes_in_two_requests(void **state) {
  fixture *f = *state;
  start(f, "1");
  tu_run r = yz(f, "send", "--to", "13800000071", "--template", "letter",
                "--params", "child=张*明,month=10", "--key", "twin:1");
  tu_run_free(&r);
  r = yz(f, "send", "--to", "13800000071", "--template", "letter", "--params",
         "child=张*明,month=10", "--key", "twin:2");
  tu_run_free(&r);
  send_letter(f, "13800000072", "张*明", "10");
  run_idle_ok(f);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state = "
                          "'delivered'"),
                   3);
  assert_int_equal(db_int(f,
                          "SELECT count(DISTINCT gateway_id || recipient) "
                          "FROM yz_outbox"),
                   3);
  assert_int_equal(requests(f, "SendSms", "13800000071"), 2);
  assert_int_equal(accepted(f, "13800000071"), 2);
}

/* Receipts asked for with a wrong secret: the channel is paused after one
** request, and the run says so and exits 1. */
static void a_wrong_secret_on_receipts_pauses_too(void **state) {
  fixture *f = *state;
  start(f, "1");
  char rc[128];
  snprintf(rc, sizeof rc, "{\"13800000091\": \"none\"}");
  write_atomic(f->rcpts, rc);
  send_letter(f, "13800000091", "张*明", "10");
  run_idle_ok(f);
  expect_msg(f, "13800000091", "sent", 1, NULL);
  int before = requests(f, f->pv->receipts, NULL);
  setenv(f->pv->secret_env, "wrong", 1);
  tu_run r = run_idle(f, 1);
  if (!tu_contains(r.err, "paused") || !tu_contains(r.err, "signature"))
    fail_msg("no pause said:\n%s", r.err);
  tu_run_free(&r);
  assert_int_equal(requests(f, f->pv->receipts, NULL) - before, 1);
  expect_msg(f, "13800000091", "sent", 1, NULL);
}

/* The same for a batch: its retry must not send the numbers again. */
static void a_lost_batch_is_looked_up_not_sent_again(void **state) {
  fixture *f = *state;
  start(f, "1");
  write_atomic(f->faults, "{\"13800000061\": [\"lost\"]}");
  send_letter(f, "13800000061", "张*明", "10");
  send_letter(f, "13800000062", "张*明", "10");
  run_idle_ok(f);
  assert_int_equal(requests(f, "SendSms", NULL), 1);
  assert_int_equal(accepted(f, "13800000061"), 1);
  assert_int_equal(accepted(f, "13800000062"), 1);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state IN "
                          "('failed', 'queued')"),
                   2);

  wait_until_due(f);
  run_idle_ok(f);
  assert_int_equal(db_int(f,
                          "SELECT count(*) FROM yz_outbox WHERE state IN "
                          "('sent', 'delivered')"),
                   2);
  int a = accepted(f, "13800000061"), b = accepted(f, "13800000062");
  if (a != 1 || b != 1)
    fail_msg(
        "a batch whose answer was lost went again: the provider took "
        "13800000061 %d times and 13800000062 %d times (each SMS arrives "
        "that often)",
        a, b);
}

static void a_5xx_is_retried(void **state) {
  fixture *f = *state;
  start(f, "1");
  write_atomic(f->faults, "{\"13800000071\": [\"http500\", \"ok\"]}");
  send_letter(f, "13800000071", "张*明", "10");
  run_idle_ok(f);
  expect_msg(f, "13800000071", "failed", 1, "InternalError");
  assert_int_equal(accepted(f, "13800000071"), 0);
  wait_until_due(f);
  run_idle_ok(f);
  expect_msg(f, "13800000071", "delivered", 2, NULL);
  assert_int_equal(accepted(f, "13800000071"), 1);
  assert_int_equal(stat_of(f, "rejected", "http500"), 1);
}

static void an_empty_balance_waits_and_alerts(void **state) {
  fixture *f = *state;
  start(f, "1");
  char faults[256];
  snprintf(faults, sizeof faults, "{\"13800000081\": \"%s\"}", f->pv->balance);
  write_atomic(f->faults, faults);
  send_letter(f, "13800000081", "张*明", "10");
  tu_run r = run_idle(f, 0);
  if (lines_with(r.err, "level=error", f->pv->alert_word) < 1)
    fail_msg("no error line about the %s in:\n%s", f->pv->alert_word, r.err);
  assert_true(tu_contains(r.err, f->pv->balance));
  tu_run_free(&r);
  expect_msg(f, "13800000081", "failed", 0, f->pv->balance);
  /* It waits long (topping up takes a person), not a second. */
  int64_t next = db_int(f,
                        "SELECT next_at FROM yz_outbox WHERE recipient = "
                        "'+8613800000081'");
  assert_true((double)next > wall_ms() + 600 * 1000.0);
  assert_int_equal(accepted(f, "13800000081"), 0);
}

/* ------------------------------------------------------------ config */

/* 'yizhan check' exits 1 with 'needle' (and 'also', unless NULL) on
** stderr. */
static void check_fails(fixture *f, const char *needle, const char *also) {
  tu_run r = yz(f, "check");
  if (r.status != 1) fprintf(stderr, "check: %s%s\n", r.out, r.err);
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, needle));
  if (also) assert_true(tu_contains(r.err, also));
  tu_run_free(&r);
}

static void check_passes(fixture *f) {
  tu_run r = yz(f, "check");
  if (r.status != 0) fprintf(stderr, "check: %s%s\n", r.out, r.err);
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
}

static void config_a_template_missing_from_the_channel_is_named(void **state) {
  fixture *f = *state;
  write_config(f, 9, NULL, "");
  check_passes(f);
  write_config(f, 9, NULL, "notice = \"{{child}}家长您好\",");
  check_fails(f, "'notice'", "has no entry");
}

static void config_a_literal_secret_is_refused(void **state) {
  fixture *f = *state;
  const char *key = f->pv->tencent ? "secret_key" : "access_key_secret";
  write_config(f, 9, "\"testSecret\"", "");
  check_fails(f, "a secret must come from the environment", key);
  write_config(f, 9, "12345678", ""); /* not a string either */
  check_fails(f, "a secret must come from the environment", key);
}

static void config_free_text_is_refused(void **state) {
  fixture *f = *state;
  write_config(f, 9, NULL, "");
  tu_run r = yz(f, "send", "--to", "13800000091", "--text", "hi");
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "sends only templates"));
  tu_run_free(&r);
  r = yz(f, "send", "--to", "13800000091", "--channel", f->pv->name, "--text",
         "hi");
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "sends only templates"));
  tu_run_free(&r);
  assert_int_equal(db_int(f, "SELECT count(*) FROM yz_outbox"), 0);
}

static void config_an_unknown_parameter_is_named(void **state) {
  fixture *f = *state;
  write_config(f, 9, NULL, "");
  tu_run r = yz(f, "send", "--to", "13800000092", "--template", "letter",
                "--params", "child=张*明,month=10,grade=3");
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "grade"));
  tu_run_free(&r);
  assert_int_equal(db_int(f, "SELECT count(*) FROM yz_outbox"), 0);
}

/* ------------------------------------------------------------ crash */

static void a_daemon_killed_mid_request_delivers_once(void **state) {
  fixture *f = *state;
  start(f, "30");
  write_atomic(f->faults, "{\"13800000101\": \"hang\"}");
  send_letter(f, "13800000101", "张*明", "10");
  char dlog[4300];
  snprintf(dlog, sizeof dlog, "%s/daemon.log", f->run);
  f->daemon =
      tu_yizhan_start((const char *[]){"-d", f->dir, "run", NULL}, dlog);
  double t0 = tu_now_s();
  while (requests(f, "SendSms", "13800000101") == 0) {
    if (tu_now_s() - t0 > 10) {
      char *text = tu_read(dlog);
      fail_msg("the daemon sent nothing in 10 s:\n%s", text ? text : "");
    }
    tu_sleep_ms(20);
  }
  kill(f->daemon, SIGKILL);
  waitpid(f->daemon, NULL, 0);
  f->daemon = 0;
  expect_msg(f, "13800000101", "sending", 1, NULL);

  write_atomic(f->faults, "{\"13800000101\": \"ok\"}");
  /* The next second: the Tencent mock refuses a signature it has seen (a
  ** replay), and the same body in the same second signs the same. */
  tu_sleep_ms(1100);
  run_idle_ok(f);
  char *row = row_of(f, "13800000101");
  if (strncmp(row, "delivered ", 10) != 0)
    fail_msg("after the crash: '%s' (expected delivered)", row);
  free(row);
  assert_int_equal(db_int(f, "SELECT in_doubt FROM yz_outbox"), 1);
  assert_int_equal(stat_of(f, "rejected", "hang"), 1);
  assert_int_equal(accepted(f, "13800000101"), 1);
  /* In doubt, it was looked up before it went again. */
  cJSON *all = mock_log(f);
  int looked = 0, order_ok = 0, sends = 0;
  const cJSON *req;
  cJSON_ArrayForEach(req, all) {
    const char *action = str_of(req, "action");
    if (!strcmp(action, f->pv->lookup) && sends == 1) looked = 1;
    if (!strcmp(action, "SendSms") && ++sends == 2) order_ok = looked;
  }
  cJSON_Delete(all);
  assert_int_equal(sends, 2);
  assert_true(order_ok);
}

/* ------------------------------------------------------------ runner */

/* A case for one provider (its fixture's initial state), and for both. */
#define ONE(pv, fn) \
  { #pv ": " #fn, fn, setup, teardown, (void *)&pv }
#define BOTH(fn) ONE(ALIYUN, fn), ONE(TENCENT, fn)

int main(void) {
  setenv("YIZHAN_SHIPPED_PLUGINS", YZ_SOURCE_DIR "/plugins", 0);
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      BOTH(three_messages_alike_go_in_one_request_and_all_four_are_delivered),
      BOTH(a_failed_receipt_makes_the_message_dead),
      BOTH(flow_control_waits_limit_delay_then_delivers),
      BOTH(a_daily_limit_waits_for_midnight_in_china),
      BOTH(a_refused_number_is_dead_and_its_batch_still_goes),
      BOTH(a_wrong_secret_pauses_the_channel_with_one_request),
      BOTH(a_skewed_clock_pauses_the_channel_naming_the_clock),
      BOTH(an_unknown_key_id_pauses_the_channel),
      BOTH(send_wait_is_a_quick_live_test),
      BOTH(one_number_twice_goes_in_two_requests),
      BOTH(a_wrong_secret_on_receipts_pauses_too),
      BOTH(a_failed_lookup_does_not_send_again),
      BOTH(a_lost_answer_is_looked_up_not_sent_again),
      BOTH(a_lost_batch_is_looked_up_not_sent_again),
      BOTH(a_5xx_is_retried),
      BOTH(an_empty_balance_waits_and_alerts),
      BOTH(config_a_template_missing_from_the_channel_is_named),
      BOTH(config_a_literal_secret_is_refused),
      BOTH(config_free_text_is_refused),
      BOTH(config_an_unknown_parameter_is_named),
      BOTH(a_daemon_killed_mid_request_delivers_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
