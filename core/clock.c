/*
** clock.c: real and simulated time (see clock.h).
*/
#define _DEFAULT_SOURCE /* tm_gmtoff */
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void yz_clock_init(yz_clock *c) {
  c->simulated = 0;
  c->sim_ms = 0;
}

void yz_clock_simulate(yz_clock *c, int64_t ms) {
  c->simulated = 1;
  c->sim_ms = ms;
}

void yz_clock_advance(yz_clock *c, int64_t ms) {
  if (c->simulated) c->sim_ms += ms;
}

int64_t yz_clock_now_ms(const yz_clock *c) {
  if (c && c->simulated) return c->sim_ms;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t yz_clock_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void yz_clock_iso_utc(int64_t ms, char *dst, unsigned n) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(dst, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(ms % 1000));
}

/* ------------------------------------------------------------ local time */

/* Civil-from-days and back after Howard Hinnant's public-domain
** algorithms: eras of 400 years, March-based years. */
int64_t yz_days_from_civil(int y, int m, int d) {
  int64_t yy = (int64_t)y - (m <= 2);
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void yz_civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
  int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (mm <= 2));
  *m = mm;
  *d = dd;
}

int yz_weekday(int64_t days) {
  int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
  return (int)(w < 0 ? w + 7 : w);
}

int yz_days_in_month(int y, int m) {
  static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2) return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28;
  return len[m - 1];
}

int yz_parse_date(const char *s, int64_t *days) {
  for (int i = 0; i < 10; i++) {
    int digit = s[i] >= '0' && s[i] <= '9';
    if ((i == 4 || i == 7) ? s[i] != '-' : !digit) return -1;
  }
  if (s[10] != '\0') return -1;
  int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
  if (m < 1 || m > 12 || d < 1 || d > yz_days_in_month(y, m)) return -1;
  *days = yz_days_from_civil(y, m, d);
  return 0;
}

int yz_clock_utcoff(const char *tz, int64_t t) {
  /* glibc reads the zone from TZ: this module owns that variable, and
  ** changes it only when asked about another zone. */
  const char *cur = getenv("TZ");
  if (!cur || strcmp(cur, tz) != 0) {
    setenv("TZ", tz, 1);
    tzset();
  }
  time_t tt = (time_t)t;
  struct tm tm;
  if (!localtime_r(&tt, &tm)) return 0;
  return (int)tm.tm_gmtoff;
}

void yz_clock_local(const char *tz, int64_t t, yz_tm *out) {
  int off = yz_clock_utcoff(tz, t);
  int64_t local = t + off;
  int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  int64_t secs = local - days * 86400;
  yz_civil_from_days(days, &out->year, &out->mon, &out->day);
  out->hour = (int)(secs / 3600);
  out->min = (int)(secs / 60 % 60);
  out->sec = (int)(secs % 60);
  out->wday = yz_weekday(days);
  out->utcoff = off;
}

int64_t yz_clock_from_local(const char *tz, int64_t days, int hour, int min,
                            int sec) {
  int64_t wall = days * 86400 + hour * 3600 + min * 60 + sec;
  /* The offsets in force a day either side bracket any transition. */
  int before = yz_clock_utcoff(tz, wall - 86400);
  int after = yz_clock_utcoff(tz, wall + 86400);
  int64_t a = wall - before, b = wall - after;
  int a_ok = yz_clock_utcoff(tz, a) == before;
  int b_ok = yz_clock_utcoff(tz, b) == after;
  if (a_ok && b_ok) return a < b ? a : b; /* an overlap: the earlier one */
  if (a_ok) return a;
  if (b_ok) return b;
  /* A gap: the wall time never happens. Find the transition, the first
  ** instant with the new offset, between the two candidates. */
  int64_t lo = a < b ? a : b, hi = a < b ? b : a;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (yz_clock_utcoff(tz, mid) == after)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

void yz_clock_iso_local(const char *tz, int64_t t, char *dst, unsigned n) {
  yz_tm tm;
  yz_clock_local(tz, t, &tm);
  int off = tm.utcoff < 0 ? -tm.utcoff : tm.utcoff;
  snprintf(dst, n, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.year, tm.mon,
           tm.day, tm.hour, tm.min, tm.sec, tm.utcoff < 0 ? '-' : '+',
           off / 3600, off / 60 % 60);
}

int yz_parse_local(const char *s, const char *tz, int64_t *t) {
  char date[11];
  int64_t day;
  if (strlen(s) != 16 || (s[10] != ' ' && s[10] != 'T') || s[13] != ':')
    return -1;
  memcpy(date, s, 10);
  date[10] = '\0';
  if (yz_parse_date(date, &day) != 0) return -1;
  for (int i = 11; i < 16; i++)
    if (i != 13 && (s[i] < '0' || s[i] > '9')) return -1;
  int h = (s[11] - '0') * 10 + s[12] - '0';
  int m = (s[14] - '0') * 10 + s[15] - '0';
  if (h > 23 || m > 59) return -1;
  *t = yz_clock_from_local(tz, day, h, m, 0);
  return 0;
}

int yz_clock_zone_exists(const char *tz) {
  if (!*tz || tz[0] == '/' || strstr(tz, "..")) return 0;
  char file[600];
  snprintf(file, sizeof file, "/usr/share/zoneinfo/%s", tz);
  struct stat st;
  return stat(file, &st) == 0 && S_ISREG(st.st_mode);
}
