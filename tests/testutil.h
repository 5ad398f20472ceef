/*
** testutil.h: helpers shared by the cmocka tests: scratch directories,
** files, a host on a scratch data directory, and running the yizhan binary
** as a child process.
*/
#ifndef YZ_TESTUTIL_H
#define YZ_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"
#include "host.h"

/* Creates a fresh scratch directory (removed by tu_rmrf) and returns it in
** a static buffer-free malloc'd string. */
char *tu_tmpdir(void);
/* Removes a directory tree. */
void tu_rmrf(const char *path);
/* Writes 'text' to dir/name (creating dir/plugins etc. as needed). */
void tu_write(const char *dir, const char *name, const char *text);
/* Reads a whole file into a malloc'd string (NULL if missing). */
char *tu_read(const char *path);
/* A data directory: dir/yizhan.conf.lua with 'config' (NULL: empty), and
** dir/plugins/. Returns the malloc'd directory path. */
char *tu_datadir(const char *config);
/* A data directory (no configuration yet) with a plugin 'bulk' that may
** send, for queuing many messages with 'yizhan eval bulk ...'. */
char *tu_bulk_datadir(void);
/* Opens a host on dir, failing the test if it cannot. Logs go to a file
** (dir/log.txt) so test output stays readable. */
yz_host *tu_host(const char *dir);

/* The first column of the first row of 'sql', run as the core (no access
** rules): as malloc'd text ("NULL" for a null), or as an integer (the
** column must be one). Either fails the test if there is no row. */
char *tu_query(yz_store *s, const char *sql);
int64_t tu_int(yz_store *s, const char *sql);
/* The same on data directory dir's database (yizhan.db), opened for the
** query and closed after; tu_db_open fails the test if it cannot open. */
yz_store *tu_db_open(const char *dir);
char *tu_db_text(const char *dir, const char *sql);
int64_t tu_db_int(const char *dir, const char *sql);

/* Runs code in p through yz_plugin_eval into out (emptied first) and
** asserts the result is 'want' (YZ_OK or YZ_ERR), showing the output when
** it is not. Returns the rendering or the error, valid until out changes. */
const char *tu_eval(yz_plugin *p, const char *code, yz_buf *out, int want);

/* The result of running the yizhan binary. */
typedef struct tu_run {
  int status; /* exit status, or 128+signal */
  char *out;  /* stdout */
  char *err;  /* stderr */
} tu_run;

/* Runs build/yizhan with the given argv (NULL-terminated, without argv[0])
** and collects its output. */
tu_run tu_yizhan(const char *const *args);
/* The same with 'input' on its stdin (NULL: stdin is /dev/null). */
tu_run tu_yizhan_input(const char *const *args, const char *input);
/* Starts it in the background (a daemon, say) with its stdout and stderr
** appended to 'logfile', stdin from /dev/null; returns its pid, for the
** caller to signal and wait for. */
int tu_yizhan_start(const char *const *args, const char *logfile);
void tu_run_free(tu_run *r);
/* True when 'hay' contains 'needle'; prints both when not, for the test log. */
int tu_contains(const char *hay, const char *needle);

/* Sleeps ms milliseconds; the monotonic clock in seconds. */
void tu_sleep_ms(long ms);
double tu_now_s(void);

/* A mock SMS gateway (tests/gateway/mockgw.py) on 127.0.0.1, stopped by
** its pid. */
typedef struct tu_gateway {
  int pid;   /* the python3 process */
  int port;  /* where it listens */
  char *dir; /* its scratch folder */
  char *log; /* its request log: one JSON line per request */
} tu_gateway;

/* Starts it with extra arguments (NULL-terminated; NULL for none) and
** waits until it listens. */
tu_gateway tu_gateway_start(const char *const *args);
void tu_gateway_stop(tu_gateway *g);
/* Lines of its log that contain 'needle'. */
int tu_gateway_count(const tu_gateway *g, const char *needle);

/* One request of a mock gateway's log. */
typedef struct tu_gw_req {
  double t;                        /* when it arrived, Unix seconds */
  char *key, *to, *text, *outcome; /* params and outcome ("" if absent) */
  int accepted;                    /* outcome ok or slow: it was delivered */
} tu_gw_req;

/* Every complete line of its log, in order, as a malloc'd array of *n;
** fails the test on a line that is not JSON. */
tu_gw_req *tu_gateway_requests(const tu_gateway *g, size_t *n);
void tu_gateway_requests_free(tu_gw_req *r, size_t n);

#endif
