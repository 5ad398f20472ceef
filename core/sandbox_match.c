/*
** sandbox_match.c: string.find, string.match, string.gmatch and string.gsub
** for plugin states, with Lua 5.4's pattern language and results, and one
** difference: the matcher's work is charged to the plugin's CPU budget.
**
** Lua's own matcher runs inside one C call, where the count hook never
** fires, and a pattern like ("a-"):rep(12) .. "b" against 20 a's backtracks
** for hours. Here every step of the backtracking matcher is counted, and a
** match that takes the plugin past its budget raises "CPU budget exceeded"
** like any other long computation.
**
** Divided into: the match state and budget; character classes and sets;
** the backtracking matcher; captures; the four library functions.
*/
#include <ctype.h>
#include <string.h>

#include "sandbox.h"
#include "yz.h"

#define MAX_CAPTURES 32  /* as LUA_MAXCAPTURES */
#define MAX_DEPTH 200    /* recursion depth of the matcher, as MAXCCALLS */
#define CHARGE_EVERY 256 /* matcher steps between budget checks */
#define ESC '%'
#define SPECIALS "^$*+?.([%-"

enum { CAP_UNFINISHED = -1, CAP_POSITION = -2 };

typedef struct match_state {
  const char *src_init; /* start of the subject */
  const char *src_end;  /* end of the subject ('\0' not included) */
  const char *p_end;    /* end of the pattern */
  lua_State *L;         /* for errors and the budget */
  int depth;            /* remaining recursion depth */
  int level;            /* captures opened so far */
  long steps;           /* steps not yet charged to the budget */
  struct {
    const char *init; /* where the capture starts */
    ptrdiff_t len;    /* its length, or CAP_UNFINISHED / CAP_POSITION */
  } capture[MAX_CAPTURES];
} match_state;

/* Counts one step of matching; every CHARGE_EVERY steps the work goes to
** the plugin's budget, which raises once it is spent. */
static void step(match_state *ms) {
  if (++ms->steps >= CHARGE_EVERY) {
    yz_sandbox_charge(ms->L, ms->steps);
    ms->steps = 0;
  }
}

static void prepare(match_state *ms, lua_State *L, const char *s, size_t ls,
                    const char *p, size_t lp) {
  ms->L = L;
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->steps = 0;
}

static void restart(match_state *ms) {
  ms->level = 0;
  ms->depth = MAX_DEPTH;
}

/* ------------------------------------------------------- classes, sets */

/* End of the single-character class that starts at p. */
static const char *class_end(match_state *ms, const char *p) {
  switch (*p++) {
    case ESC:
      if (p == ms->p_end)
        luaL_error(ms->L, "malformed pattern (ends with '%%')");
      return p + 1;
    case '[':
      if (*p == '^') p++;
      do { /* look for the closing ']'; a ']' right after '[' is literal */
        if (p == ms->p_end)
          luaL_error(ms->L, "malformed pattern (missing ']')");
        if (*(p++) == ESC && p < ms->p_end) p++; /* skip escapes */
      } while (*p != ']');
      return p + 1;
    default: return p;
  }
}

/* Does c belong to class %cl? An upper-case class letter is the
** complement; any other character stands for itself. */
static int in_class(int c, int cl) {
  int yes;
  switch (tolower(cl)) {
    case 'a': yes = isalpha(c); break;
    case 'c': yes = iscntrl(c); break;
    case 'd': yes = isdigit(c); break;
    case 'g': yes = isgraph(c); break;
    case 'l': yes = islower(c); break;
    case 'p': yes = ispunct(c); break;
    case 's': yes = isspace(c); break;
    case 'u': yes = isupper(c); break;
    case 'w': yes = isalnum(c); break;
    case 'x': yes = isxdigit(c); break;
    case 'z': yes = c == 0; break; /* deprecated in Lua, still accepted */
    default: return cl == c;
  }
  if (isupper(cl)) yes = !yes;
  return yes != 0;
}

/* Does c belong to the set [ ... ] from p to ec (ec points at ']')? */
static int in_set(int c, const char *p, const char *ec) {
  int want = 1;
  if (*(p + 1) == '^') {
    want = 0;
    p++;
  }
  while (++p < ec) {
    if (*p == ESC) {
      p++;
      if (in_class(c, (unsigned char)*p)) return want;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p) return want;
    } else if ((unsigned char)*p == c) {
      return want;
    }
  }
  return !want;
}

/* Does the character at s match the single class from p to ep? */
static int single(match_state *ms, const char *s, const char *p,
                  const char *ep) {
  if (s >= ms->src_end) return 0;
  int c = (unsigned char)*s;
  switch (*p) {
    case '.': return 1;
    case ESC: return in_class(c, (unsigned char)*(p + 1));
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
  }
}

/* ------------------------------------------------------------- matcher */

static const char *do_match(match_state *ms, const char *s, const char *p);

/* %bxy: a balanced run from x to its matching y. */
static const char *match_balance(match_state *ms, const char *s,
                                 const char *p) {
  if (p >= ms->p_end - 1)
    luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p) return NULL;
  int open = *p, close = *(p + 1), depth = 1;
  while (++s < ms->src_end) {
    step(ms);
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      depth++;
    }
  }
  return NULL;
}

/* x* and x+: the longest run first, then shorter ones. */
static const char *max_expand(match_state *ms, const char *s, const char *p,
                              const char *ep) {
  ptrdiff_t i = 0;
  while (single(ms, s + i, p, ep)) {
    step(ms);
    i++;
  }
  while (i >= 0) {
    step(ms);
    const char *res = do_match(ms, s + i, ep + 1);
    if (res) return res;
    i--;
  }
  return NULL;
}

/* x-: the shortest run first, then longer ones. */
static const char *min_expand(match_state *ms, const char *s, const char *p,
                              const char *ep) {
  for (;;) {
    step(ms);
    const char *res = do_match(ms, s, ep + 1);
    if (res) return res;
    if (!single(ms, s, p, ep)) return NULL;
    s++;
  }
}

static const char *start_capture(match_state *ms, const char *s, const char *p,
                                 ptrdiff_t what) {
  if (ms->level >= MAX_CAPTURES) luaL_error(ms->L, "too many captures");
  ms->capture[ms->level].init = s;
  ms->capture[ms->level].len = what;
  ms->level++;
  const char *res = do_match(ms, s, p);
  if (!res) ms->level--; /* undo the capture */
  return res;
}

static int open_capture(match_state *ms) {
  for (int l = ms->level - 1; l >= 0; l--)
    if (ms->capture[l].len == CAP_UNFINISHED) return l;
  return luaL_error(ms->L, "invalid pattern capture");
}

static const char *end_capture(match_state *ms, const char *s, const char *p) {
  int l = open_capture(ms);
  ms->capture[l].len = s - ms->capture[l].init;
  const char *res = do_match(ms, s, p);
  if (!res) ms->capture[l].len = CAP_UNFINISHED;
  return res;
}

/* %1 .. %9: the text of an earlier capture again. */
static const char *match_back_reference(match_state *ms, const char *s,
                                        int digit) {
  int l = digit - '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
    luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  size_t len = (size_t)ms->capture[l].len;
  if ((size_t)(ms->src_end - s) >= len &&
      memcmp(ms->capture[l].init, s, len) == 0)
    return s + len;
  return NULL;
}

/* Matches pattern p at subject position s; returns the end of the match
** or NULL. Tail positions loop instead of recursing. */
static const char *do_match(match_state *ms, const char *s, const char *p) {
  if (ms->depth-- == 0) luaL_error(ms->L, "pattern too complex");
  for (;;) {
    step(ms);
    if (p == ms->p_end) break;
    if (*p == '(') {
      s = p + 1 < ms->p_end && *(p + 1) == ')'
              ? start_capture(ms, s, p + 2, CAP_POSITION)
              : start_capture(ms, s, p + 1, CAP_UNFINISHED);
      break;
    }
    if (*p == ')') {
      s = end_capture(ms, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == ms->p_end) {
      if (s != ms->src_end) s = NULL;
      break;
    }
    if (*p == ESC && p + 1 < ms->p_end) {
      int next = (unsigned char)*(p + 1);
      if (next == 'b') {
        s = match_balance(ms, s, p + 2);
        if (s) {
          p += 4;
          continue;
        }
        break;
      }
      if (next == 'f') {
        p += 2;
        if (p >= ms->p_end || *p != '[')
          luaL_error(ms->L, "missing '[' after '%%f' in pattern");
        const char *ep = class_end(ms, p);
        int prev = s == ms->src_init ? '\0' : (unsigned char)*(s - 1);
        int cur = s < ms->src_end ? (unsigned char)*s : '\0';
        if (!in_set(prev, p, ep - 1) && in_set(cur, p, ep - 1)) {
          p = ep;
          continue;
        }
        s = NULL;
        break;
      }
      if (isdigit(next)) {
        s = match_back_reference(ms, s, next);
        if (s) {
          p += 2;
          continue;
        }
        break;
      }
    }
    /* A single-character class, maybe with a quantifier. */
    const char *ep = class_end(ms, p);
    int q = ep < ms->p_end ? *ep : '\0';
    if (!single(ms, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') { /* may match zero times */
        p = ep + 1;
        continue;
      }
      s = NULL;
      break;
    }
    if (q == '?') {
      const char *res = do_match(ms, s + 1, ep + 1);
      if (res) {
        s = res;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (q == '+') {
      s = max_expand(ms, s + 1, p, ep);
      break;
    }
    if (q == '*') {
      s = max_expand(ms, s, p, ep);
      break;
    }
    if (q == '-') {
      s = min_expand(ms, s, p, ep);
      break;
    }
    s++;
    p = ep;
  }
  ms->depth++;
  return s;
}

/* ------------------------------------------------------------ captures */

/* Pushes capture i; with no captures, capture 0 is the whole match s..e. */
static void push_capture(match_state *ms, int i, const char *s, const char *e) {
  if (i >= ms->level) {
    if (i != 0) luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(ms->L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t len = ms->capture[i].len;
  if (len == CAP_UNFINISHED) luaL_error(ms->L, "unfinished capture");
  if (len == CAP_POSITION)
    lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
  else
    lua_pushlstring(ms->L, ms->capture[i].init, (size_t)len);
}

/* Pushes every capture (or the whole match when there are none and s is
** given); returns how many. */
static int push_captures(match_state *ms, const char *s, const char *e) {
  int n = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++) push_capture(ms, i, s, e);
  return n;
}

/* ----------------------------------------------------------- functions */

/* Lua's relative start position: negative counts from the end. */
static size_t start_at(lua_Integer pos, size_t len) {
  if (pos > 0) return (size_t)pos;
  if (pos == 0) return 1;
  if (pos < -(lua_Integer)len) return 1;
  return len + (size_t)pos + 1;
}

static int has_specials(const char *p, size_t lp) {
  size_t upto = 0;
  do {
    if (strpbrk(p + upto, SPECIALS)) return 1;
    upto += strlen(p + upto) + 1; /* an embedded zero ends strpbrk early */
  } while (upto <= lp);
  return 0;
}

static const char *find_plain(const char *s, size_t ls, const char *p,
                              size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return NULL;
  for (const char *end = s + (ls - lp); s <= end; s++) {
    const char *hit = memchr(s, *p, (size_t)(end - s) + 1);
    if (!hit) return NULL;
    if (memcmp(hit + 1, p + 1, lp - 1) == 0) return hit;
    s = hit;
  }
  return NULL;
}

static int find_or_match(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    /* Plain search is linear: charge it by length. */
    yz_sandbox_charge(L, (long long)(ls - init) / 16);
    const char *hit = find_plain(s + init, ls - init, p, lp);
    if (hit) {
      lua_pushinteger(L, (hit - s) + 1);
      lua_pushinteger(L, (lua_Integer)((hit - s) + lp));
      return 2;
    }
    luaL_pushfail(L);
    return 1;
  }
  match_state ms;
  const char *s1 = s + init;
  int anchor = *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  prepare(&ms, L, s, ls, p, lp);
  do {
    restart(&ms);
    const char *e = do_match(&ms, s1, p);
    if (e) {
      if (find) {
        lua_pushinteger(L, (s1 - s) + 1);
        lua_pushinteger(L, e - s);
        return push_captures(&ms, NULL, NULL) + 2;
      }
      return push_captures(&ms, s1, e);
    }
  } while (s1++ < ms.src_end && !anchor);
  luaL_pushfail(L);
  return 1;
}

static int m_find(lua_State *L) {
  return find_or_match(L, 1);
}
static int m_match(lua_State *L) {
  return find_or_match(L, 0);
}

typedef struct gmatch_state {
  const char *src;       /* where the next search starts */
  const char *p;         /* the pattern */
  const char *lastmatch; /* end of the last match, to skip empty repeats */
  match_state ms;        /* the matcher */
} gmatch_state;

static int gmatch_next(lua_State *L) {
  gmatch_state *gm = lua_touserdata(L, lua_upvalueindex(3));
  gm->ms.L = L; /* the iterator may run in another coroutine */
  for (const char *src = gm->src; src <= gm->ms.src_end; src++) {
    restart(&gm->ms);
    const char *e = do_match(&gm->ms, src, gm->p);
    if (e && e != gm->lastmatch) {
      gm->src = gm->lastmatch = e;
      return push_captures(&gm->ms, src, e);
    }
  }
  return 0;
}

static int m_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2); /* the strings stay alive as upvalues */
  gmatch_state *gm = lua_newuserdatauv(L, sizeof *gm, 0);
  if (init > ls) init = ls + 1; /* start past the end: no matches */
  prepare(&gm->ms, L, s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->lastmatch = NULL;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* Appends the replacement string with %0-%9 and %% expanded. */
static void add_template(match_state *ms, luaL_Buffer *b, const char *s,
                         const char *e) {
  lua_State *L = ms->L;
  size_t l;
  const char *news = lua_tolstring(L, 3, &l);
  const char *end = news + l;
  for (const char *p = news; p < end; p++) {
    if (*p != ESC) {
      luaL_addchar(b, *p);
      continue;
    }
    p++;
    if (p < end && *p == ESC) {
      luaL_addchar(b, ESC);
    } else if (p < end && isdigit((unsigned char)*p)) {
      if (*p == '0')
        luaL_addlstring(b, s, (size_t)(e - s));
      else {
        push_capture(ms, *p - '1', s, e);
        luaL_tolstring(L, -1, NULL); /* positions become text */
        lua_remove(L, -2);
        luaL_addvalue(b);
      }
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", ESC);
    }
  }
}

/* Appends the replacement for the match s..e: a template, a table lookup
** or a function call; false or nil keeps the original text. */
static void add_value(match_state *ms, luaL_Buffer *b, const char *s,
                      const char *e, int tr) {
  lua_State *L = ms->L;
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(ms, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_template(ms, b, s, e);
    return;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return;
  }
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
}

static int m_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *lastmatch = NULL;
  int tr = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  int anchor = *p == '^';
  lua_Integer n = 0;
  luaL_argexpected(L,
                   tr == LUA_TNUMBER || tr == LUA_TSTRING ||
                       tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                   3, "string/function/table");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchor) {
    p++;
    lp--;
  }
  match_state ms;
  prepare(&ms, L, src, ls, p, lp);
  while (n < max_n) {
    restart(&ms);
    const char *e = do_match(&ms, src, p);
    if (e && e != lastmatch) {
      n++;
      add_value(&ms, &b, src, e, tr);
      src = lastmatch = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
  luaL_pushresult(&b);
  lua_pushinteger(L, n);
  return 2;
}

void yz_sandbox_open_match(lua_State *L) {
  static const luaL_Reg funcs[] = {{"find", m_find},
                                   {"match", m_match},
                                   {"gmatch", m_gmatch},
                                   {"gsub", m_gsub},
                                   {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}
