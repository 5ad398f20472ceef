/*
** test_cli.c: the yizhan executable as a user runs it: init, check,
** plugins, plugin enable/disable, eval, backup, and the daemon's lifecycle
** under real signals (SIGHUP reloads, SIGTERM stops cleanly).
*/
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

#include "testutil.h"

static const char *const notes_plugin =
    "return {\n"
    "  name = 'notes', version = '1.2.0', description = 'care notes',\n"
    "  owns = { 'notes' },\n"
    "  options = { greeting = 'hello', max = 3 },\n"
    "  migrations = { 'CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)' "
    "},\n"
    "  setup = function(host, opts)\n"
    "    host.db.exec('INSERT INTO notes(body) VALUES (?)', opts.greeting)\n"
    "  end,\n"
    "}\n";

static const char *const broken_plugin =
    "return {\n"
    "  name = 'broken', version = '0.1.0',\n"
    "  setup = function(host) local t = nil; return t.field end,\n"
    "}\n";

static char *make_dir(const char *config) {
  char *d = tu_datadir(config);
  tu_write(d, "plugins/notes.lua", notes_plugin);
  tu_write(d, "plugins/broken.lua", broken_plugin);
  return d;
}

static void help_and_version_exit_zero_and_usage_errors_exit_two(void **state) {
  (void)state;
  tu_run r = tu_yizhan((const char *[]){"--version", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "yizhan "));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"--help", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "eval PLUGIN"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"backup", "--help", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "usage: yizhan [-d DIR] backup FILE"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"frobnicate", NULL});
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "unknown command 'frobnicate'"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"eval", NULL});
  assert_int_equal(r.status, 2);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){NULL});
  assert_int_equal(r.status, 2);
  tu_run_free(&r);
}

static void init_creates_a_private_data_directory_and_refuses_to_overwrite(
    void **state) {
  (void)state;
  char *base = tu_tmpdir();
  char dir[4200], conf[4300], db[4300];
  snprintf(dir, sizeof dir, "%s/county", base);
  snprintf(conf, sizeof conf, "%s/yizhan.conf.lua", dir);
  snprintf(db, sizeof db, "%s/yizhan.db", dir);
  tu_run r = tu_yizhan((const char *[]){"init", dir, NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(stat(db, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char *text = tu_read(conf);
  /* every option is present, commented, with its default */
  assert_true(tu_contains(text, "-- timezone = \"Asia/Shanghai\""));
  assert_true(tu_contains(text, "-- database = \"yizhan.db\""));
  assert_true(tu_contains(text, "-- log_level = \"info\""));
  assert_true(tu_contains(text, "-- plugin_path = {}"));
  assert_true(tu_contains(text, "memory_mb = 64"));
  assert_true(tu_contains(text, "-- plugin_limits"));
  free(text);
  r = tu_yizhan((const char *[]){"-d", dir, "check", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"init", dir, NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "refuses to overwrite"));
  tu_run_free(&r);
  tu_rmrf(base);
  free(base);
}

static void check_reports_each_plugin_and_fails_when_one_is_unhealthy(
    void **state) {
  (void)state;
  char *d =
      make_dir("plugins = { notes = { greeting = 'hi' }, broken = {} }\n");
  tu_run r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.out, "plugin    notes 1.2.0: ok"));
  assert_true(tu_contains(r.out, "plugin    broken 0.1.0: failed"));
  assert_true(tu_contains(r.out, "attempt to index a nil value"));
  assert_true(tu_contains(r.out, "stack traceback"));
  tu_run_free(&r);
  /* Without the broken plugin the same directory is healthy. */
  tu_write(d, "yizhan.conf.lua", "plugins = { notes = {} }\n");
  r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void a_bad_config_names_file_line_and_key(void **state) {
  (void)state;
  char *d = make_dir(
      "timezone = 'Asia/Shanghai'\nplugins = {\n  notes = { greting = 'x' "
      "},\n}\n");
  tu_run r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.out, "yizhan.conf.lua:3: plugins.notes.greting"));
  assert_true(tu_contains(r.out, "did you mean 'greeting'"));
  tu_run_free(&r);
  tu_write(d, "yizhan.conf.lua", "log_levle = 'debug'\n");
  r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err,
                          "yizhan.conf.lua:1: log_levle: unknown option (did "
                          "you mean 'log_level'?)"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void plugins_lists_found_plugins_and_enable_disable_persist(
    void **state) {
  (void)state;
  char *d = make_dir("plugins = {}\n");
  tu_run r = tu_yizhan((const char *[]){"-d", d, "plugins", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "notes"));
  assert_true(tu_contains(r.out, "1.2.0"));
  assert_true(tu_contains(r.out, "care notes"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "plugin", "enable", "notes", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "plugin    notes 1.2.0: ok"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "plugins", NULL});
  assert_true(tu_contains(r.out, "cli      ok"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "plugin", "disable", "notes", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_true(tu_contains(r.out, "no plugins enabled"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "plugin", "enable", "nosuch", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "no plugin 'nosuch'"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void eval_prints_results_from_inside_the_sandbox(void **state) {
  (void)state;
  char *d = make_dir("plugins = { notes = { max = 7 } }\n");
  tu_run r = tu_yizhan(
      (const char *[]){"-d", d, "eval", "notes", "options.max * 6", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "42\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){
      "-d", d, "eval", "notes",
      "host.db.one('SELECT body FROM notes WHERE id = ?', 1)", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "{ body = \"hello\" }\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "eval", "notes",
                                 "io.open('/etc/passwd')", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "attempt to index a nil value (global 'io')"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "eval", "broken", "1", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "not running"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

/* ------------------------------------------------------------- daemon */

typedef struct daemon {
  pid_t pid;          /* the yizhan run process */
  char errpath[4300]; /* its stderr */
} daemon;

static char *daemon_log(const daemon *dm) {
  return tu_read(dm->errpath);
}

/* Waits until the daemon's stderr has 'needle' 'times' times; false on
** timeout (10 s). */
static int wait_log(const daemon *dm, const char *needle, int times) {
  for (int i = 0; i < 1000; i++) {
    char *log = daemon_log(dm);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p++) n++;
    free(log);
    if (n >= times) return 1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  char *log = daemon_log(dm);
  fprintf(stderr, "timed out waiting for '%s' in:\n%s\n", needle, log);
  free(log);
  return 0;
}

static daemon start_daemon(const char *dir) {
  daemon dm;
  snprintf(dm.errpath, sizeof dm.errpath, "%s/daemon.err", dir);
  dm.pid = fork();
  assert_true(dm.pid >= 0);
  if (dm.pid == 0) {
    int e = open(dm.errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int o = open("/dev/null", O_WRONLY);
    dup2(e, 2);
    dup2(o, 1);
    execl(YZ_TEST_BINARY, YZ_TEST_BINARY, "-d", dir, "run", (char *)NULL);
    _exit(127);
  }
  return dm;
}

static int wait_exit(pid_t pid) {
  int st = 0;
  for (int i = 0; i < 1000; i++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

static void run_reloads_on_sighup_and_stops_cleanly_on_sigterm(void **state) {
  (void)state;
  char *d = make_dir("plugins = { notes = { greeting = 'first' } }\n");
  daemon dm = start_daemon(d);
  assert_true(wait_log(&dm, "msg=ready", 1));
  /* A second daemon on the same directory is refused. */
  tu_run r = tu_yizhan((const char *[]){"-d", d, "run", NULL});
  assert_int_equal(r.status, 1);
  char holder[64];
  snprintf(holder, sizeof holder, "another yizhan (pid %d) is delivering",
           (int)dm.pid);
  assert_true(tu_contains(r.err, holder));
  tu_run_free(&r);
  /* Change an option and reload: setup runs again with the new value. */
  tu_write(d, "yizhan.conf.lua",
           "plugins = { notes = { greeting = 'second' } }\n");
  assert_int_equal(kill(dm.pid, SIGHUP), 0);
  assert_true(wait_log(&dm, "reloaded configuration and plugins", 1));
  /* A broken config on reload is refused and the daemon keeps running. */
  tu_write(d, "yizhan.conf.lua", "plugins = { notes = { greeting = 'x' }\n");
  assert_int_equal(kill(dm.pid, SIGHUP), 0);
  assert_true(wait_log(&dm, "reload refused", 1));
  assert_int_equal(kill(dm.pid, 0), 0);
  tu_write(d, "yizhan.conf.lua",
           "plugins = { notes = { greeting = 'second' } }\n");
  /* A backup while the daemon runs is consistent and private. */
  char bak[4300];
  snprintf(bak, sizeof bak, "%s/backup.db", d);
  r = tu_yizhan((const char *[]){"-d", d, "backup", bak, NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  struct stat st;
  assert_int_equal(stat(bak, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(kill(dm.pid, SIGTERM), 0);
  assert_int_equal(wait_exit(dm.pid), 0);
  char *log = daemon_log(&dm);
  assert_true(tu_contains(log, "shutting down"));
  free(log);
  /* The database has both setups' rows; the backup has at least the first. */
  tu_write(d, "yizhan.conf.lua", "plugins = { notes = {} }\n");
  r = tu_yizhan((const char *[]){"-d", d, "eval", "notes",
                                 "host.db.one(\"SELECT count(*) AS n FROM "
                                 "notes WHERE body IN ('first', 'second')\").n",
                                 NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "2\n");
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void spec_prints_fire_times_or_the_error(void **state) {
  (void)state;
  tu_run r = tu_yizhan((const char *[]){
      "spec", "0 9 1 * *", "--from", "2026-11-28 10:00", "--count", "2", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "2026-12-01T09:00:00+08:00\n2027-01-01T09:00:00+08:00\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"spec", "30 2 * * *", "--tz",
                                 "America/New_York", "--from",
                                 "2027-03-13 12:00", "--count", "2", NULL});
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "2027-03-14T03:00:00-04:00\n2027-03-15T02:30:00-04:00\n");
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"spec", "0 9 32 * *", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(
      r.err, "\"0 9 32 * *\": day-of-month 32 out of range 1-31 at column 5"));
  tu_run_free(&r);
  r = tu_yizhan(
      (const char *[]){"spec", "@daily", "--tz", "Mars/Olympus", NULL});
  assert_int_equal(r.status, 2);
  tu_run_free(&r);
}

static const char *const letters_plugin =
    "return { name = 'letters', version = '1.0.0', owns = { 'reminded' },\n"
    "  migrations = { 'CREATE TABLE reminded (period TEXT PRIMARY KEY)' },\n"
    "  setup = function(host)\n"
    "    host.cron('monthly', '0 9 1 * *', function(run)\n"
    "      host.db.exec('INSERT OR IGNORE INTO reminded VALUES (?)', "
    "run.period)\n"
    "      host.log.info('letter reminders', { period = run.period })\n"
    "    end)\n"
    "    host.cron('visits', '3 days before term.end 09:00', function() end)\n"
    "  end }\n";

static void simulate_prints_a_school_year_and_touches_nothing(void **state) {
  (void)state;
  char *d = tu_datadir(
      "plugins = { letters = {} }\n"
      "calendar = { terms = {\n"
      "  { name = 'a', start = '2026-09-01', mid = '2026-11-09', ['end'] = "
      "'2027-01-22' },\n"
      "  { name = 'b', start = '2027-02-22', mid = '2027-04-19', ['end'] = "
      "'2027-07-02' } } }\n");
  tu_write(d, "plugins/letters.lua", letters_plugin);
  tu_run r = tu_yizhan((const char *[]){
      "-d", d, "simulate", "--from", "2026-09-01", "--to", "2027-07-31", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "2026-09-01T09:00:00+08:00  letters/monthly"));
  assert_true(tu_contains(r.out, "period=2027-07"));
  assert_true(tu_contains(r.out, "2027-01-19T09:00:00+08:00  letters/visits"));
  assert_true(tu_contains(r.out, "13 runs"));
  tu_run_free(&r);
  /* The real database never saw the plugin's table or its jobs. */
  r = tu_yizhan((const char *[]){"-d", d, "jobs", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "(no jobs"));
  tu_run_free(&r);
  /* After a real start, 'jobs' lists both with their next fire. */
  r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "jobs", NULL});
  assert_true(tu_contains(r.out, "letters          monthly  "));
  assert_true(tu_contains(r.out, "3 days before term.end 09:00"));
  tu_run_free(&r);
  /* A simulation starts its schedule at --from, whatever the real daemon
  ** has persisted since. */
  r = tu_yizhan((const char *[]){"-d", d, "simulate", "--from", "2026-09-01",
                                 "--to", "2026-09-30", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "2026-09-01T09:00:00+08:00  letters/monthly"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

/* A plugin that sends at noon and at 22:00 each day. */
#define NIGHTLY                                                             \
  "return { name = 'nightly', version = '1', access = { send = true },\n"   \
  "  setup = function(host)\n"                                              \
  "    for i, at in ipairs { '0 12 * * *', '0 22 * * *' } do\n"             \
  "      host.cron('send' .. i, at, function(run)\n"                        \
  "        host.emit('nightly.sent', { period = run.period })\n"            \
  "        host.send{ to = '13800138000', text = '晚安 ' .. run.period, " \
  "key = at .. run.period }\n"                                              \
  "      end)\n"                                                            \
  "    end\n"                                                               \
  "  end }\n"

static void simulate_holds_messages_in_quiet_hours(void **state) {
  (void)state;
  char *d = tu_datadir(
      "channels = { demo = { type = 'file', path = 'out.jsonl' } }\n"
      "plugins = { nightly = {} }\n");
  tu_write(d, "plugins/nightly.lua", NIGHTLY);
  tu_run r = tu_yizhan((const char *[]){
      "-d", d, "simulate", "--from", "2026-11-02", "--to", "2026-11-03", NULL});
  assert_int_equal(r.status, 0);
  /* Noon goes at noon; 22:00 waits for 07:30 the next morning. */
  assert_true(tu_contains(r.out,
                          "2026-11-02T12:00:00+08:00  SEND nightly -> "
                          "138****8000 via demo"));
  assert_true(tu_contains(r.out, "2026-11-03T07:30:00+08:00  SEND nightly"));
  assert_true(tu_contains(r.out, "2026-11-03T12:00:00+08:00  SEND nightly"));
  assert_true(tu_contains(r.out, "3 messages (3 SMS parts)"));
  assert_true(tu_contains(r.out,
                          "2026-11-02T22:00:00+08:00  EVENT "
                          "nightly.sent from nightly"));
  assert_true(tu_contains(r.out, "4 events"));
  assert_null(strstr(r.out, "13800138000"));
  /* No SEND line inside 21:30-07:30. */
  for (char *p = r.out; (p = strstr(p, "  SEND ")) != NULL; p++) {
    int hh = atoi(p - 14), mm = atoi(p - 11);
    int m = hh * 60 + mm;
    if (m >= 21 * 60 + 30 || m < 7 * 60 + 30)
      fail_msg("a message went at %02d:%02d", hh, mm);
  }
  /* Nothing was sent for real. */
  char out[4200];
  snprintf(out, sizeof out, "%s/out.jsonl", d);
  assert_null(tu_read(out));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void send_and_outbox_from_the_command_line(void **state) {
  (void)state;
  char *d = tu_datadir(
      "quiet_hours = false\n"
      "channels = { demo = { type = 'file', path = 'out.jsonl' } }\n");
  tu_run r =
      tu_yizhan((const char *[]){"-d", d, "send", "--to", "138-0013-8000",
                                 "--text", "你好", "--key", "k1", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out,
                          "queued message 1 (key k1) to 138****8000 "
                          "via demo, 1 SMS part"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "send", "--to", "13800138000",
                                 "--text", "again", "--key", "k1", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, "already queued with key k1"));
  tu_run_free(&r);
  /* Refusals: usage errors, nothing queued. */
  const char *bad[][2] = {{"12345678", "hi"}, {"13800138000", ""}};
  for (int i = 0; i < 2; i++) {
    r = tu_yizhan((const char *[]){"-d", d, "send", "--to", bad[i][0], "--text",
                                   bad[i][1], NULL});
    assert_int_equal(r.status, 2);
    assert_true(tu_contains(r.err, i ? "'text' is missing" : "bad phone"));
    tu_run_free(&r);
  }
  r = tu_yizhan((const char *[]){"-d", d, "send", "--to", "13800138000",
                                 "--text", "x", "--channel", "sms", NULL});
  assert_int_equal(r.status, 2);
  assert_true(tu_contains(r.err, "unknown channel 'sms' (configured: demo)"));
  tu_run_free(&r);
  /* --wait with no daemon delivers it. */
  r = tu_yizhan((const char *[]){"-d", d, "send", "--to", "+8613900139000",
                                 "--text", "hello", "--wait", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out,
                          "to 139****9000 via demo: sent after 1 "
                          "attempt, gateway id file-2"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "run", "--until-idle", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  char path[4200];
  snprintf(path, sizeof path, "%s/out.jsonl", d);
  char *lines = tu_read(path);
  assert_true(tu_contains(lines, "\"key\":\"k1\""));
  assert_true(tu_contains(lines, "\"text\":\"你好\""));
  free(lines);
  r = tu_yizhan((const char *[]){"-d", d, "outbox", "--json", NULL});
  assert_true(tu_contains(r.out,
                          "\"key\":\"k1\",\"channel\":\"demo\","
                          "\"to\":\"138****8000\",\"state\":\"sent\""));
  assert_null(strstr(r.out, "13800138000"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "outbox", "stats", NULL});
  assert_true(tu_contains(r.out, "demo         sent                2"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "outbox", "show", "1", NULL});
  assert_true(tu_contains(r.out, "state       sent"));
  assert_true(tu_contains(r.out, "text        你好"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "outbox", "retry", "1", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err, "only failed or dead messages"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void a_channel_without_its_plugin_refuses_to_start(void **state) {
  (void)state;
  char *d = tu_datadir(
      "quiet_hours = false\n"
      "channels = { sms = { type = 'kannel_lite', url = 'http://127.0.0.1:9/' "
      "} }\n");
  /* Queuing needs no plugin; delivering does. */
  tu_run r = tu_yizhan((const char *[]){"-d", d, "send", "--to", "13800138000",
                                        "--text", "hi", NULL});
  assert_int_equal(r.status, 0);
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "run", "--until-idle", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err,
                          "channels.sms: type 'kannel_lite' names no "
                          "plugin on the plugin path"));
  assert_true(tu_contains(r.err, "refusing to start"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "check", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.out, "channels.sms: type 'kannel_lite'"));
  tu_run_free(&r);
  /* A channel whose plugin fails to start names the channel and why. */
  tu_write(d, "yizhan.conf.lua",
           "channels = { sms = { type = 'kannel', url = "
           "'http://127.0.0.1:9/' } }\n");
  r = tu_yizhan((const char *[]){"-d", d, "run", "--until-idle", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.err,
                          "channels.sms: plugin 'kannel' cannot "
                          "deliver it: "));
  assert_true(tu_contains(r.err, "a kannel channel needs username"));
  tu_run_free(&r);
  /* The message waits, queued. */
  r = tu_yizhan(
      (const char *[]){"-d", d, "outbox", "--status", "queued", NULL});
  assert_true(tu_contains(r.out, "138****8000"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

static void a_running_daemon_sends_what_the_cli_queues_at_once(void **state) {
  (void)state;
  char *d = tu_datadir(
      "quiet_hours = false\n"
      "channels = { demo = { type = 'file', path = 'out.jsonl' } }\n");
  char log[4200], out[4200];
  snprintf(log, sizeof log, "%s/daemon.log", d);
  snprintf(out, sizeof out, "%s/out.jsonl", d);
  int pid = tu_yizhan_start((const char *[]){"-d", d, "run", NULL}, log);
  for (int i = 0; i < 200; i++) {
    char *l = tu_read(log);
    int ready = l && strstr(l, "msg=ready");
    free(l);
    if (ready) break;
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
  }
  /* The daemon sleeps (nothing is due); 'send' wakes it with SIGUSR1. */
  tu_run r = tu_yizhan((const char *[]){"-d", d, "send", "--to", "13800138000",
                                        "--text", "hi", "--wait", "--timeout",
                                        "5", NULL});
  assert_int_equal(r.status, 0);
  assert_true(tu_contains(r.out, ": sent after 1 attempt"));
  tu_run_free(&r);
  char *lines = tu_read(out);
  assert_true(tu_contains(lines, "\"text\":\"hi\""));
  free(lines);
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  tu_rmrf(d);
  free(d);
}

static void test_runs_plugin_tests_with_a_fake_clock(void **state) {
  (void)state;
  char *d = tu_datadir(
      "plugins = { letters = {} }\n"
      "calendar = { terms = { { name = 'a', start = "
      "'2026-09-01', mid = '2026-11-09', ['end'] = "
      "'2027-01-22' } } }\n");
  tu_write(d, "plugins/letters.lua", letters_plugin);
  tu_write(d, "plugins/letters_test.lua",
           "test('the 1st of each month is reminded once', function(t)\n"
           "  t.clock.set('2026-09-30 12:00')\n"
           "  t.advance('2d')\n"
           "  t.eq(host.db.one('SELECT group_concat(period) AS p FROM "
           "reminded').p, '2026-10')\n"
           "  t.advance('31d')\n"
           "  t.eq(host.db.one('SELECT count(*) AS n FROM reminded').n, 2)\n"
           "  t.contains(table.concat(t.logs(), '\\n'), 'period=2026-11')\n"
           "  t.eq(t.jobs()[1].name, 'monthly')\n"
           "end)\n"
           "test('each test starts from a clean database', function(t)\n"
           "  t.eq(host.db.one('SELECT count(*) AS n FROM reminded').n, 0)\n"
           "end)\n"
           "test('a failing assertion names its line', function(t)\n"
           "  t.eq({ a = 1 }, { a = 2 }, 'the table')\n"
           "end)\n"
           "test('a timer cannot move the clock', function(t)\n"
           "  host.after(0, function() t.advance('1s') end)\n"
           "  t.advance('2s')\n"
           "  t.contains(table.concat(t.logs(), '\\n'), 'only the test itself "
           "moves the clock')\n"
           "end)\n");
  tu_run r = tu_yizhan((const char *[]){"-d", d, "test", "letters", NULL});
  assert_int_equal(r.status, 1);
  assert_true(
      tu_contains(r.out, "ok - the 1st of each month is reminded once"));
  assert_true(
      tu_contains(r.out, "ok - each test starts from a clean database"));
  assert_true(
      tu_contains(r.out, "not ok - a failing assertion names its line"));
  assert_true(tu_contains(r.out,
                          "letters_test.lua:14: assertion failed: the "
                          "table: expected { a = 2 }, got { a = 1 }"));
  assert_true(tu_contains(r.out, "ok - a timer cannot move the clock"));
  assert_true(tu_contains(r.out, "3 passed, 1 failed"));
  tu_run_free(&r);
  r = tu_yizhan((const char *[]){"-d", d, "test", "nosuch", NULL});
  assert_int_equal(r.status, 1);
  assert_true(tu_contains(r.out, "no such plugin"));
  tu_run_free(&r);
  tu_rmrf(d);
  free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(help_and_version_exit_zero_and_usage_errors_exit_two),
      cmocka_unit_test(
          init_creates_a_private_data_directory_and_refuses_to_overwrite),
      cmocka_unit_test(
          check_reports_each_plugin_and_fails_when_one_is_unhealthy),
      cmocka_unit_test(a_bad_config_names_file_line_and_key),
      cmocka_unit_test(plugins_lists_found_plugins_and_enable_disable_persist),
      cmocka_unit_test(eval_prints_results_from_inside_the_sandbox),
      cmocka_unit_test(run_reloads_on_sighup_and_stops_cleanly_on_sigterm),
      cmocka_unit_test(spec_prints_fire_times_or_the_error),
      cmocka_unit_test(simulate_prints_a_school_year_and_touches_nothing),
      cmocka_unit_test(test_runs_plugin_tests_with_a_fake_clock),
      cmocka_unit_test(simulate_holds_messages_in_quiet_hours),
      cmocka_unit_test(send_and_outbox_from_the_command_line),
      cmocka_unit_test(a_channel_without_its_plugin_refuses_to_start),
      cmocka_unit_test(a_running_daemon_sends_what_the_cli_queues_at_once),
  };
  return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
