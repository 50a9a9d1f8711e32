/*
** mask.c -- object masks for the space-wise constraint: resizing to a
** feature map, dilation / erosion by a square, and the paper's composition
** (expand in input space, then resize to the layer).  See md.h, "masks".
**
** Masks are float tensors, (H,W), (N,H,W) or (N,C,H,W), the last two dims
** spatial; values 0/1 (other values work: dilation is a max filter, erosion a
** min filter, resizing an area average).  No grad: results never require it.
*/
#include "md.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the mask's values as a contiguous float copy; planes = product of the
** leading dims; NULL (error set) if it is not a mask */
static float *mask_values(const char *op, const md_tensor *m, int64_t *planes, int64_t *H, int64_t *W) {
  char sb[64];
  if (!m) return NULL; /* keep the earlier error */
  if (m->ndim < 2 || m->ndim > 4) {
    md_set_error("%s: mask must be (H,W), (N,H,W) or (N,C,H,W), got %s", op, md_shape_str(m, sb, sizeof sb));
    return NULL;
  }
  *H = m->shape[m->ndim - 2], *W = m->shape[m->ndim - 1];
  *planes = 1;
  for (int d = 0; d < m->ndim - 2; d++) *planes *= m->shape[d];
  if (*H < 1 || *W < 1) {
    md_set_error("%s: mask has an empty spatial size (%s)", op, md_shape_str(m, sb, sizeof sb));
    return NULL;
  }
  int64_t n = md_numel(m);
  float *v = malloc(sizeof *v * (size_t)(n ? n : 1));
  if (!v) {
    md_set_error("%s: out of memory for a %s mask", op, md_shape_str(m, sb, sizeof sb));
    return NULL;
  }
  if (md_to_float(m, v) != MD_OK) {
    free(v);
    return NULL;
  }
  return v;
}

/* {====================================================== resize */
/* the overlap weights of output cell o with input cells: output o covers
** input [o*N/n, (o+1)*N/n); lists (index, weight / cell length) */
typedef struct {
  int64_t *first, *count; /* per output */
  int64_t *idx;
  double *wt;
} area_w;

static void area_free(area_w *a) {
  free(a->first), free(a->count), free(a->idx), free(a->wt);
}

static int area_make(area_w *a, int64_t N, int64_t n) {
  int64_t per = N / n + 2; /* at most this many input cells touch one output cell */
  a->first = malloc(sizeof *a->first * (size_t)n);
  a->count = malloc(sizeof *a->count * (size_t)n);
  a->idx = malloc(sizeof *a->idx * (size_t)(n * per));
  a->wt = malloc(sizeof *a->wt * (size_t)(n * per));
  if (!a->first || !a->count || !a->idx || !a->wt) return MD_ERR;
  for (int64_t o = 0; o < n; o++) {
    /* exact in units of 1/n: output o covers [o*N, (o+1)*N) of n*input cells */
    int64_t lo = o * N, hi = (o + 1) * N, k = 0;
    a->first[o] = o * per;
    for (int64_t i = lo / n; i * n < hi && i < N; i++) {
      int64_t a0 = i * n > lo ? i * n : lo, a1 = (i + 1) * n < hi ? (i + 1) * n : hi;
      if (a1 <= a0) continue;
      a->idx[o * per + k] = i;
      a->wt[o * per + k] = (double)(a1 - a0) / (double)N;
      k++;
    }
    a->count[o] = k;
  }
  return MD_OK;
}

md_tensor *md_mask_resize(const md_tensor *mask, int64_t h, int64_t w) {
  int64_t P, H, W;
  if (!mask) return NULL;
  if (h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20)) {
    md_set_error("mask_resize: target size %lldx%lld must be positive", (long long)h, (long long)w);
    return NULL;
  }
  float *v = mask_values("mask_resize", mask, &P, &H, &W);
  if (!v) return NULL;
  int64_t shape[4];
  if (mask->ndim == 4)
    shape[0] = mask->shape[0], shape[1] = mask->shape[1];
  else
    shape[0] = mask->ndim == 3 ? mask->shape[0] : 1, shape[1] = 1;
  shape[2] = h, shape[3] = w;
  md_tensor *out = md_empty(4, shape, MD_F32);
  area_w ay = {0}, ax = {0};
  double *tmp = malloc(sizeof *tmp * (size_t)(H * w));
  if (!out || !tmp || area_make(&ay, H, h) != MD_OK || area_make(&ax, W, w) != MD_OK) {
    if (out) md_set_error("mask_resize: out of memory");
    md_release(out);
    free(v), free(tmp), area_free(&ay), area_free(&ax);
    return NULL;
  }
  float *o = out->data;
  for (int64_t p = 0; p < P; p++) {
    const float *src = v + p * H * W;
    for (int64_t y = 0; y < H; y++) /* columns first: H x w */
      for (int64_t x = 0; x < w; x++) {
        double s = 0;
        for (int64_t k = 0; k < ax.count[x]; k++) s += ax.wt[ax.first[x] + k] * src[y * W + ax.idx[ax.first[x] + k]];
        tmp[y * w + x] = s;
      }
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        double s = 0;
        for (int64_t k = 0; k < ay.count[y]; k++) s += ay.wt[ay.first[y] + k] * tmp[ay.idx[ay.first[y] + k] * w + x];
        /* covered at least half: object (1e-9 absorbs rounding of exact halves) */
        o[(p * h + y) * w + x] = s >= 0.5 - 1e-9 ? 1.0f : 0.0f;
      }
  }
  free(v), free(tmp), area_free(&ay), area_free(&ax);
  return out;
}
/* }====================================================== */

/* {====================================================== dilate / erode */
/* out[i] = max (or min) of in[i-r .. i+r] clipped to the line: van Herk /
** Gil-Werman, 3 comparisons per sample whatever r.  buf: 3*(n+2r) floats. */
static void line_filter(const float *in, int64_t stride, int64_t n, int64_t r, int ismax, float *out,
                        int64_t ostride, float *buf) {
  int64_t m = n + 2 * r, k = 2 * r + 1;
  float *p = buf, *g = buf + m, *hh = buf + 2 * m;
  float id = ismax ? -INFINITY : INFINITY; /* outside the image: neutral */
  for (int64_t i = 0; i < m; i++) p[i] = (i < r || i >= r + n) ? id : in[(i - r) * stride];
#define PICK(a, b) (ismax ? ((a) > (b) ? (a) : (b)) : ((a) < (b) ? (a) : (b)))
  for (int64_t i = 0; i < m; i++) g[i] = (i % k == 0) ? p[i] : PICK(g[i - 1], p[i]);
  for (int64_t i = m - 1; i >= 0; i--) hh[i] = (i % k == k - 1 || i == m - 1) ? p[i] : PICK(hh[i + 1], p[i]);
  for (int64_t i = 0; i < n; i++) out[i * ostride] = PICK(hh[i], g[i + 2 * r]);
#undef PICK
}

static md_tensor *morph(const char *op, const md_tensor *mask, int r, int ismax) {
  int64_t P, H, W;
  if (!mask) return NULL;
  if (r < 0) {
    md_set_error("%s: radius must be >= 0, got %d", op, r);
    return NULL;
  }
  float *v = mask_values(op, mask, &P, &H, &W);
  if (!v) return NULL;
  md_tensor *out = md_empty(mask->ndim, mask->shape, MD_F32);
  if (!out) {
    free(v);
    return NULL;
  }
  float *o = out->data;
  if (r == 0) {
    memcpy(o, v, sizeof *o * (size_t)(P * H * W));
    free(v);
    return out;
  }
  /* a radius past the size changes nothing more: the window covers the line */
  int64_t rx = r < W ? r : W, ry = r < H ? r : H, L = H > W ? H : W, R = rx > ry ? rx : ry;
  float *buf = malloc(sizeof *buf * (size_t)(3 * (L + 2 * R)));
  float *tmp = malloc(sizeof *tmp * (size_t)(H * W));
  if (!buf || !tmp) {
    free(v), free(buf), free(tmp);
    md_release(out);
    md_set_error("%s: out of memory", op);
    return NULL;
  }
  for (int64_t p = 0; p < P; p++) {
    const float *src = v + p * H * W;
    float *dst = o + p * H * W;
    for (int64_t y = 0; y < H; y++) line_filter(src + y * W, 1, W, rx, ismax, tmp + y * W, 1, buf); /* rows */
    for (int64_t x = 0; x < W; x++) line_filter(tmp + x, W, H, ry, ismax, dst + x, W, buf);        /* columns */
  }
  free(v), free(buf), free(tmp);
  return out;
}

md_tensor *md_mask_dilate(const md_tensor *mask, int r) { return morph("mask_dilate", mask, r, 1); }
md_tensor *md_mask_erode(const md_tensor *mask, int r) { return morph("mask_erode", mask, r, 0); }

md_tensor *md_mask_expand(const md_tensor *mask, int px) {
  if (px == INT32_MIN) {
    md_set_error("mask_expand: px out of range");
    return NULL;
  }
  return px >= 0 ? morph("mask_expand", mask, px, 1) : morph("mask_expand", mask, -px, 0);
}

md_tensor *md_mask_for_layer(const md_tensor *mask, int expand_px, int64_t h, int64_t w) {
  md_tensor *e = md_mask_expand(mask, expand_px);
  if (!e) return NULL;
  md_tensor *r = md_mask_resize(e, h, w);
  md_release(e);
  return r;
}
/* }====================================================== */
