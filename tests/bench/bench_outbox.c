/*
** bench_outbox.c: the monthly run end to end, next to two peers measured in
** the same run against the same loopback gateway (nginx answering 200):
**
**   N guardians, one templated Chinese message each, queued by a plugin
**   ('yizhan eval guardians monthly(...)') and delivered over HTTP by
**   'yizhan run --until-idle', every state change durable:
**     messages/s queued, delivered and end to end, peak RSS
**   vs  a bare libcurl multi client (up to 128 transfers at once, kept-alive
**       connections, no storage): the ceiling of this machine and gateway
**   vs  a school IT person's shell loop: sqlite3 to read the rows, then per
**       message one curl and one sqlite3 UPDATE (M = 1,000 rows: it is slow)
**
** The machines are shared and noisy: compare the ratios between runs, and
** look at the load averages printed at the start and the end.
**
** Usage: bench_outbox [--max-in-flight K] [--yizhan PATH] [--perf DIR]
**                     [--no-shell] [N...]
**   N                 guardians per round (default: 20000 100000)
**   --max-in-flight   the channel's max_in_flight (default 64: of 32, 64,
**                     128 and 256 on the 2-core machine none was better
**                     beyond the noise, and the core opens at most 64
**                     connections per host, so more only queue in libcurl)
**   --perf DIR        run the delivering process under 'perf record -g' and
**                     keep DIR/deliver-N.perf.data (its figures are then
**                     perturbed by perf)
**   --no-shell        skip the shell loop (for sweeps of the other figures)
**
** nginx (/usr/sbin/nginx, Debian's nginx-light) runs from a private config in
** a scratch folder and is stopped by its pid.
*/
#define _DEFAULT_SOURCE /* getloadavg, wait4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "testutil.h"

#define NGINX "/usr/sbin/nginx"
#define PERIOD "2026-11"
#define SHELL_ROWS 1000   /* the shell loop's M */
#define CURL_PARALLEL 128 /* the bare client's transfers at once */

static const char *yizhan_bin = YZ_TEST_BINARY;
static pid_t nginx_pid = -1;
static char *nginx_dir = NULL;
static char *scratch[8];
static int nscratch = 0;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_outbox: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* ---- cleanup: every process and folder this program made ---- */

static void stop_nginx(void) {
  if (nginx_pid <= 0) return;
  kill(nginx_pid, SIGTERM);
  int st;
  waitpid(nginx_pid, &st, 0);
  nginx_pid = -1;
}

static void cleanup(void) {
  stop_nginx();
  for (int i = 0; i < nscratch; i++) {
    tu_rmrf(scratch[i]);
    free(scratch[i]);
  }
  nscratch = 0;
}

static volatile sig_atomic_t child_pid = -1;

static void on_signal(int sig) {
  /* Stop the children; the folders are left for the exit path to remove. */
  if (child_pid > 0) kill(child_pid, SIGTERM);
  if (nginx_pid > 0) kill(nginx_pid, SIGTERM);
  signal(sig, SIG_DFL);
  raise(sig);
}

static char *scratch_dir(void) {
  char *d = tu_tmpdir();
  if (nscratch < (int)(sizeof scratch / sizeof scratch[0]))
    scratch[nscratch++] = strdup(d);
  return d;
}

static void forget_scratch(const char *d) {
  for (int i = 0; i < nscratch; i++)
    if (strcmp(scratch[i], d) == 0) {
      tu_rmrf(scratch[i]);
      free(scratch[i]);
      scratch[i] = scratch[--nscratch];
      return;
    }
}

/* ---- child processes: wall time and peak RSS through wait4 ---- */

typedef struct child {
  double wall; /* seconds */
  long maxrss; /* KiB, ru_maxrss of the process (and its waited-for kids) */
  double cpu;  /* user + system seconds */
  int status;  /* exit status, or 128+signal */
} child;

/* Runs argv with stdin from /dev/null, stdout to 'out' and stderr to 'err'
** (NULL: /dev/null). */
static child run_child(char *const argv[], const char *out, const char *err) {
  child c = {0, 0, 0, -1};
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || o < 0 || e < 0) _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  child_pid = pid;
  int st;
  struct rusage ru;
  while (wait4(pid, &st, 0, &ru) < 0)
    if (errno != EINTR) die("wait4: %s", strerror(errno));
  child_pid = -1;
  c.wall = now_s() - t0;
  c.maxrss = ru.ru_maxrss;
  c.cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return c;
}

static void show_tail(const char *path) {
  char *text = tu_read(path);
  if (!text) return;
  size_t len = strlen(text);
  fprintf(stderr, "--- %s (last 2000 bytes) ---\n%s\n", path,
          len > 2000 ? text + len - 2000 : text);
  free(text);
}

/* ---- nginx ---- */

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0)
    die("cannot find a free port: %s", strerror(errno));
  close(s);
  return ntohs(a.sin_port);
}

static size_t keep_body(char *p, size_t size, size_t n, void *ud) {
  yz_buf *b = ud;
  yz_buf_add(b, p, size * n);
  return size * n;
}

/* GETs url; returns the HTTP status (0 on a connection error), the body in
** 'body' when not NULL. */
static long http_get(const char *url, yz_buf *body) {
  CURL *e = curl_easy_init();
  yz_buf sink;
  yz_buf_init(&sink, 4096);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, body ? body : &sink);
  long status = 0;
  if (curl_easy_perform(e) == CURLE_OK)
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  yz_buf_free(&sink);
  return status;
}

static int start_nginx(void) {
  nginx_dir = scratch_dir();
  int port = free_port();
  char conf[4096];
  snprintf(conf, sizeof conf,
           "daemon off;\n"
           "worker_processes 1;\n"
           "pid %s/nginx.pid;\n"
           "error_log %s/error.log;\n"
           "events { worker_connections 4096; }\n"
           "http {\n"
           "  access_log off;\n"
           "  client_body_temp_path %s/client_body;\n"
           "  proxy_temp_path %s/proxy;\n"
           "  fastcgi_temp_path %s/fastcgi;\n"
           "  uwsgi_temp_path %s/uwsgi;\n"
           "  scgi_temp_path %s/scgi;\n"
           "  keepalive_requests 1000000;\n"
           "  server {\n"
           "    listen 127.0.0.1:%d;\n"
           "    location = /nginx_status { stub_status; }\n"
           "    location / {\n"
           "      default_type application/json;\n"
           "      return 200 '{\"code\":0,\"msgid\":\"x\"}';\n"
           "    }\n"
           "  }\n"
           "}\n",
           nginx_dir, nginx_dir, nginx_dir, nginx_dir, nginx_dir, nginx_dir,
           nginx_dir, port);
  tu_write(nginx_dir, "nginx.conf", conf);
  char confpath[1024], errpath[1024];
  snprintf(confpath, sizeof confpath, "%s/nginx.conf", nginx_dir);
  snprintf(errpath, sizeof errpath, "%s/error.log", nginx_dir);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    int e = open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(null, 0);
    dup2(null, 1);
    dup2(e, 2);
    execl(NGINX, NGINX, "-p", nginx_dir, "-e", errpath, "-c", confpath,
          (char *)NULL);
    _exit(127);
  }
  nginx_pid = pid;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  for (int i = 0; i < 200; i++) {
    if (http_get(url, NULL) == 200) return port;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      nginx_pid = -1;
      show_tail(errpath);
      die("nginx exited at start");
    }
    struct timespec ts = {0, 25 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  show_tail(errpath);
  die("nginx did not answer on port %d", port);
  return 0;
}

/* The connections nginx has accepted and the requests it has served so
** far (its stub_status); -1 when it cannot tell. */
static void nginx_counts(int port, long *accepts, long *requests) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/nginx_status", port);
  yz_buf b;
  yz_buf_init(&b, 4096);
  *accepts = *requests = -1;
  if (http_get(url, &b) == 200) {
    /* "Active connections: 1 \nserver accepts handled requests\n A H R \n" */
    long acc, han, req;
    const char *p = strstr(yz_buf_str(&b), "requests\n");
    if (p && sscanf(p + 9, "%ld %ld %ld", &acc, &han, &req) == 3) {
      *accepts = acc;
      *requests = req;
    }
  }
  yz_buf_free(&b);
}

/* ---- the guardians and their data directory ---- */

static const char *const plugin_src =
    "-- bench_outbox: the county's guardians and their monthly letter.\n"
    "-- luacheck: globals monthly\n"
    "return {\n"
    "  name = 'guardians', version = '1.0.0',\n"
    "  description = 'bench: one letter reminder per guardian',\n"
    "  owns = { 'guardians' },\n"
    "  access = { send = true },\n"
    "  migrations = {\n"
    "    'CREATE TABLE guardians(id INTEGER PRIMARY KEY, child TEXT, "
    "guardian TEXT, phone TEXT)',\n"
    "  },\n"
    "  setup = function(host)\n"
    "    function monthly(period)\n"
    "      for row in host.db.rows(\"SELECT id, child, guardian, phone FROM "
    "guardians\") do\n"
    "        host.send{ to = row.phone, key = \"letter:\" .. row.id .. \":\" "
    ".. period,\n"
    "          text = (\"%s您好：本月请提醒%s给在外务工的父母写一封信或打一个电"
    "话。——县教育局\"):format(row.guardian, row.child) }\n"
    "      end\n"
    "    end\n"
    "  end,\n"
    "}\n";

/* Chinese names from the commonest surnames and given-name characters;
** phones 138 followed by the id in 8 digits. */
static const char *const fill_fmt =
    "local S = { '王','李','张','刘','陈','杨','黄','赵','吴','周',"
    "'徐','孙','马','朱','胡','郭','何','高','林','罗' } "
    "local G = { '伟','芳','娜','敏','静','丽','强','磊','军','洋',"
    "'勇','艳','杰','娟','涛','明','超','秀','霞','平','华','玉','英','兰' } "
    "host.db.tx(function() "
    "  for i = 1, %ld do "
    "    local s = S[i %% #S + 1] "
    "    local guardian = s .. G[(i // #S) %% #G + 1] .. "
    "G[(i * 7 + 3) %% #G + 1] "
    "    local child = s .. '小' .. G[(i * 13 + 5) %% #G + 1] "
    "    host.db.exec('INSERT INTO guardians(id, child, guardian, phone) "
    "VALUES (?, ?, ?, ?)', i, child, guardian, ('138%%08d'):format(i)) "
    "  end "
    "end) "
    "return host.db.one('SELECT count(*) AS n FROM guardians').n";

static char *make_datadir(int port, int max_in_flight) {
  char conf[2048];
  snprintf(conf, sizeof conf,
           "quiet_hours = false\n"
           "channels = { gw = { type = \"http\", url = "
           "\"http://127.0.0.1:%d/send\", body = { to = \"{{to}}\", text = "
           "\"{{text}}\", key = \"{{key}}\" }, ok_when = { status = 200, json "
           "= { code = 0 } }, daily_cap = false, max_in_flight = %d } }\n"
           "plugins = { guardians = {} }\n",
           port, max_in_flight);
  char *d = tu_datadir(conf);
  if (nscratch < (int)(sizeof scratch / sizeof scratch[0]))
    scratch[nscratch++] = strdup(d);
  tu_write(d, "plugins/guardians.lua", plugin_src);
  return d;
}

static child yizhan(const char *dir, const char *out, char *const *args) {
  char *argv[16];
  int n = 0;
  argv[n++] = (char *)yizhan_bin;
  argv[n++] = "-d";
  argv[n++] = (char *)dir;
  for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
  char err[1024];
  snprintf(err, sizeof err, "%s/stderr.log", dir);
  return run_child(argv, out, err);
}

static void must(child c, const char *what, const char *dir, const char *out) {
  if (c.status == 0) return;
  char err[1024];
  snprintf(err, sizeof err, "%s/stderr.log", dir);
  if (out) show_tail(out);
  show_tail(err);
  die("%s failed with status %d", what, c.status);
}

/* Messages by state from 'yizhan outbox stats --json'. */
static void outbox_counts(const char *dir, long *sent, long *total) {
  char out[1024];
  snprintf(out, sizeof out, "%s/stats.json", dir);
  char *args[] = {"outbox", "stats", "--json", NULL};
  must(yizhan(dir, out, args), "yizhan outbox stats", dir, out);
  char *text = tu_read(out);
  *sent = *total = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    cJSON *j = cJSON_Parse(line);
    if (!j) die("outbox stats: not JSON: %s", line);
    const cJSON *st = cJSON_GetObjectItem(j, "state");
    const cJSON *n = cJSON_GetObjectItem(j, "messages");
    if (cJSON_IsNumber(n)) {
      *total += (long)n->valuedouble;
      if (cJSON_IsString(st) && strcmp(st->valuestring, "sent") == 0)
        *sent += (long)n->valuedouble;
    }
    cJSON_Delete(j);
  }
  free(text);
}

/* ---- the bodies the http channel sends, for the bare client ---- */

static char **read_bodies(const char *dir, long n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/yizhan.db", dir);
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    die("cannot open %s", path);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT id, child, guardian, phone FROM guardians "
                         "ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    die("%s", sqlite3_errmsg(db));
  char **bodies = calloc((size_t)n, sizeof *bodies);
  long i = 0;
  while (i < n && sqlite3_step(st) == SQLITE_ROW) {
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"key\":\"letter:%lld:" PERIOD
             "\",\"text\":\"%s您好：本月请提醒%s给在外务工的父母写一封信或打"
             "一个电话。——县教育局\",\"to\":\"+86%s\"}",
             (long long)sqlite3_column_int64(st, 0),
             (const char *)sqlite3_column_text(st, 2),
             (const char *)sqlite3_column_text(st, 1),
             (const char *)sqlite3_column_text(st, 3));
    bodies[i++] = strdup(buf);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (i != n) die("guardians: %ld rows, expected %ld", i, n);
  return bodies;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

/* N POSTs through one multi handle, CURL_PARALLEL at once, connections
** kept alive; returns the seconds taken. */
static double bare_curl(int port, char **bodies, long n) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/send", port);
  struct curl_slist *hdr =
      curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CURL_PARALLEL);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)CURL_PARALLEL);
  CURL *pool[CURL_PARALLEL];
  long next = 0, done = 0, bad = 0;
  double t0 = now_s();
  for (int i = 0; i < CURL_PARALLEL; i++) {
    pool[i] = curl_easy_init();
    curl_easy_setopt(pool[i], CURLOPT_URL, url);
    curl_easy_setopt(pool[i], CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(pool[i], CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(pool[i], CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(pool[i], CURLOPT_TIMEOUT_MS, 15000L);
    if (next < n) {
      curl_easy_setopt(pool[i], CURLOPT_POSTFIELDS, bodies[next++]);
      curl_multi_add_handle(m, pool[i]);
    }
  }
  int running = 1;
  while (done < n) {
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result != CURLE_OK || status != 200) bad++;
      done++;
      curl_multi_remove_handle(m, e);
      if (next < n) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[next++]);
        curl_multi_add_handle(m, e);
      }
    }
    if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
  }
  double t = now_s() - t0;
  for (int i = 0; i < CURL_PARALLEL; i++) curl_easy_cleanup(pool[i]);
  curl_multi_cleanup(m);
  curl_slist_free_all(hdr);
  if (bad) die("bare curl: %ld of %ld requests failed", bad, n);
  return t;
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- the shell loop ---- */

static const char *const shell_src =
    "set -u\n"
    "db=$1 url=$2\n"
    "rows=$(sqlite3 -separator $'\\t' \"$db\" "
    "\"SELECT id, guardian, child, phone FROM guardians\")\n"
    "while IFS=$'\\t' read -r id guardian child phone; do\n"
    "  text=\"${guardian}您好：本月请提醒${child}给在外务工的父母写一封信或打"
    "一个电话。——县教育局\"\n"
    "  json=\"{\\\"to\\\":\\\"+86${phone}\\\",\\\"text\\\":\\\"${text}\\\","
    "\\\"key\\\":\\\"letter:${id}:" PERIOD
    "\\\"}\"\n"
    "  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "
    "-H 'Content-Type: application/json' --data-binary \"$json\" \"$url\")\n"
    "  if [ \"$code\" = 200 ]; then\n"
    "    sqlite3 \"$db\" \"UPDATE guardians SET sent_at = datetime('now') "
    "WHERE id = $id\"\n"
    "  else\n"
    "    echo \"row $id: HTTP $code\" >&2\n"
    "  fi\n"
    "done <<< \"$rows\"\n";

/* The first 'm' guardians of 'dir' in a small SQLite file of their own,
** sent to by the shell loop; returns its seconds. */
static double shell_loop(const char *dir, int port, long m) {
  char *sd = scratch_dir();
  char db[1024], src[1024], script[1024], url[128], err[1024];
  snprintf(db, sizeof db, "%s/school.db", sd);
  snprintf(src, sizeof src, "%s/yizhan.db", dir);
  snprintf(script, sizeof script, "%s/send.sh", sd);
  snprintf(err, sizeof err, "%s/stderr.log", sd);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/send", port);
  tu_write(sd, "send.sh", shell_src);
  sqlite3 *h;
  if (sqlite3_open(db, &h) != SQLITE_OK) die("cannot create %s", db);
  char *sql = sqlite3_mprintf(
      "ATTACH %Q AS y;"
      "CREATE TABLE guardians(id INTEGER PRIMARY KEY, child TEXT, guardian "
      "TEXT, phone TEXT, sent_at TEXT);"
      "INSERT INTO guardians(id, child, guardian, phone) SELECT id, child, "
      "guardian, phone FROM y.guardians ORDER BY id LIMIT %ld;"
      "DETACH y;",
      src, m);
  char *msg = NULL;
  if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) die("%s", msg);
  sqlite3_free(sql);
  sqlite3_close(h);

  char *argv[] = {"bash", script, db, url, NULL};
  child c = run_child(argv, NULL, err);
  if (c.status != 0) {
    show_tail(err);
    die("the shell loop failed with status %d", c.status);
  }
  sqlite3_open(db, &h);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(h,
                     "SELECT count(*) FROM guardians WHERE sent_at IS NOT NULL",
                     -1, &st, NULL);
  long sent =
      sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  sqlite3_close(h);
  if (sent != m) {
    show_tail(err);
    die("the shell loop marked %ld of %ld rows sent", sent, m);
  }
  forget_scratch(sd);
  free(sd);
  return c.wall;
}

/* ---- one round ---- */

typedef struct round {
  long n;
  double fill, enq, del, bare;
  long enq_rss, del_rss;
  long served;     /* requests nginx served during the delivery */
  long conns;      /* connections it accepted meanwhile */
  long bare_conns; /* the same for the bare client */
  double del_cpu;  /* user + system seconds of the delivering process */
  double enq_cpu;  /* the same for the queueing process */
  double bare_cpu; /* the same for the bare client (this process) */
} round;

static round one_round(int port, long n, int mif, const char *perfdir) {
  round r = {n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  long acc0, req0, acc1, req1;
  char *dir = make_datadir(port, mif);
  char out[1024];
  snprintf(out, sizeof out, "%s/stdout.txt", dir);

  char code[4096];
  snprintf(code, sizeof code, fill_fmt, n);
  char *fill[] = {"eval", "guardians", code, NULL};
  child c = yizhan(dir, out, fill);
  must(c, "filling the guardians", dir, out);
  r.fill = c.wall;
  char *got = tu_read(out);
  if (!got || strtol(got, NULL, 10) != n)
    die("the guardians table has %s rows, expected %ld", got ? got : "?", n);
  free(got);

  /* The ceiling first, on the same bodies. */
  char **bodies = read_bodies(dir, n);
  nginx_counts(port, &acc0, &req0);
  double cpu0 = self_cpu();
  r.bare = bare_curl(port, bodies, n);
  r.bare_cpu = self_cpu() - cpu0;
  nginx_counts(port, &acc1, &req1);
  /* Each status request is a connection of its own. */
  r.bare_conns = acc0 >= 0 && acc1 >= 0 ? acc1 - acc0 - 1 : -1;
  for (long i = 0; i < n; i++) free(bodies[i]);
  free(bodies);

  char *enq[] = {"eval", "guardians", "monthly(\"" PERIOD "\")", NULL};
  c = yizhan(dir, out, enq);
  must(c, "queueing (monthly)", dir, out);
  r.enq = c.wall;
  r.enq_rss = c.maxrss;
  r.enq_cpu = c.cpu;
  long sent, total;
  outbox_counts(dir, &sent, &total);
  if (total != n) die("queued %ld messages, expected %ld", total, n);

  nginx_counts(port, &acc0, &req0);
  if (perfdir) {
    char data[1024];
    snprintf(data, sizeof data, "%s/deliver-%ld.perf.data", perfdir, n);
    char *argv[] = {"perf", "record", "-g",  "-q",
                    "-o",   data,     "--",  (char *)yizhan_bin,
                    "-d",   dir,      "run", "--until-idle",
                    NULL};
    char err[1024];
    snprintf(err, sizeof err, "%s/stderr.log", dir);
    c = run_child(argv, out, err);
  } else {
    char *del[] = {"run", "--until-idle", NULL};
    c = yizhan(dir, out, del);
  }
  must(c, "delivering (run --until-idle)", dir, out);
  r.del = c.wall;
  r.del_rss = c.maxrss;
  r.del_cpu = c.cpu;
  nginx_counts(port, &acc1, &req1);
  /* The first status request is counted in the second counts. */
  r.served = req0 >= 0 && req1 >= 0 ? req1 - req0 - 1 : -1;
  r.conns = acc0 >= 0 && acc1 >= 0 ? acc1 - acc0 - 1 : -1;
  outbox_counts(dir, &sent, &total);
  if (sent != n || total != n)
    die("after delivery: %ld of %ld messages sent, expected %ld", sent, total,
        n);
  if (r.served >= 0 && r.served != n)
    fprintf(stderr,
            "bench_outbox: note: nginx served %ld requests during the "
            "delivery of %ld messages\n",
            r.served, n);
  forget_scratch(dir);
  free(dir);
  return r;
}

static void print_load(const char *when) {
  double l[3];
  if (getloadavg(l, 3) == 3)
    printf("load average %s: %.2f %.2f %.2f (%ld CPUs)\n", when, l[0], l[1],
           l[2], sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv) {
  long ns[16];
  int nn = 0, mif = 64;
  const char *perfdir = NULL;
  int no_shell = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--max-in-flight") == 0 && i + 1 < argc)
      mif = atoi(argv[++i]);
    else if (strcmp(argv[i], "--yizhan") == 0 && i + 1 < argc)
      yizhan_bin = argv[++i];
    else if (strcmp(argv[i], "--perf") == 0 && i + 1 < argc)
      perfdir = argv[++i];
    else if (strcmp(argv[i], "--no-shell") == 0)
      no_shell = 1;
    else if (argv[i][0] != '-' && nn < 16 && atol(argv[i]) > 0)
      ns[nn++] = atol(argv[i]);
    else {
      fprintf(stderr,
              "usage: bench_outbox [--max-in-flight K] [--yizhan PATH] "
              "[--perf DIR] [--no-shell] [N...]\n");
      return 2;
    }
  }
  if (nn == 0) {
    ns[nn++] = 20000;
    ns[nn++] = 100000;
  }
  if (mif <= 0) die("--max-in-flight must be positive");
  if (access(NGINX, X_OK) != 0) die("%s is not installed (nginx-light)", NGINX);

  atexit(cleanup);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);

  print_load("at start");
  int port = start_nginx();
  printf(
      "gateway: nginx on 127.0.0.1:%d; channel max_in_flight %d; bare "
      "client %d transfers at once\n",
      port, mif, CURL_PARALLEL);
  fflush(stdout);

  round rs[16];
  for (int i = 0; i < nn; i++) {
    rs[i] = one_round(port, ns[i], mif, perfdir);
    double dn = (double)rs[i].n;
    printf(
        "N=%ld: filled in %.2f s; queued in %.2f s (%.0f us CPU per "
        "message); delivered in %.2f s (%.0f us CPU per message; nginx "
        "served %ld requests on %ld new connections); bare curl %.2f s "
        "(%.0f us CPU per request; %ld new connections)\n",
        rs[i].n, rs[i].fill, rs[i].enq, rs[i].enq_cpu / dn * 1e6, rs[i].del,
        rs[i].del_cpu / dn * 1e6, rs[i].served, rs[i].conns, rs[i].bare,
        rs[i].bare_cpu / dn * 1e6, rs[i].bare_conns);
    fflush(stdout);
  }
  /* The shell loop on the first round's first M guardians, filled anew. */
  double shell_rate = 0;
  if (!no_shell) {
    double shell;
    char *dir = make_datadir(port, mif);
    char out[1024], code[4096];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    snprintf(code, sizeof code, fill_fmt, (long)SHELL_ROWS);
    char *fill[] = {"eval", "guardians", code, NULL};
    must(yizhan(dir, out, fill), "filling the guardians", dir, out);
    shell = shell_loop(dir, port, SHELL_ROWS);
    forget_scratch(dir);
    free(dir);
    shell_rate = SHELL_ROWS / shell;
    printf(
        "shell loop (bash, sqlite3 + curl per message): %d messages in "
        "%.2f s = %.0f msgs/s\n",
        SHELL_ROWS, shell, shell_rate);
  }
  printf("\n");

  printf("%8s %9s %9s %9s %9s %9s %8s %9s %9s %10s %10s\n", "N", "enq s",
         "enq m/s", "deliv s", "deliv m/s", "e2e m/s", "RSS MB", "curl m/s",
         "shell m/s", "deliv/curl", "e2e/shell");
  for (int i = 0; i < nn; i++) {
    round *r = &rs[i];
    double dn = (double)r->n;
    double e2e = dn / (r->enq + r->del), del = dn / r->del;
    double bare = dn / r->bare;
    printf("%8ld %9.2f %9.0f %9.2f %9.0f %9.0f %8.1f %9.0f ", r->n, r->enq,
           dn / r->enq, r->del, del, e2e, (double)r->del_rss / 1024.0, bare);
    if (shell_rate > 0)
      printf("%9.0f %9.2fx %9.0fx\n", shell_rate, del / bare, e2e / shell_rate);
    else
      printf("%9s %9.2fx %10s\n", "-", del / bare, "-");
  }
  printf(
      "\n(RSS: peak of the delivering 'yizhan run --until-idle'; queueing "
      "peaked at");
  for (int i = 0; i < nn; i++)
    printf(" %.1f MB (N=%ld)", (double)rs[i].enq_rss / 1024.0, rs[i].n);
  printf(". Target: delivery >= 10000 msgs/s.)\n");
  if (perfdir)
    printf(
        "(delivery ran under perf record: its figures are perturbed; "
        "profiles in %s)\n",
        perfdir);
  print_load("at end");
  return 0;
}
