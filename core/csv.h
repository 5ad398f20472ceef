/*
** csv.h: reading and writing the CSV files that schools exchange with
** spreadsheet programs (Excel, WPS), in UTF-8 or in the GBK/GB18030 that
** Chinese Windows saves by default.
**
** The reader streams: it reads the file in 64 KiB blocks and holds at most
** one block and one record (capped at 1 MiB) in memory, however large the
** file. Every field it returns is UTF-8.
**
** Pure C over libc and iconv; no Lua, no SQLite.
*/
#ifndef YZ_CSV_H
#define YZ_CSV_H

#include <stddef.h>

#include "buf.h"

#define YZ_CSV_RECORD_MAX (1024 * 1024) /* longest record, field bytes */

typedef struct yz_csv yz_csv;

/* Opens 'path' for reading. 'enc' is NULL or "auto", "utf-8", "gbk" or
** "gb18030" (case does not matter; "utf8" is "utf-8"):
**   auto     the whole file is scanned once, in blocks: valid UTF-8 (with
**            a BOM or not) is read as UTF-8, anything else as GB18030 (a
**            UTF-8 BOM in front of GBK text, as an editor may leave it, is
**            dropped). Needs a regular file (the scan rewinds it).
**   utf-8    a BOM, if there is one, is dropped; invalid UTF-8 is an error.
**   gbk, gb18030  both read as GB18030, a superset of GBK, converted to
**            UTF-8 through iconv; a leading UTF-8 BOM is dropped.
** Returns the reader, or NULL with a message in err (NUL-terminated,
** truncated to errlen; err may be NULL):
**   cannot open x.csv: No such file or directory
**   unknown encoding 'latin1' (expected auto, utf-8, gbk or gb18030) */
yz_csv *yz_csv_open(const char *path, const char *enc, char *err,
                    size_t errlen);

/* Reads the next record. Returns
**    1  a record: *fields holds *nfields NUL-terminated UTF-8 strings
**       (unquoted, the BOM gone) and *lens their lengths in bytes (a field
**       may hold a NUL byte, so lens is the truth); *line is the 1-based
**       physical line where the record starts. The reader owns all of it,
**       valid until the next call or yz_csv_close.
**    0  the end of the file.
**   -1  the file is malformed or cannot be read: yz_csv_error says what
**       ("unterminated quoted field", "invalid UTF-8", "invalid GB18030
**       byte sequence", "unexpected character after closing quote",
**       "record longer than 1 MiB", "cannot read x.csv: ...") and *line is
**       the line of the problem (for an unterminated field, the line where
**       its quote opened; for a long record, where it starts). Every later
**       call returns -1 again.
** Lines end with LF, CRLF or a lone CR, also inside quoted fields (which
** keep them as they are). Empty lines are skipped; a line of commas is a
** record of empty fields. Any output pointer may be NULL. */
int yz_csv_next(yz_csv *c, const char *const **fields, const size_t **lens,
                int *nfields, long *line);

/* The message of the last -1 from yz_csv_next, or "" before any. */
const char *yz_csv_error(const yz_csv *c);
/* What the file was read as: "utf-8", "utf-8 with BOM" or "gb18030". */
const char *yz_csv_encoding(const yz_csv *c);
/* Bytes of the file consumed so far (exact for UTF-8; for GB18030 to within
** the bytes of one 64 KiB block), for progress. Equals the size at the end. */
long long yz_csv_pos(const yz_csv *c);
/* The file's size in bytes, or -1 when it is not a regular file. */
long long yz_csv_size(const yz_csv *c);
/* Closes the file and frees the reader. Accepts NULL. */
void yz_csv_close(yz_csv *c);

/* Appends one field to out (copied), quoted when it holds a comma, a quote,
** CR or LF, or starts or ends with a space or tab; quotes are doubled.
** Returns YZ_OK, or YZ_ENOMEM past out's cap with out unchanged. */
int yz_csv_field(yz_buf *out, const char *s, size_t n);
/* Appends a record of n fields, separated by commas and ended with CRLF.
** lens may be NULL when the fields are NUL-terminated. A record of one
** empty field is written as "" so that it reads back (an empty line would
** be skipped); a record of no fields is an empty line. Returns YZ_OK, or
** YZ_ENOMEM past out's cap with out unchanged. */
int yz_csv_record(yz_buf *out, const char *const *fields, const size_t *lens,
                  int n);

/* Converts UTF-8 text to the bytes of a "gbk" output file, appending them
** to out. The output is GB18030, which is byte for byte GBK for every
** character GBK has; the characters GBK lacks (rare name characters from
** CJK Extension B, emoji) are written as GB18030 four-byte sequences
** instead of being refused, so no name is lost and the reader reads them
** back. Returns 0, or -1 with out unchanged and a message in err naming the
** first offending character and its byte offset in 'in':
**   invalid UTF-8 at byte 7
**   character U+E78D at byte 12 cannot be represented in GB18030
** (glibc's GB18030 refuses a few private-use characters) or "output too
** large" past out's cap. */
int yz_csv_to_gbk(const char *in, size_t n, yz_buf *out, char *err,
                  size_t errlen);

#endif
