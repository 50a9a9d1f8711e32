/*
** test_datasets.c -- the readers (IDX, CIFAR, STL-10, image folders, CSV
** splits and mini-ImageNet's layout, mask folders, LabelMe), images, the mask ops and the cluttered
** compositor.  Every test writes its own small files in the real formats
** into a mkdtemp directory, good and corrupt; the real Fashion-MNIST files
** are used when installed.
*/
#include "check.h"
#include "dataset.h"
#include "image.h"
#include "readers.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char tmp[256];

/* {====================================================== helpers */
static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...) { /* a path in the temp dir; 8 rotating buffers */
  static char buf[8][512];
  static int k;
  char *b = buf[k++ & 7];
  int n = snprintf(b, 512, "%s/", tmp);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, (size_t)(512 - n), fmt, ap);
  va_end(ap);
  return b;
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    printf("cannot write %s\n", path);
    exit(1);
  }
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}
static void write_gz(const char *path, const void *data, size_t n) {
  gzFile f = gzopen(path, "wb");
  gzwrite(f, data, (unsigned)n);
  gzclose(f);
}
static void mkdirs(const char *p) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
  if (system(cmd) != 0) printf("mkdir failed: %s\n", p);
}
static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static uint32_t fnv(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}
static int has(const char *msg, const char *want) { return strstr(msg, want) != NULL; }

/* open must fail with an error containing both a and b (b may be NULL) */
#define CHECK_FAIL(expr, a, b, name)                                                               \
  do {                                                                                             \
    md_clear_error();                                                                              \
    md_dataset *d_ = (expr);                                                                       \
    const char *e_ = md_last_error();                                                              \
    int ok_ = d_ == NULL && has(e_, (a)) && ((b) == NULL || has(e_, (b)));                         \
    report(ok_, (name), "error: %s", e_);                                                          \
    md_dataset_release(d_);                                                                        \
  } while (0)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long a = 0, b = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &a, &b) != 2) b = 0;
    fclose(f);
  }
  return b * (sysconf(_SC_PAGESIZE) / 1024);
}
/* }====================================================== */

/* {====================================================== IDX */
static uint8_t idx_px(int i, int y, int x) { return (uint8_t)(i * 37 + y * 5 + x * 3); }

/* images file: n x r x c; returns malloc'd bytes and size */
static uint8_t *idx_images(int n, int r, int c, size_t *size) {
  *size = 16 + (size_t)n * r * c;
  uint8_t *b = malloc(*size);
  put32(b, 0x803), put32(b + 4, (uint32_t)n), put32(b + 8, (uint32_t)r), put32(b + 12, (uint32_t)c);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < r; y++)
      for (int x = 0; x < c; x++) b[16 + (i * r + y) * c + x] = idx_px(i, y, x);
  return b;
}
static uint8_t *idx_labels(int n, const uint8_t *lab, size_t *size) {
  *size = 8 + (size_t)n;
  uint8_t *b = malloc(*size);
  put32(b, 0x801), put32(b + 4, (uint32_t)n);
  memcpy(b + 8, lab, (size_t)n);
  return b;
}

static void test_idx(void) {
  const int n = 5, r = 4, c = 3;
  const uint8_t lab[5] = {3, 0, 7, 3, 1};
  size_t si, sl;
  uint8_t *im = idx_images(n, r, c, &si), *lb = idx_labels(n, lab, &sl);
  write_file(P("tiny-images"), im, si);
  write_file(P("tiny-labels"), lb, sl);
  write_gz(P("tiny-images.gz"), im, si);
  write_gz(P("tiny-labels.gz"), lb, sl);

  md_dataset *ds = md_open_idx(P("tiny-images"), P("tiny-labels"));
  CHECK(ds && ds->n == 5 && ds->c == 1 && ds->h == 4 && ds->w == 3, "idx: sizes");
  if (ds) {
    CHECK(ds->nclasses == 8, "idx: nclasses = max label + 1");
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= ds->labels[i] == lab[i];
    CHECK(ok, "idx: labels");
    uint8_t img[12], mask[12];
    memset(mask, 7, sizeof mask);
    ok = md_dataset_get(ds, 2, img, mask) == MD_OK;
    for (int y = 0; y < r; y++)
      for (int x = 0; x < c; x++) ok &= img[y * c + x] == idx_px(2, y, x);
    CHECK(ok, "idx: pixels of item 2 (row-major)");
    CHECK(mask[0] == 0 && mask[11] == 0 && !ds->has_masks, "idx: no masks -> zero mask");
    CHECK(strcmp(ds->name, "tiny-images") == 0 && ds->class_names == NULL, "idx: name from the file");
    double s = 0, s2 = 0;
    for (int i = 0; i < n * r * c; i++) s += im[16 + i] / 255.0, s2 += (im[16 + i] / 255.0) * (im[16 + i] / 255.0);
    double m = s / (n * r * c), sd = sqrt(s2 / (n * r * c) - m * m);
    CHECK(fabs(ds->mean[0] - m) < 1e-5 && fabs(ds->std[0] - sd) < 1e-5, "idx: mean/std computed on open");
    md_clear_error();
    CHECK(md_dataset_get(ds, 5, img, NULL) == MD_ERR && has(md_last_error(), "out of range"), "idx: get out of range");
    CHECK(md_dataset_get(ds, -1, img, NULL) == MD_ERR, "idx: get -1");
  }
  md_dataset *dz = md_open_idx(P("tiny-images.gz"), P("tiny-labels.gz"));
  CHECK(dz && ds && dz->n == ds->n && memcmp(dz->images, ds->images, (size_t)n * r * c) == 0 &&
            memcmp(dz->labels, ds->labels, sizeof(int64_t) * n) == 0,
        "idx: gzip'd files give the same data");
  md_dataset *dm = md_open_idx(P("tiny-images.gz"), P("tiny-labels"));
  CHECK(dm && dm->n == 5, "idx: gzip'd images with plain labels");
  md_dataset_release(ds);
  md_dataset_release(dz);
  md_dataset_release(dm);

  /* Fashion-MNIST by name: class names and the known constants */
  uint8_t lab10[5] = {9, 0, 1, 2, 3};
  uint8_t *lb10 = idx_labels(n, lab10, &sl);
  write_file(P("fashion-train-images"), im, si);
  write_file(P("fashion-train-labels"), lb10, sl);
  write_file(P("mnist-train-images"), im, si);
  ds = md_open_idx(P("fashion-train-images"), P("fashion-train-labels"));
  CHECK(ds && ds->nclasses == 10 && ds->class_names && strcmp(ds->class_names[0], "T-shirt/top") == 0 &&
            strcmp(ds->class_names[9], "Ankle boot") == 0 && strcmp(ds->name, "Fashion-MNIST") == 0,
        "idx: Fashion-MNIST class names");
  CHECK(ds && fabsf(ds->mean[0] - 0.2860f) < 1e-6 && fabsf(ds->std[0] - 0.3530f) < 1e-6, "idx: Fashion-MNIST mean/std");
  md_dataset_release(ds);
  ds = md_open_idx(P("mnist-train-images"), P("fashion-train-labels"));
  CHECK(ds && strcmp(ds->name, "MNIST") == 0 && fabsf(ds->mean[0] - 0.1307f) < 1e-6 && fabsf(ds->std[0] - 0.3081f) < 1e-6 &&
            !ds->class_names,
        "idx: MNIST mean/std");
  md_dataset_release(ds);
  free(lb10);

  /* corrupt files */
  uint8_t *bad = malloc(si + 10);
  memcpy(bad, im, si);
  put32(bad, 0x802);
  write_file(P("badmagic-images"), bad, si);
  CHECK_FAIL(md_open_idx(P("badmagic-images"), P("tiny-labels")), "badmagic-images", "bad magic", "idx: bad magic (images)");
  CHECK_FAIL(md_open_idx(P("tiny-images"), P("tiny-images")), "tiny-images", "bad magic", "idx: images file as labels");
  write_file(P("trunc-images"), im, si - 1);
  CHECK_FAIL(md_open_idx(P("trunc-images"), P("tiny-labels")), "trunc-images", "truncated", "idx: truncated images");
  write_file(P("hdr-images"), im, 10);
  CHECK_FAIL(md_open_idx(P("hdr-images"), P("tiny-labels")), "hdr-images", "truncated header", "idx: truncated header");
  memcpy(bad, im, si);
  bad[si] = 1;
  write_file(P("long-images"), bad, si + 1);
  CHECK_FAIL(md_open_idx(P("long-images"), P("tiny-labels")), "long-images", "trailing data", "idx: trailing data");
  write_gz(P("trunc-images.gz"), im, si - 5);
  CHECK_FAIL(md_open_idx(P("trunc-images.gz"), P("tiny-labels")), "trunc-images.gz", "truncated", "idx: gzip of a truncated file");
  write_gz(P("long-images.gz"), bad, si + 1);
  CHECK_FAIL(md_open_idx(P("long-images.gz"), P("tiny-labels")), "long-images.gz", "trailing", "idx: gzip with trailing data");
  { /* a gzip stream cut in the middle */
    FILE *f = fopen(P("tiny-images.gz"), "rb");
    uint8_t gzb[4096];
    size_t gn = fread(gzb, 1, sizeof gzb, f);
    fclose(f);
    write_file(P("cut-images.gz"), gzb, gn / 2);
    CHECK_FAIL(md_open_idx(P("cut-images.gz"), P("tiny-labels")), "cut-images.gz", NULL, "idx: cut gzip stream");
    for (size_t k = 12; k < gn - 8; k++) gzb[k] ^= 0x5a; /* garbage deflate data */
    write_file(P("garbage-images.gz"), gzb, gn);
    CHECK_FAIL(md_open_idx(P("garbage-images.gz"), P("tiny-labels")), "garbage-images.gz", NULL, "idx: corrupt gzip data");
  }
  uint8_t lab4[4] = {0, 1, 2, 3};
  uint8_t *lb4 = idx_labels(4, lab4, &sl);
  write_file(P("four-labels"), lb4, sl);
  CHECK_FAIL(md_open_idx(P("tiny-images"), P("four-labels")), "5 images", "4 labels", "idx: counts differ");
  CHECK_FAIL(md_open_idx(P("no-such-file"), P("tiny-labels")), "no-such-file", "cannot open", "idx: missing file");
  {/* a forged header asking for a huge gzip'd payload: no giant allocation, a clean error */
    uint8_t h[16];
    put32(h, 0x803), put32(h + 4, 2000000000u), put32(h + 8, 60000), put32(h + 12, 60000);
    write_gz(P("huge-images.gz"), h, 16);
    uint8_t lh[8];
    put32(lh, 0x801), put32(lh + 4, 2000000000u);
    write_gz(P("huge-labels.gz"), lh, 8);
    CHECK_FAIL(md_open_idx(P("huge-images.gz"), P("huge-labels.gz")), "huge-images.gz", "implausible", "idx: forged sizes");
    /* plausible but absent: 100000 x 1000 x 1000 (100 GB) -- the buffer grows with the data */
    put32(h + 4, 100000), put32(h + 8, 1000), put32(h + 12, 1000), put32(lh + 4, 100000);
    write_gz(P("big-images.gz"), h, 16);
    uint8_t *lb5 = calloc(8 + 100000, 1);
    memcpy(lb5, lh, 8);
    write_gz(P("big-labels.gz"), lb5, 8 + 100000);
    free(lb5);
    long r0 = rss_kb();
    CHECK_FAIL(md_open_idx(P("big-images.gz"), P("big-labels.gz")), "big-images.gz", "truncated", "idx: forged sizes, gzip");
    report(rss_kb() - r0 < 200 * 1024, "idx: no giant allocation for a forged gzip header", "+%ld kB", rss_kb() - r0);
  }
  free(lb4);
  free(bad);
  free(im);
  free(lb);
}

static void test_fashion_mnist(void) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  char a[256], b[256];
  snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", dir);
  snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", dir);
  if (access(a, R_OK) != 0) {
    printf("note: %s not installed, real Fashion-MNIST checks skipped\n", a);
    return;
  }
  long r0 = rss_kb();
  double t0 = now();
  md_dataset *ds = md_open_idx(a, b);
  double dt = now() - t0;
  long r1 = rss_kb();
  CHECK(ds && ds->n == 60000 && ds->h == 28 && ds->w == 28 && ds->c == 1 && ds->nclasses == 10, "fmnist: train 60000 x 28x28");
  if (ds) {
    CHECK(ds->labels[0] == 9 && ds->labels[1] == 0 && ds->labels[59999] == 5, "fmnist: labels 9, 0, ..., 5");
    uint32_t h = fnv(ds->images, 784);
    uint64_t s = 0;
    for (int i = 0; i < 784; i++) s += ds->images[i];
    CHECK(h == 0xf365a098u && s == 76247, "fmnist: checksum of the first image");
    CHECK(strcmp(ds->name, "Fashion-MNIST") == 0 && strcmp(ds->class_names[9], "Ankle boot") == 0, "fmnist: names");
    int64_t cnt[10] = {0};
    for (int64_t i = 0; i < ds->n; i++) cnt[ds->labels[i]]++;
    int bal = 1;
    for (int k = 0; k < 10; k++) bal &= cnt[k] == 6000;
    CHECK(bal, "fmnist: 6000 per class");
  }
  printf("note: Fashion-MNIST train opened in %.3f s, resident +%.1f MB (total %.1f MB)\n", dt, (r1 - r0) / 1024.0,
         r1 / 1024.0);
  CHECK((r1 - r0) < 100 * 1024, "fmnist: < 100 MB resident");
  md_dataset_release(ds);
  snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte.gz", dir);
  snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte.gz", dir);
  ds = md_open_idx(a, b);
  CHECK(ds && ds->n == 10000 && ds->labels[0] == 9 && fnv(ds->images, 784) == 0x993077dbu, "fmnist: test 10000, checksum");
  md_dataset_release(ds);
}
/* }====================================================== */

/* {====================================================== CIFAR, STL-10 */
static uint8_t cpx(int i, int k) { return (uint8_t)(i * 11 + k * 7 + (k >> 10)); }

static void write_cifar(const char *path, int n, int version, const uint8_t *coarse, const uint8_t *fine) {
  int rec = 3072 + (version == 10 ? 1 : 2);
  uint8_t *b = malloc((size_t)n * rec);
  for (int i = 0; i < n; i++) {
    uint8_t *r = b + (size_t)i * rec;
    if (version == 10)
      r[0] = coarse[i];
    else
      r[0] = coarse[i], r[1] = fine[i];
    for (int k = 0; k < 3072; k++) r[rec - 3072 + k] = cpx(i, k);
  }
  write_file(path, b, (size_t)n * rec);
  free(b);
}

static void test_cifar(void) {
  uint8_t l1[3] = {6, 9, 0}, l2[2] = {3, 8};
  write_cifar(P("data_batch_1.bin"), 3, 10, l1, NULL);
  write_cifar(P("test_batch.bin"), 2, 10, l2, NULL);
  const char *f10[2] = {P("data_batch_1.bin"), P("test_batch.bin")};
  md_dataset *ds = md_open_cifar(2, f10, 0, 1);
  CHECK(ds && ds->n == 5 && ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->nclasses == 10, "cifar10: sizes");
  if (ds) {
    int64_t want[5] = {6, 9, 0, 3, 8};
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= ds->labels[i] == want[i];
    CHECK(ok, "cifar10: labels across two files");
    uint8_t img[3072];
    md_dataset_get(ds, 3, img, NULL);
    ok = 1;
    for (int k = 0; k < 3072; k++) ok &= img[k] == cpx(0, k); /* first record of the second file */
    CHECK(ok, "cifar10: pixels (R, G, B planes = CHW)");
    CHECK(strcmp(ds->class_names[0], "airplane") == 0 && strcmp(ds->class_names[9], "truck") == 0 &&
              strcmp(ds->name, "CIFAR-10") == 0 && fabsf(ds->mean[2] - 0.4465f) < 1e-6,
          "cifar10: names, mean");
  }
  md_dataset_release(ds);

  uint8_t co[4] = {19, 0, 4, 7}, fi[4] = {99, 1, 55, 23};
  write_cifar(P("train.bin"), 4, 100, co, fi);
  const char *f100[1] = {P("train.bin")};
  ds = md_open_cifar(1, f100, 0, 1);
  CHECK(ds && ds->n == 4 && ds->nclasses == 100 && ds->labels[0] == 99 && ds->labels[2] == 55 &&
            strcmp(ds->class_names[99], "worm") == 0 && strcmp(ds->name, "CIFAR-100") == 0,
        "cifar100: fine labels by default");
  if (ds) {
    uint8_t img[3072];
    md_dataset_get(ds, 1, img, NULL);
    int ok = 1;
    for (int k = 0; k < 3072; k++) ok &= img[k] == cpx(1, k);
    CHECK(ok, "cifar100: pixels after two label bytes");
  }
  md_dataset_release(ds);
  ds = md_open_cifar(1, f100, 100, 0);
  CHECK(ds && ds->nclasses == 20 && ds->labels[0] == 19 && ds->labels[3] == 7 &&
            strcmp(ds->class_names[19], "vehicles_2") == 0,
        "cifar100: coarse labels");
  md_dataset_release(ds);

  /* version from the size alone */
  write_cifar(P("mystery.bin"), 2, 10, l1, NULL);
  const char *fm[1] = {P("mystery.bin")};
  ds = md_open_cifar(1, fm, 0, 1);
  CHECK(ds && ds->n == 2 && ds->nclasses == 10, "cifar: version from the size");
  md_dataset_release(ds);

  /* errors */
  uint8_t junk[3073 * 2 + 5] = {0};
  write_file(P("data_batch_2.bin"), junk, sizeof junk);
  const char *fb[2] = {P("data_batch_1.bin"), P("data_batch_2.bin")};
  CHECK_FAIL(md_open_cifar(2, fb, 0, 1), "data_batch_2.bin", "not a multiple", "cifar: size not a multiple of the record");
  uint8_t lbad[2] = {3, 10};
  write_cifar(P("data_batch_3.bin"), 2, 10, lbad, NULL);
  const char *fl[1] = {P("data_batch_3.bin")};
  CHECK_FAIL(md_open_cifar(1, fl, 0, 1), "data_batch_3.bin", "record 1", "cifar: label out of range names the record");
  uint8_t cbad[1] = {20}, fgood[1] = {5};
  write_cifar(P("test.bin"), 1, 100, cbad, fgood);
  const char *fc[1] = {P("test.bin")};
  CHECK_FAIL(md_open_cifar(1, fc, 0, 1), "test.bin", "coarse", "cifar100: bad coarse label");
  const char *fx[2] = {P("data_batch_1.bin"), P("train.bin")};
  CHECK_FAIL(md_open_cifar(2, fx, 0, 1), "train.bin", "one version", "cifar: mixing 10 and 100");
  const char *fn[1] = {P("nope.bin")};
  CHECK_FAIL(md_open_cifar(1, fn, 0, 1), "nope.bin", "cannot open", "cifar: missing file");
  write_file(P("empty.bin"), junk, 0);
  const char *fe[1] = {P("empty.bin")};
  CHECK_FAIL(md_open_cifar(1, fe, 10, 1), "empty.bin", "empty", "cifar: empty file");
  CHECK_FAIL(md_open_cifar(1, fm, 7, 1), "version", NULL, "cifar: bad version");
}

static uint8_t spx(int i, int c, int row, int col) { return (uint8_t)(i * 31 + c * 50 + row * 3 + col * 7); }

static void test_stl10(void) {
  const int S = 96, IMG = 3 * 96 * 96;
  uint8_t *x = malloc((size_t)2 * IMG + 100);
  for (int i = 0; i < 2; i++)
    for (int c = 0; c < 3; c++)
      for (int col = 0; col < S; col++)
        for (int row = 0; row < S; row++) x[i * IMG + c * S * S + col * S + row] = spx(i, c, row, col); /* column-major */
  write_file(P("train_X.bin"), x, (size_t)2 * IMG);
  uint8_t y[2] = {1, 10};
  write_file(P("train_y.bin"), y, 2);
  md_dataset *ds = md_open_stl10(P("train_X.bin"), P("train_y.bin"));
  CHECK(ds && ds->n == 2 && ds->c == 3 && ds->h == 96 && ds->w == 96 && ds->nclasses == 10, "stl10: sizes");
  if (ds) {
    CHECK(ds->labels[0] == 0 && ds->labels[1] == 9, "stl10: labels 1..10 -> 0..9");
    uint8_t img[3 * 96 * 96];
    md_dataset_get(ds, 1, img, NULL);
    int ok = 1;
    for (int c = 0; c < 3; c++)
      for (int row = 0; row < S; row++)
        for (int col = 0; col < S; col++) ok &= img[c * S * S + row * S + col] == spx(1, c, row, col);
    CHECK(ok, "stl10: column-major channels transposed to CHW");
    CHECK(strcmp(ds->class_names[7], "monkey") == 0 && strcmp(ds->name, "STL-10") == 0, "stl10: names");
  }
  md_dataset_release(ds);
  ds = md_open_stl10(P("train_X.bin"), NULL);
  CHECK(ds && ds->labels[0] == -1 && ds->labels[1] == -1, "stl10: unlabeled -> -1");
  md_dataset_release(ds);
  write_file(P("short_X.bin"), x, (size_t)IMG + 5);
  CHECK_FAIL(md_open_stl10(P("short_X.bin"), NULL), "short_X.bin", "not a multiple", "stl10: bad size");
  write_file(P("three_y.bin"), (uint8_t[]){1, 2, 3}, 3);
  CHECK_FAIL(md_open_stl10(P("train_X.bin"), P("three_y.bin")), "three_y.bin", "3 labels", "stl10: count mismatch");
  write_file(P("zero_y.bin"), (uint8_t[]){1, 0}, 2);
  CHECK_FAIL(md_open_stl10(P("train_X.bin"), P("zero_y.bin")), "zero_y.bin", "label 1 is 0", "stl10: label 0");
  free(x);
}
/* }====================================================== */

/* {====================================================== folders */
static uint8_t fpx(int id, int y, int x, int k) { return (uint8_t)(id * 40 + y * 20 + x * 9 + k * 60); }

/* an 8x6 (w x h) RGB image of pattern id */
static void make_img(uint8_t *p, int id, int w, int h) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < 3; k++) p[(y * w + x) * 3 + k] = fpx(id, y, x, k);
}
/* a mask with object where x < cut */
static void make_mask(uint8_t *p, int cut, int w, int h) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) p[y * w + x] = x < cut ? 200 : 0;
}

/* an 8x6 JPEG (quality 100) of make_img(.., 2, ..), written once by stb_image_write:
** stb's JPEG writer has undefined int shifts that UBSan stops on, so it is not in image.h */
static const unsigned char jpeg_8x6[849] = {
  0xff,0xd8,0xff,0xe0,0x00,0x10,0x4a,0x46,0x49,0x46,0x00,0x01,0x01,0x00,0x00,0x01,
  0x00,0x01,0x00,0x00,0xff,0xdb,0x00,0x84,0x00,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
  0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0xff,0xc0,0x00,0x11,0x08,0x00,
  0x06,0x00,0x08,0x03,0x01,0x11,0x00,0x02,0x11,0x01,0x03,0x11,0x01,0xff,0xc4,0x01,
  0xa2,0x00,0x00,0x01,0x05,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,0x00,0x00,
  0x00,0x00,0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x10,0x00,
  0x02,0x01,0x03,0x03,0x02,0x04,0x03,0x05,0x05,0x04,0x04,0x00,0x00,0x01,0x7d,0x01,
  0x02,0x03,0x00,0x04,0x11,0x05,0x12,0x21,0x31,0x41,0x06,0x13,0x51,0x61,0x07,0x22,
  0x71,0x14,0x32,0x81,0x91,0xa1,0x08,0x23,0x42,0xb1,0xc1,0x15,0x52,0xd1,0xf0,0x24,
  0x33,0x62,0x72,0x82,0x09,0x0a,0x16,0x17,0x18,0x19,0x1a,0x25,0x26,0x27,0x28,0x29,
  0x2a,0x34,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4a,
  0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6a,
  0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,
  0x92,0x93,0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,
  0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,
  0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,0xe1,0xe2,0xe3,
  0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf1,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,
  0xfa,0x01,0x00,0x03,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,
  0x00,0x00,0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x11,0x00,
  0x02,0x01,0x02,0x04,0x04,0x03,0x04,0x07,0x05,0x04,0x04,0x00,0x01,0x02,0x77,0x00,
  0x01,0x02,0x03,0x11,0x04,0x05,0x21,0x31,0x06,0x12,0x41,0x51,0x07,0x61,0x71,0x13,
  0x22,0x32,0x81,0x08,0x14,0x42,0x91,0xa1,0xb1,0xc1,0x09,0x23,0x33,0x52,0xf0,0x15,
  0x62,0x72,0xd1,0x0a,0x16,0x24,0x34,0xe1,0x25,0xf1,0x17,0x18,0x19,0x1a,0x26,0x27,
  0x28,0x29,0x2a,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,0x48,0x49,
  0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,
  0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x82,0x83,0x84,0x85,0x86,0x87,0x88,
  0x89,0x8a,0x92,0x93,0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,
  0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,
  0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,0xe2,
  0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,
  0xfa,0xff,0xda,0x00,0x0c,0x03,0x01,0x00,0x02,0x11,0x03,0x11,0x00,0x3f,0x00,0xfa,
  0x37,0xe3,0x37,0xed,0x4d,0xe0,0xdf,0xd9,0xc3,0xe2,0x97,0x88,0xfe,0x01,0xf8,0x33,
  0xe1,0x7b,0x78,0xbb,0xe2,0x27,0x85,0xb4,0x98,0xed,0x75,0xad,0x57,0x5c,0xd6,0x07,
  0x84,0x7e,0x1c,0x68,0xba,0xa7,0x8a,0xfc,0x0b,0xe1,0x5f,0x14,0x78,0x3e,0xea,0xcb,
  0x4c,0xd1,0x21,0xd7,0x3c,0x4d,0xf1,0x1b,0x49,0x30,0x78,0x88,0x3f,0x8b,0x34,0x6d,
  0x5f,0x52,0xf8,0x7b,0x71,0x6f,0x2d,0x84,0xfa,0x66,0x87,0xac,0xcb,0x06,0xae,0x75,
  0x4d,0x33,0xf8,0x13,0x05,0xc4,0x5f,0x4b,0x2f,0xa7,0x2f,0x0d,0xe0,0x3c,0x40,0xf1,
  0x23,0xc7,0xea,0xbe,0x18,0x78,0x51,0xc4,0xd4,0xb3,0x2c,0xb3,0x0f,0xe1,0x4f,0x83,
  0x18,0x6c,0xe7,0x87,0xb2,0xec,0xe3,0x87,0x2a,0xe2,0x6b,0x70,0x87,0x1e,0x64,0x9c,
  0x47,0x2a,0x99,0xa5,0x1c,0x4e,0x36,0x96,0x77,0x1e,0x1c,0xab,0x5b,0x01,0xfe,0xb9,
  0x66,0xfe,0x28,0x60,0x70,0xcf,0x3f,0xcd,0xd6,0x13,0x2c,0xc9,0xf2,0xca,0xf5,0xf2,
  0x1c,0x67,0xf5,0x17,0xd1,0x07,0xf6,0x5e,0xe1,0xbc,0x66,0xe0,0x5e,0x1a,0xf1,0x67,
  0x89,0x78,0xef,0x2f,0xe1,0xee,0x0f,0xcf,0x73,0x0f,0x6f,0x96,0xe0,0x32,0xbc,0xa6,
  0xa7,0x10,0x71,0x96,0x67,0x81,0xc8,0x38,0xa7,0x3d,0xc8,0xb8,0x8a,0x86,0x27,0x1d,
  0x99,0xac,0xaf,0x24,0xe0,0xdc,0xc1,0x55,0xc9,0xf9,0x72,0x0c,0xcb,0x2f,0xc1,0x71,
  0x7d,0x1a,0xd4,0xf1,0x74,0xb1,0xd9,0xa6,0x5b,0x4e,0xae,0x5e,0xb0,0x38,0xef,0xff,
  0xd9,};

typedef struct {
  md_dataset *ds;
  int64_t from, to;
  uint32_t sum;
  int rc;
} job_t;
static void *job_run(void *arg) {
  job_t *j = arg;
  size_t chw = (size_t)j->ds->c * j->ds->h * j->ds->w, hw = (size_t)j->ds->h * j->ds->w;
  uint8_t *img = malloc(chw), *m = malloc(hw);
  j->sum = 0, j->rc = MD_OK;
  for (int rep = 0; rep < 20; rep++)
    for (int64_t i = j->from; i < j->to; i++) {
      if (md_dataset_get(j->ds, i, img, m) != MD_OK) j->rc = MD_ERR;
      j->sum += fnv(img, chw) ^ fnv(m, hw);
    }
  free(img);
  free(m);
  return NULL;
}

static void test_folder(void) {
  const int W = 8, H = 6;
  uint8_t img[8 * 6 * 3], msk[8 * 6];
  mkdirs(P("f/a_cat"));
  mkdirs(P("f/b_dog"));
  mkdirs(P("m/a_cat"));
  mkdirs(P("m/b_dog"));
  make_img(img, 0, W, H);
  md_png_write(P("f/a_cat/x1.png"), img, W, H, 3);
  make_mask(msk, 2, W, H);
  md_png_write(P("m/a_cat/x1.png"), msk, W, H, 1);
  make_img(img, 1, W, H);
  md_bmp_write(P("f/a_cat/x2.BMP"), img, W, H, 3);
  make_mask(msk, 3, W, H);
  md_png_write(P("m/a_cat/x2.png"), msk, W, H, 1);
  make_img(img, 2, W, H);
  write_file(P("f/b_dog/y1.jpg"), jpeg_8x6, sizeof jpeg_8x6);
  make_mask(msk, 5, W, H);
  md_png_write(P("m/b_dog/y1.png"), msk, W, H, 1);
  write_file(P("f/b_dog/notes.txt"), "not an image", 12);
  write_file(P("f/.hidden.png"), "x", 1);

  md_folder_opts o = {0};
  o.masks = P("m");
  md_dataset *ds = md_open_folder(P("f"), &o);
  CHECK(ds && ds->n == 3 && ds->c == 3 && ds->h == H && ds->w == W && ds->nclasses == 2 && ds->has_masks,
        "folder: 3 images, 2 classes, first image's size");
  if (ds) {
    CHECK(ds->labels[0] == 0 && ds->labels[1] == 0 && ds->labels[2] == 1, "folder: labels by sorted class folder");
    CHECK(strcmp(ds->class_names[0], "a_cat") == 0 && strcmp(ds->class_names[1], "b_dog") == 0 &&
              strcmp(ds->name, "f") == 0,
          "folder: class names");
    uint8_t out[8 * 6 * 3], m[8 * 6];
    int ok = md_dataset_get(ds, 0, out, m) == MD_OK, okm = 1;
    for (int k = 0; k < 3; k++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          ok &= out[(k * H + y) * W + x] == fpx(0, y, x, k);
          okm &= m[y * W + x] == (x < 2 ? 255 : 0);
        }
    CHECK(ok, "folder: PNG pixels, HWC -> CHW");
    CHECK(okm, "folder: mask nonzero -> 255");
    ok = md_dataset_get(ds, 1, out, m) == MD_OK;
    for (int k = 0; k < 3; k++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) ok &= out[(k * H + y) * W + x] == fpx(1, y, x, k);
    CHECK(ok && m[2] == 255 && m[3] == 0, "folder: BMP pixels (upper-case extension)");
    ok = md_dataset_get(ds, 2, out, m) == MD_OK;
    int maxd = 0;
    for (int k = 0; k < 3; k++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          int d = abs(out[(k * H + y) * W + x] - fpx(2, y, x, k));
          maxd = d > maxd ? d : maxd;
        }
    report(ok && maxd <= 40, "folder: JPEG pixels close", "max |diff| %d", maxd);
    CHECK(m[4] == 255 && m[5] == 0, "folder: mask for a .jpg found as .png");
    /* thread safety: two threads decode concurrently, same sums as one */
    job_t a = {ds, 0, 3, 0, 0}, b = {ds, 0, 3, 0, 0}, s = {ds, 0, 3, 0, 0};
    job_run(&s);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, job_run, &a);
    pthread_create(&tb, NULL, job_run, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.rc == MD_OK && b.rc == MD_OK && a.sum == s.sum && b.sum == s.sum, "folder: get() from two threads");
    /* mean over the 3 images, computed at open */
    double sm = 0;
    for (int i = 0; i < 3; i++) {
      md_dataset_get(ds, i, out, NULL);
      for (int j = 0; j < H * W; j++) sm += out[j] / 255.0;
    }
    CHECK(fabs(ds->mean[0] - sm / (3 * H * W)) < 1e-5, "folder: mean computed at open");
  }
  md_dataset_release(ds);

  /* resized, gray */
  o.h = 3, o.w = 4, o.channels = 1;
  ds = md_open_folder(P("f"), &o);
  CHECK(ds && ds->h == 3 && ds->w == 4 && ds->c == 1, "folder: size and channels options");
  if (ds) {
    uint8_t out[12], m[12];
    int ok = md_dataset_get(ds, 2, out, m) == MD_OK;
    /* mask x < 5 of 8 -> x < 2.5 of 4: columns 0, 1 object, column 2 half -> object, 3 not */
    CHECK(ok && m[0] == 255 && m[1] == 255 && m[2] == 255 && m[3] == 0 && m[8] == 255 && m[11] == 0,
          "folder: resized mask (area, >= 50%)");
  }
  md_dataset_release(ds);
  memset(&o, 0, sizeof o);

  /* a gray image folder: c defaults to 1 */
  mkdirs(P("g/only"));
  uint8_t gray[16];
  for (int i = 0; i < 16; i++) gray[i] = (uint8_t)(i * 16);
  md_png_write(P("g/only/a.png"), gray, 4, 4, 1);
  ds = md_open_folder(P("g"), NULL);
  CHECK(ds && ds->c == 1 && ds->nclasses == 1, "folder: gray images -> 1 channel");
  if (ds) {
    uint8_t out[16];
    md_dataset_get(ds, 0, out, NULL);
    CHECK(memcmp(out, gray, 16) == 0, "folder: gray pixels");
  }
  md_dataset_release(ds);

  /* CSV split: header, quotes, names and integers, comments, CRLF */
  const char *csv = "filename,label\r\n"
                    "# a comment\r\n"
                    "b_dog/y1.jpg,b_dog\r\n"
                    "\r\n"
                    "\"a_cat/x1.png\",0\r\n"
                    "a_cat/x2.BMP, a_cat ,extra\r\n";
  write_file(P("split.csv"), csv, strlen(csv));
  o.csv = P("split.csv");
  o.masks = P("m");
  ds = md_open_folder(P("f"), &o);
  CHECK(ds && ds->n == 3 && ds->labels[0] == 1 && ds->labels[1] == 0 && ds->labels[2] == 0 && ds->nclasses == 2 &&
            ds->class_names && strcmp(ds->class_names[1], "b_dog") == 0,
        "csv: rows in order, names and integers");
  if (ds) {
    uint8_t out[8 * 6 * 3], m[48];
    md_dataset_get(ds, 1, out, m);
    CHECK(out[0] == fpx(0, 0, 0, 0) && m[1] == 255 && m[2] == 0, "csv: item 1 is a_cat/x1.png with its mask");
  }
  md_dataset_release(ds);
  /* integer labels beyond the class folders: no names */
  write_file(P("split2.csv"), "a_cat/x1.png,4\nb_dog/y1.jpg,1\n", 30);
  o.csv = P("split2.csv");
  o.masks = NULL;
  ds = md_open_folder(P("f"), &o);
  CHECK(ds && ds->n == 2 && ds->nclasses == 5 && ds->labels[0] == 4 && !ds->class_names, "csv: integer labels");
  md_dataset_release(ds);
  /* a flat folder: classes from the CSV's names, sorted */
  mkdirs(P("flat"));
  make_img(img, 3, W, H);
  md_png_write(P("flat/p.png"), img, W, H, 3);
  md_png_write(P("flat/q.png"), img, W, H, 3);
  write_file(P("flat.csv"), "p.png,zebra\nq.png,ant\n", 22);
  o.csv = P("flat.csv");
  ds = md_open_folder(P("flat"), &o);
  CHECK(ds && ds->nclasses == 2 && ds->labels[0] == 1 && ds->labels[1] == 0 && strcmp(ds->class_names[0], "ant") == 0,
        "csv: classes from the CSV when the root has no class folders");
  md_dataset_release(ds);

  /* errors */
  write_file(P("bad1.csv"), "a_cat/x1.png,kangaroo\n", 22);
  o.csv = P("bad1.csv");
  CHECK_FAIL(md_open_folder(P("f"), &o), "bad1.csv", "kangaroo", "csv: unknown class name");
  write_file(P("bad2.csv"), "a_cat/x1.png\n", 13);
  o.csv = P("bad2.csv");
  CHECK_FAIL(md_open_folder(P("f"), &o), "bad2.csv", "line 1", "csv: missing label");
  write_file(P("bad3.csv"), "a_cat/missing.png,0\n", 20);
  o.csv = P("bad3.csv");
  CHECK_FAIL(md_open_folder(P("f"), &o), "missing.png", "cannot open", "csv: missing image");
  write_file(P("bad4.csv"), "a_cat/x1.png,-2\n", 16);
  o.csv = P("bad4.csv");
  CHECK_FAIL(md_open_folder(P("f"), &o), "bad4.csv", "out of range", "csv: negative label");
  o.csv = P("nope.csv");
  CHECK_FAIL(md_open_folder(P("f"), &o), "nope.csv", "cannot open", "csv: missing csv");
  memset(&o, 0, sizeof o);

  o.masks = P("m");
  mkdirs(P("f2/a"));
  mkdirs(P("m2/a"));
  md_png_write(P("f2/a/k.png"), img, W, H, 3);
  o.masks = P("m2");
  CHECK_FAIL(md_open_folder(P("f2"), &o), "f2/a/k.png", "m2/a/k.png", "folder: missing mask names image and mask");
  md_png_write(P("m2/a/k.png"), msk, W - 1, H, 1);
  CHECK_FAIL(md_open_folder(P("f2"), &o), "m2/a/k.png", "f2/a/k.png", "folder: mask of another size names both");
  md_png_write(P("m2/a/k.png"), msk, W, H, 1);
  ds = md_open_folder(P("f2"), &o);
  CHECK(ds != NULL, "folder: fixed mask opens");
  md_dataset_release(ds);
  write_file(P("f2/a/broken.png"), "\x89PNG\r\n\x1a\nthis is not a png", 25);
  CHECK_FAIL(md_open_folder(P("f2"), &o), "f2/a/broken.png", "not a readable", "folder: unreadable image fails at open");
  unlink(P("f2/a/broken.png"));
  md_png_write(P("f2/a/late.png"), img, W, H, 3);
  md_png_write(P("m2/a/late.png"), msk, W, H, 1);
  o.masks = NULL;
  ds = md_open_folder(P("f2"), &o);
  CHECK(ds && ds->n == 2, "folder: two images");
  if (ds) { /* a file damaged after open: get() fails cleanly, naming it */
    FILE *f = fopen(P("f2/a/late.png"), "rb");
    uint8_t head[40];
    size_t got = fread(head, 1, 40, f);
    fclose(f);
    write_file(P("f2/a/late.png"), head, got);
    uint8_t out[8 * 6 * 3];
    md_clear_error();
    int rc = md_dataset_get(ds, 1, out, NULL);
    report(rc == MD_ERR && has(md_last_error(), "late.png"), "folder: damaged after open -> get() error", "error: %s",
           md_last_error());
  }
  md_dataset_release(ds);
  o.masks = P("m");
  o.labelme = 1;
  CHECK_FAIL(md_open_folder(P("f"), &o), "not both", NULL, "folder: masks and labelme together");
  memset(&o, 0, sizeof o);
  CHECK_FAIL(md_open_folder(P("nodir"), &o), "nodir", "not a directory", "folder: missing root");
  mkdirs(P("empty/a"));
  CHECK_FAIL(md_open_folder(P("empty"), &o), "empty", "no images", "folder: no images");
  mkdirs(P("noclass"));
  CHECK_FAIL(md_open_folder(P("noclass"), &o), "noclass", "no class folders", "folder: no class folders");
  o.channels = 2;
  CHECK_FAIL(md_open_folder(P("f"), &o), "channels", NULL, "folder: channels 2");
}
/* }====================================================== */

/* {====================================================== mini-ImageNet's layout */
/* the usual distribution in miniature: root/images/<wnid><8 digits>.jpg and
** root/train.csv, val.csv, test.csv ("filename,label", label a wnid, classes
** disjoint across the files); opened with root = images/ and the three CSVs
** naming the classes, so a wnid has the same id in every split */
static void test_miniimagenet(void) {
  const char *wn[5] = {"n01532829", "n01558993", "n01704323", "n01749939", "n01770081"}; /* sorted: ids 0..4 */
  /* rows per file: {class, image number}; train lists class 1 before class 0 */
  const int tr[6][2] = {{1, 7}, {1, 8}, {1, 9}, {0, 5}, {0, 6}, {0, 11}}, va[2][2] = {{2, 1}, {2, 2}},
            te[4][2] = {{4, 3}, {4, 4}, {3, 1}, {3, 2}};
  const int (*rows[3])[2] = {tr, va, te}, nrows[3] = {6, 2, 4};
  const char *files[3] = {"train.csv", "val.csv", "test.csv"};
  mkdirs(P("mini/images"));
  uint8_t img[8 * 6 * 3];
  for (int f = 0; f < 3; f++) {
    char text[1024], name[64];
    size_t k = (size_t)snprintf(text, sizeof text, "filename,label\n");
    for (int r = 0; r < nrows[f]; r++) {
      int last = f == 2 && r == nrows[f] - 1; /* one PNG with pixels of its own, to check the row order */
      snprintf(name, sizeof name, "%s%08d.%s", wn[rows[f][r][0]], rows[f][r][1], last ? "png" : "jpg");
      k += (size_t)snprintf(text + k, sizeof text - k, "%s,%s\n", name, wn[rows[f][r][0]]);
      if (last) {
        make_img(img, 4, 8, 6);
        md_png_write(P("mini/images/%s", name), img, 8, 6, 3);
      } else {
        write_file(P("mini/images/%s", name), jpeg_8x6, sizeof jpeg_8x6);
      }
    }
    write_file(P("mini/%s", files[f]), text, k);
  }
  const char *all[4] = {P("mini/train.csv"), P("mini/val.csv"), P("mini/test.csv"), NULL};
  char allbuf[3][512];
  for (int f = 0; f < 3; f++) snprintf(allbuf[f], sizeof allbuf[f], "%s", all[f]); /* P() rotates its buffers */
  const char *cls[4] = {allbuf[0], allbuf[1], allbuf[2], NULL};
  md_folder_opts o = {0};
  o.stats_max = -1;
  o.class_csvs = cls;
  int ok = 1;
  for (int f = 0; f < 3; f++) {
    o.csv = cls[f];
    md_dataset *ds = md_open_folder(P("mini/images"), &o);
    int good = ds && ds->n == nrows[f] && ds->nclasses == 5 && ds->class_names && ds->h == 6 && ds->w == 8 && ds->c == 3;
    for (int k = 0; good && k < 5; k++) good &= strcmp(ds->class_names[k], wn[k]) == 0;
    for (int r = 0; good && r < nrows[f]; r++) good &= ds->labels[r] == rows[f][r][0];
    if (!good) printf("  %s: %s\n", files[f], ds ? "wrong classes or labels" : md_last_error());
    ok &= good;
    if (ds && f == 2) {
      uint8_t out[8 * 6 * 3];
      make_img(img, 4, 8, 6);
      int same = md_dataset_get(ds, 3, out, NULL) == MD_OK;
      for (int i = 0; same && i < 8 * 6; i++)
        for (int c = 0; c < 3; c++) same &= out[c * 48 + i] == img[i * 3 + c];
      CHECK(same, "mini-imagenet: item 4 of test.csv is its 4th row's file");
    }
    md_dataset_release(ds);
  }
  CHECK(ok, "mini-imagenet: train/val/test.csv map the wnids to sorted ids 0..4 in every split");
  o.csv = NULL;
  o.csvs = cls;
  md_dataset *ds = md_open_folder(P("mini/images"), &o);
  int good = ds && ds->n == 12 && ds->nclasses == 5;
  for (int f = 0, i = 0; good && f < 3; f++)
    for (int r = 0; r < nrows[f]; r++, i++) good &= ds->labels[i] == rows[f][r][0];
  CHECK(good, "mini-imagenet: the three CSVs together, rows in order");
  md_dataset_release(ds);
  o.h = o.w = 4;
  ds = md_open_folder(P("mini/images"), &o);
  CHECK(ds && ds->h == 4 && ds->w == 4, "mini-imagenet: resized to a common size");
  md_dataset_release(ds);
  /* without the class list, a split's own names are its classes: test.csv has 2 */
  memset(&o, 0, sizeof o);
  o.stats_max = -1;
  o.csv = cls[2];
  ds = md_open_folder(P("mini/images"), &o);
  CHECK(ds && ds->nclasses == 2 && ds->labels[0] == 1 && ds->labels[2] == 0,
        "mini-imagenet: test.csv alone numbers only its own 2 classes");
  md_dataset_release(ds);
  const char *only_train[2] = {cls[0], NULL};
  o.class_csvs = only_train;
  CHECK_FAIL(md_open_folder(P("mini/images"), &o), "test.csv: line 2 (n0177008100000003.jpg): label 'n01770081'",
             "not a label of the class CSV files", "mini-imagenet: a wnid missing from the class CSVs");
  o.csvs = cls;
  CHECK_FAIL(md_open_folder(P("mini/images"), &o), "either csv or csvs", NULL, "folder: csv and csvs together");
  o.csv = NULL;
  o.csvs = NULL;
  CHECK_FAIL(md_open_folder(P("mini/images"), &o), "give csv too", NULL, "folder: class_csvs without a split");
  /* pointed at the parent folder, the CSV's paths do not resolve: the error names the file */
  o.class_csvs = NULL;
  o.csv = cls[0];
  CHECK_FAIL(md_open_folder(P("mini"), &o), "label 'n01558993' is not a class", NULL,
             "mini-imagenet: root must be images/ (the parent has the class folder 'images')");
}
/* }====================================================== */

/* {====================================================== LabelMe */
static void test_labelme(void) {
  const char *ring = "{\"version\": \"5.0.1\", \"flags\": {}, \"shapes\": [{\"label\": \"obj\", \"points\": "
                     "[[0.5,0.5],[6.5,0.5],[6.5,6.5],[0.5,6.5],[0.5,0.5],[2.5,2.5],[4.5,2.5],[4.5,4.5],[2.5,4.5],"
                     "[2.5,2.5]], \"group_id\": null, \"shape_type\": \"polygon\", \"flags\": {}}],"
                     " \"imagePath\": \"r.png\", \"imageData\": null, \"imageHeight\": 8, \"imageWidth\": 8}";
  write_file(P("ring.json"), ring, strlen(ring));
  uint8_t m[64], m2[16];
  int ok = md_labelme_mask(P("ring.json"), 0, 0, 8, 8, 1, m) == MD_OK, cnt = 0, good = 1;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      int in_outer = i >= 1 && i <= 6 && j >= 1 && j <= 6, in_inner = i >= 3 && i <= 4 && j >= 3 && j <= 4;
      good &= (m[i * 8 + j] != 0) == (in_outer && !in_inner);
      cnt += m[i * 8 + j] != 0;
    }
  report(ok && good && cnt == 32, "labelme: even-odd leaves the hole", "%d pixels", cnt);
  ok = md_labelme_mask(P("ring.json"), 0, 0, 8, 8, 0, m) == MD_OK, cnt = 0, good = 1;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      good &= (m[i * 8 + j] != 0) == (i >= 1 && i <= 6 && j >= 1 && j <= 6);
      cnt += m[i * 8 + j] != 0;
    }
  report(ok && good && cnt == 36, "labelme: nonzero fills it", "%d pixels", cnt);
  /* at half size: pixel (i,j) samples the image point (2i+0.5, 2j+0.5): rows/cols 0..2 are in the
  ** outer square [0.5, 6.5), (1,1) in the hole [2.5, 4.5) */
  ok = md_labelme_mask(P("ring.json"), 0, 0, 4, 4, 1, m2) == MD_OK;
  const uint8_t want2[16] = {255, 255, 255, 0, 255, 0, 255, 0, 255, 255, 255, 0, 0, 0, 0, 0};
  CHECK(ok && memcmp(m2, want2, 16) == 0, "labelme: rasterised at another size");

  const char *shapes = "{\"shapes\": [{\"label\": \"a\", \"points\": [[1,1],[3,3]], \"shape_type\": \"rectangle\"},"
                       "{\"label\": \"b\", \"points\": [[6,6],[6,7.2]], \"shape_type\": \"circle\"},"
                       "{\"label\": \"c\", \"points\": [[0,9],[9,9]], \"shape_type\": \"line\"}],"
                       "\"imageHeight\": 10, \"imageWidth\": 10, \"note\": \"esc \\\" \\u00e9 \\ud83d\\ude00\"}";
  write_file(P("shapes.json"), shapes, strlen(shapes));
  uint8_t m10[100];
  ok = md_labelme_mask(P("shapes.json"), 0, 0, 10, 10, 1, m10) == MD_OK;
  int rect = 1, circ = 1;
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 10; j++) {
      int inr = i >= 1 && i < 3 && j >= 1 && j < 3; /* top-left rule: 2x2 */
      double d2 = (i - 6) * (i - 6) + (j - 6) * (j - 6);
      if (i < 4 && j < 4) rect &= (m10[i * 10 + j] != 0) == inr;
      if (i >= 4 && j >= 4 && d2 <= 1.0) circ &= m10[i * 10 + j] != 0;
      if (i >= 4 && j >= 4 && d2 >= 2.0) circ &= m10[i * 10 + j] == 0;
    }
  CHECK(ok && rect, "labelme: rectangle (top-left rule)");
  CHECK(ok && circ, "labelme: circle");
  CHECK(ok && m10[90] == 0 && m10[99] == 0, "labelme: lines are not areas");

  /* in a folder */
  mkdirs(P("lm/c"));
  uint8_t img[8 * 8 * 3];
  memset(img, 128, sizeof img);
  md_png_write(P("lm/c/r.png"), img, 8, 8, 3);
  write_file(P("lm/c/r.json"), ring, strlen(ring));
  md_folder_opts o = {0};
  o.labelme = 1;
  o.evenodd = 1;
  md_dataset *ds = md_open_folder(P("lm"), &o);
  CHECK(ds && ds->has_masks, "labelme: folder opens");
  if (ds) {
    uint8_t out[192];
    md_dataset_get(ds, 0, out, m);
    cnt = 0;
    for (int i = 0; i < 64; i++) cnt += m[i] != 0;
    CHECK(cnt == 32, "labelme: folder mask");
  }
  md_dataset_release(ds);
  /* errors */
  const char *bads[] = {"{\"shapes\": [", "{\"shapes\": [{\"points\": [[1,2],[3,4]]}]}", "[1, 2]",
                        "{\"shapes\": [{\"points\": [[1,\"x\"],[3,4],[5,6]]}]}", "{\"shapes\": 3}",
                        "{\"shapes\": []} trailing", "{\"a\": \"unterminated}"};
  const char *why[] = {"unexpected end", "2 points", "not an object", "point 1", "no \"shapes\"", "trailing", "unterminated"};
  for (int k = 0; k < 7; k++) {
    write_file(P("bad.json"), bads[k], strlen(bads[k]));
    md_clear_error();
    int rc = md_labelme_mask(P("bad.json"), 8, 8, 8, 8, 1, m);
    char nm[64];
    snprintf(nm, sizeof nm, "labelme: bad JSON %d", k + 1);
    report(rc == MD_ERR && has(md_last_error(), "bad.json") && has(md_last_error(), why[k]), nm, "error: %s",
           md_last_error());
  }
  char deep[300];
  memset(deep, '[', 200);
  deep[200] = 0;
  write_file(P("deep.json"), deep, 200);
  md_clear_error();
  CHECK(md_labelme_mask(P("deep.json"), 8, 8, 8, 8, 1, m) == MD_ERR && has(md_last_error(), "deeply"),
        "labelme: nesting limit");
  write_file(P("lm/c/r.json"), bads[0], strlen(bads[0]));
  CHECK_FAIL(md_open_folder(P("lm"), &o), "r.json", "bad JSON", "labelme: bad JSON in a folder fails at open");
  const char *other = "{\"shapes\": [], \"imageHeight\": 9, \"imageWidth\": 8}";
  write_file(P("lm/c/r.json"), other, strlen(other));
  CHECK_FAIL(md_open_folder(P("lm"), &o), "r.json", "8x9", "labelme: JSON size differs from the image");
  unlink(P("lm/c/r.json"));
  CHECK_FAIL(md_open_folder(P("lm"), &o), "no LabelMe JSON", "r.json", "labelme: missing JSON");
}
/* }====================================================== */

/* {====================================================== masks */
static md_tensor *T2(int h, int w, const float *v) { return md_from_data(2, (int64_t[]){h, w}, v); }

static int same_vals(const md_tensor *t, const float *want, int64_t n) {
  if (!t || md_numel(t) != n) return 0;
  for (int64_t i = 0; i < n; i++)
    if (md_get(t, i) != want[i]) return 0;
  return 1;
}

/* brute-force dilation / erosion for the random comparison */
static void brute(const float *in, int H, int W, int r, int ismax, float *out) {
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      float best = ismax ? -1e30f : 1e30f;
      for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
          int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          float v = in[yy * W + xx];
          best = ismax ? (v > best ? v : best) : (v < best ? v : best);
        }
      out[y * W + x] = best;
    }
}

static void test_masks(void) {
  char sb[64];
  /* resize 4x4 -> 2x2: quarters of 3/4, 2/4 (tie: object), 1/4, 3/4 */
  const float m44[16] = {1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0};
  md_tensor *m = T2(4, 4, m44);
  md_tensor *r = md_mask_resize(m, 2, 2);
  CHECK(r && r->ndim == 4 && r->shape[0] == 1 && r->shape[1] == 1 && r->shape[2] == 2 && r->shape[3] == 2,
        "mask_resize: (H,W) -> (1,1,h,w)");
  CHECK(same_vals(r, (float[]){1, 1, 0, 1}, 4), "mask_resize: area >= 0.5");
  md_release(r);
  /* 3x3 -> 2x2: cells of 1.5 x 1.5 pixels */
  const float top[9] = {1, 1, 1, 0, 0, 0, 0, 0, 0}, ctr[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
  md_tensor *a = T2(3, 3, top), *b = T2(3, 3, ctr);
  md_tensor *ra = md_mask_resize(a, 2, 2), *rb = md_mask_resize(b, 2, 2);
  CHECK(same_vals(ra, (float[]){1, 1, 0, 0}, 4), "mask_resize: 3x3 -> 2x2, top row covers 2/3 of row 0 cells");
  CHECK(same_vals(rb, (float[]){0, 0, 0, 0}, 4), "mask_resize: 3x3 -> 2x2, the centre pixel is 1/9 of each cell");
  md_release(ra), md_release(rb), md_release(a), md_release(b);
  /* 1x2 -> 1x3 upsampling: [1,0] -> cells [0,2/3) [2/3,4/3) [4/3,2): 1, 0.5 -> 1, 0 */
  a = T2(1, 2, (float[]){1, 0});
  ra = md_mask_resize(a, 1, 3);
  CHECK(same_vals(ra, (float[]){1, 1, 0}, 3), "mask_resize: 1x2 -> 1x3");
  md_release(ra);
  ra = md_mask_resize(a, 2, 4);
  CHECK(same_vals(ra, (float[]){1, 1, 0, 0, 1, 1, 0, 0}, 8), "mask_resize: integer upscale = nearest");
  md_release(ra), md_release(a);
  /* (N,H,W) -> (N,1,h,w); (N,C,H,W) keeps C */
  md_tensor *n3 = md_zeros(3, (int64_t[]){2, 4, 4}), *n4 = md_ones(4, (int64_t[]){2, 3, 4, 4});
  ra = md_mask_resize(n3, 2, 2), rb = md_mask_resize(n4, 3, 5);
  CHECK(ra && ra->ndim == 4 && ra->shape[0] == 2 && ra->shape[1] == 1, "mask_resize: (N,H,W) -> (N,1,h,w)");
  md_tensor *sum = md_sum(rb, 0, NULL, 0);
  CHECK(rb && rb->shape[1] == 3 && rb->shape[2] == 3 && rb->shape[3] == 5 && sum && md_item(sum) == 90,
        "mask_resize: (N,C,H,W) -> (N,C,h,w)");
  md_release(sum), md_release(ra), md_release(rb), md_release(n3), md_release(n4);

  /* dilate / erode */
  float one[25] = {0};
  one[12] = 1;
  a = T2(5, 5, one);
  md_tensor *d1 = md_mask_dilate(a, 1), *d2 = md_mask_dilate(a, 2), *d9 = md_mask_dilate(a, 9);
  float want[25];
  for (int i = 0; i < 25; i++) want[i] = (i / 5 >= 1 && i / 5 <= 3 && i % 5 >= 1 && i % 5 <= 3) ? 1 : 0;
  CHECK(same_vals(d1, want, 25), "mask_dilate: r=1 is a 3x3 square (Chebyshev, corners included)");
  for (int i = 0; i < 25; i++) want[i] = 1;
  CHECK(same_vals(d2, want, 25) && same_vals(d9, want, 25), "mask_dilate: r=2 and r past the size fill 5x5");
  CHECK(d1 && d1->ndim == 2 && d1->shape[0] == 5, "mask_dilate: same shape");
  md_release(d1), md_release(d2), md_release(d9), md_release(a);
  float corner[25] = {0};
  corner[0] = 1;
  a = T2(5, 5, corner);
  d1 = md_mask_dilate(a, 1);
  for (int i = 0; i < 25; i++) want[i] = (i / 5 <= 1 && i % 5 <= 1) ? 1 : 0;
  CHECK(same_vals(d1, want, 25), "mask_dilate: at the corner");
  md_release(d1), md_release(a);
  float blk[25] = {0};
  for (int i = 0; i < 25; i++) blk[i] = (i / 5 <= 2 && i % 5 <= 2) ? 1 : 0;
  a = T2(5, 5, blk);
  md_tensor *e1 = md_mask_erode(a, 1);
  for (int i = 0; i < 25; i++) want[i] = (i / 5 <= 1 && i % 5 <= 1) ? 1 : 0;
  CHECK(same_vals(e1, want, 25), "mask_erode: outside the image is ignored (border block keeps its border)");
  md_release(e1);
  float mid[25] = {0};
  for (int i = 0; i < 25; i++) mid[i] = (i / 5 >= 1 && i / 5 <= 3 && i % 5 >= 1 && i % 5 <= 3) ? 1 : 0;
  b = T2(5, 5, mid);
  e1 = md_mask_erode(b, 1);
  for (int i = 0; i < 25; i++) want[i] = i == 12;
  CHECK(same_vals(e1, want, 25), "mask_erode: 3x3 block -> its centre");
  md_tensor *ex = md_mask_expand(b, -1), *ex2 = md_mask_expand(a, 1), *dd = md_mask_dilate(a, 1), *e0 = md_mask_expand(a, 0);
  CHECK(same_vals(ex, want, 25), "mask_expand: px < 0 erodes");
  float dv[25];
  md_to_float(dd, dv);
  CHECK(same_vals(ex2, dv, 25), "mask_expand: px > 0 dilates");
  CHECK(same_vals(e0, blk, 25), "mask_expand: 0 copies");
  md_release(e1), md_release(ex), md_release(ex2), md_release(dd), md_release(e0), md_release(a), md_release(b);

  /* the paper's composition: expand in input space, then resize */
  float p8[64] = {0};
  p8[3 * 8 + 3] = 1;
  a = T2(8, 8, p8);
  r = md_mask_for_layer(a, 1, 4, 4);
  CHECK(same_vals(r, (float[]){0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 16), "mask_for_layer: expand 1 then 8x8 -> 4x4");
  CHECK(r && r->ndim == 4 && !md_requires_grad(r), "mask_for_layer: 4-d, no grad");
  md_release(r);
  /* non-contiguous input and requires_grad */
  md_set_requires_grad(a, 1);
  md_tensor *at = md_transpose(a, 0, 1);
  r = md_mask_dilate(at, 1);
  float tw[64] = {0};
  for (int i = 2; i <= 4; i++)
    for (int j = 2; j <= 4; j++) tw[i * 8 + j] = 1;
  CHECK(same_vals(r, tw, 64) && !md_requires_grad(r), "mask_dilate: transposed input, result has no grad");
  md_release(r), md_release(at), md_release(a);

  /* random masks against brute force, many radii and shapes */
  int ok = 1;
  md_manual_seed(7);
  for (int t = 0; t < 40 && ok; t++) {
    int H = 1 + t % 13, W = 1 + (t * 7) % 17, rr = t % 9;
    md_tensor *x = md_bernoulli(2, (int64_t[]){H, W}, 0.3f);
    float in[13 * 17], ref[13 * 17];
    md_to_float(x, in);
    for (int mx = 0; mx < 2; mx++) {
      brute(in, H, W, rr, mx, ref);
      md_tensor *y = mx ? md_mask_dilate(x, rr) : md_mask_erode(x, rr);
      if (!same_vals(y, ref, (int64_t)H * W)) {
        ok = 0;
        printf("mismatch %dx%d r=%d %s\n", H, W, rr, mx ? "dilate" : "erode");
      }
      md_release(y);
    }
    md_release(x);
  }
  CHECK(ok, "mask_dilate/erode: 40 random masks = brute force");
  /* random resize against a direct double computation */
  ok = 1;
  for (int t = 0; t < 30 && ok; t++) {
    int H = 2 + t % 11, W = 3 + (t * 5) % 13, h = 1 + (t * 3) % 7, w = 1 + (t * 11) % 9;
    md_tensor *x = md_bernoulli(2, (int64_t[]){H, W}, 0.5f);
    md_tensor *y = md_mask_resize(x, h, w);
    float in[13 * 15];
    md_to_float(x, in);
    for (int i = 0; i < h && ok; i++)
      for (int j = 0; j < w && ok; j++) {
        double y0 = (double)i * H / h, y1 = (double)(i + 1) * H / h, x0 = (double)j * W / w, x1 = (double)(j + 1) * W / w;
        double s = 0;
        for (int yy = 0; yy < H; yy++)
          for (int xx = 0; xx < W; xx++) {
            double oy = fmin(y1, yy + 1) - fmax(y0, yy), ox = fmin(x1, xx + 1) - fmax(x0, xx);
            if (oy > 0 && ox > 0) s += oy * ox * in[yy * W + xx];
          }
        s /= (y1 - y0) * (x1 - x0);
        if (fabs(s - 0.5) > 1e-6 && (md_get(y, i * w + j) == 1) != (s > 0.5)) {
          ok = 0;
          printf("resize mismatch %dx%d -> %dx%d at %d,%d: area %g got %g\n", H, W, h, w, i, j, s, md_get(y, i * w + j));
        }
      }
    md_release(x), md_release(y);
  }
  CHECK(ok, "mask_resize: 30 random masks = area fraction >= 0.5");

  /* errors */
  md_tensor *v1 = md_zeros(1, (int64_t[]){5});
  CHECK_ERR(md_mask_resize(v1, 2, 2), "mask_resize: mask must be", "mask_resize: 1-d rejected");
  CHECK_ERR(md_mask_dilate(v1, 1), "mask_dilate", "mask_dilate: 1-d rejected");
  CHECK_ERR(md_mask_dilate(m, -1), "radius must be >= 0", "mask_dilate: negative radius");
  CHECK_ERR(md_mask_resize(m, 0, 3), "target size", "mask_resize: empty target");
  md_set_error("earlier");
  md_tensor *nul = md_mask_resize(NULL, 2, 2);
  CHECK(nul == NULL && has(md_last_error(), "earlier"), "mask_resize: NULL keeps the earlier error");
  md_tensor *e = md_zeros(2, (int64_t[]){0, 4});
  CHECK_ERR(md_mask_erode(e, 1), "empty", "mask_erode: empty mask");
  md_release(e), md_release(v1), md_release(m);
  (void)sb;
}
/* }====================================================== */

/* {====================================================== images, compositor */
static void test_images(void) {
  md_tensor *t = md_rand(3, (int64_t[]){3, 5, 7});
  CHECK(md_png_write_tensor(P("t.png"), t) == MD_OK, "png_write_tensor");
  md_tensor *r = md_image_read_tensor(P("t.png"), 0);
  CHECK(r && r->shape[0] == 3 && r->shape[1] == 5 && r->shape[2] == 7, "image_read_tensor: (C,H,W)");
  check_close("png round trip within 1/510", r, t, 0, 0.5 / 255 + 1e-6);
  md_tensor *g = md_image_read_tensor(P("t.png"), 1);
  CHECK(g && g->shape[0] == 1, "image_read_tensor: to gray");
  md_release(g), md_release(r), md_release(t);
  t = md_rand(2, (int64_t[]){4, 4});
  CHECK(md_png_write_tensor(P("t2.png"), t) == MD_OK, "png_write_tensor: (H,W)");
  md_release(t);
  t = md_zeros(3, (int64_t[]){5, 4, 4});
  md_clear_error();
  CHECK(md_png_write_tensor(P("t5.png"), t) == MD_ERR && has(md_last_error(), "t5.png"), "png_write_tensor: 5 channels rejected");
  md_release(t);
  t = md_zeros(3, (int64_t[]){3, 4, 4});
  md_clear_error();
  CHECK(md_png_write_tensor(P("nodir/x.png"), t) == MD_ERR && has(md_last_error(), "nodir/x.png"),
        "png_write_tensor: unwritable path");
  md_release(t);
  write_file(P("junk.png"), "junk", 4);
  CHECK_ERR(md_image_read_tensor(P("junk.png"), 0), "junk.png", "image_read_tensor: junk");
  CHECK_ERR(md_image_read_tensor(P("none.png"), 0), "none.png", "image_read_tensor: missing");
  int w, h, c;
  CHECK(md_image_info(P("t.png"), &w, &h, &c) == MD_OK && w == 7 && h == 5 && c == 3, "image_info");

  /* the compositor */
  uint8_t item[28 * 28] = {0};
  for (int y = 6; y < 20; y++)
    for (int x = 10; x < 18; x++) item[y * 28 + x] = 200;
  md_clutter_params p = {64, 28, 5, 9, 3, 42};
  uint8_t img[3 * 64 * 64], mask[64 * 64], img2[3 * 64 * 64], mask2[64 * 64];
  int ok = md_clutter_compose(item, 28, 28, &p, img, mask) == MD_OK;
  ok &= md_clutter_compose(item, 28, 28, &p, img2, mask2) == MD_OK;
  CHECK(ok && memcmp(img, img2, sizeof img) == 0 && memcmp(mask, mask2, sizeof mask) == 0, "clutter: deterministic");
  int good = 1, cnt = 0;
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 64; x++) {
      int in = y >= 9 + 6 && y < 9 + 20 && x >= 5 + 10 && x < 5 + 18; /* scale 1: exact placement */
      good &= (mask[y * 64 + x] == 255) == in;
      cnt += mask[y * 64 + x] != 0;
    }
  report(good && cnt == 14 * 8, "clutter: mask = the item's pixels > 0, placed at (x, y)", "%d pixels", cnt);
  p.seed = 43;
  md_clutter_compose(item, 28, 28, &p, img2, mask2);
  CHECK(memcmp(img, img2, sizeof img) != 0 && memcmp(mask, mask2, sizeof mask) == 0, "clutter: the seed changes the background only");
  p.item_size = 48, p.x = 17, p.y = 16;
  md_clear_error();
  CHECK(md_clutter_compose(item, 28, 28, &p, img, mask) == MD_ERR && has(md_last_error(), "bad parameters"),
        "clutter: item outside the image rejected");
  p.x = 0, p.texture = 10;
  CHECK(md_clutter_compose(item, 28, 28, &p, img, mask) == MD_ERR, "clutter: bad texture rejected");
  CHECK(md_clutter_family_name(0) && !md_clutter_family_name(10), "clutter: family names");
  /* all families render and differ */
  p.texture = 0, p.item_size = 28, p.seed = 5;
  uint32_t hs[MD_CLUTTER_FAMILIES];
  ok = 1;
  for (int k = 0; k < MD_CLUTTER_FAMILIES; k++) {
    p.texture = k;
    ok &= md_clutter_compose(item, 28, 28, &p, img, mask) == MD_OK;
    hs[k] = fnv(img, sizeof img);
    for (int j = 0; j < k; j++) ok &= hs[j] != hs[k];
  }
  CHECK(ok, "clutter: 10 families");
}
/* }====================================================== */

int main(void) {
  snprintf(tmp, sizeof tmp, "/tmp/md-datasets-XXXXXX");
  if (!mkdtemp(tmp)) {
    printf("mkdtemp failed\n");
    return 1;
  }
  test_idx();
  test_fashion_mnist();
  test_cifar();
  test_stl10();
  test_folder();
  test_miniimagenet();
  test_labelme();
  test_masks();
  test_images();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) printf("note: could not remove %s\n", tmp);
  return summary();
}
