/*
** lapi_json.c: host.json, JSON for plugins (and for the key/value store),
** built on cJSON.
**
**   host.json.encode(value [, {pretty = true}]) -> string | raises
**   host.json.decode(text) -> value | nil, "invalid JSON at byte N"
**   host.json.null                 -- JSON null inside arrays and objects
**   host.json.array(t) -> t        -- marks t to encode as [] even if empty
**
** Tables that are sequences 1..n encode as arrays, others as objects with
** keys sorted (so output is stable). Integers are written exactly; NaN,
** infinities, functions, userdata and cycles are refused with the path.
*/
#include <cJSON.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lapi.h"
#include "yz.h"

#define JSON_MAX_DEPTH 100
#define ARRAY_MARK "yz.json.array"

typedef struct enc {
  lua_State *L;   /* the state */
  char *err;      /* message buffer */
  size_t errlen;  /* its size */
  char path[256]; /* where we are, for messages */
  int depth;      /* current nesting */
  int failed;     /* err holds why the value cannot be encoded */
  cJSON *root;    /* the tree so far; the caller frees it whatever happens */
} enc;

static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len = c < 0x80         ? 1
                 : (c >> 5) == 6  ? 2
                 : (c >> 4) == 14 ? 3
                 : (c >> 3) == 30 ? 4
                                  : 0;
    if (!len || i + len > n) return 0;
    unsigned long cp = len == 1 ? c : c & (0x7Fu >> len);
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3Fu);
    }
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are
    ** well-formed bytes but not UTF-8 (RFC 3629). */
    static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return 0;
    i += len;
  }
  return 1;
}

static int is_array_marked(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, ARRAY_MARK);
  int yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}

/* Returns n when the table is a sequence 1..n (n >= 1), else 0. */
static lua_Integer sequence_len(lua_State *L, int idx) {
  lua_Integer count = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    count++;
  }
  return count == max ? max : 0;
}

/* Records "what is wrong at $.path"; returns 1 for the caller to return. */
static int fail(enc *e, const char *what) {
  yz_fmt(e->err, e->errlen, "%s%s%s", what, e->path[0] ? " at " : "",
         e->path[0] ? e->path : "");
  e->failed = 1;
  return 1;
}

static int failf(enc *e, const char *what, const char *detail) {
  char msg[200];
  yz_fmt(msg, sizeof msg, "%s%s", what, detail);
  return fail(e, msg);
}

/* Hangs a new node into the tree at once (under 'key' of an object parent,
** at the end of an array parent, or as the root), so that whatever happens
** next, freeing the root frees it. */
static int attach(enc *e, cJSON *parent, const char *key, cJSON *node) {
  if (!node) return fail(e, "out of memory while encoding JSON");
  if (!parent)
    e->root = node;
  else if (key)
    cJSON_AddItemToObject(parent, key, node);
  else
    cJSON_AddItemToArray(parent, node);
  return 0;
}

/* An object key: the table's own string, or an integer key as text. The
** array of these lives in a userdata, so an error frees it too. */
typedef struct keyent {
  const char *s; /* a string key (kept alive by the table), or NULL */
  lua_Integer i; /* an integer key, when s is NULL */
  char text[24]; /* the integer key as text */
} keyent;

static const char *key_name(const keyent *k) {
  return k->s ? k->s : k->text;
}

static int cmp_keys(const void *a, const void *b) {
  return strcmp(key_name(a), key_name(b));
}

static int add_value(enc *e, int idx, cJSON *parent, const char *key);

static int add_table(enc *e, int idx, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  if (e->depth >= JSON_MAX_DEPTH)
    return fail(e, "nested more than 100 levels (or a cycle)");
  luaL_checkstack(L, 6, "json");
  size_t plen = strlen(e->path);
  lua_Integer n = sequence_len(L, idx);
  int bad = 0;
  e->depth++;
  if (n == 0 && is_array_marked(L, idx)) {
    lua_pushnil(L);
    if (lua_next(L, idx)) { /* marked as an array, but not a sequence */
      lua_pop(L, 2);
      e->depth--;
      return fail(e,
                  "a table marked with json.array has keys other than "
                  "1..n");
    }
  }
  if (n > 0 || is_array_marked(L, idx)) {
    cJSON *arr = cJSON_CreateArray();
    bad = attach(e, parent, key, arr);
    for (lua_Integer i = 1; !bad && i <= n; i++) {
      yz_fmt(e->path + plen, sizeof e->path - plen, "[%lld]", (long long)i);
      lua_rawgeti(L, idx, i);
      bad = add_value(e, lua_gettop(L), arr, NULL);
      lua_pop(L, 1);
    }
  } else {
    cJSON *obj = cJSON_CreateObject();
    bad = attach(e, parent, key, obj);
    size_t nk = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      nk++;
    }
    keyent *keys = lua_newuserdatauv(L, (nk ? nk : 1) * sizeof *keys, 0);
    int anchor = lua_gettop(L);
    size_t k = 0;
    lua_pushnil(L);
    while (!bad && lua_next(L, idx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        keys[k].s = lua_tolstring(L, -1, &len);
        if (!valid_utf8((const unsigned char *)keys[k].s, len) ||
            strlen(keys[k].s) != len) {
          bad = fail(e, "an object key that is not valid UTF-8 text");
          lua_pop(L, 1);
          break;
        }
      } else if (lua_isinteger(L, -1)) {
        keys[k].s = NULL;
        keys[k].i = lua_tointeger(L, -1);
        yz_fmt(keys[k].text, sizeof keys[k].text, "%lld", (long long)keys[k].i);
      } else {
        bad = failf(e, "JSON object keys are strings; got a key of type ",
                    luaL_typename(L, -1));
        lua_pop(L, 1);
        break;
      }
      k++;
    }
    if (!bad) qsort(keys, nk, sizeof *keys, cmp_keys);
    for (size_t i = 1; !bad && i < nk; i++)
      if (strcmp(key_name(&keys[i - 1]), key_name(&keys[i])) == 0) {
        /* Only an integer key and its string twin can collide: one of the
        ** two values would be lost. */
        char msg[200];
        yz_fmt(msg, sizeof msg, "the keys %s and \"%s\" are one JSON key",
               key_name(&keys[i]), key_name(&keys[i]));
        bad = fail(e, msg);
      }
    for (size_t i = 0; !bad && i < nk; i++) {
      yz_fmt(e->path + plen, sizeof e->path - plen, ".%s", key_name(&keys[i]));
      if (keys[i].s)
        lua_pushstring(L, keys[i].s);
      else
        lua_pushinteger(L, keys[i].i);
      lua_rawget(L, idx); /* raw: no plugin code runs inside the encoder */
      bad = add_value(e, lua_gettop(L), obj, key_name(&keys[i]));
      lua_pop(L, 1);
    }
    lua_settop(L, anchor - 1);
  }
  e->path[plen] = '\0';
  e->depth--;
  return bad;
}

static int add_value(enc *e, int idx, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return attach(e, parent, key, cJSON_CreateNull());
    case LUA_TBOOLEAN:
      return attach(e, parent, key, cJSON_CreateBool(lua_toboolean(L, idx)));
    case LUA_TNUMBER: {
      char buf[40];
      if (lua_isinteger(L, idx)) {
        yz_fmt(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
        return attach(e, parent, key, cJSON_CreateRaw(buf));
      }
      double d = lua_tonumber(L, idx);
      if (isnan(d) || isinf(d))
        return fail(e, "NaN or infinity cannot be encoded");
      /* The shortest of %.15g/%.17g that reads back as the same double. */
      yz_fmt(buf, sizeof buf, "%.15g", d);
      if (strtod(buf, NULL) != d) yz_fmt(buf, sizeof buf, "%.17g", d);
      if (!strpbrk(buf, ".eEn")) {
        size_t bl = strlen(buf); /* keep it a float: 2.0 stays "2.0" */
        yz_fmt(buf + bl, sizeof buf - bl, ".0");
      }
      return attach(e, parent, key, cJSON_CreateRaw(buf));
    }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      if (!valid_utf8((const unsigned char *)s, n) || strlen(s) != n)
        return fail(e, "a string that is not valid UTF-8 text");
      return attach(e, parent, key, cJSON_CreateString(s));
    }
    case LUA_TTABLE: return add_table(e, idx, parent, key);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL)
        return attach(e, parent, key, cJSON_CreateNull());
      /* fall through */
    default:
      return failf(e, "cannot encode as JSON a value of type ",
                   luaL_typename(L, idx));
  }
}

static int encode_protected(lua_State *L) {
  enc *e = lua_touserdata(L, 1);
  e->L = L;
  add_value(e, 2, NULL, NULL);
  return 0;
}

/* Builds the tree for the value at idx, running protected: a Lua error
** (the plugin's memory cap) frees what was built instead of leaking it.
** Returns the tree, or NULL with err set. */
static cJSON *build(lua_State *L, int idx, char *err, size_t errlen) {
  enc e = {.err = err, .errlen = errlen};
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, encode_protected);
  lua_pushlightuserdata(L, &e);
  lua_pushvalue(L, idx);
  int rc = lua_pcall(L, 2, 0, 0);
  if (rc != LUA_OK) {
    yz_fmt(err, errlen, "%s",
           rc == LUA_ERRMEM ? "memory limit exceeded while encoding JSON"
                            : lua_tostring(L, -1));
    lua_pop(L, 1);
    e.failed = 1;
  }
  if (e.failed) {
    cJSON_Delete(e.root);
    return NULL;
  }
  return e.root;
}

/* Prints the tree compact or indented. Both print the one tree, whose
** numbers are raw text: re-parsing compact text to indent it would turn them
** into doubles (9007199254740993 would print as 9.00719925474099e+15).
** Returns a malloc'd string, or NULL with err set. */
static char *print_tree(cJSON *j, int pretty, char *err, size_t errlen) {
  char *s = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (!s) yz_fmt(err, errlen, "out of memory while encoding JSON");
  return s;
}

int yz_json_encode(lua_State *L, int idx, yz_buf *out, char *err,
                   size_t errlen) {
  cJSON *j = build(L, idx, err, errlen);
  char *s = j ? print_tree(j, 0, err, errlen) : NULL;
  if (!s) return 1;
  int rc = yz_buf_adds(out, s);
  free(s);
  if (rc != YZ_OK) {
    yz_fmt(err, errlen, "encoded JSON is larger than %zu bytes", out->max);
    return 1;
  }
  return 0;
}

static int push_bytes(lua_State *L) {
  lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
  return 1;
}

int yz_lapi_push_free(lua_State *L, char *s, size_t n) {
  lua_pushcfunction(L, push_bytes);
  lua_pushlightuserdata(L, s);
  lua_pushinteger(L, (lua_Integer)n);
  int rc = lua_pcall(L, 2, 1, 0);
  free(s);
  return rc;
}

/* ---------------------------------------------------------------- decode */

static void push_json(lua_State *L, const cJSON *j) {
  luaL_checkstack(L, 4, "json");
  if (cJSON_IsNull(j)) {
    lua_pushlightuserdata(L, NULL);
  } else if (cJSON_IsBool(j)) {
    lua_pushboolean(L, cJSON_IsTrue(j));
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsString(j)) {
    lua_pushstring(L, j->valuestring);
  } else if (cJSON_IsArray(j)) {
    lua_createtable(L, cJSON_GetArraySize(j), 0);
    lua_Integer i = 1;
    for (const cJSON *c = j->child; c; c = c->next) {
      push_json(L, c);
      lua_rawseti(L, -2, i++);
    }
  } else {
    lua_createtable(L, 0, cJSON_GetArraySize(j));
    for (const cJSON *c = j->child; c; c = c->next) {
      push_json(L, c);
      lua_setfield(L, -2, c->string);
    }
  }
}

typedef struct dec {
  cJSON *j; /* parsed tree, freed by the caller */
} dec;

static int push_protected(lua_State *L) {
  dec *d = lua_touserdata(L, 1);
  push_json(L, d->j);
  return 1;
}

int yz_json_decode(lua_State *L, const char *s, size_t n, char *err,
                   size_t errlen) {
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  if (!j) {
    yz_fmt(err, errlen, "invalid JSON at byte %ld",
           end ? (long)(end - s) + 1 : 1L);
    return 1;
  }
  /* Trailing bytes other than white space are an error too. */
  while (end && end < s + n &&
         (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
    end++;
  if (end && end < s + n) { /* a NUL byte does not end the text */
    cJSON_Delete(j);
    yz_fmt(err, errlen, "invalid JSON at byte %ld (text after the value)",
           (long)(end - s) + 1);
    return 1;
  }
  /* Building tables may hit the memory cap: do it protected so the tree is
  ** freed either way. */
  dec d = {j};
  lua_pushcfunction(L, push_protected);
  lua_pushlightuserdata(L, &d);
  int rc = lua_pcall(L, 1, 1, 0);
  cJSON_Delete(j);
  if (rc != LUA_OK) {
    yz_fmt(err, errlen, "decoding JSON: %s",
           rc == LUA_ERRMEM ? "memory limit exceeded" : lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------- bindings */

static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  int pretty = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "pretty");
    pretty = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  char err[400];
  cJSON *j = build(L, 1, err, sizeof err);
  char *s = j ? print_tree(j, pretty, err, sizeof err) : NULL;
  if (!s) return luaL_error(L, "json.encode: %s", err);
  if (yz_lapi_push_free(L, s, strlen(s)) != LUA_OK) return lua_error(L);
  return 1;
}

static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[200];
  if (yz_json_decode(L, s, n, err, sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int l_array(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  /* Like setmetatable: a read-only view keeps its protected metatable. */
  if (!is_array_marked(L, 1) &&
      luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "json.array: cannot change a protected metatable");
  luaL_getmetatable(L, ARRAY_MARK);
  lua_setmetatable(L, 1);
  lua_settop(L, 1);
  return 1;
}

int luaopen_yz_json(lua_State *L) {
  static const luaL_Reg funcs[] = {{"encode", l_encode},
                                   {"decode", l_decode},
                                   {"array", l_array},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, ARRAY_MARK)) {
    /* Plugins must not reach the shared mark: a __gc set on it would be
    ** inherited by every table marked afterwards, a finalizer that
    ** setmetatable refuses. */
    lua_pushliteral(L, "json.array");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
