/*
** bench_host.c: the host's own costs, each reported next to a peer measured
** in the same run (the machines are shared and noisy, so ratios are what to
** compare between runs):
**
**   start-up to ready with 5 plugins   vs  a bare 'lua5.4' process start
**   idle RSS of 'yizhan run'           vs  an idle 'lua5.4' process
**   a trivial Lua->host call (ns)      vs  a Lua->C library call (math.abs)
**                                      and a Lua->Lua function call
**   the sandbox's budgeted patterns    vs  stock Lua's string library
**
** Usage: bench_host [PATH-TO-yizhan]  (default: the build's binary)
*/
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "buf.h"
#include "host.h"
#include "testutil.h"

#define STARTS 15 /* start-ups measured per command */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

/* Starts argv with stderr on a pipe; returns the pid and the read end. */
static pid_t spawn(char *const argv[], int *errfd, int *infd) {
  int ep[2], ip[2];
  if (pipe(ep) != 0 || pipe(ip) != 0) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(ep[1], 2);
    dup2(ip[0], 0);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    close(ep[0]);
    close(ip[1]);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(ep[1]);
  close(ip[0]);
  *errfd = ep[0];
  *infd = ip[1];
  return pid;
}

/* Reads the child's stderr until 'needle' shows up. */
static int wait_for(int fd, const char *needle) {
  char buf[65536];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) return 0;
    len += (size_t)n;
    buf[len] = '\0';
    if (strstr(buf, needle)) return 1;
    if (len > sizeof buf - 1024) len = 0;
  }
}

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

static void stop(pid_t pid, int errfd, int infd) {
  kill(pid, SIGTERM);
  close(infd);
  int st;
  waitpid(pid, &st, 0);
  close(errfd);
}

static const char *const plugin_fmt =
    "return {\n"
    "  name = 'p%d', version = '1.0.0', description = 'bench plugin %d',\n"
    "  owns = { 't%d' }, options = { greeting = 'hi', every = 5 },\n"
    "  migrations = { 'CREATE TABLE t%d(id INTEGER PRIMARY KEY, v TEXT)',\n"
    "                 'CREATE INDEX t%d_v ON t%d(v)' },\n"
    "  setup = function(host, opts)\n"
    "    host.db.exec('INSERT INTO t%d(v) VALUES (?)', opts.greeting)\n"
    "    host.kv.put('started', { at = host.now(), n = %d })\n"
    "    host.log.debug('ready', { plugin = host.name })\n"
    "  end,\n"
    "}\n";

static char *bench_dir(void) {
  char *d = tu_datadir(
      "log_level = 'info'\n"
      "limits = { instructions = 100000000000 }\n"
      "plugins = { p1 = {}, p2 = {}, p3 = {}, p4 = {}, p5 = {} }\n");
  for (int i = 1; i <= 5; i++) {
    char name[64], text[2048];
    snprintf(name, sizeof name, "plugins/p%d.lua", i);
    snprintf(text, sizeof text, plugin_fmt, i, i, i, i, i, i, i, i);
    tu_write(d, name, text);
  }
  return d;
}

static double time_loop(yz_plugin *p, const char *body, long n) {
  char code[512];
  snprintf(code, sizeof code,
           "local f = function() return 1 end; local abs = math.abs; "
           "local now = host.now; local x = 0; "
           "for i = 1, %ld do %s end; return x",
           n, body);
  yz_buf out;
  yz_buf_init(&out, 1 << 16);
  double t0 = now_s();
  int rc = yz_plugin_eval(p, code, &out);
  double t = now_s() - t0;
  if (rc != YZ_OK) {
    fprintf(stderr, "bench: %s\n", yz_buf_str(&out));
    exit(1);
  }
  yz_buf_free(&out);
  return t;
}

int main(int argc, char **argv) {
  const char *bin = argc > 1 ? argv[1] : YZ_TEST_BINARY;
  char *dir = bench_dir();

  /* 1. Start-up to ready, 5 plugins (the first start also migrates). */
  double ys[STARTS], ls[STARTS];
  long yrss = 0, lrss = 0;
  for (int i = 0; i < STARTS; i++) {
    int efd, ifd;
    char *yargv[] = {(char *)bin, "-d", dir, "run", NULL};
    double t0 = now_s();
    pid_t pid = spawn(yargv, &efd, &ifd);
    if (!wait_for(efd, "msg=ready")) {
      fprintf(stderr, "bench: yizhan run did not become ready\n");
      return 1;
    }
    ys[i] = now_s() - t0;
    if (i == STARTS - 1) {
      struct timespec ts = {0, 300 * 1000 * 1000};
      nanosleep(&ts, NULL); /* let it settle into idle */
      yrss = rss_kb(pid);
    }
    stop(pid, efd, ifd);

    char *largv[] = {"lua5.4", "-e", "io.stderr:write('ready\\n') io.read()",
                     NULL};
    t0 = now_s();
    pid = spawn(largv, &efd, &ifd);
    if (!wait_for(efd, "ready")) {
      fprintf(stderr, "bench: lua5.4 did not start\n");
      return 1;
    }
    ls[i] = now_s() - t0;
    if (i == STARTS - 1) {
      struct timespec ts = {0, 300 * 1000 * 1000};
      nanosleep(&ts, NULL);
      lrss = rss_kb(pid);
    }
    stop(pid, efd, ifd);
  }
  double ymed = median(ys, STARTS), lmed = median(ls, STARTS);
  printf(
      "start-up to ready, 5 plugins: %.2f ms (median of %d); bare lua5.4 "
      "start: %.2f ms; ratio %.1fx\n",
      ymed * 1e3, STARTS, lmed * 1e3, ymed / lmed);
  printf("idle RSS: yizhan run %ld KiB; idle lua5.4 %ld KiB; ratio %.1fx\n",
         yrss, lrss, (double)yrss / (double)lrss);

  /* 2. A trivial Lua->host call, in process. */
  yz_host *h = tu_host(dir);
  if (yz_host_start(h) != YZ_OK) {
    for (int i = 0; i < h->nplugins; i++)
      fprintf(stderr, "bench: %s: %s %s\n", h->plugins[i]->name,
              yz_plugin_state_name(h->plugins[i]->state),
              h->plugins[i]->error ? h->plugins[i]->error : "");
    fprintf(stderr, "bench: plugins did not start\n");
    return 1;
  }
  yz_plugin *p = yz_plugin_find(h, "p1");
  const long n = 20000000;
  double empty = 1e9, host = 1e9, cfun = 1e9, lfun = 1e9;
  for (int round = 0; round < 5; round++) {
    double t;
    if ((t = time_loop(p, "x = x + 1", n)) < empty) empty = t;
    if ((t = time_loop(p, "x = x + now()", n)) < host) host = t;
    if ((t = time_loop(p, "x = x + abs(i)", n)) < cfun) cfun = t;
    if ((t = time_loop(p, "x = x + f()", n)) < lfun) lfun = t;
  }
  double host_ns = (host - empty) / (double)n * 1e9;
  double c_ns = (cfun - empty) / (double)n * 1e9;
  double l_ns = (lfun - empty) / (double)n * 1e9;
  printf(
      "Lua->host call host.now(): %.1f ns; Lua->C math.abs: %.1f ns "
      "(ratio %.2fx); Lua->Lua f(): %.1f ns (ratio %.2fx); best of 5 x %ld "
      "calls, loop overhead subtracted\n",
      host_ns, c_ns, host_ns / c_ns, l_ns, host_ns / l_ns, n);
  /* 3. Pattern matching: the sandbox's budgeted matcher vs stock Lua's. */
  const char *match_code =
      "local s, n = 'child 2026-11-28 guardian 138-0013-8000', 0 "
      "for i = 1, 2000000 do "
      "  local y, m, d = s:match('(%d+)-(%d+)-(%d+)') "
      "  if s:find('guardian', 1, true) then n = n + #y end "
      "  s:gsub('%s+', ' ') "
      "end return n";
  lua_State *stock = luaL_newstate();
  luaL_openlibs(stock);
  double mine_t = 1e9, stock_t = 1e9;
  for (int round = 0; round < 3; round++) {
    yz_buf out;
    yz_buf_init(&out, 1 << 16);
    double t0 = now_s();
    if (yz_plugin_eval(p, match_code, &out) != YZ_OK) {
      fprintf(stderr, "bench: %s\n", yz_buf_str(&out));
      return 1;
    }
    double t = now_s() - t0;
    if (t < mine_t) mine_t = t;
    yz_buf_free(&out);
    t0 = now_s();
    if (luaL_dostring(stock, match_code) != LUA_OK) {
      fprintf(stderr, "bench: %s\n", lua_tostring(stock, -1));
      return 1;
    }
    t = now_s() - t0;
    if (t < stock_t) stock_t = t;
    lua_settop(stock, 0);
  }
  lua_close(stock);
  printf(
      "pattern matching (match + plain find + gsub, 2M rounds): sandbox "
      "%.0f ms; stock Lua %.0f ms; ratio %.2fx\n",
      mine_t * 1e3, stock_t * 1e3, mine_t / stock_t);

  yz_host_close(h);
  tu_rmrf(dir);
  free(dir);
  return 0;
}
