/*
** test_lapi.c: the host API as a plugin sees it. Two plugins run on one
** host: 'alpha' (owns the table 'items', declares options that the config
** partly overrides) and 'beta' (nothing of its own), so per-plugin behaviour
** can be told apart. Each test runs Lua in a plugin with yz_plugin_eval and
** checks the rendered result, the database as the core sees it, or the log.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "testutil.h"

#define CONFIG "plugins = { alpha = { limit = 20 }, beta = {} }\n"

#define ALPHA                                                               \
  "return { name = 'alpha', version = '1.0.0', owns = {'items'},\n"         \
  "  options = { greeting = 'hello', limit = 10 },\n"                       \
  "  migrations = {'CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, " \
  "qty INTEGER, note TEXT)'},\n"                                            \
  "  setup = function(host, opts) end }\n"

#define BETA                                     \
  "return { name = 'beta', version = '1.0.0',\n" \
  "  setup = function(host, opts) end }\n"

/* 2026-11-28T10:00:00.000Z in ms since the epoch. */
#define SIM_MS 1795860000000LL

typedef struct fixture {
  char *dir;    /* the data directory */
  yz_host *h;   /* the running host */
  yz_plugin *a; /* 'alpha' */
  yz_plugin *b; /* 'beta' */
  yz_buf out;   /* output of the last eval */
  char *log;    /* the log file as last read (see read_log) */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_datadir(CONFIG);
  tu_write(f->dir, "plugins/alpha.lua", ALPHA);
  tu_write(f->dir, "plugins/beta.lua", BETA);
  f->h = tu_host(f->dir);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  f->a = yz_plugin_find(f->h, "alpha");
  f->b = yz_plugin_find(f->h, "beta");
  assert_non_null(f->a);
  assert_non_null(f->b);
  assert_int_equal(f->a->state, YZ_PS_OK);
  assert_int_equal(f->b->state, YZ_PS_OK);
  yz_buf_init(&f->out, 1u << 20);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  yz_buf_free(&f->out);
  yz_host_close(f->h);
  tu_rmrf(f->dir);
  free(f->log);
  free(f->dir);
  free(f);
  return 0;
}

/* Runs code in p; it must succeed (works) or fail (fails). Returns the
** rendering or the message, valid until the next eval. */
static const char *works(fixture *f, yz_plugin *p, const char *code) {
  return tu_eval(p, code, &f->out, YZ_OK);
}

static const char *fails(fixture *f, yz_plugin *p, const char *code) {
  return tu_eval(p, code, &f->out, YZ_ERR);
}

/* Runs code in alpha and checks its rendering. */
#define EXPECT(f, code, want) \
  assert_string_equal(works((f), (f)->a, code), want)

/* Reads the whole log file into f->log and returns it. */
static const char *read_log(fixture *f) {
  fflush(f->h->log.out);
  char path[4200];
  snprintf(path, sizeof path, "%s/log.txt", f->dir);
  free(f->log);
  f->log = tu_read(path);
  assert_non_null(f->log);
  return f->log;
}

/* Number of lines of text that contain needle. */
static int lines_with(const char *text, const char *needle) {
  int n = 0;
  const char *line = text;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char *copy = strndup(line, len);
    if (strstr(copy, needle)) n++;
    free(copy);
    line += len + (end ? 1 : 0);
  }
  return n;
}

/* ------------------------------------------------------------ host.json */

static void json_round_trips_nested_tables_with_chinese_text(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.json.encode({ name = '留守儿童', tags = {'学生', '三年级'},\n"
         "  visit = { by = '张老师', notes = { { day = 1, text = '很好' } } "
         "} })",
         "\"{\\\"name\\\":\\\"留守儿童\\\",\\\"tags\\\":[\\\"学生\\\","
         "\\\"三年级\\\"],\\\"visit\\\":{\\\"by\\\":\\\"张老师\\\","
         "\\\"notes\\\":[{\\\"day\\\":1,\\\"text\\\":\\\"很好\\\"}]}}\"");
  EXPECT(f,
         "host.json.decode('{\"name\":\"留守儿童\",\"tags\":[\"学生\","
         "\"三年级\"],\"visit\":{\"by\":\"张老师\",\"notes\":[{\"day\":1,"
         "\"text\":\"很好\"}]}}')",
         "{ name = \"留守儿童\", tags = { \"学生\", \"三年级\" }, visit = { "
         "by = \"张老师\", notes = { { day = 1, text = \"很好\" } } } }");
  /* Encoding what was decoded gives the same text back. */
  EXPECT(
      f,
      "local s = host.json.encode({ z = { '中', { y = '文' } }, a = 1 })\n"
      "return host.json.encode(host.json.decode(s)) == s, s",
      "true\t\"{\\\"a\\\":1,\\\"z\\\":[\\\"中\\\",{\\\"y\\\":\\\"文\\\"}]}\"");
}

static void json_writes_integers_exactly_and_floats_shortest(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.encode(9007199254740993)", "\"9007199254740993\"");
  EXPECT(f, "host.json.encode({ n = math.maxinteger, m = math.mininteger })",
         "\"{\\\"m\\\":-9223372036854775808,\\\"n\\\":9223372036854775807}\"");
  EXPECT(f, "host.json.encode(0.1)", "\"0.1\"");
  EXPECT(f, "host.json.encode({ 2.5, -3, 1e300 })", "\"[2.5,-3,1e+300]\"");
  /* A float stays a float even when it has no fraction. */
  EXPECT(f, "host.json.encode(2.0)", "\"2.0\"");
  /* A float that needs 17 digits reads back as the same double. */
  EXPECT(f, "host.json.decode(host.json.encode(1/3)) == 1/3", "true");
  EXPECT(f, "math.type(host.json.decode('42')), host.json.decode('-7')",
         "\"integer\"\t-7");
}

static void json_sorts_object_keys_so_the_text_is_stable(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.encode({ b = 1, a = 2, c = { z = 1, y = 2, x = 3 } })",
         "\"{\\\"a\\\":2,\\\"b\\\":1,\\\"c\\\":{\\\"x\\\":3,\\\"y\\\":2,"
         "\\\"z\\\":1}}\"");
  /* Keys added in other orders give the same text. */
  EXPECT(f,
         "local t1, t2 = {}, {}\n"
         "for i = 1, 50 do t1['k' .. i] = i end\n"
         "for i = 50, 1, -1 do t2['k' .. i] = i end\n"
         "return host.json.encode(t1) == host.json.encode(t2)",
         "true");
  /* A sparse table is an object whose integer keys become strings. */
  EXPECT(f, "host.json.encode({ [1] = 'a', [3] = 'c' })",
         "\"{\\\"1\\\":\\\"a\\\",\\\"3\\\":\\\"c\\\"}\"");
}

static void json_empty_table_is_an_object_unless_marked_as_array(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.encode({})", "\"{}\"");
  EXPECT(f, "host.json.encode(host.json.array({}))", "\"[]\"");
  EXPECT(f, "host.json.encode({ list = host.json.array({}), map = {} })",
         "\"{\\\"list\\\":[],\\\"map\\\":{}}\"");
  /* array() returns the table it marked. */
  EXPECT(f, "local t = {} return host.json.array(t) == t", "true");
}

static void json_null_stands_for_null_in_arrays_and_objects(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.encode({ 1, host.json.null, 3 })", "\"[1,null,3]\"");
  EXPECT(f, "host.json.encode({ a = host.json.null, b = false })",
         "\"{\\\"a\\\":null,\\\"b\\\":false}\"");
  EXPECT(f, "host.json.encode(host.json.null)", "\"null\"");
  EXPECT(f,
         "local t = host.json.decode('[1,null,3]')\n"
         "return t[2] == host.json.null, #t, t[3]",
         "true\t3\t3");
  EXPECT(f, "host.json.decode('{\"a\":null}').a == host.json.null", "true");
  EXPECT(f, "host.json.decode('null') == host.json.null", "true");
}

static void json_pretty_output_is_indented_and_keeps_numbers_exact(
    void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.encode({ b = { 1, 2 }, a = 'x' }, { pretty = true })",
         "\"{\\n\\9\\\"a\\\":\\9\\\"x\\\",\\n\\9\\\"b\\\":\\9[1, 2]\\n}\"");
  EXPECT(f,
         "host.json.encode({ n = 9007199254740993, f = 2.0, "
         "e = host.json.array({}) }, { pretty = true })",
         "\"{\\n\\9\\\"e\\\":\\9[],\\n\\9\\\"f\\\":\\92.0,\\n\\9\\\"n\\\":\\9"
         "9007199254740993\\n}\"");
  /* Without the option (or with pretty = false) the text is compact. */
  EXPECT(f, "host.json.encode({ a = { 1 } }, { pretty = false })",
         "\"{\\\"a\\\":[1]}\"");
}

/* pcall(host.json.encode, ...) inside the plugin: the message alone. */
static void json_encode_refuses_a_cycle_naming_the_path(void **state) {
  fixture *f = *state;
  const char *msg = works(f, f->a,
                          "local t = {} t.self = t\n"
                          "return select(2, pcall(host.json.encode, t))");
  assert_true(
      tu_contains(msg,
                  "json.encode: nested more than 100 levels (or a cycle) at "
                  ".self.self.self"));
  /* Uncaught, it is an error of the eval. */
  assert_true(tu_contains(
      fails(f, f->a, "local t = { a = {} } t.a.up = t host.json.encode(t)"),
      "(or a cycle) at .a.up.a.up"));
}

static void json_encode_refuses_a_function_naming_the_path(void **state) {
  fixture *f = *state;
  EXPECT(f, "select(2, pcall(host.json.encode, { a = { b = print } }))",
         "\"json.encode: cannot encode as JSON a value of type function at "
         ".a.b\"");
  EXPECT(f, "select(2, pcall(host.json.encode, { 1, { x = { 3, print } } }))",
         "\"json.encode: cannot encode as JSON a value of type function at "
         "[2].x[2]\"");
  EXPECT(f, "select(2, pcall(host.json.encode, print))",
         "\"json.encode: cannot encode as JSON a value of type function\"");
}

static void json_encode_refuses_nan_and_infinity(void **state) {
  fixture *f = *state;
  EXPECT(f, "select(2, pcall(host.json.encode, { x = 0/0 }))",
         "\"json.encode: NaN or infinity cannot be encoded at .x\"");
  EXPECT(f, "select(2, pcall(host.json.encode, { 1, -math.huge }))",
         "\"json.encode: NaN or infinity cannot be encoded at [2]\"");
}

static void json_encode_refuses_text_that_is_not_utf8(void **state) {
  fixture *f = *state;
  EXPECT(f, "select(2, pcall(host.json.encode, { s = '\\255' }))",
         "\"json.encode: a string that is not valid UTF-8 text at .s\"");
  /* A cut-off sequence, an overlong '/', a UTF-16 surrogate and a code
  ** point past U+10FFFF are not UTF-8 either. */
  EXPECT(f,
         "local bad = { '\\xE4\\xB8', '\\xC0\\xAF', '\\xED\\xA0\\x80', "
         "'\\xF4\\x90\\x80\\x80', 'a\\0b' }\n"
         "local n = 0\n"
         "for _, s in ipairs(bad) do\n"
         "  if not pcall(host.json.encode, s) then n = n + 1 end\n"
         "end\n"
         "return n",
         "5");
  /* The largest code point and a four-byte character are fine. */
  EXPECT(f, "host.json.encode({ '\\u{10FFFF}', '𠀋' }) ~= nil", "true");
}

static void json_encode_refuses_keys_that_are_not_utf8(void **state) {
  fixture *f = *state;
  EXPECT(f, "select(2, pcall(host.json.encode, { a = { ['\\255'] = 1 } }))",
         "\"json.encode: an object key that is not valid UTF-8 text at .a\"");
}

static void json_encode_reads_tables_raw_and_runs_no_plugin_code(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "local t = setmetatable({ a = 1 }, { __index = function() "
         "error('ran') end, __pairs = function() error('ran') end })\n"
         "return host.json.encode({ t = t })",
         "\"{\\\"t\\\":{\\\"a\\\":1}}\"");
}

static void json_encode_at_the_memory_cap_fails_cleanly(void **state) {
  fixture *f = *state;
  /* Fill the plugin's state to its cap, then encode repeatedly: each
  ** attempt fails with a message, and under ASan and valgrind (test.sh)
  ** nothing the encoder built in C is leaked. */
  yz_host_close(f->h);
  tu_write(f->dir, "yizhan.conf.lua",
           "plugins = { alpha = {}, beta = {} }\n"
           "plugin_limits = { alpha = { memory_mb = 4 } }\n");
  f->h = tu_host(f->dir);
  assert_int_equal(yz_host_start(f->h), YZ_OK);
  f->a = yz_plugin_find(f->h, "alpha");
  const char *out =
      works(f, f->a,
            "local big = {}\n"
            "for i = 1, 2000 do big[i] = { name = 'child ' .. i, n = i } end\n"
            "local hog, failures = {}, 0\n"
            "pcall(function() while true do hog[#hog + 1] = {} end end)\n"
            "for _ = 1, 50 do\n"
            "  local ok = pcall(host.json.encode, big)\n"
            "  if not ok then failures = failures + 1 end\n"
            "end\n"
            "hog = nil\n"
            "collectgarbage()\n"
            "return failures, #host.json.encode(big) > 0");
  assert_string_equal(out, "50\ttrue");
}

static void json_array_refuses_a_table_that_is_not_a_sequence(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "select(2, pcall(host.json.encode, { x = host.json.array({ a = 1 }) "
         "}))",
         "\"json.encode: a table marked with json.array has keys other than "
         "1..n at .x\"");
  EXPECT(f, "host.json.encode(host.json.array({ 1, 2 }))", "\"[1,2]\"");
}

static void json_encode_refuses_a_boolean_key(void **state) {
  fixture *f = *state;
  EXPECT(f, "select(2, pcall(host.json.encode, { a = { [true] = 1 } }))",
         "\"json.encode: JSON object keys are strings; got a key of type "
         "boolean at .a\"");
  EXPECT(f, "select(2, pcall(host.json.encode, { [1.5] = 1 }))",
         "\"json.encode: JSON object keys are strings; got a key of type "
         "number\"");
}

static void json_encode_refuses_a_number_key_and_its_string_twin(void **state) {
  fixture *f = *state;
  /* Both would be the JSON key "1": one value would be lost. */
  EXPECT(f,
         "select(2, pcall(host.json.encode, { x = { [1] = 'a', ['1'] = 'b', "
         "y = 0 } }))",
         "\"json.encode: the keys 1 and \\\"1\\\" are one JSON key at .x\"");
  EXPECT(f, "host.json.encode({ [1] = 'a', ['2'] = 'b' })",
         "\"{\\\"1\\\":\\\"a\\\",\\\"2\\\":\\\"b\\\"}\"");
}

static void json_array_mark_cannot_install_a_finalizer(void **state) {
  fixture *f = *state;
  /* Lua runs __gc with hooks off, beyond the CPU budget: setmetatable
  ** refuses it, and the mark's metatable must not be a way around that. */
  EXPECT(f,
         "pcall(function()\n"
         "  local mt = getmetatable(host.json.array({}))\n"
         "  mt.__gc = function() host.kv.put('finalized', true) end\n"
         "end)\n"
         "host.json.array({})\n"
         "collectgarbage() collectgarbage()\n"
         "return host.kv.get('finalized'), "
         "type(getmetatable(host.json.array({})))",
         "nil\t\"string\"");
  /* A marked table is still marked after marking it again. */
  EXPECT(f,
         "local t = host.json.array({})\n"
         "return host.json.encode(host.json.array(t))",
         "\"[]\"");
}

static void json_array_cannot_unfreeze_read_only_tables(void **state) {
  fixture *f = *state;
  assert_true(tu_contains(fails(f, f->a, "host.json.array(host.options)"),
                          "protected metatable"));
  assert_true(tu_contains(fails(f, f->a, "host.json.array(host)"),
                          "protected metatable"));
  EXPECT(f,
         "pcall(host.json.array, host) pcall(host.json.array, host.options)\n"
         "local ok, err = pcall(function() host.options.limit = 1 end)\n"
         "return ok, err, host.options.limit, host.name",
         "false\t\"eval:2: attempt to modify read-only table "
         "'options'\"\t20\t\"alpha\"");
}

static void json_decode_of_bad_input_returns_nil_and_the_byte(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.decode('{\"a\":}')", "nil\t\"invalid JSON at byte 6\"");
  EXPECT(f, "host.json.decode('[1,2,x]')", "nil\t\"invalid JSON at byte 6\"");
  EXPECT(f, "host.json.decode('')", "nil\t\"invalid JSON at byte 1\"");
  EXPECT(f, "host.json.decode('nul')", "nil\t\"invalid JSON at byte 1\"");
  /* It does not raise: a plugin can check the result. */
  EXPECT(f, "select('#', host.json.decode('{'))", "2");
}

static void json_decode_refuses_text_after_the_value(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.json.decode('[1] x')",
         "nil\t\"invalid JSON at byte 5 (text after the value)\"");
  EXPECT(f, "host.json.decode('{} {}')",
         "nil\t\"invalid JSON at byte 4 (text after the value)\"");
  /* A NUL byte does not end the text early. */
  EXPECT(f, "host.json.decode('[1]\\0[2]')",
         "nil\t\"invalid JSON at byte 4 (text after the value)\"");
  /* White space after the value is fine. */
  EXPECT(f, "host.json.decode(' [1] \\n\\t')", "{ 1 }");
}

/* -------------------------------------------------------------- host.kv */

static void kv_stores_tables_numbers_strings_and_booleans(void **state) {
  fixture *f = *state;
  works(f, f->a,
        "host.kv.put('t', { a = 1, list = { 1, 2 }, s = '文' })\n"
        "host.kv.put('n', 42)\n"
        "host.kv.put('x', 2.5)\n"
        "host.kv.put('s', 'some text')\n"
        "host.kv.put('yes', true)\n"
        "host.kv.put('no', false)");
  EXPECT(f,
         "host.kv.get('t'), host.kv.get('n'), host.kv.get('x'), "
         "host.kv.get('s'), host.kv.get('yes'), host.kv.get('no')",
         "{ a = 1, list = { 1, 2 }, s = \"文\" }\t42\t2.5\t\"some text\"\t"
         "true\tfalse");
  EXPECT(f, "math.type(host.kv.get('n'))", "\"integer\"");
  /* Stored as JSON text, under the plugin's name. */
  char *v = tu_query(f->h->store,
                     "SELECT value FROM yz_kv WHERE plugin = 'alpha' AND "
                     "key = 't'");
  assert_string_equal(v, "{\"a\":1,\"list\":[1,2],\"s\":\"文\"}");
  free(v);
  /* Writing again replaces the value. */
  EXPECT(f, "host.kv.put('n', 43) return host.kv.get('n')", "43");
  assert_int_equal(
      tu_int(f->h->store, "SELECT count(*) FROM yz_kv WHERE key = 'n'"), 1);
}

static void kv_put_nil_deletes_the_key(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.kv.put('gone', 'here') return host.kv.get('gone')",
         "\"here\"");
  EXPECT(f, "host.kv.put('gone', nil) return host.kv.get('gone')", "nil");
  assert_int_equal(
      tu_int(f->h->store, "SELECT count(*) FROM yz_kv WHERE key = 'gone'"), 0);
  /* Deleting a key that is not there is fine; so is a missing value. */
  EXPECT(f, "host.kv.put('never', nil) host.kv.put('gone') return 1", "1");
  EXPECT(f, "host.kv.get('never-set')", "nil");
}

static void kv_keys_are_per_plugin(void **state) {
  fixture *f = *state;
  works(f, f->a, "host.kv.put('shared', 'from alpha')");
  assert_string_equal(works(f, f->b, "host.kv.get('shared')"), "nil");
  works(f, f->b, "host.kv.put('shared', { by = 'beta' })");
  EXPECT(f, "host.kv.get('shared')", "\"from alpha\"");
  assert_string_equal(works(f, f->b, "host.kv.get('shared')"),
                      "{ by = \"beta\" }");
  works(f, f->b, "host.kv.put('shared', nil)");
  EXPECT(f, "host.kv.get('shared')", "\"from alpha\"");
  assert_string_equal(works(f, f->b, "host.kv.get('shared')"), "nil");
}

static void kv_keys_are_one_to_256_bytes(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "local k = string.rep('k', 256)\n"
         "host.kv.put(k, 1) return host.kv.get(k)",
         "1");
  assert_true(
      tu_contains(fails(f, f->a, "host.kv.put(string.rep('k', 257), 1)"),
                  "a key is 1 to 256 bytes"));
  assert_true(tu_contains(fails(f, f->a, "host.kv.get(string.rep('k', 257))"),
                          "a key is 1 to 256 bytes"));
  assert_true(
      tu_contains(fails(f, f->a, "host.kv.put('', 1)"), "a key is 1 to 256"));
  assert_true(
      tu_contains(fails(f, f->a, "host.kv.get('')"), "a key is 1 to 256"));
  assert_int_equal(
      tu_int(f->h->store,
             "SELECT count(*) FROM yz_kv WHERE length(key) <> 256"),
      0);
}

static void kv_value_that_cannot_be_encoded_raises_and_stores_nothing(
    void **state) {
  fixture *f = *state;
  works(f, f->a, "host.kv.put('v', 'old')");
  EXPECT(f, "select(2, pcall(host.kv.put, 'v', { f = print }))",
         "\"host.kv.put('v'): cannot encode as JSON a value of type function "
         "at .f\"");
  EXPECT(f, "host.kv.get('v')", "\"old\"");
  EXPECT(f, "pcall(host.kv.put, 'w', { 0/0 }), host.kv.get('w')", "false\tnil");
  assert_int_equal(
      tu_int(f->h->store, "SELECT count(*) FROM yz_kv WHERE key = 'w'"), 0);
  /* Nor one whose JSON is over the 1 MiB cap. */
  EXPECT(f, "select(2, pcall(host.kv.put, 'v', string.rep('x', 1 << 20)))",
         "\"host.kv.put('v'): encoded JSON is larger than 1048576 bytes\"");
  EXPECT(f, "host.kv.get('v')", "\"old\"");
}

/* -------------------------------------------------------------- host.db */

/* Three rows in alpha's table: ids 1..3, the second with a NULL qty. */
static void three_items(fixture *f) {
  EXPECT(f,
         "host.db.exec(\"INSERT INTO items(name, qty) VALUES ('a', 1)\")\n"
         "host.db.exec(\"INSERT INTO items(name) VALUES ('b')\")\n"
         "return host.db.exec(\"INSERT INTO items(name, qty) VALUES ('c', "
         "3)\")",
         "1\t3");
}

static void db_rows_iterates_every_row(void **state) {
  fixture *f = *state;
  three_items(f);
  EXPECT(f,
         "local names, n = {}, 0\n"
         "for r in host.db.rows('SELECT name FROM items ORDER BY id') do\n"
         "  n = n + 1 names[n] = r.name\n"
         "end\n"
         "return n, table.concat(names, ',')",
         "3\t\"a,b,c\"");
  EXPECT(f,
         "local ids = {}\n"
         "for r in host.db.rows('SELECT id FROM items WHERE id > ? ORDER BY "
         "id DESC', 1) do ids[#ids + 1] = r.id end\n"
         "return ids",
         "{ 3, 2 }");
  /* No row: the body never runs. */
  EXPECT(f,
         "for r in host.db.rows('SELECT * FROM items WHERE id < 0') do "
         "error('ran') end return 'none'",
         "\"none\"");
}

static void db_rows_loops_over_the_same_query_can_nest(void **state) {
  fixture *f = *state;
  three_items(f);
  EXPECT(f,
         "local pairs_ = {}\n"
         "for a in host.db.rows('SELECT id FROM items ORDER BY id') do\n"
         "  for b in host.db.rows('SELECT id FROM items ORDER BY id') do\n"
         "    if b.id > a.id then pairs_[#pairs_ + 1] = a.id .. b.id end\n"
         "  end\n"
         "end\n"
         "return table.concat(pairs_, ' ')",
         "\"12 13 23\"");
}

static void db_breaking_out_of_rows_releases_the_statement(void **state) {
  fixture *f = *state;
  three_items(f);
  int hits0, misses0, hits1, misses1;
  works(f, f->a,
        "for r in host.db.rows('SELECT id FROM items ORDER BY id') do break "
        "end");
  yz_store_cache_stats(f->h->store, &hits0, &misses0);
  EXPECT(f,
         "local n = 0\n"
         "for i = 1, 1000 do\n"
         "  for r in host.db.rows('SELECT id FROM items ORDER BY id') do\n"
         "    n = n + r.id break\n"
         "  end\n"
         "end\n"
         "return n",
         "1000");
  yz_store_cache_stats(f->h->store, &hits1, &misses1);
  /* Each loop found the statement the previous one gave back. */
  assert_int_equal(misses1, misses0);
  assert_int_equal(hits1 - hits0, 1000);
  /* An error inside the loop releases it too. */
  EXPECT(f,
         "return pcall(function()\n"
         "  for r in host.db.rows('SELECT id FROM items ORDER BY id') do\n"
         "    error('stop', 0)\n"
         "  end\n"
         "end)",
         "false\t\"stop\"");
  yz_store_cache_stats(f->h->store, &hits0, &misses0);
  works(f, f->a,
        "for r in host.db.rows('SELECT id FROM items ORDER BY id') do break "
        "end");
  yz_store_cache_stats(f->h->store, &hits1, &misses1);
  assert_int_equal(misses1, misses0);
  assert_int_equal(hits1, hits0 + 1);
  /* Writing after the loops is not blocked by a pending read. */
  EXPECT(f, "(host.db.exec('DELETE FROM items'))", "3");
}

static void db_null_columns_are_absent_from_the_row(void **state) {
  fixture *f = *state;
  three_items(f);
  EXPECT(f, "host.db.one('SELECT * FROM items WHERE id = 2')",
         "{ id = 2, name = \"b\" }");
  EXPECT(f,
         "local r = host.db.one('SELECT id, qty, note FROM items WHERE id = 2')"
         "\n"
         "return r.qty == nil, r.note == nil, r.id",
         "true\ttrue\t2");
  EXPECT(f, "host.db.one('SELECT * FROM items WHERE id = 1')",
         "{ id = 1, name = \"a\", qty = 1 }");
}

static void db_one_returns_nil_when_there_is_no_row(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.db.one('SELECT * FROM items')", "nil");
  three_items(f);
  EXPECT(f, "host.db.one('SELECT name FROM items WHERE id = ?', 99)", "nil");
  EXPECT(f, "host.db.one('SELECT name FROM items ORDER BY id DESC')",
         "{ name = \"c\" }");
}

static void db_exec_returns_changes_and_the_last_insert_rowid(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.db.exec('INSERT INTO items(id, name) VALUES (?, ?)', 41, "
         "'x')",
         "1\t41");
  EXPECT(f, "host.db.exec('INSERT INTO items(name) VALUES (?)', 'y')", "1\t42");
  EXPECT(f, "(host.db.exec('UPDATE items SET qty = 5'))", "2");
  EXPECT(f, "(host.db.exec('DELETE FROM items WHERE id = 41'))", "1");
  assert_int_equal(tu_int(f->h->store, "SELECT sum(qty) FROM items"), 5);
}

static void db_binds_named_parameters_from_a_table(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.db.exec('INSERT INTO items(qty, name) VALUES (:a, :b)', "
         "{ a = 1, b = 'x' })\n"
         "host.db.exec('INSERT INTO items(qty, name) VALUES (@a, $b)', "
         "{ a = 2, b = 'y' })\n"
         "return host.db.one('SELECT name, qty FROM items WHERE qty = :q', "
         "{ q = 2 })",
         "{ name = \"y\", qty = 2 }");
  assert_int_equal(
      tu_int(f->h->store, "SELECT qty FROM items WHERE name = 'x'"), 1);
  /* Named parameters want exactly one table. */
  assert_true(tu_contains(
      fails(f, f->a, "host.db.one('SELECT * FROM items WHERE id = :id', 1)"),
      "this statement has named parameters (:id ...): pass one table of "
      "values"));
}

static void db_binds_positional_parameters_in_order(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.db.exec('INSERT INTO items(name, qty, note) VALUES (?, ?, ?)', "
         "'n', 7, 'é')\n"
         "return host.db.one('SELECT name, qty, note FROM items WHERE qty = ? "
         "AND name = ?', 7, 'n')",
         "{ name = \"n\", note = \"é\", qty = 7 }");
  EXPECT(f, "host.db.one('SELECT ? + ? AS s, ? AS r', 2, 3, 0.5)",
         "{ r = 0.5, s = 5 }");
}

static void db_wrong_number_of_positional_parameters_raises(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "select(2, pcall(host.db.one, 'SELECT * FROM items WHERE id = ? AND "
         "name = ?', 1))",
         "\"the statement has 2 parameter(s), 1 value(s) given\"");
  EXPECT(f,
         "select(2, pcall(host.db.exec, 'DELETE FROM items WHERE id = ?', 1, "
         "2))",
         "\"the statement has 1 parameter(s), 2 value(s) given\"");
  /* Many failed attempts leave no statement behind: same SQL works. */
  EXPECT(f,
         "for i = 1, 200 do\n"
         "  pcall(host.db.rows, 'SELECT * FROM items WHERE id = ? AND name = "
         "?', 1)\n"
         "end\n"
         "return host.db.one('SELECT count(*) AS n FROM items WHERE id = ? AND "
         "name = ?', 1, 'x').n",
         "0");
  assert_true(tu_contains(fails(f, f->a, "host.db.exec('SELECT ?')"),
                          "the statement has 1 parameter(s), 0 value(s)"));
}

static void db_table_as_positional_parameter_raises_a_clear_error(
    void **state) {
  fixture *f = *state;
  EXPECT(f,
         "select(2, pcall(host.db.exec, 'INSERT INTO items(name, qty) VALUES "
         "(?, ?)', 'x', {}))",
         "\"SQL parameter 2: expected nil, boolean, number or string, got "
         "table\"");
  EXPECT(f, "select(2, pcall(host.db.one, 'SELECT ?', print))",
         "\"SQL parameter 1: expected nil, boolean, number or string, got "
         "function\"");
  assert_int_equal(tu_int(f->h->store, "SELECT count(*) FROM items"), 0);
}

static void db_booleans_bind_as_one_and_zero(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.db.one('SELECT ? AS t, ? AS f', true, false)",
         "{ f = 0, t = 1 }");
  works(f, f->a,
        "host.db.exec('INSERT INTO items(name, qty) VALUES (?, ?)', "
        "'flag', true)");
  assert_int_equal(
      tu_int(f->h->store, "SELECT qty FROM items WHERE name = 'flag'"), 1);
}

static void db_json_null_binds_as_sql_null(void **state) {
  fixture *f = *state;
  works(f, f->a,
        "host.db.exec('INSERT INTO items(name, qty) VALUES (?, ?)', 'p', "
        "host.json.null)\n"
        "host.db.exec('INSERT INTO items(name, qty) VALUES (:n, :q)', "
        "{ n = 'q', q = host.json.null })");
  assert_int_equal(
      tu_int(f->h->store, "SELECT count(*) FROM items WHERE qty IS NULL"), 2);
  EXPECT(f, "host.db.one('SELECT ? IS NULL AS n', host.json.null)",
         "{ n = 1 }");
}

static void db_tx_returns_the_results_and_passes_the_arguments(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "host.db.tx(function(name, qty)\n"
         "  host.db.exec('INSERT INTO items(name, qty) VALUES (?, ?)', name, "
         "qty)\n"
         "  return qty * 2, 'done', nil, name\n"
         "end, 'tx', 21)",
         "42\t\"done\"\tnil\t\"tx\"");
  assert_int_equal(
      tu_int(f->h->store, "SELECT qty FROM items WHERE name = 'tx'"), 21);
  assert_int_equal(yz_store_tx_depth(f->h->store), 0);
  EXPECT(f, "select('#', host.db.tx(function() end))", "0");
}

static void db_tx_rolls_back_on_error_and_raises_it_again(void **state) {
  fixture *f = *state;
  EXPECT(f,
         "return pcall(host.db.tx, function()\n"
         "  host.db.exec(\"INSERT INTO items(name) VALUES ('lost')\")\n"
         "  error({ code = 7 })\n"
         "end)",
         "false\t{ code = 7 }");
  assert_int_equal(tu_int(f->h->store, "SELECT count(*) FROM items"), 0);
  assert_int_equal(yz_store_tx_depth(f->h->store), 0);
  assert_true(tu_contains(
      fails(f, f->a,
            "host.db.tx(function() host.db.exec(\"INSERT INTO items(name) "
            "VALUES ('lost')\") error('boom') end)"),
      "boom"));
  assert_int_equal(tu_int(f->h->store, "SELECT count(*) FROM items"), 0);
  assert_int_equal(yz_store_tx_depth(f->h->store), 0);
}

static void db_nested_tx_that_fails_rolls_back_only_its_own_changes(
    void **state) {
  fixture *f = *state;
  EXPECT(f,
         "return host.db.tx(function()\n"
         "  host.db.exec(\"INSERT INTO items(name) VALUES ('outer')\")\n"
         "  local ok, err = pcall(host.db.tx, function()\n"
         "    host.db.exec(\"INSERT INTO items(name) VALUES ('inner')\")\n"
         "    error('inner failed', 0)\n"
         "  end)\n"
         "  host.db.exec(\"INSERT INTO items(name) VALUES ('after')\")\n"
         "  return ok, err\n"
         "end)",
         "false\t\"inner failed\"");
  char *names = tu_query(f->h->store,
                         "SELECT group_concat(name, ',') FROM (SELECT name "
                         "FROM items ORDER BY id)");
  assert_string_equal(names, "outer,after");
  free(names);
  assert_int_equal(yz_store_tx_depth(f->h->store), 0);
  /* A nested tx that succeeds is kept with the outer one. */
  works(f, f->a,
        "host.db.tx(function()\n"
        "  host.db.tx(function() host.db.exec(\"INSERT INTO items(name) "
        "VALUES ('nested')\") end)\n"
        "end)");
  assert_int_equal(
      tu_int(f->h->store, "SELECT count(*) FROM items WHERE name = 'nested'"),
      1);
}

/* ------------------------------------------------------------- host.log */

static void log_writes_one_logfmt_line_with_sorted_fields(void **state) {
  fixture *f = *state;
  yz_clock_simulate(&f->h->clock, SIM_MS);
  works(f, f->a, "host.log.info('hello world', { b = 2, a = 'x y' })");
  const char *log = read_log(f);
  assert_int_equal(lines_with(log, "hello world"), 1);
  assert_true(tu_contains(log,
                          "ts=2026-11-28T10:00:00.000Z level=info "
                          "plugin=alpha msg=\"hello world\" a=\"x y\" b=2\n"));
  works(f, f->b, "host.log.warn('plain', { ['k'] = 2.5, e = '' })");
  assert_true(tu_contains(read_log(f),
                          " level=warn plugin=beta msg=plain e=\"\" k=2.5\n"));
  works(f, f->a, "host.log.error('bad', { why = 'a=b' })");
  assert_true(tu_contains(read_log(f),
                          " level=error plugin=alpha msg=bad why=\"a=b\"\n"));
}

static void log_drops_debug_at_the_default_info_level(void **state) {
  fixture *f = *state;
  assert_int_equal(f->h->log.level, YZ_LOG_INFO);
  works(f, f->a, "host.log.debug('quiet please', { x = 1 })");
  works(f, f->a, "host.log.info('loud enough')");
  const char *log = read_log(f);
  assert_int_equal(lines_with(log, "quiet please"), 0);
  assert_int_equal(lines_with(log, "loud enough"), 1);
  /* At debug level it is written. */
  f->h->log.level = YZ_LOG_DEBUG;
  works(f, f->a, "host.log.debug('quiet please', { x = 1 })");
  assert_true(tu_contains(
      read_log(f), " level=debug plugin=alpha msg=\"quiet please\" x=1\n"));
}

static void log_escapes_quotes_and_newlines(void **state) {
  fixture *f = *state;
  works(f, f->a,
        "host.log.info('say \"hi\"\\nlevel=error forged', "
        "{ v = 'two\\nlines' })");
  const char *log = read_log(f);
  assert_true(tu_contains(log,
                          " msg=\"say \\\"hi\\\"\\nlevel=error forged\" "
                          "v=\"two\\nlines\"\n"));
  assert_int_equal(lines_with(log, "forged"), 1);
  assert_int_equal(lines_with(log, "lines"), 1);
}

static void log_field_keys_cannot_forge_fields_or_lines(void **state) {
  fixture *f = *state;
  works(f, f->a,
        "host.log.info('keys', { ['a b'] = 1, ['x\\nlevel=error msg'] = 2, "
        "['k=v'] = 3, [''] = 4 })");
  const char *log = read_log(f);
  assert_int_equal(lines_with(log, "level=error"), 0);
  assert_true(
      tu_contains(log, " msg=keys _=4 a_b=1 k_v=3 x_level_error_msg=2\n"));
}

/* ----------------------------------------------------- now, audit, name */

static void now_and_now_ms_follow_the_simulated_clock(void **state) {
  fixture *f = *state;
  yz_clock_simulate(&f->h->clock, SIM_MS + 1234);
  EXPECT(f, "host.now(), host.now_ms()", "1795860001\t1795860001234");
  EXPECT(f, "math.type(host.now()), math.type(host.now_ms())",
         "\"integer\"\t\"integer\"");
  yz_clock_advance(&f->h->clock, 60000);
  EXPECT(f, "host.now(), host.now_ms()", "1795860061\t1795860061234");
}

static void audit_appends_a_row_with_the_plugin_as_actor(void **state) {
  fixture *f = *state;
  yz_clock_simulate(&f->h->clock, SIM_MS);
  works(f, f->a, "host.audit('note.add', 'child 1', 'detail')");
  char *row = tu_query(
      f->h->store,
      "SELECT at || '|' || actor || '|' || action || '|' || subject || '|' "
      "|| detail FROM yz_audit WHERE action = 'note.add'");
  assert_string_equal(row,
                      "2026-11-28T10:00:00.000Z|alpha|note.add|child 1|detail");
  free(row);
  works(f, f->b, "host.audit('beta.only')");
  row = tu_query(f->h->store,
                 "SELECT actor || '|' || coalesce(subject, 'NULL') || '|' || "
                 "coalesce(detail, 'NULL') FROM yz_audit WHERE action = "
                 "'beta.only'");
  assert_string_equal(row, "beta|NULL|NULL");
  free(row);
  assert_true(tu_contains(fails(f, f->a, "host.audit()"), "bad argument #1"));
}

static void host_and_options_are_read_only(void **state) {
  fixture *f = *state;
  assert_true(tu_contains(fails(f, f->a, "host.name = 'evil'"), "read-only"));
  assert_true(tu_contains(fails(f, f->a, "host.now = nil"), "read-only"));
  assert_true(
      tu_contains(fails(f, f->a, "host.options.limit = 1"), "read-only"));
  assert_true(tu_contains(fails(f, f->a, "options.extra = 1"), "read-only"));
  assert_true(tu_contains(fails(f, f->a, "host.db.exec = print"), "read-only"));
  assert_true(
      tu_contains(fails(f, f->a, "rawset(host, 'name', 'x')"), "read-only"));
  assert_true(tu_contains(fails(f, f->a, "setmetatable(host, {})"),
                          "protected metatable"));
  /* Nothing changed. */
  EXPECT(f, "host.name, host.options.limit, type(host.db.exec)",
         "\"alpha\"\t20\t\"function\"");
}

static void host_name_is_the_plugins_name(void **state) {
  fixture *f = *state;
  EXPECT(f, "host.name", "\"alpha\"");
  assert_string_equal(works(f, f->b, "host.name"), "\"beta\"");
}

static void options_merge_the_defaults_with_the_config(void **state) {
  fixture *f = *state;
  const char *list =
      "local ks = {}\n"
      "for k, v in pairs(host.options) do ks[#ks + 1] = k .. '=' .. "
      "tostring(v) end\n"
      "table.sort(ks)\n"
      "return table.concat(ks, ',')";
  EXPECT(f, list, "\"greeting=hello,limit=20\"");
  EXPECT(f, "host.options == options, options.limit", "true\t20");
  assert_string_equal(works(f, f->b, list), "\"\"");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(json_round_trips_nested_tables_with_chinese_text),
      T(json_writes_integers_exactly_and_floats_shortest),
      T(json_sorts_object_keys_so_the_text_is_stable),
      T(json_empty_table_is_an_object_unless_marked_as_array),
      T(json_null_stands_for_null_in_arrays_and_objects),
      T(json_pretty_output_is_indented_and_keeps_numbers_exact),
      T(json_encode_refuses_a_cycle_naming_the_path),
      T(json_encode_refuses_a_function_naming_the_path),
      T(json_encode_refuses_nan_and_infinity),
      T(json_encode_refuses_text_that_is_not_utf8),
      T(json_encode_refuses_keys_that_are_not_utf8),
      T(json_encode_reads_tables_raw_and_runs_no_plugin_code),
      T(json_encode_at_the_memory_cap_fails_cleanly),
      T(json_array_refuses_a_table_that_is_not_a_sequence),
      T(json_encode_refuses_a_boolean_key),
      T(json_encode_refuses_a_number_key_and_its_string_twin),
      T(json_array_mark_cannot_install_a_finalizer),
      T(json_array_cannot_unfreeze_read_only_tables),
      T(json_decode_of_bad_input_returns_nil_and_the_byte),
      T(json_decode_refuses_text_after_the_value),
      T(kv_stores_tables_numbers_strings_and_booleans),
      T(kv_put_nil_deletes_the_key),
      T(kv_keys_are_per_plugin),
      T(kv_keys_are_one_to_256_bytes),
      T(kv_value_that_cannot_be_encoded_raises_and_stores_nothing),
      T(db_rows_iterates_every_row),
      T(db_rows_loops_over_the_same_query_can_nest),
      T(db_breaking_out_of_rows_releases_the_statement),
      T(db_null_columns_are_absent_from_the_row),
      T(db_one_returns_nil_when_there_is_no_row),
      T(db_exec_returns_changes_and_the_last_insert_rowid),
      T(db_binds_named_parameters_from_a_table),
      T(db_binds_positional_parameters_in_order),
      T(db_wrong_number_of_positional_parameters_raises),
      T(db_table_as_positional_parameter_raises_a_clear_error),
      T(db_booleans_bind_as_one_and_zero),
      T(db_json_null_binds_as_sql_null),
      T(db_tx_returns_the_results_and_passes_the_arguments),
      T(db_tx_rolls_back_on_error_and_raises_it_again),
      T(db_nested_tx_that_fails_rolls_back_only_its_own_changes),
      T(log_writes_one_logfmt_line_with_sorted_fields),
      T(log_drops_debug_at_the_default_info_level),
      T(log_escapes_quotes_and_newlines),
      T(log_field_keys_cannot_forge_fields_or_lines),
      T(now_and_now_ms_follow_the_simulated_clock),
      T(audit_appends_a_row_with_the_plugin_as_actor),
      T(host_and_options_are_read_only),
      T(host_name_is_the_plugins_name),
      T(options_merge_the_defaults_with_the_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
