/*
** idx.c -- IDX files (MNIST, Fashion-MNIST, ...), plain or gzip'd.
**
** Format (big endian): magic 00 00 08 nd (08 = ubyte, nd dims), nd uint32
** sizes, then the bytes.  Images are nd = 3 (n, rows, cols), labels nd = 1.
** The gzip'd files are read with zlib straight into the final buffer, so the
** peak memory is the data set itself (47 MB for Fashion-MNIST train).
*/
#include "readers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct {
  const char *path;
  FILE *f;     /* plain */
  gzFile gz;   /* or gzip'd */
  long long size; /* plain: file size */
} src_t;

static int src_open(src_t *s, const char *path) {
  memset(s, 0, sizeof *s);
  s->path = path;
  FILE *f = fopen(path, "rb");
  if (!f) {
    md_set_error("idx %s: cannot open", path);
    return MD_ERR;
  }
  unsigned char m[2] = {0, 0};
  size_t got = fread(m, 1, 2, f);
  if (got == 2 && m[0] == 0x1f && m[1] == 0x8b) {
    fclose(f);
    s->gz = gzopen(path, "rb");
    if (!s->gz) {
      md_set_error("idx %s: cannot open (gzip)", path);
      return MD_ERR;
    }
    gzbuffer(s->gz, 1 << 18);
    return MD_OK;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    fclose(f);
    md_set_error("idx %s: cannot stat", path);
    return MD_ERR;
  }
  s->size = (long long)st.st_size;
  rewind(f);
  s->f = f;
  return MD_OK;
}

static void src_close(src_t *s) {
  if (s->f) fclose(s->f);
  if (s->gz) gzclose(s->gz);
  s->f = NULL;
  s->gz = NULL;
}

/* read up to n bytes; returns the count, or -1 on a stream error (set) */
static long long src_read(src_t *s, void *dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
    if (s->f) {
      size_t k = fread((char *)dst + done, 1, chunk, s->f);
      done += k;
      if (k < chunk) break;
    } else {
      int k = gzread(s->gz, (char *)dst + done, (unsigned)chunk);
      if (k < 0) {
        int e;
        const char *msg = gzerror(s->gz, &e);
        md_set_error("idx %s: corrupt gzip data (%s)", s->path, msg);
        return -1;
      }
      done += (size_t)k;
      if ((size_t)k < chunk) {
        int e = Z_OK;
        const char *msg = gzerror(s->gz, &e);
        if (e != Z_OK && e != Z_STREAM_END) {
          md_set_error("idx %s: corrupt or truncated gzip data (%s)", s->path, msg);
          return -1;
        }
        break;
      }
    }
  }
  return (long long)done;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* header: magic and nd sizes; checks the magic */
static int read_header(src_t *s, int want_nd, uint32_t *dims) {
  unsigned char h[16];
  size_t hn = 4 + 4 * (size_t)want_nd;
  long long got = src_read(s, h, hn);
  if (got < 0) return MD_ERR;
  uint32_t magic = got >= 4 ? be32(h) : 0, want = 0x00000800u | (uint32_t)want_nd;
  if (got < 4 || (magic == want && got < (long long)hn)) {
    md_set_error("idx %s: truncated header (%lld of %zu bytes)", s->path, got, hn);
    return MD_ERR;
  }
  if (magic != want) {
    md_set_error("idx %s: bad magic 0x%08x (want 0x%08x: %s)", s->path, magic, want,
                 want_nd == 3 ? "uint8 images n x rows x cols" : "uint8 labels");
    return MD_ERR;
  }
  for (int k = 0; k < want_nd; k++) dims[k] = be32(h + 4 + 4 * k);
  return MD_OK;
}

/* read exactly n payload bytes into *out (malloc'd); reject short and long
** files.  For gzip the buffer grows with the data actually there, so a forged
** header cannot make us allocate more than twice what the stream holds. */
static int read_payload(src_t *s, size_t hdr, size_t n, uint8_t **out) {
  *out = NULL;
  if (s->f) {
    long long want = (long long)(hdr + n);
    if (s->size != want) {
      md_set_error("idx %s: file is %lld bytes, the header says %lld (%s)", s->path, s->size, want,
                   s->size < want ? "truncated" : "trailing data");
      return MD_ERR;
    }
  }
  size_t cap = s->f ? n : (n < ((size_t)64 << 20) ? n : ((size_t)64 << 20));
  uint8_t *buf = malloc(cap ? cap : 1);
  if (!buf) {
    md_set_error("idx %s: out of memory for %zu bytes", s->path, n);
    return MD_ERR;
  }
  size_t done = 0;
  while (done < n) {
    if (done == cap) {
      size_t nc = cap * 2 < n ? cap * 2 : n;
      uint8_t *nb = realloc(buf, nc);
      if (!nb) {
        free(buf);
        md_set_error("idx %s: out of memory for %zu bytes", s->path, n);
        return MD_ERR;
      }
      buf = nb, cap = nc;
    }
    long long k = src_read(s, buf + done, cap - done);
    if (k < 0) {
      free(buf);
      return MD_ERR;
    }
    done += (size_t)k;
    if (k == 0 || done < cap) break;
  }
  if (done < n) {
    free(buf);
    md_set_error("idx %s: truncated: %zu of %zu data bytes", s->path, done, n);
    return MD_ERR;
  }
  unsigned char extra;
  long long k = src_read(s, &extra, 1);
  if (k != 0) {
    free(buf);
    if (k > 0) md_set_error("idx %s: trailing data after the %zu bytes the header announces", s->path, n);
    return MD_ERR;
  }
  *out = buf;
  return MD_OK;
}

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static int path_has(const char *path, const char *word) {
  size_t n = strlen(word);
  for (const char *p = path; *p; p++) {
    size_t i = 0;
    while (i < n && p[i] && tolower((unsigned char)p[i]) == word[i]) i++;
    if (i == n) return 1;
  }
  return 0;
}

md_dataset *md_open_idx(const char *images, const char *labels) {
  if (!images || !labels) {
    md_set_error("open_idx: need an images file and a labels file");
    return NULL;
  }
  src_t si, sl;
  uint32_t d[3], dl[1];
  uint8_t *pix = NULL, *lab = NULL;
  md_dataset *ds = NULL;
  if (src_open(&si, images) != MD_OK) return NULL;
  if (read_header(&si, 3, d) != MD_OK) goto fail_i;
  if (d[1] == 0 || d[2] == 0 || d[1] > 65535 || d[2] > 65535) {
    md_set_error("idx %s: bad image size %u x %u", images, d[1], d[2]);
    goto fail_i;
  }
  if (src_open(&sl, labels) != MD_OK) goto fail_i;
  if (read_header(&sl, 1, dl) != MD_OK) goto fail_l;
  if (dl[0] != d[0]) {
    md_set_error("idx: %s has %u images but %s has %u labels", images, d[0], labels, dl[0]);
    goto fail_l;
  }
  if (d[0] == 0) {
    md_set_error("idx %s: no images", images);
    goto fail_l;
  }
  size_t n = d[0], hw = (size_t)d[1] * d[2];
  if ((double)n * (double)hw > 1e12) {
    md_set_error("idx %s: implausible size %u x %u x %u", images, d[0], d[1], d[2]);
    goto fail_l;
  }
  if (read_payload(&sl, 8, n, &lab) != MD_OK) goto fail_l;
  if (read_payload(&si, 16, n * hw, &pix) != MD_OK) goto fail_l;
  src_close(&sl);
  src_close(&si);

  ds = md_dataset_new();
  int64_t *lbl = malloc(sizeof *lbl * n);
  if (!ds || !lbl) {
    free(lbl);
    md_set_error("idx %s: out of memory", images);
    goto fail;
  }
  int maxl = 0;
  for (size_t i = 0; i < n; i++) {
    lbl[i] = lab[i];
    if (lab[i] > maxl) maxl = lab[i];
  }
  free(lab);
  lab = NULL;
  ds->n = (int64_t)n;
  ds->c = 1, ds->h = (int)d[1], ds->w = (int)d[2];
  ds->images = pix;
  pix = NULL;
  ds->labels = lbl;
  ds->nclasses = maxl + 1;
  if (path_has(images, "fashion")) {
    snprintf(ds->name, sizeof ds->name, "Fashion-MNIST");
    ds->mean[0] = 0.2860f, ds->std[0] = 0.3530f;
    if (ds->nclasses == 10) {
      ds->class_names = calloc(10, sizeof(char *));
      if (!ds->class_names) goto oom;
      for (int k = 0; k < 10; k++)
        if (!(ds->class_names[k] = strdup(fashion_names[k]))) goto oom;
    }
  } else if (path_has(images, "mnist")) {
    snprintf(ds->name, sizeof ds->name, "MNIST");
    ds->mean[0] = 0.1307f, ds->std[0] = 0.3081f;
  } else {
    const char *b = strrchr(images, '/');
    snprintf(ds->name, sizeof ds->name, "%s", b ? b + 1 : images);
    md_dataset_compute_stats(ds);
  }
  return ds;
oom:
  md_set_error("idx %s: out of memory", images);
  goto fail;
fail_l:
  src_close(&sl);
fail_i:
  src_close(&si);
fail:
  free(pix);
  free(lab);
  md_dataset_release(ds);
  return NULL;
}
