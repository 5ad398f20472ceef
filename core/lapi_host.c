/*
** lapi_host.c: assembles the read-only 'host' table a plugin sees, and the
** small areas that need no file of their own:
**
**   host.name                         -- the plugin's name
**   host.now() -> seconds since the epoch (integer), host.now_ms()
**   host.date([t [, "utc"]]) -> { year=, month=, day=, hour=, min=, sec=,
**                                 wday= (1 = Sunday) }  -- local time of
**                                 the configured zone, or UTC
**   host.log.debug/info/warn/error(msg [, fields])  -- logfmt on stderr
**   host.audit(action [, subject [, detail]])       -- the audit log
**   host.options                      -- defaults merged with the config
**   host.db, host.kv (lapi_db.c), host.json (lapi_json.c),
**   host.crypto (lapi_crypto.c)
*/
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "lapi.h"
#include "plugin.h"

static yz_plugin *plugin_of(lua_State *L) {
  return yz_sandbox_of(L)->owner;
}

static int h_now(lua_State *L) {
  lua_pushinteger(L, yz_clock_now_ms(&plugin_of(L)->host->clock) / 1000);
  return 1;
}

static int h_now_ms(lua_State *L) {
  lua_pushinteger(L, yz_clock_now_ms(&plugin_of(L)->host->clock));
  return 1;
}

static int h_date(lua_State *L) {
  yz_plugin *p = plugin_of(L);
  int64_t t = luaL_opt(L, luaL_checkinteger, 1,
                       yz_clock_now_ms(&p->host->clock) / 1000);
  const char *zone = luaL_optstring(L, 2, "local");
  int utc = strcmp(zone, "utc") == 0;
  if (!utc && strcmp(zone, "local") != 0)
    return luaL_argerror(L, 2, "expected \"utc\" or \"local\"");
  if (t < -62135596800LL || t > 253402300799LL)
    return luaL_argerror(L, 1, "out of range (years 1 to 9999)");
  if (!utc) t += yz_clock_utcoff(p->host->cfg->timezone, t);
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  int y, m, d;
  yz_civil_from_days(days, &y, &m, &d);
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, y);
  lua_setfield(L, -2, "year");
  lua_pushinteger(L, m);
  lua_setfield(L, -2, "month");
  lua_pushinteger(L, d);
  lua_setfield(L, -2, "day");
  lua_pushinteger(L, secs / 3600);
  lua_setfield(L, -2, "hour");
  lua_pushinteger(L, secs / 60 % 60);
  lua_setfield(L, -2, "min");
  lua_pushinteger(L, secs % 60);
  lua_setfield(L, -2, "sec");
  lua_pushinteger(L, ((days % 7) + 7 + 4) % 7 + 1); /* 1970-01-01: Thu */
  lua_setfield(L, -2, "wday");
  return 1;
}

static int h_audit(lua_State *L) {
  const char *action = luaL_checkstring(L, 1);
  const char *subject = luaL_optstring(L, 2, NULL);
  const char *detail = luaL_optstring(L, 3, NULL);
  yz_plugin *p = plugin_of(L);
  if (yz_store_audit(p->host->store, yz_clock_now_ms(&p->host->clock), p->name,
                     action, subject, detail) != YZ_OK)
    return luaL_error(L, "host.audit: %s", yz_store_errmsg(p->host->store));
  return 0;
}

/* host.outbox.stats([{since=, until=}]): messages created in the window
** (seconds since the epoch) by state, and the SMS parts of those sent or
** delivered. Counts only: no recipient or text leaves the core. */
static int h_outbox_stats(lua_State *L) {
  lua_Integer since = 0, until = (lua_Integer)1 << 40;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *keys[] = {"since", "until"};
    lua_Integer *vals[] = {&since, &until};
    for (int i = 0; i < 2; i++) {
      int isint = 1;
      if (lua_getfield(L, 1, keys[i]) != LUA_TNIL)
        *vals[i] = lua_tointegerx(L, -1, &isint);
      if (!isint)
        return luaL_error(L,
                          "host.outbox.stats: %s: expected seconds since "
                          "the epoch",
                          keys[i]);
      if (*vals[i] < 0) *vals[i] = 0;
      if (*vals[i] > ((lua_Integer)1 << 40)) *vals[i] = (lua_Integer)1 << 40;
      lua_pop(L, 1);
    }
  }
  yz_store *s = plugin_of(L)->host->store;
  yz_stmt *st;
  if (yz_store_prepare(s, NULL,
                       "SELECT state, count(*), sum(CASE WHEN state IN "
                       "('sent', 'delivered') THEN parts ELSE 0 END) FROM "
                       "yz_outbox WHERE created_at >= ?1 AND created_at < ?2 "
                       "GROUP BY state",
                       &st) != YZ_OK)
    return luaL_error(L, "host.outbox.stats: %s", yz_store_errmsg(s));
  yz_value v[2] = {{.type = YZ_INT, .i = since * 1000},
                   {.type = YZ_INT, .i = until * 1000}};
  yz_stmt_bind(st, 1, &v[0]);
  yz_stmt_bind(st, 2, &v[1]);
  lua_createtable(L, 0, 8);
  static const char *const states[] = {"queued", "sending", "sent", "delivered",
                                       "failed", "dead",    NULL};
  for (int i = 0; states[i]; i++) {
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, states[i]);
  }
  lua_Integer parts = 0;
  int rc;
  while ((rc = yz_stmt_step(st)) == YZ_ROW) {
    yz_value state, n, p;
    yz_stmt_column(st, 0, &state);
    yz_stmt_column(st, 1, &n);
    yz_stmt_column(st, 2, &p);
    lua_pushinteger(L, n.i);
    lua_setfield(L, -2, state.s);
    parts += p.type == YZ_INT ? p.i : 0;
  }
  yz_stmt_release(st);
  if (rc != YZ_DONE)
    return luaL_error(L, "host.outbox.stats: %s", yz_store_errmsg(s));
  lua_pushinteger(L, parts);
  lua_setfield(L, -2, "parts");
  return 1;
}

/* ------------------------------------------------------------------- log */

#define LOG_MAX_FIELDS 32

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int log_at(lua_State *L, int level) {
  yz_plugin *p = plugin_of(L);
  if (level < p->host->log.level) return 0;
  const char *msg = luaL_tolstring(L, 1, NULL);
  const char *kv[2 * LOG_MAX_FIELDS];
  int n = 0;
  if (lua_istable(L, 2)) {
    /* Fields in key order, so lines are stable and easy to grep. The key
    ** strings stay alive in the table; the value strings on the stack. */
    const char *keys[LOG_MAX_FIELDS];
    int nk = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING && nk < LOG_MAX_FIELDS)
        keys[nk++] = lua_tostring(L, -1);
    }
    qsort(keys, (size_t)nk, sizeof keys[0], cmp_cstr);
    luaL_checkstack(L, 2 * nk + 2, "host.log");
    for (int i = 0; i < nk; i++) {
      lua_getfield(L, 2, keys[i]);
      kv[2 * n] = keys[i];
      kv[2 * n + 1] = luaL_tolstring(L, -1, NULL);
      n++;
    }
  }
  yz_log_write(&p->host->log, level, p->name, msg, kv, n);
  return 0;
}

static int l_debug(lua_State *L) {
  return log_at(L, YZ_LOG_DEBUG);
}
static int l_info(lua_State *L) {
  return log_at(L, YZ_LOG_INFO);
}
static int l_warn(lua_State *L) {
  return log_at(L, YZ_LOG_WARN);
}
static int l_error(lua_State *L) {
  return log_at(L, YZ_LOG_ERROR);
}

int luaopen_yz_log(lua_State *L) {
  static const luaL_Reg funcs[] = {{"debug", l_debug},
                                   {"info", l_info},
                                   {"warn", l_warn},
                                   {"error", l_error},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}

/* ------------------------------------------------------------ the table */

void yz_lapi_push_host(lua_State *L, yz_plugin *p) {
  int options = lua_gettop(L);
  lua_createtable(L, 0, 28);
  lua_pushstring(L, p->name);
  lua_setfield(L, -2, "name");
  lua_pushcfunction(L, h_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, h_now_ms);
  lua_setfield(L, -2, "now_ms");
  lua_pushcfunction(L, h_date);
  lua_setfield(L, -2, "date");
  lua_pushcfunction(L, h_audit);
  lua_setfield(L, -2, "audit");
  yz_lapi_open_sched(L);
  luaopen_yz_calendar(L);
  lua_setfield(L, -2, "calendar");
  luaopen_yz_log(L);
  lua_setfield(L, -2, "log");
  luaopen_yz_db(L);
  lua_setfield(L, -2, "db");
  luaopen_yz_kv(L);
  lua_setfield(L, -2, "kv");
  luaopen_yz_json(L);
  lua_setfield(L, -2, "json");
  luaopen_yz_crypto(L);
  lua_setfield(L, -2, "crypto");
  luaopen_yz_text(L);
  lua_setfield(L, -2, "text");
  yz_lapi_open_cmd(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, h_outbox_stats);
  lua_setfield(L, -2, "stats");
  lua_setfield(L, -2, "outbox");
  yz_lapi_open_msg(L, p);
  lua_pushvalue(L, options);
  lua_setfield(L, -2, "options");
  yz_sandbox_freeze(L, "host");
  lua_remove(L, options);
}

/* -------------------------------------------------------------- describe */

static int is_ident(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

static void describe(lua_State *L, int idx, yz_buf *out, int depth);

static void describe_string(const char *s, size_t n, yz_buf *out) {
  yz_buf_addc(out, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      yz_buf_addf(out, "\\%c", c);
    else if (c == '\n')
      yz_buf_adds(out, "\\n");
    else if (c < 0x20 || c == 0x7f)
      yz_buf_addf(out, "\\%d", c);
    else
      yz_buf_addc(out, (char)c);
  }
  yz_buf_addc(out, '"');
}

static int cmp_keys(lua_State *L) {
  /* sort keys: numbers first by value, then strings */
  int ta = lua_type(L, 1), tb = lua_type(L, 2);
  if (ta != tb) {
    lua_pushboolean(L, ta == LUA_TNUMBER);
    return 1;
  }
  if (ta == LUA_TNUMBER || ta == LUA_TSTRING) {
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
  }
  lua_pushboolean(L, 0);
  return 1;
}

static void describe_table(lua_State *L, int idx, yz_buf *out, int depth) {
  if (depth > 6) {
    yz_buf_adds(out, "{...}");
    return;
  }
  luaL_checkstack(L, 8, "describe");
  /* Gather keys; through __pairs so read-only views show their contents. */
  lua_newtable(L);
  int keys = lua_gettop(L);
  int nk = 0;
  lua_getglobal(L, "pairs");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, idx);
    lua_call(L, 1, 3);
    for (;;) {
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -3);
      lua_call(L, 2, 1);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, keys, ++nk);
      lua_replace(L, -2); /* control variable = key */
    }
  }
  lua_settop(L, keys);
  lua_getglobal(L, "table");
  if (lua_istable(L, -1) && lua_getfield(L, -1, "sort") == LUA_TFUNCTION) {
    lua_pushvalue(L, keys);
    lua_pushcfunction(L, cmp_keys);
    lua_call(L, 2, 0);
  }
  lua_settop(L, keys);
  lua_Integer seq = 0;
  yz_buf_adds(out, "{");
  for (int i = 1; i <= nk; i++) {
    yz_buf_adds(out, i > 1 ? ", " : " ");
    lua_rawgeti(L, keys, i);
    int k = lua_gettop(L);
    if (lua_isinteger(L, k) && lua_tointeger(L, k) == seq + 1) {
      seq++;
    } else if (lua_type(L, k) == LUA_TSTRING && is_ident(lua_tostring(L, k))) {
      yz_buf_addf(out, "%s = ", lua_tostring(L, k));
    } else {
      yz_buf_adds(out, "[");
      describe(L, k, out, depth + 1);
      yz_buf_adds(out, "] = ");
    }
    lua_pushvalue(L, k);
    lua_gettable(L, idx);
    describe(L, lua_gettop(L), out, depth + 1);
    lua_settop(L, keys);
  }
  yz_buf_adds(out, nk ? " }" : "}");
  lua_settop(L, keys - 1);
}

static void describe(lua_State *L, int idx, yz_buf *out, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: yz_buf_adds(out, "nil"); break;
    case LUA_TBOOLEAN:
      yz_buf_adds(out, lua_toboolean(L, idx) ? "true" : "false");
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        yz_buf_addf(out, "%lld", (long long)lua_tointeger(L, idx));
      else
        yz_buf_addf(out, "%.14g", lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      describe_string(s, n, out);
      break;
    }
    case LUA_TTABLE: describe_table(L, idx, out, depth); break;
    case LUA_TLIGHTUSERDATA:
      if (!lua_touserdata(L, idx)) {
        yz_buf_adds(out, "json.null");
        break;
      }
      /* fall through */
    default: yz_buf_addf(out, "<%s>", luaL_typename(L, idx)); break;
  }
}

static int describe_protected(lua_State *L) {
  yz_buf *out = lua_touserdata(L, 2);
  describe(L, 1, out, 0);
  return 0;
}

void yz_lapi_describe(lua_State *L, int idx, yz_buf *out) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, describe_protected);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, out);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    yz_buf_addf(out, "<cannot show: %s>", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}
