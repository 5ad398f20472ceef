/*
** config.c: loading and checking yizhan.conf.lua (see config.h).
**
** Divided into: the text template for 'init'; locating a key's line in the
** source; evaluating the file in a data-only sandbox; the schema checks.
*/
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "clock.h"
#include "http.h"
#include "phone.h"
#include "sandbox.h"
#include "yz.h"

#define CONFIG_MEM (16u << 20)  /* a config needs far less */
#define CONFIG_STEPS 10000000LL /* ditto for instructions */
#define DEFAULT_MEMORY_MB 64
#define DEFAULT_INSTRUCTIONS 1000000000LL
#define DEFAULT_QUARANTINE 5

static const char template_text[] =
    "-- yizhan.conf.lua: the configuration of one yizhan data directory.\n"
    "-- It is Lua evaluated as data: tables, strings, numbers, booleans.\n"
    "-- env(\"NAME\") reads a secret from the environment (an error when it\n"
    "-- is not set); env(\"NAME\", \"fallback\") gives a default instead.\n"
    "-- Every option is listed below with its default; uncomment to change.\n"
    "\n"
    "-- The time zone schedules are evaluated in (an IANA name).\n"
    "-- timezone = \"Asia/Shanghai\"\n"
    "\n"
    "-- The SQLite database, relative to this directory.\n"
    "-- database = \"yizhan.db\"\n"
    "\n"
    "-- Log level for the logfmt lines on stderr: debug, info, warn or error.\n"
    "-- log_level = \"info\"\n"
    "\n"
    "-- Extra plugin folders, searched before this directory's plugins/ and\n"
    "-- the shipped plugins (relative paths are relative to this directory).\n"
    "-- plugin_path = {}\n"
    "\n"
    "-- Limits for every plugin: memory of its Lua state, VM instructions per\n"
    "-- call into it, and consecutive failures before it is quarantined.\n"
    "-- limits = { memory_mb = 64, instructions = 1000000000, quarantine_after "
    "= 5 }\n"
    "\n"
    "-- Limits for one plugin, overriding the ones above.\n"
    "-- plugin_limits = { registry = { memory_mb = 256 } }\n"
    "\n"
    "-- The school calendar: terms (start, mid-term, end), holidays and the\n"
    "-- Spring Festival of each year, as \"YYYY-MM-DD\". Schedules can be\n"
    "-- relative to these dates (\"3 days before term.end 09:00\").\n"
    "-- calendar = {}\n"
    "-- For example:\n"
    "--   calendar = {\n"
    "--     terms = {\n"
    "--       { name = \"2026秋\", start = \"2026-09-01\", mid = "
    "\"2026-11-09\", "
    "[\"end\"] = \"2027-01-22\" },\n"
    "--       { name = \"2027春\", start = \"2027-02-22\", mid = "
    "\"2027-04-19\", "
    "[\"end\"] = \"2027-07-02\" },\n"
    "--     },\n"
    "--     holidays = { { name = \"国庆\", from = \"2026-10-01\", to = "
    "\"2026-10-07\" } },\n"
    "--     spring_festival = { [\"2027\"] = \"2027-02-06\" },\n"
    "--   }\n"
    "\n"
    "-- No SMS at night: a message due inside these hours (local time) waits\n"
    "-- until they end. false switches them off (a channel can too).\n"
    "-- quiet_hours = { from = \"21:30\", to = \"07:30\" }\n"
    "\n"
    "-- Message templates: the local text, with {{param}} placeholders.\n"
    "-- Aliyun and Tencent send only templates their console approved;\n"
    "-- their channels map each one to the provider's code.\n"
    "-- For example (no templates by default):\n"
    "--   templates = {\n"
    "--     letter_reminder = \"{{teacher}}老师：本班{{count}}名留守儿童本月"
    "还未给父母写信。\",\n"
    "--   }\n"
    "\n"
    "-- Delivery channels; a channel's type is the plugin that delivers it.\n"
    "-- Every channel also takes the core's keys, shown with their defaults:\n"
    "--   tps (no limit), max_in_flight = 32, daily_cap = 10 (per recipient;\n"
    "--   false: none), max_attempts = 6, retry_base = 30 and retry_cap =\n"
    "--   3600 (seconds), max_parts = 10, quiet_hours, insecure = false.\n"
    "-- The 'file' channel writes messages to a file here instead of sending\n"
    "-- them: a safe start.\n"
    "channels = {\n"
    "  default = \"demo\",\n"
    "  demo = { type = \"file\", path = \"outbox.jsonl\" },\n"
    "  -- sms = { type = \"kannel\", url = "
    "\"http://127.0.0.1:13013/cgi-bin/sendsms\",\n"
    "  --         username = \"yizhan\", password = env(\"KANNEL_PASS\") },\n"
    "  -- gw = { type = \"http\", url = \"https://sms.example.cn/send\",\n"
    "  --        body = { mobile = \"{{to}}\", content = \"{{text}}\", msgid = "
    "\"{{key}}\" },\n"
    "  --        ok_when = { status = 200, json = { code = 0 } }, tps = 50 },\n"
    "  -- aliyun = { type = \"aliyun\", url = "
    "\"https://dysmsapi.aliyuncs.com/\",\n"
    "  --            access_key_id = env(\"ALIYUN_AK\"),\n"
    "  --            access_key_secret = env(\"ALIYUN_SK\"),\n"
    "  --            sign_name = \"某县教育局\",\n"
    "  --            templates = { letter_reminder = \"SMS_123456789\" } },\n"
    "  -- tencent = { type = \"tencent\", url = "
    "\"https://sms.tencentcloudapi.com/\",\n"
    "  --             secret_id = env(\"TENCENT_SECRET_ID\"),\n"
    "  --             secret_key = env(\"TENCENT_SECRET_KEY\"),\n"
    "  --             sdk_app_id = \"1400000000\", sign_name = "
    "\"某县教育局\",\n"
    "  --             templates = { letter_reminder = { code = \"1234567\",\n"
    "  --                           params = { \"teacher\", \"count\" } } } "
    "},\n"
    "}\n"
    "\n"
    "-- Hosts other plugins may reach with host.http.request, for example\n"
    "--   http_hosts = { weather = { \"api.example.cn\" } }\n"
    "\n"
    "-- Enabled plugins, each with its option overrides (an empty table keeps\n"
    "-- the plugin's defaults; false lists it but keeps it disabled).\n"
    "-- 'yizhan plugins' shows what is available.\n"
    "plugins = {\n"
    "}\n";

const char *yz_config_template(void) {
  return template_text;
}

/* ---------------------------------------------------------- key lines */

/* Copies the source with comments blanked out (newlines kept), so a key
** mentioned in a comment is not mistaken for its definition. */
static char *strip_comments(const char *src) {
  size_t n = strlen(src);
  char *out = yz_xmalloc(n + 1);
  memcpy(out, src, n + 1);
  size_t i = 0;
  while (i < n) {
    char c = out[i];
    if (c == '"' || c == '\'') {
      for (i++; i < n && out[i] != c && out[i] != '\n'; i++)
        if (out[i] == '\\' && i + 1 < n) i++;
      i++;
    } else if (c == '-' && i + 1 < n && out[i + 1] == '-') {
      int longc = i + 3 < n && out[i + 2] == '[' && out[i + 3] == '[';
      while (i < n) {
        if (longc && out[i] == ']' && i + 1 < n && out[i + 1] == ']') {
          out[i] = out[i + 1] = ' ';
          i += 2;
          break;
        }
        if (!longc && out[i] == '\n') break;
        if (out[i] != '\n') out[i] = ' ';
        i++;
      }
    } else {
      i++;
    }
  }
  return out;
}

static int ident_char(char c) {
  return isalnum((unsigned char)c) || c == '_';
}

/* Finds 'key =' or '["key"] =' at or after 'from'; returns its offset or -1. */
static long find_key(const char *s, long from, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = s + from; (p = strstr(p, key)) != NULL; p += 1) {
    const char *end = p + kl;
    int bare = (p == s || !ident_char(p[-1])) && !ident_char(*end);
    int quoted = p >= s + 2 && (p[-1] == '"' || p[-1] == '\'') &&
                 p[-2] == '[' && (*end == '"' || *end == '\'') && end[1] == ']';
    if (!bare && !quoted) continue;
    const char *q = quoted ? end + 2 : end;
    while (*q == ' ' || *q == '\t') q++;
    if (*q == '=' && q[1] != '=') return (long)(p - s);
  }
  return -1;
}

int yz_config_line_of(const yz_config *c, const char *keypath) {
  if (!c || !c->source) return 0;
  char *text = strip_comments(c->source);
  char path[512];
  yz_fmt(path, sizeof path, "%s", keypath);
  long pos = 0, found = -1;
  for (char *part = path; part && *part;) {
    char *dot = strpbrk(part, ".[");
    char *next = NULL;
    int element = 0;
    if (dot) {
      next = dot + 1;
      element = *dot == '['; /* array element: the array's line will do */
      *dot = '\0';
    }
    long at = find_key(text, pos, part);
    if (at < 0) break;
    found = pos = at;
    if (element) break;
    part = next;
  }
  int line = 0;
  if (found >= 0) {
    line = 1;
    for (long i = 0; i < found; i++)
      if (text[i] == '\n') line++;
  }
  free(text);
  return line;
}

/* --------------------------------------------------------------- errors */

typedef struct check_ctx {
  yz_config *c;  /* the config being filled */
  lua_State *L;  /* its state */
  char *err;     /* where the first error goes */
  size_t errlen; /* its size */
} check_ctx;

static int fail(check_ctx *k, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(check_ctx *k, const char *keypath, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int line = yz_config_line_of(k->c, keypath);
  if (line)
    yz_fmt(k->err, k->errlen, "%s:%d: %s: %s", k->c->path, line, keypath, msg);
  else
    yz_fmt(k->err, k->errlen, "%s: %s: %s", k->c->path, keypath, msg);
  return 1;
}

/* Appends " (did you mean 'x'?)" when a known key is close to 'key'. */
static void suggest(const char *key, const char *const *known, char *dst,
                    size_t n) {
  int best = 3;
  const char *pick = NULL;
  for (int i = 0; known[i]; i++) {
    int cap = strlen(known[i]) > 4 ? 2 : 1;
    int d = yz_edit_distance(key, known[i], cap);
    if (d <= cap && d < best) {
      best = d;
      pick = known[i];
    }
  }
  if (pick)
    yz_fmt(dst, n, " (did you mean '%s'?)", pick);
  else
    dst[0] = '\0';
}

static const char *type_of(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return lua_isinteger(L, idx) ? "integer" : "number";
  return luaL_typename(L, idx);
}

/* ---------------------------------------------------------------- checks */

static int want_string(check_ctx *k, int idx, const char *path, char **dst) {
  if (lua_type(k->L, idx) != LUA_TSTRING)
    return fail(k, path, "expected a string, got %s", type_of(k->L, idx));
  free(*dst);
  *dst = yz_strdup(lua_tostring(k->L, idx));
  return 0;
}

static int want_positive(check_ctx *k, int idx, const char *path,
                         lua_Number *out) {
  lua_State *L = k->L;
  if (lua_type(L, idx) != LUA_TNUMBER)
    return fail(k, path, "expected a number, got %s", type_of(L, idx));
  lua_Number v = lua_tonumber(L, idx);
  if (!(v > 0)) return fail(k, path, "expected a number above 0, got %g", v);
  *out = v;
  return 0;
}

/* A whole number from 1 to 'max'. A fraction would be truncated, possibly to
** 0, which the sandbox reads as "unlimited"; a value past 'max' would not
** convert to the C type at all. */
static int want_whole(check_ctx *k, int idx, const char *path, double max,
                      lua_Number *out) {
  if (want_positive(k, idx, path, out)) return 1;
  if (*out > max) return fail(k, path, "at most %.0f, got %g", max, *out);
  if (*out != (lua_Number)(long long)*out)
    return fail(k, path, "expected a whole number, got %g", *out);
  return 0;
}

static const char *const limit_keys[] = {"memory_mb", "instructions",
                                         "quarantine_after", NULL};

static int check_limits(check_ctx *k, int idx, const char *path,
                        yz_limits *lim) {
  lua_State *L = k->L;
  char sub[512], hint[128];
  if (!lua_istable(L, idx))
    return fail(k, path, "expected a table, got %s", type_of(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      return fail(k, path, "keys must be names");
    }
    const char *key = lua_tostring(L, -2);
    yz_fmt(sub, sizeof sub, "%s.%s", path, key);
    lua_Number v;
    int bad = 0;
    if (strcmp(key, "memory_mb") == 0) {
      bad = want_positive(k, lua_gettop(L), sub, &v);
      if (!bad && v > 65536) bad = fail(k, sub, "at most 65536 MiB, got %g", v);
      /* Less would round towards 0 bytes, which means "unlimited". */
      if (!bad && v < 1) bad = fail(k, sub, "at least 1 MiB, got %g", v);
      if (!bad) lim->memory = (size_t)(v * 1024 * 1024);
    } else if (strcmp(key, "instructions") == 0) {
      bad = want_whole(k, lua_gettop(L), sub, 1e18, &v);
      if (!bad) lim->instructions = (long long)v;
    } else if (strcmp(key, "quarantine_after") == 0) {
      bad = want_whole(k, lua_gettop(L), sub, INT_MAX, &v);
      if (!bad) lim->quarantine_after = (int)v;
    } else {
      suggest(key, limit_keys, hint, sizeof hint);
      bad = fail(k, sub,
                 "unknown limit%s; expected one of memory_mb, "
                 "instructions, quarantine_after",
                 hint);
    }
    if (bad) {
      lua_pop(L, 2);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int valid_plugin_name(const char *s) {
  if (!*s || !(islower((unsigned char)*s))) return 0;
  for (; *s; s++)
    if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
          *s == '_'))
      return 0;
  return 1;
}

static int cmp_plugin(const void *a, const void *b) {
  return strcmp(((const yz_plugin_conf *)a)->name,
                ((const yz_plugin_conf *)b)->name);
}

static int check_plugins(check_ctx *k, int idx) {
  lua_State *L = k->L;
  char sub[512];
  if (!lua_istable(L, idx))
    return fail(k, "plugins", "expected a table of plugin = options, got %s",
                type_of(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        !valid_plugin_name(lua_tostring(L, -2))) {
      char shown[128];
      yz_fmt(shown, sizeof shown, "%s",
             lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
      lua_pop(L, 2);
      return fail(k, "plugins",
                  "'%s' is not a plugin name (lower-case "
                  "letters, digits and '_', starting with a letter)",
                  shown);
    }
    const char *name = lua_tostring(L, -2);
    yz_fmt(sub, sizeof sub, "plugins.%s", name);
    int t = lua_type(L, -1);
    if (t != LUA_TTABLE && t != LUA_TBOOLEAN) {
      const char *tn = type_of(L, -1); /* a static string */
      lua_pop(L, 2);
      return fail(k, sub, "expected a table of options, true or false, got %s",
                  tn);
    }
    yz_config *c = k->c;
    c->plugins =
        yz_xrealloc(c->plugins, sizeof *c->plugins * (size_t)(c->nplugins + 1));
    yz_plugin_conf *pc = &c->plugins[c->nplugins++];
    memset(pc, 0, sizeof *pc);
    pc->name = yz_strdup(name);
    pc->enabled = t == LUA_TTABLE || lua_toboolean(L, -1);
    pc->limits = c->limits;
    lua_pop(L, 1);
  }
  /* An empty 'plugins' leaves the array NULL, which qsort may not get. */
  if (k->c->nplugins > 1)
    qsort(k->c->plugins, (size_t)k->c->nplugins, sizeof *k->c->plugins,
          cmp_plugin);
  return 0;
}

static int check_plugin_limits(check_ctx *k, int idx) {
  lua_State *L = k->L;
  char sub[512];
  if (!lua_istable(L, idx))
    return fail(k, "plugin_limits",
                "expected a table of plugin = limits, "
                "got %s",
                type_of(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      return fail(k, "plugin_limits", "keys must be plugin names");
    }
    const char *name = lua_tostring(L, -2);
    yz_fmt(sub, sizeof sub, "plugin_limits.%s", name);
    yz_plugin_conf *pc = NULL;
    for (int i = 0; i < k->c->nplugins; i++)
      if (strcmp(k->c->plugins[i].name, name) == 0) pc = &k->c->plugins[i];
    if (!pc) {
      lua_pop(L, 2);
      return fail(k, sub,
                  "'%s' is not in 'plugins'; limits apply to "
                  "configured plugins only",
                  name);
    }
    if (check_limits(k, lua_gettop(L), sub, &pc->limits)) {
      lua_pop(L, 2);
      return 1;
    }
    pc->has_limits = 1;
    lua_pop(L, 1);
  }
  return 0;
}

static int check_zone(check_ctx *k, const char *tz) {
  if (!*tz || tz[0] == '/' || strstr(tz, ".."))
    return fail(k, "timezone", "'%s' is not an IANA time zone name", tz);
  if (!yz_clock_zone_exists(tz))
    return fail(k, "timezone",
                "unknown time zone '%s' (expected an IANA name such as "
                "Asia/Shanghai)",
                tz);
  return 0;
}

/* ------------------------------------------------------------- calendar */

/* Reads a "YYYY-MM-DD" field of the table at idx into *day. */
static int want_date(check_ctx *k, int idx, const char *field, const char *path,
                     int64_t *day) {
  lua_State *L = k->L;
  char sub[512];
  yz_fmt(sub, sizeof sub, "%s.%s", path, field);
  lua_getfield(L, idx, field);
  if (lua_type(L, -1) != LUA_TSTRING) {
    const char *tn = type_of(L, -1);
    lua_pop(L, 1);
    return fail(k, sub, "expected a date \"YYYY-MM-DD\", got %s", tn);
  }
  if (yz_parse_date(lua_tostring(L, -1), day) != 0) {
    char got[64];
    yz_fmt(got, sizeof got, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return fail(k, sub, "'%s' is not a date (expected YYYY-MM-DD)", got);
  }
  lua_pop(L, 1);
  return 0;
}

/* Only the listed keys may appear in the table at idx. */
static int only_keys(check_ctx *k, int idx, const char *path,
                     const char *const *known) {
  lua_State *L = k->L;
  char sub[512], hint[128];
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *key =
        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int ok = 0;
    for (int i = 0; key && known[i]; i++) ok |= strcmp(key, known[i]) == 0;
    if (!ok) {
      suggest(key ? key : "", known, hint, sizeof hint);
      yz_fmt(sub, sizeof sub, "%s.%s", path, key ? key : "?");
      lua_pop(L, 1);
      return fail(k, sub, "unknown key%s", hint);
    }
  }
  return 0;
}

static int list_of_tables(check_ctx *k, int idx, const char *path) {
  if (!lua_istable(k->L, idx))
    return fail(k, path, "expected a list of tables, got %s",
                type_of(k->L, idx));
  return 0;
}

static const char *const calendar_keys[] = {"terms", "holidays",
                                            "spring_festival", NULL};
static const char *const term_keys[] = {"name", "start", "mid", "end", NULL};
static const char *const holiday_keys[] = {"name", "from", "to", NULL};

static int cmp_term(const void *a, const void *b) {
  const yz_term *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_holiday(const void *a, const void *b) {
  const yz_holiday *x = a, *y = b;
  return x->from < y->from ? -1 : x->from > y->from;
}

static int cmp_day(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int check_terms(check_ctx *k, int idx) {
  lua_State *L = k->L;
  yz_calendar *cal = &k->c->calendar;
  if (list_of_tables(k, idx, "calendar.terms")) return 1;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  cal->terms = yz_xcalloc((size_t)n + 1, sizeof *cal->terms);
  for (lua_Integer i = 1; i <= n; i++) {
    char path[64];
    yz_fmt(path, sizeof path, "calendar.terms[%lld]", (long long)i);
    lua_rawgeti(L, idx, i);
    int t = lua_gettop(L);
    if (!lua_istable(L, t))
      return fail(k, path,
                  "expected { name = ..., start = ..., mid = ..., "
                  "[\"end\"] = ... }, got %s",
                  type_of(L, t));
    if (only_keys(k, t, path, term_keys)) return 1;
    yz_term *term = &cal->terms[cal->nterms++];
    lua_getfield(L, t, "name");
    if (lua_type(L, -1) != LUA_TSTRING)
      return fail(k, path, "name: expected a string, got %s", type_of(L, -1));
    term->name = yz_strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (want_date(k, t, "start", path, &term->start) ||
        want_date(k, t, "mid", path, &term->mid) ||
        want_date(k, t, "end", path, &term->end))
      return 1;
    if (!(term->start <= term->mid && term->mid <= term->end))
      return fail(k, path, "expected start <= mid <= end");
    lua_pop(L, 1);
  }
  qsort(cal->terms, (size_t)cal->nterms, sizeof *cal->terms, cmp_term);
  for (int i = 1; i < cal->nterms; i++)
    if (cal->terms[i].start <= cal->terms[i - 1].end)
      return fail(k, "calendar.terms", "terms '%s' and '%s' overlap",
                  cal->terms[i - 1].name, cal->terms[i].name);
  return 0;
}

static int check_holidays(check_ctx *k, int idx) {
  lua_State *L = k->L;
  yz_calendar *cal = &k->c->calendar;
  if (list_of_tables(k, idx, "calendar.holidays")) return 1;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  cal->holidays = yz_xcalloc((size_t)n + 1, sizeof *cal->holidays);
  for (lua_Integer i = 1; i <= n; i++) {
    char path[64];
    yz_fmt(path, sizeof path, "calendar.holidays[%lld]", (long long)i);
    lua_rawgeti(L, idx, i);
    int t = lua_gettop(L);
    if (!lua_istable(L, t))
      return fail(k, path,
                  "expected { name = ..., from = ..., to = ... }, "
                  "got %s",
                  type_of(L, t));
    if (only_keys(k, t, path, holiday_keys)) return 1;
    yz_holiday *h = &cal->holidays[cal->nholidays++];
    lua_getfield(L, t, "name");
    h->name =
        yz_strdup(lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    if (want_date(k, t, "from", path, &h->from) ||
        want_date(k, t, "to", path, &h->to))
      return 1;
    if (h->from > h->to) return fail(k, path, "expected from <= to");
    lua_pop(L, 1);
  }
  qsort(cal->holidays, (size_t)cal->nholidays, sizeof *cal->holidays,
        cmp_holiday);
  return 0;
}

static int check_spring(check_ctx *k, int idx) {
  lua_State *L = k->L;
  yz_calendar *cal = &k->c->calendar;
  if (!lua_istable(L, idx))
    return fail(k, "calendar.spring_festival",
                "expected a table of "
                "[\"YYYY\"] = \"YYYY-MM-DD\", got %s",
                type_of(L, idx));
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  cal->spring = yz_xcalloc(n + 1, sizeof *cal->spring);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char year[16], path[64];
    int key_ok = lua_type(L, -2) == LUA_TSTRING ||
                 (lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0);
    if (lua_type(L, -2) == LUA_TSTRING)
      yz_fmt(year, sizeof year, "%s", lua_tostring(L, -2));
    else if (key_ok)
      yz_fmt(year, sizeof year, "%lld", (long long)lua_tointeger(L, -2));
    yz_fmt(path, sizeof path, "calendar.spring_festival");
    if (!key_ok || strlen(year) != 4) {
      lua_pop(L, 2);
      return fail(k, path, "keys are years such as \"2027\"");
    }
    int64_t day;
    if (lua_type(L, -1) != LUA_TSTRING ||
        yz_parse_date(lua_tostring(L, -1), &day) != 0 ||
        strncmp(lua_tostring(L, -1), year, 4) != 0) {
      lua_pop(L, 2);
      return fail(k, path,
                  "[\"%s\"]: expected a date in %s as "
                  "\"YYYY-MM-DD\"",
                  year, year);
    }
    cal->spring[cal->nspring++] = day;
    lua_pop(L, 1);
  }
  qsort(cal->spring, (size_t)cal->nspring, sizeof *cal->spring, cmp_day);
  return 0;
}

static int check_calendar(check_ctx *k, int idx) {
  lua_State *L = k->L;
  if (!lua_istable(L, idx))
    return fail(k, "calendar",
                "expected a table { terms = ..., holidays = "
                "..., spring_festival = ... }, got %s",
                type_of(L, idx));
  if (only_keys(k, idx, "calendar", calendar_keys)) return 1;
  int bad = 0;
  if (lua_getfield(L, idx, "terms") != LUA_TNIL)
    bad = check_terms(k, lua_gettop(L));
  lua_settop(L, idx);
  if (!bad && lua_getfield(L, idx, "holidays") != LUA_TNIL)
    bad = check_holidays(k, lua_gettop(L));
  lua_settop(L, idx);
  if (!bad && lua_getfield(L, idx, "spring_festival") != LUA_TNIL)
    bad = check_spring(k, lua_gettop(L));
  lua_settop(L, idx);
  return bad;
}

/* -------------------------------------------------------------- messaging */

/* "HH:MM" into minutes after midnight, or -1. */
static int parse_hhmm(const char *s) {
  int h, m;
  char tail;
  if (strlen(s) != 5 || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 ||
      s[2] != ':' || h < 0 || h > 23 || m < 0 || m > 59)
    return -1;
  return h * 60 + m;
}

static const char *const quiet_keys[] = {"from", "to", NULL};

/* quiet_hours = false | true | { from = "21:30", to = "07:30" } */
static int check_quiet(check_ctx *k, int idx, const char *path, int *on,
                       int *from, int *to) {
  lua_State *L = k->L;
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    *on = lua_toboolean(L, idx);
    return 0;
  }
  if (!lua_istable(L, idx))
    return fail(k, path,
                "expected false or { from = \"HH:MM\", to = \"HH:MM\" }, "
                "got %s",
                type_of(L, idx));
  if (only_keys(k, idx, path, quiet_keys)) return 1;
  int *dst[2] = {from, to};
  for (int i = 0; i < 2; i++) {
    char sub[300];
    yz_fmt(sub, sizeof sub, "%s.%s", path, quiet_keys[i]);
    lua_getfield(L, idx, quiet_keys[i]);
    if (lua_type(L, -1) != LUA_TSTRING) {
      const char *tn = type_of(L, -1);
      lua_pop(L, 1);
      return fail(k, sub, "expected a local time \"HH:MM\", got %s", tn);
    }
    int m = parse_hhmm(lua_tostring(L, -1));
    if (m < 0) {
      char shown[64];
      yz_fmt(shown, sizeof shown, "%s", lua_tostring(L, -1));
      lua_pop(L, 1);
      return fail(k, sub, "expected a local time \"HH:MM\", got '%s'", shown);
    }
    *dst[i] = m;
    lua_pop(L, 1);
  }
  if (*from == *to)
    return fail(k, path,
                "from and to are the same time; write "
                "quiet_hours = false to switch them off");
  *on = 1;
  return 0;
}

static const char *const channel_keys[] = {
    "type",         "tps",        "max_in_flight", "quiet_hours", "daily_cap",
    "max_attempts", "retry_base", "retry_cap",     "max_parts",   "insecure",
    "url",          "path",       "templates",     NULL};

/* ------------------------------------------------------------- templates */

static int is_ident_char(char ch, int first) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
         (!first && ch >= '0' && ch <= '9');
}

static int tpl_has_param(const yz_template *t, const char *name) {
  for (int i = 0; i < t->nparams; i++)
    if (strcmp(t->params[i], name) == 0) return 1;
  return 0;
}

/* Finds the {{name}} placeholders of t->text. */
static int parse_template(check_ctx *k, const char *path, yz_template *t) {
  const char *s = t->text;
  while ((s = strstr(s, "{{")) != NULL) {
    const char *b = s + 2, *e = b;
    while (is_ident_char(*e, e == b)) e++;
    if (e == b || strncmp(e, "}}", 2) != 0)
      return fail(k, path,
                  "a placeholder is {{name}} (letters, digits and '_'), got "
                  "'%.20s'",
                  s);
    char name[64];
    if ((size_t)(e - b) >= sizeof name)
      return fail(k, path, "placeholder name too long: '%.20s'", b);
    memcpy(name, b, (size_t)(e - b));
    name[e - b] = 0;
    if (!tpl_has_param(t, name)) {
      t->params =
          yz_xrealloc(t->params, sizeof *t->params * (size_t)(t->nparams + 1));
      t->params[t->nparams++] = yz_strdup(name);
    }
    s = e + 2;
  }
  return 0;
}

static int cmp_tpl_map(const void *a, const void *b) {
  return strcmp(((const yz_tpl_map *)a)->name, ((const yz_tpl_map *)b)->name);
}

static int cmp_template(const void *a, const void *b) {
  return strcmp(((const yz_template *)a)->name, ((const yz_template *)b)->name);
}

static int check_templates(check_ctx *k, int idx) {
  lua_State *L = k->L;
  yz_config *c = k->c;
  if (!lua_istable(L, idx))
    return fail(k, "templates",
                "expected a table of name = \"text with {{params}}\", got %s",
                type_of(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char path[300];
    if (lua_type(L, -2) != LUA_TSTRING ||
        !valid_plugin_name(lua_tostring(L, -2))) {
      lua_pop(L, 2);
      return fail(k, "templates",
                  "template names are lower-case letters, digits and '_', "
                  "starting with a letter");
    }
    yz_fmt(path, sizeof path, "templates.%s", lua_tostring(L, -2));
    c->templates = yz_xrealloc(
        c->templates, sizeof *c->templates * (size_t)(c->ntemplates + 1));
    yz_template *t = &c->templates[c->ntemplates++];
    memset(t, 0, sizeof *t);
    t->name = yz_strdup(lua_tostring(L, -2));
    if (want_string(k, -1, path, &t->text) || parse_template(k, path, t)) {
      lua_settop(L, idx);
      return 1;
    }
    yz_sms_count cnt;
    if (!t->text[0] ||
        yz_sms_count_text(t->text, strlen(t->text), &cnt) != YZ_OK) {
      lua_settop(L, idx);
      return fail(k, path, "expected non-empty UTF-8 text");
    }
    lua_pop(L, 1);
  }
  if (c->ntemplates > 1)
    qsort(c->templates, (size_t)c->ntemplates, sizeof *c->templates,
          cmp_template);
  return 0;
}

static void free_strs(char **v, int n) {
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* The names of the defined templates, for messages. */
static void template_names(const yz_config *c, char *dst, size_t n) {
  yz_buf b;
  yz_buf_init(&b, 4096);
  for (int i = 0; i < c->ntemplates; i++)
    yz_buf_addf(&b, "%s%s", i ? ", " : "", c->templates[i].name);
  yz_fmt(dst, n, "%s", b.len ? yz_buf_str(&b) : "none");
  yz_buf_free(&b);
}

/* One entry of a channel's templates map, on top: "CODE" or { code =
** "CODE", params = { "a", "b" } }. */
static int check_tpl_entry(check_ctx *k, const char *path, const yz_template *t,
                           yz_tpl_map *m) {
  lua_State *L = k->L;
  int e = lua_gettop(L);
  char sub[400];
  if (lua_type(L, e) == LUA_TSTRING) {
    m->code = yz_strdup(lua_tostring(L, e));
  } else if (lua_istable(L, e)) {
    lua_pushnil(L);
    while (lua_next(L, e)) {
      lua_pop(L, 1);
      const char *key =
          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
      if (strcmp(key, "code") != 0 && strcmp(key, "params") != 0) {
        yz_fmt(sub, sizeof sub, "%s.%s", path, key);
        lua_pop(L, 1);
        return fail(k, sub, "unknown key (expected code and params)");
      }
    }
    yz_fmt(sub, sizeof sub, "%s.code", path);
    if (lua_getfield(L, e, "code") == LUA_TNIL)
      return fail(k, sub, "missing: the provider's template code");
    if (want_string(k, -1, sub, &m->code)) return 1;
    lua_pop(L, 1);
    yz_fmt(sub, sizeof sub, "%s.params", path);
    if (lua_getfield(L, e, "params") != LUA_TNIL) {
      if (!lua_istable(L, -1))
        return fail(k, sub, "expected a list of parameter names, got %s",
                    type_of(L, -1));
      lua_Integer n = luaL_len(L, -1);
      m->params = yz_xcalloc((size_t)n + 1, sizeof *m->params);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        if (want_string(k, -1, sub, &m->params[m->nparams])) return 1;
        const char *pn = m->params[m->nparams++];
        lua_pop(L, 1);
        if (!tpl_has_param(t, pn))
          return fail(k, sub,
                      "'%s' is not a parameter of template '%s' (its text "
                      "has no {{%s}})",
                      pn, t->name, pn);
        for (int j = 0; j < m->nparams - 1; j++)
          if (strcmp(m->params[j], pn) == 0)
            return fail(k, sub, "'%s' is listed twice", pn);
      }
      for (int j = 0; j < t->nparams; j++) {
        int found = 0;
        for (int i = 0; i < m->nparams && !found; i++)
          found = strcmp(m->params[i], t->params[j]) == 0;
        if (!found)
          return fail(k, sub,
                      "'%s' is missing: the provider's template must carry "
                      "every parameter of the local text, or the preview "
                      "would say what the SMS does not",
                      t->params[j]);
      }
    }
    lua_pop(L, 1);
  } else {
    return fail(k, path,
                "expected the provider's template code, or { code = ..., "
                "params = { ... } }, got %s",
                type_of(L, e));
  }
  if (!m->code[0]) return fail(k, path, "the template code is empty");
  if (!m->params) { /* the local text's order */
    m->params = yz_xcalloc((size_t)t->nparams + 1, sizeof *m->params);
    for (int i = 0; i < t->nparams; i++)
      m->params[m->nparams++] = yz_strdup(t->params[i]);
  }
  return 0;
}

/* A channel's 'templates' map, on top of the stack. */
static int check_channel_templates(check_ctx *k, const char *path,
                                   yz_chan_conf *cc) {
  lua_State *L = k->L;
  int t = lua_gettop(L);
  char sub[400], names[1024];
  if (!lua_istable(L, t))
    return fail(k, path,
                "expected a table of template = \"provider code\", got %s",
                type_of(L, t));
  cc->templates_only = 1;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    const char *name =
        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    yz_fmt(sub, sizeof sub, "%s.%s", path, name);
    const yz_template *tp = yz_config_template_named(k->c, name);
    if (!tp) {
      template_names(k->c, names, sizeof names);
      lua_settop(L, t);
      return fail(k, sub,
                  "no template '%s' in the top-level 'templates' table "
                  "(defined: %s)",
                  name, names);
    }
    cc->tpls =
        yz_xrealloc(cc->tpls, sizeof *cc->tpls * (size_t)(cc->ntpls + 1));
    yz_tpl_map *m = &cc->tpls[cc->ntpls++];
    memset(m, 0, sizeof *m);
    m->name = yz_strdup(name);
    if (check_tpl_entry(k, sub, tp, m)) {
      lua_settop(L, t);
      return 1;
    }
    lua_settop(L, t + 1);
  }
  if (cc->ntpls > 1) /* a stable order for messages */
    qsort(cc->tpls, (size_t)cc->ntpls, sizeof *cc->tpls, cmp_tpl_map);
  /* A template a policy may use but the provider cannot send would fail
  ** at 9 a.m. on the 1st: refuse it now. */
  for (int i = 0; i < k->c->ntemplates; i++)
    if (!yz_config_tpl_map(cc, k->c->templates[i].name))
      return fail(k, path,
                  "template '%s' has no entry: a channel that sends only "
                  "approved templates needs the provider's code of each "
                  "(add %s = \"...\")",
                  k->c->templates[i].name, k->c->templates[i].name);
  return 0;
}

const yz_template *yz_config_template_named(const yz_config *c,
                                            const char *name) {
  for (int i = 0; name && i < c->ntemplates; i++)
    if (strcmp(c->templates[i].name, name) == 0) return &c->templates[i];
  return NULL;
}

const yz_tpl_map *yz_config_tpl_map(const yz_chan_conf *cc, const char *name) {
  for (int i = 0; name && i < cc->ntpls; i++)
    if (strcmp(cc->tpls[i].name, name) == 0) return &cc->tpls[i];
  return NULL;
}

/* "secret" in the name, but not an identifier (Tencent's secret_id). */
static int names_secret(const char *key) {
  size_t n = strlen(key);
  return strstr(key, "secret") && !(n > 3 && strcmp(key + n - 3, "_id") == 0);
}

int yz_config_key_is_secret(const char *key) {
  return names_secret(key) || strstr(key, "password") || strstr(key, "token");
}

/* Whether the string on top came from the environment through env(). */
static int from_env(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "yz.env_values");
  lua_pushvalue(L, -2);
  int yes = lua_istable(L, -2) && lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return yes;
}

static int want_bool(check_ctx *k, int idx, const char *path, int *dst) {
  if (lua_type(k->L, idx) != LUA_TBOOLEAN)
    return fail(k, path, "expected true or false, got %s", type_of(k->L, idx));
  *dst = lua_toboolean(k->L, idx);
  return 0;
}

/* One channel's table, on top of the stack. */
static int check_channel(check_ctx *k, const char *name, yz_chan_conf *cc) {
  lua_State *L = k->L;
  int t = lua_gettop(L);
  char path[300], sub[400], hint[128];
  yz_fmt(path, sizeof path, "channels.%s", name);
  if (!lua_istable(L, t))
    return fail(k, path,
                "expected a table with at least type = \"...\", got %s",
                type_of(L, t));
  /* Other keys belong to the channel's plugin, but a near miss of a
  ** common one is almost surely a typo. */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) continue;
    const char *key = lua_tostring(L, -1);
    int known = 0;
    for (int i = 0; channel_keys[i] && !known; i++)
      known = strcmp(key, channel_keys[i]) == 0;
    if (known) continue;
    suggest(key, channel_keys, hint, sizeof hint);
    if (hint[0]) {
      yz_fmt(sub, sizeof sub, "%s.%s", path, key);
      lua_pop(L, 1);
      return fail(k, sub, "unknown key%s", hint);
    }
  }
  yz_chan_rules *r = &cc->rules;
  char *type = NULL;
  yz_fmt(sub, sizeof sub, "%s.type", path);
  if (lua_getfield(L, t, "type") == LUA_TNIL)
    return fail(k, sub,
                "missing: say which plugin delivers it (file, http, "
                "kannel, ...)");
  if (want_string(k, -1, sub, &type)) return 1;
  lua_pop(L, 1);
  if (!valid_plugin_name(type)) {
    free(type);
    return fail(k, sub, "expected a plugin name, got '%s'",
                lua_tostring(L, -1));
  }
  yz_chan_rules_default(r, NULL, NULL);
  r->name = yz_strdup(name);
  r->type = type;
  r->quiet = k->c->quiet;
  r->quiet_from = k->c->quiet_from;
  r->quiet_to = k->c->quiet_to;
  lua_Number v;
  yz_fmt(sub, sizeof sub, "%s.tps", path);
  if (lua_getfield(L, t, "tps") != LUA_TNIL) {
    if (want_positive(k, -1, sub, &v)) return 1;
    if (v > 100000 || v < 0.001)
      return fail(k, sub, "expected 0.001 to 100000 messages a second, got %g",
                  v);
    r->tps = v;
  }
  lua_pop(L, 1);
  struct {
    const char *key;
    double max;
    int *dst;
  } wholes[] = {{"max_in_flight", 10000, &r->max_in_flight},
                {"max_attempts", 100, &r->max_attempts},
                {"max_parts", 255, &r->max_parts}};
  for (size_t i = 0; i < sizeof wholes / sizeof wholes[0]; i++) {
    yz_fmt(sub, sizeof sub, "%s.%s", path, wholes[i].key);
    if (lua_getfield(L, t, wholes[i].key) != LUA_TNIL) {
      if (want_whole(k, -1, sub, wholes[i].max, &v)) return 1;
      *wholes[i].dst = (int)v;
    }
    lua_pop(L, 1);
  }
  yz_fmt(sub, sizeof sub, "%s.daily_cap", path);
  if (lua_getfield(L, t, "daily_cap") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
      r->daily_cap = 0;
    else if (want_whole(k, -1, sub, 1000000, &v))
      return 1;
    else
      r->daily_cap = (int)v;
  }
  lua_pop(L, 1);
  struct {
    const char *key;
    double *dst;
  } secs[] = {{"retry_base", &r->retry_base}, {"retry_cap", &r->retry_cap}};
  for (int i = 0; i < 2; i++) {
    yz_fmt(sub, sizeof sub, "%s.%s", path, secs[i].key);
    if (lua_getfield(L, t, secs[i].key) != LUA_TNIL) {
      if (want_positive(k, -1, sub, &v)) return 1;
      *secs[i].dst = v;
    }
    lua_pop(L, 1);
  }
  yz_fmt(sub, sizeof sub, "%s.quiet_hours", path);
  if (lua_getfield(L, t, "quiet_hours") != LUA_TNIL &&
      check_quiet(k, lua_gettop(L), sub, &r->quiet, &r->quiet_from,
                  &r->quiet_to))
    return 1;
  lua_pop(L, 1);
  yz_fmt(sub, sizeof sub, "%s.insecure", path);
  if (lua_getfield(L, t, "insecure") != LUA_TNIL &&
      want_bool(k, -1, sub, &r->insecure))
    return 1;
  lua_pop(L, 1);
  yz_fmt(sub, sizeof sub, "%s.url", path);
  if (lua_getfield(L, t, "url") != LUA_TNIL) {
    if (want_string(k, -1, sub, &cc->url)) return 1;
    char hp[300];
    if ((strncmp(cc->url, "http://", 7) != 0 &&
         strncmp(cc->url, "https://", 8) != 0) ||
        yz_http_url_host(cc->url, hp, sizeof hp) != 0)
      return fail(k, sub, "expected an http:// or https:// URL, got '%s'",
                  cc->url);
  }
  lua_pop(L, 1);
  yz_fmt(sub, sizeof sub, "%s.path", path);
  if (lua_getfield(L, t, "path") != LUA_TNIL &&
      want_string(k, -1, sub, &cc->path))
    return 1;
  lua_pop(L, 1);
  yz_fmt(sub, sizeof sub, "%s.templates", path);
  if (lua_getfield(L, t, "templates") != LUA_TNIL &&
      check_channel_templates(k, sub, cc))
    return 1;
  lua_pop(L, 1);
  /* Secrets come from the environment: a config file gets copied, mailed
  ** and backed up. */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TSTRING && names_secret(lua_tostring(L, -2)) &&
        (lua_type(L, -1) != LUA_TSTRING || !from_env(L))) {
      yz_fmt(sub, sizeof sub, "%s.%s", path, lua_tostring(L, -2));
      lua_settop(L, t);
      return fail(k, sub,
                  "a secret must come from the environment: write "
                  "env(\"NAME\") and set NAME where yizhan runs, not the "
                  "secret itself");
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int cmp_channel(const void *a, const void *b) {
  return strcmp(((const yz_chan_conf *)a)->rules.name,
                ((const yz_chan_conf *)b)->rules.name);
}

static int check_channels(check_ctx *k, int idx) {
  lua_State *L = k->L;
  yz_config *c = k->c;
  if (!lua_istable(L, idx))
    return fail(k, "channels",
                "expected a table of name = { type = ... }, "
                "got %s",
                type_of(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        (strcmp(lua_tostring(L, -2), "default") != 0 &&
         !valid_plugin_name(lua_tostring(L, -2)))) {
      lua_pop(L, 2);
      return fail(k, "channels",
                  "channel names are lower-case letters, digits and '_', "
                  "starting with a letter");
    }
    const char *name = lua_tostring(L, -2);
    if (strcmp(name, "default") == 0) {
      if (want_string(k, -1, "channels.default", &c->default_channel)) {
        lua_pop(L, 2);
        return 1;
      }
      lua_pop(L, 1);
      continue;
    }
    c->channels = yz_xrealloc(c->channels,
                              sizeof *c->channels * (size_t)(c->nchannels + 1));
    yz_chan_conf *cc = &c->channels[c->nchannels++];
    memset(cc, 0, sizeof *cc);
    if (check_channel(k, name, cc)) {
      lua_settop(L, idx);
      return 1;
    }
    lua_pop(L, 1);
  }
  if (c->nchannels > 1)
    qsort(c->channels, (size_t)c->nchannels, sizeof *c->channels, cmp_channel);
  if (c->default_channel) {
    if (!yz_config_channel(c, c->default_channel))
      return fail(k, "channels.default", "names no channel: '%s'",
                  c->default_channel);
  } else if (c->nchannels == 1) {
    c->default_channel = yz_strdup(c->channels[0].rules.name);
  }
  return 0;
}

static int check_http_hosts(check_ctx *k, int idx) {
  lua_State *L = k->L;
  yz_config *c = k->c;
  if (!lua_istable(L, idx))
    return fail(k, "http_hosts",
                "expected a table of plugin = { \"host\", ... }, got %s",
                type_of(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char sub[300];
    if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) {
      lua_pop(L, 2);
      return fail(k, "http_hosts",
                  "expected plugin = { \"host\", \"host:port\", ... }");
    }
    yz_fmt(sub, sizeof sub, "http_hosts.%s", lua_tostring(L, -2));
    c->http = yz_xrealloc(c->http, sizeof *c->http * (size_t)(c->nhttp + 1));
    yz_http_allow *a = &c->http[c->nhttp++];
    memset(a, 0, sizeof *a);
    a->plugin = yz_strdup(lua_tostring(L, -2));
    lua_Integer n = luaL_len(L, -1);
    a->hosts = yz_xcalloc((size_t)n + 1, sizeof *a->hosts);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      if (want_string(k, -1, sub, &a->hosts[a->nhosts])) {
        lua_settop(L, idx);
        return 1;
      }
      const char *hs = a->hosts[a->nhosts];
      if (!*hs || strpbrk(hs, "/ @?#")) {
        char shown[128];
        yz_fmt(shown, sizeof shown, "%s", hs);
        a->nhosts++;
        lua_settop(L, idx);
        return fail(k, sub,
                    "expected a host name or host:port (no scheme or "
                    "path), got '%s'",
                    shown);
      }
      a->nhosts++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

static const char *const top_keys[] = {
    "timezone",      "database",  "log_level", "plugin_path", "limits",
    "plugin_limits", "plugins",   "calendar",  "quiet_hours", "channels",
    "http_hosts",    "templates", NULL};

static int check_all(check_ctx *k, int env) {
  lua_State *L = k->L;
  yz_config *c = k->c;
  char hint[128];
  /* Unknown keys first, so a typo is reported as such. */
  lua_pushnil(L);
  while (lua_next(L, env)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return fail(k, "?", "top-level keys must be names");
    }
    const char *key = lua_tostring(L, -1);
    int known = strcmp(key, "env") == 0;
    for (int i = 0; top_keys[i] && !known; i++)
      known = strcmp(key, top_keys[i]) == 0;
    if (!known) {
      suggest(key, top_keys, hint, sizeof hint);
      char keycopy[256];
      yz_fmt(keycopy, sizeof keycopy, "%s", key);
      lua_pop(L, 1);
      return fail(k, keycopy, "unknown option%s", hint);
    }
  }
  if (lua_getfield(L, env, "timezone") != LUA_TNIL &&
      (want_string(k, -1, "timezone", &c->timezone) ||
       check_zone(k, c->timezone)))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "database") != LUA_TNIL &&
      want_string(k, -1, "database", &c->database))
    return 1;
  lua_pop(L, 1);
  if (c->database[0] == '\0')
    return fail(k, "database", "expected a file name, got an empty string");
  if (lua_getfield(L, env, "log_level") != LUA_TNIL) {
    if (want_string(k, -1, "log_level", &c->log_level)) return 1;
    if (strcmp(c->log_level, "debug") && strcmp(c->log_level, "info") &&
        strcmp(c->log_level, "warn") && strcmp(c->log_level, "error"))
      return fail(k, "log_level",
                  "expected debug, info, warn or error, "
                  "got '%s'",
                  c->log_level);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, env, "plugin_path") != LUA_TNIL) {
    int t = lua_gettop(L);
    if (!lua_istable(L, t))
      return fail(k, "plugin_path", "expected a list of folders, got %s",
                  type_of(L, t));
    lua_Integer n = luaL_len(L, t);
    c->plugin_path = yz_xcalloc((size_t)n + 1, sizeof *c->plugin_path);
    for (lua_Integer i = 1; i <= n; i++) {
      char sub[64];
      yz_fmt(sub, sizeof sub, "plugin_path[%lld]", (long long)i);
      lua_geti(L, t, i);
      if (want_string(k, -1, sub, &c->plugin_path[c->nplugin_path])) return 1;
      c->nplugin_path++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (lua_getfield(L, env, "limits") != LUA_TNIL &&
      check_limits(k, lua_gettop(L), "limits", &c->limits))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "plugins") != LUA_TNIL &&
      check_plugins(k, lua_gettop(L)))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "plugin_limits") != LUA_TNIL &&
      check_plugin_limits(k, lua_gettop(L)))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "calendar") != LUA_TNIL &&
      check_calendar(k, lua_gettop(L)))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "quiet_hours") != LUA_TNIL &&
      check_quiet(k, lua_gettop(L), "quiet_hours", &c->quiet, &c->quiet_from,
                  &c->quiet_to))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "templates") != LUA_TNIL &&
      check_templates(k, lua_gettop(L)))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "channels") != LUA_TNIL &&
      check_channels(k, lua_gettop(L)))
    return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, env, "http_hosts") != LUA_TNIL &&
      check_http_hosts(k, lua_gettop(L)))
    return 1;
  lua_pop(L, 1);
  return 0;
}

/* ------------------------------------------------------------ evaluation */

static int lua_env(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *v = getenv(name);
  if (v) {
    /* Remembered, so secrets can be told apart from values written in
    ** the file. */
    if (lua_getfield(L, LUA_REGISTRYINDEX, "yz.env_values") != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, LUA_REGISTRYINDEX, "yz.env_values");
    }
    lua_pushstring(L, v);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushstring(L, v);
    return 1;
  }
  if (!lua_isnoneornil(L, 2)) {
    lua_settop(L, 2);
    return 1;
  }
  return luaL_error(L, "env(\"%s\"): the environment variable %s is not set",
                    name, name);
}

yz_config *yz_config_defaults(void) {
  yz_config *c = yz_xcalloc(1, sizeof *c);
  c->path = yz_strdup("(defaults)");
  c->timezone = yz_strdup("Asia/Shanghai");
  c->database = yz_strdup("yizhan.db");
  c->log_level = yz_strdup("info");
  c->limits.memory = (size_t)DEFAULT_MEMORY_MB << 20;
  c->limits.instructions = DEFAULT_INSTRUCTIONS;
  c->limits.quarantine_after = DEFAULT_QUARANTINE;
  c->quiet = 1;
  c->quiet_from = 21 * 60 + 30;
  c->quiet_to = 7 * 60 + 30;
  return c;
}

static char *read_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    yz_fmt(err, errlen, "%s: cannot read the configuration: %s", path,
           strerror(errno));
    return NULL;
  }
  yz_buf b;
  yz_buf_init(&b, 4u << 20);
  char chunk[8192];
  size_t n;
  int ok = 1;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (yz_buf_add(&b, chunk, n) != YZ_OK) ok = 0;
  fclose(f);
  if (!ok) {
    yz_fmt(err, errlen, "%s: the configuration is larger than 4 MiB", path);
    yz_buf_free(&b);
    return NULL;
  }
  char *s = yz_strdup(yz_buf_str(&b));
  yz_buf_free(&b);
  return s;
}

int yz_config_load(const char *path, yz_config **out, char *err,
                   size_t errlen) {
  *out = NULL;
  yz_config *c = yz_config_defaults();
  free(c->path);
  c->path = yz_strdup(path);
  c->source = read_file(path, err, errlen);
  if (!c->source) {
    yz_config_free(c);
    return YZ_ERR;
  }
  c->sb = yz_sandbox_new("config", NULL, CONFIG_MEM, CONFIG_STEPS, 1);
  lua_State *L = c->sb->L;
  char chunk[600];
  yz_fmt(chunk, sizeof chunk, "@%s", path);
  if (luaL_loadbufferx(L, c->source, strlen(c->source), chunk, "t") != LUA_OK) {
    yz_fmt(err, errlen, "%s (expected Lua table syntax)", lua_tostring(L, -1));
    yz_config_free(c);
    return YZ_ERR;
  }
  lua_newtable(L); /* the globals the file assigns */
  lua_pushcfunction(L, lua_env);
  lua_setfield(L, -2, "env");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "yz.config");
  lua_setupvalue(L, -2, 1); /* _ENV of the chunk */
  if (yz_sandbox_call(c->sb, 0, 0, err, errlen) != LUA_OK) {
    /* Keep only the first line: a config has no useful traceback. */
    char *nl = strchr(err, '\n');
    if (nl) *nl = '\0';
    /* Errors raised outside the file's code (the CPU budget, the memory
    ** cap) carry no position: name the file at least. Lua shortens a long
    ** file name in a position to "...tail". */
    if (strncmp(err, path, strlen(path)) != 0 && strncmp(err, "...", 3) != 0) {
      char *why = yz_strdup(err);
      yz_fmt(err, errlen, "%s: %s", path, why);
      free(why);
    }
    yz_config_free(c);
    return YZ_ERR;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "yz.config");
  check_ctx k = {c, L, err, errlen};
  int bad = check_all(&k, lua_gettop(L));
  lua_settop(L, 0);
  if (bad) {
    yz_config_free(c);
    return YZ_ERR;
  }
  *out = c;
  return YZ_OK;
}

void yz_config_free(yz_config *c) {
  if (!c) return;
  yz_calendar_clear(&c->calendar);
  free(c->path);
  free(c->timezone);
  free(c->database);
  free(c->log_level);
  for (int i = 0; i < c->nplugin_path; i++) free(c->plugin_path[i]);
  free(c->plugin_path);
  for (int i = 0; i < c->nplugins; i++) free(c->plugins[i].name);
  free(c->plugins);
  for (int i = 0; i < c->nchannels; i++) {
    free(c->channels[i].rules.name);
    free(c->channels[i].rules.type);
    free(c->channels[i].url);
    free(c->channels[i].path);
    for (int j = 0; j < c->channels[i].ntpls; j++) {
      free(c->channels[i].tpls[j].name);
      free(c->channels[i].tpls[j].code);
      free_strs(c->channels[i].tpls[j].params, c->channels[i].tpls[j].nparams);
    }
    free(c->channels[i].tpls);
  }
  for (int i = 0; i < c->ntemplates; i++) {
    free(c->templates[i].name);
    free(c->templates[i].text);
    free_strs(c->templates[i].params, c->templates[i].nparams);
  }
  free(c->templates);
  free(c->channels);
  free(c->default_channel);
  for (int i = 0; i < c->nhttp; i++) {
    free(c->http[i].plugin);
    for (int j = 0; j < c->http[i].nhosts; j++) free(c->http[i].hosts[j]);
    free(c->http[i].hosts);
  }
  free(c->http);
  yz_sandbox_free(c->sb);
  free(c->source);
  free(c);
}

const yz_plugin_conf *yz_config_plugin(const yz_config *c, const char *name) {
  for (int i = 0; i < c->nplugins; i++)
    if (strcmp(c->plugins[i].name, name) == 0) return &c->plugins[i];
  return NULL;
}

yz_limits yz_config_limits_for(const yz_config *c, const char *name) {
  const yz_plugin_conf *pc = yz_config_plugin(c, name);
  return pc ? pc->limits : c->limits;
}

/* Copies section[name] of the file (a table) onto 'to', or pushes nil. */
static int push_entry(const yz_config *c, const char *section, const char *name,
                      lua_State *to, char *err, size_t errlen) {
  if (!c->sb) {
    lua_pushnil(to);
    return 0;
  }
  lua_State *L = c->sb->L;
  lua_getfield(L, LUA_REGISTRYINDEX, "yz.config");
  lua_getfield(L, -1, section);
  if (!lua_istable(L, -1) || lua_getfield(L, -1, name) != LUA_TTABLE) {
    lua_settop(L, 0);
    lua_pushnil(to);
    return 0;
  }
  int rc = yz_sandbox_copy(L, -1, to, err, errlen);
  lua_settop(L, 0);
  return rc;
}

int yz_config_push_options(const yz_config *c, const char *name, lua_State *to,
                           char *err, size_t errlen) {
  return push_entry(c, "plugins", name, to, err, errlen);
}

const yz_chan_conf *yz_config_channel(const yz_config *c, const char *name) {
  for (int i = 0; name && i < c->nchannels; i++)
    if (strcmp(c->channels[i].rules.name, name) == 0) return &c->channels[i];
  return NULL;
}

int yz_config_push_channel(const yz_config *c, const char *name, lua_State *to,
                           char *err, size_t errlen) {
  return push_entry(c, "channels", name, to, err, errlen);
}
