/*
** phone.c: phone numbers and SMS lengths (see phone.h).
**
** Divided into: UTF-8 decoding, shared by everything here; normalizing a
** written number; masking; counting SMS parts.
**
** Normalizing reads the input once as a stream of digits, a '+' and
** separators, then decides by the digits alone. Masking reuses that parse,
** so a number is masked the same way whether it is written "138 0013 8000"
** or "+8613800138000".
*/
#include "phone.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "yz.h"

/* ----------------------------------------------------------------- UTF-8 */

/* Decodes the code point at s[*i] (s has len bytes) into *cp and moves *i
** past it. Returns 0, or -1 for an invalid sequence (overlong, surrogate,
** past U+10FFFF, truncated, stray continuation byte); *i then moves one
** byte on so that callers can go on scanning. */
static int decode(const unsigned char *s, size_t len, size_t *i, uint32_t *cp) {
  size_t at = *i;
  unsigned char c = s[at];
  uint32_t v, min;
  size_t n;
  *i = at + 1;
  if (c < 0x80) {
    *cp = c;
    return 0;
  } else if (c >= 0xC2 && c <= 0xDF) {
    n = 1;
    v = c & 0x1Fu;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 2;
    v = c & 0x0Fu;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 3;
    v = c & 0x07u;
    min = 0x10000;
  } else {
    return -1; /* a continuation byte, C0/C1 (always overlong), F5-FF */
  }
  if (len - at - 1 < n) return -1;
  for (size_t k = 1; k <= n; k++) {
    unsigned char cc = s[at + k];
    if ((cc & 0xC0) != 0x80) return -1;
    v = v << 6 | (cc & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return -1;
  *cp = v;
  *i = at + 1 + n;
  return 0;
}

/* ------------------------------------------------------------ normalizing */

enum { T_DIGIT, T_PLUS, T_SEP, T_BAD };

/* What a code point is in a written phone number; for a digit, *digit is
** its ASCII form. Full-width forms are what a Chinese input method types;
** the no-break space and the Unicode dashes come from pasting out of
** spreadsheets and word processors. */
static int classify(uint32_t cp, char *digit) {
  if (cp >= '0' && cp <= '9') {
    *digit = (char)cp;
    return T_DIGIT;
  }
  if (cp >= 0xFF10 && cp <= 0xFF19) { /* full-width digits */
    *digit = (char)('0' + (cp - 0xFF10));
    return T_DIGIT;
  }
  if (cp == '+' || cp == 0xFF0B) return T_PLUS;
  switch (cp) {
    case ' ':
    case '\t':
    case '-':
    case '.':
    case '(':
    case ')':
    case 0x00A0: /* no-break space */
    case 0x3000: /* ideographic (full-width) space */
    case 0xFF08: /* full-width parentheses */
    case 0xFF09:
    case 0xFF0D: /* full-width hyphen-minus */
    case 0xFF0E: /* full-width full stop */ return T_SEP;
    default: break;
  }
  if (cp >= 0x2010 && cp <= 0x2015) return T_SEP; /* hyphen .. bar */
  return T_BAD;
}

/* 1[3-9] and 9 more digits: the mainland mobile ranges. */
static int is_mobile(const char *d, size_t n) {
  return n == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9';
}

/* Parses 'in' into E.164 in e164 (YZ_PHONE_MAX bytes). Returns 0, or -1
** with the reason (without the number) in why. */
static int parse(const char *in, char *e164, char *why, size_t whylen) {
  const unsigned char *s = (const unsigned char *)in;
  size_t len = strlen(in);
  char d[YZ_PHONE_INPUT_MAX + 1]; /* the digits; one per input byte at most */
  size_t nd = 0;
  int plus = 0;
  if (len > YZ_PHONE_INPUT_MAX) {
    yz_fmt(why, whylen, "it is longer than %d bytes", YZ_PHONE_INPUT_MAX);
    return -1;
  }
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    char digit = 0;
    if (decode(s, len, &i, &cp) != 0) {
      yz_fmt(why, whylen, "it is not valid UTF-8 text");
      return -1;
    }
    switch (classify(cp, &digit)) {
      case T_DIGIT: d[nd++] = digit; break;
      case T_SEP: break;
      case T_PLUS:
        if (plus || nd) {
          yz_fmt(why, whylen, "a '+' may only come first, before the digits");
          return -1;
        }
        plus = 1;
        break;
      default:
        if (cp > 0x20 && cp < 0x7F)
          yz_fmt(why, whylen,
                 "'%c' does not belong in a phone number (only digits, '+', "
                 "spaces, dashes, dots and parentheses do)",
                 (char)cp);
        else
          yz_fmt(why, whylen,
                 "it holds a character that does not belong in a phone "
                 "number (only digits, '+', spaces, dashes, dots and "
                 "parentheses do)");
        return -1;
    }
  }
  d[nd] = '\0';
  const char *mobile_why =
      "a mainland mobile has 11 digits starting 13-19 (or give +CC... for "
      "another country)";
  if (nd == 0) {
    yz_fmt(why, whylen, "it has no digits; %s", mobile_why);
    return -1;
  }
  const char *cc = d; /* the country code and subscriber, when known */
  if (!plus && nd >= 2 && d[0] == '0' && d[1] == '0') {
    if (nd < 4 || d[2] != '8' || d[3] != '6') {
      yz_fmt(why, whylen,
             "write a number of another country as +CC... (a '+', the "
             "country code and the number), not with 00");
      return -1;
    }
    plus = 1; /* "0086": the international prefix for +86 */
    cc = d + 2;
  }
  size_t ncc = nd - (size_t)(cc - d);
  if (plus) {
    if (cc[0] == '0') {
      yz_fmt(why, whylen, "the country code after '+' cannot start with 0");
      return -1;
    }
    if (cc[0] == '8' && ncc >= 2 && cc[1] == '6' &&
        !is_mobile(cc + 2, ncc - 2)) {
      yz_fmt(why, whylen,
             "a +86 number must be a mainland mobile, 11 digits starting "
             "13-19: SMS cannot reach a landline");
      return -1;
    }
    if (ncc < 8 || ncc > 15) {
      yz_fmt(why, whylen,
             "an international number has 8 to 15 digits after the '+' "
             "(this one has %zu)",
             ncc);
      return -1;
    }
    yz_fmt(e164, YZ_PHONE_MAX, "+%s", cc);
    return 0;
  }
  if (is_mobile(d, nd)) {
    yz_fmt(e164, YZ_PHONE_MAX, "+86%s", d);
    return 0;
  }
  if (nd == 13 && d[0] == '8' && d[1] == '6' && is_mobile(d + 2, 11)) {
    yz_fmt(e164, YZ_PHONE_MAX, "+%s", d);
    return 0;
  }
  yz_fmt(why, whylen, "%s", mobile_why);
  return -1;
}

int yz_phone_normalize(const char *in, char *out, size_t outlen, char *err,
                       size_t errlen) {
  char e164[YZ_PHONE_MAX], why[256];
  if (out && outlen) out[0] = '\0';
  if (err && errlen) err[0] = '\0';
  if (!in) {
    if (err) yz_fmt(err, errlen, "no phone number given");
    return YZ_EUSAGE;
  }
  if (parse(in, e164, why, sizeof why) != 0) {
    char masked[YZ_PHONE_MASK_MAX];
    yz_phone_mask(in, masked, sizeof masked);
    if (err) yz_fmt(err, errlen, "bad phone number '%s': %s", masked, why);
    return YZ_EUSAGE;
  }
  if (!out || outlen <= strlen(e164)) {
    if (err)
      yz_fmt(err, errlen,
             "no room for the phone number: the output needs %d bytes",
             YZ_PHONE_MAX);
    return YZ_EUSAGE;
  }
  memcpy(out, e164, strlen(e164) + 1);
  return YZ_OK;
}

/* ---------------------------------------------------------------- masking */

/* The length of the country code that starts 'd': the ITU-T E.164
** assignments with one or two digits, every other code has three. */
static size_t country_code_len(const char *d) {
  static const char *const two[] = {
      "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41",
      "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54",
      "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
      "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
  if (d[0] == '1' || d[0] == '7') return 1;
  for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
    if (d[0] == two[i][0] && d[1] == two[i][1]) return 2;
  return 3;
}

/* Blanks dropped at both ends of what garbage masking shows. */
static int is_blank(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == 0x00A0 ||
         cp == 0x3000;
}

/* How a character shows in a garbage mask: printable ASCII as itself,
** full-width digits as ASCII digits, everything else as '?'. */
static char shown(uint32_t cp, int valid) {
  if (!valid) return '?';
  if (cp >= 0x20 && cp < 0x7F) return (char)cp;
  if (cp >= 0xFF10 && cp <= 0xFF19) return (char)('0' + (cp - 0xFF10));
  return '?';
}

/* What garbage masking keeps of the trimmed text as it walks it once: the
** head, the last two characters and the count, so long input costs no
** memory. */
typedef struct garbage {
  char head[3]; /* the first characters, as shown */
  char tail[2]; /* the last two, as shown; tail[1] is the last */
  size_t n;     /* characters so far */
} garbage;

static void keep(garbage *g, char c) {
  if (g->n < sizeof g->head) g->head[g->n] = c;
  g->tail[0] = g->tail[1];
  g->tail[1] = c;
  g->n++;
}

/* Masks text that is not a number: the first 3 and last 2 characters of
** the trimmed text at most, with at least 4 hidden. */
static void mask_garbage(const char *text, char *out, size_t outlen) {
  const unsigned char *s = (const unsigned char *)text;
  size_t len = strlen(text);
  garbage g = {{0}, {0}, 0};
  size_t blanks = 0; /* inner blanks not yet kept */
  for (size_t i = 0; i < len;) {
    uint32_t cp = 0;
    int valid = decode(s, len, &i, &cp) == 0;
    if (valid && is_blank(cp)) {
      if (g.n) blanks++; /* kept only once something follows */
      continue;
    }
    for (; blanks; blanks--) keep(&g, ' ');
    keep(&g, shown(cp, valid));
  }
  size_t shows = g.n > 4 ? g.n - 4 : 0; /* characters that may show */
  size_t nhead = shows > 3 ? 3 : shows;
  size_t ntail = shows - nhead > 2 ? 2 : shows - nhead;
  char tmp[3 + 4 + 2 + 1];
  size_t t = 0;
  for (size_t k = 0; k < nhead; k++) tmp[t++] = g.head[k];
  if (g.n) {
    memcpy(tmp + t, "****", 4);
    t += 4;
  }
  for (size_t k = 2 - ntail; k < 2; k++) tmp[t++] = g.tail[k];
  tmp[t] = '\0';
  yz_fmt(out, outlen, "%s", tmp);
}

void yz_phone_mask(const char *number, char *out, size_t outlen) {
  char e164[YZ_PHONE_MAX], why[256];
  if (!out || !outlen) return;
  out[0] = '\0';
  if (!number || !*number) return;
  if (parse(number, e164, why, sizeof why) != 0) {
    mask_garbage(number, out, outlen);
    return;
  }
  const char *d = e164 + 1;
  size_t nd = strlen(d);
  if (d[0] == '8' && d[1] == '6') { /* parse admits only mobiles for +86 */
    yz_fmt(out, outlen, "%.3s****%s", d + 2, d + nd - 4);
    return;
  }
  /* At most 3 (country code) + 4 digits show; at least 4 stay hidden. */
  size_t ncc = country_code_len(d);
  size_t ntail = nd - ncc - 4 < 4 ? nd - ncc - 4 : 4; /* nd >= 8 */
  yz_fmt(out, outlen, "+%.*s****%s", (int)ncc, d, d + nd - ntail);
}

/* -------------------------------------------------------------- SMS parts */

/* Septets of a character in the GSM 03.38 default alphabet: 1 in the basic
** table, 2 in the extension table (an escape and the character), 0 when
** it is in neither and the text needs UCS-2. */
static int gsm_septets(uint32_t cp) {
  /* The basic table's characters outside ASCII, in table order. */
  static const uint16_t basic[] = {
      0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7,
      0x00D8, 0x00F8, 0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B,
      0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6, 0x00E6,
      0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1, 0x00DC,
      0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0};
  if (cp < 0x80) {
    if (cp == '\n' || cp == '\r') return 1;
    if (cp == '\f') return 2;
    if (cp < 0x20 || cp == 0x7F || cp == '`') return 0;
    if (strchr("^{}\\[~]|", (int)cp)) return 2;
    return 1; /* the rest of printable ASCII, '@', '$' and '_' included */
  }
  if (cp == 0x20AC) return 2; /* the euro sign */
  for (size_t i = 0; i < sizeof basic / sizeof basic[0]; i++)
    if (basic[i] == cp) return 1;
  return 0;
}

/* Packing into concatenated parts: a character never straddles two. */
typedef struct packing {
  int units; /* in the whole text */
  int parts; /* parts used so far */
  int fill;  /* units in the last part */
} packing;

static void pack(packing *p, int width, int per_part) {
  p->units += width;
  if (p->fill + width > per_part) {
    p->parts++;
    p->fill = 0;
  }
  p->fill += width;
}

int yz_sms_count_text(const char *utf8, size_t len, yz_sms_count *out) {
  const unsigned char *s = (const unsigned char *)utf8;
  packing gsm = {0, 1, 0}, ucs = {0, 1, 0};
  int all_gsm = 1;
  if (out) memset(out, 0, sizeof *out);
  /* Units never exceed twice the bytes, so this bound keeps them in int. */
  if (!out || (!utf8 && len) || len > (size_t)INT_MAX / 2) return YZ_EUSAGE;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    if (decode(s, len, &i, &cp) != 0) return YZ_EUSAGE;
    int septets = gsm_septets(cp);
    if (!septets) all_gsm = 0;
    if (all_gsm) pack(&gsm, septets, 153);
    pack(&ucs, cp > 0xFFFF ? 2 : 1, 67);
  }
  if (all_gsm) {
    out->ucs2 = 0;
    out->units = gsm.units;
    out->parts = gsm.units <= 160 ? 1 : gsm.parts;
  } else {
    out->ucs2 = 1;
    out->units = ucs.units;
    out->parts = ucs.units <= 70 ? 1 : ucs.parts;
  }
  return YZ_OK;
}
