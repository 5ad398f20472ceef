/*
** phone.h: guardians' phone numbers and the text messages sent to them:
** normalizing what people write into E.164, masking numbers for logs and
** error messages, and counting how many SMS parts a text costs.
**
** Pure C, no allocation, no global state.
*/
#ifndef YZ_PHONE_H
#define YZ_PHONE_H

#include <stddef.h>

#define YZ_PHONE_MAX 17       /* bytes for any E.164 number and its NUL */
#define YZ_PHONE_MASK_MAX 16  /* bytes for any mask and its NUL */
#define YZ_PHONE_INPUT_MAX 64 /* longest input accepted, in bytes */

/* Normalizes a written phone number to E.164 ("+8613800138000") in out
** (which needs YZ_PHONE_MAX bytes).
**
** Accepted: a mainland mobile, 11 digits 1[3-9]xxxxxxxxx, alone or after
** +86, 0086 or 86; spaces, tabs, dashes, dots and parentheses anywhere
** ("(+86) 138-0013-8000"), and their full-width forms (digits, plus, space,
** hyphen, dot and parentheses as typed by a Chinese input method), the
** Unicode dashes U+2010-U+2015 and the no-break space. Any other number
** must be written as E.164: '+', a country code not starting with 0, then
** the subscriber, 8 to 15 digits in all. A +86 number must be a mobile:
** SMS cannot reach a landline.
**
** Returns YZ_OK, or YZ_EUSAGE with out set to "" and a message in err that
** names the input only masked (yz_phone_mask), never the raw digits:
**   bad phone number '138****12': a mainland mobile has 11 digits starting
**   13-19 (or give +CC... for another country)
** NULL, empty, longer than YZ_PHONE_INPUT_MAX bytes, letters or other
** characters, a misplaced '+', and an out shorter than needed are refused.
** err may be NULL (errlen 0) when the message is not wanted. */
int yz_phone_normalize(const char *in, char *out, size_t outlen, char *err,
                       size_t errlen);

/* Writes a form of 'number' safe for logs into out: never more than 7
** digits of it, always at least 4 hidden behind "****". The number may be
** normalized or written in any form yz_phone_normalize accepts:
**   a mainland mobile      the first 3 and the last 4 digits, without +86:
**                          "138****8000"
**   another E.164 number   '+', the country code (by the ITU list of one-
**                          and two-digit codes, else three digits), and the
**                          last 4 digits: "+44****3456", "+1****0000";
**                          fewer at the end when the number is so short that
**                          4 digits would not stay hidden
**   anything else          at most the first 3 and the last 2 characters
**                          (leading and trailing blanks dropped; full-width
**                          digits shown as ASCII, other non-ASCII as '?'),
**                          so that at least 4 stay hidden: "138****12",
**                          "abc****yz"; 4 characters or fewer give "****"
** NULL or an empty string give "". out is always NUL-terminated (truncated
** if outlen < YZ_PHONE_MASK_MAX, which only hides more). */
void yz_phone_mask(const char *number, char *out, size_t outlen);

/* What a text costs as SMS. */
typedef struct {
  int ucs2;  /* 1 when the text needs UCS-2, 0 when it fits GSM-7 */
  int units; /* GSM-7: septets; UCS-2: UTF-16 code units */
  int parts; /* SMS parts needed to send it (concatenated SMS) */
} yz_sms_count;

/* Counts the SMS parts of len bytes of UTF-8 text (utf8 may be NULL when
** len is 0). A text whose every character is in the GSM 03.38 default
** alphabet (3GPP TS 23.038: the basic table, and the extension table's
** ^ { } \ [ ~ ] |, the euro sign and form feed at 2 septets each) is sent
** as GSM-7: one part up to 160 septets, else parts of 153 packed greedily,
** never splitting an extension character's escape from it. Any other
** character makes the whole text UCS-2: one part up to 70 UTF-16 units,
** else parts of 67, never splitting a surrogate pair (characters beyond the
** BMP, such as emoji, count 2). The empty text is 0 units in 1 part.
** Chinese text is UCS-2: 70 characters fit one part, 71 need two.
**
** Returns YZ_OK, or YZ_EUSAGE for invalid UTF-8 (overlong forms, encoded
** surrogates, code points past U+10FFFF, truncated sequences), a NULL out
** or text, or len over INT_MAX / 2; then *out (if given) is all zero. No
** message is written. */
int yz_sms_count_text(const char *utf8, size_t len, yz_sms_count *out);

#endif
