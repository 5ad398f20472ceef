/*
** lapi_crypto.c: host.crypto, the hashes, MACs, encodings and random values
** plugins need to sign requests to SMS providers (Aliyun's HMAC-SHA1
** signature 1.0, Tencent Cloud's TC3-HMAC-SHA256), built on OpenSSL's
** libcrypto. Strings may hold any bytes, NUL included.
**
**   host.crypto.sha256(s) -> 32 bytes        .sha256_hex(s) -> 64 hex
**   host.crypto.hmac_sha1(key, msg) -> 20    .hmac_sha1_hex(key, msg)
**   host.crypto.hmac_sha256(key, msg) -> 32  .hmac_sha256_hex(key, msg)
**   host.crypto.hex(s)                       -- lower-case hex of bytes
**   host.crypto.base64_encode(s)             -- with padding, one line
**   host.crypto.base64_decode(s) -> bytes | nil, "invalid base64 at byte N"
**   host.crypto.percent_encode(s)            -- RFC 3986 unreserved kept
**   host.crypto.uuid()                       -- random version 4 UUID
**   host.crypto.nonce([n = 16])              -- n random bytes (1..64), hex
**
** The file is divided into helpers that push results, the hash and MAC
** bindings, the encodings, and the random values. Results of a size that
** depends on the input are built in a luaL_Buffer, inside the plugin's
** memory cap: too large an input raises "not enough memory" and leaks
** nothing. Misuse (a wrong type, n out of range) raises; only bad base64,
** which is data rather than misuse, is returned as nil and a message.
*/
#include <lauxlib.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lapi.h"

/* The most bytes handed to one EVP_EncodeBlock or EVP_DecodeBlock call,
** which take an int length: a multiple of 3 (encode) and of 4 (decode). */
#define B64_ENCODE_CHUNK (3 * 4096)
#define B64_DECODE_CHUNK (4 * 4096)

#define NONCE_DEFAULT 16
#define NONCE_MAX 64

static const char hex_digits[] = "0123456789abcdef";

/* ---------------------------------------------------------------- helpers */

/* Pushes the n bytes at p as 2n lower-case hex digits. Raises on a memory
** error; p must stay valid meanwhile (it is a Lua string or the C stack). */
static void push_hex(lua_State *L, const unsigned char *p, size_t n) {
  if (n > (SIZE_MAX - 1) / 2) luaL_error(L, "hex: input too large");
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 2 * n);
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex_digits[p[i] >> 4];
    out[2 * i + 1] = hex_digits[p[i] & 0x0F];
  }
  luaL_pushresultsize(&b, 2 * n);
}

/* Fills buf with n random bytes from OpenSSL's generator, or raises. */
static void random_bytes(lua_State *L, unsigned char *buf, int n) {
  if (RAND_bytes(buf, n) != 1) luaL_error(L, "random source failed");
}

/* ---------------------------------------------------------- hashes, MACs */

/* The digests: SHA-256 of argument 1, or an HMAC of arguments 1 (key) and
** 2 (message); raw bytes or lower-case hex. One function serves them all,
** told which by its upvalue (an index into this table). */
static const struct digest {
  const char *name;
  int hmac, sha1, hex;
} digests[] = {{"sha256", 0, 0, 0},      {"sha256_hex", 0, 0, 1},
               {"hmac_sha1", 1, 1, 0},   {"hmac_sha1_hex", 1, 1, 1},
               {"hmac_sha256", 1, 0, 0}, {"hmac_sha256_hex", 1, 0, 1}};

static int c_digest(lua_State *L) {
  const struct digest *d = &digests[lua_tointeger(L, lua_upvalueindex(1))];
  const EVP_MD *type = d->sha1 ? EVP_sha1() : EVP_sha256();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  size_t klen, n;
  int ok;
  if (d->hmac) {
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *msg = luaL_checklstring(L, 2, &n);
    /* HMAC() takes the key length as an int. */
    if (klen > INT_MAX) luaL_argerror(L, 1, "key too long");
    ok = HMAC(type, key, (int)klen, (const unsigned char *)msg, n, md, &len) !=
         NULL;
  } else {
    const char *s = luaL_checklstring(L, 1, &n);
    ok = EVP_Digest(s, n, md, &len, type, NULL) == 1;
  }
  if (!ok) return luaL_error(L, "%s: libcrypto failed", d->name);
  if (d->hex)
    push_hex(L, md, len);
  else
    lua_pushlstring(L, (const char *)md, len);
  return 1;
}

/* -------------------------------------------------------------- encodings */

static int c_hex(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  push_hex(L, (const unsigned char *)s, n);
  return 1;
}

static int c_base64_encode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  size_t groups = n / 3 + (n % 3 != 0);
  if (groups > (SIZE_MAX - 1) / 4)
    return luaL_error(L, "base64_encode: input too large");
  size_t outlen = 4 * groups;
  luaL_Buffer b;
  /* One more byte for the NUL that EVP_EncodeBlock writes after each
  ** chunk; the next chunk overwrites it, the last one is left out. */
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, outlen + 1);
  size_t at = 0;
  for (size_t off = 0; off < n; off += B64_ENCODE_CHUNK) {
    size_t len = n - off < B64_ENCODE_CHUNK ? n - off : B64_ENCODE_CHUNK;
    at += (size_t)EVP_EncodeBlock(out + at, s + off, (int)len);
  }
  luaL_pushresultsize(&b, at);
  return 1;
}

static int is_b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Checks that s is standard base64: the alphabet only, a length that is a
** multiple of 4, and at most two '=' that end the last group. Returns 0
** and the number of '=' in *npad, or the 1-based position of the first byte
** that breaks a rule (n + 1 when the text ends too early). Leftover bits
** in the last group are not checked, as most decoders do not. */
static size_t b64_check(const unsigned char *s, size_t n, size_t *npad) {
  size_t pads = 0;
  for (size_t i = 0; i < n; i++) {
    if (is_b64_char(s[i])) {
      if (pads) return i + 1; /* data after the padding */
    } else if (s[i] == '=') {
      if (i % 4 < 2) return i + 1; /* a group has at least 2 data chars */
      pads++;
    } else {
      return i + 1;
    }
  }
  if (n % 4 != 0) return n + 1;
  *npad = pads;
  return 0;
}

static int c_base64_decode(lua_State *L) {
  size_t n, npad = 0;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  size_t bad = b64_check(s, n, &npad);
  if (bad) {
    luaL_pushfail(L);
    lua_pushfstring(L, "invalid base64 at byte %I", (lua_Integer)bad);
    return 2;
  }
  /* EVP_DecodeBlock writes 3 bytes per group, padding decoded as zero
  ** bytes; the exact length leaves those out. */
  size_t full = n / 4 * 3;
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, full);
  size_t at = 0;
  for (size_t off = 0; off < n; off += B64_DECODE_CHUNK) {
    size_t len = n - off < B64_DECODE_CHUNK ? n - off : B64_DECODE_CHUNK;
    int got = EVP_DecodeBlock(out + at, s + off, (int)len);
    if (got < 0) return luaL_error(L, "base64_decode: libcrypto failed");
    at += (size_t)got;
  }
  luaL_pushresultsize(&b, full - npad);
  return 1;
}

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
}

static int c_percent_encode(lua_State *L) {
  static const char upper[] = "0123456789ABCDEF";
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    if (is_unreserved(s[i])) {
      luaL_addchar(&b, (char)s[i]);
    } else {
      char esc[3] = {'%', upper[s[i] >> 4], upper[s[i] & 0x0F]};
      luaL_addlstring(&b, esc, sizeof esc);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---------------------------------------------------------------- random */

static int c_uuid(lua_State *L) {
  unsigned char u[16];
  random_bytes(L, u, (int)sizeof u);
  u[6] = (unsigned char)((u[6] & 0x0F) | 0x40); /* version 4 */
  u[8] = (unsigned char)((u[8] & 0x3F) | 0x80); /* variant 10xx */
  char text[37];
  size_t at = 0;
  for (size_t i = 0; i < sizeof u; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text[at++] = '-';
    text[at++] = hex_digits[u[i] >> 4];
    text[at++] = hex_digits[u[i] & 0x0F];
  }
  lua_pushlstring(L, text, at);
  return 1;
}

static int c_nonce(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, NONCE_DEFAULT);
  luaL_argcheck(L, n >= 1 && n <= NONCE_MAX, 1, "must be 1 to 64 bytes");
  unsigned char buf[NONCE_MAX];
  random_bytes(L, buf, (int)n);
  push_hex(L, buf, (size_t)n);
  return 1;
}

/* ------------------------------------------------------------- the table */

int luaopen_yz_crypto(lua_State *L) {
  static const luaL_Reg funcs[] = {{"hex", c_hex},
                                   {"base64_encode", c_base64_encode},
                                   {"base64_decode", c_base64_decode},
                                   {"percent_encode", c_percent_encode},
                                   {"uuid", c_uuid},
                                   {"nonce", c_nonce},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++) {
    lua_pushinteger(L, (lua_Integer)i);
    lua_pushcclosure(L, c_digest, 1);
    lua_setfield(L, -2, digests[i].name);
  }
  return 1;
}
