/*
** test_json.c -- the core's JSON reader (core/md_json.h) on its own: valid
** documents walked back into canonical text and compared with hand-written
** expectations, every kind of error with its byte offset, the nesting and
** string limits, numbers beyond double and int64, the UTF-8 policy, every
** truncation of a document, random byte flips, and the small writer.
*/
#include "check.h"
#include "md_json.h"

#include <locale.h>

/* {====================================================== helpers */
#define L(j, lit) md_json_init((j), (lit), sizeof(lit) - 1, NULL)

/* the value at the reader, written back canonically into b: no whitespace,
** strings re-escaped by md_json_put_string, numbers as written */
static int walk(md_json *j, md_json_buf *b) {
  const char *s;
  size_t l;
  md_json_num x;
  int v, r;
  switch (md_json_peek(j)) {
  case MD_JSON_OBJECT:
    if (!md_json_object(j, NULL)) return 0;
    md_json_put(b, "{", 1);
    for (int k = 0; (r = md_json_key(j, &s, &l)) > 0; k++) {
      if (k) md_json_put(b, ",", 1);
      md_json_put_string(b, s, l);
      md_json_put(b, ":", 1);
      if (!walk(j, b)) return 0;
    }
    md_json_put(b, "}", 1);
    return r == 0;
  case MD_JSON_ARRAY:
    if (!md_json_array(j, NULL)) return 0;
    md_json_put(b, "[", 1);
    for (int k = 0; (r = md_json_item(j)) > 0; k++) {
      if (k) md_json_put(b, ",", 1);
      if (!walk(j, b)) return 0;
    }
    md_json_put(b, "]", 1);
    return r == 0;
  case MD_JSON_STRING:
    if (!md_json_string(j, &s, &l, NULL)) return 0;
    md_json_put_string(b, s, l);
    return 1;
  case MD_JSON_NUMBER:
    if (!md_json_number(j, &x, NULL)) return 0;
    md_json_put(b, x.text, x.len);
    return 1;
  case MD_JSON_BOOL:
    if (!md_json_bool(j, &v, NULL)) return 0;
    md_json_putf(b, "%s", v ? "true" : "false");
    return 1;
  case MD_JSON_NULL:
    if (!md_json_null(j, NULL)) return 0;
    md_json_put(b, "null", 4);
    return 1;
  default: return md_json_expect(j, "a value");
  }
}

/* parse text (n bytes) whole: 1 ok (canonical text into out), 0 failed */
static int parse_n(const char *text, size_t n, const md_json_opts *o, char *out, size_t cap, md_json *keep) {
  md_json j;
  md_json_buf b = {0};
  md_json_init(&j, text, n, o);
  int ok = walk(&j, &b) && md_json_end(&j);
  if (out) snprintf(out, cap, "%s", ok ? (b.p ? b.p : "") : j.err);
  if (keep) *keep = j, keep->kbuf = keep->vbuf = NULL; /* the error fields only */
  md_json_free(&j);
  free(b.p);
  return ok;
}
static int parse(const char *text, const md_json_opts *o, char *out, size_t cap, md_json *keep) {
  return parse_n(text, strlen(text), o, out, cap, keep);
}

/* text must read back as want */
static void good(const char *text, const char *want) {
  char out[1024], nm[256];
  int ok = parse(text, NULL, out, sizeof out, NULL);
  size_t k = 0;
  k += (size_t)snprintf(nm, sizeof nm, "json: valid ");
  for (const char *c = text; *c && k + 5 < sizeof nm; c++) /* a name on one line */
    k += (size_t)snprintf(nm + k, sizeof nm - k, (unsigned char)*c < 0x20 ? "\\x%02x" : "%c", (unsigned char)*c);
  report(ok && !strcmp(out, want), nm, "-> %s", out);
}
static void good_n(const char *name, const char *text, size_t n, const char *want, size_t wn) {
  char out[1024];
  int ok = parse_n(text, n, NULL, out, sizeof out, NULL);
  report(ok && strlen(out) == wn && !memcmp(out, want, wn), name, "-> %s", out);
}

/* text must fail at byte at with want in the message */
static void bad_o(const char *name, const char *text, size_t n, const md_json_opts *o, size_t at, const char *want) {
  md_json j;
  char out[512];
  char nm[160];
  int ok = parse_n(text, n, o, out, sizeof out, &j);
  snprintf(nm, sizeof nm, "json: error: %s", name);
  report(!ok && j.failed && j.err_at == at && strstr(j.err, want) != NULL, nm, "at byte %zu: %s", j.err_at, j.err);
}
static void bad(const char *name, const char *text, size_t at, const char *want) {
  bad_o(name, text, strlen(text), NULL, at, want);
}

static md_json_num num(const char *text, int *ok) {
  md_json j;
  md_json_num x = {0};
  md_json_init(&j, text, strlen(text), NULL);
  *ok = md_json_number(&j, &x, NULL) && md_json_end(&j);
  md_json_free(&j);
  return x;
}
/* }====================================================== */

static void valid_documents(void) {
  good("{}", "{}");
  good("[]", "[]");
  good(" \t\r\n{ \"a\" : [ 1 , 2.5 , -3e2 , true , false , null ] , \"b\" : { } } \n",
       "{\"a\":[1,2.5,-3e2,true,false,null],\"b\":{}}");
  good("[[[]],[{}],{\"x\":[{\"y\":[]}]}]", "[[[]],[{}],{\"x\":[{\"y\":[]}]}]");
  good("0", "0");
  good("-0", "-0");
  good("\"top\"", "\"top\"");
  good("null", "null");
  good(" true ", "true");
  /* escapes: every simple one, then \u forms decoded to UTF-8 */
  good("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\\"\\\\/\\u0008\\u000c\\u000a\\u000d\\u0009\"]");
  good("\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", "\"A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  good("\"\\uD83D\\uDE00\"", "\"\xf0\x9f\x98\x80\""); /* upper-case hex */
  good("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""); /* raw UTF-8 */
  good_n("json: valid \\u0000 inside a string", "\"a\\u0000b\"", 10, "\"a\\u0000b\"", 10);
  /* duplicate keys: every member, in order */
  good("{\"k\":1,\"k\":2,\"k\":[3]}", "{\"k\":1,\"k\":2,\"k\":[3]}");
  good("{\"\":\"\"}", "{\"\":\"\"}");

  /* keys and string values keep separate buffers */
  md_json j;
  const char *k, *v;
  size_t kl, vl;
  L(&j, "{\"key\":\"value\"}");
  int ok = md_json_object(&j, NULL) && md_json_key(&j, &k, &kl) == 1 && md_json_string(&j, &v, &vl, NULL);
  CHECK(ok && kl == 3 && !strcmp(k, "key") && vl == 5 && !strcmp(v, "value") && md_json_key(&j, NULL, NULL) == 0 &&
            md_json_end(&j),
        "json: a key stays valid while its value is read");
  md_json_free(&j);
  /* positions: at is where the last key or value began */
  L(&j, "{ \"a\": [ 7 ] }");
  md_json_num x;
  ok = md_json_object(&j, NULL) && md_json_key(&j, NULL, NULL) == 1 && j.at == 2 && md_json_array(&j, NULL) &&
       j.at == 7 && md_json_item(&j) == 1 && md_json_number(&j, &x, NULL) && j.at == 9 && x.i == 7;
  CHECK(ok && md_json_item(&j) == 0 && md_json_key(&j, NULL, NULL) == 0 && md_json_end(&j), "json: byte offsets of values");
  md_json_free(&j);
  /* skip checks what it drops */
  L(&j, "[{\"a\":[1,{\"b\":\"c\"}]},2]");
  ok = md_json_array(&j, NULL) && md_json_item(&j) == 1 && md_json_skip(&j) && md_json_item(&j) == 1 &&
       md_json_number(&j, &x, NULL) && x.i == 2 && md_json_item(&j) == 0 && md_json_end(&j);
  CHECK(ok, "json: skip one nested value");
  md_json_free(&j);
  L(&j, "[{\"a\":[1,}]");
  ok = md_json_array(&j, NULL) && md_json_item(&j) == 1 && md_json_skip(&j);
  CHECK(!ok && j.err_at == 9 && strstr(j.err, "expected a value, found '}'"), "json: skip finds an error inside");
  md_json_free(&j);
}

static void errors(void) {
  /* structure */
  bad("empty input", "", 0, "unexpected end of the input (expected a value)");
  bad("only whitespace", "  \n", 3, "unexpected end of the input");
  bad("array not closed", "[1", 2, "unexpected end of the input (expected ',' or ']')");
  bad("object cut after a key", "{\"a\"", 4, "unexpected end of the input (expected ':')");
  bad("object cut after ':'", "{\"a\":", 5, "unexpected end of the input (expected a value)");
  bad("missing comma", "[1 2]", 3, "expected ',' or ']', found a number");
  bad("missing colon", "{\"a\" 1}", 5, "expected ':', found a number");
  bad("key not a string", "{1:2}", 1, "expected a string key or '}', found a number");
  bad("trailing comma in an array", "[1,]", 3, "expected a value, found ']'");
  bad("trailing comma in an object", "{\"a\":1,}", 7, "expected a string key, found '}'");
  bad("a lone ']'", "]", 0, "expected a value, found ']'");
  bad("two values", "1 2", 2, "trailing data after the end of the value (found a number)");
  bad("garbage after an object", "{} x", 3, "trailing data after the end of the object (found an unexpected character 'x')");
  bad("comment", "// c\n{}", 0, "expected a value, found an unexpected character '/'");
  bad("single quotes", "{'a':1}", 1, "found an unexpected character '''");
  bad("byte-order mark", "\xef\xbb\xbf{}", 0, "found an unexpected byte 0xef");
  bad("raw UTF-8 outside a string", "[\xc3\xa9]", 1, "an unexpected byte 0xc3");
  /* literals */
  bad("tru", "[tru]", 1, "invalid literal");
  bad("True", "True", 0, "expected a value, found an unexpected character 'T'");
  bad("nul", "nul", 0, "invalid literal");
  bad("NaN", "NaN", 0, "found an unexpected character 'N'");
  bad("Infinity", "[Infinity]", 1, "found an unexpected character 'I'");
  /* numbers */
  bad("leading zero", "[01]", 1, "a number with a leading zero");
  bad("negative leading zero", "-012", 0, "a number with a leading zero");
  bad("minus alone", "[-]", 2, "a number with no digits after '-'");
  bad("-Infinity", "-Infinity", 1, "a number with no digits after '-'");
  bad("no digits after the point", "1.", 2, "no digits after the decimal point");
  bad("point then exponent", "1.e3", 2, "no digits after the decimal point");
  bad("no exponent digits", "1e", 2, "no digits in the exponent");
  bad("exponent sign alone", "[1e+]", 4, "no digits in the exponent");
  bad("leading point", ".5", 0, "found an unexpected character '.'");
  bad("plus sign", "+1", 0, "found an unexpected character '+'");
  bad("hex", "0x10", 1, "trailing data after the end of the value (found an unexpected character 'x')");
  /* strings */
  bad("unterminated string", "[\"abc", 1, "unterminated string");
  bad("escape at the very end", "\"ab\\", 0, "unterminated string");
  bad("invalid escape", "\"a\\x\"", 2, "invalid escape in a string (\\x)");
  bad("bad hex in \\u", "\"\\u12G4\"", 1, "invalid escape");
  bad("short \\u", "\"\\u12\"", 1, "invalid escape");
  bad("lone low surrogate", "\"\\udc00\"", 1, "lone low surrogate \\udc00");
  bad("high surrogate alone", "\"x\\ud800\"", 2, "high surrogate \\ud800 not followed by a low one");
  bad("high surrogate then a letter", "\"\\ud800\\u0041\"", 1, "not followed by a low one");
  bad("two high surrogates", "\"\\ud800\\ud800\"", 1, "not followed by a low one");
  bad("tab inside a string", "\"a\tb\"", 2, "control character 0x09");
  bad_o("NUL inside a string", "\"a\0b\"", 5, NULL, 2, "control character 0x00");
  bad("newline inside a key", "{\"a\nb\":1}", 3, "control character 0x0a");
  /* objects of the wrong type, in the caller's words */
  md_json j;
  L(&j, " [1]");
  CHECK(!md_json_object(&j, "an object (the header)") && j.err_at == 1 &&
            !strcmp(j.err, "expected an object (the header), found an array"),
        "json: expected in the caller's words");
  md_json_free(&j);
  L(&j, "[1]");
  CHECK(md_json_array(&j, NULL) && md_json_key(&j, NULL, NULL) < 0 && strstr(j.err, "outside an object"),
        "json: a key asked for inside an array");
  md_json_free(&j);
  /* the first error sticks */
  L(&j, "[x] [");
  int ok = md_json_array(&j, NULL) && md_json_item(&j) == 1 && md_json_skip(&j);
  char first[240];
  snprintf(first, sizeof first, "%s", j.err);
  md_json_fail(&j, 4, "a later error");
  CHECK(!ok && j.err_at == 1 && !strcmp(j.err, first) && md_json_peek(&j) == MD_JSON_NONE && md_json_item(&j) < 0 &&
            !md_json_end(&j),
        "json: the first error sticks");
  md_json_free(&j);
  /* a schema error of the caller's at a given byte */
  L(&j, "{\"n\":-1}");
  md_json_num x;
  ok = md_json_object(&j, NULL) && md_json_key(&j, NULL, NULL) == 1 && md_json_number(&j, &x, NULL);
  CHECK(ok && !md_json_fail(&j, j.at, "n must be positive, got %lld", (long long)x.i) && j.err_at == 5 &&
            !strcmp(j.err, "n must be positive, got -1"),
        "json: md_json_fail");
  md_json_free(&j);
}

static void limits(void) {
  char doc[2 * MD_JSON_DEPTH_MAX + 16];
  for (int d = 1; d <= 3; d++) {
    int depth = d == 1 ? 64 : d == 2 ? 65 : 1000;
    if (depth > (int)sizeof doc / 2 - 4) depth = (int)sizeof doc / 2 - 4;
    memset(doc, '[', (size_t)depth);
    memset(doc + depth, ']', (size_t)depth);
    doc[2 * depth] = 0;
    char out[512];
    md_json j;
    int ok = parse(doc, NULL, out, sizeof out, &j);
    char nm[64];
    snprintf(nm, sizeof nm, "json: %d nested arrays (limit 64)", depth);
    if (depth <= 64)
      report(ok, nm, "%s", ok ? "" : out);
    else
      report(!ok && j.err_at == 64 && strstr(j.err, "nested too deeply (more than 64 levels"), nm, "at byte %zu: %s",
             j.err_at, j.err);
  }
  md_json_opts o = {0};
  o.max_depth = 3;
  bad_o("max_depth 3: four levels", "{\"a\":[{\"b\":[]}]}", 16, &o, 11, "more than 3 levels");
  CHECK(parse("{\"a\":[{\"b\":1}]}", &o, NULL, 0, NULL), "json: max_depth 3: three levels");
  /* a limit beyond MD_JSON_DEPTH_MAX is clamped to it */
  o.max_depth = 1 << 20;
  memset(doc, '[', MD_JSON_DEPTH_MAX + 1);
  doc[MD_JSON_DEPTH_MAX + 1] = 0;
  bad_o("max_depth clamped to MD_JSON_DEPTH_MAX", doc, MD_JSON_DEPTH_MAX + 1, &o, MD_JSON_DEPTH_MAX, "nested too deeply");
  o.max_depth = 0;
  o.max_string = 4;
  CHECK(parse("[\"abcd\",\"\\u00e9\\u00e9\"]", &o, NULL, 0, NULL), "json: max_string 4: 4 bytes pass");
  bad_o("max_string 4: 5 bytes", "[\"ab\",\"abcde\"]", 14, &o, 6, "longer than the 4-byte limit");
  bad_o("max_string 4: 6 decoded bytes", "\"\\u00e9\\u00e9\\u00e9\"", 20, &o, 0, "longer than the 4-byte limit");
  bad_o("max_string 4: a key", "{\"abcde\":1}", 11, &o, 1, "longer than the 4-byte limit");
}

static void numbers(void) {
  int ok;
  md_json_num x = num("9223372036854775807", &ok);
  CHECK(ok && x.is_int && x.fits && x.i == INT64_MAX && x.d == 9223372036854775807.0, "json: 2^63-1 exact");
  x = num("-9223372036854775808", &ok);
  CHECK(ok && x.is_int && x.fits && x.i == INT64_MIN, "json: -2^63 exact");
  x = num("9223372036854775808", &ok);
  CHECK(ok && x.is_int && !x.fits && x.d == 9223372036854775808.0, "json: 2^63 is beyond int64, kept as a double");
  x = num("-9223372036854775809", &ok);
  CHECK(ok && x.is_int && !x.fits, "json: -2^63-1 is beyond int64");
  x = num("184467440737095516160000", &ok);
  CHECK(ok && x.is_int && !x.fits && fabs(x.d - 1.8446744073709552e23) < 1e9, "json: beyond uint64");
  x = num("1e400", &ok);
  CHECK(ok && !x.is_int && isinf(x.d) && x.d > 0, "json: 1e400 is +inf (as strtod, and Python's json)");
  x = num("-1e400", &ok);
  CHECK(ok && isinf(x.d) && x.d < 0, "json: -1e400 is -inf");
  x = num("1e-400", &ok);
  CHECK(ok && x.d == 0.0, "json: 1e-400 underflows to 0");
  x = num("4.9406564584124654e-324", &ok);
  CHECK(ok && x.d > 0 && x.d < 1e-323, "json: the smallest subnormal");
  x = num("-0", &ok);
  CHECK(ok && x.fits && x.i == 0 && x.d == 0 && signbit(x.d), "json: -0");
  x = num("0.1", &ok);
  CHECK(ok && !x.is_int && x.d == 0.1, "json: 0.1 correctly rounded");
  x = num("1E2", &ok);
  CHECK(ok && !x.is_int && !x.fits && x.d == 100, "json: 1E2 has an exponent, so it is not an integer literal");
  x = num("2.5e-3", &ok);
  CHECK(ok && x.d == 0.0025 && x.len == 6 && !memcmp(x.text, "2.5e-3", 6), "json: 2.5e-3 and its text");
  /* a literal longer than the stack buffer */
  char big[1100];
  big[0] = '1';
  memset(big + 1, '0', 999);
  big[1000] = 0;
  x = num(big, &ok);
  CHECK(ok && x.is_int && !x.fits && isinf(x.d) && x.len == 1000, "json: a 1000-digit integer is +inf");
  memcpy(big, "0.", 2);
  memset(big + 2, '0', 997);
  memcpy(big + 999, "1", 2);
  x = num(big, &ok);
  CHECK(ok && x.d == 0.0, "json: 0.000...1 (999 digits) underflows to 0");
  memcpy(big, "1.", 2);
  memset(big + 2, '0', 997);
  memcpy(big + 999, "1", 2);
  x = num(big, &ok);
  CHECK(ok && x.d == 1.0, "json: 1.000...1 (999 digits) rounds to 1");
  /* the C locale's decimal point, whatever the program's locale */
  const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8", NULL};
  const char *set = NULL;
  for (int k = 0; locs[k] && !set; k++) set = setlocale(LC_NUMERIC, locs[k]);
  if (set) {
    x = num("0.5", &ok);
    CHECK(ok && x.d == 0.5, "json: 0.5 under a comma locale");
    setlocale(LC_NUMERIC, "C");
  } else {
    printf("note: no locale with a decimal comma installed; the locale check is skipped\n");
  }
}

static void utf8_policy(void) {
  /* invalid UTF-8 inside a string: an error by default */
  struct {
    const char *name, *s;
    size_t at; /* the bad byte */
  } cases[] = {{"overlong '/'", "\"\xc0\xaf\"", 1},
               {"overlong NUL", "\"\xc0\x80\"", 1},
               {"overlong 3-byte", "\"\xe0\x80\xaf\"", 1},
               {"UTF-16 surrogate as UTF-8", "\"\xed\xa0\x80\"", 1},
               {"beyond U+10FFFF", "\"\xf4\x90\x80\x80\"", 1},
               {"lead byte 0xf5", "\"\xf5\x80\x80\x80\"", 1},
               {"lone continuation byte", "\"ab\x80\"", 3},
               {"cut sequence", "\"\xe2\x82\"", 1},
               {"Latin-1 e-acute", "\"caf\xe9\"", 4}};
  md_json_opts raw = {0};
  raw.raw_bytes = 1;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char nm[96];
    const char *s = cases[k].s;
    size_t n = strlen(s), at = cases[k].at;
    snprintf(nm, sizeof nm, "utf-8: %s rejected", cases[k].name);
    bad_o(nm, s, n, NULL, at, "not valid UTF-8");
    /* raw_bytes: the same bytes come back unchanged */
    md_json j;
    const char *v;
    size_t vl;
    md_json_init(&j, s, n, &raw);
    int ok = md_json_string(&j, &v, &vl, NULL) && md_json_end(&j);
    snprintf(nm, sizeof nm, "utf-8: %s passed through with raw_bytes", cases[k].name);
    CHECK(ok && vl == n - 2 && !memcmp(v, s + 1, vl), nm);
    md_json_free(&j);
  }
  /* the longest valid forms pass */
  good("\"\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "\"\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
  size_t b = 99;
  CHECK(md_json_utf8_valid("a\xc3\xa9z", 4, &b) && b == 99, "utf8_valid: valid");
  CHECK(!md_json_utf8_valid("ab\xc3", 3, &b) && b == 2, "utf8_valid: cut at the end");
  CHECK(!md_json_utf8_valid("abc\xed\xbf\xbf", 6, &b) && b == 3, "utf8_valid: a surrogate");
}

static void truncations_and_flips(void) {
  const char *doc = "{\"name\": \"caf\\u00e9 \\ud83d\\ude00\", \"list\": [1, -2.5e-3, true, false, null, {}],"
                    " \"nested\": {\"a\": [[0]], \"b\": \"\\\"q\\\"\"}}";
  size_t n = strlen(doc);
  char out[1024];
  int all = parse(doc, NULL, out, sizeof out, NULL), every = 1;
  CHECK(all, "json: the document itself parses");
  for (size_t k = 0; k < n; k++) {
    md_json j;
    if (parse_n(doc, k, NULL, NULL, 0, &j) || j.err_at > k || !j.err[0]) {
      every = 0;
      printf("  cut at %zu: parsed or bad error (at %zu: %s)\n", k, j.err_at, j.err);
    }
  }
  report(every, "json: every truncation fails with a message", "(%zu lengths)", n);
  /* random byte flips: may parse or fail, never crash (the sanitizer build
  ** watches for overruns), and a failure always has a message and an offset */
  md_manual_seed(11);
  char *mut = malloc(n);
  int flips_ok = 1, parsed = 0;
  for (int trial = 0; trial < 4000; trial++) {
    memcpy(mut, doc, n);
    int nf = 1 + (int)(md_rand_u64() % 3);
    for (int f = 0; f < nf; f++) {
      size_t at = (size_t)(md_rand_u64() % n);
      mut[at] = trial % 2 ? (char)md_rand_u64() : (char)(mut[at] ^ (1u << (md_rand_u64() % 8)));
    }
    md_json j;
    if (parse_n(mut, n, NULL, out, sizeof out, &j))
      parsed++;
    else
      flips_ok &= j.err[0] != 0 && j.err_at <= n;
  }
  free(mut);
  report(flips_ok, "json: 4000 random byte flips handled", "(%d still parse)", parsed);
}

static void writer(void) {
  md_json_buf b = {0};
  const char raw[] = "q\"b\\s/\x01\x1f\x7f\xc3\xa9\n";
  md_json_put_string(&b, raw, sizeof raw - 1);
  CHECK(b.p && !strcmp(b.p, "\"q\\\"b\\\\s/\\u0001\\u001f\x7f\xc3\xa9\\u000a\""), "writer: escapes");
  /* and back */
  md_json j;
  const char *v;
  size_t vl;
  md_json_init(&j, b.p, b.n, NULL);
  CHECK(md_json_string(&j, &v, &vl, NULL) && vl == sizeof raw - 1 && !memcmp(v, raw, vl), "writer: reads back");
  md_json_free(&j);
  free(b.p);
  /* every byte below 0x80 round-trips */
  char all[128];
  for (int c = 0; c < 128; c++) all[c] = (char)c;
  md_json_buf b2 = {0};
  md_json_put_string(&b2, all, 128);
  md_json_init(&j, b2.p, b2.n, NULL);
  CHECK(md_json_string(&j, &v, &vl, NULL) && vl == 128 && !memcmp(v, all, 128), "writer: all ASCII round-trips");
  md_json_free(&j);
  free(b2.p);
  md_json_buf b3 = {0};
  for (int k = 0; k < 1000; k++) md_json_putf(&b3, "%d,", k);
  CHECK(!b3.oom && b3.n == 3890 && !strncmp(b3.p + b3.n - 4, "999,", 4), "writer: putf grows the buffer");
  free(b3.p);
}

int main(void) {
  valid_documents();
  errors();
  limits();
  numbers();
  utf8_policy();
  truncations_and_flips();
  writer();
  return summary();
}
