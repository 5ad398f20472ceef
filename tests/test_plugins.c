/*
** test_plugins.c: plugins loaded through the host: discovery (files,
** folders with modules, shadowing of shipped plugins), manifests and their
** errors, dependency order and its failures, table ownership, options merged
** with the configuration, migrations, enable/disable persistence and reload.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "host.h"
#include "plugin.h"
#include "store.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;   /* the data directory */
  yz_host *h;  /* the host on it, or NULL */
  char *extra; /* another scratch directory, or NULL */
} fixture;

static int setup(void **state) {
  *state = calloc(1, sizeof(fixture));
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_host_close(f->h);
  tu_rmrf(f->dir);
  tu_rmrf(f->extra);
  free(f->dir);
  free(f->extra);
  free(f);
  return 0;
}

/* A data directory with 'config' and the plugins given as name, text pairs
** (a name with a '/' is a path under plugins/), ending with NULL. */
static void datadir(fixture *f, const char *config, ...) {
  f->dir = tu_datadir(config);
  va_list ap;
  va_start(ap, config);
  const char *name;
  while ((name = va_arg(ap, const char *)) != NULL) {
    const char *text = va_arg(ap, const char *);
    char file[512];
    if (strchr(name, '/'))
      snprintf(file, sizeof file, "plugins/%s", name);
    else
      snprintf(file, sizeof file, "plugins/%s.lua", name);
    tu_write(f->dir, file, text);
  }
  va_end(ap);
}

/* Opens the host and starts it; returns yz_host_start's result. */
static int start(fixture *f) {
  yz_host_close(f->h);
  f->h = tu_host(f->dir);
  return yz_host_start(f->h);
}

/* Asserts yz_host_start's result; shows every plugin's state when wrong. */
static void expect_start(fixture *f, int want) {
  int rc = start(f);
  if (rc != want)
    for (int i = 0; i < f->h->nplugins; i++) {
      yz_plugin *p = f->h->plugins[i];
      fprintf(stderr, "%s: %s: %s\n", p->name, yz_plugin_state_name(p->state),
              p->error ? p->error : "(no error)");
    }
  assert_int_equal(rc, want);
}

static yz_plugin *find(fixture *f, const char *name) {
  yz_plugin *p = yz_plugin_find(f->h, name);
  if (!p) fprintf(stderr, "plugin '%s' was not discovered\n", name);
  assert_non_null(p);
  return p;
}

/* Asserts that p failed with an error containing 'needle'. */
static void failed_with(yz_plugin *p, const char *needle) {
  if (p->state != YZ_PS_FAILED)
    fprintf(stderr, "%s: state %s, error %s\n", p->name,
            yz_plugin_state_name(p->state), p->error ? p->error : "(none)");
  assert_int_equal(p->state, YZ_PS_FAILED);
  assert_non_null(p->error);
  assert_true(tu_contains(p->error, needle));
}

static void healthy(yz_plugin *p) {
  if (p->state != YZ_PS_OK)
    fprintf(stderr, "%s: state %s, error %s\n", p->name,
            yz_plugin_state_name(p->state), p->error ? p->error : "(none)");
  assert_int_equal(p->state, YZ_PS_OK);
  assert_null(p->error);
}

/* Evaluates 'code' in p and compares the rendering with 'want'. */
static void eval_is(yz_plugin *p, const char *code, const char *want) {
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  assert_string_equal(tu_eval(p, code, &b, YZ_OK), want);
  yz_buf_free(&b);
}

static void query_is(yz_host *h, const char *sql, const char *want) {
  char *got = tu_query(h->store, sql);
  if (strcmp(got, want) != 0) fprintf(stderr, "%s\n  -> %s\n", sql, got);
  assert_string_equal(got, want);
  free(got);
}

/* ----------------------------------------------------------- discovery */

static void a_single_file_plugin_starts(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { hello = {} }\n", "hello",
          "return { name = 'hello', version = '1.2.3',\n"
          "  description = 'says hello' }\n",
          NULL);
  expect_start(f, YZ_OK);
  yz_plugin *p = find(f, "hello");
  healthy(p);
  assert_int_equal(p->enabled, YZ_EN_CONFIG);
  assert_string_equal(p->version, "1.2.3");
  assert_string_equal(p->description, "says hello");
  assert_null(p->dir);
  query_is(f->h,
           "SELECT state || ' ' || version FROM yz_plugins "
           "WHERE name = 'hello'",
           "ok 1.2.3");
}

static void a_data_directory_without_plugins_starts_cleanly(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = {}\n", NULL);
  expect_start(f, YZ_OK);
  assert_int_equal(f->h->nplugins, 0);
  assert_null(yz_plugin_find(f->h, "anything"));
  assert_int_equal(yz_host_reload(f->h), YZ_OK);
  assert_int_equal(f->h->nplugins, 0);
}

static void a_folder_plugin_requires_its_own_modules(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { folder = {} }\n", "folder/init.lua",
          "local util = require 'lib.util'\n"
          "return { name = 'folder', version = '1',\n"
          "  description = util.greet('a folder'),\n"
          "  setup = function(host) assert(util.double(2) == 4) end }\n",
          "folder/lib/util.lua",
          "local M = {}\n"
          "function M.double(n) return n * 2 end\n"
          "function M.greet(w) return 'hello from ' .. w end\n"
          "return M\n",
          NULL);
  expect_start(f, YZ_OK);
  yz_plugin *p = find(f, "folder");
  healthy(p);
  assert_string_equal(p->description, "hello from a folder");
  assert_non_null(p->dir);
  assert_true(tu_contains(p->file, "folder/init.lua"));
  eval_is(p, "require('lib.util').double(21)", "42");
}

/* Single-file plugins load modules from the folder holding them (the
** shipped policies share plugins/lib/ that way), each its own copy. */
static void single_file_plugins_require_from_their_folder(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { one = {}, two = {}, lost = {} }\n", "one",
          "local c = require 'lib.counter'\n"
          "return { name = 'one', version = '1',\n"
          "  setup = function() c.bump(); c.bump() end }\n",
          "two",
          "local c = require 'lib.counter'\n"
          "return { name = 'two', version = '1',\n"
          "  setup = function() c.bump() end }\n",
          "lost",
          "local u = require 'lib.missing'\n"
          "return { name = 'lost', version = '1' }\n",
          "lib/counter.lua",
          "local M = { n = 0 }\n"
          "function M.bump() M.n = M.n + 1 end\n"
          "return M\n",
          NULL);
  expect_start(f, YZ_ERR);
  yz_plugin *one = find(f, "one"), *two = find(f, "two");
  healthy(one);
  healthy(two);
  assert_null(yz_plugin_find(f->h, "lib")); /* no init.lua: no plugin */
  eval_is(one, "require('lib.counter').n", "2");
  eval_is(two, "require('lib.counter').n", "1");
  failed_with(find(f, "lost"), "require 'lib.missing'");
}

static void files_that_are_not_plugins_are_ignored(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { real = {} }\n", "real",
          "return { name = 'real', version = '1' }\n", "real_test",
          "error('a test file is not a plugin')\n", "Upper",
          "return { name = 'Upper', version = '1' }\n", "nofolder/readme.lua",
          "return {}\n", NULL);
  tu_write(f->dir, "plugins/notes.txt", "not lua\n");
  expect_start(f, YZ_OK);
  assert_int_equal(f->h->nplugins, 1);
  healthy(find(f, "real"));
  assert_null(yz_plugin_find(f->h, "real_test"));
  assert_null(yz_plugin_find(f->h, "Upper"));
  assert_null(yz_plugin_find(f->h, "nofolder"));
}

static void a_file_and_a_folder_of_one_name_in_one_folder_are_refused(
    void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { twin = {} }\n", "twin",
          "return { name = 'twin', version = '1' }\n", "twin/init.lua",
          "return { name = 'twin', version = '2' }\n", NULL);
  expect_start(f, YZ_ERR);
  failed_with(find(f, "twin"), "keep one of them");
  assert_true(tu_contains(find(f, "twin")->error, "twin.lua"));
  assert_true(tu_contains(find(f, "twin")->error, "twin/init.lua"));
}

static void a_local_plugin_overrides_a_shipped_one(void **state) {
  fixture *f = *state;
  datadir(f,
          "plugin_path = { 'extra' }\n"
          "plugins = { dup = {}, mid = {}, only = {} }\n",
          "dup", "return { name = 'dup', version = 'local' }\n", NULL);
  f->extra = tu_tmpdir();
  tu_write(f->extra, "dup.lua",
           "return { name = 'dup', version = 'shipped' }\n");
  tu_write(f->extra, "mid.lua",
           "return { name = 'mid', version = 'shipped' }\n");
  tu_write(f->extra, "only.lua",
           "return { name = 'only', version = 'shipped' }\n");
  tu_write(f->dir, "extra/dup.lua",
           "return { name = 'dup', version = 'path' }\n");
  tu_write(f->dir, "extra/mid.lua",
           "return { name = 'mid', version = 'path' }\n");
  const char *old = getenv("YIZHAN_SHIPPED_PLUGINS");
  char *saved = old ? yz_strdup(old) : NULL;
  setenv("YIZHAN_SHIPPED_PLUGINS", f->extra, 1);
  f->h = tu_host(f->dir);
  if (saved)
    setenv("YIZHAN_SHIPPED_PLUGINS", saved, 1);
  else
    unsetenv("YIZHAN_SHIPPED_PLUGINS");
  free(saved);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  assert_int_equal(f->h->nplugins, 3);
  /* DIR/plugins beats plugin_path, which beats the shipped folder. */
  yz_plugin *dup = find(f, "dup"), *mid = find(f, "mid"),
            *only = find(f, "only");
  healthy(dup);
  healthy(mid);
  healthy(only);
  assert_string_equal(dup->version, "local");
  assert_true(tu_contains(dup->file, f->dir));
  assert_true(tu_contains(dup->file, "/plugins/dup.lua"));
  assert_string_equal(mid->version, "path");
  assert_true(tu_contains(mid->file, "/extra/mid.lua"));
  assert_string_equal(only->version, "shipped");
  assert_true(strncmp(only->file, f->extra, strlen(f->extra)) == 0);
}

/* ------------------------------------------------------------ manifests */

/* Starts a data directory with the one plugin 'x' and returns it, failed
** with an error containing both needles (the second may be NULL). */
static yz_plugin *bad_manifest(fixture *f, const char *text, const char *needle,
                               const char *needle2) {
  yz_host_close(f->h);
  f->h = NULL;
  tu_rmrf(f->dir);
  free(f->dir);
  datadir(f, "plugins = { x = {} }\n", "x", text, NULL);
  expect_start(f, YZ_ERR);
  yz_plugin *p = find(f, "x");
  failed_with(p, needle);
  if (needle2) assert_true(tu_contains(p->error, needle2));
  assert_int_equal(p->manifest_ref, LUA_NOREF);
  return p;
}

static void a_plugin_must_return_its_manifest_table(void **state) {
  fixture *f = *state;
  yz_plugin *p = bad_manifest(
      f, "return 42\n",
      "expected the plugin to return its manifest table, got number", NULL);
  assert_true(tu_contains(p->error, "x.lua"));
  bad_manifest(f, "local m = { name = 'x', version = '1' }\n", "got nil", NULL);
}

static void the_manifest_name_must_match_the_file_name(void **state) {
  fixture *f = *state;
  yz_plugin *p = bad_manifest(
      f, "return { name = 'other', version = '1' }\n",
      "manifest field name: 'other' does not match the file or folder name "
      "'x'",
      NULL);
  assert_true(tu_contains(p->error, "x.lua"));
  bad_manifest(f, "return { version = '1' }\n",
               "manifest field name: expected a string, got nil", NULL);
}

static void the_manifest_needs_a_version(void **state) {
  fixture *f = *state;
  bad_manifest(f, "return { name = 'x' }\n",
               "manifest field version: expected a version string", "got nil");
  bad_manifest(f, "return { name = 'x', version = '' }\n",
               "manifest field version: expected a version string", NULL);
  bad_manifest(f, "return { name = 'x', version = 1 }\n",
               "manifest field version: expected a version string",
               "got number");
}

static void an_unknown_manifest_key_suggests_the_right_one(void **state) {
  fixture *f = *state;
  bad_manifest(f, "return { name = 'x', version = '1', requries = {} }\n",
               "manifest field 'requries' is unknown",
               "(did you mean 'requires'?)");
  yz_plugin *p = bad_manifest(
      f, "return { name = 'x', version = '1', frobnicate = true }\n",
      "manifest field 'frobnicate' is unknown", NULL);
  assert_null(strstr(p->error, "did you mean"));
}

static void a_plugin_cannot_own_core_tables(void **state) {
  fixture *f = *state;
  bad_manifest(f, "return { name = 'x', version = '1', owns = { 'yz_kv' } }\n",
               "owns[1]: 'yz_kv' is not a table a plugin can name", NULL);
  bad_manifest(f,
               "return { name = 'x', version = '1', owns = { 'ok', "
               "'SQLite_master' } }\n",
               "owns[2]: 'SQLite_master' is not a table", NULL);
  bad_manifest(
      f, "return { name = 'x', version = '1', owns = { 'a; DROP TABLE b' } }\n",
      "is not a table a plugin can name", NULL);
  bad_manifest(f, "return { name = 'x', version = '1', owns = 'items' }\n",
               "owns: expected a list of strings, got string", NULL);
  bad_manifest(f,
               "return { name = 'x', version = '1', access = { read = { "
               "'yz_audit' } } }\n",
               "access.read[1]: 'yz_audit' is not a table", NULL);
}

static void an_unknown_access_key_is_refused(void **state) {
  fixture *f = *state;
  bad_manifest(
      f, "return { name = 'x', version = '1', access = { reed = { 't' } } }\n",
      "access.reed is unknown", "(did you mean 'read'?)");
  yz_plugin *p = bad_manifest(
      f,
      "return { name = 'x', version = '1', access = { everything = true } }\n",
      "access.everything is unknown", "expected read, write or send");
  assert_null(strstr(p->error, "did you mean"));
  bad_manifest(f, "return { name = 'x', version = '1', access = 'all' }\n",
               "access: expected a table", NULL);
  bad_manifest(
      f, "return { name = 'x', version = '1', access = { send = 'yes' } }\n",
      "access.send: expected a boolean, got string", NULL);
}

static void setup_must_be_a_function(void **state) {
  fixture *f = *state;
  bad_manifest(
      f, "return { name = 'x', version = '1', setup = 5 }\n",
      "manifest field setup: expected a function (host, options), got number",
      NULL);
  bad_manifest(
      f, "return { name = 'x', version = '1', options = 5 }\n",
      "manifest field options: expected a table of defaults, got number", NULL);
  bad_manifest(f, "return { name = 'x', version = '1', migrations = { 1 } }\n",
               "manifest field migrations[1]: expected a string, got number",
               NULL);
}

static void a_syntax_error_in_a_plugin_names_file_and_line(void **state) {
  fixture *f = *state;
  bad_manifest(f,
               "return {\n"
               "  name = 'x',\n"
               "  version = = '1',\n"
               "}\n",
               "x.lua:3:", "unexpected symbol near '='");
}

static void a_runtime_error_while_loading_names_file_and_line(void **state) {
  fixture *f = *state;
  bad_manifest(f, "local t = nil\nreturn t.name\n",
               "x.lua:2:", "attempt to index a nil value");
}

static void a_failing_setup_leaves_the_plugin_failed_with_a_traceback(
    void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = {}, fine = {} }\n", "x",
          "local function deeper() error('boom') end\n"
          "return { name = 'x', version = '1',\n"
          "  setup = function(host) deeper() end }\n",
          "fine", "return { name = 'fine', version = '1' }\n", NULL);
  expect_start(f, YZ_ERR);
  yz_plugin *p = find(f, "x");
  failed_with(p, "setup failed");
  assert_true(tu_contains(p->error, "x.lua:1: boom"));
  assert_true(tu_contains(p->error, "stack traceback"));
  assert_false(p->config_error);
  healthy(find(f, "fine"));
  char *err = tu_query(f->h->store,
                       "SELECT state || ': ' || last_error FROM yz_plugins "
                       "WHERE name = 'x'");
  assert_true(tu_contains(err, "failed: setup failed"));
  free(err);
}

/* ---------------------------------------------------------- dependencies */

#define TRAIL_SETUP                                                     \
  "  setup = function(host)\n"                                          \
  "    host.db.exec('INSERT INTO trail(name) VALUES (?)', host.name)\n" \
  "  end,\n"

static void plugins_start_in_dependency_order(void **state) {
  fixture *f = *state;
  /* Name order (a, b, c) is the reverse of dependency order (c, b, a). */
  datadir(f, "plugins = { a = {}, b = {}, c = {} }\n", "a",
          "return { name = 'a', version = '1', requires = { 'b' },\n"
          "  access = { write = { 'trail' } },\n" TRAIL_SETUP "}\n",
          "b",
          "return { name = 'b', version = '1', requires = { 'c' },\n"
          "  access = { write = { 'trail' } },\n" TRAIL_SETUP "}\n",
          "c",
          "return { name = 'c', version = '1', owns = { 'trail' },\n"
          "  migrations = { [[CREATE TABLE trail(\n"
          "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
          "    name TEXT NOT NULL)]] },\n" TRAIL_SETUP "}\n",
          NULL);
  expect_start(f, YZ_OK);
  healthy(find(f, "a"));
  healthy(find(f, "b"));
  healthy(find(f, "c"));
  query_is(f->h,
           "SELECT group_concat(name, ',') FROM "
           "(SELECT name FROM trail ORDER BY id)",
           "c,b,a");
}

static void a_missing_dependency_names_the_chain(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { a = {}, b = {}, other = {} }\n", "a",
          "return { name = 'a', version = '1', requires = { 'b' } }\n", "b",
          "return { name = 'b', version = '1', requires = { 'ghost' } }\n",
          "other", "return { name = 'other', version = '1' }\n", NULL);
  expect_start(f, YZ_ERR);
  yz_plugin *b = find(f, "b");
  failed_with(b, "requires 'ghost', which is not on the plugin path");
  assert_true(tu_contains(b->error, "a -> b"));
  failed_with(find(f, "a"), "requires 'b', which failed");
  assert_true(tu_contains(find(f, "a")->error, "not on the plugin path"));
  healthy(find(f, "other"));
}

static void a_dependency_that_is_not_enabled_says_so(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { a = {}, b = false }\n", "a",
          "return { name = 'a', version = '1', requires = { 'b' } }\n", "b",
          "return { name = 'b', version = '1' }\n", NULL);
  expect_start(f, YZ_ERR);
  failed_with(find(f, "a"), "requires 'b', which is not enabled");
  assert_true(tu_contains(find(f, "a")->error, "yizhan plugin enable"));
  yz_plugin *b = find(f, "b");
  assert_int_equal(b->enabled, YZ_EN_NO);
  assert_int_equal(b->state, YZ_PS_FOUND);
}

static void a_dependency_cycle_is_reported_with_its_chain(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { a = {}, b = {}, c = {} }\n", "a",
          "return { name = 'a', version = '1', requires = { 'b' } }\n", "b",
          "return { name = 'b', version = '1', requires = { 'a' } }\n", "c",
          "return { name = 'c', version = '1', requires = { 'c' } }\n", NULL);
  expect_start(f, YZ_ERR);
  failed_with(find(f, "a"), "dependency cycle: a -> b -> a");
  failed_with(find(f, "b"), "dependency cycle");
  failed_with(find(f, "c"), "dependency cycle: c -> c");
}

static void a_failing_dependency_takes_its_dependents_down(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { a = {}, b = {}, c = {}, free = {} }\n", "a",
          "return { name = 'a', version = '1', requires = { 'b' },\n"
          "  setup = function() error('a must not start') end }\n",
          "b", "return { name = 'b', version = '1', requires = { 'c' } }\n",
          "c",
          "return { name = 'c', version = '1',\n"
          "  setup = function() error('c is broken') end }\n",
          "free", "return { name = 'free', version = '1' }\n", NULL);
  expect_start(f, YZ_ERR);
  failed_with(find(f, "c"), "c is broken");
  failed_with(find(f, "b"), "requires 'c', which failed to start");
  yz_plugin *a = find(f, "a");
  failed_with(a, "requires 'b', which failed to start");
  assert_null(strstr(a->error, "a must not start"));
  healthy(find(f, "free"));
}

static void two_plugins_cannot_own_one_table(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { first = {}, second = {} }\n", "first",
          "return { name = 'first', version = '1', owns = { 'shared' } }\n",
          "second",
          "return { name = 'second', version = '1',\n"
          "  owns = { 'mine', 'SHARED' } }\n",
          NULL);
  expect_start(f, YZ_ERR);
  healthy(find(f, "first"));
  failed_with(find(f, "second"), "is owned by plugin 'first' already");
}

/* --------------------------------------------------------------- options */

#define OPTIONS_PLUGIN                                                    \
  "return { name = 'x', version = '1',\n"                                 \
  "  options = { at = '07:00', count = 3, flag = true, to = { 'a' } },\n" \
  "  setup = function(host, options)\n"                                   \
  "    assert(host.options.at == options.at)\n"                           \
  "  end }\n"

static void options_merge_defaults_with_the_config(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = { at = '08:30', to = { 'b', 'c' } } }\n", "x",
          OPTIONS_PLUGIN, NULL);
  expect_start(f, YZ_OK);
  yz_plugin *p = find(f, "x");
  healthy(p);
  eval_is(p, "options.at", "\"08:30\"");
  eval_is(p, "host.options.at", "\"08:30\"");
  eval_is(p, "options.count", "3");
  eval_is(p, "options.flag", "true");
  eval_is(p, "options.to", "{ \"b\", \"c\" }");
  /* The options are read-only. */
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  tu_eval(p, "options.at = '09:00'", &b, YZ_ERR);
  yz_buf_free(&b);
  eval_is(p, "options.at", "\"08:30\"");
}

static void an_unknown_option_in_the_config_stops_the_host(void **state) {
  fixture *f = *state;
  datadir(f,
          "timezone = 'Asia/Shanghai'\n"
          "plugins = {\n"
          "  x = {\n"
          "    att = '08:30',\n"
          "  },\n"
          "}\n",
          "x", OPTIONS_PLUGIN, NULL);
  expect_start(f, YZ_EUSAGE);
  yz_plugin *p = find(f, "x");
  char where[4200];
  snprintf(where, sizeof where, "%s:4: plugins.x.att", f->h->config_path);
  failed_with(p, where);
  assert_true(tu_contains(p->error, "unknown option of plugin 'x'"));
  assert_true(tu_contains(p->error, "(did you mean 'at'?)"));
  assert_true(p->config_error);
}

static void a_wrong_option_type_stops_the_host(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = {\n  x = { at = 830 },\n}\n", "x", OPTIONS_PLUGIN,
          NULL);
  expect_start(f, YZ_EUSAGE);
  yz_plugin *p = find(f, "x");
  failed_with(p,
              "plugins.x.at: expected a string (like the default), got "
              "number");
  assert_true(tu_contains(p->error, ":2:"));
  assert_true(p->config_error);
}

static void options_for_a_plugin_without_options_are_unknown(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = { anything = 1 } }\n", "x",
          "return { name = 'x', version = '1' }\n", NULL);
  expect_start(f, YZ_EUSAGE);
  yz_plugin *p = find(f, "x");
  failed_with(p, "plugins.x.anything: unknown option of plugin 'x'");
  assert_null(strstr(p->error, "did you mean"));
}

static void an_option_that_is_not_plain_data_is_refused(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = {\n  x = { to = { function() end } },\n}\n", "x",
          OPTIONS_PLUGIN, NULL);
  expect_start(f, YZ_EUSAGE);
  yz_plugin *p = find(f, "x");
  char where[4200];
  snprintf(where, sizeof where,
           "%s:2: plugins.x.to[1]: a function cannot be "
           "copied",
           f->h->config_path);
  failed_with(p, where);
  assert_true(p->config_error);
}

/* ------------------------------------------------------------ migrations */

#define ITEMS_PLUGIN(more)                                    \
  "return { name = 'x', version = '1', owns = { 'items' },\n" \
  "  migrations = {\n"                                        \
  "    'CREATE TABLE items(v TEXT)',\n"                       \
  "    [[INSERT INTO items VALUES ('seed')]],\n" more "  } }\n"

static void migrations_apply_once_across_host_opens(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = {} }\n", "x", ITEMS_PLUGIN(""), NULL);
  expect_start(f, YZ_OK);
  healthy(find(f, "x"));
  query_is(f->h, "SELECT count(*) FROM items", "1");
  yz_host_close(f->h);
  f->h = NULL;
  expect_start(f, YZ_OK);
  healthy(find(f, "x"));
  query_is(f->h, "SELECT count(*) FROM items", "1");
  query_is(f->h, "SELECT count(*) FROM yz_migrations WHERE owner = 'x'", "2");
  /* A migration added later applies alone. */
  tu_write(f->dir, "plugins/x.lua",
           ITEMS_PLUGIN("    [[INSERT INTO items VALUES ('later')]],\n"));
  expect_start(f, YZ_OK);
  healthy(find(f, "x"));
  query_is(f->h, "SELECT group_concat(v, ',') FROM items", "seed,later");
}

static void a_migration_outside_the_owned_tables_fails_clearly(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = {} }\n", "x",
          "return { name = 'x', version = '1', owns = { 'items' },\n"
          "  migrations = { 'CREATE TABLE items(v)',\n"
          "                 'CREATE TABLE stranger(v)' },\n"
          "  setup = function() error('no setup after a failure') end }\n",
          NULL);
  expect_start(f, YZ_ERR);
  yz_plugin *p = find(f, "x");
  failed_with(p, "x: migration 2 failed");
  assert_true(tu_contains(p->error,
                          "'stranger' is not in the plugin's owns "
                          "list"));
  assert_null(strstr(p->error, "no setup after a failure"));
  query_is(f->h, "SELECT count(*) FROM sqlite_master WHERE name = 'stranger'",
           "0");
  query_is(f->h, "SELECT count(*) FROM yz_migrations WHERE owner = 'x'", "1");
}

/* ------------------------------------------------------- enable/disable */

static void enable_and_disable_persisted_in_the_database_win(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { off = {}, conf = {} }\n", "on",
          "return { name = 'on', version = '1' }\n", "off",
          "return { name = 'off', version = '1',\n"
          "  setup = function() error('off must not start') end }\n",
          "conf", "return { name = 'conf', version = '1' }\n", "idle",
          "return { name = 'idle', version = '1' }\n", NULL);
  f->h = tu_host(f->dir);
  assert_int_equal(
      yz_store_exec(
          f->h->store, NULL,
          "INSERT INTO yz_plugins(name, enabled) VALUES ('on', 1), ('off', 0)",
          NULL, 0),
      YZ_OK);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  yz_plugin *on = find(f, "on"), *off = find(f, "off");
  yz_plugin *conf = find(f, "conf"), *idle = find(f, "idle");
  assert_int_equal(on->enabled, YZ_EN_CLI);
  healthy(on);
  assert_int_equal(conf->enabled, YZ_EN_CONFIG);
  healthy(conf);
  assert_int_equal(off->enabled, YZ_EN_NO);
  assert_int_equal(off->state, YZ_PS_FOUND);
  assert_null(off->sb);
  assert_int_equal(idle->enabled, YZ_EN_NO);
  assert_int_equal(idle->state, YZ_PS_FOUND);
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  assert_int_equal(yz_plugin_eval(off, "1", &b), YZ_ERR);
  assert_true(tu_contains(yz_buf_str(&b), "not enabled"));
  yz_buf_free(&b);
  /* Recording the state kept the persisted choice. */
  query_is(f->h, "SELECT enabled FROM yz_plugins WHERE name = 'on'", "1");
  query_is(f->h, "SELECT state FROM yz_plugins WHERE name = 'on'", "ok");
  query_is(f->h, "SELECT enabled FROM yz_plugins WHERE name = 'off'", "0");
}

/* ---------------------------------------------------------------- reload */

static void reload_picks_up_a_changed_plugin_and_config(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = {} }\n", "x",
          "return { name = 'x', version = '1',\n"
          "  options = { greeting = 'hi' } }\n",
          NULL);
  expect_start(f, YZ_OK);
  eval_is(find(f, "x"), "options.greeting", "\"hi\"");
  tu_write(f->dir, "plugins/x.lua",
           "return { name = 'x', version = '2',\n"
           "  options = { greeting = 'hi', extra = 1 } }\n");
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { x = { greeting = 'bonjour' } }\n");
  assert_int_equal(yz_host_reload(f->h), YZ_OK);
  yz_plugin *p = find(f, "x");
  healthy(p);
  assert_string_equal(p->version, "2");
  eval_is(p, "options.greeting", "\"bonjour\"");
  eval_is(p, "options.extra", "1");
  query_is(f->h, "SELECT version FROM yz_plugins WHERE name = 'x'", "2");
}

static void a_broken_config_on_reload_leaves_the_old_one_in_force(
    void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = { greeting = 'bonjour' } }\n", "x",
          "return { name = 'x', version = '1',\n"
          "  options = { greeting = 'hi' } }\n",
          NULL);
  expect_start(f, YZ_OK);
  yz_config *before = f->h->cfg;
  tu_write(f->dir, "yizhan.conf.lua", "plugins = {\n  x = {\n");
  assert_int_equal(yz_host_reload(f->h), YZ_EUSAGE);
  assert_true(tu_contains(f->h->err, f->h->config_path));
  assert_true(tu_contains(f->h->err, "near <eof>"));
  assert_ptr_equal(f->h->cfg, before);
  yz_plugin *p = find(f, "x");
  healthy(p);
  eval_is(p, "options.greeting", "\"bonjour\"");
  /* A schema error is refused the same way. */
  tu_write(f->dir, "yizhan.conf.lua",
           "timezon = 'UTC'\nplugins = { x = {} }\n");
  assert_int_equal(yz_host_reload(f->h), YZ_EUSAGE);
  assert_true(tu_contains(f->h->err, "did you mean 'timezone'"));
  assert_ptr_equal(f->h->cfg, before);
  assert_ptr_equal(find(f, "x"), p);
  healthy(p);
  eval_is(p, "options.greeting", "\"bonjour\"");
}

/* An unknown plugin option is a configuration error too (a fresh start
** refuses it), so a reload that brings one in is refused the same way. */
static void a_bad_plugin_option_on_reload_leaves_the_old_config_in_force(
    void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = { greeting = 'bonjour' }, y = {} }\n", "x",
          "return { name = 'x', version = '1',\n"
          "  options = { greeting = 'hi' } }\n",
          "y", "return { name = 'y', version = '1' }\n", NULL);
  expect_start(f, YZ_OK);
  yz_config *before = f->h->cfg;
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = {\n  x = { greting = 'salut' },\n  y = {},\n}\n");
  assert_int_equal(yz_host_reload(f->h), YZ_EUSAGE);
  assert_true(tu_contains(f->h->err, "plugins.x.greting"));
  assert_true(tu_contains(f->h->err, "did you mean 'greeting'"));
  assert_ptr_equal(f->h->cfg, before);
  yz_plugin *x = find(f, "x");
  healthy(x);
  eval_is(x, "options.greeting", "\"bonjour\"");
  healthy(find(f, "y"));
  /* Fixed, the next reload goes through. */
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = {\n  x = { greeting = 'salut' },\n  y = {},\n}\n");
  assert_int_equal(yz_host_reload(f->h), YZ_OK);
  eval_is(find(f, "x"), "options.greeting", "\"salut\"");
}

static void a_plugin_may_use_autoincrement_tables(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = {} }\n", "x",
          "return { name = 'x', version = '1', owns = { 'log' },\n"
          "  migrations = { [[CREATE TABLE log(\n"
          "    id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)]] },\n"
          "  setup = function(host)\n"
          "    host.db.exec('INSERT INTO log(v) VALUES (?)', 'one')\n"
          "    host.db.exec('DELETE FROM log')\n"
          "    host.db.exec('INSERT INTO log(v) VALUES (?)', 'two')\n"
          "  end }\n",
          NULL);
  expect_start(f, YZ_OK);
  healthy(find(f, "x"));
  /* AUTOINCREMENT never reuses an id, even after the delete. */
  query_is(f->h, "SELECT id || v FROM log", "2two");
  /* The table SQLite keeps for it stays off limits to the plugin. */
  yz_buf b;
  yz_buf_init(&b, 1u << 20);
  assert_int_equal(
      yz_plugin_eval(find(f, "x"),
                     "host.db.exec('DELETE FROM sqlite_sequence')", &b),
      YZ_ERR);
  assert_true(tu_contains(yz_buf_str(&b), "sqlite_sequence"));
  yz_buf_free(&b);
  query_is(f->h, "SELECT seq FROM sqlite_sequence WHERE name = 'log'", "2");
}

static void a_plugin_listed_as_true_keeps_its_default_options(void **state) {
  fixture *f = *state;
  datadir(f, "plugins = { x = true }\n", "x", OPTIONS_PLUGIN, NULL);
  expect_start(f, YZ_OK);
  yz_plugin *p = find(f, "x");
  healthy(p);
  eval_is(p, "options.at", "\"07:00\"");
  eval_is(p, "options.to", "{ \"a\" }");
}

int main(void) {
  /* Keep the tests hermetic: no shipped plugins unless a test sets some. */
  const char *base = getenv("TMPDIR");
  char shipped[4096];
  snprintf(shipped, sizeof shipped, "%s/yztest-shipped-XXXXXX",
           base && *base ? base : "/tmp");
  if (!mkdtemp(shipped)) {
    perror("mkdtemp");
    return 1;
  }
  setenv("YIZHAN_SHIPPED_PLUGINS", shipped, 1);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(a_single_file_plugin_starts),
      T(a_data_directory_without_plugins_starts_cleanly),
      T(a_folder_plugin_requires_its_own_modules),
      T(single_file_plugins_require_from_their_folder),
      T(files_that_are_not_plugins_are_ignored),
      T(a_file_and_a_folder_of_one_name_in_one_folder_are_refused),
      T(a_local_plugin_overrides_a_shipped_one),
      T(a_plugin_must_return_its_manifest_table),
      T(the_manifest_name_must_match_the_file_name),
      T(the_manifest_needs_a_version),
      T(an_unknown_manifest_key_suggests_the_right_one),
      T(a_plugin_cannot_own_core_tables),
      T(an_unknown_access_key_is_refused),
      T(setup_must_be_a_function),
      T(a_syntax_error_in_a_plugin_names_file_and_line),
      T(a_runtime_error_while_loading_names_file_and_line),
      T(a_failing_setup_leaves_the_plugin_failed_with_a_traceback),
      T(plugins_start_in_dependency_order),
      T(a_missing_dependency_names_the_chain),
      T(a_dependency_that_is_not_enabled_says_so),
      T(a_dependency_cycle_is_reported_with_its_chain),
      T(a_failing_dependency_takes_its_dependents_down),
      T(two_plugins_cannot_own_one_table),
      T(options_merge_defaults_with_the_config),
      T(an_unknown_option_in_the_config_stops_the_host),
      T(a_wrong_option_type_stops_the_host),
      T(options_for_a_plugin_without_options_are_unknown),
      T(an_option_that_is_not_plain_data_is_refused),
      T(migrations_apply_once_across_host_opens),
      T(a_migration_outside_the_owned_tables_fails_clearly),
      T(enable_and_disable_persisted_in_the_database_win),
      T(reload_picks_up_a_changed_plugin_and_config),
      T(a_broken_config_on_reload_leaves_the_old_one_in_force),
      T(a_bad_plugin_option_on_reload_leaves_the_old_config_in_force),
      T(a_plugin_may_use_autoincrement_tables),
      T(a_plugin_listed_as_true_keeps_its_default_options),
  };
#undef T
  int failures = cmocka_run_group_tests_name("plugins", tests, NULL, NULL);
  tu_rmrf(shipped);
  return failures;
}
