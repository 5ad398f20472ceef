/*
** spec.c: parsing schedule specs and computing when they fire next (see
** spec.h).
**
** Divided into: errors; cron fields; the other forms (macros, every, at,
** calendar-relative); next-fire computation for each kind.
**
** Cron's next fire walks local calendar days, not minutes: a month that
** cannot match is skipped whole, and within a matching day only the hours
** and minutes of the spec are tried, so "0 0 29 2 *" costs a few dozen
** steps, not two million.
*/
#include "spec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "yz.h"

#define SEARCH_DAYS 146097 /* 400 years: every weekday/leap combination */

enum { K_CRON, K_EVERY, K_AT, K_CAL };

struct yz_spec {
  int kind;        /* K_* */
  char *text;      /* as written */
  uint64_t minute; /* cron: bit m for minute m (0-59) */
  uint32_t hour;   /* cron: bits 0-23 */
  uint32_t dom;    /* cron: bits 1-31 */
  int dom_last;    /* cron: 'L', the last day of the month */
  uint16_t month;  /* cron: bits 1-12 */
  uint8_t dow;     /* cron: bits 0-6, 0 = Sunday */
  int dom_star;    /* cron: day-of-month field starts with '*' */
  int dow_star;    /* cron: day-of-week field starts with '*' */
  int64_t every;   /* every: the interval in seconds */
  int64_t *days;   /* at: one day; calendar: the dates, sorted */
  int ndays;       /* entries in days */
  int offset;      /* calendar: days after (negative: before) each date */
  int tod;         /* at, calendar: minutes after local midnight */
};

/* ---------------------------------------------------------------- errors */

typedef struct parse_ctx {
  const char *text; /* the whole spec */
  char *err;        /* message buffer */
  size_t errlen;    /* its size */
} parse_ctx;

static int fail(parse_ctx *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "\"TEXT\": message" and returns 1. */
static int fail(parse_ctx *p, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  yz_fmt(p->err, p->errlen, "\"%s\": %s", p->text, msg);
  return 1;
}

static int column(parse_ctx *p, const char *at) {
  return (int)(at - p->text) + 1;
}

/* ----------------------------------------------------------- cron fields */

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

typedef struct field_def {
  const char *name;         /* for messages */
  int lo, hi;               /* allowed values */
  const char *const *names; /* names for lo.. (months, days), or NULL */
  int nnames;               /* entries in names */
} field_def;

static const field_def field_defs[5] = {{"minute", 0, 59, NULL, 0},
                                        {"hour", 0, 23, NULL, 0},
                                        {"day-of-month", 1, 31, NULL, 0},
                                        {"month", 1, 12, month_names, 12},
                                        {"day-of-week", 0, 7, day_names, 7}};

/* Reads a number or a name at *s (up to 'end'). Returns 0 and the value,
** or 1 with the error written. */
static int read_value(parse_ctx *p, const field_def *f, const char **s,
                      const char *end, int *value) {
  const char *at = *s;
  if (at < end && isdigit((unsigned char)*at)) {
    long v = 0;
    while (at < end && isdigit((unsigned char)*at) && v < 1000)
      v = v * 10 + (*at++ - '0');
    if (v < f->lo || v > f->hi)
      return fail(p, "%s %ld out of range %d-%d at column %d", f->name, v,
                  f->lo, f->hi, column(p, *s));
    *value = (int)v;
    *s = at;
    return 0;
  }
  for (int i = 0; f->names && i < f->nnames; i++)
    if (end - at >= 3 && strncasecmp(at, f->names[i], 3) == 0 &&
        (end - at == 3 || !isalpha((unsigned char)at[3]))) {
      *value = f->lo + i;
      *s = at + 3;
      return 0;
    }
  char got[32];
  int n = (int)(end - at > 20 ? 20 : end - at);
  yz_fmt(got, sizeof got, "%.*s", n, at);
  return fail(p, "%s: expected %s at column %d, got '%s'", f->name,
              f->names ? "a number or a name" : "a number", column(p, at),
              n ? got : "nothing");
}

/* Parses one cron field from start to end into bits. */
static int parse_field(parse_ctx *p, int fi, const char *start, const char *end,
                       uint64_t *bits, int *star, int *last) {
  const field_def *f = &field_defs[fi];
  *bits = 0;
  *star = *start == '*';
  const char *s = start;
  while (s < end) {
    const char *item = s;
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *iend = comma ? comma : end;
    int lo, hi, step = 1;
    if (*s == '*') {
      lo = f->lo;
      hi = fi == 4 ? 6 : f->hi;
      s++;
    } else if (fi == 2 && *s == 'L' && s + 1 == iend) {
      *last = 1;
      s = iend + (comma ? 1 : 0);
      if (comma && s == end)
        return fail(p, "empty list item at column %d", column(p, s));
      continue;
    } else {
      if (read_value(p, f, &s, iend, &lo)) return 1;
      hi = lo;
      if (s < iend && *s == '-') {
        s++;
        if (read_value(p, f, &s, iend, &hi)) return 1;
        if (hi < lo)
          return fail(p, "%s range %d-%d is reversed at column %d", f->name, lo,
                      hi, column(p, item));
      } else if (s < iend && *s == '/') {
        hi = fi == 4 ? 6 : f->hi; /* "5/15": from 5 to the end, every 15 */
      }
    }
    if (s < iend && *s == '/') {
      const char *at = ++s;
      long v = 0;
      while (s < iend && isdigit((unsigned char)*s) && v < 1000)
        v = v * 10 + (*s++ - '0');
      if (s == at || v < 1)
        return fail(p,
                    "%s: expected a step of at least 1 after '/' at "
                    "column %d",
                    f->name, column(p, at));
      step = (int)v;
    }
    if (s != iend)
      return fail(p, "%s: unexpected '%c' at column %d", f->name, *s,
                  column(p, s));
    for (int v = lo; v <= hi; v += step) *bits |= 1ULL << (fi == 4 ? v % 7 : v);
    if (lo > hi)
      return fail(p, "%s: '%.*s' matches no value at column %d", f->name,
                  (int)(iend - item), item, column(p, item));
    s = iend;
    if (comma) {
      s++;
      if (s == end || *s == ',')
        return fail(p, "%s: empty list item at column %d", f->name,
                    column(p, s));
    }
  }
  return 0;
}

/* A cron spec whose day-of-month can never occur in its months (Feb 30,
** Apr 31 only) is refused rather than never firing. */
static int check_possible(parse_ctx *p, const yz_spec *s) {
  if (s->dom_last || !s->dow_star || s->dom_star) return 0;
  static const int longest[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int m = 1; m <= 12; m++) {
    if (!(s->month >> m & 1)) continue;
    for (int d = 1; d <= longest[m - 1]; d++)
      if (s->dom >> d & 1) return 0;
  }
  return fail(p,
              "day-of-month never occurs in the months given (e.g. "
              "February has at most 29 days)");
}

static int parse_cron(parse_ctx *p, const char *text, yz_spec *s) {
  const char *f[6], *e[5];
  int n = 0;
  const char *c = text;
  while (*c) {
    while (*c == ' ' || *c == '\t') c++;
    if (!*c) break;
    if (n == 5) {
      n++;
      break;
    }
    f[n] = c;
    while (*c && *c != ' ' && *c != '\t') c++;
    e[n] = c;
    n++;
  }
  if (n != 5)
    return fail(p,
                "expected 5 fields (minute hour day-of-month month "
                "day-of-week), @daily and the like, 'every ...', 'at ...' "
                "or a calendar date such as 'on term.start 08:00'; got %s%d "
                "field%s",
                n > 5 ? "more than " : "", n > 5 ? 5 : n, n == 1 ? "" : "s");
  uint64_t bits[5];
  int star[5], last = 0;
  for (int i = 0; i < 5; i++)
    if (parse_field(p, i, f[i], e[i], &bits[i], &star[i], &last)) return 1;
  s->kind = K_CRON;
  s->minute = bits[0];
  s->hour = (uint32_t)bits[1];
  s->dom = (uint32_t)bits[2];
  s->dom_last = last;
  s->month = (uint16_t)bits[3];
  s->dow = (uint8_t)bits[4];
  s->dom_star = star[2];
  s->dow_star = star[4];
  return check_possible(p, s);
}

/* ------------------------------------------------------- the other forms */

static const struct {
  const char *name; /* the macro */
  const char *cron; /* what it stands for */
} macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
              {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
              {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
              {"@hourly", "0 * * * *"}};

/* Splits text into at most 8 space-separated words. */
static int words(const char *text, const char *w[8], size_t wl[8]) {
  int n = 0;
  for (const char *c = text; *c;) {
    while (*c == ' ' || *c == '\t') c++;
    if (!*c) break;
    if (n == 8) return 9;
    w[n] = c;
    while (*c && *c != ' ' && *c != '\t') c++;
    wl[n] = (size_t)(c - w[n]);
    n++;
  }
  return n;
}

static int word_is(const char *w, size_t wl, const char *s) {
  return wl == strlen(s) && strncasecmp(w, s, wl) == 0;
}

/* "HH:MM" into minutes after midnight, or -1. */
static int parse_time(const char *w, size_t wl) {
  int h = 0, m = 0;
  size_t i = 0;
  if (wl < 4 || wl > 5) return -1;
  for (; i < wl && isdigit((unsigned char)w[i]); i++) h = h * 10 + w[i] - '0';
  if (i == 0 || i > 2 || i + 3 != wl || w[i] != ':' ||
      !isdigit((unsigned char)w[i + 1]) || !isdigit((unsigned char)w[i + 2]))
    return -1;
  m = (w[i + 1] - '0') * 10 + (w[i + 2] - '0');
  return h < 24 && m < 60 ? h * 60 + m : -1;
}

static int parse_count(const char *w, size_t wl, long *out) {
  long v = 0;
  if (wl == 0 || wl > 6) return -1;
  for (size_t i = 0; i < wl; i++) {
    if (!isdigit((unsigned char)w[i])) return -1;
    v = v * 10 + w[i] - '0';
  }
  *out = v;
  return 0;
}

static int parse_every(parse_ctx *p, const char *const *w, const size_t *wl,
                       int n, yz_spec *s) {
  static const struct {
    const char *name;
    int64_t secs;
  } units[] = {{"s", 1},         {"sec", 1},       {"second", 1},
               {"seconds", 1},   {"m", 60},        {"min", 60},
               {"minute", 60},   {"minutes", 60},  {"h", 3600},
               {"hour", 3600},   {"hours", 3600},  {"d", 86400},
               {"day", 86400},   {"days", 86400},  {"w", 604800},
               {"week", 604800}, {"weeks", 604800}};
  const char *num = n >= 2 ? w[1] : NULL;
  size_t digits = 0;
  while (num && digits < wl[1] && isdigit((unsigned char)num[digits])) digits++;
  if (!num || digits == 0 || digits > 6)
    return fail(p, "expected a number after 'every' at column %d",
                column(p, num ? num : p->text + strlen(p->text)));
  const char *unit = num + digits;
  size_t ul = wl[1] - digits;
  if (ul == 0 && n == 3) {
    unit = w[2];
    ul = wl[2];
  } else if (n != 2) {
    return fail(p,
                "expected 'every N' and a unit, like 'every 15m' or "
                "'every 2 hours'");
  }
  int64_t secs = 0;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (word_is(unit, ul, units[i].name)) secs = units[i].secs;
  if (!secs)
    return fail(p,
                "unknown unit '%.*s' at column %d; expected s, m, h, d "
                "or w",
                (int)ul, unit, column(p, unit));
  long count = atol(num);
  if (count < 1) return fail(p, "the interval must be at least 1");
  s->kind = K_EVERY;
  s->every = secs * count;
  return 0;
}

static int parse_at(parse_ctx *p, const char *const *w, const size_t *wl, int n,
                    yz_spec *s) {
  char date[16];
  int64_t day;
  if (n < 2 || n > 3 || wl[1] != 10)
    return fail(p, "expected 'at YYYY-MM-DD HH:MM'");
  yz_fmt(date, sizeof date, "%.*s", (int)wl[1], w[1]);
  if (yz_parse_date(date, &day) != 0)
    return fail(p, "'%s' is not a date (expected YYYY-MM-DD) at column %d",
                date, column(p, w[1]));
  int tod = 0;
  if (n == 3 && (tod = parse_time(w[2], wl[2])) < 0)
    return fail(p, "'%.*s' is not a time (expected HH:MM) at column %d",
                (int)wl[2], w[2], column(p, w[2]));
  s->kind = K_AT;
  s->days = yz_xmalloc(sizeof *s->days);
  s->days[0] = day;
  s->ndays = 1;
  s->tod = tod;
  return 0;
}

static int calendar_name(parse_ctx *p, const char *w, size_t wl,
                         const yz_calendar *cal, yz_spec *s) {
  char name[64];
  yz_fmt(name, sizeof name, "%.*s", (int)wl, w);
  yz_calendar empty = {0};
  int n = yz_calendar_dates(cal ? cal : &empty, name, &s->days);
  if (n < 0)
    return fail(p,
                "unknown calendar date '%s' at column %d; expected "
                "term.start, term.mid, term.end, holiday.start, holiday.end "
                "or spring_festival",
                name, column(p, w));
  if (n == 0) {
    free(s->days);
    s->days = NULL;
    return fail(p,
                "the calendar has no %s dates (see 'calendar' in the "
                "config)",
                name);
  }
  s->ndays = n;
  return 0;
}

static int parse_calendar(parse_ctx *p, const char *const *w, const size_t *wl,
                          int n, const yz_calendar *cal, yz_spec *s) {
  int i;
  long count = 0;
  s->kind = K_CAL;
  if (word_is(w[0], wl[0], "on")) {
    /* on NAME [+N days | -N days] [HH:MM] */
    if (n < 2) return fail(p, "expected a calendar date after 'on'");
    if (calendar_name(p, w[1], wl[1], cal, s)) return 1;
    i = 2;
    if (i < n && (w[i][0] == '+' || w[i][0] == '-')) {
      int sign = w[i][0] == '-' ? -1 : 1;
      if (parse_count(w[i] + 1, wl[i] - 1, &count) != 0 || i + 1 >= n ||
          !(word_is(w[i + 1], wl[i + 1], "day") ||
            word_is(w[i + 1], wl[i + 1], "days")))
        return fail(p, "expected an offset like '-7 days' at column %d",
                    column(p, w[i]));
      s->offset = sign * (int)count;
      i += 2;
    }
  } else {
    /* N days before|after NAME [HH:MM] */
    if (n < 4 || parse_count(w[0], wl[0], &count) != 0 ||
        !(word_is(w[1], wl[1], "day") || word_is(w[1], wl[1], "days")) ||
        !(word_is(w[2], wl[2], "before") || word_is(w[2], wl[2], "after")))
      return fail(p, "expected 'N days before|after NAME [HH:MM]'");
    if (calendar_name(p, w[3], wl[3], cal, s)) return 1;
    s->offset = (word_is(w[2], wl[2], "before") ? -1 : 1) * (int)count;
    i = 4;
  }
  if (i < n) {
    if ((s->tod = parse_time(w[i], wl[i])) < 0)
      return fail(p, "'%.*s' is not a time (expected HH:MM) at column %d",
                  (int)wl[i], w[i], column(p, w[i]));
    i++;
  }
  if (i < n)
    return fail(p, "unexpected '%.*s' at column %d", (int)wl[i], w[i],
                column(p, w[i]));
  return 0;
}

int yz_spec_parse(const char *text, const yz_calendar *cal, yz_spec **out,
                  char *err, size_t errlen) {
  parse_ctx p = {text, err, errlen};
  *out = NULL;
  yz_spec *s = yz_xcalloc(1, sizeof *s);
  s->text = yz_strdup(text);
  const char *w[8];
  size_t wl[8];
  int n = words(text, w, wl);
  int bad;
  if (n == 0) {
    bad = fail(&p, "empty schedule");
  } else if (n > 8) {
    bad = fail(&p, "too many words for a schedule");
  } else if (w[0][0] == '@') {
    const char *cron = NULL;
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
      if (n == 1 && word_is(w[0], wl[0], macros[i].name)) cron = macros[i].cron;
    bad = cron ? parse_cron(&p, cron, s)
               : fail(&p,
                      "unknown macro; expected @yearly, @annually, "
                      "@monthly, @weekly, @daily, @midnight or @hourly");
  } else if (word_is(w[0], wl[0], "every")) {
    bad = parse_every(&p, w, wl, n, s);
  } else if (word_is(w[0], wl[0], "at")) {
    bad = parse_at(&p, w, wl, n, s);
  } else if (word_is(w[0], wl[0], "on") ||
             (n >= 3 && (word_is(w[2], wl[2], "before") ||
                         word_is(w[2], wl[2], "after")))) {
    bad = parse_calendar(&p, w, wl, n, cal, s);
  } else {
    bad = parse_cron(&p, text, s);
  }
  if (bad) {
    yz_spec_free(s);
    return YZ_EUSAGE;
  }
  *out = s;
  return YZ_OK;
}

void yz_spec_free(yz_spec *s) {
  if (!s) return;
  free(s->text);
  free(s->days);
  free(s);
}

const char *yz_spec_text(const yz_spec *s) {
  return s->text;
}

/* ------------------------------------------------------------ next fire */

static int day_matches(const yz_spec *s, int y, int m, int d, int wd) {
  int dom_ok =
      (s->dom >> d & 1) || (s->dom_last && d == yz_days_in_month(y, m));
  int dow_ok = s->dow >> wd & 1;
  if (s->dom_star || s->dow_star) return dom_ok && dow_ok;
  return dom_ok || dow_ok; /* classic cron: either restriction may match */
}

static int next_cron(const yz_spec *s, const char *tz, int64_t after,
                     int64_t *next) {
  yz_tm tm;
  yz_clock_local(tz, after, &tm);
  int64_t day = yz_days_from_civil(tm.year, tm.mon, tm.day);
  int64_t limit = day + SEARCH_DAYS;
  int from = tm.hour * 60 + tm.min + 1; /* strictly after: the next minute */
  while (day <= limit) {
    int y, m, d;
    yz_civil_from_days(day, &y, &m, &d);
    if (!(s->month >> m & 1)) { /* skip the rest of this month */
      day = yz_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
      from = 0;
      continue;
    }
    if (day_matches(s, y, m, d, yz_weekday(day)))
      for (int h = from / 60; h < 24; h++) {
        if (!(s->hour >> h & 1)) continue;
        for (int mi = h == from / 60 ? from % 60 : 0; mi < 60; mi++) {
          if (!(s->minute >> mi & 1)) continue;
          int64_t t = yz_clock_from_local(tz, day, h, mi, 0);
          if (t > after) { /* a repeated wall time can lie behind us */
            *next = t;
            return YZ_OK;
          }
        }
      }
    day++;
    from = 0;
  }
  return YZ_ENOTFOUND;
}

static int next_every(const yz_spec *s, const char *tz, int64_t after,
                      int64_t *next) {
  /* Anchored at local midnight of Monday 1970-01-05, so "every 1d" runs at
  ** midnight, "every 2h" at even hours, "every 1w" on Mondays. The next
  ** local wall time on that grid is converted like any other local time,
  ** so one that falls in a DST gap fires when the gap ends. */
  const int64_t anchor = 4 * 86400;
  int64_t local = after + yz_clock_utcoff(tz, after) - anchor;
  int64_t k = local >= 0 ? local / s->every : -((-local - 1) / s->every) - 1;
  for (int tries = 0; tries < 4; tries++) {
    int64_t wall = (k + 1 + tries) * s->every + anchor;
    int64_t days = wall >= 0 ? wall / 86400 : -((-wall + 86399) / 86400);
    int64_t secs = wall - days * 86400;
    int64_t t = yz_clock_from_local(tz, days, (int)(secs / 3600),
                                    (int)(secs / 60 % 60), (int)(secs % 60));
    if (t > after) {
      *next = t;
      return YZ_OK;
    }
  }
  *next = after + s->every; /* a repeated wall hour: elapsed time instead */
  return YZ_OK;
}

static int next_dates(const yz_spec *s, const char *tz, int64_t after,
                      int64_t *next) {
  for (int i = 0; i < s->ndays; i++) {
    int64_t t = yz_clock_from_local(tz, s->days[i] + s->offset, s->tod / 60,
                                    s->tod % 60, 0);
    if (t > after) {
      *next = t;
      return YZ_OK;
    }
  }
  return YZ_ENOTFOUND;
}

int yz_spec_next(const yz_spec *s, const char *tz, int64_t after,
                 int64_t *next) {
  switch (s->kind) {
    case K_CRON: return next_cron(s, tz, after, next);
    case K_EVERY: return next_every(s, tz, after, next);
    default: return next_dates(s, tz, after, next);
  }
}

/* ---------------------------------------------------------------- period */

static int one_bit(uint64_t bits) {
  return bits && !(bits & (bits - 1));
}

void yz_spec_period(const yz_spec *s, const char *tz, int64_t t, char *dst,
                    size_t n) {
  yz_tm tm;
  yz_clock_local(tz, t, &tm);
  int daily = 0, weekly = 0, monthly = 0, yearly = 0;
  if (s->kind == K_CRON && one_bit(s->minute) && one_bit(s->hour)) {
    int all_dom = s->dom_star && s->dom == 0xFFFFFFFEu && !s->dom_last;
    int all_dow = s->dow_star && s->dow == 0x7F;
    int all_months = s->month == 0x1FFE;
    int one_day = (one_bit(s->dom) && !s->dom_last) || (!s->dom && s->dom_last);
    if (all_dom && all_dow) daily = 1;
    if (all_dom && one_bit(s->dow) && all_months) weekly = 1;
    if (one_day && all_dow) monthly = all_months, yearly = one_bit(s->month);
  } else if (s->kind == K_EVERY && s->every == 86400) {
    daily = 1;
  } else if (s->kind == K_AT || s->kind == K_CAL) {
    daily = 1;
  }
  if (yearly) {
    snprintf(dst, n, "%04d", tm.year);
  } else if (monthly) {
    snprintf(dst, n, "%04d-%02d", tm.year, tm.mon);
  } else if (weekly) {
    /* ISO 8601 week: the week's Thursday decides the year. */
    int64_t day = yz_days_from_civil(tm.year, tm.mon, tm.day);
    int64_t thursday = day - ((tm.wday + 6) % 7) + 3;
    int y, m, d;
    yz_civil_from_days(thursday, &y, &m, &d);
    int64_t week = (thursday - yz_days_from_civil(y, 1, 1)) / 7 + 1;
    snprintf(dst, n, "%04d-W%02d", y, (int)week);
  } else if (daily) {
    snprintf(dst, n, "%04d-%02d-%02d", tm.year, tm.mon, tm.day);
  } else if (s->kind == K_EVERY && s->every % 60 != 0) {
    snprintf(dst, n, "%04d-%02d-%02dT%02d:%02d:%02d", tm.year, tm.mon, tm.day,
             tm.hour, tm.min, tm.sec);
  } else {
    snprintf(dst, n, "%04d-%02d-%02dT%02d:%02d", tm.year, tm.mon, tm.day,
             tm.hour, tm.min);
  }
}
