/*
** calendar.h: the school calendar from the configuration: terms with their
** start, mid-term and end dates, holidays, and the Spring Festival of each
** year. Dates are day numbers (days since 1970-01-01, see clock.h).
**
** School days are Monday to Friday inside a term (start to end, both
** included) and outside every holiday.
*/
#ifndef YZ_CALENDAR_H
#define YZ_CALENDAR_H

#include <stdint.h>

typedef struct yz_term {
  char *name;    /* e.g. "2026秋" */
  int64_t start; /* first day */
  int64_t mid;   /* mid-term day */
  int64_t end;   /* last day */
} yz_term;

typedef struct yz_holiday {
  char *name;   /* e.g. "国庆" */
  int64_t from; /* first day */
  int64_t to;   /* last day */
} yz_holiday;

typedef struct yz_calendar {
  yz_term *terms;       /* sorted by start, not overlapping */
  int nterms;           /* entries in terms */
  yz_holiday *holidays; /* sorted by from */
  int nholidays;        /* entries in holidays */
  int64_t *spring;      /* Spring Festival days, sorted */
  int nspring;          /* entries in spring */
} yz_calendar;

/* The names a schedule can be relative to, NULL-terminated. */
extern const char *const yz_calendar_names[];

/* Frees the contents (not the struct itself); accepts an empty calendar. */
void yz_calendar_clear(yz_calendar *c);
/* The dates of a name ("term.start", "term.mid", "term.end",
** "holiday.start", "holiday.end", "spring_festival"), sorted, in a malloc'd
** array. Returns the count, or -1 for a name that is not one of those. */
int yz_calendar_dates(const yz_calendar *c, const char *name, int64_t **out);
/* The term a day falls in, or NULL. */
const yz_term *yz_calendar_term(const yz_calendar *c, int64_t day);
/* The holiday a day falls in, or NULL. */
const yz_holiday *yz_calendar_holiday(const yz_calendar *c, int64_t day);
/* Whether a day is a school day. */
int yz_calendar_is_school_day(const yz_calendar *c, int64_t day);
/* The first school day on or after 'day'; returns 0 and sets *out, or -1
** when no term lies ahead. */
int yz_calendar_next_school_day(const yz_calendar *c, int64_t day,
                                int64_t *out);

#endif
