/*
** sandbox.c: plugin Lua states built from an allow-list (see sandbox.h).
**
** Divided into: the capped allocator; the CPU budget hook; the replaced base
** functions (load, require, rawset, collectgarbage, print); read-only views;
** state creation; protected calls; copying plain values between states.
*/
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "yz.h"

#define HOOK_EVERY 1000    /* VM instructions between budget checks */
#define YZ_SLICE 2000000LL /* instructions a task runs before it yields */
#define ERROR_SLACK \
  (1 << 20)               /* extra bytes allowed while building a traceback */
#define COPY_MAX_DEPTH 64 /* nesting limit for copied values */
#define RO_MARK "__yz_readonly"

/* ------------------------------------------------------------ allocator */

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  yz_sandbox *sb = ud;
  if (!ptr) osize = 0; /* osize is a type tag for new blocks */
  if (nsize == 0) {
    free(ptr);
    sb->mem_used -= osize;
    return NULL;
  }
  if (nsize > osize && sb->mem_limit) {
    size_t limit = sb->mem_limit + (sb->handling ? ERROR_SLACK : 0);
    if (sb->mem_used - osize + nsize > limit) return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (!p) return NULL;
  sb->mem_used = sb->mem_used - osize + nsize;
  if (sb->mem_used > sb->mem_peak) sb->mem_peak = sb->mem_used;
  return p;
}

yz_sandbox *yz_sandbox_of(lua_State *L) {
  return *(yz_sandbox **)lua_getextraspace(L);
}

/* ------------------------------------------------------------ CPU budget */

static void budget_hook(lua_State *L, lua_Debug *ar);

/* Raises when the budget is spent. */
static void budget_check(lua_State *L, yz_sandbox *sb) {
  if (sb->handling || !sb->step_limit) return;
  if (sb->steps > sb->step_limit || sb->exceeded) {
    /* Check every instruction from now on, in this thread and the main one,
    ** so a pcall inside the plugin cannot swallow the error and go on. */
    sb->exceeded = 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    if (L != sb->L) lua_sethook(sb->L, budget_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "CPU budget exceeded (more than %I instructions)",
               (lua_Integer)sb->step_limit);
  }
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  yz_sandbox *sb = yz_sandbox_of(L);
  sb->steps += lua_gethookcount(L);
  budget_check(L, sb);
  /* A task that used up its slice yields back to the event loop, so other
  ** plugins' work goes on. Only the task's own thread is pre-empted (a
  ** coroutine of the plugin's would see a yield it did not ask for), and
  ** only where it can yield (not inside host.db.tx, say). */
  if (L == sb->task && sb->steps - sb->slice_start >= YZ_SLICE &&
      lua_isyieldable(L))
    lua_yield(L, 0);
}

void yz_sandbox_charge(lua_State *L, long long steps) {
  yz_sandbox *sb = yz_sandbox_of(L);
  sb->steps += steps;
  budget_check(L, sb);
}

static void budget_reset(yz_sandbox *sb);

void yz_sandbox_rearm(yz_sandbox *sb) {
  budget_reset(sb);
}

static void budget_reset(yz_sandbox *sb) {
  sb->steps = 0;
  sb->exceeded = 0;
  if (sb->step_limit)
    lua_sethook(sb->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
  else /* no budget (a plugin's command): no hook slowing every line */
    lua_sethook(sb->L, NULL, 0, 0);
}

/* ------------------------------------------------- replaced base library */

/* load(chunk [, chunkname [, mode [, env]]]) in text mode only. */
static int sb_load(lua_State *L) {
  size_t len;
  const char *mode = luaL_optstring(L, 3, "t");
  if (strcmp(mode, "t") != 0)
    return luaL_error(L,
                      "load: only text chunks are allowed in plugins "
                      "(mode \"%s\" refused)",
                      mode);
  int has_env = !lua_isnone(L, 4);
  const char *s = luaL_checklstring(L, 1, &len); /* no reader functions */
  const char *name = luaL_optstring(L, 2, s);
  int status = luaL_loadbufferx(L, s, len, name, "t");
  if (status != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2); /* put fail before the message */
    return 2;
  }
  if (has_env) {
    lua_pushvalue(L, 4);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1); /* pop env if no upvalue */
  }
  return 1;
}

/* require(name): Lua files from the plugin's own folder, text only. */
static int sb_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  yz_sandbox *sb = yz_sandbox_of(L);
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
      return luaL_error(L,
                        "require '%s': module names are letters, digits, "
                        "'_' and '.'",
                        name);
  if (!sb->dir)
    return luaL_error(L,
                      "require '%s': this plugin is a single file; only a "
                      "plugin folder can hold modules",
                      name);
  lua_getfield(L, LUA_REGISTRYINDEX, "yz.loaded");
  lua_getfield(L, -1, name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1); /* pop nil */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, sb->dir);
  luaL_addchar(&b, '/');
  for (const char *p = name; *p; p++) luaL_addchar(&b, *p == '.' ? '/' : *p);
  luaL_addstring(&b, ".lua");
  luaL_pushresult(&b);
  const char *path = lua_tostring(L, -1);
  if (luaL_loadfilex(L, path, "t") != LUA_OK)
    return luaL_error(L, "require '%s': %s", name, lua_tostring(L, -1));
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, name); /* yz.loaded[name] = result */
  return 1;
}

static int is_readonly(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  lua_getfield(L, -1, RO_MARK);
  int ro = lua_toboolean(L, -1);
  lua_pop(L, 2); /* pop mark and metatable */
  return ro;
}

static int sb_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (is_readonly(L, 1))
    return luaL_error(L, "rawset: this table is read-only");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

static int sb_collectgarbage(lua_State *L) {
  static const char *const opts[] = {"collect", "count", "step", NULL};
  int o = luaL_checkoption(L, 1, "collect", opts);
  switch (o) {
    case 1: {
      int k = lua_gc(L, LUA_GCCOUNT);
      int b = lua_gc(L, LUA_GCCOUNTB);
      lua_pushnumber(L, (lua_Number)k + ((lua_Number)b / 1024));
      return 1;
    }
    case 2:
      lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, (int)luaL_optinteger(L, 2, 0)));
      return 1;
    default:
      lua_gc(L, LUA_GCCOLLECT);
      lua_pushinteger(L, 0);
      return 1;
  }
}

/* setmetatable(t, mt) without finalizers: Lua runs __gc with debug hooks
** switched off, so the CPU budget could not stop a finalizer that loops.
** Lua registers an object for finalization only when its metatable already
** has __gc at this call, so refusing it here closes that door for good. */
static int sb_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L,
                        "setmetatable: __gc finalizers are not allowed in "
                        "plugins (use a to-be-closed variable instead)");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* print(...) writes one line to stderr, prefixed with the owner's name, so
** a daemon's stdout stays clean. */
static int sb_print(lua_State *L) {
  yz_sandbox *sb = yz_sandbox_of(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_addlstring(&b, s, len);
    lua_pop(L, 1);
  }
  luaL_pushresult(&b);
  fprintf(stderr, "[%s] %s\n", sb->name, lua_tostring(L, -1));
  return 0;
}

/* --------------------------------------------------------- read-only views */

static int ro_newindex(lua_State *L) {
  return luaL_error(L, "attempt to modify read-only table '%s'",
                    lua_tostring(L, lua_upvalueindex(1)));
}

/* Iterator over the hidden table (upvalue 1), so pairs() never hands the
** table itself to the plugin. */
static int ro_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1))) return 2;
  lua_pushnil(L);
  return 1;
}

static int ro_pairs(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushcclosure(L, ro_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int ro_len(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

void yz_sandbox_freeze(lua_State *L, const char *what) {
  luaL_checkstack(L, 8, "freeze");
  int t = lua_gettop(L);
  /* Freeze nested tables first, replacing them in place. */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -1) == LUA_TTABLE && !is_readonly(L, -1) &&
        lua_type(L, -2) == LUA_TSTRING) {
      char sub[256];
      yz_fmt(sub, sizeof sub, "%s.%s", what, lua_tostring(L, -2));
      yz_sandbox_freeze(L, sub);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t); /* replacing an existing key is safe during next */
    } else {
      lua_pop(L, 1);
    }
  }
  lua_newtable(L);          /* the proxy */
  lua_createtable(L, 0, 6); /* its metatable */
  lua_pushvalue(L, t);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, what);
  lua_pushcclosure(L, ro_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, ro_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushcfunction(L, ro_len);
  lua_setfield(L, -2, "__len");
  lua_pushstring(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, RO_MARK);
  lua_setmetatable(L, -2);
  lua_replace(L, t); /* the proxy takes the table's place */
}

/* ------------------------------------------------------------- creation */

static int open_libs(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->func; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  static const char *const removed[] = {"dofile", "loadfile", "warn", NULL};
  for (int i = 0; removed[i]; i++) {
    lua_pushnil(L);
    lua_setglobal(L, removed[i]);
  }
  static const luaL_Reg replaced[] = {
      {"load", sb_load},     {"require", sb_require},
      {"rawset", sb_rawset}, {"collectgarbage", sb_collectgarbage},
      {"print", sb_print},   {"setmetatable", sb_setmetatable},
      {NULL, NULL}};
  lua_pushglobaltable(L);
  luaL_setfuncs(L, replaced, 0);
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "yz.loaded");
  /* The string library is shared with every string through its metatable:
  ** hide the metatable and make the library read-only. */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2); /* pop metatable and "" */
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump"); /* functions as bytes: never in a sandbox */
  yz_sandbox_open_match(L);    /* pattern matching within the budget */
  yz_sandbox_freeze(L, "string");
  lua_setglobal(L, LUA_STRLIBNAME);
  /* The loaded-library table would hand out the writable originals. */
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  return 0;
}

yz_sandbox *yz_sandbox_new(const char *name, const char *dir, size_t mem_limit,
                           long long step_limit, int data_only) {
  yz_sandbox *sb = yz_xcalloc(1, sizeof *sb);
  sb->name = yz_strdup(name);
  sb->dir = yz_strdup(dir);
  sb->L = lua_newstate(sb_alloc, sb);
  if (!sb->L) {
    fputs("yizhan: out of memory creating a Lua state\n", stderr);
    abort();
  }
  *(yz_sandbox **)lua_getextraspace(sb->L) = sb;
  if (!data_only) {
    lua_pushcfunction(sb->L, open_libs);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
      fprintf(stderr, "yizhan: cannot open Lua libraries: %s\n",
              lua_tostring(sb->L, -1));
      abort();
    }
  }
  /* Limits start once the libraries are in place. */
  sb->mem_limit = mem_limit;
  sb->step_limit = step_limit;
  budget_reset(sb);
  return sb;
}

void yz_sandbox_free(yz_sandbox *sb) {
  if (!sb) return;
  /* Closing runs the plugin's __gc finalizers: they get a fresh budget, not
  ** an unlimited one, so a finalizer that loops cannot hang the host (Lua
  ** turns an error in a finalizer into a warning and goes on). */
  budget_reset(sb);
  sb->handling = 0;
  lua_close(sb->L);
  free(sb->name);
  free(sb->dir);
  free(sb);
}

int yz_sandbox_loadfile(yz_sandbox *sb, const char *path, char *err,
                        size_t errlen) {
  int rc = luaL_loadfilex(sb->L, path, "t");
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(sb->L, -1);
    yz_fmt(err, errlen, "%s", msg ? msg : "cannot load");
    lua_pop(sb->L, 1);
    /* Lua says "cannot open x" without the cause for some errors. */
    if (rc == LUA_ERRFILE && msg == NULL)
      yz_fmt(err, errlen, "%s: %s", path, strerror(errno));
    return rc;
  }
  return LUA_OK;
}

/* ------------------------------------------------------- protected calls */

static int traceback(lua_State *L) {
  yz_sandbox *sb = yz_sandbox_of(L);
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    /* A __tostring metamethod is plugin code: it runs before 'handling' is
    ** set, so the CPU budget and the memory cap still apply to it. If it
    ** fails, Lua calls this handler again with that (string) error. */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  sb->handling = 1;
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int yz_sandbox_call(yz_sandbox *sb, int nargs, int nresults, char *err,
                    size_t errlen) {
  lua_State *L = sb->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  budget_reset(sb);
  sb->handling = 0;
  int rc = lua_pcall(L, nargs, nresults, base);
  sb->handling = 0;
  if (sb->exceeded) budget_reset(sb); /* back to the normal hook rate */
  if (rc != LUA_OK) {
    if (err) {
      const char *msg = lua_tostring(L, -1);
      if (rc == LUA_ERRMEM)
        yz_fmt(err, errlen, "memory limit of %zu bytes exceeded",
               sb->mem_limit);
      else
        yz_fmt(err, errlen, "%s", msg ? msg : "unknown error");
    }
    lua_settop(L, base - 1);
    lua_gc(L, LUA_GCCOLLECT);
    return rc;
  }
  lua_remove(L, base); /* remove the message handler */
  return LUA_OK;
}

static int traceback_of(lua_State *L) {
  lua_State *co = lua_touserdata(L, 1);
  const char *msg = lua_tostring(co, -1);
  luaL_traceback(L, co, msg ? msg : "(error object is not a string)", 0);
  return 1;
}

int yz_sandbox_resume(yz_sandbox *sb, lua_State *co, int nargs,
                      long long *steps, int *nres, char *err, size_t errlen) {
  sb->steps = *steps;
  sb->exceeded = 0;
  sb->handling = 0;
  sb->slice_start = sb->steps;
  sb->task = co;
  /* The coroutine keeps the hook it was born with, and its count runs on
  ** across resumes: setting it again here would restart the count, and a
  ** task yielding every few hundred instructions would never be charged. */
  int rc = lua_resume(co, sb->L, nargs, nres);
  sb->task = NULL;
  *steps = sb->steps;
  if (sb->exceeded) budget_reset(sb);
  if (rc == LUA_OK || rc == LUA_YIELD) return rc;
  /* The traceback is built in the main thread, protected: the state may be
  ** at its memory cap. */
  sb->handling = 1;
  lua_pushcfunction(sb->L, traceback_of);
  lua_pushlightuserdata(sb->L, co);
  if (lua_pcall(sb->L, 1, 1, 0) == LUA_OK) {
    yz_fmt(err, errlen, "%s", lua_tostring(sb->L, -1));
  } else {
    const char *msg = lua_tostring(co, -1);
    yz_fmt(err, errlen, "%s",
           rc == LUA_ERRMEM ? "memory limit exceeded"
           : msg            ? msg
                            : "unknown error");
  }
  lua_pop(sb->L, 1);
  sb->handling = 0;
  return rc;
}

/* ---------------------------------------------------------------- copies */

typedef struct copy_ctx {
  lua_State *from;                  /* source state */
  int idx;                          /* absolute index of the value in 'from' */
  const void *seen[COPY_MAX_DEPTH]; /* tables on the current path */
  int depth;                        /* entries in seen */
  char path[512];                   /* where we are, for messages */
  char err[512];                    /* what went wrong */
} copy_ctx;

static int copy_value(copy_ctx *c, lua_State *to, int idx);

static int copy_table(copy_ctx *c, lua_State *to, int idx) {
  lua_State *from = c->from;
  const void *p = lua_topointer(from, idx);
  for (int i = 0; i < c->depth; i++)
    if (c->seen[i] == p) {
      yz_fmt(c->err, sizeof c->err,
             "%s: a table that contains itself "
             "cannot be copied",
             c->path[0] ? c->path : "value");
      return 1;
    }
  if (c->depth >= COPY_MAX_DEPTH) {
    yz_fmt(c->err, sizeof c->err, "%s: nested more than %d levels", c->path,
           COPY_MAX_DEPTH);
    return 1;
  }
  if (lua_getmetatable(from, idx)) {
    lua_pop(from, 1);
    yz_fmt(c->err, sizeof c->err,
           "%s: a table with a metatable cannot be "
           "copied",
           c->path[0] ? c->path : "value");
    return 1;
  }
  c->seen[c->depth++] = p;
  luaL_checkstack(from, 4, "copy");
  luaL_checkstack(to, 4, "copy");
  lua_newtable(to);
  size_t plen = strlen(c->path);
  lua_pushnil(from);
  while (lua_next(from, idx)) {
    int kt = lua_type(from, -2);
    if (kt == LUA_TSTRING)
      yz_fmt(c->path + plen, sizeof c->path - plen, ".%s",
             lua_tostring(from, -2));
    else if (kt == LUA_TNUMBER && lua_isinteger(from, -2))
      yz_fmt(c->path + plen, sizeof c->path - plen, "[%lld]",
             (long long)lua_tointeger(from, -2));
    else
      yz_fmt(c->path + plen, sizeof c->path - plen, "[?]");
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) {
      yz_fmt(c->err, sizeof c->err, "%s: a %s key cannot be copied", c->path,
             lua_typename(from, kt));
      lua_pop(from, 2);
      return 1;
    }
    int top = lua_gettop(from);
    if (copy_value(c, to, top - 1) || copy_value(c, to, top)) {
      lua_pop(from, 2);
      return 1;
    }
    lua_rawset(to, -3);
    lua_pop(from, 1); /* pop value, keep key */
  }
  c->path[plen] = '\0';
  c->depth--;
  return 0;
}

static int copy_value(copy_ctx *c, lua_State *to, int idx) {
  lua_State *from = c->from;
  switch (lua_type(from, idx)) {
    case LUA_TNIL: lua_pushnil(to); return 0;
    case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(from, idx))
        lua_pushinteger(to, lua_tointeger(from, idx));
      else
        lua_pushnumber(to, lua_tonumber(from, idx));
      return 0;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(from, idx, &n);
      lua_pushlstring(to, s, n);
      return 0;
    }
    case LUA_TTABLE: return copy_table(c, to, idx);
    default:
      yz_fmt(c->err, sizeof c->err,
             "%s: a %s cannot be copied (only nil, "
             "booleans, numbers, strings and tables)",
             c->path[0] ? c->path : "value", luaL_typename(from, idx));
      return 1;
  }
}

static int copy_protected(lua_State *to) {
  copy_ctx *c = lua_touserdata(to, 1);
  lua_settop(to, 0);
  if (copy_value(c, to, c->idx)) {
    lua_pushnil(to);
    lua_pushboolean(to, 0);
    return 2;
  }
  lua_pushboolean(to, 1);
  return 2;
}

int yz_sandbox_copy(lua_State *from, int idx, lua_State *to, char *err,
                    size_t errlen) {
  copy_ctx *c = yz_xcalloc(1, sizeof *c);
  c->from = from;
  c->idx = lua_absindex(from, idx);
  int top_from = lua_gettop(from);
  lua_pushcfunction(to, copy_protected);
  lua_pushlightuserdata(to, c);
  int rc = lua_pcall(to, 1, 2, 0);
  lua_settop(from, top_from);
  if (rc != LUA_OK) {
    yz_fmt(err, errlen, "copying %s: %s", c->path[0] ? c->path : "value",
           rc == LUA_ERRMEM ? "memory limit exceeded" : lua_tostring(to, -1));
    lua_pop(to, 1);
    free(c);
    return 1;
  }
  if (!lua_toboolean(to, -1)) {
    yz_fmt(err, errlen, "%s", c->err);
    lua_pop(to, 2);
    free(c);
    return 1;
  }
  lua_pop(to, 1); /* pop the success flag, keep the copy */
  free(c);
  return 0;
}
