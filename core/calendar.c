/*
** calendar.c: the school calendar (see calendar.h).
*/
#include "calendar.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "yz.h"

const char *const yz_calendar_names[] = {
    "term.start",  "term.mid",        "term.end", "holiday.start",
    "holiday.end", "spring_festival", NULL};

void yz_calendar_clear(yz_calendar *c) {
  for (int i = 0; i < c->nterms; i++) free(c->terms[i].name);
  for (int i = 0; i < c->nholidays; i++) free(c->holidays[i].name);
  free(c->terms);
  free(c->holidays);
  free(c->spring);
  memset(c, 0, sizeof *c);
}

static int cmp_day(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int yz_calendar_dates(const yz_calendar *c, const char *name, int64_t **out) {
  int n = 0;
  *out = NULL;
  if (strncmp(name, "term.", 5) == 0) {
    const char *what = name + 5;
    if (strcmp(what, "start") && strcmp(what, "mid") && strcmp(what, "end"))
      return -1;
    *out = yz_xcalloc((size_t)c->nterms + 1, sizeof **out);
    for (int i = 0; i < c->nterms; i++)
      (*out)[n++] = what[0] == 's'   ? c->terms[i].start
                    : what[0] == 'm' ? c->terms[i].mid
                                     : c->terms[i].end;
  } else if (strcmp(name, "holiday.start") == 0 ||
             strcmp(name, "holiday.end") == 0) {
    int start = name[8] == 's';
    *out = yz_xcalloc((size_t)c->nholidays + 1, sizeof **out);
    for (int i = 0; i < c->nholidays; i++)
      (*out)[n++] = start ? c->holidays[i].from : c->holidays[i].to;
  } else if (strcmp(name, "spring_festival") == 0) {
    *out = yz_xcalloc((size_t)c->nspring + 1, sizeof **out);
    for (int i = 0; i < c->nspring; i++) (*out)[n++] = c->spring[i];
  } else {
    return -1;
  }
  qsort(*out, (size_t)n, sizeof **out, cmp_day);
  return n;
}

const yz_term *yz_calendar_term(const yz_calendar *c, int64_t day) {
  for (int i = 0; i < c->nterms; i++)
    if (day >= c->terms[i].start && day <= c->terms[i].end) return &c->terms[i];
  return NULL;
}

const yz_holiday *yz_calendar_holiday(const yz_calendar *c, int64_t day) {
  for (int i = 0; i < c->nholidays; i++)
    if (day >= c->holidays[i].from && day <= c->holidays[i].to)
      return &c->holidays[i];
  return NULL;
}

int yz_calendar_is_school_day(const yz_calendar *c, int64_t day) {
  int wd = yz_weekday(day);
  return wd != 0 && wd != 6 && yz_calendar_term(c, day) &&
         !yz_calendar_holiday(c, day);
}

int yz_calendar_next_school_day(const yz_calendar *c, int64_t day,
                                int64_t *out) {
  int64_t last = 0;
  for (int i = 0; i < c->nterms; i++)
    if (c->terms[i].end > last) last = c->terms[i].end;
  for (; day <= last; day++)
    if (yz_calendar_is_school_day(c, day)) {
      *out = day;
      return 0;
    }
  return -1;
}
