/*
** stl10.c -- STL-10 binary files.
**
** x: n images of 3 x 96 x 96 bytes; within an image the channels come one
** after the other (R, G, B) and each channel is stored column-major (the
** files were written from MATLAB): byte c*9216 + col*96 + row.  We transpose
** to CHW row-major.  y: n bytes, labels 1..10, stored here as 0..9.
*/
#include "readers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S 96
#define IMG (3 * S * S)

static const char *const stl_names[10] = {"airplane", "bird",  "car",    "cat",  "deer",
                                          "dog",      "horse", "monkey", "ship", "truck"};

md_dataset *md_open_stl10(const char *x, const char *y) {
  if (!x) {
    md_set_error("open_stl10: need the images file (train_X.bin, test_X.bin, unlabeled_X.bin)");
    return NULL;
  }
  size_t xs = 0, ys = 0;
  uint8_t *xb = NULL, *yb = NULL;
  md_dataset *ds = NULL;
  xb = md_read_file(x, &xs, "stl10");
  if (!xb) return NULL;
  if (xs == 0 || xs % IMG != 0) {
    md_set_error("stl10 %s: size %zu is not a multiple of one 3x96x96 image (%d bytes)", x, xs, IMG);
    goto fail;
  }
  size_t n = xs / IMG;
  if (y) {
    yb = md_read_file(y, &ys, "stl10");
    if (!yb) goto fail;
    if (ys != n) {
      md_set_error("stl10: %s holds %zu images but %s has %zu labels", x, n, y, ys);
      goto fail;
    }
    for (size_t i = 0; i < n; i++)
      if (yb[i] < 1 || yb[i] > 10) {
        md_set_error("stl10 %s: label %zu is %d (want 1..10)", y, i, yb[i]);
        goto fail;
      }
  }
  ds = md_dataset_new();
  if (!ds) goto fail;
  ds->images = xb; /* transposed in place, one image at a time */
  xb = NULL;
  ds->labels = malloc(sizeof *ds->labels * n);
  ds->class_names = calloc(10, sizeof(char *));
  ds->nclasses = 10;
  if (!ds->images || !ds->labels || !ds->class_names) goto oom;
  for (int k = 0; k < 10; k++)
    if (!(ds->class_names[k] = strdup(stl_names[k]))) goto oom;
  uint8_t src[IMG];
  for (size_t i = 0; i < n; i++) {
    uint8_t *dst = ds->images + i * IMG;
    memcpy(src, dst, IMG);
    for (int c = 0; c < 3; c++)
      for (int col = 0; col < S; col++)
        for (int row = 0; row < S; row++) dst[c * S * S + row * S + col] = src[c * S * S + col * S + row];
    ds->labels[i] = yb ? yb[i] - 1 : -1;
  }
  free(yb);
  ds->n = (int64_t)n;
  ds->c = 3, ds->h = S, ds->w = S;
  snprintf(ds->name, sizeof ds->name, "STL-10");
  const float m[3] = {0.4467f, 0.4398f, 0.4066f}, s[3] = {0.2603f, 0.2566f, 0.2713f};
  memcpy(ds->mean, m, sizeof m), memcpy(ds->std, s, sizeof s);
  return ds;
oom:
  md_set_error("stl10 %s: out of memory", x);
fail:
  free(xb);
  free(yb);
  md_dataset_release(ds);
  return NULL;
}
