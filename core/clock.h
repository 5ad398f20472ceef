/*
** clock.h: the one source of time for the core. Real time by default; a
** simulated clock can be set and advanced (for simulate and tests). Nothing
** else in the core reads the system time.
*/
#ifndef YZ_CLOCK_H
#define YZ_CLOCK_H

#include <stdint.h>

typedef struct yz_clock {
  int simulated;  /* nonzero: 'sim_ms' is the time, it moves only when told */
  int64_t sim_ms; /* simulated wall time, ms since the Unix epoch */
} yz_clock;

/* Starts a real-time clock. */
void yz_clock_init(yz_clock *c);
/* Switches to simulated time, starting at 'ms'. */
void yz_clock_simulate(yz_clock *c, int64_t ms);
/* Moves simulated time forward; no effect on a real clock. */
void yz_clock_advance(yz_clock *c, int64_t ms);
/* Wall time in ms since the epoch. */
int64_t yz_clock_now_ms(const yz_clock *c);
/* Monotonic ms for measuring durations and timeouts (always real). */
int64_t yz_clock_mono_ms(void);
/* Formats 'ms' as UTC ISO 8601 with milliseconds into dst (>= 25 bytes). */
void yz_clock_iso_utc(int64_t ms, char *dst, unsigned n);

/* ------------------------------------------------------------ local time
** Civil dates are counted in days since 1970-01-01 (proleptic Gregorian);
** local time in a zone comes from the system tz database. A zone is an IANA
** name ("Asia/Shanghai"); the caller checks it exists (config does). */

typedef struct yz_tm {
  int year;   /* e.g. 2026 */
  int mon;    /* 1-12 */
  int day;    /* 1-31 */
  int hour;   /* 0-23 */
  int min;    /* 0-59 */
  int sec;    /* 0-59 */
  int wday;   /* 0 = Sunday .. 6 = Saturday */
  int utcoff; /* seconds east of UTC in force at that instant */
} yz_tm;

/* Days since 1970-01-01 of a civil date (any y/m/d in range). */
int64_t yz_days_from_civil(int y, int m, int d);
/* The civil date of a day number. */
void yz_civil_from_days(int64_t days, int *y, int *m, int *d);
/* 0 = Sunday .. 6 = Saturday. */
int yz_weekday(int64_t days);
/* Days in a month of a year (28-31). */
int yz_days_in_month(int y, int m);
/* Parses "YYYY-MM-DD" exactly into a day number; returns 0 on success,
** -1 for anything else (including impossible dates like 2026-02-30). */
int yz_parse_date(const char *s, int64_t *days);

/* Parses "YYYY-MM-DD HH:MM" (or with 'T') as a local time in 'tz' into an
** instant; returns 0, or -1 for anything else. */
int yz_parse_local(const char *s, const char *tz, int64_t *t);
/* Whether 'tz' names a zone in the system tz database. */
int yz_clock_zone_exists(const char *tz);
/* The UTC offset (seconds east) of 'tz' at instant t (seconds). */
int yz_clock_utcoff(const char *tz, int64_t t);
/* Local time in 'tz' of instant t. */
void yz_clock_local(const char *tz, int64_t t, yz_tm *out);
/* The instant of a local wall time in 'tz'. In a DST gap (a time that does
** not exist that day) it is the first instant after the gap; in an overlap
** (a time that happens twice) it is the earlier one. */
int64_t yz_clock_from_local(const char *tz, int64_t days, int hour, int min,
                            int sec);
/* Formats t as "YYYY-MM-DDTHH:MM:SS+hh:mm" in 'tz' into dst (>= 26 bytes). */
void yz_clock_iso_local(const char *tz, int64_t t, char *dst, unsigned n);

#endif
