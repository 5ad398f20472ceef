/*
** test_jobs.c: persistent jobs and tasks on a simulated clock: registering
** again updates, never duplicates; the schedule survives a restart; jobs no
** longer registered are dropped; a missed run fires once inside its grace
** window and is skipped past it; the run table; failures; host.sleep;
** pre-emption of a busy plugin; and the daemon killed with kill -9 in the
** middle of a run, then started again.
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

/* 2026-10-31 23:00 in Shanghai, in ms. */
#define START_MS 1793458800000LL

#define CONFIG                               \
  "plugins = { reminder = {}, busy = {} }\n" \
  "limits = { instructions = 200000000, quarantine_after = 3 }\n"

/* 'reminder' keeps a log of its runs in a table it owns. */
#define REMINDER_HEAD                                                       \
  "return { name = 'reminder', version = '1.0.0', owns = { 'runs' },\n"     \
  "  migrations = { 'CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT, " \
  "period TEXT, scheduled INTEGER, at INTEGER)' },\n"                       \
  "  setup = function(host)\n"                                              \
  "    local function log(run)\n"                                           \
  "      host.db.exec('INSERT INTO runs(job, period, scheduled, at) "       \
  "VALUES (?, ?, ?, ?)', run.job, run.period, run.scheduled, host.now())\n" \
  "    end\n"

#define BUSY                                                         \
  "return { name = 'busy', version = '1.0.0', owns = { 'spins' },\n" \
  "  migrations = { 'CREATE TABLE spins (n INTEGER)' },\n"           \
  "  setup = function(host)\n"                                       \
  "    host.cron('spin', '0 0 * * *', function()\n"                  \
  "      local x = 0\n"                                              \
  "      for i = 1, 8000000 do x = x + i end\n"                      \
  "      host.db.exec('INSERT INTO spins VALUES (?)', x)\n"          \
  "    end)\n"                                                       \
  "  end }\n"

typedef struct fixture {
  char *dir;  /* data directory */
  yz_host *h; /* the host, on a simulated clock */
} fixture;

static void write_reminder(fixture *f, const char *body) {
  char text[8192];
  snprintf(text, sizeof text, "%s%s  end }\n", REMINDER_HEAD, body);
  tu_write(f->dir, "plugins/reminder.lua", text);
}

/* (Re)starts the host at simulated time ms. */
static void start_at(fixture *f, int64_t ms) {
  yz_host_close(f->h);
  f->h = tu_host(f->dir);
  yz_clock_simulate(&f->h->clock, ms);
  int rc = yz_host_start(f->h);
  if (rc != YZ_OK)
    for (int i = 0; i < f->h->nplugins; i++)
      if (f->h->plugins[i]->error)
        fprintf(stderr, "%s: %s\n", f->h->plugins[i]->name,
                f->h->plugins[i]->error);
  assert_int_equal(rc, YZ_OK);
}

/* Moves the clock to ms, ticking through every due time on the way, as the
** run loop would. */
static void run_until(fixture *f, int64_t ms) {
  yz_host_run_until(f->h, ms);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_datadir(CONFIG);
  tu_write(f->dir, "plugins/busy.lua", BUSY);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_host_close(f->h);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static int64_t count(fixture *f, const char *sql) {
  return tu_int(f->h->store, sql);
}

static void a_monthly_job_runs_once_a_month_with_its_period(void **state) {
  fixture *f = *state;
  write_reminder(f, "    host.cron('monthly', '0 9 1 * *', log)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 62LL * 86400 * 1000); /* to 2027-01-01 23:00 */
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 3);
  char *p = tu_query(f->h->store, "SELECT group_concat(period) FROM runs");
  assert_string_equal(p, "2026-11,2026-12,2027-01");
  free(p);
  /* The run table's scheduled time is 09:00 on the 1st, local. */
  assert_int_equal(
      count(f, "SELECT scheduled FROM runs WHERE period = '2026-11'"),
      1793494800);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE plugin = "
                         "'reminder' AND last_status = 'ok'"),
                   1);
}

static void registering_again_updates_and_survives_a_restart(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('monthly', '0 9 1 * *', log)\n"
                 "    host.cron('monthly', '0 9 1 * *', log)\n");
  start_at(f, START_MS);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE plugin = "
                         "'reminder'"),
                   1);
  int64_t due = count(f, "SELECT next_due FROM yz_jobs WHERE name = 'monthly'");
  assert_int_equal(due, 1793494800); /* 2026-11-01 09:00 +08:00 */
  /* A restart an hour later keeps the due time: it is not recomputed. */
  start_at(f, START_MS + 3600 * 1000);
  assert_int_equal(count(f,
                         "SELECT next_due FROM yz_jobs WHERE name = "
                         "'monthly'"),
                   due);
  /* A changed spec is a new schedule. */
  write_reminder(f, "    host.cron('monthly', '0 8 2 * *', log)\n");
  start_at(f, START_MS + 3600 * 1000);
  assert_int_equal(count(f,
                         "SELECT next_due FROM yz_jobs WHERE name = "
                         "'monthly'"),
                   1793577600); /* 2026-11-02 08:00 +08:00 */
}

static void jobs_no_longer_registered_are_dropped(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('a', '@daily', log)\n"
                 "    host.cron('b', '@daily', log)\n");
  start_at(f, START_MS);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE plugin = "
                         "'reminder'"),
                   2);
  write_reminder(f, "    host.cron('a', '@daily', log)\n");
  start_at(f, START_MS);
  char *names = tu_query(f->h->store,
                         "SELECT group_concat(name) FROM yz_jobs "
                         "WHERE plugin = 'reminder'");
  assert_string_equal(names, "a");
  free(names);
  /* host.cancel drops one at run time. */
  yz_buf b;
  yz_buf_init(&b, 4096);
  tu_eval(yz_plugin_find(f->h, "reminder"), "host.cancel('a')", &b, YZ_OK);
  assert_string_equal(yz_buf_str(&b), "true");
  yz_buf_free(&b);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE plugin = "
                         "'reminder'"),
                   0);
}

static void a_missed_run_fires_once_inside_its_grace_window(void **state) {
  fixture *f = *state;
  write_reminder(f, "    host.cron('hourly', '0 * * * *', log)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 1000); /* nothing due yet */
  /* Down for five hours (past 00:00 .. 04:00), back inside the default
  ** 24 h grace: one run, for the latest missed hour, not five. */
  start_at(f, START_MS + 5 * 3600 * 1000 + 60 * 1000);
  run_until(f, START_MS + 5 * 3600 * 1000 + 120 * 1000);
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 1);
  assert_int_equal(count(f, "SELECT scheduled FROM runs"),
                   START_MS / 1000 + 5 * 3600); /* 04:00 */
  /* The next is the coming hour, not a burst of the missed ones. */
  assert_int_equal(count(f,
                         "SELECT next_due FROM yz_jobs WHERE name = "
                         "'hourly'"),
                   START_MS / 1000 + 6 * 3600);
}

static void a_missed_run_past_its_grace_window_is_skipped(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('monthly', '0 9 1 * *', log, { grace = "
                 "3600 })\n");
  start_at(f, START_MS);
  /* Back on the 1st at 15:00: six hours late, the grace is one. */
  int64_t back = 1793494800LL * 1000 + 6 * 3600 * 1000;
  start_at(f, back);
  run_until(f, back + 1000);
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 0);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE name = "
                         "'monthly' AND last_status = 'skipped'"),
                   1);
  assert_int_equal(count(f,
                         "SELECT next_due FROM yz_jobs WHERE name = "
                         "'monthly'"),
                   1796086800); /* 2026-12-01 09:00 +08:00 */
  char log[4300];
  snprintf(log, sizeof log, "%s/log.txt", f->dir);
  fflush(f->h->log.out);
  char *text = tu_read(log);
  assert_true(tu_contains(text,
                          "skipped a run missed while the host was "
                          "down"));
  free(text);
}

static void a_failing_job_is_recorded_and_the_schedule_goes_on(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('daily', '0 9 * * *', function(run) "
                 "error('no teacher for class 3') end)\n"
                 "    host.cron('dozer', '0 8 * * *', function(run) "
                 "host.sleep(86400 * 10) end)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 2 * 86400 * 1000); /* two 09:00s */
  assert_int_equal(count(f,
                         "SELECT failures FROM yz_jobs WHERE name = "
                         "'daily'"),
                   2);
  char *err = tu_query(f->h->store,
                       "SELECT last_error FROM yz_jobs WHERE name = 'daily'");
  assert_true(tu_contains(err, "no teacher for class 3"));
  assert_true(tu_contains(err, "stack traceback"));
  free(err);
  assert_int_equal(count(f,
                         "SELECT next_due FROM yz_jobs WHERE name = "
                         "'daily'"),
                   START_MS / 1000 + 2 * 86400 + 10 * 3600);
  /* The third failure in a row quarantines the plugin (limit 3). */
  run_until(f, START_MS + 3 * 86400 * 1000);
  assert_int_equal(yz_plugin_find(f->h, "reminder")->state, YZ_PS_QUARANTINED);
  assert_int_equal(yz_plugin_find(f->h, "busy")->state, YZ_PS_OK);
  /* A sleeper of the plugin wakes after the quarantine and is ended; the
  ** error the plugin is known by stays the one that put it there. */
  run_until(f, START_MS + 12LL * 86400 * 1000);
  assert_true(tu_contains(yz_plugin_find(f->h, "reminder")->error,
                          "no teacher for class 3"));
}

static void a_job_can_sleep_while_others_run(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('slow', '0 0 * * *', function(run)\n"
                 "      log(run); host.sleep(600); log({ job = 'slow-woke', "
                 "period = run.period, scheduled = run.scheduled })\n"
                 "    end)\n"
                 "    host.cron('quick', '5 0 * * *', log)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 3600 * 1000 + 6 * 60 * 1000); /* to 00:06 */
  char *order =
      tu_query(f->h->store, "SELECT group_concat(job) FROM runs ORDER BY id");
  assert_string_equal(order, "slow,quick");
  free(order);
  run_until(f, START_MS + 3600 * 1000 + 11 * 60 * 1000); /* to 00:11 */
  order = tu_query(f->h->store, "SELECT group_concat(job) FROM runs");
  assert_string_equal(order, "slow,quick,slow-woke");
  free(order);
  assert_int_equal(count(f,
                         "SELECT at - scheduled FROM runs WHERE job = "
                         "'slow-woke'"),
                   600);
}

static void sleeping_is_refused_where_it_cannot_wait(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('tx', '0 0 * * *', function()\n"
                 "      host.db.tx(function() host.sleep(1) end)\n"
                 "    end)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 3600 * 1000 + 1000);
  char *err =
      tu_query(f->h->store, "SELECT last_error FROM yz_jobs WHERE name = 'tx'");
  assert_true(tu_contains(err, "host.sleep: only a job or timer can sleep"));
  free(err);
  assert_int_equal(f->h->store ? yz_store_tx_depth(f->h->store) : -1, 0);
  /* In setup there is nothing to yield to. */
  write_reminder(f, "    host.sleep(1)\n");
  yz_host_close(f->h);
  f->h = tu_host(f->dir);
  assert_int_equal(yz_host_start(f->h), YZ_ERR);
  assert_true(tu_contains(yz_plugin_find(f->h, "reminder")->error,
                          "host.sleep: only a job or timer can sleep"));
}

static void a_busy_plugin_is_preempted_so_others_run_on_time(void **state) {
  fixture *f = *state;
  /* Both are due at midnight; busy's loop takes many slices. */
  write_reminder(f, "    host.cron('midnight', '0 0 * * *', log)\n");
  start_at(f, START_MS);
  yz_clock_advance(&f->h->clock, 3600 * 1000); /* 00:00 */
  yz_host_tick(f->h);
  /* After one turn the reminder has run while busy is still spinning. */
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 1);
  assert_int_equal(count(f, "SELECT count(*) FROM spins"), 0);
  assert_true(yz_tasks_count(f->h) >= 1);
  int turns = 1;
  while (yz_tasks_count(f->h) > 0 && turns < 1000) {
    yz_host_tick(f->h);
    turns++;
  }
  assert_int_equal(count(f, "SELECT count(*) FROM spins"), 1);
  assert_true(turns > 5); /* it really was cut into slices */
}

static void timers_fire_after_their_delay(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.after(90, function() log({ job = 'timer', "
                 "period = '', scheduled = host.now() }) end)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 89 * 1000);
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 0);
  run_until(f, START_MS + 91 * 1000);
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 1);
  assert_int_equal(count(f, "SELECT at FROM runs"), START_MS / 1000 + 90);
}

static void a_setup_that_fails_leaves_no_jobs_and_no_writes(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.cron('monthly', '0 9 1 * *', log)\n"
                 "    log({ job = 'setup', period = '', scheduled = 0 })\n"
                 "    error('the county list is missing')\n");
  yz_host_close(f->h);
  f->h = tu_host(f->dir);
  yz_clock_simulate(&f->h->clock, START_MS);
  assert_int_equal(yz_host_start(f->h), YZ_ERR);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE plugin = "
                         "'reminder'"),
                   0);
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 0);
  yz_job **jobs;
  int n = yz_sched_jobs(f->h->sched, &jobs);
  for (int i = 0; i < n; i++)
    assert_string_not_equal(jobs[i]->plugin, "reminder");
  /* Nothing fires for it later either. */
  run_until(f, START_MS + 40LL * 86400 * 1000);
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 0);
}

static void a_job_may_cancel_itself_or_a_sleeping_one(void **state) {
  fixture *f = *state;
  write_reminder(f,
                 "    host.every('once', '1m', function(run) log(run); "
                 "host.cancel('once') end)\n"
                 "    host.cron('sleeper', '0 0 * * *', function(run)\n"
                 "      host.sleep(3600); log({ job = 'sleeper-woke', period "
                 "= '', scheduled = 0 })\n"
                 "    end)\n"
                 "    host.cron('killer', '30 0 * * *', function(run) "
                 "host.cancel('sleeper') end)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 3 * 3600 * 1000); /* to 02:00 */
  /* 'once' ran once; 'sleeper' was cancelled in its sleep and its run still
  ** ended cleanly; neither is scheduled any more. */
  assert_int_equal(count(f, "SELECT count(*) FROM runs WHERE job = 'once'"), 1);
  assert_int_equal(
      count(f, "SELECT count(*) FROM runs WHERE job = 'sleeper-woke'"), 1);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE name IN "
                         "('once', 'sleeper')"),
                   0);
  run_until(f, START_MS + 30LL * 3600 * 1000);
  assert_int_equal(count(f, "SELECT count(*) FROM runs WHERE job = 'once'"), 1);
}

static void one_plugins_rollback_does_not_undo_anothers_writes(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { reminder = {}, spoiler = {} }\n");
  tu_write(f->dir, "plugins/spoiler.lua",
           "return { name = 'spoiler', version = '1', owns = { 'dup' },\n"
           "  migrations = { 'CREATE TABLE dup (id INTEGER PRIMARY KEY)',\n"
           "                 'INSERT INTO dup VALUES (1)' },\n"
           "  setup = function(host)\n"
           "    host.every('spoil', '1m', function()\n"
           "      pcall(host.db.exec, 'INSERT OR ROLLBACK INTO dup VALUES "
           "(1)')\n"
           "    end)\n"
           "  end }\n");
  write_reminder(f, "    host.every('tick', '1m', log)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 10 * 60 * 1000);
  /* Every one of the ten minutes is there, whatever the spoiler did. */
  assert_int_equal(count(f, "SELECT count(*) FROM runs"), 10);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE name = "
                         "'tick' AND last_status = 'ok'"),
                   1);
}

static void a_calendar_change_reschedules_a_job_that_had_no_date(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { reminder = {} }\n"
           "calendar = { spring_festival = { ['2025'] = '2025-01-29' } }\n");
  write_reminder(f,
                 "    host.cron('sf', 'on spring_festival -7 days 09:00', "
                 "log)\n");
  start_at(f, START_MS);
  assert_int_equal(count(f,
                         "SELECT count(*) FROM yz_jobs WHERE name = 'sf' "
                         "AND next_due IS NULL"),
                   1);
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { reminder = {} }\n"
           "calendar = { spring_festival = { ['2025'] = '2025-01-29', "
           "['2027'] = '2027-02-06' } }\n");
  start_at(f, START_MS);
  assert_int_equal(count(f, "SELECT next_due FROM yz_jobs WHERE name = 'sf'"),
                   1801270800); /* 2027-01-30 09:00 +08:00 */
}

static void a_task_that_only_sleeps_still_runs_out_of_budget(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { reminder = {} }\n"
           "limits = { instructions = 100000 }\n");
  write_reminder(f,
                 "    host.cron('spin', '0 0 * * *', function() while true "
                 "do host.sleep(0) end end)\n");
  start_at(f, START_MS);
  run_until(f, START_MS + 3600 * 1000 + 1000);
  char *err = tu_query(f->h->store,
                       "SELECT last_error FROM yz_jobs WHERE name = 'spin'");
  assert_true(tu_contains(err, "CPU budget exceeded"));
  free(err);
  assert_int_equal(yz_tasks_count(f->h), 0);
}

static void plugins_ask_the_school_calendar(void **state) {
  fixture *f = *state;
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { reminder = {} }\n"
           "calendar = {\n"
           "  terms = { { name = '2026秋', start = '2026-09-01', mid = "
           "'2026-11-09', ['end'] = '2027-01-22' } },\n"
           "  holidays = { { name = '国庆', from = '2026-10-01', to = "
           "'2026-10-07' } },\n"
           "}\n");
  write_reminder(f, "");
  start_at(f, START_MS); /* Saturday 2026-10-31 */
  yz_plugin *p = yz_plugin_find(f->h, "reminder");
  yz_buf b;
  yz_buf_init(&b, 4096);
  assert_string_equal(tu_eval(p, "host.calendar.term().name", &b, YZ_OK),
                      "\"2026秋\"");
  assert_string_equal(tu_eval(p, "host.calendar.is_school_day()", &b, YZ_OK),
                      "false");
  assert_string_equal(tu_eval(p, "host.calendar.next_school_day()", &b, YZ_OK),
                      "\"2026-11-02\"");
  assert_string_equal(
      tu_eval(p, "host.calendar.holiday('2026-10-03')", &b, YZ_OK), "\"国庆\"");
  assert_string_equal(
      tu_eval(p, "host.calendar.next_school_day('2026-10-03')", &b, YZ_OK),
      "\"2026-10-08\"");
  assert_string_equal(tu_eval(p, "host.calendar.term('2027-02-01')", &b, YZ_OK),
                      "nil");
  assert_true(
      tu_contains(tu_eval(p, "host.calendar.term('2027-02-30')", &b, YZ_ERR),
                  "'2027-02-30' is not a date"));
  yz_buf_free(&b);
}

/* ------------------------------------------------------------ kill -9 */

static pid_t start_daemon(const char *dir) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char err[4300];
    snprintf(err, sizeof err, "%s/daemon.err", dir);
    int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(e, 2);
    execl(YZ_TEST_BINARY, YZ_TEST_BINARY, "-d", dir, "run", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Polls the database until 'sql' (an integer query) returns at least
** 'want', for up to 10 s; returns the last value. */
static int64_t wait_for(const char *dir, const char *sql, int64_t want) {
  char path[4300], err[512];
  snprintf(path, sizeof path, "%s/yizhan.db", dir);
  int64_t v = -1;
  for (int i = 0; i < 500; i++) {
    yz_store *s;
    if (yz_store_open(&s, path, err, sizeof err) == YZ_OK) {
      yz_stmt *st;
      if (yz_store_prepare(s, NULL, sql, &st) == YZ_OK) {
        if (yz_stmt_step(st) == YZ_ROW) {
          yz_value val;
          yz_stmt_column(st, 0, &val);
          v = val.type == YZ_INT ? val.i : -1;
        }
        yz_stmt_release(st);
      }
      yz_store_close(s);
    }
    if (v >= want) return v;
    sleep_ms(20);
  }
  return v;
}

static void a_run_killed_midway_is_done_again_once_not_lost(void **state) {
  fixture *f = *state;
  /* Each run records its start, waits, then completes its period once: an
  ** idempotent policy. The daemon is killed with SIGKILL in the middle of
  ** a run, and started again. */
  write_reminder(f,
                 "    host.every('tick', '5s', function(run)\n"
                 "      log({ job = 'start', period = run.period, scheduled "
                 "= run.scheduled })\n"
                 "      host.sleep(1)\n"
                 "      host.db.exec('INSERT INTO runs(job, period, "
                 "scheduled, at) SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT "
                 "1 FROM runs WHERE job = ? AND period = ?)', 'done', "
                 "run.period, run.scheduled, host.now(), 'done', run.period)\n"
                 "    end)\n");
  tu_write(f->dir, "yizhan.conf.lua", "plugins = { reminder = {} }\n");
  int64_t killed[2];
  for (int round = 0; round < 2; round++) {
    char sql[256];
    pid_t pid = start_daemon(f->dir);
    /* Wait for a run to start, then kill the daemon in its sleep. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE job = 'start'");
    int64_t before = wait_for(f->dir, sql, 0);
    int64_t after = wait_for(f->dir, sql, before + 1);
    if (after < before + 1) {
      char path[4300];
      snprintf(path, sizeof path, "%s/daemon.err", f->dir);
      char *log = tu_read(path);
      fprintf(stderr, "daemon log:\n%s\n", log ? log : "(none)");
      free(log);
    }
    assert_true(after >= before + 1);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    killed[round] = wait_for(
        f->dir, "SELECT max(scheduled) FROM runs WHERE job = 'start'", 0);
    /* Started again, the interrupted run is done (once) for its period. */
    pid = start_daemon(f->dir);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE job = 'done' AND scheduled = "
             "%lld",
             (long long)killed[round]);
    assert_int_equal(wait_for(f->dir, sql, 1), 1);
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  f->h = tu_host(f->dir);
  for (int round = 0; round < 2; round++) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE job = 'start' AND scheduled = "
             "%lld",
             (long long)killed[round]);
    assert_int_equal(count(f, sql), 2); /* started, killed, started again */
  }
  /* No period was ever completed twice. */
  assert_int_equal(count(f,
                         "SELECT count(*) FROM (SELECT period FROM runs "
                         "WHERE job = 'done' GROUP BY period HAVING "
                         "count(*) > 1)"),
                   0);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(a_monthly_job_runs_once_a_month_with_its_period),
      T(registering_again_updates_and_survives_a_restart),
      T(jobs_no_longer_registered_are_dropped),
      T(a_missed_run_fires_once_inside_its_grace_window),
      T(a_missed_run_past_its_grace_window_is_skipped),
      T(a_failing_job_is_recorded_and_the_schedule_goes_on),
      T(a_job_can_sleep_while_others_run),
      T(sleeping_is_refused_where_it_cannot_wait),
      T(a_busy_plugin_is_preempted_so_others_run_on_time),
      T(timers_fire_after_their_delay),
      T(plugins_ask_the_school_calendar),
      T(a_job_may_cancel_itself_or_a_sleeping_one),
      T(one_plugins_rollback_does_not_undo_anothers_writes),
      T(a_calendar_change_reschedules_a_job_that_had_no_date),
      T(a_task_that_only_sleeps_still_runs_out_of_budget),
      T(a_setup_that_fails_leaves_no_jobs_and_no_writes),
      T(a_run_killed_midway_is_done_again_once_not_lost),
  };
  return cmocka_run_group_tests_name("jobs", tests, NULL, NULL);
}
