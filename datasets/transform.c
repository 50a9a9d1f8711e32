/*
** transform.c -- resize, pad+random crop, random flip and normalisation of
** uint8 CHW items into float (see transform.h).  Plain loops over uint8 with
** precomputed tables: a 256-entry float lookup per channel does x/255 and the
** normalisation in one load, and the crop/flip stage works row by row with
** the padded columns filled separately.
*/
#include "transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {====================================================== random numbers */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void md_rng_seed(md_rng *r, uint64_t seed, uint64_t stream) {
  uint64_t x = stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull;
  x = splitmix64(&x) ^ seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; /* never all zero */
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t md_rng_next(md_rng *r) {
  uint64_t *s = r->s;
  uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return res;
}

uint64_t md_rng_below(md_rng *r, uint64_t n) {
  if (n <= 1) return 0;
  /* rejection from the top of the range: unbiased */
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do v = md_rng_next(r);
  while (v >= lim);
  return v % n;
}
/* }====================================================== */

/* {====================================================== plans */
typedef struct lin {
  int i0, i1;
  float l0, l1;
} lin;

struct md_tf_plan {
  md_transform tf;
  int c, h, w;   /* input */
  int rh, rw;    /* after resize (= h, w without) */
  int resize;    /* sizes differ */
  float *lut;    /* c x 256 */
  lin *ty, *tx;  /* resize tables, rh and rw entries */
};

/* PyTorch's linear source index and weights, align_corners=False, in float */
static void lin_table(lin *t, int in, int out) {
  float scale = (float)in / (float)out;
  for (int i = 0; i < out; i++) {
    float src = scale * ((float)i + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int i0 = (int)src;
    if (i0 > in - 1) i0 = in - 1;
    t[i].i0 = i0;
    t[i].i1 = i0 < in - 1 ? i0 + 1 : i0;
    t[i].l1 = src - (float)i0;
    t[i].l0 = 1.0f - t[i].l1;
  }
}

#define MD_TF_MAXSIDE 65536

md_tf_plan *md_tf_plan_new(const md_transform *tf, int c, int h, int w, const char *what) {
  md_transform none;
  if (!what) what = "data set";
  if (!tf) {
    memset(&none, 0, sizeof none);
    tf = &none;
  }
  if (c < 1 || h < 1 || w < 1 || h > MD_TF_MAXSIDE || w > MD_TF_MAXSIDE) {
    md_set_error("transform: %s has items of %d x %d x %d (channels x height x width); need positive sizes up to %d",
                 what, c, h, w, MD_TF_MAXSIDE);
    return NULL;
  }
  if ((tf->resize_h == 0) != (tf->resize_w == 0) || tf->resize_h < 0 || tf->resize_w < 0 ||
      tf->resize_h > MD_TF_MAXSIDE || tf->resize_w > MD_TF_MAXSIDE) {
    md_set_error("transform: resize to %d x %d for %s: give both sizes, each 1..%d (or both 0 to keep %d x %d)",
                 tf->resize_h, tf->resize_w, what, MD_TF_MAXSIDE, h, w);
    return NULL;
  }
  if (tf->pad_crop < 0 || tf->pad_crop > MD_TF_MAXSIDE) {
    md_set_error("transform: pad_crop %d for %s must be 0..%d", tf->pad_crop, what, MD_TF_MAXSIDE);
    return NULL;
  }
  if (tf->normalize && c > MD_TF_MAXC) {
    md_set_error("transform: %s has %d channels; normalize takes at most %d", what, c, MD_TF_MAXC);
    return NULL;
  }
  if (tf->normalize)
    for (int k = 0; k < c; k++)
      if (!isfinite(tf->mean[k]) || !isfinite(tf->std[k]) || tf->std[k] == 0.0f) {
        md_set_error("transform: normalize for %s: channel %d has mean %g, std %g (std must be finite and nonzero)",
                     what, k + 1, (double)tf->mean[k], (double)tf->std[k]);
        return NULL;
      }
  md_tf_plan *p = calloc(1, sizeof *p);
  if (!p) goto nomem;
  p->tf = *tf;
  p->c = c, p->h = h, p->w = w;
  p->rh = tf->resize_h ? tf->resize_h : h;
  p->rw = tf->resize_w ? tf->resize_w : w;
  p->resize = p->rh != h || p->rw != w;
  p->lut = malloc(sizeof(float) * 256 * (size_t)c);
  if (!p->lut) goto nomem;
  for (int k = 0; k < c; k++)
    for (int v = 0; v < 256; v++) {
      float x = (float)v / 255.0f;
      p->lut[k * 256 + v] = tf->normalize ? (x - tf->mean[k]) / tf->std[k] : x;
    }
  if (p->resize) {
    p->ty = malloc(sizeof(lin) * (size_t)p->rh);
    p->tx = malloc(sizeof(lin) * (size_t)p->rw);
    if (!p->ty || !p->tx) goto nomem;
    lin_table(p->ty, h, p->rh);
    lin_table(p->tx, w, p->rw);
  }
  return p;
nomem:
  md_tf_plan_free(p);
  md_set_error("transform: out of memory planning for %s", what);
  return NULL;
}

void md_tf_plan_free(md_tf_plan *p) {
  if (!p) return;
  free(p->lut);
  free(p->ty);
  free(p->tx);
  free(p);
}

void md_tf_out_size(const md_tf_plan *p, int *oh, int *ow) {
  *oh = p->rh;
  *ow = p->rw;
}

size_t md_tf_scratch_bytes(const md_tf_plan *p) {
  return p->resize ? (size_t)(p->c + 1) * (size_t)p->rh * (size_t)p->rw : 0;
}

void md_tf_draw_item(const md_tf_plan *p, md_rng *r, md_tf_draw *d) {
  int pad = p->tf.pad_crop;
  d->oy = pad ? (int)md_rng_below(r, 2 * (uint64_t)pad + 1) : 0;
  d->ox = pad ? (int)md_rng_below(r, 2 * (uint64_t)pad + 1) : 0;
  d->flip = p->tf.hflip ? (int)(md_rng_next(r) >> 63) : 0;
}
/* }====================================================== */

/* {====================================================== kernels */
/* bilinear resize of one plane, rounded to uint8; binary: treat nonzero as
** 255 (masks) */
static void resize_plane(const md_tf_plan *p, const uint8_t *src, uint8_t *dst, int binary) {
  int w = p->w, rw = p->rw;
  for (int y = 0; y < p->rh; y++) {
    const lin ly = p->ty[y];
    const uint8_t *r0 = src + (size_t)ly.i0 * w, *r1 = src + (size_t)ly.i1 * w;
    uint8_t *o = dst + (size_t)y * rw;
    for (int x = 0; x < rw; x++) {
      const lin lx = p->tx[x];
      float a = r0[lx.i0], b = r0[lx.i1], c = r1[lx.i0], d = r1[lx.i1];
      if (binary) {
        a = a != 0 ? 255.0f : 0.0f;
        b = b != 0 ? 255.0f : 0.0f;
        c = c != 0 ? 255.0f : 0.0f;
        d = d != 0 ? 255.0f : 0.0f;
      }
      float v = ly.l0 * (lx.l0 * a + lx.l1 * b) + ly.l1 * (lx.l0 * c + lx.l1 * d);
      int q = (int)(v + 0.5f);
      o[x] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
  }
}

/* the columns x of the output whose source column (flip? W-1-x : x) + dx
** lies inside [0, W) form [*lo, *hi) */
static void valid_cols(int W, int dx, int flip, int *lo, int *hi) {
  int a, b;
  if (!flip)
    a = -dx, b = W - dx;
  else
    a = dx, b = W + dx;
  *lo = a < 0 ? 0 : a > W ? W : a;
  *hi = b < 0 ? 0 : b > W ? W : b;
  if (*hi < *lo) *hi = *lo;
}

void md_tf_apply(const md_tf_plan *p, const md_tf_draw *d, const uint8_t *img, const uint8_t *mask,
                 float *out, float *mout, uint8_t *scratch) {
  const int H = p->rh, W = p->rw, pad = p->tf.pad_crop;
  const size_t plane = (size_t)H * W;
  const uint8_t *src = img, *msrc = mask;
  int mthr = 1; /* object: m >= mthr */
  if (p->resize) {
    uint8_t *s = scratch;
    for (int k = 0; k < p->c; k++) resize_plane(p, img + (size_t)k * p->h * p->w, s + k * plane, 0);
    src = s;
    if (mask && mout) {
      resize_plane(p, mask, s + (size_t)p->c * plane, 1);
      msrc = s + (size_t)p->c * plane;
      mthr = 128;
    }
  }
  const int dy = d->oy - pad, dx = d->ox - pad, flip = d->flip;
  int lo, hi;
  valid_cols(W, dx, flip, &lo, &hi);
  for (int k = 0; k < p->c; k++) {
    const float *lut = p->lut + k * 256;
    const float padv = lut[0];
    const uint8_t *sp = src + k * plane;
    float *op = out + k * plane;
    for (int y = 0; y < H; y++) {
      float *o = op + (size_t)y * W;
      int sy = y + dy;
      if (sy < 0 || sy >= H) {
        for (int x = 0; x < W; x++) o[x] = padv;
        continue;
      }
      const uint8_t *row = sp + (size_t)sy * W;
      for (int x = 0; x < lo; x++) o[x] = padv;
      if (!flip)
        for (int x = lo; x < hi; x++) o[x] = lut[row[x + dx]];
      else
        for (int x = lo; x < hi; x++) o[x] = lut[row[W - 1 + dx - x]];
      for (int x = hi; x < W; x++) o[x] = padv;
    }
  }
  if (mask && mout) {
    for (int y = 0; y < H; y++) {
      float *o = mout + (size_t)y * W;
      int sy = y + dy;
      if (sy < 0 || sy >= H) {
        memset(o, 0, sizeof(float) * (size_t)W);
        continue;
      }
      const uint8_t *row = msrc + (size_t)sy * W;
      for (int x = 0; x < lo; x++) o[x] = 0.0f;
      if (!flip)
        for (int x = lo; x < hi; x++) o[x] = row[x + dx] >= mthr ? 1.0f : 0.0f;
      else
        for (int x = lo; x < hi; x++) o[x] = row[W - 1 - x + dx] >= mthr ? 1.0f : 0.0f;
      for (int x = hi; x < W; x++) o[x] = 0.0f;
    }
  }
}
/* }====================================================== */
