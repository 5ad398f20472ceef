/*
** buf.h: a growable byte buffer with a hard cap, for building log lines,
** JSON and CLI output without unbounded growth.
*/
#ifndef YZ_BUF_H
#define YZ_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct yz_buf {
  char *data; /* NUL-terminated contents, or NULL while empty */
  size_t len; /* bytes used, without the terminating NUL */
  size_t cap; /* bytes allocated */
  size_t max; /* hard cap on len; appends past it fail */
} yz_buf;

/* Prepares an empty buffer that refuses to grow past 'max' bytes. */
void yz_buf_init(yz_buf *b, size_t max);
/* Frees the contents; the buffer is empty and reusable afterwards. */
void yz_buf_free(yz_buf *b);
/* Empties the buffer but keeps its memory. */
void yz_buf_reset(yz_buf *b);
/* Appends n bytes (copied). Returns YZ_OK or YZ_ENOMEM past the cap. */
int yz_buf_add(yz_buf *b, const void *p, size_t n);
int yz_buf_adds(yz_buf *b, const char *s);
int yz_buf_addc(yz_buf *b, char c);
int yz_buf_addf(yz_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int yz_buf_vaddf(yz_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string (quotes, backslashes and control characters
** escaped; other bytes as they are), or null for NULL. */
int yz_buf_add_json_str(yz_buf *b, const char *s);
/* Returns the contents as a C string ("" when empty); the buffer owns it. */
const char *yz_buf_str(const yz_buf *b);

#endif
