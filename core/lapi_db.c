/*
** lapi_db.c: host.db and host.kv, the plugin's view of the database.
**
**   for row in host.db.rows(sql, ...) do ... end   -- rows as tables by name
**   host.db.one(sql, ...) -> row | nil
**   host.db.exec(sql, ...) -> changes, last_insert_rowid
**   host.db.tx(fn, ...) -> fn's results        -- all or nothing
**   host.kv.get(key) -> value | nil ; host.kv.put(key, value|nil)
**
** Parameters are bound, never spliced: pass them after the SQL (positional
** '?'), or as one table for named ones (':name'). One statement per call.
** Every statement is prepared and run under the plugin's access rules (see
** store.h); a refusal raises an error naming the table and the rule.
*/
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "lapi.h"
#include "plugin.h"
#include "store.h"

#define CURSOR "yz.cursor"
#define KV_MAX_VALUE (1u << 20) /* bytes of JSON per kv value */

/* The upvalue that marks t.exec and t.one (see yz_lapi_db_as_host). */
static const char as_host = 0;

static yz_plugin *plugin_of(lua_State *L) {
  return yz_sandbox_of(L)->owner;
}

static yz_store *store_of(lua_State *L) {
  return plugin_of(L)->host->store;
}

/* Converts argument idx to a bindable value; raises for other types. */
static void to_value(lua_State *L, int idx, int param, yz_value *v) {
  memset(v, 0, sizeof *v);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: v->type = YZ_NULL; break;
    case LUA_TBOOLEAN:
      v->type = YZ_INT;
      v->i = lua_toboolean(L, idx);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        v->type = YZ_INT;
        v->i = lua_tointeger(L, idx);
      } else {
        v->type = YZ_REAL;
        v->d = lua_tonumber(L, idx);
      }
      break;
    case LUA_TSTRING:
      v->type = YZ_TEXT;
      v->s = lua_tolstring(L, idx, &v->n);
      break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) { /* host.json.null */
        v->type = YZ_NULL;
        break;
      }
      /* fall through */
    default:
      luaL_error(L,
                 "SQL parameter %d: expected nil, boolean, number or "
                 "string, got %s",
                 param, luaL_typename(L, idx));
  }
}

/* Binds arguments first..top to st, raising on a mismatch. */
static void bind_args(lua_State *L, yz_stmt *st, int first) {
  int nargs = lua_gettop(L) - first + 1;
  int nparams = yz_stmt_param_count(st);
  const char *pname = nparams ? yz_stmt_param_name(st, 1) : NULL;
  yz_value v;
  if (pname && pname[0] != '?') {
    /* Named parameters: one table holds their values. */
    if (nargs != 1 || !lua_istable(L, first))
      luaL_error(L,
                 "this statement has named parameters (%s ...): pass one "
                 "table of values",
                 pname);
    for (int i = 1; i <= nparams; i++) {
      const char *name = yz_stmt_param_name(st, i);
      if (!name || name[0] == '?')
        luaL_error(L, "do not mix named and positional parameters");
      lua_getfield(L, first, name + 1);
      to_value(L, -1, i, &v);
      if (yz_stmt_bind(st, i, &v) != YZ_OK)
        luaL_error(L, "%s", yz_store_errmsg(store_of(L)));
      lua_pop(L, 1);
    }
    return;
  }
  if (nargs != nparams)
    luaL_error(L, "the statement has %d parameter(s), %d value(s) given",
               nparams, nargs);
  for (int i = 0; i < nargs; i++) {
    to_value(L, first + i, i + 1, &v);
    if (yz_stmt_bind(st, i + 1, &v) != YZ_OK)
      luaL_error(L, "%s", yz_store_errmsg(store_of(L)));
  }
}

/* Pushes the current row as a table keyed by column name. */
static void push_row(lua_State *L, yz_stmt *st) {
  int n = yz_stmt_column_count(st);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    yz_value v;
    yz_stmt_column(st, i, &v);
    switch (v.type) {
      case YZ_INT: lua_pushinteger(L, v.i); break;
      case YZ_REAL: lua_pushnumber(L, v.d); break;
      case YZ_TEXT:
      case YZ_BLOB: lua_pushlstring(L, v.s, v.n); break;
      default: continue; /* NULL: the field is absent */
    }
    lua_setfield(L, -2, yz_stmt_column_name(st, i));
  }
}

/* ---------------------------------------------------------------- cursor */

typedef struct cursor {
  yz_stmt *st; /* NULL once closed */
} cursor;

static int cursor_close(lua_State *L) {
  cursor *c = luaL_checkudata(L, 1, CURSOR);
  yz_stmt_release(c->st);
  c->st = NULL;
  return 0;
}

/* Creates a closed cursor, then prepares into it: if preparing raises, the
** userdata is already there for the collector. */
static cursor *open_cursor(lua_State *L, int sql_idx) {
  const char *sql = luaL_checkstring(L, sql_idx);
  cursor *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->st = NULL;
  luaL_setmetatable(L, CURSOR);
  yz_plugin *p = plugin_of(L);
  /* The test API's t.exec/t.one carry the as_host mark: they run as the
  ** host, for fixtures; host.db's functions have no upvalue. */
  const yz_acl *acl =
      lua_touserdata(L, lua_upvalueindex(1)) == &as_host ? NULL : &p->acl;
  if (yz_store_prepare(p->host->store, acl, sql, &c->st) != YZ_OK)
    luaL_error(L, "%s", yz_store_errmsg(p->host->store));
  return c;
}

static int rows_iter(lua_State *L) {
  cursor *c = lua_touserdata(L, lua_upvalueindex(1));
  if (!c->st) return 0;
  int rc = yz_stmt_step(c->st);
  if (rc == YZ_ROW) {
    push_row(L, c->st);
    return 1;
  }
  yz_stmt_release(c->st);
  c->st = NULL;
  if (rc == YZ_DONE) return 0;
  return luaL_error(L, "%s", yz_store_errmsg(store_of(L)));
}

/* host.db.rows(sql, ...): iterator, nil, nil, closing value. */
static int db_rows(lua_State *L) {
  cursor *c = open_cursor(L, 1);
  int ud = lua_gettop(L);
  lua_rotate(L, 2, 1); /* move the cursor before the parameters */
  (void)ud;
  bind_args(L, c->st, 3);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, rows_iter, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 2); /* to-be-closed: released when the loop ends */
  return 4;
}

static int db_one(lua_State *L) {
  cursor *c = open_cursor(L, 1);
  lua_rotate(L, 2, 1);
  bind_args(L, c->st, 3);
  int rc = yz_stmt_step(c->st);
  if (rc == YZ_ROW)
    push_row(L, c->st);
  else if (rc == YZ_DONE)
    lua_pushnil(L);
  yz_stmt_release(c->st);
  c->st = NULL;
  if (rc != YZ_ROW && rc != YZ_DONE)
    return luaL_error(L, "%s", yz_store_errmsg(store_of(L)));
  return 1;
}

static int db_exec(lua_State *L) {
  cursor *c = open_cursor(L, 1);
  lua_rotate(L, 2, 1);
  bind_args(L, c->st, 3);
  int rc;
  while ((rc = yz_stmt_step(c->st)) == YZ_ROW) {
  }
  yz_stmt_release(c->st);
  c->st = NULL;
  if (rc != YZ_DONE) return luaL_error(L, "%s", yz_store_errmsg(store_of(L)));
  yz_store *s = store_of(L);
  lua_pushinteger(L, yz_store_changes(s));
  lua_pushinteger(L, yz_store_last_rowid(s));
  return 2;
}

/* host.db.tx(fn, ...): runs fn in a transaction (a savepoint when nested).
** An error rolls back and is raised again; fn may not yield. */
static int db_tx(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  yz_store *s = store_of(L);
  if (yz_store_tx_begin(s) != YZ_OK)
    return luaL_error(L, "host.db.tx: %s", yz_store_errmsg(s));
  int base = lua_gettop(L);
  int rc = lua_pcall(L, base - 1, LUA_MULTRET, 0);
  if (rc != LUA_OK) {
    yz_store_tx_rollback(s);
    if (lua_type(L, -1) == LUA_TSTRING &&
        strstr(lua_tostring(L, -1), "attempt to yield across"))
      return luaL_error(L,
                        "host.db.tx: the function may not yield (no "
                        "host.sleep or HTTP inside a transaction)");
    return lua_error(L);
  }
  if (yz_store_tx_commit(s) != YZ_OK) {
    char msg[YZ_ERRMSG_MAX];
    yz_fmt(msg, sizeof msg, "%s", yz_store_errmsg(s));
    yz_store_tx_rollback(s);
    return luaL_error(L, "host.db.tx: commit failed: %s", msg);
  }
  return lua_gettop(L);
}

int luaopen_yz_db(lua_State *L) {
  static const luaL_Reg funcs[] = {{"rows", db_rows},
                                   {"one", db_one},
                                   {"exec", db_exec},
                                   {"tx", db_tx},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, CURSOR)) {
    lua_pushcfunction(L, cursor_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, cursor_close);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, "cursor");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}

void yz_lapi_db_as_host(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&as_host);
  lua_pushcclosure(L, db_exec, 1);
  lua_setfield(L, -2, "exec");
  lua_pushlightuserdata(L, (void *)&as_host);
  lua_pushcclosure(L, db_one, 1);
  lua_setfield(L, -2, "one");
}

/* -------------------------------------------------------------------- kv */

static const char *check_key(lua_State *L) {
  size_t n;
  const char *key = luaL_checklstring(L, 1, &n);
  if (n == 0 || n > 256) luaL_argerror(L, 1, "a key is 1 to 256 bytes");
  return key;
}

static int kv_get(lua_State *L) {
  const char *key = check_key(L);
  yz_plugin *p = plugin_of(L);
  char *val = NULL;
  size_t n = 0;
  int rc = yz_store_kv_get(p->host->store, p->name, key, &val, &n);
  if (rc == YZ_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (rc != YZ_OK)
    return luaL_error(L, "host.kv.get: %s", yz_store_errmsg(p->host->store));
  char err[200];
  /* Into Lua first: the C copy is freed even if the state is at its cap. */
  if (yz_lapi_push_free(L, val, n) != LUA_OK) return lua_error(L);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (yz_json_decode(L, s, len, err, sizeof err) != 0)
    return luaL_error(L, "host.kv.get('%s'): stored value is damaged: %s", key,
                      err);
  return 1;
}

static int kv_put(lua_State *L) {
  const char *key = check_key(L);
  yz_plugin *p = plugin_of(L);
  int rc;
  if (lua_isnoneornil(L, 2)) {
    rc = yz_store_kv_put(p->host->store, p->name, key, NULL, 0);
  } else {
    yz_buf b;
    yz_buf_init(&b, KV_MAX_VALUE);
    char err[400];
    if (yz_json_encode(L, 2, &b, err, sizeof err) != 0) {
      yz_buf_free(&b);
      return luaL_error(L, "host.kv.put('%s'): %s", key, err);
    }
    rc = yz_store_kv_put(p->host->store, p->name, key, yz_buf_str(&b), b.len);
    yz_buf_free(&b);
  }
  if (rc != YZ_OK)
    return luaL_error(L, "host.kv.put: %s", yz_store_errmsg(p->host->store));
  return 0;
}

int luaopen_yz_kv(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"get", kv_get}, {"put", kv_put}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
