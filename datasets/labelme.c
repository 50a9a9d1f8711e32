/*
** labelme.c -- LabelMe JSON annotations rasterised to object masks.
**
** A LabelMe file: {"shapes": [{"label": "...", "points": [[x,y],...],
** "shape_type": "polygon"}, ...], "imageHeight": H, "imageWidth": W, ...}.
** Shapes: polygon (>= 3 points), rectangle (2 corners), circle (centre and a
** point on the rim; drawn as a 64-gon); other types (line, point, linestrip,
** mask) are skipped.  Every shape counts as object, whatever its label; the
** mask is the union of the shapes.
**
** Coordinates follow LabelMe (and PIL, which LabelMe draws with): (x, y) =
** (j, i) is the CENTRE of pixel row i, column j.  A mask pixel is object when
** its centre is inside the shape: scanlines through the pixel centres cross
** the edges and the spans are filled by the even-odd rule or by nonzero
** winding.  Centres exactly on an edge follow the top-left rule (inside on a
** top or left edge, outside on a bottom or right one), so a rectangle from
** (0,0) to (3,3) covers exactly 3x3 pixels and shared vertices count once.  A mask of another
** size than the image samples the centres of its own pixels mapped back to
** image coordinates, so no resampling is needed.
*/
#include "md_json.h"
#include "readers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {====================================================== shapes */
typedef struct {
  int n;
  double *xy; /* x0 y0 x1 y1 ... */
} poly_t;
struct md_polyset {
  int n, cap;
  poly_t *p;
};

void md_polyset_free(md_polyset *ps) {
  if (!ps) return;
  for (int i = 0; i < ps->n; i++) free(ps->p[i].xy);
  free(ps->p);
  free(ps);
}

static double *add_poly(md_polyset *ps, int n) {
  if (ps->n == ps->cap) {
    int nc = ps->cap ? ps->cap * 2 : 8;
    poly_t *np = realloc(ps->p, sizeof *np * (size_t)nc);
    if (!np) return NULL;
    ps->p = np, ps->cap = nc;
  }
  double *xy = malloc(sizeof *xy * 2 * (size_t)n);
  if (!xy) return NULL;
  ps->p[ps->n].n = n;
  ps->p[ps->n].xy = xy;
  ps->n++;
  return xy;
}
/* }====================================================== */

/* {====================================================== reading the JSON
** with the core's strict reader (md_json.h) */
static int is(const char *k, size_t l, const char *name) { return l == strlen(name) && !memcmp(k, name, l); }

/* one shape's points: x0 y0 x1 y1 ...; bad: the first point (1-based) that is
** not an array starting with two finite numbers, 0 if none */
typedef struct {
  double *xy;
  int n, cap, bad;
} ptlist;

/* "points": [[x, y], ...] (checked JSON: only out of memory can fail) */
static int read_points(md_json *j, ptlist *pl) {
  int r;
  md_json_array(j, NULL);
  while ((r = md_json_item(j)) > 0) {
    double v[2] = {0, 0};
    int k = 0, ok = md_json_peek(j) == MD_JSON_ARRAY;
    if (ok) {
      md_json_array(j, NULL);
      for (; md_json_item(j) > 0; k++) {
        md_json_num x;
        if (k < 2 && md_json_peek(j) == MD_JSON_NUMBER) {
          md_json_number(j, &x, NULL);
          v[k] = x.d;
        } else { /* not a number, or an extra coordinate (allowed) */
          ok &= k >= 2;
          md_json_skip(j);
        }
      }
      ok = ok && k >= 2 && isfinite(v[0]) && isfinite(v[1]);
    } else {
      md_json_skip(j);
    }
    if (pl->n == pl->cap) {
      int nc = pl->cap ? pl->cap * 2 : 16;
      double *nx = realloc(pl->xy, sizeof *nx * 2 * (size_t)nc);
      if (!nx) return 0;
      pl->xy = nx, pl->cap = nc;
    }
    pl->xy[2 * pl->n] = v[0], pl->xy[2 * pl->n + 1] = v[1];
    pl->n++;
    if (!ok && !pl->bad) pl->bad = pl->n;
  }
  return r == 0;
}

/* one shape object: its points into pl (has_points 1; -1 when "points" is
** not an array, 0 when absent), its type into type ("polygon" when absent or
** not a string, "?" when too long to be one we know) */
static int read_shape(md_json *j, ptlist *pl, int *has_points, char *type, size_t tcap) {
  const char *k, *v;
  size_t l, vl;
  int have_type = 0;
  strcpy(type, "polygon");
  pl->n = pl->bad = 0;
  *has_points = 0;
  md_json_object(j, NULL);
  while (md_json_key(j, &k, &l) > 0) { /* the first of duplicate keys counts */
    if (is(k, l, "points") && !*has_points) {
      *has_points = md_json_peek(j) == MD_JSON_ARRAY ? 1 : -1;
      if (*has_points < 0)
        md_json_skip(j);
      else if (!read_points(j, pl))
        return 0;
    } else if (is(k, l, "shape_type") && !have_type && md_json_peek(j) == MD_JSON_STRING) {
      have_type = 1;
      md_json_string(j, &v, &vl, NULL);
      if (vl < tcap && !memchr(v, 0, vl))
        memcpy(type, v, vl + 1);
      else
        strcpy(type, "?");
    } else {
      have_type |= is(k, l, "shape_type");
      md_json_skip(j);
    }
  }
  return !j->failed;
}

/* shape s (1-based), the next value of the reader: read, check, add */
static int add_shape(md_json *j, const char *path, int s, md_polyset *ps, ptlist *pl) {
  char type[16];
  int has_points = 0;
  if (md_json_peek(j) == MD_JSON_OBJECT && !read_shape(j, pl, &has_points, type, sizeof type)) goto oom;
  if (has_points <= 0) {
    md_set_error("labelme %s: shape %d has no \"points\" array", path, s);
    return 0;
  }
  if (strcmp(type, "polygon") == 0) {
    if (pl->n < 3) {
      md_set_error("labelme %s: shape %d (polygon) has %d points, need 3 or more", path, s, pl->n);
      return 0;
    }
    if (pl->bad) {
      md_set_error("labelme %s: shape %d point %d is not a pair of numbers", path, s, pl->bad);
      return 0;
    }
    double *xy = add_poly(ps, pl->n);
    if (!xy) goto oom;
    memcpy(xy, pl->xy, sizeof *xy * 2 * (size_t)pl->n);
  } else if (strcmp(type, "rectangle") == 0 || strcmp(type, "circle") == 0) {
    if (pl->n != 2 || pl->bad) {
      md_set_error("labelme %s: shape %d (%s) needs 2 points of 2 numbers", path, s, type);
      return 0;
    }
    double x0 = pl->xy[0], y0 = pl->xy[1], x1 = pl->xy[2], y1 = pl->xy[3];
    if (type[0] == 'r') {
      double *xy = add_poly(ps, 4);
      if (!xy) goto oom;
      double r[8] = {x0, y0, x1, y0, x1, y1, x0, y1};
      memcpy(xy, r, sizeof r);
    } else {
      double rad = hypot(x1 - x0, y1 - y0);
      double *xy = add_poly(ps, 64);
      if (!xy) goto oom;
      for (int k = 0; k < 64; k++) {
        double a = 6.283185307179586 * k / 64;
        xy[2 * k] = x0 + rad * cos(a), xy[2 * k + 1] = y0 + rad * sin(a);
      }
    }
  } /* other shape types are not areas: skipped */
  return 1;
oom:
  md_set_error("labelme %s: out of memory", path);
  return 0;
}

/* imageHeight / imageWidth: a number in 1..1e6, else 0 (unknown) */
static int image_dim(md_json *j) {
  md_json_num v;
  if (md_json_peek(j) != MD_JSON_NUMBER) return md_json_skip(j), 0;
  md_json_number(j, &v, NULL);
  return v.d >= 1 && v.d < 1e6 ? (int)v.d : 0;
}

md_polyset *md_labelme_parse(const char *path, int *img_h, int *img_w) {
  size_t size;
  uint8_t *buf = md_read_file(path, &size, "labelme");
  if (!buf) return NULL;
  /* labels are not used: stray non-UTF-8 bytes in them do not reject a file */
  md_json_opts jo = {0};
  jo.raw_bytes = 1;
  md_json j;
  md_polyset *ps = NULL;
  ptlist pl = {0};
  const char *k;
  size_t l;
  int shapes = 0, got_h = 0, got_w = 0, H = 0, W = 0;
  /* first the whole document must be JSON, so that a syntax error anywhere
  ** is reported before any complaint about the content */
  md_json_init(&j, (const char *)buf, size, &jo);
  int ok = md_json_skip(&j) && md_json_end(&j);
  if (!ok) md_set_error("labelme %s: bad JSON at byte %zu: %s", path, j.err_at, j.err);
  md_json_free(&j);
  md_json_init(&j, (const char *)buf, size, &jo);
  if (!ok) goto fail;
  if (md_json_peek(&j) != MD_JSON_OBJECT) {
    md_set_error("labelme %s: the JSON is not an object", path);
    goto fail;
  }
  if (!(ps = calloc(1, sizeof *ps))) goto oom;
  md_json_object(&j, NULL);
  while (md_json_key(&j, &k, &l) > 0) { /* the first of duplicate keys counts */
    if (is(k, l, "shapes") && !shapes) {
      shapes = md_json_peek(&j) == MD_JSON_ARRAY ? 1 : -1;
      if (shapes < 0) break;
      md_json_array(&j, NULL);
      for (int s = 1; md_json_item(&j) > 0; s++)
        if (!add_shape(&j, path, s, ps, &pl)) goto fail;
    } else if (is(k, l, "imageHeight") && !got_h) {
      got_h = 1, H = image_dim(&j);
    } else if (is(k, l, "imageWidth") && !got_w) {
      got_w = 1, W = image_dim(&j);
    } else {
      md_json_skip(&j);
    }
  }
  if (shapes <= 0) {
    md_set_error("labelme %s: no \"shapes\" array", path);
    goto fail;
  }
  if (j.failed) goto oom; /* the text was checked: only memory can fail now */
  if (img_h) *img_h = H;
  if (img_w) *img_w = W;
  free(pl.xy);
  md_json_free(&j);
  free(buf);
  return ps;
oom:
  md_set_error("labelme %s: out of memory", path);
fail:
  free(pl.xy);
  md_json_free(&j);
  free(buf);
  md_polyset_free(ps);
  return NULL;
}
/* }====================================================== */

/* {====================================================== rasterising */
typedef struct {
  double x;
  int dir;
} xing_t;
static int xing_cmp(const void *a, const void *b) {
  double d = ((const xing_t *)a)->x - ((const xing_t *)b)->x;
  return d < 0 ? -1 : d > 0;
}

void md_polyset_raster(const md_polyset *ps, int img_h, int img_w, int h, int w, int evenodd, uint8_t *mask) {
  memset(mask, 0, (size_t)h * w);
  if (!ps || h <= 0 || w <= 0) return;
  if (img_h <= 0) img_h = h;
  if (img_w <= 0) img_w = w;
  double sy = (double)h / img_h, sx = (double)w / img_w;
  int maxn = 0;
  for (int k = 0; k < ps->n; k++) maxn = ps->p[k].n > maxn ? ps->p[k].n : maxn;
  xing_t *xs = malloc(sizeof *xs * (size_t)(maxn ? maxn : 1));
  if (!xs) return; /* an empty mask; the caller's sizes are small */
  for (int k = 0; k < ps->n; k++) {
    const poly_t *pg = &ps->p[k];
    for (int i = 0; i < h; i++) {
      double yc = (i + 0.5) / sy - 0.5; /* this row's centre in image coordinates */
      int nx = 0;
      for (int e = 0; e < pg->n; e++) {
        int f = (e + 1) % pg->n;
        double x0 = pg->xy[2 * e], y0 = pg->xy[2 * e + 1], x1 = pg->xy[2 * f], y1 = pg->xy[2 * f + 1];
        if ((y0 <= yc && yc < y1) || (y1 <= yc && yc < y0)) {
          xs[nx].x = x0 + (yc - y0) * (x1 - x0) / (y1 - y0);
          xs[nx].dir = y1 > y0 ? 1 : -1;
          nx++;
        }
      }
      if (nx < 2) continue;
      qsort(xs, (size_t)nx, sizeof *xs, xing_cmp);
      int wind = 0;
      for (int c = 0; c + 1 < nx; c++) {
        wind += xs[c].dir;
        int inside = evenodd ? (c & 1) == 0 : wind != 0;
        if (!inside) continue;
        /* pixel j's centre is at x = (j + 0.5)/sx - 0.5; fill centres in [xa, xb) */
        double ja = (xs[c].x + 0.5) * sx - 0.5, jb = (xs[c + 1].x + 0.5) * sx - 0.5;
        ja = ja < -1 ? -1 : ja > w + 1 ? w + 1 : ja; /* far-away points: no overflow */
        jb = jb < -1 ? -1 : jb > w + 1 ? w + 1 : jb;
        long j0 = (long)ceil(ja), j1 = (long)ceil(jb) - 1;
        if (j0 < 0) j0 = 0;
        if (j1 > w - 1) j1 = w - 1;
        for (long j = j0; j <= j1; j++) mask[(size_t)i * w + j] = 255;
      }
    }
  }
  free(xs);
}

int md_labelme_mask(const char *json_path, int img_h, int img_w, int h, int w, int evenodd, uint8_t *mask) {
  int jh = 0, jw = 0;
  md_polyset *ps = md_labelme_parse(json_path, &jh, &jw);
  if (!ps) return MD_ERR;
  if (img_h <= 0) img_h = jh;
  if (img_w <= 0) img_w = jw;
  if (img_h <= 0 || img_w <= 0) img_h = h, img_w = w;
  md_polyset_raster(ps, img_h, img_w, h, w, evenodd, mask);
  md_polyset_free(ps);
  return MD_OK;
}
/* }====================================================== */
