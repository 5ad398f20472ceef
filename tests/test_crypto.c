/*
** test_crypto.c: host.crypto on a bare Lua state: SHA-256 and HMAC against
** the FIPS 180-2, RFC 2202 and RFC 4231 vectors, base64 against RFC 4648
** and its refusals, RFC 3986 percent-encoding, random UUIDs and nonces,
** argument errors, the memory cap, and the two SMS provider signatures
** (Aliyun 1.0 HMAC-SHA1, Tencent TC3-HMAC-SHA256) computed the way a
** channel plugin will.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lapi.h"
#include "testutil.h"

/* A fresh state with the standard libraries and the table as 'crypto'. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  luaL_openlibs(L);
  luaopen_yz_crypto(L);
  lua_setglobal(L, "crypto");
  return L;
}

static int setup(void **state) {
  *state = new_state();
  return 0;
}

static int teardown(void **state) {
  lua_close(*state);
  return 0;
}

/* Runs code (the stack emptied first) and fails the test, showing the
** error, if it raises. Its results are left on the stack; returns how many. */
static int run(lua_State *L, const char *code) {
  lua_settop(L, 0);
  int rc = luaL_loadstring(L, code);
  if (rc == LUA_OK) rc = lua_pcall(L, 0, LUA_MULTRET, 0);
  if (rc != LUA_OK) fprintf(stderr, "%s\n-> %s\n", code, lua_tostring(L, -1));
  assert_int_equal(rc, LUA_OK);
  return lua_gettop(L);
}

/* Result i of the last run, which must be a string, and its length. */
static const char *result(lua_State *L, int i, size_t *len) {
  assert_int_equal(lua_type(L, i), LUA_TSTRING);
  return lua_tolstring(L, i, len);
}

/* The bytes of s as lower-case hex, in a static buffer (at most 256 bytes
** of input), computed here rather than by crypto.hex. */
static const char *to_hex(const char *s, size_t n) {
  static char out[513];
  assert_true(n <= 256);
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", (unsigned char)s[i]);
  out[2 * n] = '\0';
  return out;
}

/* Asserts that 'return <expr>' gives exactly the text want. */
static void expect(lua_State *L, const char *expr, const char *want) {
  char code[4096];
  snprintf(code, sizeof code, "return %s", expr);
  run(L, code);
  size_t n;
  const char *got = result(L, 1, &n);
  if (n != strlen(want) || memcmp(got, want, n) != 0)
    fprintf(stderr, "%s\n-> %s\n   want %s\n", expr, got, want);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(got, want, n);
}

/* Asserts that 'return <expr>' gives raw bytes whose hex is want_hex. */
static void expect_raw(lua_State *L, const char *expr, const char *want_hex) {
  char code[4096];
  snprintf(code, sizeof code, "return %s", expr);
  run(L, code);
  size_t n;
  const char *got = result(L, 1, &n);
  assert_int_equal(2 * n, strlen(want_hex));
  assert_string_equal(to_hex(got, n), want_hex);
}

/* Asserts that code raises an error whose message contains needle. */
static void expect_error(lua_State *L, const char *code, const char *needle) {
  lua_settop(L, 0);
  int rc = luaL_loadstring(L, code);
  assert_int_equal(rc, LUA_OK);
  rc = lua_pcall(L, 0, 0, 0);
  if (rc == LUA_OK) fprintf(stderr, "%s: did not raise\n", code);
  assert_int_equal(rc, LUA_ERRRUN);
  assert_true(tu_contains(lua_tostring(L, -1), needle));
}

/* ----------------------------------------------------------------- hashes */

static void sha256_matches_the_fips_180_2_vectors(void **state) {
  lua_State *L = *state;
  const char *empty =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const char *abc =
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  expect_raw(L, "crypto.sha256('')", empty);
  expect_raw(L, "crypto.sha256('abc')", abc);
  expect(L, "crypto.sha256_hex('')", empty);
  expect(L, "crypto.sha256_hex('abc')", abc);
  expect(L,
         "crypto.sha256_hex("
         "'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void sha256_hashes_every_byte_including_nul(void **state) {
  lua_State *L = *state;
  expect(L, "crypto.sha256_hex('a\\0b')",
         "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138");
}

static void hmac_sha1_matches_rfc_2202_cases_1_2_and_6(void **state) {
  lua_State *L = *state;
  const char *c1 = "b617318655057264e28bc0b6fb378c8ef146be00";
  const char *c2 = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";
  const char *c6 = "aa4ae5e15272d00e95705637ce8a3b55ed402112";
  expect_raw(L, "crypto.hmac_sha1(('\\x0b'):rep(20), 'Hi There')", c1);
  expect(L, "crypto.hmac_sha1_hex(('\\x0b'):rep(20), 'Hi There')", c1);
  expect_raw(L, "crypto.hmac_sha1('Jefe', 'what do ya want for nothing?')", c2);
  expect(L, "crypto.hmac_sha1_hex('Jefe', 'what do ya want for nothing?')", c2);
  /* An 80-byte key, longer than SHA-1's 64-byte block: hashed first. */
  expect_raw(L,
             "crypto.hmac_sha1(('\\xaa'):rep(80), "
             "'Test Using Larger Than Block-Size Key - Hash Key First')",
             c6);
  expect(L,
         "crypto.hmac_sha1_hex(('\\xaa'):rep(80), "
         "'Test Using Larger Than Block-Size Key - Hash Key First')",
         c6);
}

static void hmac_sha256_matches_rfc_4231_cases_1_2_and_6(void **state) {
  lua_State *L = *state;
  const char *c1 =
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  const char *c2 =
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  const char *c6 =
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
  expect_raw(L, "crypto.hmac_sha256(('\\x0b'):rep(20), 'Hi There')", c1);
  expect(L, "crypto.hmac_sha256_hex(('\\x0b'):rep(20), 'Hi There')", c1);
  expect_raw(L, "crypto.hmac_sha256('Jefe', 'what do ya want for nothing?')",
             c2);
  expect(L, "crypto.hmac_sha256_hex('Jefe', 'what do ya want for nothing?')",
         c2);
  /* A 131-byte key, longer than SHA-256's 64-byte block. */
  expect_raw(L,
             "crypto.hmac_sha256(('\\xaa'):rep(131), "
             "'Test Using Larger Than Block-Size Key - Hash Key First')",
             c6);
  expect(L,
         "crypto.hmac_sha256_hex(('\\xaa'):rep(131), "
         "'Test Using Larger Than Block-Size Key - Hash Key First')",
         c6);
}

static void hmac_takes_empty_keys_and_nul_bytes(void **state) {
  lua_State *L = *state;
  expect(L, "crypto.hmac_sha256_hex('', '')",
         "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  expect(L, "crypto.hmac_sha1_hex('k\\0ey', 'm\\0sg')",
         "ca096346d35dabeb304b00d3526d20d711351870");
}

/* -------------------------------------------------------------- encodings */

static void hex_writes_two_lower_case_digits_per_byte(void **state) {
  lua_State *L = *state;
  expect(L, "crypto.hex('')", "");
  expect(L, "crypto.hex('\\0\\1\\x0f\\x10\\xab\\xff')", "00010f10abff");
  expect(L, "crypto.hex('Hi')", "4869");
  /* A number is taken as its string, as string functions do. */
  expect(L, "crypto.hex(12)", "3132");
}

static void base64_matches_the_rfc_4648_vectors_both_ways(void **state) {
  lua_State *L = *state;
  static const char *const pairs[][2] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  char expr[200];
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    snprintf(expr, sizeof expr, "crypto.base64_encode('%s')", pairs[i][0]);
    expect(L, expr, pairs[i][1]);
    snprintf(expr, sizeof expr, "crypto.base64_decode('%s')", pairs[i][1]);
    expect(L, expr, pairs[i][0]);
  }
}

static void base64_round_trips_binary_with_nul_bytes(void **state) {
  lua_State *L = *state;
  expect(L, "crypto.base64_encode('\\0\\1\\2\\xff\\0')", "AAEC/wA=");
  run(L, "return crypto.base64_decode('AAEC/wA=')");
  size_t n;
  const char *s = result(L, 1, &n);
  assert_int_equal(n, 5);
  assert_memory_equal(s, "\0\1\2\xff\0", 5);
  /* Every byte value, and the encoding uses '+' and '/'. */
  expect(L,
         "(function() local t = {} for i = 0, 255 do t[#t + 1] = "
         "string.char(i) end local all = table.concat(t) local e = "
         "crypto.base64_encode(all) assert(e:find('+', 1, true) and "
         "e:find('/', 1, true)) return tostring(crypto.base64_decode(e) == "
         "all) end)()",
         "true");
}

static void base64_of_large_input_is_one_line_across_chunks(void **state) {
  lua_State *L = *state;
  /* 100 000 bytes span several of the chunks EVP is called with. */
  run(L,
      "local t = {} for i = 1, 100000 do t[i] = string.char((i * 7 + i // "
      "251) % 256) end local s = table.concat(t) "
      "local e = crypto.base64_encode(s) "
      "return #e, e:find('[^A-Za-z0-9+/=]') or 0, "
      "crypto.base64_decode(e) == s, "
      "crypto.base64_encode(s:sub(1, 12288)) .. "
      "crypto.base64_encode(s:sub(12289)) == e");
  assert_int_equal(lua_tointeger(L, 1), 4 * ((100000 + 2) / 3));
  assert_int_equal(lua_tointeger(L, 2), 0);
  assert_true(lua_toboolean(L, 3));
  assert_true(lua_toboolean(L, 4));
}

static void base64_decode_refuses_bad_input_naming_the_byte(void **state) {
  lua_State *L = *state;
  static const char *const cases[][2] = {
      {"Zm9v!", "invalid base64 at byte 5"},    /* not in the alphabet */
      {"Zm9", "invalid base64 at byte 4"},      /* ends mid-group */
      {"Zm9vY", "invalid base64 at byte 6"},    /* ends mid-group */
      {"Zg=a", "invalid base64 at byte 4"},     /* data after '=' */
      {"Z===", "invalid base64 at byte 2"},     /* three '=' */
      {"====", "invalid base64 at byte 1"},     /* only padding */
      {"Zg=", "invalid base64 at byte 4"},      /* half the padding */
      {"Zm9v=", "invalid base64 at byte 5"},    /* '=' after a full group */
      {"Zg==Zg==", "invalid base64 at byte 5"}, /* padding mid-text */
      {"Zm 9v", "invalid base64 at byte 3"},    /* white space */
      {"Zm9v\\n", "invalid base64 at byte 5"},  /* a line break */
      {"Zm9-", "invalid base64 at byte 4"},     /* the URL-safe alphabet */
      {"Zm9\\0", "invalid base64 at byte 4"},   /* a NUL byte */
      {"\\xc3\\xa9AA", "invalid base64 at byte 1"},
  };
  char code[200];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(code, sizeof code,
             "local v, err = crypto.base64_decode('%s') "
             "return tostring(v), err",
             cases[i][0]);
    assert_int_equal(run(L, code), 2);
    assert_string_equal(lua_tostring(L, 1), "nil");
    const char *err = lua_tostring(L, 2);
    if (!err || strcmp(err, cases[i][1]) != 0)
      fprintf(stderr, "'%s' -> %s\n", cases[i][0], err ? err : "(none)");
    assert_non_null(err);
    assert_string_equal(err, cases[i][1]);
  }
}

static void percent_encode_keeps_only_rfc_3986_unreserved(void **state) {
  lua_State *L = *state;
  expect(L, "crypto.percent_encode('a b*~-_.')", "a%20b%2A~-_.");
  expect(L, "crypto.percent_encode('阿里云')", "%E9%98%BF%E9%87%8C%E4%BA%91");
  expect(L, "crypto.percent_encode('{\"customer\":\"test\"}')",
         "%7B%22customer%22%3A%22test%22%7D");
  expect(L, "crypto.percent_encode('')", "");
  expect(L, "crypto.percent_encode('AZaz09/+=&\\0\\xff')",
         "AZaz09%2F%2B%3D%26%00%FF");
}

/* ----------------------------------------------------------------- random */

/* Asserts that u is a lower-case version 4, variant 10xx UUID. */
static void assert_uuid_shape(const char *u, size_t n) {
  assert_int_equal(n, 36);
  for (size_t i = 0; i < n; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      assert_int_equal(u[i], '-');
    } else if (!((u[i] >= '0' && u[i] <= '9') ||
                 (u[i] >= 'a' && u[i] <= 'f'))) {
      fprintf(stderr, "'%s': byte %zu is not lower-case hex\n", u, i);
      fail();
    }
  }
  assert_int_equal(u[14], '4');
  assert_non_null(strchr("89ab", u[19]));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void uuids_are_version_4_and_a_thousand_all_differ(void **state) {
  lua_State *L = *state;
  enum { COUNT = 1000 };
  char **all = malloc(COUNT * sizeof *all);
  assert_non_null(all);
  int variants[4] = {0};
  for (int i = 0; i < COUNT; i++) {
    run(L, "return crypto.uuid()");
    size_t n;
    const char *u = result(L, 1, &n);
    assert_uuid_shape(u, n);
    static const char variant_digits[] = "89ab";
    variants[strchr(variant_digits, u[19]) - variant_digits]++;
    all[i] = strdup(u);
    assert_non_null(all[i]);
  }
  qsort(all, COUNT, sizeof *all, cmp_str);
  int dups = 0;
  for (int i = 1; i < COUNT; i++) dups += strcmp(all[i - 1], all[i]) == 0;
  for (int i = 0; i < COUNT; i++) free(all[i]);
  free(all);
  assert_int_equal(dups, 0);
  /* The two free variant bits are random too. */
  for (int v = 0; v < 4; v++) assert_true(variants[v] > 0);
}

static void nonce_is_n_random_bytes_in_hex_16_by_default(void **state) {
  lua_State *L = *state;
  run(L,
      "local a, b = crypto.nonce(), crypto.nonce(nil) "
      "return a, b, crypto.nonce(1), crypto.nonce(64)");
  size_t n;
  const char *a = result(L, 1, &n);
  assert_int_equal(n, 32);
  assert_int_equal(strspn(a, "0123456789abcdef"), 32);
  const char *b = result(L, 2, &n);
  assert_int_equal(n, 32);
  assert_string_not_equal(a, b);
  result(L, 3, &n);
  assert_int_equal(n, 2);
  const char *big = result(L, 4, &n);
  assert_int_equal(n, 128);
  assert_int_equal(strspn(big, "0123456789abcdef"), 128);
}

static void nonce_outside_1_to_64_bytes_is_refused(void **state) {
  lua_State *L = *state;
  const char *why = "bad argument #1 to 'nonce' (must be 1 to 64 bytes)";
  expect_error(L, "crypto.nonce(0)", why);
  expect_error(L, "crypto.nonce(65)", why);
  expect_error(L, "crypto.nonce(-1)", why);
  expect_error(L, "crypto.nonce(math.mininteger)", why);
  expect_error(L, "crypto.nonce(1.5)", "number has no integer representation");
  expect_error(L, "crypto.nonce('x')", "number expected, got string");
}

/* ------------------------------------------------------------------ misuse */

static void wrong_argument_types_raise(void **state) {
  lua_State *L = *state;
  expect_error(L, "crypto.sha256()",
               "bad argument #1 to 'sha256' (string expected, got no value)");
  expect_error(L, "crypto.sha256_hex({})",
               "bad argument #1 to 'sha256_hex' (string expected, got table)");
  expect_error(L, "crypto.hmac_sha1('key')",
               "bad argument #2 to 'hmac_sha1' (string expected, got no "
               "value)");
  expect_error(L, "crypto.hmac_sha1_hex(nil, 'msg')",
               "bad argument #1 to 'hmac_sha1_hex' (string expected, got nil)");
  expect_error(L, "crypto.hmac_sha256(true, 'msg')",
               "bad argument #1 to 'hmac_sha256' (string expected, got "
               "boolean)");
  expect_error(L, "crypto.hmac_sha256_hex('key', {})",
               "bad argument #2 to 'hmac_sha256_hex' (string expected, got "
               "table)");
  expect_error(L, "crypto.hex()", "bad argument #1 to 'hex'");
  expect_error(L, "crypto.base64_encode(print)",
               "bad argument #1 to 'base64_encode' (string expected, got "
               "function)");
  expect_error(L, "crypto.base64_decode(nil)",
               "bad argument #1 to 'base64_decode' (string expected, got "
               "nil)");
  expect_error(L, "crypto.percent_encode(false)",
               "bad argument #1 to 'percent_encode' (string expected, got "
               "boolean)");
}

/* An allocator that refuses to hold more than 'cap' bytes in all. */
typedef struct capped {
  size_t used; /* bytes held now */
  size_t cap;  /* the most it may hold */
} capped;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  capped *c = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    c->used -= old;
    return NULL;
  }
  if (nsize > old && c->used + (nsize - old) > c->cap) return NULL;
  void *p = realloc(ptr, nsize);
  if (p) c->used = c->used - old + nsize;
  return p;
}

static void a_result_past_the_memory_cap_raises_and_leaks_nothing(void **st) {
  (void)st;
  capped c = {0, 8u << 20};
  lua_State *L = lua_newstate(capped_alloc, &c);
  assert_non_null(L);
  luaL_openlibs(L);
  luaopen_yz_crypto(L);
  lua_setglobal(L, "crypto");
  /* 3 MiB in; 6 MiB of hex, 9 MiB percent-encoded or 4 MiB of base64
  ** (built, then copied into a string) out: past 8 MiB. */
  run(L, "big = ('\\xff'):rep(3 << 20)");
  size_t before = c.used;
  const char *calls[] = {"crypto.hex(big)", "crypto.percent_encode(big)",
                         "crypto.base64_encode(big)"};
  char code[200];
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    snprintf(code, sizeof code, "return %s", calls[i]);
    lua_settop(L, 0);
    assert_int_equal(luaL_loadstring(L, code), LUA_OK);
    assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_ERRMEM);
    assert_string_equal(lua_tostring(L, -1), "not enough memory");
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  /* The state goes on working and holds no more than before. */
  assert_true(c.used <= before + 4096);
  expect(L, "crypto.base64_encode(big:sub(1, 3))", "////");
  lua_close(L);
  assert_int_equal(c.used, 0);
}

/* ------------------------------------------------------ provider signatures */

static void aliyun_sendsms_signature_from_the_primitives(void **state) {
  lua_State *L = *state;
  run(L,
      "local params = {\n"
      "  AccessKeyId = 'testId', Action = 'SendSms', Format = 'XML',\n"
      "  OutId = '123', PhoneNumbers = '15300000001',\n"
      "  RegionId = 'cn-hangzhou', SignName = '阿里云短信测试专用',\n"
      "  SignatureMethod = 'HMAC-SHA1',\n"
      "  SignatureNonce = '45e25e9b-0a6f-4070-8c85-2956eda1b466',\n"
      "  SignatureVersion = '1.0', TemplateCode = 'SMS_71390007',\n"
      "  TemplateParam = '{\"customer\":\"test\"}',\n"
      "  Timestamp = '2017-07-12T02:42:19Z', Version = '2017-05-25',\n"
      "}\n"
      "local enc = crypto.percent_encode\n"
      "local keys = {}\n"
      "for k in pairs(params) do keys[#keys + 1] = k end\n"
      "table.sort(keys)\n"
      "local pairs_ = {}\n"
      "for i, k in ipairs(keys) do pairs_[i] = enc(k) .. '=' .. "
      "enc(params[k]) end\n"
      "local canonical = table.concat(pairs_, '&')\n"
      "local to_sign = 'GET&' .. enc('/') .. '&' .. enc(canonical)\n"
      "local sig = crypto.base64_encode(crypto.hmac_sha1('testSecret' .. "
      "'&', to_sign))\n"
      "return canonical, sig\n");
  size_t n;
  assert_string_equal(
      result(L, 1, &n),
      "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers="
      "15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91"
      "%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod"
      "=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&"
      "SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22"
      "customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&"
      "Version=2017-05-25");
  assert_string_equal(result(L, 2, &n), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
}

static void tencent_tc3_signature_from_the_primitives(void **state) {
  lua_State *L = *state;
  run(L,
      "local key = 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE'\n"
      "local body = [=[{\"Limit\": 1, \"Filters\": [{\"Values\": "
      "[\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}]=]\n"
      "local body_hash = crypto.sha256_hex(body)\n"
      "local canonical = table.concat({'POST', '/', '',\n"
      "  'content-type:application/json; charset=utf-8\\n' ..\n"
      "  'host:cvm.tencentcloudapi.com\\n', 'content-type;host',\n"
      "  body_hash}, '\\n')\n"
      "local request_hash = crypto.sha256_hex(canonical)\n"
      "local to_sign = 'TC3-HMAC-SHA256\\n1551113065\\n' ..\n"
      "  '2019-02-25/cvm/tc3_request\\n' .. request_hash\n"
      "local k_date = crypto.hmac_sha256('TC3' .. key, '2019-02-25')\n"
      "local k_service = crypto.hmac_sha256(k_date, 'cvm')\n"
      "local k_signing = crypto.hmac_sha256(k_service, 'tc3_request')\n"
      "return body_hash, request_hash, #k_date, #k_signing,\n"
      "  crypto.hmac_sha256_hex(k_signing, to_sign)\n");
  size_t n;
  assert_string_equal(
      result(L, 1, &n),
      "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
  assert_string_equal(
      result(L, 2, &n),
      "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031");
  assert_int_equal(lua_tointeger(L, 3), 32);
  assert_int_equal(lua_tointeger(L, 4), 32);
  assert_string_equal(
      result(L, 5, &n),
      "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(sha256_matches_the_fips_180_2_vectors),
      T(sha256_hashes_every_byte_including_nul),
      T(hmac_sha1_matches_rfc_2202_cases_1_2_and_6),
      T(hmac_sha256_matches_rfc_4231_cases_1_2_and_6),
      T(hmac_takes_empty_keys_and_nul_bytes),
      T(hex_writes_two_lower_case_digits_per_byte),
      T(base64_matches_the_rfc_4648_vectors_both_ways),
      T(base64_round_trips_binary_with_nul_bytes),
      T(base64_of_large_input_is_one_line_across_chunks),
      T(base64_decode_refuses_bad_input_naming_the_byte),
      T(percent_encode_keeps_only_rfc_3986_unreserved),
      T(uuids_are_version_4_and_a_thousand_all_differ),
      T(nonce_is_n_random_bytes_in_hex_16_by_default),
      T(nonce_outside_1_to_64_bytes_is_refused),
      T(wrong_argument_types_raise),
      cmocka_unit_test(a_result_past_the_memory_cap_raises_and_leaks_nothing),
      T(aliyun_sendsms_signature_from_the_primitives),
      T(tencent_tc3_signature_from_the_primitives),
  };
#undef T
  return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
