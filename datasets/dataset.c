/*
** dataset.c -- the md_dataset life cycle and item access (dataset.h).
*/
#include "readers.h"

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

md_dataset *md_dataset_new(void) {
  md_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) {
    md_set_error("dataset: out of memory");
    return NULL;
  }
  ds->refcount = 1;
  for (int k = 0; k < 3; k++) ds->mean[k] = 0.5f, ds->std[k] = 0.5f;
  return ds;
}

int md_dataset_get(md_dataset *ds, int64_t i, uint8_t *img, uint8_t *mask) {
  if (!ds) {
    md_set_error("dataset_get: no data set");
    return MD_ERR;
  }
  if (i < 0 || i >= ds->n) {
    md_set_error("dataset_get %s: index %lld out of range 0..%lld", ds->name, (long long)i, (long long)ds->n - 1);
    return MD_ERR;
  }
  size_t hw = (size_t)ds->h * ds->w, chw = hw * (size_t)ds->c;
  if (ds->images) {
    if (img) memcpy(img, ds->images + (size_t)i * chw, chw);
    if (mask) {
      if (ds->masks)
        memcpy(mask, ds->masks + (size_t)i * hw, hw);
      else
        memset(mask, 0, hw);
    }
    return MD_OK;
  }
  if (!ds->get) {
    md_set_error("dataset_get %s: no pixels and no get()", ds->name);
    return MD_ERR;
  }
  if (mask && !ds->has_masks) {
    memset(mask, 0, hw);
    mask = NULL;
  }
  if (!img) { /* get() always fills an image */
    uint8_t *tmp = malloc(chw ? chw : 1);
    if (!tmp) {
      md_set_error("dataset_get %s: out of memory", ds->name);
      return MD_ERR;
    }
    int rc = ds->get(ds, i, tmp, mask);
    free(tmp);
    return rc;
  }
  return ds->get(ds, i, img, mask);
}

md_dataset *md_dataset_retain(md_dataset *ds) {
  if (ds) __atomic_add_fetch(&ds->refcount, 1, __ATOMIC_RELAXED);
  return ds;
}

void md_dataset_release(md_dataset *ds) {
  if (!ds || __atomic_sub_fetch(&ds->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (ds->free_impl) ds->free_impl(ds);
  if (ds->class_names) {
    for (int k = 0; k < ds->nclasses; k++) free(ds->class_names[k]);
    free(ds->class_names);
  }
  free(ds->images);
  free(ds->labels);
  free(ds->masks);
  free(ds);
}

void md_dataset_compute_stats(md_dataset *ds) {
  if (!ds->images || ds->n <= 0) return;
  size_t hw = (size_t)ds->h * ds->w;
  for (int k = 0; k < ds->c && k < 3; k++) {
    uint64_t hist[256] = {0};
    for (int64_t i = 0; i < ds->n; i++) {
      const uint8_t *p = ds->images + ((size_t)i * ds->c + k) * hw;
      for (size_t j = 0; j < hw; j++) hist[p[j]]++;
    }
    double s = 0, s2 = 0, cnt = (double)ds->n * hw;
    for (int v = 0; v < 256; v++) {
      double x = v / 255.0;
      s += hist[v] * x;
      s2 += hist[v] * x * x;
    }
    double m = s / cnt, var = s2 / cnt - m * m;
    ds->mean[k] = (float)m;
    ds->std[k] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
  }
}

uint8_t *md_read_file(const char *path, size_t *size, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    md_set_error("%s %s: cannot open", what, path);
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    md_set_error("%s %s: not a regular file", what, path);
    return NULL;
  }
  size_t n = (size_t)st.st_size;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    fclose(f);
    md_set_error("%s %s: out of memory for %zu bytes", what, path, n);
    return NULL;
  }
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  if (got != n) {
    free(buf);
    md_set_error("%s %s: read error (%zu of %zu bytes)", what, path, got, n);
    return NULL;
  }
  *size = n;
  return buf;
}
