/*
** image.c -- image files (stb_image, stb_image_write, stb_image_resize: the
** ONE file with their implementations), PNG <-> tensors, and the compositing
** kernel of the cluttered data set.  See image.h.
*/
#include "image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* {====================================================== stb */
/* PNG deflate through zlib: faster and smaller than stb's own compressor */
static unsigned char *md_zlib_compress(unsigned char *data, int len, int *out_len, int quality) {
  (void)quality;
  uLongf n = compressBound((uLong)len);
  unsigned char *out = malloc(n);
  if (!out) return NULL;
  if (compress2(out, &n, data, (uLong)len, 6) != Z_OK) {
    free(out);
    return NULL;
  }
  *out_len = (int)n;
  return out;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wpointer-arith"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_MAX_DIMENSIONS (1 << 15) /* a forged header cannot ask for gigabytes */
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBIW_ZLIB_COMPRESS md_zlib_compress
#include <stb_image_write.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
#pragma GCC diagnostic pop
/* }====================================================== */

/* {====================================================== decoding */
int md_image_info(const char *path, int *w, int *h, int *c) {
  int ww = 0, hh = 0, cc = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    md_set_error("image %s: cannot open", path);
    return MD_ERR;
  }
  int ok = stbi_info_from_file(f, &ww, &hh, &cc);
  fclose(f);
  if (!ok || ww <= 0 || hh <= 0) {
    md_set_error("image %s: not a readable PNG/JPEG/BMP (%s)", path, ok ? "empty" : stbi_failure_reason());
    return MD_ERR;
  }
  if (w) *w = ww;
  if (h) *h = hh;
  if (c) *c = cc;
  return MD_OK;
}

uint8_t *md_image_load(const char *path, int req_c, int *w, int *h, int *c) {
  if (req_c < 0 || req_c > 4) {
    md_set_error("image %s: cannot convert to %d channels", path, req_c);
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    md_set_error("image %s: cannot open", path);
    return NULL;
  }
  int ww = 0, hh = 0, cc = 0;
  uint8_t *p = stbi_load_from_file(f, &ww, &hh, &cc, req_c);
  fclose(f);
  if (!p) {
    md_set_error("image %s: cannot decode (%s)", path, stbi_failure_reason());
    return NULL;
  }
  if (w) *w = ww;
  if (h) *h = hh;
  if (c) *c = cc;
  return p;
}

void md_image_free(void *pixels) { stbi_image_free(pixels); }

int md_image_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int c) {
  if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || c < 1 || c > 4) {
    md_set_error("image_resize: bad sizes %dx%d -> %dx%d, %d channels", sw, sh, dw, dh, c);
    return MD_ERR;
  }
  if (sw == dw && sh == dh) {
    memcpy(dst, src, (size_t)sw * sh * c);
    return MD_OK;
  }
  if (!stbir_resize_uint8(src, sw, sh, 0, dst, dw, dh, 0, c)) {
    md_set_error("image_resize: %dx%d -> %dx%d failed (out of memory)", sw, sh, dw, dh);
    return MD_ERR;
  }
  return MD_OK;
}

int md_image_load_chw(const char *path, int c, int h, int w, uint8_t *dst) {
  if (c != 1 && c != 3) {
    md_set_error("image %s: channels must be 1 or 3, got %d", path, c);
    return MD_ERR;
  }
  int iw, ih;
  uint8_t *p = md_image_load(path, c, &iw, &ih, NULL);
  if (!p) return MD_ERR;
  uint8_t *q = p;
  if (iw != w || ih != h) {
    q = malloc((size_t)w * h * c);
    if (!q || md_image_resize(p, iw, ih, q, w, h, c) != MD_OK) {
      if (!q) md_set_error("image %s: out of memory", path);
      free(q);
      md_image_free(p);
      return MD_ERR;
    }
  }
  size_t hw = (size_t)h * w;
  for (int k = 0; k < c; k++)
    for (size_t i = 0; i < hw; i++) dst[k * hw + i] = q[i * c + k];
  if (q != p) free(q);
  md_image_free(p);
  return MD_OK;
}

/* area average of a 0/1 plane, then >= 0.5 -> object (as md_mask_resize) */
static void mask_area_resize(const uint8_t *src, int W, int H, uint8_t *dst, int w, int h) {
  for (int i = 0; i < h; i++) {
    double y0 = (double)i * H / h, y1 = (double)(i + 1) * H / h;
    for (int j = 0; j < w; j++) {
      double x0 = (double)j * W / w, x1 = (double)(j + 1) * W / w, s = 0;
      for (int y = (int)y0; y < H && y < y1; y++) {
        double oy = (y + 1 < y1 ? y + 1 : y1) - (y > y0 ? y : y0);
        for (int x = (int)x0; x < W && x < x1; x++) {
          double ox = (x + 1 < x1 ? x + 1 : x1) - (x > x0 ? x : x0);
          if (src[(size_t)y * W + x]) s += oy * ox;
        }
      }
      dst[(size_t)i * w + j] = s >= 0.5 * (y1 - y0) * (x1 - x0) - 1e-9 ? 255 : 0;
    }
  }
}

int md_mask_load(const char *path, int h, int w, uint8_t *dst) {
  int iw, ih;
  uint8_t *p = md_image_load(path, 1, &iw, &ih, NULL);
  if (!p) return MD_ERR;
  size_t n = (size_t)iw * ih;
  if (iw == w && ih == h) {
    for (size_t i = 0; i < n; i++) dst[i] = p[i] ? 255 : 0;
  } else {
    mask_area_resize(p, iw, ih, dst, w, h); /* a cell is object when >= 50% of it is */
  }
  md_image_free(p);
  return MD_OK;
}
/* }====================================================== */

/* {====================================================== writing */
static int check_write_args(const char *what, const char *path, const uint8_t *px, int w, int h, int c) {
  if (!path || !px || w <= 0 || h <= 0 || c < 1 || c > 4) {
    md_set_error("%s %s: bad image (%dx%d, %d channels)", what, path ? path : "(null)", w, h, c);
    return MD_ERR;
  }
  return MD_OK;
}

int md_png_write(const char *path, const uint8_t *pixels, int w, int h, int c) {
  if (check_write_args("png_write", path, pixels, w, h, c) != MD_OK) return MD_ERR;
  if (!stbi_write_png(path, w, h, c, pixels, w * c)) {
    md_set_error("png_write %s: cannot write the file", path);
    return MD_ERR;
  }
  return MD_OK;
}

int md_bmp_write(const char *path, const uint8_t *pixels, int w, int h, int c) {
  if (check_write_args("bmp_write", path, pixels, w, h, c) != MD_OK) return MD_ERR;
  if (!stbi_write_bmp(path, w, h, c, pixels)) {
    md_set_error("bmp_write %s: cannot write the file", path);
    return MD_ERR;
  }
  return MD_OK;
}

int md_png_write_tensor(const char *path, const md_tensor *t) {
  if (!t) return MD_ERR;
  char sb[64];
  int64_t C, H, W;
  if (t->ndim == 2) {
    C = 1, H = t->shape[0], W = t->shape[1];
  } else if (t->ndim == 3) {
    C = t->shape[0], H = t->shape[1], W = t->shape[2];
  } else if (t->ndim == 4 && t->shape[0] == 1) {
    C = t->shape[1], H = t->shape[2], W = t->shape[3];
  } else {
    md_set_error("png_write %s: want a (C,H,W) or (H,W) tensor, got %s", path, md_shape_str(t, sb, sizeof sb));
    return MD_ERR;
  }
  if (C < 1 || C > 4 || H < 1 || W < 1 || H > (1 << 15) || W > (1 << 15)) {
    md_set_error("png_write %s: want 1 to 4 channels and a nonempty image, got %s", path,
                 md_shape_str(t, sb, sizeof sb));
    return MD_ERR;
  }
  size_t n = (size_t)(C * H * W);
  float *f = malloc(n * sizeof *f);
  uint8_t *px = malloc(n);
  if (!f || !px) {
    free(f);
    free(px);
    md_set_error("png_write %s: out of memory", path);
    return MD_ERR;
  }
  int rc = md_to_float(t, f);
  if (rc == MD_OK) {
    size_t hw = (size_t)(H * W);
    for (int64_t k = 0; k < C; k++)
      for (size_t i = 0; i < hw; i++) {
        float v = f[k * hw + i];
        v = v > 0 ? (v < 1 ? v : 1) : 0; /* NaN -> 0 */
        px[i * C + k] = (uint8_t)lrintf(v * 255.0f);
      }
    rc = md_png_write(path, px, (int)W, (int)H, (int)C);
  }
  free(f);
  free(px);
  return rc;
}

md_tensor *md_image_read_tensor(const char *path, int channels) {
  if (channels != 0 && channels != 1 && channels != 3 && channels != 4) {
    md_set_error("image %s: channels must be 0 (as stored), 1, 3 or 4; got %d", path, channels);
    return NULL;
  }
  int w, h, c;
  uint8_t *p = md_image_load(path, channels, &w, &h, &c);
  if (!p) return NULL;
  if (channels) c = channels;
  md_tensor *t = md_empty(3, (int64_t[]){c, h, w}, MD_F32);
  if (t) {
    float *d = t->data;
    size_t hw = (size_t)h * w;
    for (int k = 0; k < c; k++)
      for (size_t i = 0; i < hw; i++) d[k * hw + i] = p[i * c + k] * (1.0f / 255.0f);
  }
  md_image_free(p);
  return t;
}
/* }====================================================== */

/* {====================================================== cluttered backgrounds */
typedef struct {
  uint64_t s;
} rng_t;
static uint64_t rng_u64(rng_t *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double rng_unif(rng_t *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }
static double rng_range(rng_t *r, double lo, double hi) { return lo + (hi - lo) * rng_unif(r); }

static const char *const family_names[MD_CLUTTER_FAMILIES] = {
    "hstripes", "vstripes", "diagonal", "antidiagonal", "checker", "dots", "rings", "blobs", "speckle", "grid"};
const char *md_clutter_family_name(int k) { return k >= 0 && k < MD_CLUTTER_FAMILIES ? family_names[k] : NULL; }

static double smoothstep(double a, double b, double x) {
  double t = (x - a) / (b - a);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return t * t * (3 - 2 * t);
}

static void hsv2rgb(double h, double s, double v, double *rgb) {
  h = fmod(h, 1.0) * 6;
  int i = (int)h;
  double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  for (int k = 0; k < 3; k++) rgb[k] = r[i % 6][k];
}

/* value noise in [0,1] with lattice spacing `cell`, smoothstep-interpolated */
static void value_noise(rng_t *r, int S, double cell, double *out) {
  int g = (int)(S / cell) + 3;
  double *lat = malloc(sizeof *lat * (size_t)g * g);
  if (!lat) { /* degrade to flat noise rather than fail a whole data set */
    for (int i = 0; i < S * S; i++) out[i] = 0.5;
    return;
  }
  for (int i = 0; i < g * g; i++) lat[i] = rng_unif(r);
  double ox = rng_unif(r), oy = rng_unif(r);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      double fx = x / cell + ox, fy = y / cell + oy;
      int ix = (int)fx, iy = (int)fy;
      double tx = smoothstep(0, 1, fx - ix), ty = smoothstep(0, 1, fy - iy);
      double a = lat[iy * g + ix], b = lat[iy * g + ix + 1], c = lat[(iy + 1) * g + ix],
             d = lat[(iy + 1) * g + ix + 1];
      out[y * S + x] = (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
    }
  free(lat);
}

/* the family pattern p(x,y) in [0,1] */
static void family_pattern(rng_t *r, int fam, int S, double *p) {
  const double TAU = 6.283185307179586;
  double T = rng_range(r, 5.5, 9.5), ph = rng_range(r, 0, TAU), th = rng_range(r, -0.2, 0.2);
  double ph2 = rng_range(r, 0, TAU);
  double cth = cos(th), sth = sin(th);
  double cx = rng_range(r, -0.5 * S, 1.5 * S), cy = rng_range(r, -0.5 * S, 1.5 * S);
  double ox = rng_range(r, 0, T), oy = rng_range(r, 0, T);
  double *nz = NULL;
  if (fam == 7) {
    nz = malloc(sizeof *nz * (size_t)S * S);
    if (nz) value_noise(r, S, rng_range(r, 7, 11), nz);
  }
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      double X = x * cth - y * sth, Y = x * sth + y * cth, v = 0;
      switch (fam) {
      case 0: v = smoothstep(-0.35, 0.35, sin(TAU * Y / T + ph)); break;
      case 1: v = smoothstep(-0.35, 0.35, sin(TAU * X / T + ph)); break;
      case 2: v = smoothstep(-0.35, 0.35, sin(TAU * (X + Y) / (T * 1.41421356) + ph)); break;
      case 3: v = smoothstep(-0.35, 0.35, sin(TAU * (X - Y) / (T * 1.41421356) + ph)); break;
      case 4: v = smoothstep(-0.15, 0.15, sin(TAU * X / (1.6 * T) + ph) * sin(TAU * Y / (1.6 * T) + ph2)); break;
      case 5: {
        double P = 1.4 * T, dx = fmod(X + ox + 8 * P, P) - P / 2, dy = fmod(Y + oy + 8 * P, P) - P / 2;
        v = 1 - smoothstep(0.25 * P, 0.25 * P + 1.2, sqrt(dx * dx + dy * dy));
        break;
      }
      case 6: v = smoothstep(-0.35, 0.35, sin(TAU * hypot(x - cx, y - cy) / T + ph)); break;
      case 7: v = nz ? smoothstep(0.42, 0.58, nz[y * S + x]) : 0.5; break;
      case 8: { /* 2x2 salt and pepper */
        uint64_t hsh = (uint64_t)(y / 2) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(x / 2) * 0xc2b2ae3d27d4eb4full;
        rng_t q = {hsh ^ r->s};
        v = rng_unif(&q) < 0.5 ? 1 : 0;
        break;
      }
      case 9: {
        double P = 1.5 * T, a = fmod(X + ox + 8 * P, P), b = fmod(Y + oy + 8 * P, P);
        v = (a < 1.6 || b < 1.6) ? 1 : 0;
        break;
      }
      }
      p[y * S + x] = v;
    }
  free(nz);
}

static void item_bilinear(const uint8_t *item, int ih, int iw, int s, double *out) {
  /* half-pixel centres (align_corners = false), edges clamped */
  for (int y = 0; y < s; y++) {
    double fy = (y + 0.5) * ih / s - 0.5;
    fy = fy < 0 ? 0 : fy;
    int y0 = (int)fy, y1 = y0 + 1 < ih ? y0 + 1 : ih - 1;
    double ty = fy - y0;
    for (int x = 0; x < s; x++) {
      double fx = (x + 0.5) * iw / s - 0.5;
      fx = fx < 0 ? 0 : fx;
      int x0 = (int)fx, x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
      double tx = fx - x0;
      double v = (item[y0 * iw + x0] * (1 - tx) + item[y0 * iw + x1] * tx) * (1 - ty) +
                 (item[y1 * iw + x0] * (1 - tx) + item[y1 * iw + x1] * tx) * ty;
      out[y * s + x] = v / 255.0;
    }
  }
}

int md_clutter_compose(const uint8_t *item, int ih, int iw, const md_clutter_params *p, uint8_t *img,
                       uint8_t *mask) {
  if (!item || !p || !img || !mask || ih < 1 || iw < 1) {
    md_set_error("clutter_compose: missing item or output");
    return MD_ERR;
  }
  int S = p->size, s = p->item_size;
  if (S < 8 || S > 1024 || s < 1 || s > S || p->x < 0 || p->y < 0 || p->x + s > S || p->y + s > S ||
      p->texture < 0 || p->texture >= MD_CLUTTER_FAMILIES) {
    md_set_error("clutter_compose: bad parameters (size %d, item_size %d at %d,%d, texture %d; want 8 <= size "
                 "<= 1024, the item inside, texture 0..%d)",
                 S, s, p->x, p->y, p->texture, MD_CLUTTER_FAMILIES - 1);
    return MD_ERR;
  }
  size_t n = (size_t)S * S;
  double *pat = malloc(sizeof *pat * n), *nz = malloc(sizeof *nz * n), *it = malloc(sizeof *it * (size_t)s * s);
  double *rgb = malloc(sizeof *rgb * 3 * n);
  if (!pat || !nz || !it || !rgb) {
    free(pat), free(nz), free(it), free(rgb);
    md_set_error("clutter_compose: out of memory");
    return MD_ERR;
  }
  rng_t r = {p->seed * 0x2545f4914f6cdd1dull + 0x1234567ull};
  /* two colours of random hue, a darker and a lighter one */
  double c1[3], c2[3];
  double hue = rng_unif(&r);
  hsv2rgb(hue, rng_range(&r, 0.35, 0.9), rng_range(&r, 0.2, 0.45), c1);
  hsv2rgb(hue + rng_range(&r, 0.15, 0.85), rng_range(&r, 0.35, 0.9), rng_range(&r, 0.55, 0.85), c2);
  family_pattern(&r, p->texture, S, pat);
  value_noise(&r, S, rng_range(&r, 12, 20), nz);
  for (size_t i = 0; i < n; i++) {
    double shade = 0.7 + 0.6 * (nz[i] - 0.5);
    for (int k = 0; k < 3; k++) rgb[k * n + i] = (c1[k] * (1 - pat[i]) + c2[k] * pat[i]) * shade;
  }
  /* clutter: 2-4 soft ellipses of random colour, the same in every family */
  int nb = 2 + (int)(rng_unif(&r) * 3);
  for (int b = 0; b < nb; b++) {
    double col[3], ex = rng_range(&r, 0, S), ey = rng_range(&r, 0, S), ra = rng_range(&r, 3, S / 6.0),
                   rb = rng_range(&r, 3, S / 6.0), an = rng_range(&r, 0, 3.14159), al = rng_range(&r, 0.4, 0.8);
    hsv2rgb(rng_unif(&r), rng_range(&r, 0.2, 0.9), rng_range(&r, 0.2, 0.9), col);
    double ca = cos(an), sa = sin(an);
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) {
        double dx = x - ex, dy = y - ey, u = (dx * ca + dy * sa) / ra, v = (-dx * sa + dy * ca) / rb;
        double a = al * (1 - smoothstep(0.8, 1.0, u * u + v * v));
        if (a <= 0) continue;
        for (int k = 0; k < 3; k++) rgb[k * n + y * S + x] = rgb[k * n + y * S + x] * (1 - a) + col[k] * a;
      }
  }
  /* the item: gray garment, alpha rising fast with its intensity */
  item_bilinear(item, ih, iw, s, it);
  memset(mask, 0, n);
  for (int y = 0; y < s; y++)
    for (int x = 0; x < s; x++) {
      double v = it[y * s + x];
      if (!(v > 0)) continue;
      size_t i = (size_t)(p->y + y) * S + (size_t)(p->x + x);
      double a = v * 3 > 1 ? 1 : v * 3, g = 0.08 + 0.92 * v;
      for (int k = 0; k < 3; k++) rgb[k * n + i] = rgb[k * n + i] * (1 - a) + g * a;
      mask[i] = 255;
    }
  for (size_t i = 0; i < 3 * n; i++) {
    double v = rgb[i] + (rng_unif(&r) - 0.5) * 0.04; /* a little sensor noise */
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    img[i] = (uint8_t)lrint(v * 255);
  }
  free(pat), free(nz), free(it), free(rgb);
  return MD_OK;
}
/* }====================================================== */
