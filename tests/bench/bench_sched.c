/*
** bench_sched.c: the scheduler's costs, each next to a peer measured in the
** same run:
**
**   next-fire computations per second      vs  glibc localtime_r calls
**   start-up with 100,000 persistent jobs  vs  inserting 100,000 rows into
**                                              SQLite one statement each
**   due no-op jobs fired per second        vs  the same inserts
**
** Usage: bench_sched [JOBS]  (default 100000)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "host.h"
#include "spec.h"
#include "testutil.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_next(void) {
  static const struct {
    const char *spec;
    const char *tz;
  } cases[] = {{"0 9 1 * *", "Asia/Shanghai"},
               {"*/15 * * * *", "Asia/Shanghai"},
               {"0 0 29 2 *", "Asia/Shanghai"},
               {"30 2 * * *", "America/New_York"},
               {"every 15m", "Asia/Shanghai"}};
  /* The peer: one local-time conversion through glibc. */
  setenv("TZ", "Asia/Shanghai", 1);
  tzset();
  const long peer_n = 2000000;
  volatile long sink = 0;
  double t0 = now_s();
  for (long i = 0; i < peer_n; i++) {
    time_t t = 1795000000 + i * 60;
    struct tm tm;
    localtime_r(&t, &tm);
    sink += tm.tm_min;
  }
  double peer_ns = (now_s() - t0) / (double)peer_n * 1e9;
  printf("glibc localtime_r: %.0f ns per call (the peer)\n", peer_ns);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    yz_spec *s;
    char err[256];
    if (yz_spec_parse(cases[c].spec, NULL, &s, err, sizeof err) != YZ_OK) {
      fprintf(stderr, "%s\n", err);
      exit(1);
    }
    const long n = 200000;
    int64_t t = 1795000000;
    t0 = now_s();
    for (long i = 0; i < n; i++) {
      int64_t next;
      if (yz_spec_next(s, cases[c].tz, t, &next) != YZ_OK) break;
      t = next;
    }
    double ns = (now_s() - t0) / (double)n * 1e9;
    printf(
        "next fire of %-14s in %-16s: %8.0f ns (%.0f per second; "
        "%.1fx a localtime_r)\n",
        cases[c].spec, cases[c].tz, ns, 1e9 / ns, ns / peer_ns);
    yz_spec_free(s);
  }
  (void)sink;
}

static void bench_jobs(long jobs) {
  char config[256];
  snprintf(config, sizeof config,
           "plugins = { many = {} }\n"
           "limits = { instructions = 100000000000, memory_mb = 1024 }\n");
  char *dir = tu_datadir(config);
  char plugin[1024];
  snprintf(plugin, sizeof plugin,
           "return { name = 'many', version = '1.0.0',\n"
           "  setup = function(host)\n"
           "    local n = 0\n"
           "    local function work() n = n + 1 end\n"
           "    for i = 1, %ld do host.cron('job' .. i, '0 9 1 * *', work) "
           "end\n"
           "  end }\n",
           jobs);
  tu_write(dir, "plugins/many.lua", plugin);

  /* The peer: the same number of rows, one autocommit INSERT each. */
  char peerdb[4200], err[512];
  snprintf(peerdb, sizeof peerdb, "%s/peer.db", dir);
  yz_store *ps;
  if (yz_store_open(&ps, peerdb, err, sizeof err) != YZ_OK) exit(1);
  yz_store_exec_script(
      ps, NULL,
      "CREATE TABLE t(plugin TEXT, name TEXT, spec TEXT, "
      "due INTEGER, PRIMARY KEY (plugin, name)) WITHOUT ROWID");
  double t0 = now_s();
  for (long i = 0; i < jobs; i++) {
    char name[32];
    snprintf(name, sizeof name, "job%ld", i);
    yz_value v[4] = {{.type = YZ_TEXT, .s = "many", .n = 4},
                     {.type = YZ_TEXT, .s = name, .n = strlen(name)},
                     {.type = YZ_TEXT, .s = "0 9 1 * *", .n = 9},
                     {.type = YZ_INT, .i = i}};
    yz_store_exec(ps, NULL, "INSERT INTO t VALUES (?, ?, ?, ?)", v, 4);
  }
  double peer = now_s() - t0;
  yz_store_close(ps);
  printf("peer: %ld single-statement SQLite inserts: %.2f s\n", jobs, peer);

  for (int round = 0; round < 2; round++) {
    t0 = now_s();
    yz_host *h = tu_host(dir);
    /* 2026-11-01 08:59:00 +08:00 */
    yz_clock_simulate(&h->clock, 1793494740000LL);
    if (yz_host_start(h) != YZ_OK) {
      fprintf(stderr, "bench: the plugin did not start\n");
      exit(1);
    }
    double start = now_s() - t0;
    printf("start-up with %ld jobs (%s): %.2f s; %.2fx the peer\n", jobs,
           round ? "already in the database" : "first time", start,
           start / peer);
    if (round == 1) {
      /* All due at 09:00: fire them, each a no-op. */
      yz_clock_advance(&h->clock, 60 * 1000);
      t0 = now_s();
      while (yz_host_tick(h) == 0 || yz_tasks_count(h) > 0) {
      }
      double fire = now_s() - t0;
      printf(
          "fired %ld due no-op jobs in %.2f s: %.0f per second; %.2fx "
          "the peer's time\n",
          jobs, fire, (double)jobs / fire, fire / peer);
    }
    yz_host_close(h);
  }
  tu_rmrf(dir);
  free(dir);
}

int main(int argc, char **argv) {
  long jobs = argc > 1 ? atol(argv[1]) : 100000;
  bench_next();
  bench_jobs(jobs);
  return 0;
}
