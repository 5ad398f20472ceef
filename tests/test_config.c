/*
** test_config.c: loading yizhan.conf.lua: every kind of bad configuration
** and the message it gives (file, line, key path, what was expected, a
** suggestion for a near miss), env(), defaults, per-plugin limits, the key
** line finder, the 'init' template, message templates and channels' maps of
** them, and secrets that must come from the environment.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "clock.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;       /* scratch directory */
  char path[4096]; /* dir/yizhan.conf.lua */
  yz_config *cfg;  /* the last configuration loaded, freed in teardown */
  char err[4096];  /* the last error */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  snprintf(f->path, sizeof f->path, "%s/yizhan.conf.lua", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_config_free(f->cfg);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Writes 'text' as the configuration and loads it; the result must be a
** success. */
static yz_config *load_ok(fixture *f, const char *text) {
  tu_write(f->dir, "yizhan.conf.lua", text);
  yz_config_free(f->cfg);
  f->cfg = NULL;
  f->err[0] = '\0';
  int rc = yz_config_load(f->path, &f->cfg, f->err, sizeof f->err);
  if (rc != YZ_OK) fprintf(stderr, "unexpected error: %s\n", f->err);
  assert_int_equal(rc, YZ_OK);
  assert_non_null(f->cfg);
  return f->cfg;
}

/* Writes 'text' as the configuration and loads it; the result must be a
** failure that leaves the output pointer NULL. Returns the message. */
static const char *load_fails(fixture *f, const char *text) {
  tu_write(f->dir, "yizhan.conf.lua", text);
  yz_config_free(f->cfg);
  f->cfg = NULL;
  yz_config sentinel;
  yz_config *c = &sentinel; /* must be overwritten with NULL */
  f->err[0] = '\0';
  int rc = yz_config_load(f->path, &c, f->err, sizeof f->err);
  if (c != &sentinel) f->cfg = c; /* freed in teardown if not NULL */
  if (rc == YZ_OK) fprintf(stderr, "unexpectedly loaded:\n%s\n", text);
  assert_int_not_equal(rc, YZ_OK);
  assert_true(c != &sentinel);
  assert_null(c);
  assert_true(f->err[0] != '\0');
  return f->err;
}

/* "PATH:LINE:" for the fixture's file. */
static const char *at_line(fixture *f, int line) {
  static char buf[4200];
  snprintf(buf, sizeof buf, "%s:%d:", f->path, line);
  return buf;
}

/* ------------------------------------------------------------ bad files */

static void a_syntax_error_names_the_file_and_line(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "timezone = \"Asia/Shanghai\"\n"
                             "database = \"yizhan.db\"\n"
                             "log_level = = \"info\"\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e, "expected Lua table syntax"));
}

static void an_unclosed_table_is_a_syntax_error_at_the_end(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "plugins = {\n  a = {},\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e, "near <eof>"));
}

static void a_runtime_error_names_the_file_and_line_without_traceback(
    void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "timezone = \"Asia/Shanghai\"\n"
                             "\n"
                             "database = nothing_here()\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e, "attempt to call a nil value"));
  assert_null(strchr(e, '\n'));
  assert_null(strstr(e, "stack traceback"));
}

static void the_config_has_no_libraries(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "database = os.getenv(\"HOME\")\n");
  assert_true(tu_contains(e, at_line(f, 1)));
  assert_true(tu_contains(e, "attempt to index a nil value"));
}

static void a_config_that_never_finishes_is_stopped(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "while true do end\n");
  assert_true(tu_contains(e, f->path));
  assert_true(tu_contains(e, "CPU budget exceeded"));
  /* So does one that allocates without end. */
  e = load_fails(f, "local t = {}\nfor i = 1, 1e9 do t[i] = i end\n");
  assert_true(tu_contains(e, f->path));
  assert_true(tu_contains(e, "memory"));
}

static void a_missing_file_names_its_path(void **state) {
  fixture *f = *state;
  char missing[4200];
  snprintf(missing, sizeof missing, "%s/nope.conf.lua", f->dir);
  yz_config sentinel;
  yz_config *c = &sentinel;
  char err[4096] = "";
  assert_int_not_equal(yz_config_load(missing, &c, err, sizeof err), YZ_OK);
  assert_null(c);
  assert_true(tu_contains(err, missing));
  assert_true(tu_contains(err, "cannot read the configuration"));
  assert_true(tu_contains(err, "No such file"));
}

/* --------------------------------------------------------- unknown keys */

static void an_unknown_option_with_a_near_miss_suggests_the_right_one(
    void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "-- my configuration\n"
                             "database = \"yizhan.db\"\n"
                             "timezon = \"Asia/Shanghai\"\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e, "timezon"));
  assert_true(tu_contains(e, "unknown option"));
  assert_true(tu_contains(e, "did you mean 'timezone'"));
}

static void an_unknown_option_far_from_any_gets_no_suggestion(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "\n\nfrobnicate = true\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e, "frobnicate: unknown option"));
  assert_null(strstr(e, "did you mean"));
}

static void a_misspelt_plugins_key_is_not_taken_for_plugin_limits(
    void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "plugin = { a = {} }\n");
  assert_true(tu_contains(e, at_line(f, 1)));
  assert_true(tu_contains(e, "did you mean 'plugins'"));
}

/* ---------------------------------------------------------- wrong types */

static void a_wrong_type_names_the_expected_and_actual_types(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "database = \"x.db\"\ntimezone = 8\n");
  assert_true(tu_contains(e, at_line(f, 2)));
  assert_true(tu_contains(e, "timezone: expected a string, got integer"));
  e = load_fails(f, "database = 1.5\n");
  assert_true(tu_contains(e, at_line(f, 1)));
  assert_true(tu_contains(e, "database: expected a string, got number"));
  e = load_fails(f, "database = \"\"\n");
  assert_true(tu_contains(e, "database: expected a file name, got an empty"));
  e = load_fails(f, "log_level = \"loud\"\n");
  assert_true(tu_contains(e,
                          "log_level: expected debug, info, warn or error, "
                          "got 'loud'"));
  e = load_fails(f, "plugin_path = \"/opt/plugins\"\n");
  assert_true(tu_contains(e,
                          "plugin_path: expected a list of folders, got "
                          "string"));
  e = load_fails(f, "database = \"x.db\"\nplugin_path = { \"a\",\n  3 }\n");
  assert_true(tu_contains(e, at_line(f, 2))); /* the list's line */
  assert_true(tu_contains(e, "plugin_path[2]: expected a string, got integer"));
  e = load_fails(f, "limits = 64\n");
  assert_true(tu_contains(e, "limits: expected a table, got integer"));
}

static void a_bad_nested_limit_names_its_path_and_line(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "plugins = {}\n"
                             "limits = {\n"
                             "  instructions = 1000,\n"
                             "  memory_mb = -1,\n"
                             "}\n");
  assert_true(tu_contains(e, at_line(f, 4)));
  assert_true(tu_contains(e,
                          "limits.memory_mb: expected a number above 0, "
                          "got -1"));
  e = load_fails(f, "limits = { memory_mb = 100000 }\n");
  assert_true(tu_contains(e, "limits.memory_mb: at most 65536 MiB"));
  e = load_fails(f, "limits = { quarantine_after = 2.5 }\n");
  assert_true(tu_contains(e,
                          "limits.quarantine_after: expected a whole "
                          "number, got 2.5"));
  e = load_fails(f, "limits = { instructions = \"many\" }\n");
  assert_true(tu_contains(e,
                          "limits.instructions: expected a number, got "
                          "string"));
}

static void a_misspelt_limit_suggests_the_right_one(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "\nlimits = { memroy_mb = 1 }\n");
  assert_true(tu_contains(e, at_line(f, 2)));
  assert_true(tu_contains(e, "limits.memroy_mb: unknown limit"));
  assert_true(tu_contains(e, "did you mean 'memory_mb'"));
  e = load_fails(f, "limits = { speed = 1 }\n");
  assert_true(tu_contains(e, "limits.speed: unknown limit"));
  assert_null(strstr(e, "did you mean"));
  assert_true(tu_contains(e,
                          "expected one of memory_mb, instructions, "
                          "quarantine_after"));
}

static void limits_too_large_for_the_host_are_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "limits = { instructions = 1e300 }\n");
  assert_true(tu_contains(e, "limits.instructions: at most"));
  e = load_fails(f, "limits = { quarantine_after = 1e10 }\n");
  assert_true(tu_contains(e, "limits.quarantine_after: at most"));
}

/* A value above 0 that would round to 0 means "unlimited" to the sandbox,
** the opposite of what was asked. */
static void limits_that_would_round_to_unlimited_are_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "limits = { instructions = 0.5 }\n");
  assert_true(tu_contains(e, "limits.instructions: expected a whole number"));
  e = load_fails(f, "limits = { memory_mb = 1e-9 }\n");
  assert_true(tu_contains(e, "limits.memory_mb: at least 1 MiB"));
  yz_config *c =
      load_ok(f, "limits = { memory_mb = 1.5, instructions = 1e6 }\n");
  assert_true(c->limits.memory == (size_t)1536 << 10);
  assert_true(c->limits.instructions == 1000000);
}

static void a_bad_time_zone_is_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "\ntimezone = \"Mars/Olympus_Mons\"\n");
  assert_true(tu_contains(e, at_line(f, 2)));
  assert_true(tu_contains(e, "unknown time zone 'Mars/Olympus_Mons'"));
  e = load_fails(f, "timezone = \"../../etc/passwd\"\n");
  assert_true(tu_contains(e, "is not an IANA time zone name"));
  e = load_fails(f, "timezone = \"/etc/localtime\"\n");
  assert_true(tu_contains(e, "is not an IANA time zone name"));
  e = load_fails(f, "timezone = \"\"\n");
  assert_true(tu_contains(e, "is not an IANA time zone name"));
  e = load_fails(f, "timezone = \"Asia\"\n"); /* a folder, not a zone */
  assert_true(tu_contains(e, "unknown time zone 'Asia'"));
  yz_config *c = load_ok(f, "timezone = \"Europe/Paris\"\n");
  assert_string_equal(c->timezone, "Europe/Paris");
}

/* ------------------------------------------------------------- plugins */

static void invalid_plugin_names_are_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "timezone = \"Asia/Shanghai\"\n"
                             "plugins = {\n"
                             "  [\"Bad-Name\"] = {},\n"
                             "}\n");
  assert_true(tu_contains(e, at_line(f, 2)));
  assert_true(tu_contains(e, "'Bad-Name' is not a plugin name"));
  e = load_fails(f, "plugins = { Upper = true }\n");
  assert_true(tu_contains(e, "'Upper' is not a plugin name"));
  e = load_fails(f, "plugins = { [\"9lives\"] = true }\n");
  assert_true(tu_contains(e, "'9lives' is not a plugin name"));
  e = load_fails(f, "plugins = { [\"\"] = true }\n");
  assert_true(tu_contains(e, "'' is not a plugin name"));
  e = load_fails(f, "plugins = { \"letter_reminder\" }\n");
  assert_true(tu_contains(e, "is not a plugin name"));
}

static void a_plugin_entry_of_the_wrong_type_is_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, "plugins = {\n  ok = {},\n  x = 5,\n}\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e,
                          "plugins.x: expected a table of options, true or "
                          "false, got integer"));
  e = load_fails(f, "plugins = \"letter_reminder\"\n");
  assert_true(tu_contains(e,
                          "plugins: expected a table of plugin = options, "
                          "got string"));
}

static void plugin_limits_for_an_unconfigured_plugin_are_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "plugins = { a = {} }\n"
                             "plugin_limits = {\n"
                             "  ghost = { memory_mb = 8 },\n"
                             "}\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e,
                          "plugin_limits.ghost: 'ghost' is not in "
                          "'plugins'"));
  e = load_fails(f,
                 "plugins = { a = {} }\n"
                 "plugin_limits = { a = { memory_md = 8 } }\n");
  assert_true(tu_contains(e, "plugin_limits.a.memory_md: unknown limit"));
  assert_true(tu_contains(e, "did you mean 'memory_mb'"));
}

static void plugins_are_listed_in_name_order_with_their_enabled_flag(
    void **state) {
  fixture *f = *state;
  yz_config *c =
      load_ok(f, "plugins = { zeta = {}, alpha = true, mid = false }\n");
  assert_int_equal(c->nplugins, 3);
  assert_string_equal(c->plugins[0].name, "alpha");
  assert_string_equal(c->plugins[1].name, "mid");
  assert_string_equal(c->plugins[2].name, "zeta");
  assert_true(c->plugins[0].enabled);
  assert_false(c->plugins[1].enabled);
  assert_true(c->plugins[2].enabled);
  assert_non_null(yz_config_plugin(c, "mid"));
  assert_null(yz_config_plugin(c, "other"));
}

/* ------------------------------------------------------------------ env */

static void env_reads_a_set_variable(void **state) {
  fixture *f = *state;
  setenv("YZ_TEST_CONFIG_DB", "secret.db", 1);
  yz_config *c = load_ok(f, "database = env(\"YZ_TEST_CONFIG_DB\")\n");
  assert_string_equal(c->database, "secret.db");
  unsetenv("YZ_TEST_CONFIG_DB");
}

static void env_of_an_unset_variable_names_it_and_the_line(void **state) {
  fixture *f = *state;
  unsetenv("YZ_TEST_CONFIG_MISSING");
  const char *e = load_fails(f,
                             "timezone = \"Asia/Shanghai\"\n"
                             "database = env(\"YZ_TEST_CONFIG_MISSING\")\n");
  assert_true(tu_contains(e, at_line(f, 2)));
  assert_true(tu_contains(e, "YZ_TEST_CONFIG_MISSING is not set"));
}

static void env_with_a_fallback_uses_it_when_unset(void **state) {
  fixture *f = *state;
  unsetenv("YZ_TEST_CONFIG_MISSING");
  yz_config *c = load_ok(
      f, "database = env(\"YZ_TEST_CONFIG_MISSING\", \"fallback.db\")\n");
  assert_string_equal(c->database, "fallback.db");
  /* A set variable wins over the fallback. */
  setenv("YZ_TEST_CONFIG_MISSING", "set.db", 1);
  c = load_ok(f,
              "database = env(\"YZ_TEST_CONFIG_MISSING\", \"fallback.db\")\n");
  assert_string_equal(c->database, "set.db");
  unsetenv("YZ_TEST_CONFIG_MISSING");
}

/* ------------------------------------------------------------- defaults */

static void an_empty_file_gives_every_default(void **state) {
  fixture *f = *state;
  yz_config *c = load_ok(f, "");
  assert_string_equal(c->path, f->path);
  assert_string_equal(c->timezone, "Asia/Shanghai");
  assert_string_equal(c->database, "yizhan.db");
  assert_string_equal(c->log_level, "info");
  assert_int_equal(c->nplugin_path, 0);
  assert_int_equal(c->calendar.nterms, 0);
  assert_int_equal(c->nplugins, 0);
  assert_true(c->limits.memory == (size_t)64 << 20);
  assert_true(c->limits.instructions == 1000000000LL);
  assert_int_equal(c->limits.quarantine_after, 5);
  /* The same as the built-in defaults. */
  yz_config *d = yz_config_defaults();
  assert_string_equal(d->timezone, c->timezone);
  assert_string_equal(d->database, c->database);
  assert_true(d->limits.memory == c->limits.memory);
  assert_true(d->limits.instructions == c->limits.instructions);
  assert_int_equal(d->limits.quarantine_after, c->limits.quarantine_after);
  yz_config_free(d);
}

static void per_plugin_limits_merge_over_the_global_ones(void **state) {
  fixture *f = *state;
  yz_config *c = load_ok(f,
                         "limits = { memory_mb = 32, quarantine_after = 3 }\n"
                         "plugins = { big = {}, small = true }\n"
                         "plugin_limits = { big = { memory_mb = 128 } }\n");
  assert_true(c->limits.memory == (size_t)32 << 20);
  assert_true(c->limits.instructions == 1000000000LL);
  assert_int_equal(c->limits.quarantine_after, 3);
  yz_limits big = yz_config_limits_for(c, "big");
  assert_true(big.memory == (size_t)128 << 20);
  assert_true(big.instructions == 1000000000LL);
  assert_int_equal(big.quarantine_after, 3);
  assert_true(yz_config_plugin(c, "big")->has_limits);
  yz_limits small = yz_config_limits_for(c, "small");
  assert_true(small.memory == (size_t)32 << 20);
  assert_int_equal(small.quarantine_after, 3);
  assert_false(yz_config_plugin(c, "small")->has_limits);
  /* A plugin the config does not name gets the global limits. */
  yz_limits other = yz_config_limits_for(c, "other");
  assert_true(other.memory == (size_t)32 << 20);
}

static void global_limits_written_after_plugins_still_apply(void **state) {
  fixture *f = *state;
  /* Lua evaluates the whole file first, so the order in it does not
  ** matter. */
  yz_config *c = load_ok(f,
                         "plugins = { a = {} }\n"
                         "plugin_limits = { a = { instructions = 5000 } }\n"
                         "limits = { memory_mb = 16 }\n");
  yz_limits a = yz_config_limits_for(c, "a");
  assert_true(a.memory == (size_t)16 << 20);
  assert_true(a.instructions == 5000);
}

/* --------------------------------------------------------- line finder */

static void the_line_finder_follows_nested_paths_past_comments(void **state) {
  fixture *f = *state;
  yz_config *c =
      load_ok(f,
              "-- plugins = { letter_reminder = { at = \"07:00\" } }\n" /* 1 */
              "timezone = \"Asia/Shanghai\"\n"                          /* 2 */
              "plugins = {\n"                                           /* 3 */
              "  other = { at = \"06:00\" },\n"                         /* 4 */
              "  letter_reminder = {\n"                                 /* 5 */
              "    -- at = \"09:00\", the old time\n"                   /* 6 */
              "    --[[ at = \"10:00\"\n"                               /* 7 */
              "    at = \"11:00\" ]]\n"                                 /* 8 */
              "    to = \"a\", at = \"08:00\",\n"                       /* 9 */
              "  },\n"                                                  /* 10 */
              "  [\"quoted\"] = { at = \"12:00\" },\n"                  /* 11 */
              "}\n");
  assert_int_equal(yz_config_line_of(c, "timezone"), 2);
  assert_int_equal(yz_config_line_of(c, "plugins"), 3);
  assert_int_equal(yz_config_line_of(c, "plugins.other.at"), 4);
  assert_int_equal(yz_config_line_of(c, "plugins.letter_reminder"), 5);
  assert_int_equal(yz_config_line_of(c, "plugins.letter_reminder.at"), 9);
  assert_int_equal(yz_config_line_of(c, "plugins.letter_reminder.to"), 9);
  assert_int_equal(yz_config_line_of(c, "plugins.quoted.at"), 11);
  assert_int_equal(yz_config_line_of(c, "plugins[1]"), 3);
  assert_int_equal(yz_config_line_of(c, "database"), 0);
  assert_int_equal(yz_config_line_of(c, "nothing.at.all"), 0);
}

static void the_line_finder_does_not_match_inside_longer_names(void **state) {
  fixture *f = *state;
  yz_config *c = load_ok(f,
                         "plugins = { a = {} }\n"
                         "plugin_limits = { a = { memory_mb = 8 } }\n"
                         "limits = { memory_mb = 16 }\n");
  assert_int_equal(yz_config_line_of(c, "limits"), 3);
  assert_int_equal(yz_config_line_of(c, "limits.memory_mb"), 3);
  assert_int_equal(yz_config_line_of(c, "plugin_limits.a.memory_mb"), 2);
  assert_int_equal(yz_config_line_of(NULL, "limits"), 0);
}

/* ------------------------------------------------------------- template */

static void the_init_template_loads_without_error(void **state) {
  fixture *f = *state;
  const char *t = yz_config_template();
  assert_non_null(t);
  assert_true(tu_contains(t, "plugins = {"));
  yz_config *c = load_ok(f, t);
  assert_string_equal(c->timezone, "Asia/Shanghai");
  assert_string_equal(c->database, "yizhan.db");
  assert_int_equal(c->nplugins, 0);
}

/* Every option the template shows, uncommented, is valid and is the
** default (plugin_limits names an example plugin, so it stays out). */
static void the_template_options_uncommented_are_the_defaults(void **state) {
  fixture *f = *state;
  const char *t = yz_config_template();
  size_t n = strlen(t);
  char *out = calloc(1, n + 1);
  size_t o = 0;
  int uncommented = 0;
  for (const char *line = t; *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
    const char *body = line + 3;
    int option = len > 3 && strncmp(line, "-- ", 3) == 0 && body[0] >= 'a' &&
                 body[0] <= 'z' && strncmp(body, "plugin_limits", 13) != 0;
    if (option) {
      size_t k = strspn(body, "abcdefghijklmnopqrstuvwxyz_");
      option = strncmp(body + k, " = ", 3) == 0;
    }
    if (option) {
      memcpy(out + o, body, len - 3);
      o += len - 3;
      uncommented++;
    } else {
      memcpy(out + o, line, len);
      o += len;
    }
    line += len;
  }
  out[o] = '\0';
  assert_int_equal(uncommented, 7);
  yz_config *c = load_ok(f, out);
  free(out);
  yz_config *d = yz_config_defaults();
  assert_string_equal(c->timezone, d->timezone);
  assert_string_equal(c->database, d->database);
  assert_string_equal(c->log_level, d->log_level);
  assert_int_equal(c->nplugin_path, 0);
  assert_int_equal(c->calendar.nterms, 0);
  assert_true(c->limits.memory == d->limits.memory);
  assert_true(c->limits.instructions == d->limits.instructions);
  assert_int_equal(c->limits.quarantine_after, d->limits.quarantine_after);
  assert_int_equal(c->quiet, d->quiet);
  assert_int_equal(c->quiet_from, d->quiet_from);
  assert_int_equal(c->quiet_to, d->quiet_to);
  /* The one channel the template enables writes to a file. */
  assert_int_equal(c->nchannels, 1);
  assert_string_equal(c->default_channel, "demo");
  assert_string_equal(c->channels[0].rules.type, "file");
  yz_config_free(d);
}

/* ------------------------------------------------------------- calendar */

static void a_school_calendar_is_read_sorted(void **state) {
  fixture *f = *state;
  yz_config *c = load_ok(
      f,
      "calendar = {\n"
      "  terms = {\n"
      "    { name = '2027春', start = '2027-02-22', mid = '2027-04-19', "
      "['end'] = '2027-07-02' },\n"
      "    { name = '2026秋', start = '2026-09-01', mid = '2026-11-09', "
      "['end'] = '2027-01-22' },\n"
      "  },\n"
      "  holidays = { { name = '国庆', from = '2026-10-01', to = '2026-10-07' "
      "} "
      "},\n"
      "  spring_festival = { ['2028'] = '2028-01-26', ['2027'] = '2027-02-06' "
      "},\n"
      "}\n");
  assert_int_equal(c->calendar.nterms, 2);
  assert_string_equal(c->calendar.terms[0].name, "2026秋");
  int64_t d;
  yz_parse_date("2026-11-09", &d);
  assert_true(c->calendar.terms[0].mid == d);
  assert_int_equal(c->calendar.nholidays, 1);
  assert_int_equal(c->calendar.nspring, 2);
  yz_parse_date("2027-02-06", &d);
  assert_true(c->calendar.spring[0] == d);
}

static void a_bad_calendar_names_the_entry_and_line(void **state) {
  fixture *f = *state;
  const char *e =
      load_fails(f,
                 "calendar = {\n"
                 "  terms = {\n"
                 "    { name = 'a', start = '2026-09-01', mid = '2026-11-31', "
                 "['end'] = '2027-01-22' },\n"
                 "  },\n"
                 "}\n");
  assert_true(tu_contains(e,
                          "calendar.terms[1].mid: '2026-11-31' is not a "
                          "date (expected YYYY-MM-DD)"));
  assert_true(tu_contains(e, at_line(f, 2)));
  e = load_fails(f,
                 "calendar = { terms = { { name = 'a', start = '2026-09-01', "
                 "mid = '2026-08-01', ['end'] = '2027-01-22' } } }\n");
  assert_true(
      tu_contains(e, "calendar.terms[1]: expected start <= mid <= end"));
  e = load_fails(f,
                 "calendar = { terms = {\n"
                 " { name = 'a', start = '2026-09-01', mid = '2026-11-01', "
                 "['end'] = '2027-01-22' },\n"
                 " { name = 'b', start = '2027-01-10', mid = '2027-04-01', "
                 "['end'] = '2027-07-01' } } }\n");
  assert_true(tu_contains(e, "terms 'a' and 'b' overlap"));
  e = load_fails(f, "calendar = { term = {} }\n");
  assert_true(tu_contains(e,
                          "calendar.term: unknown key (did you mean "
                          "'terms'?)"));
  e = load_fails(f,
                 "calendar = { spring_festival = { ['2027'] = '2028-01-26' "
                 "} }\n");
  assert_true(tu_contains(e, "[\"2027\"]: expected a date in 2027"));
  e = load_fails(f,
                 "calendar = { holidays = { { name = 'x', from = "
                 "'2026-10-07', to = '2026-10-01' } } }\n");
  assert_true(tu_contains(e, "calendar.holidays[1]: expected from <= to"));
}

/* ------------------------------------------------- templates and secrets */

/* Two templates: 'letter' repeats {{child}}, 'notice' has its own order. */
#define TEMPLATES                                                                        \
  "templates = {\n"                                                                      \
  "  letter = '{{child}}同学{{month}}月还没有给父母写信，{{child}}的老师" \
  "{{teacher}}提醒',\n"                                                                \
  "  notice = '{{month}}月{{day}}日起放假',\n"                                      \
  "}\n"

static void templates_keep_their_placeholders_in_order_of_appearance(
    void **state) {
  fixture *f = *state;
  yz_config *c = load_ok(f, TEMPLATES);
  assert_int_equal(c->ntemplates, 2);
  /* Sorted by name; a placeholder used twice is listed once. */
  assert_string_equal(c->templates[0].name, "letter");
  assert_string_equal(c->templates[1].name, "notice");
  const yz_template *t = yz_config_template_named(c, "letter");
  assert_ptr_equal(t, &c->templates[0]);
  assert_true(tu_contains(t->text, "{{child}}同学{{month}}月"));
  assert_int_equal(t->nparams, 3);
  assert_string_equal(t->params[0], "child");
  assert_string_equal(t->params[1], "month");
  assert_string_equal(t->params[2], "teacher");
  t = yz_config_template_named(c, "notice");
  assert_int_equal(t->nparams, 2);
  assert_string_equal(t->params[0], "month");
  assert_string_equal(t->params[1], "day");
  assert_null(yz_config_template_named(c, "lettre"));
  assert_null(yz_config_template_named(c, NULL));
  /* A template without placeholders has none. */
  c = load_ok(f, "templates = { plain_text = '放假通知' }\n");
  assert_int_equal(c->ntemplates, 1);
  assert_int_equal(c->templates[0].nparams, 0);
  /* No 'templates': none. */
  c = load_ok(f, "");
  assert_int_equal(c->ntemplates, 0);
  assert_null(yz_config_template_named(c, "letter"));
}

static void a_bad_template_names_the_file_line_and_key(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "templates = {\n"
                             "  notice = '放假',\n"
                             "  letter = 42,\n"
                             "}\n");
  assert_true(tu_contains(e, at_line(f, 3)));
  assert_true(tu_contains(e,
                          "templates.letter: expected a string, got "
                          "integer"));
  e = load_fails(f,
                 "templates = {\n"
                 "  letter = '{{ child}}同学',\n"
                 "}\n");
  assert_true(tu_contains(e, at_line(f, 2)));
  assert_true(tu_contains(e,
                          "templates.letter: a placeholder is {{name}} "
                          "(letters, digits and '_'), got '{{ child}}"));
  e = load_fails(f, "templates = { letter = '你好{{}}' }\n");
  assert_true(tu_contains(e, at_line(f, 1)));
  assert_true(tu_contains(e,
                          "templates.letter: a placeholder is {{name}} "
                          "(letters, digits and '_'), got '{{}}'"));
  e = load_fails(f, "templates = { letter = '{{child同学' }\n");
  assert_true(tu_contains(e, "templates.letter: a placeholder is {{name}}"));
  assert_true(tu_contains(e, "got '{{child"));
  e = load_fails(f, "templates = { letter = '' }\n");
  assert_true(tu_contains(e,
                          "templates.letter: expected non-empty UTF-8 "
                          "text"));
  e = load_fails(f, "templates = 'letter'\n");
  assert_true(tu_contains(e,
                          "templates: expected a table of name = \"text "
                          "with {{params}}\", got string"));
  /* Names are like plugin names. */
  const char *names[] = {"Letter = 'x'", "['1st'] = 'x'", "['a b'] = 'x'",
                         "[1] = 'x'"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char text[128];
    snprintf(text, sizeof text, "\ntemplates = { %s }\n", names[i]);
    e = load_fails(f, text);
    if (!tu_contains(e, at_line(f, 2)) ||
        !tu_contains(e,
                     "templates: template names are lower-case letters, "
                     "digits and '_', starting with a letter"))
      fail_msg("name %s", names[i]);
  }
}

/* A channel that sends only approved templates, with 'map' as its
** templates table. */
static const char *with_map(const char *map) {
  static char text[4096];
  snprintf(text, sizeof text,
           TEMPLATES
           "channels = {\n"
           "  sms = { type = 'aliyun',\n"
           "    templates = %s,\n"
           "  },\n"
           "}\n",
           map);
  return text;
}

static void a_channel_map_naming_an_undefined_template_lists_the_defined(
    void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, with_map("{ letter = 'SMS_1', notice = "
                                         "'SMS_2', lettre = 'SMS_3' }"));
  assert_true(tu_contains(e, at_line(f, 7)));
  assert_true(tu_contains(e,
                          "channels.sms.templates.lettre: no template "
                          "'lettre' in the top-level 'templates' table "
                          "(defined: letter, notice)"));
  /* Without any templates, it says so. */
  e = load_fails(f,
                 "channels = { sms = { type = 'aliyun', templates = { "
                 "letter = 'SMS_1' } } }\n");
  assert_true(tu_contains(e,
                          "channels.sms.templates.letter: no template "
                          "'letter'"));
  assert_true(tu_contains(e, "(defined: none)"));
  e = load_fails(f, with_map("'SMS_1'"));
  assert_true(tu_contains(e,
                          "channels.sms.templates: expected a table of "
                          "template = \"provider code\", got string"));
}

static void a_template_missing_from_a_channel_map_is_named(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f, with_map("{ letter = 'SMS_1' }"));
  assert_true(tu_contains(e, at_line(f, 7)));
  assert_true(tu_contains(e,
                          "channels.sms.templates: template 'notice' has no "
                          "entry: a channel that sends only approved "
                          "templates needs the provider's code of each (add "
                          "notice = \"...\")"));
}

static void a_bad_channel_map_entry_is_refused(void **state) {
  fixture *f = *state;
  struct {
    const char *map, *want;
  } cases[] = {
      {"{ notice = 'SMS_2', letter = { code = 'SMS_1', parms = { 'child' } "
       "} }",
       "channels.sms.templates.letter.parms: unknown key (expected code and "
       "params)"},
      {"{ notice = 'SMS_2', letter = { code = 'SMS_1', params = { 'child', "
       "'month', 'teacher', 'school' } } }",
       "channels.sms.templates.letter.params: 'school' is not a parameter of "
       "template 'letter' (its text has no {{school}})"},
      {"{ notice = 'SMS_2', letter = { code = 'SMS_1', params = { 'child', "
       "'month', 'child', 'teacher' } } }",
       "channels.sms.templates.letter.params: 'child' is listed twice"},
      {"{ notice = 'SMS_2', letter = { code = 'SMS_1', params = { 'child', "
       "'month' } } }",
       "channels.sms.templates.letter.params: 'teacher' is missing: the "
       "provider's template must carry every parameter"},
      {"{ notice = 'SMS_2', letter = { code = 'SMS_1', params = 'child' } }",
       "channels.sms.templates.letter.params: expected a list of parameter "
       "names, got string"},
      {"{ notice = 'SMS_2', letter = { params = { 'child', 'month', "
       "'teacher' } } }",
       "channels.sms.templates.letter.code: missing: the provider's "
       "template code"},
      {"{ notice = 'SMS_2', letter = '' }",
       "channels.sms.templates.letter: the template code is empty"},
      {"{ notice = 'SMS_2', letter = { code = '' } }",
       "channels.sms.templates.letter: the template code is empty"},
      {"{ notice = 'SMS_2', letter = 7 }",
       "channels.sms.templates.letter: expected the provider's template "
       "code, or { code = ..., params = { ... } }, got integer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *e = load_fails(f, with_map(cases[i].map));
    if (!tu_contains(e, at_line(f, 7)) || !tu_contains(e, cases[i].want))
      fail_msg("case %zu", i);
  }
}

static void a_channel_map_gives_each_template_its_code_and_order(void **state) {
  fixture *f = *state;
  yz_config *c = load_ok(f, TEMPLATES
                         "channels = {\n"
                         "  ali = { type = 'aliyun', templates = {\n"
                         "    letter = 'SMS_1', notice = 'SMS_2' } },\n"
                         "  tc = { type = 'tencent', templates = {\n"
                         "    letter = { code = '1234567', params = {\n"
                         "      'teacher', 'child', 'month' } },\n"
                         "    notice = { code = '7654321' } } },\n"
                         "  demo = { type = 'file', path = 'o.jsonl' },\n"
                         "}\n");
  /* A string: the local text's order. */
  const yz_chan_conf *ali = yz_config_channel(c, "ali");
  assert_non_null(ali);
  assert_true(ali->templates_only);
  assert_int_equal(ali->ntpls, 2);
  const yz_tpl_map *m = yz_config_tpl_map(ali, "letter");
  assert_non_null(m);
  assert_string_equal(m->name, "letter");
  assert_string_equal(m->code, "SMS_1");
  assert_int_equal(m->nparams, 3);
  assert_string_equal(m->params[0], "child");
  assert_string_equal(m->params[1], "month");
  assert_string_equal(m->params[2], "teacher");
  m = yz_config_tpl_map(ali, "notice");
  assert_string_equal(m->code, "SMS_2");
  assert_int_equal(m->nparams, 2);
  assert_string_equal(m->params[0], "month");
  assert_string_equal(m->params[1], "day");
  assert_null(yz_config_tpl_map(ali, "lettre"));
  assert_null(yz_config_tpl_map(ali, NULL));
  /* A table: its own order; without params, the local text's. */
  const yz_chan_conf *tc = yz_config_channel(c, "tc");
  m = yz_config_tpl_map(tc, "letter");
  assert_string_equal(m->code, "1234567");
  assert_int_equal(m->nparams, 3);
  assert_string_equal(m->params[0], "teacher");
  assert_string_equal(m->params[1], "child");
  assert_string_equal(m->params[2], "month");
  m = yz_config_tpl_map(tc, "notice");
  assert_string_equal(m->code, "7654321");
  assert_int_equal(m->nparams, 2);
  assert_string_equal(m->params[0], "month");
  /* A channel without a map sends free text. */
  const yz_chan_conf *demo = yz_config_channel(c, "demo");
  assert_false(demo->templates_only);
  assert_int_equal(demo->ntpls, 0);
  assert_null(yz_config_tpl_map(demo, "letter"));
}

static void a_secret_written_in_the_file_is_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "channels = {\n"
                             "  sms = { type = 'aliyun',\n"
                             "    access_key_id = 'LTAI5t',\n"
                             "    access_key_secret = 'hunter2',\n"
                             "  },\n"
                             "}\n");
  assert_true(tu_contains(e, at_line(f, 4)));
  assert_true(tu_contains(e,
                          "channels.sms.access_key_secret: a secret must "
                          "come from the environment: write env(\"NAME\")"));
  /* The secret itself is not repeated in the message. */
  assert_null(strstr(e, "hunter2"));
}

static void a_secret_from_the_environment_is_accepted(void **state) {
  fixture *f = *state;
  setenv("YZ_TEST_CONFIG_SK", "s3cr3t", 1);
  yz_config *c = load_ok(f,
                         "channels = { sms = { type = 'aliyun', "
                         "access_key_id = 'LTAI5t', access_key_secret = "
                         "env('YZ_TEST_CONFIG_SK') } }\n");
  assert_non_null(yz_config_channel(c, "sms"));
  unsetenv("YZ_TEST_CONFIG_SK");
}

/* env()'s default is written in the file: it is not from the environment. */
static void a_secret_from_an_env_default_is_refused(void **state) {
  fixture *f = *state;
  unsetenv("YZ_TEST_CONFIG_SK");
  const char *e = load_fails(f,
                             "channels = { sms = { type = 'aliyun', "
                             "access_key_secret = env('YZ_TEST_CONFIG_SK', "
                             "'dev-secret') } }\n");
  assert_true(tu_contains(e,
                          "channels.sms.access_key_secret: a secret must "
                          "come from the environment"));
}

/* A number cannot have come from env() (it returns strings): one under a
** secret's key was written in the file. */
static void a_secret_written_as_a_number_is_refused(void **state) {
  fixture *f = *state;
  const char *e = load_fails(f,
                             "channels = { sms = { type = 'tencent', "
                             "secret_key = 123456 } }\n");
  assert_true(tu_contains(e,
                          "channels.sms.secret_key: a secret must come from "
                          "the environment"));
}

static void identifiers_and_passwords_may_be_written_in_the_file(void **state) {
  fixture *f = *state;
  setenv("YZ_TEST_CONFIG_SK", "s3cr3t", 1);
  /* Tencent's secret_id names the key, it is not the secret. */
  yz_config *c = load_ok(f,
                         "channels = { tc = { type = 'tencent', secret_id = "
                         "'AKIDz8krbsJ5yKBZQpn74WFkmLPx3', secret_key = "
                         "env('YZ_TEST_CONFIG_SK') } }\n");
  assert_non_null(yz_config_channel(c, "tc"));
  unsetenv("YZ_TEST_CONFIG_SK");
  /* Kannel's password is masked when shown but may be in the file. */
  c = load_ok(f,
              "channels = { sms = { type = 'kannel', url = "
              "'http://127.0.0.1:13013/cgi-bin/sendsms', username = 'yz', "
              "password = 'x' } }\n");
  assert_non_null(yz_config_channel(c, "sms"));
}

static void secret_keys_are_told_from_identifiers(void **state) {
  (void)state;
  const char *yes[] = {
      "secret", "access_key_secret", "secret_key", "password", "api_token",
      "token",  "app_secret",        NULL};
  const char *no[] = {"secret_id", "access_key_id", "username", "sign_name",
                      "url",       "sdk_app_id",    NULL};
  for (int i = 0; yes[i]; i++)
    if (!yz_config_key_is_secret(yes[i])) fail_msg("%s is a secret", yes[i]);
  for (int i = 0; no[i]; i++)
    if (yz_config_key_is_secret(no[i])) fail_msg("%s is no secret", no[i]);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(a_syntax_error_names_the_file_and_line),
      T(an_unclosed_table_is_a_syntax_error_at_the_end),
      T(a_runtime_error_names_the_file_and_line_without_traceback),
      T(the_config_has_no_libraries),
      T(a_config_that_never_finishes_is_stopped),
      T(a_missing_file_names_its_path),
      T(an_unknown_option_with_a_near_miss_suggests_the_right_one),
      T(an_unknown_option_far_from_any_gets_no_suggestion),
      T(a_misspelt_plugins_key_is_not_taken_for_plugin_limits),
      T(a_wrong_type_names_the_expected_and_actual_types),
      T(a_bad_nested_limit_names_its_path_and_line),
      T(a_misspelt_limit_suggests_the_right_one),
      T(limits_too_large_for_the_host_are_refused),
      T(limits_that_would_round_to_unlimited_are_refused),
      T(a_bad_time_zone_is_refused),
      T(invalid_plugin_names_are_refused),
      T(a_plugin_entry_of_the_wrong_type_is_refused),
      T(plugin_limits_for_an_unconfigured_plugin_are_refused),
      T(plugins_are_listed_in_name_order_with_their_enabled_flag),
      T(env_reads_a_set_variable),
      T(env_of_an_unset_variable_names_it_and_the_line),
      T(env_with_a_fallback_uses_it_when_unset),
      T(an_empty_file_gives_every_default),
      T(per_plugin_limits_merge_over_the_global_ones),
      T(global_limits_written_after_plugins_still_apply),
      T(the_line_finder_follows_nested_paths_past_comments),
      T(the_line_finder_does_not_match_inside_longer_names),
      T(the_init_template_loads_without_error),
      T(the_template_options_uncommented_are_the_defaults),
      T(a_school_calendar_is_read_sorted),
      T(a_bad_calendar_names_the_entry_and_line),
      T(templates_keep_their_placeholders_in_order_of_appearance),
      T(a_bad_template_names_the_file_line_and_key),
      T(a_channel_map_naming_an_undefined_template_lists_the_defined),
      T(a_template_missing_from_a_channel_map_is_named),
      T(a_bad_channel_map_entry_is_refused),
      T(a_channel_map_gives_each_template_its_code_and_order),
      T(a_secret_written_in_the_file_is_refused),
      T(a_secret_from_the_environment_is_accepted),
      T(a_secret_from_an_env_default_is_refused),
      T(a_secret_written_as_a_number_is_refused),
      T(identifiers_and_passwords_may_be_written_in_the_file),
      T(secret_keys_are_told_from_identifiers),
  };
#undef T
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
