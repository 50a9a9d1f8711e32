/*
** test_svhn.c -- the SVHN reader (datasets/svhn.c) on .mat files written by
** libmatio itself: v5 plain and zlib-compressed (and v7.3 when libmatio can
** write it), the label mapping 10 -> 0, the column-major pixel order, and
** malformed files: X of another type or shape, a missing X or y, labels
** outside 1..10, counts that differ, every truncation, byte flips.
*/
#include "check.h"
#include "dataset.h"
#include "readers.h"

#include <matio.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];

/* {====================================================== helpers */
static const char *P(const char *name) {
  static char buf[4][512];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, 512, "%s/%s", tmp, name);
  return b;
}

/* the value of pixel (row r, column c, channel ch) of image n in our files:
** (1,2) and (2,1) differ, so the two storage orders cannot be confused */
static uint8_t px(int r, int c, int ch, size_t n) { return (uint8_t)(r * 7 + c * 13 + ch * 71 + n * 29 + (r * c) % 5); }

/* X as MATLAB stores it: column-major 32 x 32 x 3 x n */
static uint8_t *make_x(size_t n) {
  uint8_t *x = malloc(3072 * n + 1);
  for (size_t i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int c = 0; c < 32; c++)
        for (int r = 0; r < 32; r++) x[r + 32 * c + 1024 * ch + 3072 * i] = px(r, c, ch, i);
  return x;
}

typedef struct {
  const char *name;
  enum matio_classes cls;
  enum matio_types type;
  int rank;
  size_t dims[5];
  const void *data;
} var;

/* a .mat file of the given version with these variables; 1 on success */
static int write_mat(const char *path, enum mat_ft ver, int compress, int nv, const var *v) {
  unlink(path);
  mat_t *m = Mat_CreateVer(path, NULL, ver);
  if (!m) return 0;
  int ok = 1;
  for (int k = 0; k < nv; k++) {
    size_t dims[5];
    memcpy(dims, v[k].dims, sizeof dims);
    matvar_t *mv = Mat_VarCreate(v[k].name, v[k].cls, v[k].type, v[k].rank, dims, (void *)v[k].data, 0);
    ok &= mv && Mat_VarWrite(m, mv, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE) == 0;
    Mat_VarFree(mv);
  }
  Mat_Close(m);
  return ok;
}

static var X(size_t n, const uint8_t *x) { return (var){"X", MAT_C_UINT8, MAT_T_UINT8, 4, {32, 32, 3, n}, x}; }
static var Yd(size_t n, const double *y) { return (var){"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {n, 1}, y}; }

/* open must fail with a message naming the file and containing want */
static void expect_fail(const char *name, const char *path, const char *want) {
  md_clear_error();
  md_dataset *ds = md_open_svhn(path);
  const char *e = md_last_error();
  report(!ds && strstr(e, path) && strstr(e, want), name, "error: %s", e);
  md_dataset_release(ds);
}

/* ds must hold the n images of make_x and these digit labels */
static void expect_data(const char *name, md_dataset *ds, size_t n, const int *digits) {
  int ok = ds && ds->n == (int64_t)n && ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->nclasses == 10 && ds->images;
  size_t bad = 0;
  for (size_t i = 0; ok && i < n; i++) {
    ok &= ds->labels[i] == digits[i];
    for (int ch = 0; ch < 3; ch++)
      for (int r = 0; r < 32; r++)
        for (int c = 0; c < 32; c++) bad += ds->images[i * 3072 + ch * 1024 + r * 32 + c] != px(r, c, ch, i);
  }
  report(ok && bad == 0, name, "%s%zu wrong pixels", ds ? "" : md_last_error(), bad);
}
/* }====================================================== */

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n);
  if (fread(b, 1, *n, f) != *n) *n = 0;
  fclose(f);
  return b;
}
static void spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (n) fwrite(b, 1, n, f);
  fclose(f);
}

static void good_files(void) {
  const size_t n = 5;
  uint8_t *x = make_x(n);
  const double y[5] = {1, 10, 3, 10, 9};
  const int digits[5] = {1, 0, 3, 0, 9};
  for (int z = 0; z < 2; z++) {
    const char *f = P(z ? "train_z.mat" : "train.mat");
    var v[2] = {X(n, x), Yd(n, y)};
    CHECK(write_mat(f, MAT_FT_MAT5, z, 2, v), z ? "svhn: libmatio writes a compressed v5 file" : "svhn: libmatio writes a v5 file");
    md_dataset *ds = md_open_svhn(f);
    expect_data(z ? "svhn: compressed v5 reads back (pixels, 10 -> 0)" : "svhn: v5 reads back (pixels, 10 -> 0)", ds, n,
                digits);
    if (ds && z == 0) {
      /* one pixel by hand: channel 1, row 1, column 2 of image 2 is MATLAB's
      ** X(2, 3, 2, 3), byte 1 + 32*2 + 1024*1 + 3072*2 of the column-major data */
      uint8_t want = x[1 + 32 * 2 + 1024 * 1 + 3072 * 2], other = x[2 + 32 * 1 + 1024 * 1 + 3072 * 2];
      uint8_t got = ds->images[2 * 3072 + 1 * 1024 + 1 * 32 + 2];
      report(got == want && want != other, "svhn: pixel (row 1, col 2) is X(2,3,2,3), not X(3,2,2,3)", "got %d, want %d (the other order: %d)",
             got, want, other);
      CHECK(!strcmp(ds->name, "SVHN") && ds->class_names && !strcmp(ds->class_names[0], "0") &&
                !strcmp(ds->class_names[9], "9") && fabsf(ds->mean[2] - 0.4728f) < 1e-6f,
            "svhn: name, class names, normalisation");
    }
    md_dataset_release(ds);
  }
  /* y of other classes and orientations */
  const uint8_t yu8[5] = {1, 10, 3, 10, 9};
  var v2[2] = {X(n, x), {"y", MAT_C_UINT8, MAT_T_UINT8, 2, {1, n}, yu8}};
  write_mat(P("y_u8_row.mat"), MAT_FT_MAT5, 1, 2, v2);
  md_dataset *ds = md_open_svhn(P("y_u8_row.mat"));
  expect_data("svhn: y as a 1xN uint8 row", ds, n, digits);
  md_dataset_release(ds);
  const float yf[5] = {1, 10, 3, 10, 9};
  var v3[2] = {{"y", MAT_C_SINGLE, MAT_T_SINGLE, 2, {n, 1}, yf}, X(n, x)}; /* y first */
  write_mat(P("y_single.mat"), MAT_FT_MAT5, 0, 2, v3);
  ds = md_open_svhn(P("y_single.mat"));
  expect_data("svhn: y as single, stored before X", ds, n, digits);
  md_dataset_release(ds);
  /* one image: MATLAB drops the trailing 1, so X is 32x32x3 */
  var v4[2] = {{"X", MAT_C_UINT8, MAT_T_UINT8, 3, {32, 32, 3}, x}, Yd(1, y + 1)};
  write_mat(P("one.mat"), MAT_FT_MAT5, 1, 2, v4);
  ds = md_open_svhn(P("one.mat"));
  expect_data("svhn: one image (X of rank 3)", ds, 1, digits + 1);
  md_dataset_release(ds);
  /* another variable next to X and y is fine */
  const double other[3] = {1, 2, 3};
  var v5[3] = {{"meta", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {1, 3}, other}, X(n, x), Yd(n, y)};
  write_mat(P("extra_var.mat"), MAT_FT_MAT5, 1, 3, v5);
  ds = md_open_svhn(P("extra_var.mat"));
  expect_data("svhn: an extra variable is ignored", ds, n, digits);
  md_dataset_release(ds);
  /* v7.3 (HDF5), when this libmatio writes it */
  var v6[2] = {X(n, x), Yd(n, y)};
  if (write_mat(P("v73.mat"), MAT_FT_MAT73, 0, 2, v6)) {
    ds = md_open_svhn(P("v73.mat"));
    expect_data("svhn: v7.3 (HDF5) reads back", ds, n, digits);
    md_dataset_release(ds);
    size_t size = 0;
    unsigned char *raw = slurp(P("v73.mat"), &size);
    FILE *f = fopen(P("v73_cut.mat"), "wb");
    if (raw && f) fwrite(raw, 1, size / 2, f);
    if (f) fclose(f);
    free(raw);
    expect_fail("svhn: v7.3 cut in half", P("v73_cut.mat"), "svhn");
  } else {
    printf("note: this libmatio cannot write v7.3 files; that case is skipped\n");
  }
  free(x);
}

static void bad_files(void) {
  const size_t n = 3;
  uint8_t *x = make_x(n);
  const double y[3] = {2, 10, 7};
  double xd[2 * 3072];
  for (int k = 0; k < 2 * 3072; k++) xd[k] = k % 256;
  var v[3];
  v[0] = (var){"X", MAT_C_DOUBLE, MAT_T_DOUBLE, 4, {32, 32, 3, 2}, xd}, v[1] = Yd(2, y);
  write_mat(P("x_double.mat"), MAT_FT_MAT5, 1, 2, v);
  expect_fail("svhn: X of doubles", P("x_double.mat"), "X is a double array of 32x32x3x2; want uint8 32x32x3xN");
  v[0] = (var){"X", MAT_C_UINT8, MAT_T_UINT8, 3, {32, 32, 9}, x}, v[1] = Yd(3, y);
  write_mat(P("x_rank3.mat"), MAT_FT_MAT5, 0, 2, v);
  expect_fail("svhn: X of 32x32x9", P("x_rank3.mat"), "X is a uint8 array of 32x32x9");
  v[0] = (var){"X", MAT_C_UINT8, MAT_T_UINT8, 4, {32, 32, 1, 9}, x}, v[1] = Yd(3, y);
  write_mat(P("x_gray.mat"), MAT_FT_MAT5, 0, 2, v);
  expect_fail("svhn: X with one channel", P("x_gray.mat"), "32x32x1x9");
  v[0] = (var){"X", MAT_C_UINT8, MAT_T_UINT8, 5, {32, 32, 3, 1, 3}, x}, v[1] = Yd(3, y);
  write_mat(P("x_rank5.mat"), MAT_FT_MAT5, 1, 2, v);
  expect_fail("svhn: X of rank 5", P("x_rank5.mat"), "32x32x3x1x3");
  v[0] = (var){"X", MAT_C_UINT8, MAT_T_UINT8, 4, {48, 16, 3, 3}, x}, v[1] = Yd(3, y);
  write_mat(P("x_48x16.mat"), MAT_FT_MAT5, 1, 2, v);
  expect_fail("svhn: X of 48x16 images", P("x_48x16.mat"), "48x16x3x3");
  v[0] = X(n, x);
  write_mat(P("no_y.mat"), MAT_FT_MAT5, 1, 1, v);
  expect_fail("svhn: no y", P("no_y.mat"), "no variable 'y'");
  v[0] = Yd(3, y);
  write_mat(P("no_x.mat"), MAT_FT_MAT5, 0, 1, v);
  expect_fail("svhn: no X", P("no_x.mat"), "no variable 'X'");
  v[0] = X(n, x), v[1] = Yd(2, y);
  write_mat(P("count.mat"), MAT_FT_MAT5, 1, 2, v);
  expect_fail("svhn: 3 images, 2 labels", P("count.mat"), "X holds 3 images (32x32x3x3) but y has 2 labels (2x1)");
  v[1] = (var){"y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, {3, 3}, xd};
  write_mat(P("y_matrix.mat"), MAT_FT_MAT5, 1, 2, v);
  expect_fail("svhn: y a 3x3 matrix", P("y_matrix.mat"), "y is a double array of 3x3; want a real numeric Nx1 vector");
  v[1] = (var){"y", MAT_C_CHAR, MAT_T_UTF8, 2, {1, 3}, "abc"};
  write_mat(P("y_char.mat"), MAT_FT_MAT5, 0, 2, v);
  expect_fail("svhn: y a string", P("y_char.mat"), "y is a char array");
  const double labs[4][3] = {{2, 0, 7}, {2, 10, 11}, {2.5, 1, 1}, {1, 1, -1}};
  const char *why[4] = {"y(2) is 0; want 1..10", "y(3) is 11", "y(1) is 2.5", "y(3) is -1"};
  for (int k = 0; k < 4; k++) {
    v[1] = Yd(3, labs[k]);
    write_mat(P("labels.mat"), MAT_FT_MAT5, k & 1, 2, v);
    char nm[64];
    snprintf(nm, sizeof nm, "svhn: label out of range (%s)", why[k]);
    expect_fail(nm, P("labels.mat"), why[k]);
  }
  const uint8_t y0[3] = {0, 1, 2};
  v[1] = (var){"y", MAT_C_UINT8, MAT_T_UINT8, 2, {3, 1}, y0};
  write_mat(P("labels0.mat"), MAT_FT_MAT5, 1, 2, v);
  expect_fail("svhn: uint8 label 0 (a 0-based file)", P("labels0.mat"), "y(1) is 0");
  FILE *f = fopen(P("text.mat"), "w");
  fputs("this is not a MATLAB file, only a long enough line of text to fill a header.................."
        "..............................................................................\n",
        f);
  fclose(f);
  expect_fail("svhn: a text file", P("text.mat"), "svhn");
  expect_fail("svhn: a missing file", P("missing.mat"), "cannot open");
  expect_fail("svhn: a directory", tmp, "not a regular file");
  md_clear_error();
  CHECK(md_open_svhn(NULL) == NULL && strstr(md_last_error(), "need a .mat file"), "svhn: no path");
  free(x);
}

static void truncations(void) {
  const size_t n = 2;
  uint8_t *x = make_x(n);
  const double y[2] = {4, 10};
  for (int z = 0; z < 2; z++) {
    var v[2] = {X(n, x), Yd(n, y)};
    const char *good = P("cut_src.mat"), *cut = P("cut.mat");
    write_mat(good, MAT_FT_MAT5, z, 2, v);
    size_t size = 0;
    unsigned char *raw = slurp(good, &size);
    int all = raw && size > 128, tried = 0;
    /* every length of the header, the tags and the end; between them every
    ** 7th length (compressed) or 61st (plain pixels) */
    for (size_t k = 0; raw && k < size; k += k < 300 || size - k < 300 ? 1 : z ? 7 : 61) {
      spit(cut, raw, k);
      md_clear_error();
      md_dataset *ds = md_open_svhn(cut);
      tried++;
      if (ds || !strstr(md_last_error(), cut)) {
        all = 0;
        printf("  cut at %zu of %zu: %s\n", k, size, ds ? "opened" : md_last_error());
      }
      md_dataset_release(ds);
    }
    report(all, z ? "svhn: a compressed file cut anywhere fails" : "svhn: a plain file cut anywhere fails",
           "(%d cuts of %zu bytes)", tried, size);
    spit(cut, raw, size - 100);
    expect_fail(z ? "svhn: compressed, 100 bytes short" : "svhn: plain, 100 bytes short", cut, "truncated");
    /* byte flips: may open (a flip in the pixels changes a pixel) or fail,
    ** never crash; a failure names the file */
    md_manual_seed(5 + z);
    int flips_ok = 1, opened = 0;
    unsigned char *mut = malloc(size);
    for (int t = 0; raw && t < 300; t++) {
      memcpy(mut, raw, size);
      size_t at = 128 + (size_t)(md_rand_u64() % (size - 128));
      mut[at] ^= (unsigned char)(1u << (md_rand_u64() % 8));
      spit(cut, mut, size);
      md_clear_error();
      md_dataset *ds = md_open_svhn(cut);
      if (ds)
        opened++;
      else
        flips_ok &= strstr(md_last_error(), cut) != NULL;
      md_dataset_release(ds);
    }
    report(flips_ok, z ? "svhn: 300 byte flips in a compressed file handled" : "svhn: 300 byte flips in a plain file handled",
           "(%d still opened)", opened);
    free(mut);
    free(raw);
  }
  free(x);
}

int main(void) {
  snprintf(tmp, sizeof tmp, "/tmp/md_svhn_XXXXXX");
  if (!mkdtemp(tmp)) {
    report(0, "mkdtemp", "cannot make a temporary directory");
    return summary();
  }
  good_files();
  bad_files();
  truncations();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) printf("note: could not remove %s\n", tmp);
  return summary();
}
