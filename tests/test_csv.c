/*
** test_csv.c: the CSV reader and writer: line ends, quoting, empty lines,
** the BOM, GBK/GB18030 files detected and converted, characters and line
** ends split across the 64 KiB block boundary, the errors with their lines,
** the writer's quoting read back, and UTF-8 to GB18030 for "gbk" output.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "testutil.h"
#include "yz.h"

#define BLOCK (64 * 1024)               /* the reader's block size */
#define ZHANGSAN_GBK "\xD5\xC5\xC8\xFD" /* 张三 in GBK */

static char *dir; /* the scratch directory of the whole suite */

static int make_dir(void **state) {
  (void)state;
  dir = tu_tmpdir();
  return 0;
}

static int remove_dir(void **state) {
  (void)state;
  tu_rmrf(dir);
  free(dir);
  return 0;
}

/* Writes n bytes to dir/name and returns the path (static, valid until the
** next call). */
static const char *put(const char *name, const char *bytes, size_t n) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
  return path;
}

static const char *puts_file(const char *name, const char *text) {
  return put(name, text, strlen(text));
}

/* Reads the whole file and renders it: one "LINE:f1|f2|..." line per
** record, then "error LINE: message" if the reader fails. Checks that
** every length matches its NUL-terminated field (the tests hold no NULs)
** and that the end is sticky. Returns the rendering in out. */
static const char *dump_buf(const char *path, const char *enc, yz_buf *out) {
  char err[YZ_ERRMSG_MAX];
  yz_buf_reset(out);
  yz_csv *c = yz_csv_open(path, enc, err, sizeof err);
  if (!c) fprintf(stderr, "%s\n", err);
  assert_non_null(c);
  const char *const *f;
  const size_t *lens;
  int n, rc;
  long line;
  while ((rc = yz_csv_next(c, &f, &lens, &n, &line)) == 1) {
    yz_buf_addf(out, "%ld:", line);
    for (int i = 0; i < n; i++) {
      assert_int_equal(lens[i], strlen(f[i]));
      yz_buf_addf(out, "%s%s", i ? "|" : "", f[i]);
    }
    yz_buf_addc(out, '\n');
  }
  if (rc < 0) {
    yz_buf_addf(out, "error %ld: %s\n", line, yz_csv_error(c));
    long again = 0;
    assert_int_equal(yz_csv_next(c, &f, &lens, &n, &again), -1);
    assert_int_equal(again, line);
  } else {
    assert_int_equal(yz_csv_next(c, &f, &lens, &n, &line), 0);
    assert_int_equal(yz_csv_pos(c), yz_csv_size(c));
  }
  yz_csv_close(c);
  return yz_buf_str(out);
}

/* dump_buf into a static buffer, for one-line assertions. */
static const char *dump(const char *path, const char *enc) {
  static yz_buf out;
  yz_buf_free(&out);
  yz_buf_init(&out, 64 * 1024 * 1024);
  return dump_buf(path, enc, &out);
}

/* The encoding the reader picks for path. */
static const char *encoding(const char *path, const char *enc) {
  static char name[32];
  char err[YZ_ERRMSG_MAX];
  yz_csv *c = yz_csv_open(path, enc, err, sizeof err);
  assert_non_null(c);
  snprintf(name, sizeof name, "%s", yz_csv_encoding(c));
  yz_csv_close(c);
  return name;
}

/* The message yz_csv_open fails with. */
static const char *open_error(const char *path, const char *enc) {
  static char err[YZ_ERRMSG_MAX];
  yz_csv *c = yz_csv_open(path, enc, err, sizeof err);
  assert_null(c);
  return err;
}

/* ----------------------------------------------------------------- reading */

static void simple_rows_come_back_with_their_lines(void **state) {
  (void)state;
  const char *p = puts_file("simple.csv", "id,name,class\n1,Li,3\n2,Wang,4\n");
  assert_string_equal(dump(p, NULL), "1:id|name|class\n2:1|Li|3\n3:2|Wang|4\n");
  assert_string_equal(encoding(p, NULL), "utf-8");
  /* The last line needs no line end. */
  p = puts_file("noeol.csv", "a,b\nc,d");
  assert_string_equal(dump(p, "utf-8"), "1:a|b\n2:c|d\n");
}

static void crlf_ends_a_line_once(void **state) {
  (void)state;
  const char *p = puts_file("crlf.csv", "a,b\r\nc,d\r\n\r\ne,f\r\n");
  assert_string_equal(dump(p, NULL), "1:a|b\n2:c|d\n4:e|f\n");
}

static void a_lone_cr_ends_a_line(void **state) {
  (void)state;
  const char *p = puts_file("cr.csv", "a,b\rc,d\r\re,f");
  assert_string_equal(dump(p, NULL), "1:a|b\n2:c|d\n4:e|f\n");
  /* Mixed in one file, as after hand edits. */
  p = puts_file("mixed.csv", "a\r\nb\rc\nd\n\re");
  assert_string_equal(dump(p, NULL), "1:a\n2:b\n3:c\n4:d\n6:e\n");
}

static void quoted_fields_keep_commas_quotes_and_line_ends(void **state) {
  (void)state;
  const char *p = puts_file("quoted.csv",
                            "name,notes\n"
                            "\"Li, Ming\",\"said \"\"hi\"\"\"\n"
                            "\"Wang\",\"two\nlines\"\n"
                            "\"Zhao\",\"crlf\r\nand cr\rend\"\r\n"
                            "\"\",\"\"\"\"\n"
                            "Sun,last\n");
  assert_string_equal(dump(p, NULL),
                      "1:name|notes\n"
                      "2:Li, Ming|said \"hi\"\n"
                      "3:Wang|two\nlines\n"
                      "5:Zhao|crlf\r\nand cr\rend\n"
                      "8:|\"\n"
                      "9:Sun|last\n");
  /* A CR, then text, then a LF inside quotes: two line ends. */
  p = puts_file("crtextlf.csv", "\"a\rb\nc\",d\nnext\n");
  assert_string_equal(dump(p, NULL), "1:a\rb\nc|d\n4:next\n");
  /* A quote inside an unquoted field is kept as it is. */
  p = puts_file("stray.csv", "5\"2,x\n");
  assert_string_equal(dump(p, NULL), "1:5\"2|x\n");
}

static void a_bom_is_dropped_from_the_first_field(void **state) {
  (void)state;
  const char *p = puts_file("bom.csv", "\xEF\xBB\xBFid,name\n1,李明\n");
  assert_string_equal(dump(p, NULL), "1:id|name\n2:1|李明\n");
  assert_string_equal(encoding(p, NULL), "utf-8 with BOM");
  assert_string_equal(dump(p, "UTF-8"), "1:id|name\n2:1|李明\n");
  assert_string_equal(encoding(p, "utf8"), "utf-8 with BOM");
  /* A BOM alone is an empty file. */
  p = puts_file("bomonly.csv", "\xEF\xBB\xBF");
  assert_string_equal(dump(p, NULL), "");
}

static void a_gbk_file_is_detected_and_converted(void **state) {
  (void)state;
  const char *p =
      puts_file("gbk.csv", "\xD0\xD5\xC3\xFB,\xB0\xE0\xBC\xB6\r\n" ZHANGSAN_GBK
                           ",\"3,1\"\r\n");
  const char *want = "1:姓名|班级\n2:张三|3,1\n";
  assert_string_equal(dump(p, NULL), want);
  assert_string_equal(encoding(p, NULL), "gb18030");
  assert_string_equal(dump(p, "gbk"), want);
  assert_string_equal(dump(p, "GB18030"), want);
  assert_string_equal(encoding(p, "gbk"), "gb18030");
  /* Four-byte GB18030 (U+1F600 and U+20BB7) and a GB18030 BOM. */
  p = puts_file("gb4.csv",
                "\x84\x31\x95\x33"
                "a\x94\x39\xFC\x36,\x95\x34\xB2\x35\n");
  assert_string_equal(dump(p, NULL), "1:a\xF0\x9F\x98\x80|\xF0\xA0\xAE\xB7\n");
}

/* A file whose second record starts at byte 'at' with 'tail', after a
** first record "h,xxx...\n" that fills the bytes before it. */
static const char *at_offset(const char *name, size_t at, const char *tail) {
  size_t tl = strlen(tail), n = at + tl;
  char *b = malloc(n);
  assert_non_null(b);
  memcpy(b, "h,", 2);
  memset(b + 2, 'x', at - 3);
  b[at - 1] = '\n';
  memcpy(b + at, tail, tl);
  const char *p = put(name, b, n);
  free(b);
  return p;
}

/* What dump gives for at_offset's file: the first record, then 'rest'. */
static void expect_after_filler(const char *path, const char *enc, size_t at,
                                const char *rest) {
  yz_buf want;
  yz_buf_init(&want, 1 << 20);
  yz_buf_adds(&want, "1:h|");
  for (size_t i = 0; i < at - 3; i++) yz_buf_addc(&want, 'x');
  yz_buf_addc(&want, '\n');
  yz_buf_adds(&want, rest);
  assert_string_equal(dump(path, enc), yz_buf_str(&want));
  yz_buf_free(&want);
}

static void characters_split_across_the_block_boundary(void **state) {
  (void)state;
  /* 张's two GBK bytes at 65535 and 65536. */
  const char *p = at_offset("gbsplit.csv", BLOCK - 3, "1," ZHANGSAN_GBK "\n");
  expect_after_filler(p, NULL, BLOCK - 3, "2:1|张三\n");
  assert_string_equal(encoding(p, NULL), "gb18030");
  expect_after_filler(p, "gbk", BLOCK - 3, "2:1|张三\n");
  /* A four-byte sequence cut 1+3, 2+2 and 3+1. */
  for (size_t k = 1; k <= 3; k++) {
    p = at_offset("gb4split.csv", BLOCK - k, "\x95\x34\xB2\x35,z\n");
    expect_after_filler(p, "gb18030", BLOCK - k, "2:\xF0\xA0\xAE\xB7|z\n");
  }
  /* 张 in UTF-8 (three bytes) cut 1+2 and 2+1. */
  p = at_offset("u8split.csv", BLOCK - 1, "张,三\n");
  expect_after_filler(p, NULL, BLOCK - 1, "2:张|三\n");
  p = at_offset("u8split2.csv", BLOCK - 2, "张,三\n");
  expect_after_filler(p, "utf-8", BLOCK - 2, "2:张|三\n");
}

static void line_ends_and_quotes_split_across_the_block_boundary(void **st) {
  (void)st;
  /* CR at 65535, LF at 65536: one line end, so the next record is line 3. */
  const char *p = at_offset("crlfsplit.csv", BLOCK - 2, "a\r\nb\n");
  expect_after_filler(p, NULL, BLOCK - 2, "2:a\n3:b\n");
  /* The same inside a quoted field, and a doubled quote cut in two. */
  p = at_offset("qsplit.csv", BLOCK - 3, "\"a\r\nb\",c\nd\n");
  expect_after_filler(p, NULL, BLOCK - 3, "2:a\r\nb|c\n4:d\n");
  p = at_offset("ddsplit.csv", BLOCK - 2, "\"\"\"\",q\n\"x\"\n");
  expect_after_filler(p, NULL, BLOCK - 2, "2:\"|q\n3:x\n");
  /* The closing quote last in a block, the comma first in the next. */
  p = at_offset("closesplit.csv", BLOCK - 3, "\"ab\",c\n");
  expect_after_filler(p, NULL, BLOCK - 3, "2:ab|c\n");
}

static void many_blocks_keep_the_line_count(void **state) {
  (void)state;
  yz_buf in, want, got;
  yz_buf_init(&in, 64 << 20);
  yz_buf_init(&want, 64 << 20);
  yz_buf_init(&got, 64 << 20);
  long line = 1;
  for (int i = 0; i < 40000; i++) {
    if (i % 7 == 0) {
      yz_buf_addf(&in, "%d,\"名字%d\n第二行\",\"x\"\"y\"\r\n", i, i);
      yz_buf_addf(&want, "%ld:%d|名字%d\n第二行|x\"y\n", line, i, i);
      line += 2;
    } else {
      yz_buf_addf(&in, "%d,名字%d,\n", i, i);
      yz_buf_addf(&want, "%ld:%d|名字%d|\n", line, i, i);
      line += 1;
    }
    if (i % 1000 == 0) {
      yz_buf_adds(&in, "\n\r\n");
      line += 2;
    }
  }
  assert_true(in.len > 10 * BLOCK);
  const char *p = put("many.csv", in.data, in.len);
  assert_string_equal(dump_buf(p, NULL, &got), yz_buf_str(&want));
  /* The same as GB18030. */
  yz_buf gb;
  char err[YZ_ERRMSG_MAX];
  yz_buf_init(&gb, 64 << 20);
  assert_int_equal(yz_csv_to_gbk(in.data, in.len, &gb, err, sizeof err), 0);
  p = put("many_gb.csv", gb.data, gb.len);
  assert_string_equal(encoding(p, NULL), "gb18030");
  assert_string_equal(dump_buf(p, NULL, &got), yz_buf_str(&want));
  yz_buf_free(&gb);
  yz_buf_free(&in);
  yz_buf_free(&want);
  yz_buf_free(&got);
}

static void trailing_and_blank_lines_are_skipped(void **state) {
  (void)state;
  const char *p = puts_file("blank.csv", "\n\r\na,b\n\n\r\n\rc\n\n\n\r\n");
  assert_string_equal(dump(p, NULL), "3:a|b\n7:c\n");
  p = puts_file("empty.csv", "");
  assert_string_equal(dump(p, NULL), "");
  p = puts_file("onlyblank.csv", "\r\n\r\n\n");
  assert_string_equal(dump(p, NULL), "");
}

static void a_line_of_commas_is_a_record_of_empty_fields(void **state) {
  (void)state;
  const char *p = puts_file("commas.csv", "a,b,c\n,,\n,\r\nx,\n,");
  assert_string_equal(dump(p, NULL), "1:a|b|c\n2:||\n3:|\n4:x|\n5:|\n");
  /* Spaces are data, not blank lines. */
  p = puts_file("spaces.csv", " \n a , b \n");
  assert_string_equal(dump(p, NULL), "1: \n2: a | b \n");
}

/* ------------------------------------------------------------------ errors */

static void invalid_gb18030_is_an_error_with_its_line(void **state) {
  (void)state;
  const char *p = puts_file("badgb.csv", ZHANGSAN_GBK ",1\n\"a\nb\",\xFF\n");
  assert_string_equal(dump(p, NULL),
                      "1:张三|1\nerror 3: invalid GB18030 byte sequence\n");
  p = puts_file("badgb2.csv", "a\n" ZHANGSAN_GBK ",\x81\x20x\n");
  assert_string_equal(dump(p, "gbk"),
                      "1:a\nerror 2: invalid GB18030 byte sequence\n");
  /* Cut off by the end of the file. */
  p = puts_file("badgb3.csv", "a\n\n" ZHANGSAN_GBK "\xD5");
  assert_string_equal(dump(p, "gbk"),
                      "1:a\nerror 3: invalid GB18030 byte sequence\n");
}

static void invalid_utf8_given_as_utf8_is_an_error_with_its_line(void **st) {
  (void)st;
  const char *p = puts_file("badu8.csv", "名,1\n\n名,\xC3\x28\n");
  assert_string_equal(dump(p, "utf-8"), "1:名|1\nerror 3: invalid UTF-8\n");
  /* Overlong forms and surrogates are invalid too. */
  p = puts_file("overlong.csv", "a\n\xC0\xAF\n");
  assert_string_equal(dump(p, "utf-8"), "1:a\nerror 2: invalid UTF-8\n");
  p = puts_file("surrogate.csv", "a\n\"x\n\xED\xA0\x80\"\n");
  assert_string_equal(dump(p, "utf-8"), "1:a\nerror 3: invalid UTF-8\n");
  /* A sequence cut off by the end of the file. */
  p = puts_file("cutu8.csv", "a\nb\xE5\xBC");
  assert_string_equal(dump(p, "utf-8"), "1:a\nerror 2: invalid UTF-8\n");
  /* A lead byte followed by a line end: the error is on the lead's line. */
  p = puts_file("leadnl.csv", "a\xE5\nb\n");
  assert_string_equal(dump(p, "utf-8"), "error 1: invalid UTF-8\n");
  /* A BOM does not settle auto: a file with one that is not UTF-8 is
  ** read as GB18030 (an editor put it in front of GBK text); given as
  ** UTF-8, the bad byte is an error on its line. */
  p = puts_file("bombad.csv",
                "\xEF\xBB\xBF"
                "a\nb\xFF\n");
  assert_string_equal(encoding(p, NULL), "gb18030");
  assert_string_equal(dump(p, "utf-8"), "1:a\nerror 2: invalid UTF-8\n");
  p = puts_file("bomgbk.csv",
                "\xEF\xBB\xBF\xD0\xD5\xC3\xFB\n" ZHANGSAN_GBK "\n");
  assert_string_equal(encoding(p, NULL), "gb18030");
  assert_string_equal(dump(p, NULL), "1:姓名\n2:张三\n");
  assert_string_equal(dump(p, "gbk"), "1:姓名\n2:张三\n");
  /* Left to auto, such a file is not UTF-8, so it is read as GB18030. */
  p = puts_file("badu8auto.csv", "a\n\xC3\x28\n");
  assert_string_equal(encoding(p, NULL), "gb18030");
  assert_string_equal(dump(p, NULL),
                      "1:a\nerror 2: invalid GB18030 byte sequence\n");
}

static void an_unterminated_quote_names_the_line_it_opened(void **state) {
  (void)state;
  const char *p = puts_file("unterm.csv", "a,b\nc,\"open\nmore\r\nend\n");
  assert_string_equal(dump(p, NULL),
                      "1:a|b\nerror 2: unterminated quoted field\n");
  p = puts_file("unterm2.csv", "\n\n\"");
  assert_string_equal(dump(p, NULL), "error 3: unterminated quoted field\n");
}

static void a_character_after_a_closing_quote_is_an_error(void **state) {
  (void)state;
  const char *p = puts_file("afterq.csv", "a\n\"x\ny\"z,1\n");
  assert_string_equal(
      dump(p, NULL),
      "1:a\nerror 3: unexpected character after closing quote\n");
  p = puts_file("afterq2.csv", "\"x\" ,1\n");
  assert_string_equal(dump(p, NULL),
                      "error 1: unexpected character after closing quote\n");
}

static void a_record_over_1_mib_is_refused_at_its_first_line(void **state) {
  (void)state;
  size_t n = YZ_CSV_RECORD_MAX + 100;
  char *b = malloc(n);
  assert_non_null(b);
  memcpy(b, "ok\n\n\"", 5);
  memset(b + 5, 'y', n - 5);
  b[1000] = '\n'; /* inside the quotes: the record starts on line 3 */
  const char *p = put("long.csv", b, n);
  assert_string_equal(dump(p, NULL),
                      "1:ok\nerror 3: record longer than 1 MiB\n");
  /* Just under the limit (the field's NUL counts) is a record. */
  memset(b, 'z', YZ_CSV_RECORD_MAX - 1);
  p = put("justfits.csv", b, YZ_CSV_RECORD_MAX - 1);
  yz_csv *c = yz_csv_open(p, NULL, NULL, 0);
  assert_non_null(c);
  const char *const *f;
  const size_t *lens;
  int nf;
  long line;
  assert_int_equal(yz_csv_next(c, &f, &lens, &nf, &line), 1);
  assert_int_equal(nf, 1);
  assert_int_equal(lens[0], YZ_CSV_RECORD_MAX - 1);
  assert_int_equal(yz_csv_next(c, &f, &lens, &nf, &line), 0);
  yz_csv_close(c);
  /* One byte more and it is refused. */
  p = put("justover.csv", b, YZ_CSV_RECORD_MAX);
  assert_string_equal(dump(p, NULL), "error 1: record longer than 1 MiB\n");
  free(b);
}

static void a_missing_file_is_named_in_the_error(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/x.csv", dir);
  char want[4200];
  snprintf(want, sizeof want, "cannot open %s: No such file or directory",
           path);
  assert_string_equal(open_error(path, NULL), want);
  assert_string_equal(open_error("x.csv", "gbk"),
                      "cannot open x.csv: No such file or directory");
  snprintf(want, sizeof want, "cannot open %s: Is a directory", dir);
  assert_string_equal(open_error(dir, "utf-8"), want);
  /* err may be NULL. */
  assert_null(yz_csv_open("x.csv", NULL, NULL, 0));
  yz_csv_close(NULL);
}

static void an_unknown_encoding_is_refused_before_opening(void **state) {
  (void)state;
  const char *p = puts_file("enc.csv", "a\n");
  assert_string_equal(
      open_error(p, "latin1"),
      "unknown encoding 'latin1' (expected auto, utf-8, gbk or gb18030)");
  assert_string_equal(
      open_error("missing.csv", ""),
      "unknown encoding '' (expected auto, utf-8, gbk or gb18030)");
  assert_string_equal(encoding(p, "AUTO"), "utf-8");
}

static void auto_needs_a_regular_file(void **state) {
  (void)state;
  assert_string_equal(open_error("/dev/null", NULL),
                      "cannot detect the encoding of /dev/null: not a "
                      "regular file (give the encoding)");
  char err[YZ_ERRMSG_MAX];
  yz_csv *c = yz_csv_open("/dev/null", "utf-8", err, sizeof err);
  assert_non_null(c);
  assert_int_equal(yz_csv_size(c), -1);
  assert_int_equal(yz_csv_next(c, NULL, NULL, NULL, NULL), 0);
  yz_csv_close(c);
}

static void pos_moves_through_the_file_to_its_size(void **state) {
  (void)state;
  const char *p = puts_file("pos.csv",
                            "\xEF\xBB\xBF"
                            "ab,c\r\nd\n");
  yz_csv *c = yz_csv_open(p, NULL, NULL, 0);
  assert_non_null(c);
  assert_int_equal(yz_csv_size(c), 11);
  assert_int_equal(yz_csv_pos(c), 3);
  long line;
  assert_int_equal(yz_csv_next(c, NULL, NULL, NULL, &line), 1);
  assert_int_equal(yz_csv_pos(c), 8); /* through the CR; the LF is next */
  assert_int_equal(yz_csv_next(c, NULL, NULL, NULL, &line), 1);
  assert_int_equal(line, 2);
  assert_int_equal(yz_csv_pos(c), 11);
  assert_int_equal(yz_csv_next(c, NULL, NULL, NULL, &line), 0);
  assert_int_equal(yz_csv_pos(c), 11);
  assert_string_equal(yz_csv_error(c), "");
  yz_csv_close(c);
}

/* ------------------------------------------------------------------ writing */

static void the_writer_quotes_only_what_needs_it(void **state) {
  (void)state;
  yz_buf b;
  yz_buf_init(&b, 4096);
  const char *f[] = {"plain",      "李明", "a,b",    "say \"hi\"",
                     "two\nlines", "cr\r", " lead",  "trail ",
                     "\ttab",      "",     "mid dle"};
  assert_int_equal(yz_csv_record(&b, f, NULL, 11), YZ_OK);
  assert_string_equal(yz_buf_str(&b),
                      "plain,李明,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\","
                      "\"cr\r\",\" lead\",\"trail \",\"\ttab\",,mid dle\r\n");
  yz_buf_reset(&b);
  const char *one[] = {""};
  assert_int_equal(yz_csv_record(&b, one, NULL, 1), YZ_OK);
  assert_int_equal(yz_csv_record(&b, one, NULL, 0), YZ_OK);
  assert_int_equal(yz_csv_field(&b, "\"", 1), YZ_OK);
  assert_string_equal(yz_buf_str(&b), "\"\"\r\n\r\n\"\"\"\"");
  /* Past the cap nothing is appended. */
  yz_buf small;
  yz_buf_init(&small, 8);
  assert_int_equal(yz_csv_field(&small, "abc", 3), YZ_OK);
  assert_int_equal(yz_csv_record(&small, f, NULL, 3), YZ_ENOMEM);
  assert_int_equal(yz_csv_field(&small, "a,bcd", 5), YZ_ENOMEM);
  assert_string_equal(yz_buf_str(&small), "abc");
  yz_buf_free(&small);
  yz_buf_free(&b);
}

static void written_records_read_back_identical(void **state) {
  (void)state;
  const char *rows[][4] = {
      {"id", "name", "notes", "class"},
      {"1", "李, 明", "说\"你好\"", " 3 "},
      {"2", "", "line1\r\nline2\nline3\rend", ""},
      {"", "", "", ""},
      {"\"", "\"\"", ",", "\xEF\xBB\xBF"},
  };
  yz_buf b, got;
  yz_buf_init(&b, 4096);
  yz_buf_init(&got, 4096);
  for (int i = 0; i < 5; i++)
    assert_int_equal(yz_csv_record(&b, rows[i], NULL, 4), YZ_OK);
  const char *one[] = {""};
  assert_int_equal(yz_csv_record(&b, one, NULL, 1), YZ_OK);
  const char *p = put("roundtrip.csv", b.data, b.len);
  yz_csv *c = yz_csv_open(p, NULL, NULL, 0);
  assert_non_null(c);
  const char *const *f;
  const size_t *lens;
  int n;
  long line, want_line = 1;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(yz_csv_next(c, &f, &lens, &n, &line), 1);
    assert_int_equal(n, 4);
    assert_int_equal(line, want_line);
    for (int j = 0; j < 4; j++) {
      assert_int_equal(lens[j], strlen(rows[i][j]));
      assert_memory_equal(f[j], rows[i][j], lens[j]);
    }
    want_line += i == 2 ? 4 : 1;
  }
  assert_int_equal(yz_csv_next(c, &f, &lens, &n, &line), 1);
  assert_int_equal(n, 1);
  assert_int_equal(lens[0], 0);
  assert_int_equal(line, 9);
  assert_int_equal(yz_csv_next(c, &f, &lens, &n, &line), 0);
  yz_csv_close(c);
  yz_buf_free(&b);
  yz_buf_free(&got);
}

static void gbk_output_is_gb18030_and_reads_back(void **state) {
  (void)state;
  yz_buf b;
  char err[YZ_ERRMSG_MAX];
  yz_buf_init(&b, 4096);
  /* GBK characters are GBK bytes; U+1F600 and U+20BB7 (not in GBK) are
  ** GB18030 four-byte sequences. */
  const char *in = "张三,a\r\n\xF0\x9F\x98\x80\xF0\xA0\xAE\xB7\r\n";
  assert_int_equal(yz_csv_to_gbk(in, strlen(in), &b, err, sizeof err), 0);
  assert_string_equal(err, "");
  assert_int_equal(b.len, 18);
  assert_memory_equal(
      b.data, ZHANGSAN_GBK ",a\r\n\x94\x39\xFC\x36\x95\x34\xB2\x35\r\n", 18);
  const char *p = put("out_gbk.csv", b.data, b.len);
  assert_string_equal(dump(p, NULL),
                      "1:张三|a\n2:\xF0\x9F\x98\x80\xF0\xA0\xAE\xB7\n");
  /* Appends; an empty input adds nothing. */
  assert_int_equal(yz_csv_to_gbk("", 0, &b, err, sizeof err), 0);
  assert_int_equal(yz_csv_to_gbk("x", 1, &b, NULL, 0), 0);
  assert_int_equal(b.len, 19);
  yz_buf_free(&b);
}

static void gbk_output_names_what_it_cannot_write(void **state) {
  (void)state;
  yz_buf b;
  char err[YZ_ERRMSG_MAX];
  yz_buf_init(&b, 4096);
  yz_buf_adds(&b, "kept");
  /* glibc's GB18030 has no bytes for a few private-use characters. */
  const char *pua = "ab张三\xEE\x9E\x8D";
  assert_int_equal(yz_csv_to_gbk(pua, strlen(pua), &b, err, sizeof err), -1);
  assert_string_equal(
      err, "character U+E78D at byte 8 cannot be represented in GB18030");
  assert_string_equal(yz_buf_str(&b), "kept");
  const char *bad = "名字\xC3\x28";
  assert_int_equal(yz_csv_to_gbk(bad, strlen(bad), &b, err, sizeof err), -1);
  assert_string_equal(err, "invalid UTF-8 at byte 6");
  assert_int_equal(yz_csv_to_gbk("ab\xFF", 3, &b, err, sizeof err), -1);
  assert_string_equal(err, "invalid UTF-8 at byte 2");
  assert_int_equal(yz_csv_to_gbk("a\xE5\xBC", 3, &b, err, sizeof err), -1);
  assert_string_equal(err, "invalid UTF-8 at byte 1");
  assert_string_equal(yz_buf_str(&b), "kept");
  /* Past the cap. */
  yz_buf small;
  yz_buf_init(&small, 3);
  assert_int_equal(yz_csv_to_gbk("张三", 6, &small, err, sizeof err), -1);
  assert_string_equal(err, "output too large");
  assert_int_equal(small.len, 0);
  yz_buf_free(&small);
  yz_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(simple_rows_come_back_with_their_lines),
      cmocka_unit_test(crlf_ends_a_line_once),
      cmocka_unit_test(a_lone_cr_ends_a_line),
      cmocka_unit_test(quoted_fields_keep_commas_quotes_and_line_ends),
      cmocka_unit_test(a_bom_is_dropped_from_the_first_field),
      cmocka_unit_test(a_gbk_file_is_detected_and_converted),
      cmocka_unit_test(characters_split_across_the_block_boundary),
      cmocka_unit_test(line_ends_and_quotes_split_across_the_block_boundary),
      cmocka_unit_test(many_blocks_keep_the_line_count),
      cmocka_unit_test(trailing_and_blank_lines_are_skipped),
      cmocka_unit_test(a_line_of_commas_is_a_record_of_empty_fields),
      cmocka_unit_test(invalid_gb18030_is_an_error_with_its_line),
      cmocka_unit_test(invalid_utf8_given_as_utf8_is_an_error_with_its_line),
      cmocka_unit_test(an_unterminated_quote_names_the_line_it_opened),
      cmocka_unit_test(a_character_after_a_closing_quote_is_an_error),
      cmocka_unit_test(a_record_over_1_mib_is_refused_at_its_first_line),
      cmocka_unit_test(a_missing_file_is_named_in_the_error),
      cmocka_unit_test(an_unknown_encoding_is_refused_before_opening),
      cmocka_unit_test(auto_needs_a_regular_file),
      cmocka_unit_test(pos_moves_through_the_file_to_its_size),
      cmocka_unit_test(the_writer_quotes_only_what_needs_it),
      cmocka_unit_test(written_records_read_back_identical),
      cmocka_unit_test(gbk_output_is_gb18030_and_reads_back),
      cmocka_unit_test(gbk_output_names_what_it_cannot_write),
  };
  return cmocka_run_group_tests_name("csv", tests, make_dir, remove_dir);
}
