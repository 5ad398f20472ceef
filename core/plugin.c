/*
** plugin.c: the plugin lifecycle (see plugin.h).
**
** Divided into: discovery on the plugin path; reading and checking a
** manifest; merging options with the configuration; ordering by
** dependencies; starting (migrations, setup); failure accounting; eval.
*/
#include "plugin.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "buf.h"
#include "host.h"
#include "lapi.h"
#include "yz.h"

#define ERR_MAX 8192 /* longest error kept per plugin (with traceback) */

const char *yz_plugin_state_name(int state) {
  switch (state) {
    case YZ_PS_OK: return "ok";
    case YZ_PS_FAILED: return "failed";
    case YZ_PS_QUARANTINED: return "quarantined";
    default: return "not started";
  }
}

static void set_error(yz_plugin *p, const char *msg) {
  free(p->error);
  p->error = yz_strdup(msg);
}

static void plugin_free(yz_plugin *p) {
  if (!p) return;
  if (p->sb) {
    /* Its tasks and jobs point into its state: they go first. */
    if (p->host && p->host->sched) {
      yz_host_forget_plugin(p->host, p);
    }
    yz_sandbox_free(p->sb);
    /* Statements of this plugin went back to the cache as its state closed;
    ** drop them before the acl they point to goes away. */
    if (p->host && p->host->store) yz_store_forget(p->host->store, &p->acl);
  }
  free(p->name);
  free(p->version);
  free(p->description);
  free(p->file);
  free(p->dir);
  for (int i = 0; i < p->nrequires; i++) free(p->requires[i]);
  free(p->requires);
  for (int i = 0; i < p->acl.nowns; i++) free(p->acl.owns[i]);
  free(p->acl.owns);
  for (int i = 0; i < p->acl.nread; i++) free(p->acl.read[i]);
  free(p->acl.read);
  for (int i = 0; i < p->acl.nwrite; i++) free(p->acl.write[i]);
  free(p->acl.write);
  free(p->error);
  free(p);
}

void yz_plugins_unload(yz_host *h) {
  for (int i = 0; i < h->nplugins; i++) plugin_free(h->plugins[i]);
  free(h->plugins);
  h->plugins = NULL;
  h->nplugins = 0;
}

int yz_plugin_set_enabled(yz_store *store, const char *name, int on) {
  yz_value v[2] = {{.type = YZ_TEXT, .s = name, .n = strlen(name)},
                   {.type = YZ_INT, .i = on ? 1 : 0}};
  return yz_store_exec(store, NULL,
                       "INSERT INTO yz_plugins(name, enabled) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET enabled = "
                       "excluded.enabled",
                       v, 2);
}

yz_plugin *yz_plugin_find(yz_host *h, const char *name) {
  for (int i = 0; i < h->nplugins; i++)
    if (strcmp(h->plugins[i]->name, name) == 0) return h->plugins[i];
  return NULL;
}

/* Persists what 'plugins' and 'check' show about a plugin. */
static void record(yz_plugin *p) {
  yz_host *h = p->host;
  char at[40];
  yz_clock_iso_utc(yz_clock_now_ms(&h->clock), at, sizeof at);
  const char *state =
      p->state == YZ_PS_FOUND ? "unknown" : yz_plugin_state_name(p->state);
  yz_value v[6] = {{.type = YZ_TEXT, .s = p->name, .n = strlen(p->name)},
                   {.type = p->version ? YZ_TEXT : YZ_NULL,
                    .s = p->version,
                    .n = p->version ? strlen(p->version) : 0},
                   {.type = YZ_TEXT, .s = state, .n = strlen(state)},
                   {.type = p->error ? YZ_TEXT : YZ_NULL,
                    .s = p->error,
                    .n = p->error ? strlen(p->error) : 0},
                   {.type = YZ_INT, .i = p->failures},
                   {.type = YZ_TEXT, .s = at, .n = strlen(at)}};
  if (yz_store_exec(
          h->store, NULL,
          "INSERT INTO yz_plugins(name, version, state, last_error, "
          "failures, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(name) DO UPDATE SET version=excluded.version,"
          " state=excluded.state, last_error=excluded.last_error,"
          " failures=excluded.failures, updated_at=excluded.updated_at",
          v, 6) != YZ_OK)
    yz_logf(&h->log, YZ_LOG_ERROR, p->name, "cannot record plugin state: %s",
            yz_store_errmsg(h->store));
}

/* Marks p failed with 'msg', logs it and records it. */
static void fail(yz_plugin *p, const char *msg) {
  p->state = YZ_PS_FAILED;
  set_error(p, msg);
  yz_log_write(&p->host->log, YZ_LOG_ERROR, p->name, msg, NULL, 0);
  record(p);
}

/* ------------------------------------------------------------- discovery */

static int valid_name(const char *s) {
  if (!*s || !islower((unsigned char)*s)) return 0;
  for (; *s; s++)
    if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
      return 0;
  return 1;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Adds or replaces the plugin 'name' found at 'file'. */
static void found(yz_host *h, int origin, const char *name, const char *file,
                  const char *dir) {
  yz_plugin *p = yz_plugin_find(h, name);
  if (p && p->origin == origin) {
    /* NAME.lua and NAME/init.lua side by side: which one runs would depend
    ** on the order of a directory listing, so neither does. */
    char msg[ERR_MAX];
    yz_fmt(msg, sizeof msg, "both %s and %s exist; keep one of them", p->file,
           file);
    p->state = YZ_PS_FAILED;
    set_error(p, msg);
    return;
  }
  if (p) {
    yz_logf(&h->log, YZ_LOG_INFO, name, "%s overrides %s", file, p->file);
    free(p->file);
    free(p->dir);
  } else {
    p = yz_xcalloc(1, sizeof *p);
    p->name = yz_strdup(name);
    p->acl.who = p->name;
    p->host = h;
    p->manifest_ref = p->host_ref = p->options_ref = LUA_NOREF;
    h->plugins =
        yz_xrealloc(h->plugins, sizeof *h->plugins * (size_t)(h->nplugins + 1));
    h->plugins[h->nplugins++] = p;
  }
  p->file = yz_strdup(file);
  p->dir = yz_strdup(dir);
  p->origin = origin;
  p->state = YZ_PS_FOUND;
  free(p->error);
  p->error = NULL;
}

static void scan_dir(yz_host *h, int origin, const char *dirpath) {
  DIR *d = opendir(dirpath);
  if (!d) return;
  struct dirent *e;
  char path[4096], init[4200];
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (n[0] == '.') continue;
    yz_fmt(path, sizeof path, "%s/%s", dirpath, n);
    size_t len = strlen(n);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      yz_fmt(init, sizeof init, "%s/init.lua", path);
      if (valid_name(n) && is_file(init)) found(h, origin, n, init, path);
    } else if (S_ISREG(st.st_mode) && len > 4 &&
               strcmp(n + len - 4, ".lua") == 0 &&
               !(len > 9 && strcmp(n + len - 9, "_test.lua") == 0)) {
      char name[256];
      yz_fmt(name, sizeof name, "%.*s", (int)(len - 4), n);
      if (valid_name(name)) found(h, origin, name, path, NULL);
    }
  }
  closedir(d);
}

static int cmp_plugins(const void *a, const void *b) {
  return strcmp((*(yz_plugin *const *)a)->name, (*(yz_plugin *const *)b)->name);
}

/* ------------------------------------------------------------- manifests */

static const char *const manifest_keys[] = {
    "name",   "version", "description", "requires", "owns",
    "access", "options", "migrations",  "setup",    NULL};
static const char *const access_keys[] = {"read", "write", "send", NULL};

/* The known key closest to 'key' within two edits, or NULL. */
static const char *near_miss(const char *key, const char *const *known) {
  const char *best = NULL;
  int best_d = 3;
  for (int i = 0; known[i]; i++) {
    int d = yz_edit_distance(key, known[i], 2);
    if (d < best_d) {
      best_d = d;
      best = known[i];
    }
  }
  return best;
}

/* Reads a list of strings at field 'key' of the table on top; 'table_names'
** asks that each be a plain SQL identifier. Returns 0 or writes err. */
static int string_list(lua_State *L, const char *key, const char *where,
                       int table_names, char ***out, int *n, char *err,
                       size_t errlen) {
  int t = lua_gettop(L);
  int ty = lua_getfield(L, t, key);
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (ty != LUA_TTABLE) {
    yz_fmt(err, errlen, "%s%s: expected a list of strings, got %s", where, key,
           luaL_typename(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
  *out = yz_xcalloc((size_t)len + 1, sizeof **out);
  for (lua_Integer i = 1; i <= len; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
      yz_fmt(err, errlen, "%s%s[%lld]: expected a string, got %s", where, key,
             (long long)i, luaL_typename(L, -1));
      lua_settop(L, t);
      return 1;
    }
    const char *s = lua_tostring(L, -1);
    if (table_names) {
      int ok = (isalpha((unsigned char)*s) || *s == '_');
      for (const char *q = s; *q && ok; q++)
        ok = isalnum((unsigned char)*q) || *q == '_';
      if (!ok || strncasecmp(s, "yz_", 3) == 0 ||
          strncasecmp(s, "sqlite_", 7) == 0) {
        yz_fmt(err, errlen,
               "%s%s[%lld]: '%s' is not a table a plugin can "
               "name (letters, digits and '_'; not yz_ or sqlite_ tables)",
               where, key, (long long)i, s);
        lua_settop(L, t);
        return 1;
      }
    }
    (*out)[(*n)++] = yz_strdup(s);
    lua_pop(L, 1);
  }
  lua_settop(L, t);
  return 0;
}

/* Checks the manifest on top of p's stack and fills p. Returns 0 or writes
** a message naming the file and the field. */
static int read_manifest(yz_plugin *p, char *err, size_t errlen) {
  lua_State *L = p->sb->L;
  int t = lua_gettop(L);
  char where[4200];
  yz_fmt(where, sizeof where, "%s: manifest field ", p->file);
  if (!lua_istable(L, t)) {
    yz_fmt(err, errlen,
           "%s: expected the plugin to return its manifest "
           "table, got %s",
           p->file, luaL_typename(L, t));
    return 1;
  }
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int known = 0;
    for (int i = 0; k && manifest_keys[i]; i++)
      known |= strcmp(k, manifest_keys[i]) == 0;
    if (!known) {
      const char *m = k ? near_miss(k, manifest_keys) : NULL;
      yz_fmt(err, errlen, "%s'%s' is unknown%s%s%s", where, k ? k : "?",
             m ? " (did you mean '" : "", m ? m : "", m ? "'?)" : "");
      lua_settop(L, t);
      return 1;
    }
  }
  if (lua_getfield(L, t, "name") != LUA_TSTRING) {
    yz_fmt(err, errlen, "%sname: expected a string, got %s", where,
           luaL_typename(L, -1));
    return 1;
  }
  if (strcmp(lua_tostring(L, -1), p->name) != 0) {
    yz_fmt(err, errlen,
           "%sname: '%s' does not match the file or folder name "
           "'%s'",
           where, lua_tostring(L, -1), p->name);
    return 1;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "version") != LUA_TSTRING || !*lua_tostring(L, -1)) {
    yz_fmt(err, errlen,
           "%sversion: expected a version string such as "
           "\"1.0.0\", got %s",
           where, luaL_typename(L, -1));
    return 1;
  }
  p->version = yz_strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  int ty = lua_getfield(L, t, "description");
  if (ty != LUA_TNIL && ty != LUA_TSTRING) {
    yz_fmt(err, errlen, "%sdescription: expected a string, got %s", where,
           luaL_typename(L, -1));
    return 1;
  }
  p->description = yz_strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (string_list(L, "requires", where, 0, &p->requires, &p->nrequires, err,
                  errlen) ||
      string_list(L, "owns", where, 1, &p->acl.owns, &p->acl.nowns, err,
                  errlen))
    return 1;
  ty = lua_getfield(L, t, "access");
  if (ty == LUA_TTABLE) {
    int a = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, a)) {
      lua_pop(L, 1);
      const char *k =
          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
      if (strcmp(k, "read") && strcmp(k, "write") && strcmp(k, "send")) {
        const char *m = near_miss(k, access_keys);
        yz_fmt(err, errlen, "%saccess.%s is unknown%s%s%s", where, k,
               m ? " (did you mean '" : "; expected read, write or send",
               m ? m : "", m ? "'?)" : "");
        return 1;
      }
    }
    char sub[4300];
    yz_fmt(sub, sizeof sub, "%saccess.", where);
    if (string_list(L, "read", sub, 1, &p->acl.read, &p->acl.nread, err,
                    errlen) ||
        string_list(L, "write", sub, 1, &p->acl.write, &p->acl.nwrite, err,
                    errlen))
      return 1;
    ty = lua_getfield(L, a, "send");
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN) {
      yz_fmt(err, errlen, "%saccess.send: expected a boolean, got %s", where,
             luaL_typename(L, -1));
      return 1;
    }
    p->send = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (ty != LUA_TNIL) {
    yz_fmt(err, errlen,
           "%saccess: expected a table { read = {...}, write = "
           "{...}, send = true }, got %s",
           where, luaL_typename(L, -1));
    return 1;
  }
  lua_pop(L, 1);
  ty = lua_getfield(L, t, "options");
  if (ty != LUA_TNIL && ty != LUA_TTABLE) {
    yz_fmt(err, errlen, "%soptions: expected a table of defaults, got %s",
           where, luaL_typename(L, -1));
    return 1;
  }
  lua_pop(L, 1);
  char **steps = NULL;
  int nsteps = 0;
  int bad =
      string_list(L, "migrations", where, 0, &steps, &nsteps, err, errlen);
  for (int i = 0; i < nsteps; i++) free(steps[i]);
  free(steps);
  if (bad) return 1;
  ty = lua_getfield(L, t, "setup");
  if (ty != LUA_TNIL && ty != LUA_TFUNCTION) {
    yz_fmt(err, errlen, "%ssetup: expected a function (host, options), got %s",
           where, luaL_typename(L, -1));
    return 1;
  }
  lua_pop(L, 1);
  lua_settop(L, t);
  return 0;
}

/* Runs the plugin file and reads its manifest into p. */
static void load_manifest(yz_plugin *p) {
  yz_host *h = p->host;
  char err[ERR_MAX];
  p->limits = yz_config_limits_for(h->cfg, p->name);
  /* require loads from the plugin's folder; a single-file plugin's is the
  ** folder holding it (the shipped policies share plugins/lib/). */
  char folder[4096];
  if (!p->dir) {
    yz_fmt(folder, sizeof folder, "%s", p->file);
    char *slash = strrchr(folder, '/');
    if (slash)
      *slash = 0;
    else
      yz_fmt(folder, sizeof folder, ".");
  }
  p->sb = yz_sandbox_new(p->name, p->dir ? p->dir : folder, p->limits.memory,
                         p->limits.instructions, 0);
  p->sb->owner = p;
  /* Its SQL spends the same CPU budget as its Lua code (see store.h). */
  p->acl.steps = &p->sb->steps;
  p->acl.step_limit = p->limits.instructions;
  if (yz_sandbox_loadfile(p->sb, p->file, err, sizeof err) != LUA_OK ||
      yz_sandbox_call(p->sb, 0, 1, err, sizeof err) != LUA_OK ||
      read_manifest(p, err, sizeof err) != 0) {
    lua_settop(p->sb->L, 0);
    p->state = YZ_PS_FAILED;
    set_error(p, err);
    return;
  }
  p->manifest_ref = luaL_ref(p->sb->L, LUA_REGISTRYINDEX);
}

/* Why a plugin is enabled: a persisted 'plugin enable/disable' wins over
** the configuration. */
static int enabled_by(yz_host *h, const char *name) {
  yz_stmt *st;
  int how = YZ_EN_NO, decided = 0;
  if (yz_store_prepare(h->store, NULL,
                       "SELECT enabled FROM yz_plugins WHERE name = ?",
                       &st) == YZ_OK) {
    yz_value v = {.type = YZ_TEXT, .s = name, .n = strlen(name)};
    yz_stmt_bind(st, 1, &v);
    if (yz_stmt_step(st) == YZ_ROW) {
      yz_stmt_column(st, 0, &v);
      if (v.type == YZ_INT) {
        decided = 1;
        how = v.i ? YZ_EN_CLI : YZ_EN_NO;
      }
    }
    yz_stmt_release(st);
  }
  if (decided) return how;
  const yz_plugin_conf *pc = yz_config_plugin(h->cfg, name);
  if (pc) return pc->enabled ? YZ_EN_CONFIG : YZ_EN_NO;
  /* A configured channel's type is the plugin that delivers it. */
  for (int i = 0; i < h->cfg->nchannels; i++)
    if (strcmp(h->cfg->channels[i].rules.type, name) == 0) return YZ_EN_CONFIG;
  return YZ_EN_NO;
}

int yz_plugins_discover(yz_host *h) {
  yz_plugins_unload(h);
  char **dirs;
  int n = yz_host_plugin_dirs(h, &dirs);
  for (int i = 0; i < n; i++) {
    scan_dir(h, i, dirs[i]);
    free(dirs[i]);
  }
  free(dirs);
  /* With no plugins found the list is NULL, which qsort may not get. */
  if (h->nplugins > 1)
    qsort(h->plugins, (size_t)h->nplugins, sizeof *h->plugins, cmp_plugins);
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    p->enabled = enabled_by(h, p->name);
    if (p->state != YZ_PS_FAILED) load_manifest(p);
    if (!p->enabled && p->sb) {
      /* Only the manifest was needed. */
      yz_sandbox_free(p->sb);
      p->sb = NULL;
      p->acl.steps = NULL;
      p->manifest_ref = LUA_NOREF;
    }
  }
  return YZ_OK;
}

/* --------------------------------------------------------------- options */

static const char *value_kind(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TNUMBER ? "number" : luaL_typename(L, idx);
}

/* Builds the merged options (defaults overridden by the configuration) on
** top of p's stack. Returns 0, or 1 with p's error set to a config error. */
static int merge_options(yz_plugin *p) {
  yz_host *h = p->host;
  lua_State *L = p->sb->L;
  char err[ERR_MAX];
  lua_newtable(L); /* merged */
  int merged = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->manifest_ref);
  lua_getfield(L, -1, "options");
  int defaults = lua_gettop(L);
  if (lua_istable(L, defaults)) {
    lua_pushnil(L);
    while (lua_next(L, defaults)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, merged);
    }
  }
  if (yz_config_push_options(h->cfg, p->name, L, err, sizeof err) != 0) {
    /* The copy names the value below the plugin's table (".to[1]: ...");
    ** say where in the file it is, like every other config error. */
    char path[512], msg[ERR_MAX + 1024];
    size_t sub = err[0] == '.' || err[0] == '[' ? strcspn(err, ":") : 0;
    yz_fmt(path, sizeof path, "plugins.%s%.*s", p->name, (int)sub, err);
    const char *why = err + sub + (sub && err[sub] == ':' ? 2 : 0);
    int line = yz_config_line_of(h->cfg, path);
    if (line)
      yz_fmt(msg, sizeof msg, "%s:%d: %s: %s", h->cfg->path, line, path, why);
    else
      yz_fmt(msg, sizeof msg, "%s: %s: %s", h->cfg->path, path, why);
    set_error(p, msg);
    p->config_error = 1;
    lua_settop(L, merged - 1);
    return 1;
  }
  int over = lua_gettop(L);
  if (lua_istable(L, over)) {
    lua_pushnil(L);
    while (lua_next(L, over)) {
      char path[512];
      const char *k =
          lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      yz_fmt(path, sizeof path, "plugins.%s.%s", p->name, k);
      int line = yz_config_line_of(h->cfg, path);
      char at[600];
      if (line)
        yz_fmt(at, sizeof at, "%s:%d: %s", h->cfg->path, line, path);
      else
        yz_fmt(at, sizeof at, "%s: %s", h->cfg->path, path);
      int dt =
          lua_istable(L, defaults) ? lua_getfield(L, defaults, k) : LUA_TNIL;
      if (!lua_istable(L, defaults)) lua_pushnil(L);
      if (dt == LUA_TNIL) {
        const char *best = NULL;
        int bestd = 3;
        if (lua_istable(L, defaults)) {
          lua_pushnil(L);
          while (lua_next(L, defaults)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
              int d = yz_edit_distance(k, lua_tostring(L, -1), 2);
              if (d < bestd) {
                bestd = d;
                best = lua_tostring(L, -1); /* key stays in 'defaults' */
              }
            }
          }
        }
        yz_fmt(err, sizeof err, "%s: unknown option of plugin '%s'%s%s%s", at,
               p->name, best ? " (did you mean '" : "", best ? best : "",
               best ? "'?)" : "");
        set_error(p, err);
        p->config_error = 1;
        lua_settop(L, merged - 1);
        return 1;
      }
      /* A default of false means "off": any value turns it on (a template
      ** name, a channel, a number of days). */
      int off = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
      if (!off && lua_type(L, -1) != lua_type(L, -2)) {
        yz_fmt(err, sizeof err, "%s: expected a %s (like the default), got %s",
               at, value_kind(L, -1), value_kind(L, -2));
        set_error(p, err);
        p->config_error = 1;
        lua_settop(L, merged - 1);
        return 1;
      }
      lua_pop(L, 1); /* pop the default */
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, merged);
    }
  }
  lua_settop(L, merged);
  return 0;
}

/* ------------------------------------------------------------- ordering */

enum { MARK_NONE = 0, MARK_VISITING, MARK_DONE };

/* Depth-first visit: appends p after its dependencies to 'order'. A missing
** or disabled dependency, or a cycle, fails p with the chain in the message. */
static int visit(yz_host *h, yz_plugin *p, yz_plugin **order, int *n,
                 yz_buf *chain) {
  if (p->mark == MARK_DONE) return p->state == YZ_PS_FAILED;
  size_t chain_len = chain->len;
  if (chain->len) yz_buf_adds(chain, " -> ");
  yz_buf_adds(chain, p->name);
  if (p->mark == MARK_VISITING) {
    char msg[ERR_MAX];
    yz_fmt(msg, sizeof msg, "dependency cycle: %s", yz_buf_str(chain));
    fail(p, msg);
    chain->len = chain_len;
    chain->data[chain_len] = '\0';
    return 1;
  }
  p->mark = MARK_VISITING;
  int bad = p->state == YZ_PS_FAILED;
  for (int i = 0; i < p->nrequires && !bad; i++) {
    yz_plugin *d = yz_plugin_find(h, p->requires[i]);
    char msg[ERR_MAX];
    if (!d || !d->enabled) {
      yz_fmt(msg, sizeof msg, "%s requires '%s', which is %s",
             yz_buf_str(chain), p->requires[i],
             !d ? "not on the plugin path"
                : "not enabled (add it to 'plugins' in the config or run "
                  "'yizhan plugin enable NAME')");
      fail(p, msg);
      bad = 1;
    } else if (visit(h, d, order, n, chain)) {
      if (p->state != YZ_PS_FAILED) {
        yz_fmt(msg, sizeof msg, "requires '%s', which failed: %s", d->name,
               d->error ? d->error : "?");
        fail(p, msg);
      }
      bad = 1;
    }
  }
  p->mark = MARK_DONE;
  chain->len = chain_len;
  if (chain->data) chain->data[chain_len] = '\0';
  if (!bad) order[(*n)++] = p;
  return bad;
}

/* Two plugins may not own one table: the second (by name) fails. */
static void check_owners(yz_host *h) {
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (!p->enabled || p->state == YZ_PS_FAILED) continue;
    for (int j = 0; j < i; j++) {
      yz_plugin *q = h->plugins[j];
      if (!q->enabled || q->state == YZ_PS_FAILED) continue;
      for (int a = 0; a < p->acl.nowns; a++)
        for (int b = 0; b < q->acl.nowns; b++)
          if (strcasecmp(p->acl.owns[a], q->acl.owns[b]) == 0 &&
              p->state != YZ_PS_FAILED) {
            char msg[512];
            yz_fmt(msg, sizeof msg,
                   "table '%s' is owned by plugin '%s' "
                   "already; two plugins cannot own one table",
                   p->acl.owns[a], q->name);
            fail(p, msg);
          }
    }
  }
}

/* --------------------------------------------------------------- start */

static int run_migrations(yz_plugin *p) {
  lua_State *L = p->sb->L;
  p->sb->steps = 0; /* the migrations get a CPU budget of their own */
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->manifest_ref);
  lua_getfield(L, -1, "migrations");
  int mt = lua_gettop(L);
  int n = lua_istable(L, mt) ? (int)lua_rawlen(L, mt) : 0;
  if (!lua_checkstack(L, n + 1)) {
    lua_settop(L, 0);
    fail(p, "too many migrations");
    return 1;
  }
  const char **steps = yz_xcalloc((size_t)n + 1, sizeof *steps);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, mt, i + 1); /* strings stay on the stack meanwhile */
    steps[i] = lua_tostring(L, -1);
  }
  int applied = 0;
  int rc =
      yz_store_migrate(p->host->store, p->name, steps, n, &p->acl, &applied);
  free(steps);
  lua_settop(L, 0);
  if (rc != YZ_OK) {
    fail(p, yz_store_errmsg(p->host->store));
    return 1;
  }
  if (applied) {
    char detail[64];
    yz_fmt(detail, sizeof detail, "%d migration(s)", applied);
    yz_logf(&p->host->log, YZ_LOG_INFO, p->name, "applied %d migration(s)",
            applied);
    yz_host_audit(p->host, "core", "plugin.migrate", p->name, detail);
  }
  return 0;
}

static void start_one(yz_plugin *p) {
  lua_State *L = p->sb->L;
  if (merge_options(p)) {
    p->state = YZ_PS_FAILED;
    record(p);
    return;
  }
  yz_sandbox_freeze(L, "options");
  lua_pushvalue(L, -1);
  p->options_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  yz_lapi_push_host(L, p); /* host, with host.options */
  lua_pushvalue(L, -1);
  p->host_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  /* Each migration commits on its own; setup is one transaction, so a
  ** setup that fails leaves nothing half done, and one that registers
  ** thousands of jobs commits once. */
  yz_store *store = p->host->store;
  int ok = !run_migrations(p);
  int tx = ok && yz_store_tx_begin(store) == YZ_OK;
  if (ok) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->manifest_ref);
    lua_getfield(L, -1, "setup");
    lua_remove(L, -2);
    if (lua_isfunction(L, -1)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, p->host_ref);
      lua_rawgeti(L, LUA_REGISTRYINDEX, p->options_ref);
      p->state = YZ_PS_OK; /* a call needs a healthy plugin */
      p->in_setup = 1;
      ok = yz_plugin_call(p, 2, 0, "setup") == YZ_OK;
      p->in_setup = 0;
    } else {
      lua_pop(L, 1);
    }
  }
  if (ok && tx && yz_store_tx_commit(store) != YZ_OK) {
    char msg[ERR_MAX];
    yz_fmt(msg, sizeof msg, "cannot commit its start: %s",
           yz_store_errmsg(store));
    set_error(p, msg);
    ok = 0;
  } else if (ok) {
    tx = 0;
  }
  if (!ok) {
    if (tx) yz_store_tx_rollback(store);
    /* What setup registered went with the rollback. */
    yz_host_forget_plugin(p->host, p);
    p->state = YZ_PS_FAILED; /* failing to start is not a quarantine matter */
    record(p);
    return;
  }
  p->state = YZ_PS_OK;
  p->failures = 0;
  free(p->error);
  p->error = NULL;
  record(p);
}

int yz_plugins_start(yz_host *h) {
  check_owners(h);
  yz_plugin **order = yz_xcalloc((size_t)h->nplugins + 1, sizeof *order);
  int n = 0;
  yz_buf chain;
  yz_buf_init(&chain, 4096);
  for (int i = 0; i < h->nplugins; i++) h->plugins[i]->mark = MARK_NONE;
  for (int i = 0; i < h->nplugins; i++)
    if (h->plugins[i]->enabled) visit(h, h->plugins[i], order, &n, &chain);
  yz_buf_free(&chain);
  for (int i = 0; i < n; i++) {
    yz_plugin *p = order[i];
    /* A dependency that failed while starting takes its dependents along. */
    for (int r = 0; r < p->nrequires; r++) {
      yz_plugin *d = yz_plugin_find(h, p->requires[r]);
      if (d && d->state != YZ_PS_OK && p->state != YZ_PS_FAILED) {
        char msg[ERR_MAX];
        yz_fmt(msg, sizeof msg, "requires '%s', which failed to start",
               d->name);
        fail(p, msg);
      }
    }
    if (p->state != YZ_PS_FAILED) start_one(p);
  }
  free(order);
  int rc = YZ_OK;
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (!p->enabled) continue;
    if (p->config_error) return YZ_EUSAGE;
    if (p->state != YZ_PS_OK) rc = YZ_ERR;
  }
  return rc;
}

/* ------------------------------------------------------------- failures */

void yz_plugin_outcome(yz_plugin *p, const char *what, const char *err) {
  if (!err) {
    if (p->failures) {
      p->failures = 0;
      record(p);
    }
    return;
  }
  p->failures++;
  char msg[ERR_MAX + 128];
  yz_fmt(msg, sizeof msg, "%s failed: %s", what, err);
  set_error(p, msg);
  const char *kv[] = {"failures", NULL};
  char count[16];
  yz_fmt(count, sizeof count, "%d", p->failures);
  kv[1] = count;
  yz_log_write(&p->host->log, YZ_LOG_ERROR, p->name, msg, kv, 1);
  if (p->failures >= p->limits.quarantine_after && p->state == YZ_PS_OK) {
    p->state = YZ_PS_QUARANTINED;
    yz_logf(&p->host->log, YZ_LOG_ERROR, p->name,
            "quarantined after %d consecutive failures; fix it and reload "
            "(SIGHUP) or restart",
            p->failures);
    yz_host_audit(p->host, "core", "plugin.quarantine", p->name, err);
  }
  record(p);
}

int yz_plugin_call(yz_plugin *p, int nargs, int nresults, const char *what) {
  char err[ERR_MAX];
  if (!p->sb) return YZ_ERR;
  if (p->state == YZ_PS_QUARANTINED) {
    lua_pop(p->sb->L, nargs + 1);
    return YZ_ERR;
  }
  int ok = yz_sandbox_call(p->sb, nargs, nresults, err, sizeof err) == LUA_OK;
  yz_plugin_outcome(p, what, ok ? NULL : err);
  return ok ? YZ_OK : YZ_ERR;
}

/* ------------------------------------------------------------------ eval */

void yz_plugin_push_env(yz_plugin *p) {
  lua_State *L = p->sb->L;
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->host_ref);
  lua_setfield(L, -2, "host");
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->options_ref);
  lua_setfield(L, -2, "options");
  lua_newtable(L); /* its metatable: the plugin's globals behind */
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

int yz_plugin_eval(yz_plugin *p, const char *code, yz_buf *out) {
  if (!p->sb || p->state != YZ_PS_OK) {
    yz_buf_addf(out, "plugin '%s' is not running (%s)%s%s", p->name,
                p->enabled ? yz_plugin_state_name(p->state) : "not enabled",
                p->error ? ": " : "", p->error ? p->error : "");
    return YZ_ERR;
  }
  lua_State *L = p->sb->L;
  lua_settop(L, 0);
  /* An expression is shown as its value; otherwise run the statements. */
  yz_buf src;
  yz_buf_init(&src, 1u << 20);
  yz_buf_addf(&src, "return %s", code);
  int rc = luaL_loadbufferx(L, yz_buf_str(&src), src.len, "=eval", "t");
  yz_buf_free(&src);
  if (rc != LUA_OK) {
    lua_pop(L, 1);
    rc = luaL_loadbufferx(L, code, strlen(code), "=eval", "t");
  }
  if (rc != LUA_OK) {
    yz_buf_adds(out, lua_tostring(L, -1));
    lua_settop(L, 0);
    return YZ_ERR;
  }
  yz_plugin_push_env(p);
  lua_setupvalue(L, -2, 1);
  char err[ERR_MAX];
  if (yz_sandbox_call(p->sb, 0, LUA_MULTRET, err, sizeof err) != LUA_OK) {
    yz_buf_adds(out, err);
    return YZ_ERR;
  }
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    if (i > 1) yz_buf_adds(out, "\t");
    yz_lapi_describe(L, i, out);
  }
  lua_settop(L, 0);
  return YZ_OK;
}
