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
#include "readers.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {====================================================== a small JSON reader */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jval jval;
struct jval {
  jtype t;
  double num;
  char *str;   /* J_STR */
  int n;       /* J_ARR / J_OBJ: entries */
  jval *items; /* entries */
  char **keys; /* J_OBJ */
};

typedef struct {
  const char *s, *end, *path;
  int depth;
  int failed;
} jparser;

static void jfree(jval *v) {
  if (!v) return;
  free(v->str);
  for (int i = 0; i < v->n; i++) {
    jfree(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  memset(v, 0, sizeof *v);
}

static void jerr(jparser *p, const char *start, const char *what) {
  if (p->failed) return;
  p->failed = 1;
  md_set_error("labelme %s: bad JSON at byte %ld: %s", p->path, (long)(p->s - start), what);
}

static void skip_ws(jparser *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
  if (cp < 0x10000)
    return o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 63)), o[2] = (char)(0x80 | (cp & 63)), 3;
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 63));
  o[2] = (char)(0x80 | ((cp >> 6) & 63)), o[3] = (char)(0x80 | (cp & 63));
  return 4;
}

static int hex4(const char *s, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)s[i], d = isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return 0;
    *v = *v << 4 | (unsigned)d;
  }
  return 1;
}

static char *jstring(jparser *p, const char *start) {
  /* p->s at the opening quote */
  const char *q = ++p->s;
  size_t cap = 16, n = 0;
  while (q < p->end && *q != '"') { /* measure */
    if (*q == '\\') q++;
    q++;
  }
  if (q >= p->end) {
    jerr(p, start, "unterminated string");
    return NULL;
  }
  cap = (size_t)(q - p->s) + 1;
  char *out = malloc(cap + 4);
  if (!out) {
    jerr(p, start, "out of memory");
    return NULL;
  }
  while (*p->s != '"') {
    unsigned char c = (unsigned char)*p->s;
    if (c < 0x20) {
      free(out);
      jerr(p, start, "control character in a string");
      return NULL;
    }
    if (c != '\\') {
      out[n++] = (char)c;
      p->s++;
      continue;
    }
    p->s++;
    char e = *p->s++;
    switch (e) {
    case '"': out[n++] = '"'; break;
    case '\\': out[n++] = '\\'; break;
    case '/': out[n++] = '/'; break;
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case 'u': {
      unsigned cp;
      if (p->end - p->s < 4 || !hex4(p->s, &cp)) {
        free(out);
        jerr(p, start, "bad \\u escape");
        return NULL;
      }
      p->s += 4;
      /* a \uXXXX is 6 input bytes and at most 3 output bytes (4 for a pair of 12) */
      if (cp >= 0xd800 && cp < 0xdc00 && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
        unsigned lo;
        if (hex4(p->s + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          p->s += 6;
        }
      }
      n += (size_t)put_utf8(out + n, cp);
      break;
    }
    default:
      free(out);
      jerr(p, start, "bad escape in a string");
      return NULL;
    }
  }
  p->s++; /* closing quote */
  out[n] = 0;
  return out;
}

static int jparse(jparser *p, const char *start, jval *v);

static int jpush(jparser *p, const char *start, jval *v, int *cap) {
  if (v->n == *cap) {
    int nc = *cap ? *cap * 2 : 4;
    jval *ni = realloc(v->items, sizeof *ni * (size_t)nc);
    if (!ni) return jerr(p, start, "out of memory"), 0;
    v->items = ni;
    if (v->t == J_OBJ) {
      char **nk = realloc(v->keys, sizeof *nk * (size_t)nc);
      if (!nk) return jerr(p, start, "out of memory"), 0;
      v->keys = nk;
    }
    *cap = nc;
  }
  memset(&v->items[v->n], 0, sizeof v->items[0]);
  if (v->t == J_OBJ) v->keys[v->n] = NULL;
  v->n++;
  return 1;
}

static int jparse(jparser *p, const char *start, jval *v) {
  memset(v, 0, sizeof *v);
  skip_ws(p);
  if (p->s >= p->end) return jerr(p, start, "unexpected end of file"), 0;
  if (++p->depth > 64) return jerr(p, start, "nested too deeply"), 0;
  int ok = 1;
  char c = *p->s;
  if (c == '{' || c == '[') {
    v->t = c == '{' ? J_OBJ : J_ARR;
    char close = c == '{' ? '}' : ']';
    int cap = 0;
    p->s++;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
      p->s++;
    } else {
      for (;;) {
        if (!jpush(p, start, v, &cap)) return 0;
        jval *item = &v->items[v->n - 1];
        if (v->t == J_OBJ) {
          skip_ws(p);
          if (p->s >= p->end || *p->s != '"') return jerr(p, start, "expected a string key"), 0;
          if (!(v->keys[v->n - 1] = jstring(p, start))) return 0;
          skip_ws(p);
          if (p->s >= p->end || *p->s != ':') return jerr(p, start, "expected ':'"), 0;
          p->s++;
        }
        if (!jparse(p, start, item)) return 0;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
          p->s++;
          continue;
        }
        if (p->s < p->end && *p->s == close) {
          p->s++;
          break;
        }
        return jerr(p, start, v->t == J_OBJ ? "expected ',' or '}'" : "expected ',' or ']'"), 0;
      }
    }
  } else if (c == '"') {
    v->t = J_STR;
    ok = (v->str = jstring(p, start)) != NULL;
  } else if (c == 't' && p->end - p->s >= 4 && !memcmp(p->s, "true", 4)) {
    v->t = J_BOOL, v->num = 1, p->s += 4;
  } else if (c == 'f' && p->end - p->s >= 5 && !memcmp(p->s, "false", 5)) {
    v->t = J_BOOL, v->num = 0, p->s += 5;
  } else if (c == 'n' && p->end - p->s >= 4 && !memcmp(p->s, "null", 4)) {
    v->t = J_NULL, p->s += 4;
  } else if (c == '-' || isdigit((unsigned char)c)) {
    char buf[64];
    size_t k = 0;
    while (p->s + k < p->end && k < sizeof buf - 1 && strchr("+-0123456789.eE", p->s[k])) k++;
    memcpy(buf, p->s, k);
    buf[k] = 0;
    char *e;
    v->t = J_NUM;
    v->num = strtod(buf, &e);
    if (e != buf + k || k == 0) return jerr(p, start, "bad number"), 0;
    p->s += k;
  } else {
    return jerr(p, start, "unexpected character"), 0;
  }
  p->depth--;
  return ok;
}

static const jval *jget(const jval *o, const char *key) {
  if (!o || o->t != J_OBJ) return NULL;
  for (int i = 0; i < o->n; i++)
    if (o->keys[i] && strcmp(o->keys[i], key) == 0) return &o->items[i];
  return NULL;
}
/* }====================================================== */

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

static int get_point(const jval *pt, double *x, double *y) {
  if (!pt || pt->t != J_ARR || pt->n < 2 || pt->items[0].t != J_NUM || pt->items[1].t != J_NUM) return 0;
  *x = pt->items[0].num, *y = pt->items[1].num;
  return isfinite(*x) && isfinite(*y);
}

md_polyset *md_labelme_parse(const char *path, int *img_h, int *img_w) {
  size_t size;
  uint8_t *buf = md_read_file(path, &size, "labelme");
  if (!buf) return NULL;
  jparser p = {(const char *)buf, (const char *)buf + size, path, 0, 0};
  jval root;
  md_polyset *ps = NULL;
  int ok = jparse(&p, (const char *)buf, &root);
  if (ok) {
    skip_ws(&p);
    if (p.s != p.end) {
      jerr(&p, (const char *)buf, "trailing characters after the JSON value");
      ok = 0;
    }
  }
  if (!ok) {
    jfree(&root);
    free(buf);
    return NULL;
  }
  free(buf);
  if (root.t != J_OBJ) {
    md_set_error("labelme %s: the JSON is not an object", path);
    goto fail;
  }
  const jval *shapes = jget(&root, "shapes");
  if (!shapes || shapes->t != J_ARR) {
    md_set_error("labelme %s: no \"shapes\" array", path);
    goto fail;
  }
  const jval *H = jget(&root, "imageHeight"), *W = jget(&root, "imageWidth");
  if (img_h) *img_h = H && H->t == J_NUM && H->num >= 1 && H->num < 1e6 ? (int)H->num : 0;
  if (img_w) *img_w = W && W->t == J_NUM && W->num >= 1 && W->num < 1e6 ? (int)W->num : 0;
  ps = calloc(1, sizeof *ps);
  if (!ps) goto oom;
  for (int s = 0; s < shapes->n; s++) {
    const jval *sh = &shapes->items[s];
    const jval *pts = jget(sh, "points"), *ty = jget(sh, "shape_type");
    const char *type = ty && ty->t == J_STR ? ty->str : "polygon";
    if (sh->t != J_OBJ || !pts || pts->t != J_ARR) {
      md_set_error("labelme %s: shape %d has no \"points\" array", path, s + 1);
      goto fail;
    }
    double x0, y0, x1, y1;
    if (strcmp(type, "polygon") == 0) {
      if (pts->n < 3) {
        md_set_error("labelme %s: shape %d (polygon) has %d points, need 3 or more", path, s + 1, pts->n);
        goto fail;
      }
      double *xy = add_poly(ps, pts->n);
      if (!xy) goto oom;
      for (int k = 0; k < pts->n; k++)
        if (!get_point(&pts->items[k], &xy[2 * k], &xy[2 * k + 1])) {
          md_set_error("labelme %s: shape %d point %d is not a pair of numbers", path, s + 1, k + 1);
          goto fail;
        }
    } else if (strcmp(type, "rectangle") == 0 || strcmp(type, "circle") == 0) {
      if (pts->n != 2 || !get_point(&pts->items[0], &x0, &y0) || !get_point(&pts->items[1], &x1, &y1)) {
        md_set_error("labelme %s: shape %d (%s) needs 2 points of 2 numbers", path, s + 1, type);
        goto fail;
      }
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
  }
  jfree(&root);
  return ps;
oom:
  md_set_error("labelme %s: out of memory", path);
fail:
  jfree(&root);
  md_polyset_free(ps);
  return NULL;
}

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
