/*
** lapi_cmd.c: commands plugins add to the command line, and the 'cmd'
** table their run function gets.
**
**   host.command("registry import", {usage=, help=, run=fn(cmd)})  -- setup
**   yizhan registry import kids.csv --dry-run     -- the longest name wins
**
** A command runs synchronously in its plugin's sandbox, without the CPU
** budget (a person started it and can interrupt it) but under the memory
** cap, and without an implicit transaction. It may open only the files
** named on its command line: cmd.csv reads one (UTF-8 or GB18030, streamed),
** cmd.create writes one through a temporary file (mode 0600) renamed into
** place. Readers left open are closed and writers left open discarded when
** the command ends.
*/
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "host.h"
#include "lapi.h"
#include "plugin.h"

#define COMMANDS "yz.commands" /* registry: name -> spec, per plugin state */
#define READER "yz.csvreader"
#define WRITER "yz.csvwriter"
#define OPEN_FILES "yz.cmdfiles" /* registry: readers/writers of the run */

/* ---------------------------------------------------------- registering */

#define NAME_MAX_LEN 128 /* bytes of a command's name */

static int alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Whether name is words of [a-z0-9_-], each starting with a letter or a
** digit, separated by single spaces. */
static int good_name(const char *s) {
  if (strlen(s) > NAME_MAX_LEN) return 0;
  for (const char *c = s; *c; c++) {
    if (c == s || c[-1] == ' ') {
      if (!alnum(*c)) return 0;
    } else if (*c == ' ') {
      if (c[1] == 0) return 0;
    } else if (!alnum(*c) && *c != '_' && *c != '-') {
      return 0;
    }
  }
  return *s != 0;
}

/* Pushes p's table of commands (creating it), or nil when p has no state. */
static int push_commands(yz_plugin *p, lua_State *L) {
  (void)p;
  if (lua_getfield(L, LUA_REGISTRYINDEX, COMMANDS) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, COMMANDS);
  return 1;
}

/* Whether plugin q (another state) has registered name. */
static int has_command(yz_plugin *q, const char *name) {
  if (!q->sb || q->state != YZ_PS_OK) return 0;
  lua_State *L = q->sb->L;
  if (!lua_checkstack(L, 4)) return 0;
  int found = 0;
  if (lua_getfield(L, LUA_REGISTRYINDEX, COMMANDS) == LUA_TTABLE)
    found = lua_getfield(L, -1, name) == LUA_TTABLE, lua_pop(L, 1);
  lua_pop(L, 1);
  return found;
}

static int h_command(lua_State *L) {
  yz_plugin *p = yz_sandbox_of(L)->owner;
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!good_name(name))
    return luaL_error(L,
                      "host.command: bad name '%s' (expected words of "
                      "a-z, 0-9, _ and -, each starting with a letter or a "
                      "digit, separated by one space; at most %d bytes)",
                      name, NAME_MAX_LEN);
  if (!p->in_setup)
    return luaL_error(L, "host.command: commands are added during setup");
  char first[64];
  size_t k = strcspn(name, " ");
  yz_fmt(first, sizeof first, "%.*s", (int)(k < 63 ? k : 63), name);
  if (yz_cli_is_builtin(first))
    return luaL_error(L, "host.command: '%s' is a built-in command", first);
  /* A plain copy of the spec: the core reads it later outside any
  ** protected call, so no metamethod of the plugin's may run then. */
  lua_createtable(L, 0, 3);
  int copy = lua_gettop(L);
  lua_getfield(L, 2, "run");
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "host.command('%s'): run must be a function", name);
  lua_setfield(L, copy, "run");
  for (const char *key = "usage"; key; key = *key == 'u' ? "help" : NULL) {
    int t = lua_getfield(L, 2, key);
    if (t != LUA_TNIL && t != LUA_TSTRING)
      return luaL_error(L, "host.command('%s'): %s must be a string", name,
                        key);
    lua_setfield(L, copy, key);
  }
  yz_host *h = p->host;
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *q = h->plugins[i];
    if (q != p && has_command(q, name))
      return luaL_error(L, "host.command: '%s' is already added by plugin '%s'",
                        name, q->name);
  }
  push_commands(p, L);
  lua_pushvalue(L, copy);
  lua_setfield(L, -2, name);
  return 0;
}

void yz_lapi_open_cmd(lua_State *L) {
  lua_pushcfunction(L, h_command);
  lua_setfield(L, -2, "command");
}

/* ------------------------------------------------------------- finding */

/* Whether the words of name are argv[0..]; returns how many, or 0. */
static int matches(const char *name, int argc, char **argv) {
  int w = 0;
  const char *s = name;
  while (*s) {
    size_t k = strcspn(s, " ");
    if (w >= argc || strlen(argv[w]) != k || strncmp(argv[w], s, k) != 0)
      return 0;
    w++;
    s += k;
    if (*s == ' ') s++;
  }
  return w;
}

yz_plugin *yz_cmd_find(yz_host *h, int argc, char **argv, int *words) {
  yz_plugin *best = NULL;
  *words = 0;
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (!p->sb || p->state != YZ_PS_OK) continue;
    lua_State *L = p->sb->L;
    if (lua_getfield(L, LUA_REGISTRYINDEX, COMMANDS) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) continue;
        int w = matches(lua_tostring(L, -1), argc, argv);
        if (w > *words) *words = w, best = p;
      }
    }
    lua_pop(L, 1);
  }
  return best;
}

void yz_cmd_list(yz_host *h, const char *plugin, FILE *out) {
  for (int i = 0; i < h->nplugins; i++) {
    yz_plugin *p = h->plugins[i];
    if (!p->sb || p->state != YZ_PS_OK) continue;
    if (plugin && strcmp(p->name, plugin) != 0) continue;
    lua_State *L = p->sb->L;
    if (lua_getfield(L, LUA_REGISTRYINDEX, COMMANDS) != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    /* Sorted by name, for a stable listing. */
    lua_newtable(L);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, ++n);
    }
    for (int a = 1; a < n; a++) /* insertion sort: a handful of names */
      for (int b = a + 1; b <= n; b++) {
        lua_rawgeti(L, -1, a);
        lua_rawgeti(L, -2, b);
        if (strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) < 0) {
          lua_rawseti(L, -3, a);
          lua_rawseti(L, -2, b);
        } else {
          lua_pop(L, 2);
        }
      }
    for (int a = 1; a <= n; a++) {
      lua_rawgeti(L, -1, a);
      const char *name = lua_tostring(L, -1);
      lua_getfield(L, -3, name);
      lua_getfield(L, -1, "usage");
      lua_getfield(L, -2, "help");
      const char *usage = lua_tostring(L, -2), *help = lua_tostring(L, -1);
      fprintf(out, "  %-44s %s (%s)\n", usage ? usage : name, help ? help : "",
              p->name);
      lua_pop(L, 4);
    }
    lua_pop(L, 2);
  }
}

/* ------------------------------------------------------------ the run */

typedef struct cmd_ctx {
  int live; /* the run is going on: a cmd kept past it is dead */
  yz_host *h;
  FILE *in, *out, *err;
  int tty;
  int argc;
  char **argv;      /* the command's arguments: the files it may open */
  const char *base; /* folder of relative paths, NULL: the working dir */
  int64_t drawn_ms; /* when the progress bar was last drawn */
  int drawing;      /* a bar is on the line */
} cmd_ctx;

static cmd_ctx *ctx_of(lua_State *L) {
  cmd_ctx *c = lua_touserdata(L, lua_upvalueindex(1));
  if (!c->live) luaL_error(L, "the command has ended: its cmd is gone");
  return c;
}

static void end_bar(cmd_ctx *c);

static int c_out(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  end_bar(c);
  fwrite(s, 1, n, c->out);
  return 0;
}

static int c_print(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  int n = lua_gettop(L);
  end_bar(c);
  for (int i = 1; i <= n; i++) {
    size_t k;
    const char *s = luaL_tolstring(L, i, &k);
    if (i > 1) fputc('\t', c->out);
    fwrite(s, 1, k, c->out);
    lua_pop(L, 1);
  }
  fputc('\n', c->out);
  return 0;
}

static void end_bar(cmd_ctx *c) {
  if (c->drawing) fputc('\n', c->err);
  c->drawing = 0;
}

static int c_err(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  end_bar(c);
  fwrite(s, 1, n, c->err);
  fputc('\n', c->err);
  fflush(c->err);
  return 0;
}

static int c_progress(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  if (lua_isnoneornil(L, 1)) {
    end_bar(c);
    return 0;
  }
  lua_Number done = luaL_checknumber(L, 1), total = luaL_optnumber(L, 2, 0);
  const char *label = luaL_optstring(L, 3, "");
  if (!c->tty) return 0;
  int64_t now = yz_clock_now_ms(&c->h->clock);
  int last = total > 0 && done >= total;
  if (!last && c->drawing && now - c->drawn_ms < 100) return 0;
  c->drawn_ms = now;
  char bar[31];
  int fill = total > 0 ? (int)(30 * (done > total ? total : done) / total) : 0;
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
  bar[30] = 0;
  if (total > 0)
    fprintf(c->err, "\r%s [%s] %3d%% %.0f/%.0f", label, bar,
            (int)(100 * (done > total ? total : done) / total), done, total);
  else
    fprintf(c->err, "\r%s %.0f", label, done);
  fflush(c->err);
  c->drawing = 1;
  if (last) end_bar(c);
  return 0;
}

static int c_ask(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  const char *prompt = luaL_optstring(L, 1, "");
  end_bar(c);
  fflush(c->out);
  fputs(prompt, c->err);
  fflush(c->err);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got = c->in ? getline(&line, &cap, c->in) : -1;
  if (got < 0) {
    free(line);
    fputc('\n', c->err);
    lua_pushnil(L);
    return 1;
  }
  size_t n = strcspn(line, "\r\n");
  if (yz_lapi_push_free(L, line, n) != LUA_OK) return lua_error(L);
  return 1;
}

/* Checks that path is one of the command's arguments and pushes the path
** to open (joined to the base folder when relative). */
static const char *allowed_path(lua_State *L, cmd_ctx *c, const char *what) {
  const char *path = luaL_checkstring(L, 1);
  int ok = 0;
  for (int i = 0; i < c->argc && !ok; i++) {
    const char *a = c->argv[i], *eq = strchr(a, '=');
    /* the whole argument, or the value of an option "--out=FILE" */
    ok = strcmp(a, path) == 0 ||
         (a[0] == '-' && a[1] == '-' && eq && strcmp(eq + 1, path) == 0);
  }
  if (!ok)
    luaL_error(L,
               "cmd.%s: '%s' is not named on the command line (a command "
               "may open only the files it is given)",
               what, path);
  if (c->base && path[0] != '/' && strcmp(path, "-") != 0)
    return lua_pushfstring(L, "%s/%s", c->base, path);
  return lua_pushstring(L, path);
}

/* Lists an open reader or writer, to close it when the command ends. */
static void track(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_getfield(L, LUA_REGISTRYINDEX, OPEN_FILES) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, OPEN_FILES);
  }
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* --- reader */

typedef struct reader {
  yz_csv *csv;
} reader;

static reader *check_reader(lua_State *L) {
  reader *r = lua_touserdata(L, lua_upvalueindex(1));
  if (!r->csv) luaL_error(L, "the CSV reader is closed");
  return r;
}

static int r_next(lua_State *L) {
  reader *r = check_reader(L);
  const char *const *fields;
  const size_t *lens;
  int n;
  long line;
  int rc = yz_csv_next(r->csv, &fields, &lens, &n, &line);
  if (rc == 0) return 0;
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushinteger(L, line);
    lua_pushstring(L, yz_csv_error(r->csv));
    return 3;
  }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushlstring(L, fields[i], lens[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, line);
  return 2;
}

static int r_pos(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)yz_csv_pos(check_reader(L)->csv));
  return 1;
}

static int r_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)yz_csv_size(check_reader(L)->csv));
  return 1;
}

static int r_close_ud(lua_State *L) {
  reader *r = luaL_checkudata(L, 1, READER);
  yz_csv_close(r->csv);
  r->csv = NULL;
  return 0;
}

static int r_close(lua_State *L) {
  reader *r = lua_touserdata(L, lua_upvalueindex(1));
  yz_csv_close(r->csv);
  r->csv = NULL;
  return 0;
}

static int c_csv(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  const char *path = allowed_path(L, c, "csv");
  const char *enc = NULL;
  if (lua_istable(L, 2) && lua_getfield(L, 2, "encoding") == LUA_TSTRING)
    enc = lua_tostring(L, -1); /* stays on the stack while used */
  reader *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->csv = NULL;
  luaL_setmetatable(L, READER);
  int ud = lua_gettop(L);
  char err[512];
  r->csv = yz_csv_open(path, enc, err, sizeof err);
  if (!r->csv) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  track(L, ud);
  static const luaL_Reg m[] = {{"next", r_next},
                               {"pos", r_pos},
                               {"size", r_size},
                               {"close", r_close},
                               {NULL, NULL}};
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, ud);
  luaL_setfuncs(L, m, 1);
  lua_pushstring(L, yz_csv_encoding(r->csv));
  lua_setfield(L, -2, "encoding");
  return 1;
}

/* --- writer */

typedef struct writer {
  FILE *f;       /* NULL once closed */
  int to_stdout; /* writing to the command's output */
  int gbk;       /* convert to GB18030 on the way out */
  char *tmp;     /* the temporary file, renamed on close */
  char *path;    /* where it goes */
} writer;

/* Temporary files being written, for the signal handler: an interrupted
** command leaves no FILE.tmpXXXXXX behind. */
#define LIVE_TMP 16
static char *volatile live_tmp[LIVE_TMP];

static void tmp_live(char *path, int on) {
  for (int i = 0; i < LIVE_TMP; i++)
    if (on ? live_tmp[i] == NULL : live_tmp[i] == path) {
      live_tmp[i] = on ? path : NULL;
      return;
    }
}

static void on_signal(int sig) {
  for (int i = 0; i < LIVE_TMP; i++)
    if (live_tmp[i]) unlink(live_tmp[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void writer_drop(writer *w) {
  if (w->tmp) tmp_live(w->tmp, 0);
  if (w->f && !w->to_stdout) {
    fclose(w->f);
    if (w->tmp) unlink(w->tmp);
  }
  w->f = NULL;
  free(w->tmp);
  free(w->path);
  w->tmp = w->path = NULL;
}

static writer *check_writer(lua_State *L) {
  writer *w = lua_touserdata(L, lua_upvalueindex(1));
  if (!w->f) luaL_error(L, "the file is closed");
  return w;
}

/* Writes n bytes (converted for a GBK file). Returns 0, or -1 with err. */
static int put(writer *w, const char *s, size_t n, char *err, size_t errlen) {
  if (w->gbk) {
    yz_buf b;
    yz_buf_init(&b, 64u << 20);
    char why[256];
    int rc = 0;
    if (yz_csv_to_gbk(s, n, &b, why, sizeof why) != 0) {
      yz_fmt(err, errlen, "cannot write as GBK: %s", why);
      rc = -1;
    } else if (b.len && fwrite(b.data, 1, b.len, w->f) != b.len) {
      yz_fmt(err, errlen, "cannot write: %s", strerror(errno));
      rc = -1;
    }
    yz_buf_free(&b);
    return rc;
  }
  if (n && fwrite(s, 1, n, w->f) != n) {
    yz_fmt(err, errlen, "cannot write: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static int w_write(lua_State *L) {
  writer *w = check_writer(L);
  int first = lua_istable(L, 1) ? 2 : 1; /* w:write(s) or w.write(s) */
  size_t n;
  const char *s = luaL_checklstring(L, first, &n);
  char err[400];
  if (put(w, s, n, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  return 0;
}

static int w_row(lua_State *L) {
  writer *w = check_writer(L);
  int t = lua_istable(L, 2) ? 2 : 1; /* w:row(fields) or w.row(fields) */
  luaL_checktype(L, t, LUA_TTABLE);
  int n = (int)lua_rawlen(L, t);
  if (n > 4096) return luaL_error(L, "w:row: more than 4096 fields");
  luaL_checkstack(L, n + 4, "w:row");
  const char **fields =
      lua_newuserdatauv(L, sizeof *fields * (size_t)(n + 1), 0);
  size_t *lens = lua_newuserdatauv(L, sizeof *lens * (size_t)(n + 1), 0);
  int base = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    int ty = lua_rawgeti(L, t, i + 1);
    if (ty == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    } else if (ty != LUA_TSTRING && ty != LUA_TNUMBER) {
      return luaL_error(L, "w:row: field %d is a %s, expected a string", i + 1,
                        luaL_typename(L, -1));
    }
    fields[i] = lua_tolstring(L, -1, &lens[i]); /* kept on the stack */
  }
  yz_buf b;
  yz_buf_init(&b, 16u << 20);
  char err[400];
  int rc = yz_csv_record(&b, fields, lens, n);
  if (rc != YZ_OK)
    yz_fmt(err, sizeof err, "w:row: a record longer than 16 MiB");
  else if (b.len)
    rc = put(w, b.data, b.len, err, sizeof err);
  yz_buf_free(&b);
  if (rc != 0) return luaL_error(L, "%s", err);
  lua_settop(L, base);
  return 0;
}

static int w_close(lua_State *L) {
  writer *w = lua_touserdata(L, lua_upvalueindex(1));
  if (!w->f) return luaL_error(L, "the file is already closed");
  if (w->to_stdout) {
    int bad = fflush(w->f) != 0 || ferror(w->f);
    w->f = NULL;
    if (bad)
      return luaL_error(L, "cannot write standard output: %s", strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
  }
  int bad = fflush(w->f) != 0 || fsync(fileno(w->f)) != 0;
  int e = errno;
  if (fclose(w->f) != 0 && !bad) bad = 1, e = errno;
  w->f = NULL;
  if (!bad && rename(w->tmp, w->path) != 0) bad = 1, e = errno;
  if (bad) {
    /* Raised, not returned: a caller that forgot to look would report a
    ** file written that is not there. */
    unlink(w->tmp);
    char msg[600];
    yz_fmt(msg, sizeof msg, "cannot write %s: %s", w->path, strerror(e));
    writer_drop(w);
    return luaL_error(L, "%s", msg);
  }
  writer_drop(w);
  lua_pushboolean(L, 1);
  return 1;
}

static int w_abort(lua_State *L) {
  writer_drop(lua_touserdata(L, lua_upvalueindex(1)));
  return 0;
}

static int w_gc(lua_State *L) {
  writer_drop(luaL_checkudata(L, 1, WRITER));
  return 0;
}

static int c_create(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  const char *path = allowed_path(L, c, "create");
  const char *enc = "utf-8";
  int bom = 0;
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "encoding") == LUA_TSTRING)
      enc = lua_tostring(L, -1);
    lua_getfield(L, 2, "bom");
    bom = lua_toboolean(L, -1);
    lua_pop(L, 1); /* bom; the encoding string stays on the stack */
  }
  int gbk = strcasecmp(enc, "gbk") == 0 || strcasecmp(enc, "gb18030") == 0;
  if (!gbk && strcasecmp(enc, "utf-8") != 0 && strcasecmp(enc, "utf8") != 0)
    return luaL_error(L,
                      "cmd.create: unknown encoding '%s' (expected utf-8 "
                      "or gbk)",
                      enc);
  writer *w = lua_newuserdatauv(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, WRITER);
  int ud = lua_gettop(L);
  w->gbk = gbk;
  if (strcmp(path, "-") == 0) {
    w->f = c->out;
    w->to_stdout = 1;
  } else {
    w->path = yz_strdup(path);
    size_t n = strlen(path) + 16;
    w->tmp = yz_xmalloc(n);
    snprintf(w->tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0 || fchmod(fd, 0600) != 0 || !(w->f = fdopen(fd, "wb"))) {
      int e = errno;
      if (fd >= 0) close(fd), unlink(w->tmp);
      free(w->tmp);
      w->tmp = NULL;
      lua_pushnil(L);
      lua_pushfstring(L, "cannot create %s: %s", path, strerror(e));
      return 2;
    }
    tmp_live(w->tmp, 1);
  }
  track(L, ud);
  if (bom && !gbk) fwrite("\xEF\xBB\xBF", 1, 3, w->f);
  static const luaL_Reg m[] = {{"write", w_write},
                               {"row", w_row},
                               {"close", w_close},
                               {"abort", w_abort},
                               {NULL, NULL}};
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, ud);
  luaL_setfuncs(L, m, 1);
  return 1;
}

/* Closes the readers and discards the writers a command left open. */
static void close_files(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, OPEN_FILES) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      if (luaL_testudata(L, -1, READER)) {
        reader *r = lua_touserdata(L, -1);
        yz_csv_close(r->csv);
        r->csv = NULL;
      } else if (luaL_testudata(L, -1, WRITER)) {
        writer_drop(lua_touserdata(L, -1));
      }
    }
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, OPEN_FILES);
}

static void metatables(lua_State *L) {
  if (luaL_newmetatable(L, READER)) {
    lua_pushcfunction(L, r_close_ud);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "csv reader");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, WRITER)) {
    lua_pushcfunction(L, w_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "file writer");
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

/* cmd.options(spec) -> options, operands | nil, why: the command's
** arguments read against spec, a table of option names (without dashes;
** one letter: "-o", longer: "--kind") to "flag", "value" or "values" (a
** value that may be repeated, collected in a list). "--name value" and
** "--name=value" both work; "--" ends the options; "-" alone is an operand
** (standard input or output). A value may not look like an option ("-x"),
** so "--skip-bad --dry-run" is an error rather than a file named
** --dry-run. --help and -h are always known (options.help). */
static int c_options(lua_State *L) {
  cmd_ctx *c = ctx_of(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_newtable(L); /* 2: options */
  lua_newtable(L); /* 3: operands */
  int nops = 0, ended = 0;
  char why[512] = "";
  for (int i = 0; i < c->argc && !why[0]; i++) {
    const char *a = c->argv[i];
    if (ended || a[0] != '-' || strcmp(a, "-") == 0) {
      lua_pushstring(L, a);
      lua_rawseti(L, 3, ++nops);
      continue;
    }
    if (strcmp(a, "--") == 0) {
      ended = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      lua_pushboolean(L, 1);
      lua_setfield(L, 2, "help");
      continue;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = a[1] == '-' ? strchr(name, '=') : NULL;
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    int single = a[1] != '-';
    lua_pushlstring(L, name, n);
    int key = lua_gettop(L);
    lua_pushvalue(L, key);
    int ty = lua_rawget(L, 1) == LUA_TSTRING ? 1 : 0;
    const char *kind = ty ? lua_tostring(L, -1) : NULL;
    if (kind && strcmp(kind, "flag") && strcmp(kind, "value") &&
        strcmp(kind, "values"))
      return luaL_error(L,
                        "cmd.options: option '%s' is a '%s' (expected flag, "
                        "value or values)",
                        lua_tostring(L, key), kind);
    if (!kind || (single != (n == 1))) {
      yz_fmt(why, sizeof why, "unknown option %s", a);
    } else if (strcmp(kind, "flag") == 0) {
      if (eq) yz_fmt(why, sizeof why, "%.*s takes no value", (int)(eq - a), a);
      lua_pushvalue(L, key);
      lua_pushboolean(L, 1);
      lua_rawset(L, 2);
    } else {
      const char *v = eq ? eq + 1 : (i + 1 < c->argc ? c->argv[++i] : NULL);
      if (!v)
        yz_fmt(why, sizeof why, "%s needs a value", a);
      else if (!eq && v[0] == '-' && v[1] != 0)
        yz_fmt(why, sizeof why, "%s needs a value (got the option \"%s\")", a,
               v);
      else if (strcmp(kind, "values") == 0) {
        lua_pushvalue(L, key);
        if (lua_rawget(L, 2) != LUA_TTABLE) {
          lua_pop(L, 1);
          lua_newtable(L);
          lua_pushvalue(L, key);
          lua_pushvalue(L, -2);
          lua_rawset(L, 2);
        }
        lua_pushstring(L, v);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
      } else {
        lua_pushvalue(L, key);
        lua_pushstring(L, v);
        lua_rawset(L, 2);
      }
    }
    lua_settop(L, 3);
  }
  if (why[0]) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  return 2;
}

/* Pushes the cmd table of a run; its functions hold the context c (the
** userdata at index ctx), which dies when the run ends. */
static void push_cmd(lua_State *L, cmd_ctx *c, int ctx, const char *name) {
  static const luaL_Reg funcs[] = {
      {"print", c_print},       {"out", c_out},         {"err", c_err},
      {"ask", c_ask},           {"csv", c_csv},         {"create", c_create},
      {"progress", c_progress}, {"options", c_options}, {NULL, NULL}};
  lua_createtable(L, 0, 12);
  lua_pushvalue(L, ctx);
  luaL_setfuncs(L, funcs, 1);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushboolean(L, c->tty);
  lua_setfield(L, -2, "tty");
  lua_createtable(L, c->argc, 0);
  for (int i = 0; i < c->argc; i++) {
    lua_pushstring(L, c->argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "args");
}

/* Whether a task may run now (events' handlers and what they started). */
static int tasks_ready(yz_host *h) {
  int64_t now = yz_clock_now_ms(&h->clock);
  for (yz_task *t = h->tasks; t; t = t->next)
    if (t->wake_ms <= now && !t->wait) return 1;
  return 0;
}

int yz_cmd_run(yz_host *h, yz_plugin *p, int words, int argc, char **argv,
               const char *base, FILE *in, FILE *out, FILE *err) {
  lua_State *L = p->sb->L;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 16)) return 1;
  yz_buf nb;
  yz_buf_init(&nb, 4096);
  for (int i = 0; i < words; i++) {
    if (i) yz_buf_addc(&nb, ' ');
    yz_buf_adds(&nb, argv[i]);
  }
  const char *name = yz_buf_str(&nb);
  metatables(L);
  push_commands(p, L);
  /* The table is the core's plain copy (see h_command): no metamethod. */
  if (lua_getfield(L, -1, name) != LUA_TTABLE ||
      lua_getfield(L, -1, "run") != LUA_TFUNCTION) {
    fprintf(err, "yizhan: plugin '%s' has no command '%s'\n", p->name, name);
    lua_settop(L, top);
    yz_buf_free(&nb);
    return 1;
  }
  lua_replace(L, top + 1); /* run, where the commands table was */
  lua_settop(L, top + 1);
  cmd_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  *c = (cmd_ctx){
      1,    h, in, out, err, isatty(fileno(err)), argc - words, argv + words,
      base, 0, 0};
  /* Kept on the stack below run until the end: the closures hold it too,
  ** but a failed call drops the cmd table and collects at once, and the
  ** context is still used after that. */
  lua_insert(L, top + 1);
  int ctx = top + 1;
  push_cmd(L, c, ctx, name);
  long long limit = p->sb->step_limit, sql_limit = p->acl.step_limit;
  p->sb->step_limit = 0; /* no CPU budget: a person runs it */
  p->acl.step_limit = 0; /* nor for its SQL */
  /* A command may import or export a county: a page cache to match (the
  ** daemon keeps SQLite's default; memory is taken only as it is used). */
  yz_store_exec_script(h->store, NULL, "PRAGMA cache_size=-65536");
  struct sigaction sa, old_int, old_term, old_hup;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
  char msg[8192];
  int rc = yz_sandbox_call(p->sb, 1, 1, msg, sizeof msg);
  p->sb->step_limit = limit;
  p->acl.step_limit = sql_limit;
  yz_sandbox_rearm(p->sb);
  yz_store_exec_script(h->store, NULL, "PRAGMA cache_size=-2000");
  int status = 0;
  if (rc != LUA_OK) {
    /* The message for the person; the traceback for the log. */
    end_bar(c);
    yz_logf(&h->log, YZ_LOG_DEBUG, p->name, "command '%s' failed: %s", name,
            msg);
    char *tb = strstr(msg, "\nstack traceback:");
    if (tb) *tb = 0;
    fprintf(err, "yizhan: %s: %s\n", name, msg);
    status = 1;
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    status = isint && v >= INT32_MIN && v <= INT32_MAX ? (int)v : 1;
  } else if (lua_isboolean(L, -1)) {
    status = !lua_toboolean(L, -1);
  }
  end_bar(c);
  c->live = 0;
  close_files(L);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  lua_settop(L, top);
  if ((fflush(out) != 0 || ferror(out)) && status == 0) {
    fprintf(err, "yizhan: %s: cannot write standard output: %s\n", name,
            strerror(errno));
    status = 1;
  }
  yz_buf_free(&nb);
  /* Hand what the command emitted to the plugins listening; no job starts
  ** meanwhile (this is not the daemon). */
  int stopping = h->stopping;
  h->stopping = 1;
  for (int i = 0; i < 100000 && (yz_bus_pending(h->bus) || tasks_ready(h)); i++)
    yz_host_tick(h);
  h->stopping = stopping;
  return status;
}
