/*
** log.c: logfmt output (see log.h). A line is built in a capped buffer and
** written with one fwrite so lines from one process never interleave.
*/
#include "log.h"

#include <stdarg.h>
#include <string.h>

#include "buf.h"
#include "yz.h"

#define LOG_LINE_MAX (64 * 1024) /* a longer line is truncated */

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void yz_log_init(yz_log *lg, FILE *out, int level, const yz_clock *clock) {
  lg->out = out;
  lg->level = level;
  lg->clock = clock;
}

int yz_log_level_parse(const char *s) {
  for (int i = 0; i <= YZ_LOG_OFF; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

const char *yz_log_level_name(int level) {
  return level >= 0 && level <= YZ_LOG_OFF ? level_names[level] : "?";
}

/* Appends a logfmt value, quoting it when it holds anything but plain
** printable non-space bytes. UTF-8 passes through unchanged. */
static void add_value(yz_buf *b, const char *v) {
  int quote = *v == '\0';
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\') quote = 1;
  if (!quote) {
    yz_buf_adds(b, v);
    return;
  }
  yz_buf_addc(b, '"');
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    switch (*p) {
      case '"': yz_buf_adds(b, "\\\""); break;
      case '\\': yz_buf_adds(b, "\\\\"); break;
      case '\n': yz_buf_adds(b, "\\n"); break;
      case '\t': yz_buf_adds(b, "\\t"); break;
      case '\r': yz_buf_adds(b, "\\r"); break;
      default:
        if (*p < 0x20)
          yz_buf_addf(b, "\\x%02x", *p);
        else
          yz_buf_addc(b, (char)*p);
    }
  }
  yz_buf_addc(b, '"');
}

/* Appends a field key. Keys may come from plugins: a byte that would end the
** key, the field or the line (space, control bytes, '=', quotes) becomes '_',
** so a key cannot forge other fields or lines. An empty key is written "_". */
static void add_key(yz_buf *b, const char *k) {
  if (*k == '\0') yz_buf_addc(b, '_');
  for (const unsigned char *p = (const unsigned char *)k; *p; p++)
    yz_buf_addc(b,
                *p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f
                    ? '_'
                    : (char)*p);
}

void yz_log_write(const yz_log *lg, int level, const char *plugin,
                  const char *msg, const char *const *kv, int nkv) {
  if (!lg || level < lg->level || !lg->out) return;
  char ts[40];
  yz_clock_iso_utc(yz_clock_now_ms(lg->clock), ts, sizeof ts);
  yz_buf b;
  yz_buf_init(&b, LOG_LINE_MAX);
  yz_buf_addf(&b, "ts=%s level=%s", ts, yz_log_level_name(level));
  if (plugin) {
    yz_buf_adds(&b, " plugin=");
    add_value(&b, plugin);
  }
  yz_buf_adds(&b, " msg=");
  add_value(&b, msg ? msg : "");
  for (int i = 0; i < nkv; i++) {
    yz_buf_addc(&b, ' ');
    add_key(&b, kv[2 * i] ? kv[2 * i] : "");
    yz_buf_addc(&b, '=');
    add_value(&b, kv[2 * i + 1] ? kv[2 * i + 1] : "");
  }
  yz_buf_addc(&b, '\n');
  fwrite(yz_buf_str(&b), 1, b.len, lg->out);
  fflush(lg->out);
  yz_buf_free(&b);
}

void yz_logf(const yz_log *lg, int level, const char *plugin, const char *fmt,
             ...) {
  if (!lg || level < lg->level) return;
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  yz_log_write(lg, level, plugin, msg, NULL, 0);
}
