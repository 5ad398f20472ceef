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

#endif
