/*
** spec.h: schedule specs, one parser for Lua and the config, and the
** computation of the next time a spec fires.
**
**   cron       "0 9 1 * *", "0-59/15 8-17 * * mon-fri", "0 9 L * *" (5
**              fields: minute hour day-of-month month day-of-week; lists,
**              ranges, steps, month and weekday names, L = the last day of
**              the month)
**   macros     @yearly (@annually) @monthly @weekly @daily (@midnight)
**              @hourly
**   interval   "every 15m", "every 2h", "every 1d" (s m h d w), anchored to
**              local midnight so runs never drift
**   one-shot   "at 2026-12-01 09:00"
**   calendar   "on term.start 08:00", "3 days before term.end 09:00",
**              "1 day after term.mid", "on spring_festival -7 days 09:00"
**              (names: term.start term.mid term.end holiday.start
**              holiday.end spring_festival; the time defaults to 00:00)
**
** Cron follows classic (Vixie) cron: when both day-of-month and
** day-of-week are restricted (neither field starts with '*'), a day matches
** if EITHER matches. Times are local to the zone given to yz_spec_next. A
** local time that does not exist (a spring-forward gap) fires at the end of
** the gap; one that happens twice (fall-back) fires once, the first time.
*/
#ifndef YZ_SPEC_H
#define YZ_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "calendar.h"

typedef struct yz_spec yz_spec;

/* Parses 'text'. Calendar names need 'cal' (may be NULL otherwise); their
** dates are copied. On error returns nonzero, *out is NULL and err reads
** like: "0 9 32 * *": day-of-month 32 out of range 1-31 at column 5 */
int yz_spec_parse(const char *text, const yz_calendar *cal, yz_spec **out,
                  char *err, size_t errlen);
void yz_spec_free(yz_spec *s);
/* The spec as written. */
const char *yz_spec_text(const yz_spec *s);
/* The first time the spec fires strictly after 'after' (seconds since the
** epoch), computed in zone 'tz'. Returns YZ_OK, or YZ_ENOTFOUND when it
** never fires again (a past one-shot, dates beyond the calendar, Feb 30). */
int yz_spec_next(const yz_spec *s, const char *tz, int64_t after,
                 int64_t *next);

/* A name for the period a run at 't' stands for, for idempotency keys:
** "2026-10" for a monthly cron, "2026" yearly, "2026-W44" weekly,
** "2026-10-01" daily and for one-shots and calendar dates, the local second
** for intervals that are not whole minutes, else the local minute
** "2026-10-01T09:00". */
void yz_spec_period(const yz_spec *s, const char *tz, int64_t t, char *dst,
                    size_t n);

#endif
