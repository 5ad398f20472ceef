/*
** csv.c: the CSV reader and writer of csv.h.
**
** Divided into:
**   - a streaming UTF-8 validator, whose state survives block boundaries;
**   - opening: the encoding argument, the auto scan, the first block;
**   - input: refill() puts the next block of UTF-8 into c->buf, read as is
**     (and validated) or converted from GB18030 through iconv. An invalid
**     byte sequence shortens the block to the bytes before it and leaves a
**     flag, so the parser reaches it with the line count of that very spot
**     and reports it there;
**   - the parser: a state machine over the block that keeps its state
**     across refills, copying runs of ordinary bytes into the record;
**   - the writer: quoting fields, and UTF-8 to GB18030 for "gbk" files.
*/
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yz.h"

#define BLOCK (64 * 1024) /* bytes read from the file at a time */
/* Room for the UTF-8 of one block of GB18030 (at most 1.5 times as long). */
#define GB_OUT (2 * BLOCK + 16)

enum { ENC_UTF8, ENC_UTF8_BOM, ENC_GB18030 };

/* Where the parser is: between records (skipping empty lines), at the
** start of a field, inside an unquoted field, inside a quoted field, or
** just after a quote inside a quoted field (which either doubles the quote
** or closes the field). */
enum { S_RECORD, S_FIELD, S_UNQUOTED, S_QUOTED, S_QUOTE };

/* The bytes that end a run inside an unquoted and inside a quoted field. */
static const unsigned char stop_unquoted[256] = {
    [','] = 1, ['\r'] = 1, ['\n'] = 1};
static const unsigned char stop_quoted[256] = {
    ['"'] = 1, ['\r'] = 1, ['\n'] = 1};

/* A UTF-8 validator between two bytes: how many continuation bytes are
** still due, and the range the next one must fall in (narrower than
** 80..BF right after some lead bytes, to refuse overlong forms, surrogates
** and code points past U+10FFFF). */
typedef struct u8state {
  int need;         /* continuation bytes still due */
  unsigned char lo; /* smallest allowed next byte */
  unsigned char hi; /* largest allowed next byte */
  size_t lead;      /* offset of the sequence's lead byte (for messages) */
} u8state;

struct yz_csv {
  char *path;              /* as given, for messages */
  int fd;                  /* the open file */
  int enc;                 /* ENC_* */
  iconv_t cd;              /* GB18030 to UTF-8, or (iconv_t)-1 */
  long long size;          /* file size, -1 if not a regular file */
  unsigned char *buf;      /* the UTF-8 block being parsed */
  size_t pos;              /* parse position in buf */
  size_t len;              /* end of buf's valid bytes */
  int bad;                 /* an invalid sequence follows buf[len] */
  int eof;                 /* the file is read to its end */
  u8state u8;              /* the validator between UTF-8 blocks */
  unsigned char *raw;      /* GB18030 bytes read but not yet converted */
  size_t rawlen;           /* bytes in raw */
  long long blk_start;     /* file offset of the bytes buf was made of */
  long long blk_bytes;     /* how many file bytes buf was made of */
  long long converted;     /* file bytes turned into blocks so far */
  int state;               /* S_* */
  int cr;                  /* the last byte was a CR ending a line */
  long line;               /* the line of buf[pos] */
  long recline;            /* the line where the record started */
  long quoteline;          /* the line where the open quote is */
  char *rec;               /* field bytes, each field NUL-terminated */
  size_t reclen;           /* bytes used in rec */
  size_t reccap;           /* bytes allocated for rec */
  size_t *off;             /* each field's offset in rec */
  size_t *lens;            /* each field's length */
  const char **fields;     /* each field's address, made when it is whole */
  int nf;                  /* fields in the record so far */
  int fcap;                /* fields allocated */
  int failed;              /* a -1 was returned; it sticks */
  long errline;            /* the line of that error */
  char err[YZ_ERRMSG_MAX]; /* its message */
};

/* ---------------------------------------------------------------- UTF-8 */

/* Validates p[0..n) continuing from *v. Returns n when every byte fits
** (the last sequence may be unfinished: v says so), else the offset of the
** first byte that does not. */
static size_t u8_check(u8state *v, const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (v->need) {
      if (p[i] < v->lo || p[i] > v->hi) return i;
      v->lo = 0x80;
      v->hi = 0xBF;
      v->need--;
      i++;
      continue;
    }
    /* Most CSV bytes are ASCII: skip them eight at a time. */
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i == n) break;
    unsigned char b = p[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    /* A whole three-byte sequence (every Chinese character) in one go. */
    if (b >= 0xE1 && b <= 0xEC && i + 2 < n && (p[i + 1] & 0xC0) == 0x80 &&
        (p[i + 2] & 0xC0) == 0x80) {
      i += 3;
      continue;
    }
    v->lead = i;
    v->lo = 0x80;
    v->hi = 0xBF;
    if (b < 0xC2) {
      return i;
    } else if (b < 0xE0) {
      v->need = 1;
    } else if (b < 0xF0) {
      v->need = 2;
      if (b == 0xE0) v->lo = 0xA0;
      if (b == 0xED) v->hi = 0x9F;
    } else if (b < 0xF5) {
      v->need = 3;
      if (b == 0xF0) v->lo = 0x90;
      if (b == 0xF4) v->hi = 0x8F;
    } else {
      return i;
    }
    i++;
  }
  return n;
}

/* Decodes the code point of the valid UTF-8 sequence at p. */
static unsigned long u8_decode(const unsigned char *p) {
  if (p[0] < 0x80) return p[0];
  if (p[0] < 0xE0) return (p[0] & 0x1Fu) << 6 | (p[1] & 0x3Fu);
  if (p[0] < 0xF0)
    return (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
  return (unsigned long)(p[0] & 0x07u) << 18 | (p[1] & 0x3Fu) << 12 |
         (p[2] & 0x3Fu) << 6 | (p[3] & 0x3Fu);
}

/* ---------------------------------------------------------------- input */

/* read() that retries on EINTR. */
static ssize_t read_some(int fd, void *p, size_t n) {
  ssize_t r;
  do r = read(fd, p, n);
  while (r < 0 && errno == EINTR);
  return r;
}

/* The next block of a UTF-8 file. */
static int refill_utf8(yz_csv *c) {
  ssize_t n = read_some(c->fd, c->buf, BLOCK);
  if (n < 0) return -1;
  c->pos = 0;
  c->blk_start = c->converted;
  if (n == 0) {
    c->eof = 1;
    c->len = 0;
    c->blk_bytes = 0;
    /* A sequence cut off by the end of the file. */
    if (c->u8.need) c->bad = 1;
    return c->bad;
  }
  size_t ok = u8_check(&c->u8, c->buf, (size_t)n);
  if (ok < (size_t)n) c->bad = 1;
  c->len = ok;
  c->blk_bytes = (long long)ok;
  c->converted += (long long)ok;
  return 1;
}

/* The next block of a GB18030 file, converted. */
static int refill_gb(yz_csv *c) {
  for (;;) {
    if (!c->eof && c->rawlen < BLOCK) {
      ssize_t n = read_some(c->fd, c->raw + c->rawlen, BLOCK - c->rawlen);
      if (n < 0) return -1;
      if (n == 0) c->eof = 1;
      c->rawlen += (size_t)n;
    }
    char *in = (char *)c->raw, *out = (char *)c->buf;
    size_t inleft = c->rawlen, outleft = GB_OUT;
    size_t r = iconv(c->cd, &in, &inleft, &out, &outleft);
    int e = r == (size_t)-1 ? errno : 0;
    size_t used = c->rawlen - inleft;
    c->pos = 0;
    c->len = (size_t)(out - (char *)c->buf);
    c->blk_start = c->converted;
    c->blk_bytes = (long long)used;
    c->converted += (long long)used;
    memmove(c->raw, c->raw + used, inleft);
    c->rawlen = inleft;
    /* EILSEQ is a bad sequence; EINVAL one cut off, bad only at the end of
    ** the file (else the rest comes with the next read); E2BIG means the
    ** block is full. */
    if (e == EILSEQ || (e == EINVAL && c->eof)) c->bad = 1;
    if (c->len > 0 || c->bad) return 1;
    if (c->eof && c->rawlen == 0) return 0;
  }
}

/* Puts the next block into c->buf. Returns 1 when there is something for
** the parser (bytes, or a bad sequence to report), 0 at the end of the
** file, -1 on a read error (with c->err set). */
static int refill(yz_csv *c) {
  if (c->eof && c->rawlen == 0) {
    c->pos = c->len = 0;
    c->blk_start = c->converted;
    c->blk_bytes = 0;
    return 0;
  }
  int r = c->enc == ENC_GB18030 ? refill_gb(c) : refill_utf8(c);
  if (r < 0)
    yz_fmt(c->err, sizeof c->err, "cannot read %s: %s", c->path,
           strerror(errno));
  return r;
}

/* ---------------------------------------------------------------- opening */

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) yz_fmt(err, errlen, "%s", msg);
}

/* Reads the whole file once: is it valid UTF-8? Then rewinds it. Returns
** 1 or 0, or -1 on a read error (errno set). */
static int scan_utf8(yz_csv *c) {
  u8state v = {0, 0x80, 0xBF, 0};
  int valid = 1;
  ssize_t n;
  while ((n = read_some(c->fd, c->buf, BLOCK)) > 0)
    if (u8_check(&v, c->buf, (size_t)n) < (size_t)n) {
      valid = 0;
      break;
    }
  if (n < 0) return -1;
  if (valid && v.need) valid = 0;
  if (lseek(c->fd, 0, SEEK_SET) < 0) return -1;
  return valid;
}

/* Which encoding the argument names: ENC_*, -1 for auto, -2 unknown. */
static int parse_enc(const char *enc) {
  if (!enc || strcasecmp(enc, "auto") == 0) return -1;
  if (strcasecmp(enc, "utf-8") == 0 || strcasecmp(enc, "utf8") == 0)
    return ENC_UTF8;
  if (strcasecmp(enc, "gbk") == 0 || strcasecmp(enc, "gb18030") == 0)
    return ENC_GB18030;
  return -2;
}

/* Settles "auto" for the regular file c->fd: UTF-8 when it is valid UTF-8
** throughout (with a BOM or not), else GB18030. Leaves the file at its
** start. Returns ENC_*, or -1 on a read error (errno set). */
static int detect(yz_csv *c) {
  /* A BOM is valid UTF-8 too: a file with one is UTF-8 unless what follows
  ** is not, when an editor put it in front of GBK text (read as GB18030,
  ** the BOM dropped). */
  int valid = scan_utf8(c);
  if (valid < 0) return -1;
  return valid ? ENC_UTF8 : ENC_GB18030;
}

yz_csv *yz_csv_open(const char *path, const char *enc, char *err,
                    size_t errlen) {
  char msg[YZ_ERRMSG_MAX];
  struct stat st;
  yz_csv *c = NULL;
  int fd = -1, mode = parse_enc(enc);
  set_err(err, errlen, "");
  if (mode == -2) {
    yz_fmt(msg, sizeof msg,
           "unknown encoding '%s' (expected auto, utf-8, gbk or gb18030)", enc);
    goto fail;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) < 0) {
    yz_fmt(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
    goto fail;
  }
  if (S_ISDIR(st.st_mode)) {
    yz_fmt(msg, sizeof msg, "cannot open %s: %s", path, strerror(EISDIR));
    goto fail;
  }
  c = yz_xcalloc(1, sizeof *c);
  c->fd = fd;
  fd = -1; /* the reader owns it now */
  c->cd = (iconv_t)-1;
  c->path = yz_strdup(path);
  c->size = S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
  c->line = 1;
  c->u8.lo = 0x80;
  c->u8.hi = 0xBF;
  c->buf = yz_xmalloc(GB_OUT);

  if (mode == -1) {
    if (!S_ISREG(st.st_mode)) {
      yz_fmt(msg, sizeof msg,
             "cannot detect the encoding of %s: not a regular file (give "
             "the encoding)",
             path);
      goto fail;
    }
    mode = detect(c);
    if (mode < 0) {
      yz_fmt(msg, sizeof msg, "cannot read %s: %s", path, strerror(errno));
      goto fail;
    }
  }
  c->enc = mode;
  if (mode == ENC_GB18030) {
    c->cd = iconv_open("UTF-8", "GB18030");
    if (c->cd == (iconv_t)-1) {
      yz_fmt(msg, sizeof msg, "cannot read %s: no GB18030 converter: %s", path,
             strerror(errno));
      goto fail;
    }
    c->raw = yz_xmalloc(BLOCK);
    /* A UTF-8 BOM in front of GBK text is no GB18030 character: drop it
    ** (counted as read). */
    ssize_t k = read_some(c->fd, c->raw, 3);
    if (k < 0) {
      yz_fmt(msg, sizeof msg, "cannot read %s: %s", path, strerror(errno));
      goto fail;
    }
    if (k == 3 && memcmp(c->raw, "\xEF\xBB\xBF", 3) == 0)
      c->converted = 3;
    else
      c->rawlen = (size_t)k;
  }
  if (refill(c) < 0) {
    yz_fmt(msg, sizeof msg, "%s", c->err);
    goto fail;
  }
  /* The BOM (a GB18030 one decodes to the same) is not part of the data. */
  if (c->len >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) {
    c->pos = 3;
    if (mode == ENC_UTF8) c->enc = ENC_UTF8_BOM;
  }
  return c;

fail:
  set_err(err, errlen, msg);
  if (fd >= 0) close(fd);
  yz_csv_close(c);
  return NULL;
}

void yz_csv_close(yz_csv *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  if (c->cd != (iconv_t)-1) iconv_close(c->cd);
  free(c->path);
  free(c->buf);
  free(c->raw);
  free(c->rec);
  free(c->off);
  free(c->lens);
  free(c->fields);
  free(c);
}

const char *yz_csv_error(const yz_csv *c) {
  return c->err;
}

const char *yz_csv_encoding(const yz_csv *c) {
  switch (c->enc) {
    case ENC_UTF8_BOM: return "utf-8 with BOM";
    case ENC_GB18030: return "gb18030";
    default: return "utf-8";
  }
}

long long yz_csv_pos(const yz_csv *c) {
  if (c->len == 0) return c->blk_start + c->blk_bytes;
  return c->blk_start + c->blk_bytes * (long long)c->pos / (long long)c->len;
}

long long yz_csv_size(const yz_csv *c) {
  return c->size;
}

/* ---------------------------------------------------------------- parser */

/* Fails the reader with msg at line. Returns -1. */
static int fail(yz_csv *c, const char *msg, long line) {
  if (msg) yz_fmt(c->err, sizeof c->err, "%s", msg);
  c->failed = 1;
  c->errline = line;
  return -1;
}

/* Makes room for n more bytes of the record. Returns 0, or -1 (the
** reader failed) past the record limit. */
static int rec_room(yz_csv *c, size_t n) {
  if (c->reclen + n > YZ_CSV_RECORD_MAX)
    return fail(c, "record longer than 1 MiB", c->recline);
  if (c->reclen + n > c->reccap) {
    size_t cap = c->reccap ? c->reccap : 4096;
    while (cap < c->reclen + n) cap *= 2;
    if (cap > YZ_CSV_RECORD_MAX) cap = YZ_CSV_RECORD_MAX;
    c->rec = yz_xrealloc(c->rec, cap);
    c->reccap = cap;
  }
  return 0;
}

static int rec_add(yz_csv *c, const unsigned char *p, size_t n) {
  if (n == 0) return 0;
  if (rec_room(c, n) < 0) return -1;
  memcpy(c->rec + c->reclen, p, n);
  c->reclen += n;
  return 0;
}

static void field_begin(yz_csv *c) {
  if (c->nf == c->fcap) {
    c->fcap = c->fcap ? c->fcap * 2 : 16;
    c->off = yz_xrealloc(c->off, (size_t)c->fcap * sizeof *c->off);
    c->lens = yz_xrealloc(c->lens, (size_t)c->fcap * sizeof *c->lens);
    c->fields = yz_xrealloc(c->fields, (size_t)c->fcap * sizeof *c->fields);
  }
  c->off[c->nf] = c->reclen;
}

/* Ends the field begun last: its NUL counts against the record limit, so
** that a line of a million commas stays bounded too. */
static int field_end(yz_csv *c) {
  if (rec_room(c, 1) < 0) return -1;
  c->lens[c->nf] = c->reclen - c->off[c->nf];
  c->rec[c->reclen++] = '\0';
  c->nf++;
  return 0;
}

/* Parses from c->buf[pos] to len. Returns 1 when a record is complete, 0
** when the block is used up within or between records, -1 on an error. */
static int parse(yz_csv *c) {
  const unsigned char *p = c->buf + c->pos, *end = c->buf + c->len;
  int rc = 0;
  while (p < end) {
    switch (c->state) {
      case S_RECORD:
        /* Empty lines; a LF right after a CR ends the same line. */
        while (p < end && (*p == '\n' || *p == '\r')) {
          if (*p == '\r' || !c->cr) c->line++;
          c->cr = *p == '\r';
          p++;
        }
        if (p == end) break;
        c->cr = 0;
        c->recline = c->line;
        field_begin(c);
        c->state = S_FIELD;
        break;
      case S_FIELD:
        if (*p == '"') {
          c->quoteline = c->line;
          c->state = S_QUOTED;
          p++;
        } else {
          c->state = S_UNQUOTED;
        }
        break;
      case S_UNQUOTED: {
        const unsigned char *q = p;
        while (q < end && !stop_unquoted[*q]) q++;
        if (rec_add(c, p, (size_t)(q - p)) < 0) goto error;
        p = q;
        if (p == end) break;
        if (field_end(c) < 0) goto error;
        if (*p == ',') {
          field_begin(c);
          c->state = S_FIELD;
          p++;
          break;
        }
        c->cr = *p == '\r';
        c->line++;
        c->state = S_RECORD;
        p++;
        rc = 1;
        goto out;
      }
      case S_QUOTED: {
        const unsigned char *q = p;
        while (q < end && !stop_quoted[*q]) q++;
        if (q > p) {
          if (rec_add(c, p, (size_t)(q - p)) < 0) goto error;
          c->cr = 0;
          p = q;
        }
        if (p == end) break;
        if (*p == '"') {
          c->cr = 0;
          c->state = S_QUOTE;
          p++;
          break;
        }
        /* A line end inside the field: kept, and counted. */
        if (*p == '\r' || !c->cr) c->line++;
        c->cr = *p == '\r';
        if (rec_add(c, p, 1) < 0) goto error;
        p++;
        break;
      }
      case S_QUOTE:
        if (*p == '"') {
          if (rec_add(c, p, 1) < 0) goto error;
          c->state = S_QUOTED;
          p++;
          break;
        }
        if (*p != ',' && *p != '\r' && *p != '\n') {
          fail(c, "unexpected character after closing quote", c->line);
          goto error;
        }
        c->state = S_UNQUOTED; /* which ends the field at this byte */
        break;
    }
  }
out:
  c->pos = (size_t)(p - c->buf);
  return rc;
error:
  c->pos = (size_t)(p - c->buf);
  return -1;
}

/* Hands the record out. */
static int deliver(yz_csv *c, const char *const **fields, const size_t **lens,
                   int *nfields, long *line) {
  for (int i = 0; i < c->nf; i++) c->fields[i] = c->rec + c->off[i];
  if (fields) *fields = c->fields;
  if (lens) *lens = c->lens;
  if (nfields) *nfields = c->nf;
  if (line) *line = c->recline;
  return 1;
}

int yz_csv_next(yz_csv *c, const char *const **fields, const size_t **lens,
                int *nfields, long *line) {
  if (c->failed) goto failed;
  c->reclen = 0;
  c->nf = 0;
  for (;;) {
    int r = parse(c);
    if (r > 0) return deliver(c, fields, lens, nfields, line);
    if (r < 0) goto failed;
    /* The block is used up. */
    if (c->bad) {
      fail(c,
           c->enc == ENC_GB18030 ? "invalid GB18030 byte sequence"
                                 : "invalid UTF-8",
           c->line);
      goto failed;
    }
    r = refill(c);
    if (r < 0) {
      fail(c, NULL, c->line);
      goto failed;
    }
    if (r > 0) continue;
    /* The end of the file ends the last record, if one is open. */
    switch (c->state) {
      case S_RECORD: return 0;
      case S_QUOTED:
        fail(c, "unterminated quoted field", c->quoteline);
        goto failed;
      default:
        if (field_end(c) < 0) goto failed;
        c->state = S_RECORD;
        return deliver(c, fields, lens, nfields, line);
    }
  }
failed:
  if (line) *line = c->errline;
  return -1;
}

/* ---------------------------------------------------------------- writer */

/* Puts out back to 'len' bytes after a failed append. */
static void truncate_to(yz_buf *out, size_t len) {
  out->len = len;
  if (out->data) out->data[len] = '\0';
}

static int needs_quotes(const char *s, size_t n) {
  if (n == 0) return 0;
  if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
    return 1;
  for (size_t i = 0; i < n; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') return 1;
  return 0;
}

static int add_field(yz_buf *out, const char *s, size_t n) {
  if (!needs_quotes(s, n)) return yz_buf_add(out, s, n);
  if (yz_buf_addc(out, '"') != YZ_OK) return YZ_ENOMEM;
  const char *q;
  while ((q = memchr(s, '"', n)) != NULL) {
    size_t k = (size_t)(q - s) + 1; /* through the quote */
    if (yz_buf_add(out, s, k) != YZ_OK || yz_buf_addc(out, '"') != YZ_OK)
      return YZ_ENOMEM;
    s += k;
    n -= k;
  }
  if (yz_buf_add(out, s, n) != YZ_OK || yz_buf_addc(out, '"') != YZ_OK)
    return YZ_ENOMEM;
  return YZ_OK;
}

int yz_csv_field(yz_buf *out, const char *s, size_t n) {
  size_t mark = out->len;
  if (add_field(out, s, n) == YZ_OK) return YZ_OK;
  truncate_to(out, mark);
  return YZ_ENOMEM;
}

int yz_csv_record(yz_buf *out, const char *const *fields, const size_t *lens,
                  int n) {
  size_t mark = out->len;
  int rc = YZ_OK;
  for (int i = 0; i < n && rc == YZ_OK; i++) {
    size_t len = lens ? lens[i] : strlen(fields[i]);
    if (i > 0) rc = yz_buf_addc(out, ',');
    if (rc == YZ_OK && n == 1 && len == 0)
      rc = yz_buf_add(out, "\"\"", 2);
    else if (rc == YZ_OK)
      rc = add_field(out, fields[i], len);
  }
  if (rc == YZ_OK) rc = yz_buf_add(out, "\r\n", 2);
  if (rc == YZ_OK) return YZ_OK;
  truncate_to(out, mark);
  return YZ_ENOMEM;
}

int yz_csv_to_gbk(const char *in, size_t n, yz_buf *out, char *err,
                  size_t errlen) {
  const unsigned char *u = (const unsigned char *)in;
  size_t mark = out->len;
  set_err(err, errlen, "");
  /* Checked first, so that iconv's refusals are only unmappable
  ** characters and the message can tell the two apart. */
  u8state v = {0, 0x80, 0xBF, 0};
  size_t ok = u8_check(&v, u, n);
  if (ok < n || v.need) {
    if (err && errlen)
      yz_fmt(err, errlen, "invalid UTF-8 at byte %zu", v.need ? v.lead : ok);
    return -1;
  }
  iconv_t cd = iconv_open("GB18030", "UTF-8");
  if (cd == (iconv_t)-1) {
    if (err && errlen)
      yz_fmt(err, errlen, "no GB18030 converter: %s", strerror(errno));
    return -1;
  }
  char chunk[4096];
  char *ip = (char *)in;
  size_t left = n;
  int rc = 0;
  while (left > 0) {
    char *op = chunk;
    size_t room = sizeof chunk;
    size_t r = iconv(cd, &ip, &left, &op, &room);
    int e = r == (size_t)-1 ? errno : 0;
    if (yz_buf_add(out, chunk, (size_t)(op - chunk)) != YZ_OK) {
      set_err(err, errlen, "output too large");
      rc = -1;
      break;
    }
    if (e && e != E2BIG) {
      size_t at = (size_t)(ip - in);
      if (err && errlen)
        yz_fmt(err, errlen,
               "character U+%04lX at byte %zu cannot be represented in "
               "GB18030",
               u8_decode(u + at), at);
      rc = -1;
      break;
    }
  }
  iconv_close(cd);
  if (rc < 0) truncate_to(out, mark);
  return rc;
}
