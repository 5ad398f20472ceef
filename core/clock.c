/*
** clock.c: real and simulated time (see clock.h).
*/
#include "clock.h"

#include <stdio.h>
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
