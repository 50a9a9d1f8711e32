/*
** test_safetensors.c -- safetensors round trips, a file written by Python
** (tests/fixtures/python_small.safetensors), and corrupt files, each of
** which must give a clear error naming the file and the problem (and, under
** the sanitizers, no crash and no leak).
*/
#include "check.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *tmp_path(const char *name) {
  static char buf[8][256];
  static int k;
  char *b = buf[k++ & 7];
  snprintf(b, 256, "%s/%s", dir, name);
  return b;
}

/* remove what the test wrote: only our own mkdtemp directory */
static void cleanup(void) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      rmdir(p); /* the directory case below */
      unlink(p);
    }
  closedir(d);
  rmdir(dir);
}

static const char *fixture(const char *name) {
  static char buf[512];
  const char *env = getenv("MD_FIXTURES");
  const char *dirs[] = {env, "tests/fixtures", "../tests/fixtures", "../../tests/fixtures"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    if (!dirs[i]) continue;
    snprintf(buf, sizeof buf, "%s/%s", dirs[i], name);
    if (access(buf, R_OK) == 0) return buf;
  }
  return NULL;
}

static int write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(p, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}
static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc((size_t)sz + 1);
  *n = fread(p, 1, (size_t)sz, f);
  fclose(f);
  return p;
}

/* a file with the given JSON header (not padded) and `data` zero bytes */
static void write_st(const char *path, const char *header, size_t data) {
  size_t h = strlen(header);
  unsigned char *b = calloc(8 + h + data + 1, 1);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
  memcpy(b + 8, header, h);
  write_bytes(path, b, 8 + h + data);
  free(b);
}

static int has(const unsigned char *hay, size_t n, const char *needle) {
  return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static md_tensor *find(int n, md_named *it, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(it[i].name, name)) return it[i].t;
  return NULL;
}

/* bitwise: same dtype, shape and element values */
static int same_tensor(const md_tensor *a, const md_tensor *b) {
  if (!a || !b || a->dtype != b->dtype || !md_same_shape(a, b)) return 0;
  int64_t n = md_numel(a);
  for (int64_t i = 0; i < n; i++) {
    double x = md_get(a, i), y = md_get(b, i);
    if (memcmp(&x, &y, sizeof x) != 0 && !(isnan(x) && isnan(y))) return 0;
  }
  return 1;
}

/* loading `path` must fail with `want` in the message, which also names the file */
static void expect_load_err(const char *name, const char *path, const char *want) {
  int n = -1;
  md_named *it = (md_named *)&n; /* must be reset to NULL */
  md_clear_error();
  int rc = md_safetensors_load(path, &n, &it);
  const char *e = md_last_error();
  int ok = rc != MD_OK && n == 0 && it == NULL && strstr(e, want) && strstr(e, path) &&
           strstr(e, "safetensors_load");
  char nm[128];
  snprintf(nm, sizeof nm, "corrupt: %s", name);
  report(ok, nm, "error: %s", e);
  if (rc == MD_OK) md_named_free(n, it);
}

static void round_trips(void) {
  md_manual_seed(1);
  md_tensor *a = md_randn(2, (int64_t[]){2, 3});
  int64_t iv[5] = {0, -1, INT64_MAX, INT64_MIN, 1234567890123LL};
  md_tensor *b = md_from_i64(1, (int64_t[]){5}, iv);
  md_tensor *c = md_scalar(-2.5f);
  md_tensor *d = md_zeros(2, (int64_t[]){0, 5});
  md_tensor *e = md_randn(8, (int64_t[]){1, 2, 1, 2, 1, 1, 2, 1});
  md_tensor *base = md_randn(3, (int64_t[]){3, 4, 5});
  md_tensor *f = md_transpose(base, 0, 2);           /* 5x4x3, strides (1,5,20) */
  md_tensor *g = md_slice(base, 2, 1, 3);            /* 3x4x3 out of 3x4x5 */
  md_tensor *h = md_expand(c, 2, (int64_t[]){2, 2}); /* stride 0 */
  md_tensor *z = md_from_i64(0, NULL, (int64_t[]){-7});
  md_tensor *special = md_from_data(1, (int64_t[]){4}, (float[]){INFINITY, -INFINITY, NAN, -0.0f});
  md_set_requires_grad(a, 1); /* a leaf that requires grad is saved as its values */
  CHECK(f && g && h && !md_is_contiguous(f) && !md_is_contiguous(g), "round trip: views built");
  md_named items[] = {{"a", a},
                      {"ints", b},
                      {"scalar", c},
                      {"empty", d},
                      {"eight", e},
                      {"transposed", f},
                      {"sliced", g},
                      {"expanded", h},
                      {"i64 0-d", z},
                      {"inf nan -0", special},
                      {"we\"ird\\ na/me \t\n\x01 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", a}};
  int ni = (int)(sizeof items / sizeof *items);
  const char *p = tmp_path("rt.safetensors");
  CHECK(md_safetensors_save(p, ni, items) == MD_OK, "round trip: save");
  int n = 0;
  md_named *it = NULL;
  int rc = md_safetensors_load(p, &n, &it);
  CHECK(rc == MD_OK && n == ni, "round trip: load");
  if (rc == MD_OK) {
    int all = 1;
    for (int i = 0; i < ni && i < n; i++) {
      char nm[160];
      snprintf(nm, sizeof nm, "round trip: item %d same name, dtype, shape, bits, order", i + 1);
      int ok = !strcmp(it[i].name, items[i].name) && same_tensor(it[i].t, items[i].t) &&
               md_is_contiguous(it[i].t) && !md_requires_grad(it[i].t);
      char sh[64];
      report(ok, nm, "%s", ok ? "" : md_shape_str(it[i].t, sh, sizeof sh));
      all &= ok;
    }
    CHECK(find(n, it, "scalar")->ndim == 0 && md_item(find(n, it, "scalar")) == -2.5f,
          "round trip: 0-d value");
    CHECK(find(n, it, "empty")->ndim == 2 && find(n, it, "empty")->shape[0] == 0 &&
              find(n, it, "empty")->shape[1] == 5,
          "round trip: empty keeps its shape 0x5");
    CHECK(find(n, it, "ints")->dtype == MD_I64 &&
              md_get(find(n, it, "ints"), 2) == (double)INT64_MAX,
          "round trip: int64 stays int64");
    int64_t back[5];
    md_to_i64(find(n, it, "ints"), back);
    CHECK(!memcmp(back, iv, sizeof iv), "round trip: int64 extremes exact");
    md_named_free(n, it);
  }

  /* the bytes on disk: 8-byte length, header padded with spaces to 8 */
  size_t nb = 0;
  unsigned char *raw = read_bytes(p, &nb);
  uint64_t hl = 0;
  for (int k = 7; raw && k >= 0; k--) hl = hl << 8 | raw[k];
  size_t last = raw && hl + 8 <= nb ? 8 + hl - 1 : 0;
  while (last > 8 && raw[last] == ' ') last--;
  CHECK(raw && hl % 8 == 0 && hl + 8 <= nb && raw[8] == '{' && raw[last] == '}' &&
            8 + hl - last <= 8,
        "format: header length a multiple of 8, padded with spaces");
  /* int64 data first (aligned to 8 for readers that map the file), then float */
  CHECK(raw &&
            has(raw + 8, hl, "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[48,72]}"),
        "format: float entry as the reference writes it, after the int64 data");
  CHECK(raw &&
            has(raw + 8, hl, "\"ints\":{\"dtype\":\"I64\",\"shape\":[5],\"data_offsets\":[0,40]}"),
        "format: int64 entry first in the data section");
  CHECK(raw && has(raw + 8, hl,
                   "\"i64 0-d\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[40,48]}"),
        "format: second int64 entry packed after the first");
  free(raw);

  /* overwrite: the new content replaces the old, no temporary left */
  md_named one[] = {{"only", c}};
  CHECK(md_safetensors_save(p, 1, one) == MD_OK, "overwrite: save");
  n = 0;
  it = NULL;
  CHECK(md_safetensors_load(p, &n, &it) == MD_OK && n == 1 && !strcmp(it[0].name, "only"),
        "overwrite: load sees the new file");
  md_named_free(n, it);
  DIR *dd = opendir(dir);
  int tmpfiles = 0;
  struct dirent *de;
  while (dd && (de = readdir(dd)))
    if (strstr(de->d_name, ".tmp.")) tmpfiles++;
  if (dd) closedir(dd);
  CHECK(tmpfiles == 0, "save: no temporary file left behind");

  /* no tensors at all */
  const char *p0 = tmp_path("none.safetensors");
  CHECK(md_safetensors_save(p0, 0, NULL) == MD_OK, "empty file: save");
  n = -1;
  it = NULL;
  CHECK(md_safetensors_load(p0, &n, &it) == MD_OK && n == 0, "empty file: load gives 0 tensors");
  md_named_free(n, it);

  /* save errors */
  md_named dup[] = {{"x", a}, {"y", c}, {"x", b}};
  md_clear_error();
  CHECK(md_safetensors_save(tmp_path("dup"), 3, dup) != MD_OK &&
            strstr(md_last_error(), "'x' is used twice"),
        "save error: duplicate names");
  md_named noname[] = {{NULL, a}};
  md_clear_error();
  CHECK(md_safetensors_save(tmp_path("nn"), 1, noname) != MD_OK &&
            strstr(md_last_error(), "no name"),
        "save error: missing name");
  md_named meta[] = {{"__metadata__", a}};
  md_clear_error();
  CHECK(md_safetensors_save(tmp_path("meta"), 1, meta) != MD_OK &&
            strstr(md_last_error(), "reserved"),
        "save error: the reserved name __metadata__");
  md_named badutf[] = {{"bad \xff name", a}};
  md_clear_error();
  CHECK(md_safetensors_save(tmp_path("utf"), 1, badutf) != MD_OK &&
            strstr(md_last_error(), "UTF-8"),
        "save error: a name that is not UTF-8");
  md_named nul[] = {{"t", NULL}};
  md_clear_error();
  CHECK(md_safetensors_save(tmp_path("nul"), 1, nul) != MD_OK && strstr(md_last_error(), "'t'") &&
            strstr(md_last_error(), "missing"),
        "save error: missing tensor");
  md_clear_error();
  CHECK(md_safetensors_save("/nonexistent-dir-md/x.safetensors", 1, one) != MD_OK &&
            strstr(md_last_error(), "cannot create") &&
            strstr(md_last_error(), "/nonexistent-dir-md/x"),
        "save error: directory does not exist");
  md_clear_error();
  CHECK(md_safetensors_save(NULL, 1, one) != MD_OK && strstr(md_last_error(), "file name"),
        "save error: no path");
  CHECK(access(tmp_path("dup"), F_OK) != 0, "save error: nothing written on a bad call");

  md_release(a);
  md_release(b);
  md_release(c);
  md_release(d);
  md_release(e);
  md_release(f);
  md_release(g);
  md_release(h);
  md_release(z);
  md_release(special);
  md_release(base);
}

static int f32_is(const md_tensor *t, int n, const float *v) {
  if (!t || t->dtype != MD_F32 || md_numel(t) != n) return 0;
  for (int i = 0; i < n; i++) {
    float x = (float)md_get(t, i);
    if (memcmp(&x, &v[i], 4) != 0) return 0;
  }
  return 1;
}

static void python_file(void) {
  const char *p = fixture("python_small.safetensors");
  if (!p) {
    report(0, "python fixture",
           "tests/fixtures/python_small.safetensors not found (set MD_FIXTURES)");
    return;
  }
  int n = 0;
  md_named *it = NULL;
  int rc = md_safetensors_load(p, &n, &it);
  CHECK(rc == MD_OK && n == 9, "python fixture: loads 9 tensors");
  if (rc != MD_OK) return;
  const char *order[] = {
      "f32", "f64", "f16", "bf16", "i64", "i32", "scalar", "empty", "odd \"name\"\\ \xc3\xa9/\t"};
  int inorder = 1;
  for (int i = 0; i < 9 && i < n; i++) inorder &= !strcmp(it[i].name, order[i]);
  CHECK(inorder, "python fixture: names (JSON escapes decoded) in file order");
  md_tensor *t = find(n, it, "f32");
  CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
            f32_is(t, 6, (float[]){0.5f, -1.25f, 3.0f, 1e-3f, -7.5f, 100.0f}),
        "python fixture: F32 values");
  CHECK(f32_is(find(n, it, "f64"), 3, (float[]){(float)(1.0 / 3.0), -2.5f, 1e10f}),
        "python fixture: F64 converted to float");
  CHECK(f32_is(find(n, it, "f16"), 6,
               (float[]){1.0f, -0.5f, 65504.0f, 5.9604644775390625e-8f, INFINITY, -0.0f}),
        "python fixture: F16 (normal, max, subnormal, inf, -0) converted exactly");
  CHECK(f32_is(find(n, it, "bf16"), 3, (float[]){1.0f, -3.140625f, 0.0234375f}),
        "python fixture: BF16 converted exactly");
  t = find(n, it, "i64");
  int64_t want64[] = {0, -1, (int64_t)1 << 40, -((int64_t)1 << 62)}, got[4] = {0};
  if (t) md_to_i64(t, got);
  CHECK(t && t->dtype == MD_I64 && !memcmp(got, want64, sizeof got), "python fixture: I64 values");
  t = find(n, it, "i32");
  int64_t want32[] = {1, -2, 2147483647, -2147483648LL};
  if (t) md_to_i64(t, got);
  CHECK(t && t->dtype == MD_I64 && t->shape[0] == 2 && !memcmp(got, want32, sizeof got),
        "python fixture: I32 widened to int64");
  t = find(n, it, "scalar");
  CHECK(t && t->ndim == 0 && md_item(t) == 42.0f, "python fixture: 0-d tensor");
  t = find(n, it, "empty");
  CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3, "python fixture: empty 0x3");
  md_named_free(n, it);
}

static void corrupt(void) {
  char hdr[1200];
  const char *p = tmp_path("bad.safetensors");
  const char *ok1 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

  write_bytes(p, "", 0);
  expect_load_err("empty file", p, "truncated file");
  write_bytes(p, "\x10\0\0\0\0", 5);
  expect_load_err("5-byte file", p, "truncated file");
  write_bytes(p, "\x40\0\0\0\0\0\0\0{}", 10);
  expect_load_err("header length larger than the file", p,
                  "header length 64 is larger than the file");
  write_bytes(p, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
  expect_load_err("header length 2^64-1", p, "is larger than the file");
  write_bytes(p, "\0\0\0\0\0\0\0\0", 8);
  expect_load_err("header length 0", p, "empty header");
  write_st(p, "[1,2]", 0);
  expect_load_err("header not an object", p, "bad JSON");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",", 0);
  expect_load_err("JSON cut short", p, "bad JSON");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8);
  expect_load_err("JSON trailing comma", p, "bad JSON");
  snprintf(hdr, sizeof hdr, "{%s} x", ok1);
  write_st(p, hdr, 8);
  expect_load_err("garbage after the JSON", p, "after the end of the object");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8);
  expect_load_err("object not closed", p, "bad JSON");
  write_st(p, "{\"a:{}}", 0);
  expect_load_err("string not closed", p, "not closed");
  write_st(p, "{\"a\\x\":{}}", 0);
  expect_load_err("invalid escape", p, "invalid escape");
  write_st(p, "{\"a\\ud800\":{}}", 0);
  expect_load_err("lone surrogate", p, "surrogate");
  write_st(p, "{\"a\tb\":{}}", 0);
  expect_load_err("control character in a string", p, "control character");
  write_st(p, "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
  expect_load_err("NUL inside a name", p, "NUL character");
  write_st(p, "{\"\xc3\x28\":{}}", 0);
  expect_load_err("invalid UTF-8", p, "not valid UTF-8");
  write_st(p, "{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
  expect_load_err("unknown dtype", p, "unknown dtype 'F99'");
  write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
  expect_load_err("unsupported dtype", p, "unsupported dtype 'U8'");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
  expect_load_err("offsets past the end of the data", p, "run past the end of the data section");
  write_st(p,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           12);
  expect_load_err("overlapping tensors", p, "tensors 'a' and 'b' overlap");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20);
  expect_load_err("offsets do not match shape*dtype", p,
                  "F32 of shape [2, 3] needs 24 bytes but data_offsets [0, 20] hold 20");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8);
  expect_load_err("reversed offsets", p, "end before they begin");
  snprintf(hdr, sizeof hdr, "{%s,%s}", ok1, ok1);
  write_st(p, hdr, 8);
  expect_load_err("duplicate names", p, "duplicate tensor name 'a'");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
           4);
  expect_load_err("9 dimensions", p, "more than 8 dimensions");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,8]}}", 8);
  expect_load_err("negative size", p, "negative size in shape -3");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8);
  expect_load_err("fractional size", p, "is not an integer");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
           8);
  expect_load_err("size above 2^63", p, "too large");
  write_st(p,
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,1099511627776,1099511627776],\"data_offsets\":["
           "0,0]}}",
           0);
  expect_load_err("empty tensor with an absurd shape", p,
                  "shape [0, 1099511627776, 1099511627776] is too large");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8);
  expect_load_err("leading zero", p, "leading zero");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8);
  expect_load_err("missing data_offsets", p, "missing field 'data_offsets'");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8);
  expect_load_err("unknown field", p, "unknown field 'x'");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
           8);
  expect_load_err("field twice", p, "'dtype' appears twice");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8);
  expect_load_err("three offsets", p, "2 entries");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
  expect_load_err("gap before a tensor", p, "unused bytes");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12);
  expect_load_err("trailing data", p, "trailing data");
  write_st(p, "{\"__metadata__\":{\"k\":1}}", 0);
  expect_load_err("metadata value not a string", p, "__metadata__ values must be strings");
  write_st(p, "{\"a\":[1,2]}", 0);
  expect_load_err("tensor description not an object", p,
                  "expected an object describing tensor 'a'");
  write_st(p, "{\"a\":{\"dtype\":true,\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
  expect_load_err("dtype not a string", p, "found a boolean");
  memset(hdr, '[', 1000);
  hdr[1000] = 0;
  write_st(p, hdr, 0);
  expect_load_err("deep nesting", p, "bad JSON");
  expect_load_err("no such file", tmp_path("missing.safetensors"), "cannot open");
  mkdir(tmp_path("adir"), 0700);
  expect_load_err("a directory", tmp_path("adir"), "is a directory");

  /* a valid file cut at every length must fail cleanly */
  md_tensor *a = md_arange(6), *b = md_from_i64(1, (int64_t[]){2}, (int64_t[]){5, 6});
  md_named items[] = {{"a", a}, {"b", b}};
  const char *good = tmp_path("good.safetensors");
  md_safetensors_save(good, 2, items);
  size_t n = 0;
  unsigned char *raw = read_bytes(good, &n);
  int cuts_ok = raw != NULL;
  for (size_t k = 0; raw && k < n; k++) {
    write_bytes(p, raw, k);
    int cnt = -1;
    md_named *it = NULL;
    md_clear_error();
    int rc = md_safetensors_load(p, &cnt, &it);
    if (rc == MD_OK || !strstr(md_last_error(), p) || it) {
      cuts_ok = 0;
      printf("  cut at %zu: rc %d, %s\n", k, rc, md_last_error());
      md_named_free(cnt, it);
    }
  }
  report(cuts_ok, "corrupt: truncated at every length", "(%zu lengths)", n);
  write_bytes(p, raw, n - 4);
  expect_load_err("data section cut short", p, "is the file truncated?");

  /* random byte flips: load may succeed or fail, but never crash or leak
  ** (the sanitizer build checks both), and a failure always has a message */
  md_manual_seed(7);
  int flips_ok = 1, loaded = 0;
  unsigned char *mut = malloc(n);
  for (int trial = 0; raw && trial < 3000; trial++) {
    memcpy(mut, raw, n);
    int nf = 1 + (int)(md_rand_u64() % 3);
    for (int f = 0; f < nf; f++) {
      size_t at = (size_t)(md_rand_u64() % n);
      mut[at] = trial % 2 ? (unsigned char)md_rand_u64()
                          : (unsigned char)(mut[at] ^ (1u << (md_rand_u64() % 8)));
    }
    write_bytes(p, mut, n);
    int cnt = -1;
    md_named *it = NULL;
    md_clear_error();
    int rc = md_safetensors_load(p, &cnt, &it);
    if (rc == MD_OK) {
      loaded++;
      for (int i = 0; i < cnt; i++) flips_ok &= it[i].t != NULL && it[i].name != NULL;
      md_named_free(cnt, it);
    } else {
      flips_ok &= it == NULL && cnt == 0 && strstr(md_last_error(), "safetensors_load") != NULL;
    }
  }
  report(flips_ok, "corrupt: 3000 random byte flips handled", "(%d still loaded)", loaded);
  free(mut);
  free(raw);
  md_release(a);
  md_release(b);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/md_st_XXXXXX");
  if (!mkdtemp(dir)) {
    report(0, "mkdtemp", "cannot make a temporary directory");
    return summary();
  }
  round_trips();
  python_file();
  corrupt();
  cleanup();
  CHECK(md_tensors_alive() == 0, "no tensor left alive");
  return summary();
}
