/*
** test_match.c: the sandbox's string.find/match/gmatch/gsub against stock
** Lua 5.4. The same Lua harness runs in a plugin sandbox and in a plain
** lua_State with the standard library: a table of hand-picked cases and
** thousands of random patterns must give identical results (or both fail),
** and a pattern that backtracks for ages must run out of the CPU budget.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "testutil.h"

/* Runs every case and returns one line per result; an error is "ERR" (the
** two implementations may word messages differently). */
static const char *const harness =
    "local function ser(...)\n"
    "  local t = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    t[#t + 1] = type(v) == 'string' and string.format('%q', v) or "
    "tostring(v)\n"
    "  end\n"
    "  return table.concat(t, ',')\n"
    "end\n"
    "local function run(kind, s, p, init)\n"
    "  local ok, r = pcall(function()\n"
    "    if kind == 'find' then return ser(string.find(s, p, init))\n"
    "    elseif kind == 'plain' then return ser(s:find(p, init, true))\n"
    "    elseif kind == 'match' then return ser(s:match(p, init))\n"
    "    elseif kind == 'gmatch' then\n"
    "      local out = {}\n"
    "      for a, b in string.gmatch(s, p, init) do\n"
    "        out[#out + 1] = ser(a, b)\n"
    "        if #out > 50 then break end\n"
    "      end\n"
    "      return table.concat(out, ';')\n"
    "    elseif kind == 'gsub_s' then return ser(s:gsub(p, '<%0|%1%%>'))\n"
    "    elseif kind == 'gsub_n' then return ser(s:gsub(p, '#', 2))\n"
    "    elseif kind == 'gsub_t' then\n"
    "      return ser(s:gsub(p, { a = 'A', ['1'] = 1, b = false }))\n"
    "    elseif kind == 'gsub_f' then\n"
    "      return ser(s:gsub(p, function(...) return select('#', ...) .. "
    "'' end))\n"
    "    end\n"
    "  end)\n"
    "  return ok and r or 'ERR'\n"
    "end\n"
    "local kinds = { 'find', 'plain', 'match', 'gmatch', 'gsub_s', 'gsub_n',\n"
    "                'gsub_t', 'gsub_f' }\n"
    "local out = {}\n"
    "local function case(s, p, init)\n"
    "  for _, k in ipairs(kinds) do\n"
    "    out[#out + 1] = k .. ' ' .. string.format('%q %q', s, p) .. ' ' ..\n"
    "      tostring(init) .. ' -> ' .. run(k, s, p, init)\n"
    "  end\n"
    "end\n"
    /* Hand-picked cases: every construct of the pattern language. */
    "local fixed = {\n"
    "  { 'hello world', 'o w' }, { 'hello world', 'l+' }, { 'hello', 'l*' },\n"
    "  { 'hello', 'x*' }, { 'hello', 'l-o' }, { 'hello', 'he?l' },\n"
    "  { 'hello', '^h' }, { 'hello', '^e' }, { 'hello', 'o$' }, { 'a$b', "
    "'$b' },\n"
    "  { '  trim me  ', '^%s*(.-)%s*$' }, { 'key = value', '(%w+)%s*=%s*(%w+)' "
    "},\n"
    "  { '2026-11-28', '(%d+)-(%d+)-(%d+)' }, { 'abc', '()b()' },\n"
    "  { 'f(a(b)c)d', '%b()' }, { 'THE (quick) fox', '%f[%a]%a+' },\n"
    "  { 'hello hello', '(h%a+) %1' }, { 'x', '%' }, { 'x', '[a' },\n"
    "  { 'x', '(x' }, { 'x', 'x)' }, { 'x', '%1' }, { 'x', '%f' }, { 'x', "
    "'%b' },\n"
    "  { '[]', '[]]' }, { 'a-b', '[a%-]+' }, { 'a]b', '[^]]' }, { '', '' },\n"
    "  { '', '.-' }, { 'abc', '' }, { 'abc', '.-' }, { 'aaa', 'a-' },\n"
    "  { '\\0a\\0', '%z' }, { '\\0a\\0', '[%z]' }, { 'a.b', '.', 1 },\n"
    "  { 'a.b', '%.', 1 }, { 'abc', 'b', -1 }, { 'abc', 'b', -2 }, { 'abc', "
    "'b', 10 },\n"
    "  { 'abc', '', 4 }, { 'abc', '', 5 }, { 'abc', 'c', 0 }, { '日本語', "
    "'[\\128-\\191]+' },\n"
    "  { 'AbC', '%u%l%u' }, { 'a1_ ', '%W' }, { 'x=1, y=2', '(%w+)=(%w+)' },\n"
    "  { string.rep('(', 300), string.rep('%(', 300) },\n"
    "  { 'a', string.rep('(', 33) .. 'a' .. string.rep(')', 33) },\n"
    "  { 'abc', '((a)(b))' }, { 'abab', '(ab)*' }, { 'hello', '[%a-z]' },\n"
    "  { 'a+b', 'a+b' }, { 'a+b', 'a%+b' }, { '123abc', '^%d+' },\n"
    "}\n"
    "for _, c in ipairs(fixed) do case(c[1], c[2], c[3]) end\n"
    /* Random patterns over a small alphabet, seeded: both states draw the
    ** same sequence. */
    "math.randomseed(20261128)\n"
    "local atoms = { 'a', 'b', 'c', '.', '%a', '%d', '%s', '%w', '%A', "
    "'[ab]',\n"
    "  '[^a]', '[a-c1]', '[%d%s]', '%(', '%b()', '%f[%w]', '%f[%W]', '1', ' ' "
    "}\n"
    "local quants = { '', '', '', '*', '+', '-', '?' }\n"
    "local subjects = { 'abc 123 (a(b)c) cab', 'aaa bbb', '', '1a2b3c',\n"
    "  '(()) ab', 'ccc(aa)bb 1' }\n"
    "for i = 1, N_RANDOM do\n"
    "  local parts = {}\n"
    "  if math.random(4) == 1 then parts[1] = '^' end\n"
    "  local open = 0\n"
    "  for _ = 1, math.random(0, 6) do\n"
    "    local r = math.random(10)\n"
    "    if r == 1 then parts[#parts + 1] = '('; open = open + 1\n"
    "    elseif r == 2 and open > 0 then parts[#parts + 1] = ')'; open = open "
    "- 1\n"
    "    elseif r == 3 then parts[#parts + 1] = '()'\n"
    "    elseif r == 4 and open == 0 and #parts > 0 then parts[#parts + 1] = "
    "'%1'\n"
    "    else\n"
    "      parts[#parts + 1] = atoms[math.random(#atoms)] .. "
    "quants[math.random(#quants)]\n"
    "    end\n"
    "  end\n"
    "  parts[#parts + 1] = string.rep(')', open)\n"
    "  if math.random(5) == 1 then parts[#parts + 1] = '$' end\n"
    "  local init = math.random(6) == 1 and math.random(-4, 8) or nil\n"
    "  case(subjects[math.random(#subjects)], table.concat(parts), init)\n"
    "end\n"
    "return table.concat(out, '\\n')\n";

/* Runs the harness in L and returns its output (malloc'd). */
static char *run_harness(lua_State *L, int random_cases) {
  lua_pushinteger(L, random_cases);
  lua_setglobal(L, "N_RANDOM");
  if (luaL_loadbufferx(L, harness, strlen(harness), "=harness", "t") !=
          LUA_OK ||
      lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "harness: %s\n", lua_tostring(L, -1));
    fail();
  }
  char *out = yz_strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  return out;
}

/* Prints the first line where the two outputs differ. */
static void show_difference(const char *a, const char *b) {
  int line = 1;
  while (*a && *a == *b) {
    if (*a == '\n') line++;
    a++;
    b++;
  }
  while (line > 1 && a[-1] != '\n') {
    a--;
    b--;
  }
  fprintf(
      stderr,
      "first difference at line %d:\n  sandbox: %.200s\n  lua:     %.200s\n",
      line, a, b);
}

static void patterns_match_exactly_as_stock_lua_does(void **state) {
  (void)state;
  yz_sandbox *sb = yz_sandbox_new("match", NULL, 256u << 20, 0, 0);
  lua_State *stock = luaL_newstate();
  luaL_openlibs(stock);
  char *mine = run_harness(sb->L, 4000);
  char *theirs = run_harness(stock, 4000);
  if (strcmp(mine, theirs) != 0) show_difference(mine, theirs);
  assert_string_equal(mine, theirs);
  /* The comparison covered what it claims: every kind, errors included. */
  assert_true(tu_contains(mine, "gmatch \"abc\" \"()b()\" nil -> 2,3"));
  assert_true(tu_contains(mine, "find \"x\" \"%\" nil -> ERR"));
  size_t lines = 1;
  for (const char *p = mine; *p; p++) lines += *p == '\n';
  assert_true(lines > 8 * 4000);
  free(mine);
  free(theirs);
  lua_close(stock);
  yz_sandbox_free(sb);
}

static void a_pattern_that_backtracks_for_ages_runs_out_of_budget(
    void **state) {
  (void)state;
  yz_sandbox *sb = yz_sandbox_new("match", NULL, 64u << 20, 20000000, 0);
  static const char *const bombs[] = {
      "return string.rep('a', 40):find(string.rep('a-', 20) .. 'b')",
      "return string.rep('a', 40):match(string.rep('a*', 20) .. 'b')",
      "return select(2, string.rep('a', 40):gsub(string.rep('a?', 20) .. "
      "'b', ''))",
      "for x in string.rep('a', 40):gmatch(string.rep('.-', 20) .. 'b') do "
      "end",
      "while true do pcall(string.find, string.rep('a', 40), "
      "string.rep('a-', 20) .. 'b') end",
      "return string.rep('a', 1 << 24):find('b', 1, true)",
      NULL};
  for (int i = 0; bombs[i]; i++) {
    char err[1024];
    assert_int_equal(luaL_loadstring(sb->L, bombs[i]), LUA_OK);
    int rc = yz_sandbox_call(sb, 0, 0, err, sizeof err);
    if (i == 5) { /* a long plain search is linear: it finishes */
      assert_int_equal(rc, LUA_OK);
      continue;
    }
    assert_int_not_equal(rc, LUA_OK);
    assert_true(tu_contains(err, "CPU budget exceeded"));
  }
  /* The state is usable afterwards, with a fresh budget. */
  char err[256];
  assert_int_equal(
      luaL_loadstring(sb->L, "return ('2026-11-28'):match('(%d+)-(%d+)')"),
      LUA_OK);
  assert_int_equal(yz_sandbox_call(sb, 0, 2, err, sizeof err), LUA_OK);
  assert_string_equal(lua_tostring(sb->L, -2), "2026");
  assert_string_equal(lua_tostring(sb->L, -1), "11");
  lua_settop(sb->L, 0);
  yz_sandbox_free(sb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(patterns_match_exactly_as_stock_lua_does),
      cmocka_unit_test(a_pattern_that_backtracks_for_ages_runs_out_of_budget),
  };
  return cmocka_run_group_tests_name("match", tests, NULL, NULL);
}
