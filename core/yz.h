/*
** yz.h: what every module of the yizhan core shares: result codes, limits
** and a few helpers for bounded string handling.
**
** Functions return YZ_OK or one of the YZ_E* codes below; a module with a
** handle keeps the message of its last error in the handle.
*/
#ifndef YZ_H
#define YZ_H

#include <stddef.h>
#include <stdint.h>

#ifndef YZ_VERSION
#define YZ_VERSION "0.1.0"
#endif

enum {
  YZ_OK = 0,     /* success */
  YZ_ERR = 1,    /* failure; the handle's message says why */
  YZ_EUSAGE = 2, /* the caller asked for something malformed */
  YZ_ENOTFOUND,  /* no such thing */
  YZ_EEXIST,     /* it is already there */
  YZ_EDENIED,    /* refused by the access rules */
  YZ_ENOMEM,     /* out of memory or over a cap */
  YZ_ROW = 100,  /* a statement produced a row */
  YZ_DONE = 101  /* a statement finished */
};

#define YZ_ERRMSG_MAX 1024 /* size of every module's error buffer */

/* Formats into a fixed buffer, always NUL-terminated, truncating if needed. */
void yz_fmt(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns a malloc'd copy of s (NULL for NULL); aborts on out of memory. */
char *yz_strdup(const char *s);

/* Allocation that aborts the process when memory is exhausted: used only for
** the core's own small structures, never for sizes a plugin controls. */
void *yz_xmalloc(size_t n);
void *yz_xcalloc(size_t count, size_t n);
void *yz_xrealloc(void *p, size_t n);

/* Levenshtein distance between a and b, capped at 'cap' (returns cap+1 when
** further apart): used to suggest the key a user probably meant. */
int yz_edit_distance(const char *a, const char *b, int cap);

#endif
