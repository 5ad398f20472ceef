/*
** log.h: logfmt lines on stderr (or another stream), one per event:
**   ts=2026-11-28T10:00:00.000Z level=info plugin=registry msg="..." k=v
** Values with spaces, quotes or '=' are quoted and escaped; in keys such
** bytes become '_'.
*/
#ifndef YZ_LOG_H
#define YZ_LOG_H

#include <stdio.h>

#include "clock.h"

enum { YZ_LOG_DEBUG = 0, YZ_LOG_INFO, YZ_LOG_WARN, YZ_LOG_ERROR, YZ_LOG_OFF };

typedef struct yz_log {
  FILE *out;             /* where lines go (not owned) */
  int level;             /* lines below this level are dropped */
  const yz_clock *clock; /* timestamps (not owned; NULL: real time) */
} yz_log;

void yz_log_init(yz_log *lg, FILE *out, int level, const yz_clock *clock);
/* Parses "debug"/"info"/"warn"/"error"/"off"; returns -1 for anything else. */
int yz_log_level_parse(const char *s);
const char *yz_log_level_name(int level);
/* Writes one line. 'plugin' may be NULL (the core). 'kv' holds nkv
** key/value string pairs (kv[2i] key, kv[2i+1] value) appended as fields. */
void yz_log_write(const yz_log *lg, int level, const char *plugin,
                  const char *msg, const char *const *kv, int nkv);
/* printf-style convenience without extra fields. */
void yz_logf(const yz_log *lg, int level, const char *plugin, const char *fmt,
             ...) __attribute__((format(printf, 4, 5)));

#endif
