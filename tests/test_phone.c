/*
** test_phone.c: guardians' phone numbers and SMS lengths: the written forms
** that normalize to E.164, the refusals and their masked messages, masks
** for logs, and SMS part counting at the GSM-7 and UCS-2 boundaries.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"
#include "testutil.h"
#include "yz.h"

#define CJK "本" /* one Chinese character: 3 bytes, 1 UTF-16 unit */
#define EMOJI "\xF0\x9F\x98\x80" /* U+1F600: 4 bytes, a surrogate pair */

/* Writes 'unit' n times into buf (size cap) and returns buf. */
static char *repeat(char *buf, size_t cap, const char *unit, int n) {
  size_t ul = strlen(unit), at = strlen(buf);
  for (int i = 0; i < n; i++) {
    assert_true(at + ul < cap);
    memcpy(buf + at, unit, ul);
    at += ul;
  }
  buf[at] = '\0';
  return buf;
}

/* Asserts that 'in' normalizes to 'want'. */
static void accepts(const char *in, const char *want) {
  char out[YZ_PHONE_MAX], err[YZ_ERRMSG_MAX];
  int rc = yz_phone_normalize(in, out, sizeof out, err, sizeof err);
  if (rc != YZ_OK) fprintf(stderr, "refused '%s': %s\n", in, err);
  assert_int_equal(rc, YZ_OK);
  assert_string_equal(out, want);
  assert_string_equal(err, "");
}

/* Asserts that 'in' is refused with a message that names it masked, says
** 'why', and holds no run of 6 of its digits. Returns nothing; the message
** is copied into msg when msg is not NULL. */
static void refuses(const char *in, const char *why, char *msg, size_t n) {
  char out[YZ_PHONE_MAX] = "junk", err[YZ_ERRMSG_MAX], masked[32];
  char head[64], digits[YZ_PHONE_INPUT_MAX * 3 + 1];
  int rc = yz_phone_normalize(in, out, sizeof out, err, sizeof err);
  assert_int_equal(rc, YZ_EUSAGE);
  assert_string_equal(out, "");
  yz_phone_mask(in, masked, sizeof masked);
  snprintf(head, sizeof head, "bad phone number '%s': ", masked);
  assert_true(tu_contains(err, head));
  assert_true(tu_contains(err, why));
  size_t nd = 0;
  for (const char *c = in; *c; c++)
    if (*c >= '0' && *c <= '9') digits[nd++] = *c;
  for (size_t i = 0; i + 6 <= nd; i++) {
    char window[7];
    memcpy(window, digits + i, 6);
    window[6] = '\0';
    if (strstr(err, window)) fprintf(stderr, "'%s' leaks in: %s\n", in, err);
    assert_null(strstr(err, window));
  }
  if (msg) snprintf(msg, n, "%s", err);
}

static const char *mask(const char *in) {
  static char out[YZ_PHONE_MASK_MAX];
  yz_phone_mask(in, out, sizeof out);
  return out;
}

/* ------------------------------------------------------------ normalizing */

static void a_bare_mainland_mobile_gets_plus86(void **state) {
  (void)state;
  accepts("13800138000", "+8613800138000");
  accepts("19912345678", "+8619912345678");
}

static void spaces_dashes_dots_and_parentheses_are_ignored(void **state) {
  (void)state;
  accepts("138 0013 8000", "+8613800138000");
  accepts("138-0013-8000", "+8613800138000");
  accepts("138.0013.8000", "+8613800138000");
  accepts("(138) 0013-8000", "+8613800138000");
  accepts("  13800138000\t", "+8613800138000");
}

static void prefixes_plus86_0086_and_86_are_accepted(void **state) {
  (void)state;
  accepts("+8613800138000", "+8613800138000");
  accepts("+86 138 0013 8000", "+8613800138000");
  accepts("(+86) 138 0013 8000", "+8613800138000");
  accepts("0086 138 0013 8000", "+8613800138000");
  accepts("008613800138000", "+8613800138000");
  accepts("8613800138000", "+8613800138000");
  accepts("86-138-0013-8000", "+8613800138000");
}

static void full_width_forms_from_a_chinese_keyboard_are_accepted(void **st) {
  (void)st;
  accepts("１３８００１３８０００", "+8613800138000");
  accepts("＋８６　１３８－００１３－８０００", "+8613800138000");
  accepts("（＋86）138．0013．8000", "+8613800138000");
  /* Pasted from a spreadsheet or a word processor. */
  accepts(
      "138\xC2\xA0"
      "0013\xC2\xA0"
      "8000",
      "+8613800138000");
  accepts("138–0013–8000", "+8613800138000");
}

static void every_mobile_range_13_to_19_is_accepted_and_10_to_12_not(
    void **state) {
  (void)state;
  char in[16], want[20];
  for (int p = 3; p <= 9; p++) {
    snprintf(in, sizeof in, "1%d012345678", p);
    snprintf(want, sizeof want, "+861%d012345678", p);
    accepts(in, want);
  }
  for (int p = 0; p <= 2; p++) {
    snprintf(in, sizeof in, "1%d012345678", p);
    refuses(in, "a mainland mobile has 11 digits starting 13-19", NULL, 0);
  }
}

static void other_countries_written_as_e164_are_kept(void **state) {
  (void)state;
  accepts("+44 7911 123456", "+447911123456");
  accepts("+1 (650) 253-0000", "+16502530000");
  accepts("+852 9123 4567", "+85291234567");
  accepts("+35312345", "+35312345");               /* 8 digits: the least */
  accepts("+123456789012345", "+123456789012345"); /* 15: the most */
}

static void e164_outside_8_to_15_digits_is_refused(void **state) {
  (void)state;
  refuses("+3531234", "8 to 15 digits after the '+' (this one has 7)", NULL, 0);
  refuses("+1234567890123456", "(this one has 16)", NULL, 0);
  refuses("+0123456789", "country code after '+' cannot start with 0", NULL, 0);
}

static void a_plus86_landline_is_refused_because_sms_needs_a_mobile(
    void **state) {
  (void)state;
  char msg[YZ_ERRMSG_MAX];
  refuses("+86 10 8888 6666", "SMS cannot reach a landline", msg, sizeof msg);
  assert_string_equal(msg,
                      "bad phone number '+86****66': a +86 number must be a "
                      "mainland mobile, 11 digits starting 13-19: SMS cannot "
                      "reach a landline");
  refuses("0086 10 8888 6666", "SMS cannot reach a landline", NULL, 0);
  refuses("+86 138 0013 800", "SMS cannot reach a landline", NULL, 0);
}

static void landlines_and_short_numbers_without_plus_are_refused(void **st) {
  (void)st;
  const char *why =
      "a mainland mobile has 11 digits starting 13-19 (or give "
      "+CC... for another country)";
  refuses("010-8888 6666", why, NULL, 0);
  refuses("0755 8888 6666", why, NULL, 0);
  refuses("110", why, NULL, 0);
  refuses("1380013800", why, NULL, 0);   /* 10 digits */
  refuses("138001380001", why, NULL, 0); /* 12 digits */
  refuses("447911123456", why, NULL, 0); /* another country without '+' */
  refuses("86 10 8888 6666", why, NULL, 0);
}

static void the_message_names_the_input_masked_not_raw(void **state) {
  (void)state;
  char msg[YZ_ERRMSG_MAX];
  refuses("138001312", "13-19", msg, sizeof msg);
  assert_string_equal(msg,
                      "bad phone number '138****12': a mainland mobile has 11 "
                      "digits starting 13-19 (or give +CC... for another "
                      "country)");
  assert_null(strstr(msg, "138001312"));
  assert_null(strstr(msg, "0013"));
}

static void letters_and_other_characters_are_refused(void **state) {
  (void)state;
  char msg[YZ_ERRMSG_MAX];
  refuses("138abc00138000", "'a' does not belong in a phone number", msg,
          sizeof msg);
  assert_string_equal(msg,
                      "bad phone number '138****00': 'a' does not belong in "
                      "a phone number (only digits, '+', spaces, dashes, "
                      "dots and parentheses do)");
  refuses("13800138000 ext 12", "'e' does not belong", NULL, 0);
  refuses("13800138000/1", "'/' does not belong", NULL, 0);
  refuses("一三八〇〇一三八〇〇〇", "a character that does not belong", NULL,
          0);
  refuses(
      "138\xFF"
      "00138000",
      "not valid UTF-8", NULL, 0);
}

static void a_plus_anywhere_but_first_is_refused(void **state) {
  (void)state;
  refuses("86+13800138000", "a '+' may only come first", NULL, 0);
  refuses("++8613800138000", "a '+' may only come first", NULL, 0);
  refuses("13800138000+", "a '+' may only come first", NULL, 0);
}

static void another_country_with_00_is_refused_with_a_hint(void **state) {
  (void)state;
  refuses("0044 7911 123456", "as +CC...", NULL, 0);
  refuses("00", "as +CC...", NULL, 0);
}

static void null_empty_blank_and_too_long_input_is_refused(void **state) {
  (void)state;
  char out[YZ_PHONE_MAX], err[YZ_ERRMSG_MAX];
  assert_int_equal(yz_phone_normalize(NULL, out, sizeof out, err, sizeof err),
                   YZ_EUSAGE);
  assert_string_equal(err, "no phone number given");
  assert_string_equal(out, "");
  char msg[YZ_ERRMSG_MAX];
  refuses("", "it has no digits", msg, sizeof msg);
  assert_true(tu_contains(msg, "bad phone number '': it has no digits"));
  refuses("  ( ) - ", "it has no digits", NULL, 0);
  /* 64 bytes is the most: a valid number padded to 64 passes, 65 not. */
  char in[80];
  memset(in, ' ', sizeof in);
  memcpy(in, "13800138000", 11);
  in[YZ_PHONE_INPUT_MAX] = '\0';
  accepts(in, "+8613800138000");
  in[YZ_PHONE_INPUT_MAX] = ' ';
  in[YZ_PHONE_INPUT_MAX + 1] = '\0';
  refuses(in, "longer than 64 bytes", NULL, 0);
}

static void a_short_output_buffer_is_refused_and_err_is_optional(void **st) {
  (void)st;
  char out[14] = "junk", err[YZ_ERRMSG_MAX];
  assert_int_equal(
      yz_phone_normalize("13800138000", out, sizeof out, err, sizeof err),
      YZ_EUSAGE);
  assert_string_equal(out, "");
  assert_true(tu_contains(err, "17 bytes"));
  char full[YZ_PHONE_MAX];
  assert_int_equal(yz_phone_normalize("13800138000", full, 15, NULL, 0), YZ_OK);
  assert_string_equal(full, "+8613800138000");
  assert_int_equal(yz_phone_normalize("abc", full, sizeof full, NULL, 0),
                   YZ_EUSAGE);
}

/* ---------------------------------------------------------------- masking */

static void a_mainland_mobile_masks_to_first_3_and_last_4(void **state) {
  (void)state;
  assert_string_equal(mask("+8613800138000"), "138****8000");
  assert_string_equal(mask("138-0013-8000"), "138****8000");
  assert_string_equal(mask("(+86) 138 0013 8000"), "138****8000");
  assert_string_equal(mask("１３８００１３８０００"), "138****8000");
}

static void other_e164_keeps_the_country_code_and_last_4(void **state) {
  (void)state;
  assert_string_equal(mask("+447911123456"), "+44****3456");
  assert_string_equal(mask("+1 650 253 0000"), "+1****0000");
  assert_string_equal(mask("+85291234567"), "+852****4567");
  assert_string_equal(mask("+79161234567"), "+7****4567");
  /* Too short for 4 at the end: at least 4 digits stay hidden. */
  assert_string_equal(mask("+35312345"), "+353****5");
  assert_string_equal(mask("+441234567"), "+44****567");
}

static void anything_else_keeps_at_most_3_and_2_characters(void **state) {
  (void)state;
  assert_string_equal(mask("138001312"), "138****12");
  assert_string_equal(mask("+86 10 8888 6666"), "+86****66");
  assert_string_equal(mask("  hello world  "), "hel****ld");
  assert_string_equal(mask("１２３４５６７８９"), "123****89");
  assert_string_equal(mask("一二三四五六七八九"), "???****??");
  assert_string_equal(mask("12\xFF"
                           "456789"),
                      "12?****89");
  assert_string_equal(mask("12345678"), "123****8");
  assert_string_equal(mask("123456"), "12****");
  assert_string_equal(mask("12345"), "1****");
  assert_string_equal(mask("1234"), "****");
  assert_string_equal(mask("1"), "****");
  assert_string_equal(mask(""), "");
  assert_string_equal(mask(NULL), "");
}

static void a_mask_never_shows_more_than_7_digits(void **state) {
  (void)state;
  char longest[YZ_PHONE_INPUT_MAX * 2] = "";
  repeat(longest, sizeof longest, "1234567890", 12);
  const char *inputs[] = {
      "+8613800138000",   "+123456789012345", "+35312345", "13800138000",
      "1380013800012345", "+86 10 8888 6666", longest,     "0086 10 8888 6666"};
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    const char *m = mask(inputs[i]);
    int digits = 0;
    for (const char *c = m; *c; c++) digits += *c >= '0' && *c <= '9';
    if (digits > 7) fprintf(stderr, "'%s' masks to %s\n", inputs[i], m);
    assert_true(digits <= 7);
    assert_non_null(strstr(m, "****"));
  }
}

static void a_mask_truncates_to_the_buffer(void **state) {
  (void)state;
  char out[5] = "xxxx";
  yz_phone_mask("+8613800138000", out, sizeof out);
  assert_string_equal(out, "138*");
  yz_phone_mask("+8613800138000", out, 0); /* nothing written */
  assert_string_equal(out, "138*");
}

/* -------------------------------------------------------------- SMS parts */

static void count(const char *text, int ucs2, int units, int parts) {
  yz_sms_count c = {-1, -1, -1};
  assert_int_equal(yz_sms_count_text(text, strlen(text), &c), YZ_OK);
  assert_int_equal(c.ucs2, ucs2);
  assert_int_equal(c.units, units);
  assert_int_equal(c.parts, parts);
}

static void empty_text_is_one_gsm_part_of_nothing(void **state) {
  (void)state;
  count("", 0, 0, 1);
  yz_sms_count c;
  assert_int_equal(yz_sms_count_text(NULL, 0, &c), YZ_OK);
  assert_int_equal(c.units, 0);
  assert_int_equal(c.parts, 1);
}

static void gsm_text_fits_160_in_one_part_then_153_per_part(void **state) {
  (void)state;
  char t[1024] = "";
  count(repeat(t, sizeof t, "a", 160), 0, 160, 1);
  count(repeat(t, sizeof t, "a", 1), 0, 161, 2);
  t[0] = '\0';
  count(repeat(t, sizeof t, "a", 306), 0, 306, 2);
  count(repeat(t, sizeof t, "a", 1), 0, 307, 3);
}

static void gsm_basic_table_letters_count_one_septet(void **state) {
  (void)state;
  const char *basic =
      "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?"
      "¡AZÄÖÑÜ§¿azäöñüà";
  count(basic, 0, 71, 1);
  count("Hello, 王 family", 1, 15, 1); /* one Chinese character: UCS-2 */
  count("`", 1, 1, 1);                 /* the backtick is not GSM */
  count("ç", 1, 1, 1);                 /* only the capital Ç is */
}

static void gsm_extension_characters_count_two_septets(void **state) {
  (void)state;
  count("^{}\\[~]|€\f", 0, 20, 1);
  char t[1024] = "";
  /* 80 euro signs are 160 septets: one part; one more 'a' makes two. */
  count(repeat(t, sizeof t, "€", 80), 0, 160, 1);
  count(repeat(t, sizeof t, "a", 1), 0, 161, 2);
}

static void an_extension_character_is_not_split_across_parts(void **state) {
  (void)state;
  char t[1024] = "";
  /* 152 + 2 + 152 = 306 septets, 2 parts by division, but the '€' does not
  ** fit in the first part's last septet: 152 | 2 + 151 | 1. */
  repeat(t, sizeof t, "a", 152);
  repeat(t, sizeof t, "€", 1);
  count(repeat(t, sizeof t, "a", 152), 0, 306, 3);
  /* With 151 before it, the '€' ends the first part exactly. */
  t[0] = '\0';
  repeat(t, sizeof t, "a", 151);
  repeat(t, sizeof t, "€", 1);
  count(repeat(t, sizeof t, "a", 153), 0, 306, 2);
}

static void chinese_text_is_ucs2_70_in_one_part_then_67(void **state) {
  (void)state;
  count("本月请给父母写一封信", 1, 10, 1);
  char t[1024] = "";
  count(repeat(t, sizeof t, CJK, 70), 1, 70, 1);
  count(repeat(t, sizeof t, CJK, 1), 1, 71, 2);
  t[0] = '\0';
  count(repeat(t, sizeof t, CJK, 134), 1, 134, 2);
  count(repeat(t, sizeof t, CJK, 1), 1, 135, 3);
}

static void an_emoji_is_two_units_and_never_split(void **state) {
  (void)state;
  count(EMOJI, 1, 2, 1);
  count("ok " EMOJI, 1, 5, 1);
  char t[1024] = "";
  /* 66 + 2 + 66 = 134 units, 2 parts by division, but the surrogate pair
  ** does not fit in the first part's last unit: 66 | 2 + 65 | 1. */
  repeat(t, sizeof t, CJK, 66);
  repeat(t, sizeof t, EMOJI, 1);
  count(repeat(t, sizeof t, CJK, 66), 1, 134, 3);
  /* 35 emoji are exactly 70 units: one part. */
  t[0] = '\0';
  count(repeat(t, sizeof t, EMOJI, 35), 1, 70, 1);
}

static void invalid_utf8_is_refused(void **state) {
  (void)state;
  static const char *bad[] = {
      "\xC3",             /* truncated */
      "abc\xE6\x9C",      /* truncated in the middle of 本 */
      "\x80",             /* a stray continuation byte */
      "\xC0\xAF",         /* overlong '/' */
      "\xE0\x80\xAF",     /* overlong again */
      "\xED\xA0\x80",     /* an encoded surrogate */
      "\xF4\x90\x80\x80", /* past U+10FFFF */
      "\xFF",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    yz_sms_count c = {1, 1, 1};
    assert_int_equal(yz_sms_count_text(bad[i], strlen(bad[i]), &c), YZ_EUSAGE);
    assert_int_equal(c.ucs2, 0);
    assert_int_equal(c.units, 0);
    assert_int_equal(c.parts, 0);
  }
  assert_int_equal(yz_sms_count_text("abc", 3, NULL), YZ_EUSAGE);
  yz_sms_count c;
  assert_int_equal(yz_sms_count_text(NULL, 3, &c), YZ_EUSAGE);
}

static void the_length_argument_is_respected(void **state) {
  (void)state;
  yz_sms_count c;
  /* Only the first 3 bytes, the one Chinese character, are counted. */
  assert_int_equal(yz_sms_count_text("本abc", 3, &c), YZ_OK);
  assert_int_equal(c.ucs2, 1);
  assert_int_equal(c.units, 1);
  /* A length cutting a character in two is invalid UTF-8. */
  assert_int_equal(yz_sms_count_text("本abc", 2, &c), YZ_EUSAGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_bare_mainland_mobile_gets_plus86),
      cmocka_unit_test(spaces_dashes_dots_and_parentheses_are_ignored),
      cmocka_unit_test(prefixes_plus86_0086_and_86_are_accepted),
      cmocka_unit_test(full_width_forms_from_a_chinese_keyboard_are_accepted),
      cmocka_unit_test(
          every_mobile_range_13_to_19_is_accepted_and_10_to_12_not),
      cmocka_unit_test(other_countries_written_as_e164_are_kept),
      cmocka_unit_test(e164_outside_8_to_15_digits_is_refused),
      cmocka_unit_test(a_plus86_landline_is_refused_because_sms_needs_a_mobile),
      cmocka_unit_test(landlines_and_short_numbers_without_plus_are_refused),
      cmocka_unit_test(the_message_names_the_input_masked_not_raw),
      cmocka_unit_test(letters_and_other_characters_are_refused),
      cmocka_unit_test(a_plus_anywhere_but_first_is_refused),
      cmocka_unit_test(another_country_with_00_is_refused_with_a_hint),
      cmocka_unit_test(null_empty_blank_and_too_long_input_is_refused),
      cmocka_unit_test(a_short_output_buffer_is_refused_and_err_is_optional),
      cmocka_unit_test(a_mainland_mobile_masks_to_first_3_and_last_4),
      cmocka_unit_test(other_e164_keeps_the_country_code_and_last_4),
      cmocka_unit_test(anything_else_keeps_at_most_3_and_2_characters),
      cmocka_unit_test(a_mask_never_shows_more_than_7_digits),
      cmocka_unit_test(a_mask_truncates_to_the_buffer),
      cmocka_unit_test(empty_text_is_one_gsm_part_of_nothing),
      cmocka_unit_test(gsm_text_fits_160_in_one_part_then_153_per_part),
      cmocka_unit_test(gsm_basic_table_letters_count_one_septet),
      cmocka_unit_test(gsm_extension_characters_count_two_septets),
      cmocka_unit_test(an_extension_character_is_not_split_across_parts),
      cmocka_unit_test(chinese_text_is_ucs2_70_in_one_part_then_67),
      cmocka_unit_test(an_emoji_is_two_units_and_never_split),
      cmocka_unit_test(invalid_utf8_is_refused),
      cmocka_unit_test(the_length_argument_is_respected),
  };
  return cmocka_run_group_tests_name("phone", tests, NULL, NULL);
}
