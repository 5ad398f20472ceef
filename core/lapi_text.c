/*
** lapi_text.c: host.text, small text helpers every policy needs and none
** should write again.
**
**   host.text.mask_name(name) -> "张*明"       -- a minor's name in an SMS
**   host.text.date(s [, {month = true}]) -> "YYYY-MM-DD" | nil, err
**   host.text.render(tpl, params) -> text    -- {{name}} placeholders
**   host.text.width(s) -> display columns    -- CJK and full-width count 2
**
** Dates come in the forms county spreadsheets hold: 2015-03-07, 2015-3-7,
** 2015/3/7, 2015.3.7, 20150307 and 2015年3月7日, each checked against the
** calendar (no 30 February).
*/
#include <lauxlib.h>
#include <string.h>

#include "lapi.h"

/* Length of the UTF-8 sequence starting with byte c (1 for a stray byte, so
** walking never stalls). */
static size_t seq_len(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC2) return 2;
  return 1;
}

/* Decodes the code point at s[i] (n bytes left), or -1. */
static long decode(const unsigned char *s, size_t n) {
  size_t k = seq_len(s[0]);
  if (k > n) return -1;
  if (k == 1) return s[0] < 0x80 ? s[0] : -1;
  long cp = s[0] & (0x3F >> (k - 1));
  for (size_t j = 1; j < k; j++) {
    if ((s[j] & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (s[j] & 0x3F);
  }
  return cp;
}

static int t_mask_name(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  /* Trim ASCII spaces: a name from a form often carries them. */
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  /* Where the second and the last characters start, and how many. */
  size_t second = n, last = 0, chars = 0;
  for (size_t i = 0; i < n; i += seq_len((unsigned char)s[i])) {
    if (chars == 1) second = i;
    last = i;
    chars++;
  }
  if (chars <= 1) {
    lua_pushlstring(L, s, n);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, s, second);
  size_t stars = chars == 2 ? 1 : chars - 2;
  for (size_t i = 0; i < stars; i++) luaL_addchar(&b, '*');
  if (chars > 2) luaL_addlstring(&b, s + last, n - last);
  luaL_pushresult(&b);
  return 1;
}

/* Reads 1..max digits at *p; returns the value or -1. */
static int digits(const char **p, int max) {
  int v = 0, k = 0;
  while (k < max && **p >= '0' && **p <= '9') v = v * 10 + (*(*p)++ - '0'), k++;
  return k ? v : -1;
}

static int skip(const char **p, const char *word) {
  size_t k = strlen(word);
  if (strncmp(*p, word, k) != 0) return 0;
  *p += k;
  return 1;
}

static int days_in(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return d[m - 1];
}

static int t_date(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int month_ok = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "month");
    month_ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  char buf[64];
  while (n && (*s == ' ' || *s == '\t')) s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  if (n == 0 || n >= sizeof buf || memchr(s, 0, n)) goto bad;
  memcpy(buf, s, n);
  buf[n] = 0;
  const char *p = buf;
  int y, m, d = 1, have_day = 1;
  if (n == 8 && strspn(buf, "0123456789") == 8) {
    y = digits(&p, 4), m = digits(&p, 2), d = digits(&p, 2);
  } else {
    y = digits(&p, 4);
    if (p - buf != 4) goto bad;
    int cjk = 0;
    char sep = *p;
    if (skip(&p, "年"))
      cjk = 1;
    else if (sep == '-' || sep == '/' || sep == '.')
      p++;
    else
      goto bad;
    m = digits(&p, 2);
    if (m < 0) goto bad;
    if (cjk ? !skip(&p, "月") : (*p != 0 && *p++ != sep)) goto bad;
    if (*p == 0 && !cjk && p[-1] == sep) goto bad; /* "2015-03-" */
    if (*p == 0) {
      have_day = 0;
    } else {
      d = digits(&p, 2);
      if (d < 0) goto bad;
      if (cjk) {
        if (!skip(&p, "日")) skip(&p, "号");
      }
      if (*p) goto bad;
    }
  }
  if (!have_day && !month_ok) goto bad;
  if (y < 1900 || y > 2199 || m < 1 || m > 12) goto nodate;
  if (d < 1 || d > days_in(y, m)) goto nodate;
  lua_pushfstring(L, "%d-%s%d-%s%d", y, m < 10 ? "0" : "", m, d < 10 ? "0" : "",
                  d);
  return 1;
nodate:
  lua_pushnil(L);
  lua_pushstring(L, "no such date");
  return 2;
bad:
  lua_pushnil(L);
  lua_pushstring(L, "not a date");
  return 2;
}

int yz_lapi_text_render(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *end = s + n;
  while (s < end) {
    const char *open = strstr(s, "{{");
    if (!open || open >= end) {
      luaL_addlstring(&b, s, (size_t)(end - s));
      break;
    }
    const char *close = strstr(open + 2, "}}");
    if (!close) {
      luaL_addlstring(&b, s, (size_t)(end - s));
      break;
    }
    luaL_addlstring(&b, s, (size_t)(open - s));
    lua_pushlstring(L, open + 2, (size_t)(close - open - 2));
    int t = lua_rawget(L, 2);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
      luaL_addvalue(&b); /* the value is on top, above the buffer's box */
    } else {
      lua_pop(L, 1);
      return luaL_error(
          L, "template: no value for {{%s}}",
          lua_pushlstring(L, open + 2, (size_t)(close - open - 2)));
    }
    s = close + 2;
  }
  luaL_pushresult(&b);
  return 1;
}

/* East Asian wide and full-width ranges (the common ones: CJK, Hangul,
** kana, full-width forms, CJK punctuation). */
static int wide(long cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
         (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
         (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
         (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
         (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
         (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

/* Combining marks and zero-width characters take no column. */
static int zero_width(long cp) {
  return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF;
}

static int t_width(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  lua_Integer w = 0;
  for (size_t i = 0; i < n;) {
    size_t k = seq_len(s[i]);
    long cp = decode(s + i, n - i);
    if (k > n - i) k = n - i;
    if (cp < 0)
      w += 1;
    else if (cp >= 0x20 && !(cp >= 0x7F && cp < 0xA0) && !zero_width(cp))
      w += wide(cp) ? 2 : 1;
    i += k;
  }
  lua_pushinteger(L, w);
  return 1;
}

int luaopen_yz_text(lua_State *L) {
  static const luaL_Reg funcs[] = {{"mask_name", t_mask_name},
                                   {"date", t_date},
                                   {"render", yz_lapi_text_render},
                                   {"width", t_width},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
