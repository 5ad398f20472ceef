/*
** lapi_test.c: the 't' table that plugin tests (*_test.lua) get, and the
** runner behind 'yizhan test'.
**
** A test file runs inside its plugin's sandbox, on a fresh database and a
** fake clock, and registers tests:
**
**   test("letters go out on the 1st", function(t)
**     t.clock.set("2026-09-01 08:59")
**     t.advance("2m")                  -- runs every job due on the way
**     t.eq(host.db.one("SELECT count(*) AS n FROM sent").n, 3)
**     t.contains(t.logs()[1], "letter reminders")
**   end)
**
**   t.eq(actual, expected [, what])    deep equality (tables by content)
**   t.ok(value [, what])               truthy
**   t.contains(text, part [, what])    substring
**   t.error(fn, part)                  fn raises, with 'part' in the message
**   t.clock.set("YYYY-MM-DD HH:MM")    jumps there, as if the host had been
**                                      off meanwhile (nothing runs on the
**                                      way; see misfires in sched.h)
**   t.advance("15m" | seconds)         moves forward, running every job,
**                                      timer and sleeper due on the way
**   t.now() -> "YYYY-MM-DD HH:MM"      the fake clock, local time
**   t.logs() -> { lines }              log lines since the last call
**   t.jobs() -> { {name=, spec=, next=} }  this plugin's jobs
**   t.sent() -> { {to=, masked=, text=, key=, channel=, plugin=, job=,
**                  parts=, coding=, at=} }  messages that left in this test
**                                      (captured: nothing reaches a gateway;
**                                      quiet hours and caps apply)
**   t.events() -> { {topic=, from=, data=} }  events plugins emitted in this
**                                      test (handlers run as t.advance goes)
**
** A failed assertion names the test file and line, what was expected and
** what came. Each test's database changes are rolled back after it; the
** fake clock and the log carry on from test to test.
*/
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "deliver.h"
#include "host.h"
#include "lapi.h"
#include "phone.h"
#include "plugin.h"
#include "sandbox.h"
#include "sched.h"

#define ASSERT_MARK "assertion failed: "

typedef struct test_ctx {
  yz_host *h;     /* the host under test */
  yz_plugin *p;   /* the plugin whose tests run */
  FILE *cap;      /* the log capture */
  char **capbuf;  /* its buffer */
  size_t *caplen; /* its length */
  size_t read;    /* bytes of it t.logs() has handed out */
  yz_msg **sent;  /* messages captured in this test */
  int nsent, sentcap;
  char **events; /* events emitted in this test: "topic\nfrom\njson" */
  int nevents, eventcap;
  char scratch[64]; /* the file's folder for t.command, t.write, t.read */
} test_ctx;

static test_ctx *ctx_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* Raises "file:line: assertion failed: <msg>" at the test's line. */
static int assert_fail(lua_State *L, const char *fmt, ...) {
  luaL_where(L, 1);
  va_list ap;
  va_start(ap, fmt);
  lua_pushliteral(L, ASSERT_MARK);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 3);
  return lua_error(L);
}

static const char *what_of(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? "" : luaL_checkstring(L, idx);
}

static const char *describe(lua_State *L, int idx) {
  yz_buf b;
  yz_buf_init(&b, 64 * 1024);
  yz_lapi_describe(L, idx, &b);
  lua_pushlstring(L, yz_buf_str(&b), b.len);
  yz_buf_free(&b);
  return lua_tostring(L, -1);
}

static int t_eq(lua_State *L) {
  luaL_checkany(L, 2);
  const char *what = what_of(L, 3);
  const char *got = describe(L, 1);
  const char *want = describe(L, 2);
  if (strcmp(got, want) != 0)
    return assert_fail(L, "%s%sexpected %s, got %s", what, *what ? ": " : "",
                       want, got);
  return 0;
}

static int t_ok(lua_State *L) {
  luaL_checkany(L, 1);
  if (!lua_toboolean(L, 1)) {
    const char *what = what_of(L, 2);
    return assert_fail(L, "%s%sexpected a true value, got %s", what,
                       *what ? ": " : "", describe(L, 1));
  }
  return 0;
}

static int t_contains(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  const char *part = luaL_checkstring(L, 2);
  const char *what = what_of(L, 3);
  if (!strstr(text, part))
    return assert_fail(L, "%s%sexpected text containing \"%s\", got \"%s\"",
                       what, *what ? ": " : "", part, text);
  return 0;
}

static int t_error(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  const char *part = luaL_optstring(L, 2, "");
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 0, 0, 0) == LUA_OK)
    return assert_fail(L, "expected an error containing \"%s\", got none",
                       part);
  const char *msg = lua_tostring(L, -1);
  if (!msg || !strstr(msg, part))
    return assert_fail(L, "expected an error containing \"%s\", got \"%s\"",
                       part, msg ? msg : "(not a string)");
  return 0;
}

/* Moves the fake clock forward to 'target', ticking through every due time
** on the way. The test's own budget and task state are kept aside while
** jobs run in their coroutines. */
static void move_clock(test_ctx *c, int64_t target) {
  yz_host *h = c->h;
  yz_sandbox *sb = c->p->sb;
  long long steps = sb->steps, slice = sb->slice_start;
  lua_State *task = sb->task;
  yz_host_run_until(h, target);
  sb->steps = steps;
  sb->slice_start = slice;
  sb->task = task;
}

static int t_clock_set(lua_State *L) {
  test_ctx *c = ctx_of(L);
  const char *s = luaL_checkstring(L, 1);
  int64_t t;
  if (yz_parse_local(s, c->h->cfg->timezone, &t) != 0)
    return luaL_error(L,
                      "t.clock.set: expected \"YYYY-MM-DD HH:MM\", got "
                      "\"%s\"",
                      s);
  /* A jump, as if the host had been off until then: nothing runs on the
  ** way, and a run missed by less than its grace fires at the next tick. */
  c->h->clock.sim_ms = t * 1000;
  return 0;
}

static int t_advance(lua_State *L) {
  test_ctx *c = ctx_of(L);
  if (c->p->sb->task)
    return luaL_error(L,
                      "t.advance: only the test itself moves the clock, "
                      "not a job or timer it started");
  int64_t ms;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    ms = (int64_t)(lua_tonumber(L, 1) * 1000);
  } else {
    const char *s = luaL_checkstring(L, 1);
    char *end;
    double v = strtod(s, &end);
    int64_t unit = *end == 's'   ? 1000
                   : *end == 'm' ? 60000
                   : *end == 'h' ? 3600000
                   : *end == 'd' ? 86400000
                   : *end == 'w' ? 604800000
                                 : 0;
    if (end == s || !unit || end[1] != '\0' || v < 0)
      return luaL_error(L,
                        "t.advance: expected seconds or a duration like "
                        "\"15m\", \"2h\", \"1d\", got \"%s\"",
                        s);
    ms = (int64_t)(v * (double)unit);
  }
  luaL_argcheck(L, ms >= 0, 1, "the clock only moves forward");
  move_clock(c, yz_clock_now_ms(&c->h->clock) + ms);
  return 0;
}

static int t_now(lua_State *L) {
  test_ctx *c = ctx_of(L);
  yz_tm tm;
  yz_clock_local(c->h->cfg->timezone, yz_clock_now_ms(&c->h->clock) / 1000,
                 &tm);
  lua_pushfstring(L, "%d-%s%d-%s%d %s%d:%s%d", tm.year, tm.mon < 10 ? "0" : "",
                  tm.mon, tm.day < 10 ? "0" : "", tm.day,
                  tm.hour < 10 ? "0" : "", tm.hour, tm.min < 10 ? "0" : "",
                  tm.min);
  return 1;
}

static int t_logs(lua_State *L) {
  test_ctx *c = ctx_of(L);
  fflush(c->cap);
  lua_newtable(L);
  size_t len = *c->caplen;
  const char *buf = *c->capbuf;
  lua_Integer n = 0;
  size_t i = c->read;
  while (i < len) {
    const char *nl = memchr(buf + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - buf) : len;
    lua_pushlstring(L, buf + i, end - i);
    lua_rawseti(L, -2, ++n);
    i = end + 1;
  }
  c->read = len;
  return 1;
}

static int t_jobs(lua_State *L) {
  test_ctx *c = ctx_of(L);
  yz_job **jobs;
  int n = yz_sched_jobs(c->h->sched, &jobs);
  lua_newtable(L);
  lua_Integer k = 0;
  for (int i = 0; i < n; i++) {
    if (jobs[i]->owner != c->p) continue;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, jobs[i]->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, yz_spec_text(jobs[i]->spec));
    lua_setfield(L, -2, "spec");
    if (jobs[i]->next_due != YZ_NEVER) {
      char iso[40];
      yz_clock_iso_local(c->h->cfg->timezone, jobs[i]->next_due, iso,
                         sizeof iso);
      lua_pushstring(L, iso);
      lua_setfield(L, -2, "next");
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, jobs[i]->name); /* by name too: t.jobs().monthly */
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/* test(name, fn): collects into the registry list "yz.tests". */
static int t_register(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_getfield(L, LUA_REGISTRYINDEX, "yz.tests");
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* The host hands over each message that would leave. */
static void capture(yz_host *h, const yz_msg *m, void *ud) {
  test_ctx *c = ud;
  (void)h;
  if (c->nsent == c->sentcap) {
    c->sentcap = c->sentcap ? c->sentcap * 2 : 16;
    c->sent = yz_xrealloc(c->sent, sizeof *c->sent * (size_t)c->sentcap);
  }
  yz_msg *copy = yz_msg_copy(m);
  copy->sent_ms = yz_clock_now_ms(&c->h->clock);
  c->sent[c->nsent++] = copy;
}

static void clear_sent(test_ctx *c) {
  for (int i = 0; i < c->nsent; i++) yz_msg_free(c->sent[i]);
  c->nsent = 0;
  for (int i = 0; i < c->nevents; i++) free(c->events[i]);
  c->nevents = 0;
}

/* The host tells of each event a plugin emits. */
static void capture_event(yz_host *h, const char *topic, const char *json,
                          size_t n, const char *origin, void *ud) {
  test_ctx *c = ud;
  (void)h;
  if (c->nevents == c->eventcap) {
    c->eventcap = c->eventcap ? c->eventcap * 2 : 16;
    c->events = yz_xrealloc(c->events, sizeof *c->events * (size_t)c->eventcap);
  }
  size_t tl = strlen(topic), ol = strlen(origin);
  char *e = yz_xmalloc(tl + ol + n + 3);
  memcpy(e, topic, tl);
  e[tl] = '\n';
  memcpy(e + tl + 1, origin, ol);
  e[tl + 1 + ol] = '\n';
  memcpy(e + tl + ol + 2, json, n);
  e[tl + ol + 2 + n] = 0;
  c->events[c->nevents++] = e;
}

/* t.events() -> { {topic=, from=, data=} }: the events plugins emitted in
** this test, in order. */
/* t.command(name, args [, {input = "yes\n"}]) -> status, stdout, stderr:
** runs a plugin's command as the CLI would; files are relative to the data
** directory. */
static int t_command(lua_State *L) {
  test_ctx *c = lua_touserdata(L, lua_upvalueindex(1));
  const char *name = luaL_checkstring(L, 1);
  int nargs = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    nargs = (int)lua_rawlen(L, 2);
  }
  const char *input = NULL;
  size_t ninput = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "input");
    input = lua_tolstring(L, -1, &ninput); /* stays on the stack */
  }
  /* argv: the name's words, then the arguments, all kept on the stack. */
  size_t nname = strlen(name);
  luaL_checkstack(L, nargs + 8, "t.command: too many arguments");
  char **argv =
      lua_newuserdatauv(L, sizeof *argv * ((size_t)nargs + nname + 2), 0);
  int argc = 0;
  char *words = lua_newuserdatauv(L, nname + 1, 0);
  memcpy(words, name, nname + 1);
  char *save = NULL;
  for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
    argv[argc++] = w;
  int nwords = argc;
  for (int i = 1; i <= nargs; i++) {
    lua_rawgeti(L, 2, i);
    if (!lua_isstring(L, -1))
      return luaL_error(L, "t.command: argument %d is not a string", i);
    argv[argc++] = (char *)lua_tostring(L, -1); /* kept on the stack */
  }
  argv[argc] = NULL;
  int words_found;
  yz_plugin *p = yz_cmd_find(c->h, argc, argv, &words_found);
  if (!p || words_found != nwords)
    return luaL_error(L, "t.command: no started plugin has a command '%s'",
                      name);
  char *out = NULL, *err = NULL;
  size_t nout = 0, nerr = 0;
  FILE *fo = open_memstream(&out, &nout), *fe = open_memstream(&err, &nerr);
  FILE *fi = input && ninput ? fmemopen((void *)input, ninput, "r") : NULL;
  int status = 0, ran = 0;
  if (fo && fe && (fi || !input || !ninput)) {
    status = yz_cmd_run(c->h, p, nwords, argc, argv, c->scratch, fi, fo, fe);
    ran = 1;
  }
  if (fi) fclose(fi);
  if (fo) fclose(fo);
  if (fe) fclose(fe);
  if (!ran) {
    free(out);
    free(err);
    return luaL_error(L, "t.command: cannot capture the output");
  }
  lua_pushinteger(L, status);
  int rc1 = yz_lapi_push_free(L, out, nout);
  if (rc1 != LUA_OK) {
    free(err);
    return lua_error(L);
  }
  if (yz_lapi_push_free(L, err, nerr) != LUA_OK) return lua_error(L);
  return 3;
}

/* The path of a file in the scratch folder: a plain name, no folders. */
static const char *scratch_path(lua_State *L, test_ctx *c) {
  const char *name = luaL_checkstring(L, 1);
  if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
      strcmp(name, "..") == 0)
    luaL_error(L, "a file name without folders, got '%s'", name);
  return lua_pushfstring(L, "%s/%s", c->scratch, name);
}

/* t.write(name, text): a file for a command to read (t.command). */
static int t_write(lua_State *L) {
  test_ctx *c = ctx_of(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  const char *path = scratch_path(L, c);
  FILE *f = fopen(path, "wb");
  int ok = f && fwrite(s, 1, n, f) == n;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok) return luaL_error(L, "t.write: cannot write %s", path);
  return 0;
}

/* t.read(name) -> the bytes of a file a command wrote, or nil. */
static int t_read(lua_State *L) {
  test_ctx *c = ctx_of(L);
  FILE *f = fopen(scratch_path(L, c), "rb");
  if (!f) return 0;
  yz_buf b;
  yz_buf_init(&b, 64u << 20);
  char chunk[8192];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) yz_buf_add(&b, chunk, k);
  fclose(f);
  size_t n = b.len;
  char *s = b.data ? b.data : yz_strdup("");
  if (yz_lapi_push_free(L, s, n) != LUA_OK) return lua_error(L);
  return 1;
}

/* t.fixture(name): runs DATADIR/fixtures/NAME.sql as the host, the
** registry rows several plugins' tests share. */
static int t_fixture(lua_State *L) {
  test_ctx *c = ctx_of(L);
  const char *name = luaL_checkstring(L, 1);
  for (const char *s = name; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return luaL_error(L, "t.fixture: a name of a-z, 0-9 and _, got '%s'",
                        name);
  const char *path =
      lua_pushfstring(L, "%s/fixtures/%s.sql", c->h->datadir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return luaL_error(L, "t.fixture: cannot open %s", path);
  yz_buf b;
  yz_buf_init(&b, 16u << 20);
  char chunk[8192];
  size_t k;
  int ok = 1;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
    ok &= yz_buf_add(&b, chunk, k) == YZ_OK;
  fclose(f);
  int rc =
      ok ? yz_store_exec_script(c->h->store, NULL, yz_buf_str(&b)) : YZ_ERR;
  yz_buf_free(&b);
  if (rc != YZ_OK)
    return luaL_error(L, "t.fixture: %s: %s", path,
                      ok ? yz_store_errmsg(c->h->store) : "too large");
  return 0;
}

static int t_events(lua_State *L) {
  test_ctx *c = ctx_of(L);
  lua_createtable(L, c->nevents, 0);
  for (int i = 0; i < c->nevents; i++) {
    const char *e = c->events[i];
    const char *nl1 = strchr(e, '\n'), *nl2 = strchr(nl1 + 1, '\n');
    char err[256];
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, e, (size_t)(nl1 - e));
    lua_setfield(L, -2, "topic");
    lua_pushlstring(L, nl1 + 1, (size_t)(nl2 - nl1 - 1));
    lua_setfield(L, -2, "from");
    if (yz_json_decode(L, nl2 + 1, strlen(nl2 + 1), err, sizeof err) == 0)
      lua_setfield(L, -2, "data");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* t.sent() -> { {to=, masked=, text=, key=, channel=, plugin=, job=,
** parts=, coding=, at=} }: what left in this test so far (messages due now
** are handed over first; later ones go as t.advance reaches them). */
static int t_sent(lua_State *L) {
  test_ctx *c = ctx_of(L);
  int fields = lua_istable(L, 1);
  yz_deliver_turn(c->h);
  lua_createtable(L, c->nsent, 0);
  for (int i = 0; i < c->nsent; i++) {
    const yz_msg *m = c->sent[i];
    char masked[32], at[40];
    yz_phone_mask(m->to, masked, sizeof masked);
    yz_clock_iso_local(c->h->cfg->timezone, m->sent_ms / 1000, at, sizeof at);
    at[16] = 0; /* "YYYY-MM-DDTHH:MM" */
    at[10] = ' ';
    lua_createtable(L, 0, 10);
    lua_pushstring(L, m->to);
    lua_setfield(L, -2, "to");
    lua_pushstring(L, masked);
    lua_setfield(L, -2, "masked");
    lua_pushstring(L, m->text);
    lua_setfield(L, -2, "text");
    lua_pushstring(L, m->key);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, m->channel);
    lua_setfield(L, -2, "channel");
    lua_pushstring(L, m->plugin ? m->plugin : "");
    lua_setfield(L, -2, "plugin");
    if (m->job) {
      lua_pushstring(L, m->job);
      lua_setfield(L, -2, "job");
    }
    lua_pushinteger(L, m->parts);
    lua_setfield(L, -2, "parts");
    lua_pushstring(L, m->ucs2 ? "ucs2" : "gsm7");
    lua_setfield(L, -2, "coding");
    lua_pushstring(L, at);
    lua_setfield(L, -2, "at");
    if (fields) { /* t.sent{"to", "text"}: only those */
      lua_createtable(L, 0, 4);
      for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, 1); k++) {
        lua_rawgeti(L, 1, k);
        lua_pushvalue(L, -1);
        lua_rawget(L, -4);
        lua_rawset(L, -3);
      }
      lua_remove(L, -2);
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Pushes the 't' table, its functions bound to ctx. */
static void push_t(lua_State *L, test_ctx *c) {
  static const luaL_Reg funcs[] = {
      {"eq", t_eq},           {"ok", t_ok},           {"contains", t_contains},
      {"error", t_error},     {"advance", t_advance}, {"now", t_now},
      {"logs", t_logs},       {"jobs", t_jobs},       {"sent", t_sent},
      {"events", t_events},   {"command", t_command}, {"write", t_write},
      {"fixture", t_fixture}, {"read", t_read},       {NULL, NULL}};
  lua_createtable(L, 0, 12);
  lua_pushlightuserdata(L, c);
  luaL_setfuncs(L, funcs, 1);
  yz_lapi_db_as_host(L); /* t.exec, t.one: fixtures, as the host */
  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, c);
  lua_pushcclosure(L, t_clock_set, 1);
  lua_setfield(L, -2, "set");
  lua_setfield(L, -2, "clock");
}

/* Removes the scratch folder and the files in it (t.write allows no
** folders, and commands write files only). */
static void remove_scratch(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      yz_fmt(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

int yz_lapi_run_tests(yz_host *h, yz_plugin *p, const char *file, FILE *cap,
                      char **capbuf, size_t *caplen, FILE *out, int *passed,
                      int *failed) {
  lua_State *L = p->sb->L;
  test_ctx c = {h, p, cap, capbuf, caplen, 0, NULL, 0, 0, NULL, 0, 0, ""};
  yz_fmt(c.scratch, sizeof c.scratch, "/tmp/yizhan-test-XXXXXX");
  if (!mkdtemp(c.scratch)) {
    fprintf(out, "not ok - %s\n    cannot make a scratch folder: %s\n", file,
            strerror(errno));
    (*failed)++;
    return YZ_ERR;
  }
  h->capture = capture;
  h->capture_ud = &c;
  h->on_event = capture_event;
  h->on_event_ud = &c;
  char err[8192];
  lua_settop(L, 0);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "yz.tests");
  if (yz_sandbox_loadfile(p->sb, file, err, sizeof err) != LUA_OK) {
    fprintf(out, "not ok - %s\n    %s\n", file, err);
    (*failed)++;
    remove_scratch(c.scratch);
    return YZ_ERR;
  }
  /* _ENV: the plugin's globals plus host, options and test(). */
  yz_plugin_push_env(p);
  lua_pushcfunction(L, t_register);
  lua_setfield(L, -2, "test");
  lua_setupvalue(L, -2, 1);
  if (yz_sandbox_call(p->sb, 0, 0, err, sizeof err) != LUA_OK) {
    fprintf(out, "not ok - %s\n    %s\n", file, err);
    (*failed)++;
    remove_scratch(c.scratch);
    return YZ_ERR;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "yz.tests");
  int list = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, list);
  if (n == 0) {
    fprintf(out,
            "not ok - %s\n    no tests: call test(\"name\", "
            "function(t) ... end)\n",
            file);
    (*failed)++;
  }
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    lua_rawgeti(L, -1, 1);
    char name[256];
    yz_fmt(name, sizeof name, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_rawgeti(L, -1, 2);
    lua_remove(L, -2);
    push_t(L, &c);
    /* Each test's database changes are undone after it, so tests do not
    ** depend on each other; the clock and the logs carry on. */
    clear_sent(&c);
    int tx = yz_store_tx_begin(h->store) == YZ_OK;
    int rc = yz_sandbox_call(p->sb, 1, 0, err, sizeof err);
    while (tx && yz_store_tx_depth(h->store) > 0)
      yz_store_tx_rollback(h->store);
    yz_outbox_forget_counts(h->outbox); /* the rolled-back sends' */
    if (rc == LUA_OK) {
      fprintf(out, "ok - %s\n", name);
      (*passed)++;
    } else {
      /* An assertion shows its line alone; anything else its traceback. */
      char *mark = strstr(err, ASSERT_MARK);
      if (mark) {
        char *nl = strchr(mark, '\n');
        if (nl) *nl = '\0';
      }
      fprintf(out, "not ok - %s\n    %s\n", name, err);
      (*failed)++;
    }
  }
  lua_settop(L, 0);
  remove_scratch(c.scratch);
  clear_sent(&c);
  free(c.sent);
  free(c.events);
  h->capture = NULL;
  h->capture_ud = NULL;
  h->on_event = NULL;
  h->on_event_ud = NULL;
  return YZ_OK;
}
