/*
** svhn.c -- SVHN's cropped digits (train_32x32.mat, test_32x32.mat,
** extra_32x32.mat), MATLAB files read with libmatio.
**
** X: uint8, 32 x 32 x 3 x N in MATLAB's column-major order, so pixel (row r,
** column c, channel ch) of image n is byte r + 32*c + 1024*ch + 3072*n: each
** image is contiguous, channel after channel, each channel column by column
** (as in STL-10).  We transpose every image to CHW row-major.  MATLAB drops
** trailing singleton dimensions, so a one-image file has X of 32 x 32 x 3.
** y: N x 1 (or 1 x N), any real numeric class, the digits 1..9 as themselves
** and the digit 0 as 10; we store 10 as 0, so the label is the digit.
**
** libmatio decodes; we check what it does not: in a v5 file the variables are
** top-level elements whose tags give their byte counts, and one that runs
** past the end of the file means a truncated file (libmatio 1.5 would read
** the missing bytes as zeros).  A corrupt compressed stream is caught through
** libmatio's log, which we route into the error message.  libmatio keeps
** global state (its log function), so one open runs at a time.
*/
#include "readers.h"

#include <errno.h>
#include <math.h>
#include <matio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S 32
#define IMG (3 * S * S)
/* zlib cannot inflate more than 1032 bytes from one: a larger claim is a lie */
#define MAX_RATIO 1100

/* {====================================================== libmatio's log */
static pthread_mutex_t mat_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static char mat_msg[256]; /* the first critical message of this open, under mat_lock */

static void mat_log(int level, char *message) {
  if (!(level & (MATIO_LOG_LEVEL_ERROR | MATIO_LOG_LEVEL_CRITICAL)) || mat_msg[0] || !message) return;
  size_t k = 0; /* on one line: HDF5's reports span several */
  for (const char *c = message; *c && k + 1 < sizeof mat_msg; c++) {
    int space = *c == '\n' || *c == '\t' || *c == ' ';
    if (!space || (k > 0 && mat_msg[k - 1] != ' ')) mat_msg[k++] = space ? ' ' : *c;
  }
  while (k > 0 && mat_msg[k - 1] == ' ') k--;
  mat_msg[k] = 0;
}
static void log_init(void) { Mat_LogInitFunc("mdoctor", mat_log); }
/* }====================================================== */

/* {====================================================== checks */
static const char *class_name(enum matio_classes c) {
  static const char *const names[] = {"empty",  "cell",   "struct", "object", "char",   "sparse",
                                      "double", "single", "int8",   "uint8",  "int16",  "uint16",
                                      "int32",  "uint32", "int64",  "uint64", "function", "opaque"};
  return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "unknown";
}

/* "32x32x3x5" */
static const char *dims_str(const matvar_t *v, char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = 0;
  for (int d = 0; d < v->rank && k + 24 < cap; d++) k += (size_t)snprintf(buf + k, cap - k, d ? "x%zu" : "%zu", v->dims[d]);
  return buf;
}

static uint32_t get32(const unsigned char *p, int swap) {
  return swap ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* a v5 file's top-level elements (8-byte tag: type, byte count) must each
** fit in the file; MD_OK or an error naming the first that does not */
static int check_v5(const char *path, uint64_t fsize) {
  FILE *f = fopen(path, "rb");
  unsigned char h[128], tag[8];
  if (!f) {
    md_set_error("svhn %s: cannot open: %s", path, strerror(errno));
    return MD_ERR;
  }
  int rc = MD_ERR;
  if (fread(h, 1, 128, f) != 128) {
    md_set_error("svhn %s: truncated: %llu bytes, less than the 128-byte MATLAB header", path, (unsigned long long)fsize);
    goto done;
  }
  int swap = h[126] == 'M' && h[127] == 'I'; /* "IM" as written on a little-endian machine */
  uint64_t pos = 128;
  while (pos < fsize) {
    if (fsize - pos < 8 || fseek(f, (long)pos, SEEK_SET) != 0 || fread(tag, 1, 8, f) != 8) {
      md_set_error("svhn %s: truncated: %llu stray bytes at the end (a cut variable tag)", path,
                   (unsigned long long)(fsize - pos));
      goto done;
    }
    uint32_t type = get32(tag, swap), nb = get32(tag + 4, swap);
    if (type != 14 && type != 15) { /* miMATRIX, miCOMPRESSED */
      md_set_error("svhn %s: byte %llu: element type %u is not a variable (not a MATLAB v5 file, or a corrupt one)",
                   path, (unsigned long long)pos, type);
      goto done;
    }
    uint64_t end = pos + 8 + nb;
    if (end > fsize) {
      md_set_error("svhn %s: truncated: the variable at byte %llu needs %u bytes but the file ends %llu bytes after "
                   "its tag",
                   path, (unsigned long long)pos, nb, (unsigned long long)(fsize - pos - 8));
      goto done;
    }
    pos = type == 14 && (end + 7) / 8 * 8 <= fsize ? (end + 7) / 8 * 8 : end; /* miMATRIX is padded to 8 */
  }
  rc = MD_OK;
done:
  fclose(f);
  return rc;
}

/* libmatio reported a problem during the last calls: say it */
static int mat_failed(const char *path, const char *what) {
  if (!mat_msg[0]) return 0;
  md_set_error("svhn %s: %s: libmatio: %s (a corrupt file?)", path, what, mat_msg);
  return 1;
}
/* }====================================================== */

static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

/* labels from y (n values of any real class), 10 -> 0 */
static int read_labels(const char *path, const matvar_t *y, size_t n, int64_t *out) {
  for (size_t i = 0; i < n; i++) {
    const void *d = y->data;
    double v;
    switch (y->class_type) {
    case MAT_C_DOUBLE: v = ((const double *)d)[i]; break;
    case MAT_C_SINGLE: v = ((const float *)d)[i]; break;
    case MAT_C_INT8: v = ((const int8_t *)d)[i]; break;
    case MAT_C_UINT8: v = ((const uint8_t *)d)[i]; break;
    case MAT_C_INT16: v = ((const int16_t *)d)[i]; break;
    case MAT_C_UINT16: v = ((const uint16_t *)d)[i]; break;
    case MAT_C_INT32: v = ((const int32_t *)d)[i]; break;
    case MAT_C_UINT32: v = ((const uint32_t *)d)[i]; break;
    case MAT_C_INT64: v = (double)((const int64_t *)d)[i]; break;
    case MAT_C_UINT64: v = (double)((const uint64_t *)d)[i]; break;
    default: v = NAN; break;
    }
    if (!(v >= 1 && v <= 10 && v == floor(v))) {
      md_set_error("svhn %s: y(%zu) is %g; want 1..10 (10 stands for the digit 0)", path, i + 1, v);
      return MD_ERR;
    }
    out[i] = v == 10 ? 0 : (int64_t)v;
  }
  return MD_OK;
}

static md_dataset *open_locked(const char *path) {
  struct stat st;
  char dx[96], dy[96];
  if (stat(path, &st) != 0) {
    md_set_error("svhn %s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    md_set_error("svhn %s: not a regular file", path);
    return NULL;
  }
  uint64_t fsize = (uint64_t)st.st_size;
  mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
  matvar_t *x = NULL, *y = NULL;
  md_dataset *ds = NULL;
  if (!mat || (Mat_GetVersion(mat) != MAT_FT_MAT5 && Mat_GetVersion(mat) != MAT_FT_MAT73)) {
    md_set_error("svhn %s: not a MATLAB v5 or v7.3 .mat file (SVHN's *_32x32.mat are v5)%s", path,
                 fsize < 128 ? "; it is shorter than the 128-byte header (truncated?)" : "");
    goto fail;
  }
  if (Mat_GetVersion(mat) == MAT_FT_MAT5 && check_v5(path, fsize) != MD_OK) goto fail;
  x = Mat_VarReadInfo(mat, "X");
  y = Mat_VarReadInfo(mat, "y");
  if (mat_failed(path, "reading the variable list")) goto fail;
  if (!x || !y) {
    md_set_error("svhn %s: no variable '%s' (want X: 32x32x3xN uint8 images and y: Nx1 labels)", path, x ? "y" : "X");
    goto fail;
  }
  int rank_ok = (x->rank == 4 || x->rank == 3) && x->dims[0] == S && x->dims[1] == S && x->dims[2] == 3;
  if (x->class_type != MAT_C_UINT8 || x->isComplex || !rank_ok) {
    md_set_error("svhn %s: X is a %s%s array of %s; want uint8 32x32x3xN", path, x->isComplex ? "complex " : "",
                 class_name(x->class_type), dims_str(x, dx, sizeof dx));
    goto fail;
  }
  size_t n = x->rank == 4 ? x->dims[3] : 1;
  int y_ok = y->class_type >= MAT_C_DOUBLE && y->class_type <= MAT_C_UINT64 && !y->isComplex && y->rank == 2 &&
             (y->dims[0] == 1 || y->dims[1] == 1);
  if (!y_ok) {
    md_set_error("svhn %s: y is a %s%s array of %s; want a real numeric Nx1 vector", path, y->isComplex ? "complex " : "",
                 class_name(y->class_type), dims_str(y, dy, sizeof dy));
    goto fail;
  }
  size_t ny = y->dims[0] * y->dims[1];
  if (ny != n || n == 0) {
    md_set_error("svhn %s: X holds %zu images (%s) but y has %zu labels (%s)", path, n, dims_str(x, dx, sizeof dx), ny,
                 dims_str(y, dy, sizeof dy));
    goto fail;
  }
  if (n > (size_t)INT64_MAX / IMG || (double)n * IMG > (double)fsize * (x->compression ? MAX_RATIO : 1)) {
    md_set_error("svhn %s: X claims %zu images (%zu bytes) but the file has %llu bytes (corrupt or truncated)", path, n,
                 n * IMG, (unsigned long long)fsize);
    goto fail;
  }
  Mat_VarFree(x);
  Mat_VarFree(y);
  x = y = NULL;
  ds = md_dataset_new();
  if (!ds) goto fail;
  ds->labels = malloc(sizeof *ds->labels * n);
  ds->class_names = calloc(10, sizeof(char *));
  ds->nclasses = 10;
  if (!ds->labels || !ds->class_names) goto oom;
  for (int k = 0; k < 10; k++)
    if (!(ds->class_names[k] = strdup(digit_names[k]))) goto oom;
  y = Mat_VarRead(mat, "y");
  if (mat_failed(path, "reading y")) goto fail;
  if (!y || !y->data || y->nbytes < n * (size_t)y->data_size) {
    md_set_error("svhn %s: cannot read y (corrupt or truncated file)", path);
    goto fail;
  }
  if (read_labels(path, y, n, ds->labels) != MD_OK) goto fail;
  x = Mat_VarRead(mat, "X");
  if (mat_failed(path, "reading X")) goto fail;
  if (!x || !x->data || x->class_type != MAT_C_UINT8 || x->nbytes != n * IMG) {
    md_set_error("svhn %s: cannot read X (%zu images; corrupt or truncated file, or out of memory)", path, n);
    goto fail;
  }
  ds->images = x->data; /* take libmatio's buffer (malloc'd) and transpose in place */
  x->data = NULL;
  uint8_t src[IMG];
  for (size_t i = 0; i < n; i++) {
    uint8_t *dst = ds->images + i * IMG;
    memcpy(src, dst, IMG);
    for (int c = 0; c < 3; c++)
      for (int col = 0; col < S; col++)
        for (int row = 0; row < S; row++) dst[c * S * S + row * S + col] = src[c * S * S + col * S + row];
  }
  ds->n = (int64_t)n;
  ds->c = 3, ds->h = S, ds->w = S;
  snprintf(ds->name, sizeof ds->name, "SVHN");
  /* the statistics of the train split, as widely used (torchvision users) */
  const float m[3] = {0.4377f, 0.4438f, 0.4728f}, s[3] = {0.1980f, 0.2010f, 0.1970f};
  memcpy(ds->mean, m, sizeof m), memcpy(ds->std, s, sizeof s);
  Mat_VarFree(x);
  Mat_VarFree(y);
  Mat_Close(mat);
  return ds;
oom:
  md_set_error("svhn %s: out of memory", path);
fail:
  Mat_VarFree(x);
  Mat_VarFree(y);
  if (mat) Mat_Close(mat);
  md_dataset_release(ds);
  return NULL;
}

md_dataset *md_open_svhn(const char *path) {
  if (!path) {
    md_set_error("open_svhn: need a .mat file (train_32x32.mat, test_32x32.mat, extra_32x32.mat)");
    return NULL;
  }
  pthread_once(&log_once, log_init);
  pthread_mutex_lock(&mat_lock);
  mat_msg[0] = 0;
  md_dataset *ds = open_locked(path);
  pthread_mutex_unlock(&mat_lock);
  return ds;
}
