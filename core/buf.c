/*
** buf.c: the capped growable buffer of buf.h, and the small string helpers
** of yz.h that every module uses.
*/
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yz.h"

void *yz_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("yizhan: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *yz_xcalloc(size_t count, size_t n) {
  void *p = calloc(count ? count : 1, n ? n : 1);
  if (!p) {
    fputs("yizhan: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *yz_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fputs("yizhan: out of memory\n", stderr);
    abort();
  }
  return q;
}

char *yz_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = yz_xmalloc(n);
  memcpy(d, s, n);
  return d;
}

void yz_fmt(char *dst, size_t n, const char *fmt, ...) {
  va_list ap;
  if (n == 0) return;
  va_start(ap, fmt);
  vsnprintf(dst, n, fmt, ap);
  va_end(ap);
}

int yz_edit_distance(const char *a, const char *b, int cap) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return cap + 1;
  int row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    int best = row[0];
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = diag + cost;
      if (up + 1 < v) v = up + 1;
      if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
      row[j] = v;
      diag = up;
      if (v < best) best = v;
    }
    if (best > cap) return cap + 1;
  }
  return row[lb] > cap ? cap + 1 : row[lb];
}

void yz_buf_init(yz_buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

void yz_buf_free(yz_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void yz_buf_reset(yz_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

static int grow(yz_buf *b, size_t extra) {
  if (extra > b->max - b->len) return YZ_ENOMEM;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return YZ_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p) return YZ_ENOMEM;
  b->data = p;
  b->cap = cap;
  return YZ_OK;
}

int yz_buf_add(yz_buf *b, const void *p, size_t n) {
  if (grow(b, n) != YZ_OK) return YZ_ENOMEM;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return YZ_OK;
}

int yz_buf_adds(yz_buf *b, const char *s) {
  return yz_buf_add(b, s, strlen(s));
}

int yz_buf_addc(yz_buf *b, char c) {
  return yz_buf_add(b, &c, 1);
}

int yz_buf_vaddf(yz_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return YZ_ERR;
  if (grow(b, (size_t)n) != YZ_OK) return YZ_ENOMEM;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return YZ_OK;
}

int yz_buf_addf(yz_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = yz_buf_vaddf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int yz_buf_add_json_str(yz_buf *b, const char *s) {
  if (!s) return yz_buf_adds(b, "null");
  int rc = yz_buf_addc(b, '"');
  for (; *s && rc == YZ_OK; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      yz_buf_addc(b, '\\');
      rc = yz_buf_addc(b, (char)c);
    } else if (c < 0x20) {
      rc = yz_buf_addf(b, "\\u%04x", c);
    } else {
      rc = yz_buf_addc(b, (char)c);
    }
  }
  return rc == YZ_OK ? yz_buf_addc(b, '"') : rc;
}

const char *yz_buf_str(const yz_buf *b) {
  return b->data ? b->data : "";
}
