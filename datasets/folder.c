/*
** folder.c -- image folders, CSV splits, parallel mask folders and LabelMe
** masks (see readers.h, md_open_folder, and datasets/README.md).
**
** At open we list the files, check every image's header (and every mask's,
** and parse every LabelMe JSON), so a bad file fails at open with its path;
** pixels are decoded in get(), which keeps no shared state (thread-safe).
*/
#include "image.h"
#include "readers.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct {
  char **paths;       /* n image paths */
  char **mask_paths;  /* n mask paths, or NULL */
  md_polyset **polys; /* n LabelMe shape sets, or NULL */
  int *img_h, *img_w; /* n sizes as stored */
  int64_t n;
  int evenodd;
} folder_impl;

/* {====================================================== small helpers */
typedef struct {
  char **v;
  int64_t n, cap;
} strlist;

static int sl_push(strlist *l, const char *s) {
  if (l->n == l->cap) {
    int64_t nc = l->cap ? l->cap * 2 : 16;
    char **nv = realloc(l->v, sizeof *nv * (size_t)nc);
    if (!nv) return 0;
    l->v = nv, l->cap = nc;
  }
  if (!(l->v[l->n] = strdup(s))) return 0;
  l->n++;
  return 1;
}
static void sl_free(strlist *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL, l->n = l->cap = 0;
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *join(const char *a, const char *b) {
  if (b[0] == '/') return strdup(b);
  size_t na = strlen(a), nb = strlen(b);
  while (na > 1 && a[na - 1] == '/') na--;
  char *s = malloc(na + nb + 2);
  if (!s) return NULL;
  memcpy(s, a, na);
  s[na] = '/';
  memcpy(s + na + 1, b, nb + 1);
  return s;
}

/* path with its extension replaced by ext (".png"); NULL on out of memory */
static char *with_ext(const char *path, const char *ext) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
  char *s = malloc(stem + strlen(ext) + 1);
  if (!s) return NULL;
  memcpy(s, path, stem);
  strcpy(s + stem, ext);
  return s;
}

static int is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot || name[0] == '.') return 0;
  return !strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
         !strcasecmp(dot, ".bmp");
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* sorted entries of dir: subdirectories (dirs = 1) or image files (dirs = 0) */
static int list_dir(const char *dir, int dirs, strlist *out) {
  DIR *d = opendir(dir);
  if (!d) {
    md_set_error("folder %s: cannot open the directory", dir);
    return MD_ERR;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (!dirs && !is_image_name(e->d_name)) continue;
    char *p = join(dir, e->d_name);
    struct stat st;
    int keep = p && stat(p, &st) == 0 && (dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
    free(p);
    if (!p) goto oom;
    if (keep && !sl_push(out, e->d_name)) goto oom;
  }
  closedir(d);
  if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
  return MD_OK;
oom:
  closedir(d);
  md_set_error("folder %s: out of memory", dir);
  return MD_ERR;
}

/* prefix the current error with "folder <root>: " (the message names the file) */
static void reprefix(const char *root) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", md_last_error());
  md_set_error("folder %s: %s", root, buf);
}
/* }====================================================== */

/* {====================================================== CSV */
/* split one line into fields (commas; "quoted, fields" with "" for a quote).
** Writes into line in place; returns the field count (at most max). */
static int csv_fields(char *line, char **f, int max) {
  int n = 0;
  char *s = line;
  for (;;) {
    while (*s == ' ' || *s == '\t') s++;
    char *start = s, *o = s;
    if (*s == '"') {
      s++;
      start = o = s;
      while (*s) {
        if (*s == '"' && s[1] == '"') {
          *o++ = '"';
          s += 2;
        } else if (*s == '"') {
          s++;
          break;
        } else
          *o++ = *s++;
      }
      while (*s && *s != ',') s++;
    } else {
      while (*s && *s != ',') s++;
      o = s;
      while (o > start && (o[-1] == ' ' || o[-1] == '\t')) o--;
    }
    int more = *s == ',';
    *o = 0;
    if (n < max) f[n++] = start;
    if (!more) break;
    s++;
  }
  return n;
}

static int parse_int(const char *s, long long *v) {
  if (!*s) return 0;
  char *e;
  *v = strtoll(s, &e, 10);
  return *e == 0 && (isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1])));
}

static int is_header(const char *first) {
  return !strcasecmp(first, "filename") || !strcasecmp(first, "file") || !strcasecmp(first, "path") ||
         !strcasecmp(first, "image") || !strcasecmp(first, "name");
}

/* the rows of one or more split files, in order */
typedef struct {
  strlist rels, names; /* file path; name label ("" for an integer one) */
  int64_t *lab;        /* integer label, or -1 for a name */
  int *file, *line;    /* where the row comes from */
  int64_t cap;
  long long maxint;
} csv_rows;

static void rows_free(csv_rows *R) {
  sl_free(&R->rels);
  sl_free(&R->names);
  free(R->lab);
  free(R->file);
  free(R->line);
  memset(R, 0, sizeof *R);
}

/* append the rows of csv (file number fi) to R */
static int read_csv(const char *csv, int fi, csv_rows *R) {
  size_t size;
  uint8_t *buf = md_read_file(csv, &size, "folder csv");
  if (!buf) return MD_ERR;
  char *text = realloc(buf, size + 1);
  if (!text) {
    free(buf);
    md_set_error("folder csv %s: out of memory", csv);
    return MD_ERR;
  }
  text[size] = 0;
  if (memchr(text, 0, size)) {
    free(text);
    md_set_error("folder csv %s: binary data (a NUL byte) in a text file", csv);
    return MD_ERR;
  }
  int rc = MD_ERR, lineno = 0;
  int64_t first = R->rels.n;
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    lineno++;
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r') line[--len] = 0;
    char *t = line;
    while (*t == ' ' || *t == '\t') t++;
    if (!*t || *t == '#') continue;
    char *f[8];
    int nf = csv_fields(t, f, 8);
    if (R->rels.n == first && is_header(f[0])) continue;
    if (nf < 2 || !*f[0] || !*f[1]) {
      md_set_error("folder csv %s: line %d: want \"filename,label\"", csv, lineno);
      goto done;
    }
    if (R->rels.n == R->cap) {
      int64_t nc = R->cap ? R->cap * 2 : 256;
      int64_t *nl = realloc(R->lab, sizeof *nl * (size_t)nc);
      if (nl) R->lab = nl;
      int *nfi = realloc(R->file, sizeof *nfi * (size_t)nc);
      if (nfi) R->file = nfi;
      int *nli = realloc(R->line, sizeof *nli * (size_t)nc);
      if (nli) R->line = nli;
      if (!nl || !nfi || !nli) goto oom;
      R->cap = nc;
    }
    long long v;
    int64_t i = R->rels.n;
    if (parse_int(f[1], &v)) {
      if (v < 0 || v > 1000000) {
        md_set_error("folder csv %s: line %d: label %lld out of range (0..1000000)", csv, lineno, v);
        goto done;
      }
      R->lab[i] = v;
      R->maxint = v > R->maxint ? v : R->maxint;
      if (!sl_push(&R->names, "")) goto oom;
    } else {
      R->lab[i] = -1;
      if (!sl_push(&R->names, f[1])) goto oom;
    }
    R->file[i] = fi, R->line[i] = lineno;
    if (!sl_push(&R->rels, f[0])) goto oom;
  }
  if (R->rels.n == first) {
    md_set_error("folder csv %s: no rows", csv);
    goto done;
  }
  rc = MD_OK;
  goto done;
oom:
  md_set_error("folder csv %s: out of memory", csv);
done:
  free(text);
  return rc;
}

/* the distinct name labels of R, sorted, appended to classes */
static int add_names(const csv_rows *R, strlist *classes) {
  strlist tmp = {0};
  int ok = 1;
  for (int64_t i = 0; ok && i < R->names.n; i++)
    if (R->names.v[i][0]) ok = sl_push(&tmp, R->names.v[i]);
  if (ok && tmp.n > 1) qsort(tmp.v, (size_t)tmp.n, sizeof *tmp.v, cmp_str);
  for (int64_t i = 0; ok && i < tmp.n; i++)
    if (i == 0 || strcmp(tmp.v[i], tmp.v[i - 1]) != 0) ok = sl_push(classes, tmp.v[i]);
  sl_free(&tmp);
  return ok;
}

static int n_files(const char *const *v) {
  int n = 0;
  while (v && v[n]) n++;
  return n;
}

/* the split (o->csv, or the files o->csvs) into rels and labels.  classes:
** the root's class folders; the classes become the sorted distinct name
** labels of o->class_csvs when given, else, when the root has no class
** folders, those of the split itself. */
static int read_split(const md_folder_opts *o, strlist *classes, strlist *rels, int64_t **labels, int *nclasses) {
  const char *one[2] = {o->csv, NULL};
  const char *const *files = o->csvs ? o->csvs : one;
  const char *src = "no class folder of that name";
  csv_rows R = {0}, C = {0};
  R.maxint = -1;
  int rc = MD_ERR, nf = n_files(files);
  if (nf == 0) {
    md_set_error("folder: the csv list is empty");
    return MD_ERR;
  }
  for (int k = 0; k < nf; k++)
    if (read_csv(files[k], k, &R) != MD_OK) goto done;
  if (o->class_csvs) {
    for (int k = 0; o->class_csvs[k]; k++)
      if (read_csv(o->class_csvs[k], k, &C) != MD_OK) goto done;
    sl_free(classes);
    if (!add_names(&C, classes)) goto oom;
    src = "not a label of the class CSV files";
  } else if (classes->n == 0 && !add_names(&R, classes)) {
    goto oom;
  }
  for (int64_t i = 0; i < R.rels.n; i++) {
    if (R.lab[i] >= 0) continue;
    const char *key = R.names.v[i]; /* classes are sorted, from folders or CSVs alike */
    char **hit = classes->n ? bsearch(&key, classes->v, (size_t)classes->n, sizeof *classes->v, cmp_str) : NULL;
    if (!hit) {
      md_set_error("folder csv %s: line %d (%s): label '%s' is not a class (not an integer, and %s)", files[R.file[i]],
                   R.line[i], R.rels.v[i], R.names.v[i], src);
      goto done;
    }
    R.lab[i] = hit - classes->v;
  }
  *nclasses = (int)(R.maxint + 1 > classes->n ? R.maxint + 1 : classes->n);
  *rels = R.rels;
  R.rels = (strlist){0};
  *labels = R.lab;
  R.lab = NULL;
  rc = MD_OK;
  goto done;
oom:
  md_set_error("folder csv %s: out of memory", files[0]);
done:
  rows_free(&R);
  rows_free(&C);
  return rc;
}
/* }====================================================== */

/* {====================================================== the data set */
static void folder_free(md_dataset *ds) {
  folder_impl *im = ds->impl;
  if (!im) return;
  for (int64_t i = 0; i < im->n; i++) {
    free(im->paths[i]);
    if (im->mask_paths) free(im->mask_paths[i]);
    if (im->polys) md_polyset_free(im->polys[i]);
  }
  free(im->paths);
  free(im->mask_paths);
  free(im->polys);
  free(im->img_h);
  free(im->img_w);
  free(im);
  ds->impl = NULL;
}

static int folder_get(md_dataset *ds, int64_t i, uint8_t *img, uint8_t *mask) {
  folder_impl *im = ds->impl;
  if (md_image_load_chw(im->paths[i], ds->c, ds->h, ds->w, img) != MD_OK) return MD_ERR;
  if (mask && im->mask_paths) return md_mask_load(im->mask_paths[i], ds->h, ds->w, mask);
  if (mask && im->polys) md_polyset_raster(im->polys[i], im->img_h[i], im->img_w[i], ds->h, ds->w, im->evenodd, mask);
  return MD_OK;
}

static int folder_stats(md_dataset *ds, int64_t max) {
  int64_t m = ds->n < max ? ds->n : max;
  size_t hw = (size_t)ds->h * ds->w;
  uint8_t *buf = malloc(hw * ds->c);
  if (!buf) {
    md_set_error("folder: out of memory");
    return MD_ERR;
  }
  double s[3] = {0}, s2[3] = {0};
  for (int64_t k = 0; k < m; k++) {
    int64_t i = m == ds->n ? k : (int64_t)((double)k * ds->n / m);
    if (md_image_load_chw(((folder_impl *)ds->impl)->paths[i], ds->c, ds->h, ds->w, buf) != MD_OK) {
      free(buf);
      return MD_ERR;
    }
    for (int c = 0; c < ds->c; c++) {
      uint64_t a = 0, a2 = 0;
      for (size_t j = 0; j < hw; j++) {
        unsigned v = buf[c * hw + j];
        a += v, a2 += v * v;
      }
      s[c] += a / 255.0, s2[c] += a2 / (255.0 * 255.0);
    }
  }
  free(buf);
  double cnt = (double)m * hw;
  for (int c = 0; c < ds->c; c++) {
    double mean = s[c] / cnt, var = s2[c] / cnt - mean * mean;
    ds->mean[c] = (float)mean;
    ds->std[c] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
  }
  for (int c = ds->c; c < 3; c++) ds->mean[c] = ds->mean[0], ds->std[c] = ds->std[0];
  return MD_OK;
}

md_dataset *md_open_folder(const char *root, const md_folder_opts *opts) {
  md_folder_opts o = {0};
  if (opts) o = *opts;
  if (!root) {
    md_set_error("open_folder: no root folder");
    return NULL;
  }
  if (o.channels != 0 && o.channels != 1 && o.channels != 3) {
    md_set_error("open_folder %s: channels must be 1 or 3, got %d", root, o.channels);
    return NULL;
  }
  if (o.h < 0 || o.w < 0 || (o.h == 0) != (o.w == 0) || o.h > 16384 || o.w > 16384) {
    md_set_error("open_folder %s: size must be both h and w in 1..16384, got %dx%d", root, o.h, o.w);
    return NULL;
  }
  if (o.csv && o.csvs) {
    md_set_error("open_folder %s: give either csv or csvs, not both", root);
    return NULL;
  }
  if (o.class_csvs && !o.csv && !o.csvs) {
    md_set_error("open_folder %s: class_csvs name the classes of a csv split; give csv too", root);
    return NULL;
  }
  if (o.masks && o.labelme) {
    md_set_error("open_folder %s: give either a mask folder or labelme, not both", root);
    return NULL;
  }
  strlist classes = {0}, rels = {0};
  int64_t *labels = NULL;
  int nclasses = 0;
  md_dataset *ds = NULL;
  folder_impl *im = NULL;
  struct stat st;
  if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
    md_set_error("folder %s: not a directory", root);
    return NULL;
  }
  if (list_dir(root, 1, &classes) != MD_OK) goto fail;
  if (o.csv || o.csvs) {
    if (read_split(&o, &classes, &rels, &labels, &nclasses) != MD_OK) goto fail;
  } else {
    if (classes.n == 0) {
      md_set_error("folder %s: no class folders (want root/<class>/<image>, or a csv split)", root);
      goto fail;
    }
    int64_t cap = 0;
    for (int64_t k = 0; k < classes.n; k++) {
      strlist files = {0};
      char *dir = join(root, classes.v[k]);
      if (!dir || list_dir(dir, 0, &files) != MD_OK) {
        if (!dir) md_set_error("folder %s: out of memory", root);
        free(dir);
        sl_free(&files);
        goto fail;
      }
      free(dir);
      for (int64_t j = 0; j < files.n; j++) {
        char *rel = join(classes.v[k], files.v[j]);
        if (rels.n == cap) {
          cap = cap ? cap * 2 : 256;
          int64_t *nl = realloc(labels, sizeof *nl * (size_t)cap);
          if (nl) labels = nl;
          else cap = -1;
        }
        if (!rel || cap < 0 || !sl_push(&rels, rel)) {
          free(rel);
          sl_free(&files);
          md_set_error("folder %s: out of memory", root);
          goto fail;
        }
        free(rel);
        labels[rels.n - 1] = k;
      }
      sl_free(&files);
    }
    nclasses = (int)classes.n;
    if (rels.n == 0) {
      md_set_error("folder %s: no images (.png, .jpg, .jpeg, .bmp) in the class folders", root);
      goto fail;
    }
  }
  int64_t n = rels.n;
  ds = md_dataset_new();
  im = calloc(1, sizeof *im);
  if (!ds || !im) goto oom;
  ds->impl = im;
  ds->free_impl = folder_free;
  ds->get = folder_get;
  im->evenodd = o.evenodd;
  im->paths = calloc((size_t)n, sizeof *im->paths);
  im->img_h = calloc((size_t)n, sizeof *im->img_h);
  im->img_w = calloc((size_t)n, sizeof *im->img_w);
  if (o.masks) im->mask_paths = calloc((size_t)n, sizeof *im->mask_paths);
  if (o.labelme) im->polys = calloc((size_t)n, sizeof *im->polys);
  if (!im->paths || !im->img_h || !im->img_w || (o.masks && !im->mask_paths) || (o.labelme && !im->polys))
    goto oom;
  im->n = n;
  int c0 = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!(im->paths[i] = join(root, rels.v[i]))) goto oom;
    int w, h, c;
    if (md_image_info(im->paths[i], &w, &h, &c) != MD_OK) {
      reprefix(root);
      goto fail;
    }
    im->img_h[i] = h, im->img_w[i] = w;
    if (i == 0) c0 = c;
    if (o.masks) {
      char *mp = join(o.masks, rels.v[i]), *mp2 = mp ? with_ext(mp, ".png") : NULL;
      if (!mp || !mp2) {
        free(mp), free(mp2);
        goto oom;
      }
      if (is_file(mp)) {
        free(mp2);
      } else if (is_file(mp2)) {
        free(mp);
        mp = mp2;
      } else {
        if (strcmp(mp, mp2) != 0)
          md_set_error("folder %s: no mask for image %s (looked for %s and %s)", root, im->paths[i], mp, mp2);
        else
          md_set_error("folder %s: no mask for image %s (looked for %s)", root, im->paths[i], mp);
        free(mp), free(mp2);
        goto fail;
      }
      im->mask_paths[i] = mp;
      int mw, mh;
      if (md_image_info(mp, &mw, &mh, NULL) != MD_OK) {
        reprefix(root);
        goto fail;
      }
      if (mw != w || mh != h) {
        md_set_error("folder %s: mask %s is %dx%d but its image %s is %dx%d (w x h)", root, mp, mw, mh,
                     im->paths[i], w, h);
        goto fail;
      }
    }
    if (o.labelme) {
      char *jp = with_ext(im->paths[i], ".json");
      if (!jp) goto oom;
      if (!is_file(jp)) {
        md_set_error("folder %s: no LabelMe JSON for image %s (looked for %s)", root, im->paths[i], jp);
        free(jp);
        goto fail;
      }
      int jh = 0, jw = 0;
      im->polys[i] = md_labelme_parse(jp, &jh, &jw);
      if (!im->polys[i]) {
        free(jp);
        reprefix(root);
        goto fail;
      }
      if ((jh && jh != h) || (jw && jw != w)) {
        md_set_error("folder %s: LabelMe %s says the image is %dx%d but %s is %dx%d (w x h)", root, jp, jw, jh,
                     im->paths[i], w, h);
        free(jp);
        goto fail;
      }
      free(jp);
    }
  }
  ds->n = n;
  ds->h = o.h ? o.h : im->img_h[0];
  ds->w = o.w ? o.w : im->img_w[0];
  ds->c = o.channels ? o.channels : (c0 <= 2 ? 1 : 3);
  ds->labels = labels;
  labels = NULL;
  ds->nclasses = nclasses;
  ds->has_masks = o.masks || o.labelme;
  if (classes.n > 0 && classes.n == nclasses) { /* hand the names over */
    ds->class_names = classes.v;
    classes.v = NULL;
    classes.n = 0;
  }
  const char *b = root + strlen(root);
  while (b > root && b[-1] == '/') b--;
  const char *a = b;
  while (a > root && a[-1] != '/') a--;
  snprintf(ds->name, sizeof ds->name, "%.*s", (int)(b - a), a);
  if (o.stats_max >= 0 && folder_stats(ds, o.stats_max ? o.stats_max : 1000) != MD_OK) {
    reprefix(root);
    goto fail;
  }
  sl_free(&classes);
  sl_free(&rels);
  return ds;
oom:
  md_set_error("folder %s: out of memory", root);
fail:
  sl_free(&classes);
  sl_free(&rels);
  free(labels);
  if (!ds || ds->impl != im) free(im);
  md_dataset_release(ds);
  return NULL;
}
/* }====================================================== */
