/*
** resize.c -- nearest and bilinear resizing of (N,C,H,W) planes, up or down
** (the space-wise constraint resizes masks to each layer's feature map).
**
** Source indices and weights are computed as PyTorch's F.interpolate does,
** in float, so the results match it to rounding.  Each op is linear in its
** input; its *_bwd op is the exact transpose, built from the same index and
** weight tables, so the two form a closed pair for double backward:
**   upsample_nearest <-> upsample_nearest_bwd
**   upsample_bilinear <-> upsample_bilinear_bwd
** The kernels work plane by plane and parallelise over the N*C planes, so the
** transposed kernels add into their output without races.
*/
#include "internal.h"

/* md_err wants a literal op name; the shared checks get theirs as an argument */
#define op_err(op, fmt, ...) md_set_error("%s: " fmt, (op), __VA_ARGS__)

/* {====================================================== index tables */
/* PyTorch's nearest_idx: identity and exact 2x are special-cased, otherwise
** floor(dst * (float)in/out) clamped to in-1, computed in float */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  float scale = (float)in / (float)out;
  int64_t s = (int64_t)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

/* one output coordinate of a linear interpolation: src i0, i1 with weights */
typedef struct lin {
  int64_t i0, i1;
  float l0, l1;
} lin;

/* PyTorch's compute_source_index_and_lambda for linear modes, in float:
** align_corners maps the corner pixels' centres onto each other; otherwise
** half-pixel centres, with negative sources clamped to 0 */
static void lin_table(lin *t, int64_t in, int64_t out, int align_corners) {
  float scale;
  if (align_corners)
    scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
  else
    scale = (float)in / (float)out;
  for (int64_t i = 0; i < out; i++) {
    if (out == in) {
      t[i].i0 = t[i].i1 = i;
      t[i].l0 = 1.0f;
      t[i].l1 = 0.0f;
      continue;
    }
    float src;
    if (align_corners)
      src = scale * (float)i;
    else {
      src = scale * ((float)i + 0.5f) - 0.5f;
      if (src < 0) src = 0;
    }
    int64_t i0 = (int64_t)src;
    if (i0 > in - 1) i0 = in - 1; /* guards rounding; src <= in-1 in exact arithmetic */
    float l1 = src - (float)i0;
    l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
    t[i].i0 = i0;
    t[i].i1 = i0 + (i0 < in - 1 ? 1 : 0);
    t[i].l1 = l1;
    t[i].l0 = 1.0f - l1;
  }
}
/* }====================================================== */

/* {====================================================== checks */
/* a 4-d float tensor */
static int x4_check(const char *op, const char *arg, const md_tensor *x) {
  if (!md_check_f32(op, arg, x)) return 0;
  if (x->ndim != 4) {
    op_err(op, "%s must be 4-d (N,C,H,W), got shape %s", arg, md_shp(x));
    return 0;
  }
  return 1;
}
/* both planes non-empty: the input H x W and the output oh x ow */
static int size_check(const char *op, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  if (oh < 1 || ow < 1 || H < 1 || W < 1) {
    op_err(op, "sizes must be positive: input %lldx%lld, output %lldx%lld", (long long)H,
           (long long)W, (long long)oh, (long long)ow);
    return 0;
  }
  return 1;
}
/* }====================================================== */

/* {====================================================== nearest */
/* y (P,oh,ow), x (P,H,W); sh (oh), sw (ow): source row / column */
static void nearest_kernel(float *y, const float *x, const int64_t *sh, const int64_t *sw,
                           int64_t P, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  int64_t work = P * oh * ow;
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * oh * ow;
    for (int64_t i = 0; i < oh; i++) {
      const float *row = xp + sh[i] * W;
      for (int64_t j = 0; j < ow; j++) yp[i * ow + j] = row[sw[j]];
    }
  }
}
/* the transpose: gx (P,H,W) = sum of gy (P,oh,ow) over the outputs each
** element was copied to */
static void nearest_adj_kernel(float *gx, const float *gy, const int64_t *sh, const int64_t *sw,
                               int64_t P, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  int64_t work = P * (oh * ow > H * W ? oh * ow : H * W);
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    float *xp = gx + pl * H * W;
    const float *yp = gy + pl * oh * ow;
    memset(xp, 0, sizeof(float) * (size_t)(H * W));
    for (int64_t i = 0; i < oh; i++) {
      float *row = xp + sh[i] * W;
      for (int64_t j = 0; j < ow; j++) row[sw[j]] += yp[i * ow + j];
    }
  }
}

/* both tables in one allocation: sh (oh) then sw (ow) */
static int64_t *nearest_tables(const char *op, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  int64_t *t = malloc(sizeof(int64_t) * (size_t)(oh + ow));
  if (!t) {
    op_err(op, "out of memory for index tables (%lld entries)", (long long)(oh + ow));
    return NULL;
  }
  for (int64_t i = 0; i < oh; i++) t[i] = nearest_src(i, H, oh);
  for (int64_t j = 0; j < ow; j++) t[oh + j] = nearest_src(j, W, ow);
  return t;
}

/* ip[0..1]: H, W of the input */
static md_status nearest_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                            md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_upsample_nearest_bwd(g, n->ip[0], n->ip[1]);
  return gin[0] ? MD_OK : MD_ERR;
}
/* ip[0..1]: oh, ow (gy's plane) */
static md_status nearest_adj_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                                md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_upsample_nearest(g, n->ip[0], n->ip[1]);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_UPSAMPLE_NEAREST = {"upsample_nearest", nearest_bw};
static const md_opdef OP_UPSAMPLE_NEAREST_BWD = {"upsample_nearest_bwd", nearest_adj_bw};

md_tensor *md_upsample_nearest(const md_tensor *x, int64_t oh, int64_t ow) {
  static const char *op = "upsample_nearest";
  if (!x4_check(op, "x", x)) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (!size_check(op, H, W, oh, ow)) return NULL;
  const int64_t os[4] = {N, C, oh, ow};
  int64_t *tab = nearest_tables(op, H, W, oh, ow);
  if (!tab) return NULL;
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *out = px ? md_new(4, os, MD_F32) : NULL;
  if (out) nearest_kernel(out->data, px, tab, tab + oh, N * C, H, W, oh, ow);
  md_release(tmp);
  free(tab);
  md_node *nd;
  out = md_finish(out, &OP_UPSAMPLE_NEAREST, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = H;
    nd->ip[1] = W;
  }
  return out;
}

md_tensor *md_upsample_nearest_bwd(const md_tensor *gy, int64_t H, int64_t W) {
  static const char *op = "upsample_nearest_bwd";
  if (!x4_check(op, "gy", gy)) return NULL;
  const int64_t N = gy->shape[0], C = gy->shape[1], oh = gy->shape[2], ow = gy->shape[3];
  if (!size_check(op, H, W, oh, ow)) return NULL;
  const int64_t xs[4] = {N, C, H, W};
  int64_t *tab = nearest_tables(op, H, W, oh, ow);
  if (!tab) return NULL;
  md_tensor *tmp;
  const float *pg = md_cdata(gy, &tmp);
  md_tensor *out = pg ? md_new(4, xs, MD_F32) : NULL;
  if (out) nearest_adj_kernel(out->data, pg, tab, tab + oh, N * C, H, W, oh, ow);
  md_release(tmp);
  free(tab);
  md_node *nd;
  out = md_finish(out, &OP_UPSAMPLE_NEAREST_BWD, 1, (const md_tensor *const[]){gy}, &nd);
  if (out && nd) {
    nd->ip[0] = oh;
    nd->ip[1] = ow;
  }
  return out;
}
/* }====================================================== */

/* {====================================================== bilinear */
/* y (P,oh,ow), x (P,H,W); th (oh), tw (ow): source indices and weights.
** The order of the products is PyTorch's (columns first, then rows). */
static void bilinear_kernel(float *y, const float *x, const lin *th, const lin *tw, int64_t P,
                            int64_t H, int64_t W, int64_t oh, int64_t ow) {
  int64_t work = 4 * P * oh * ow;
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * oh * ow;
    for (int64_t i = 0; i < oh; i++) {
      const float *r0 = xp + th[i].i0 * W, *r1 = xp + th[i].i1 * W;
      const float a0 = th[i].l0, a1 = th[i].l1;
      for (int64_t j = 0; j < ow; j++) {
        const lin c = tw[j];
        float t0 = r0[c.i0] * c.l0 + r0[c.i1] * c.l1;
        float t1 = r1[c.i0] * c.l0 + r1[c.i1] * c.l1;
        yp[i * ow + j] = t0 * a0 + t1 * a1;
      }
    }
  }
}
/* the transpose: gx (P,H,W) from gy (P,oh,ow), same tables */
static void bilinear_adj_kernel(float *gx, const float *gy, const lin *th, const lin *tw, int64_t P,
                                int64_t H, int64_t W, int64_t oh, int64_t ow) {
  int64_t work = 4 * P * (oh * ow > H * W ? oh * ow : H * W);
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    float *xp = gx + pl * H * W;
    const float *yp = gy + pl * oh * ow;
    memset(xp, 0, sizeof(float) * (size_t)(H * W));
    for (int64_t i = 0; i < oh; i++) {
      float *r0 = xp + th[i].i0 * W, *r1 = xp + th[i].i1 * W;
      const float a0 = th[i].l0, a1 = th[i].l1;
      for (int64_t j = 0; j < ow; j++) {
        const lin c = tw[j];
        const float g = yp[i * ow + j], g0 = g * a0, g1 = g * a1;
        r0[c.i0] += g0 * c.l0;
        r0[c.i1] += g0 * c.l1;
        r1[c.i0] += g1 * c.l0;
        r1[c.i1] += g1 * c.l1;
      }
    }
  }
}

/* both tables in one allocation: th (oh) then tw (ow) */
static lin *bilinear_tables(const char *op, int64_t H, int64_t W, int64_t oh, int64_t ow,
                            int align_corners) {
  lin *t = malloc(sizeof(lin) * (size_t)(oh + ow));
  if (!t) {
    op_err(op, "out of memory for index tables (%lld entries)", (long long)(oh + ow));
    return NULL;
  }
  lin_table(t, H, oh, align_corners);
  lin_table(t + oh, W, ow, align_corners);
  return t;
}

/* ip[0..2]: H, W of the input, align_corners */
static md_status bilinear_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                             md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_upsample_bilinear_bwd(g, n->ip[0], n->ip[1], (int)n->ip[2]);
  return gin[0] ? MD_OK : MD_ERR;
}
/* ip[0..2]: oh, ow (gy's plane), align_corners */
static md_status bilinear_adj_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                                 md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_upsample_bilinear(g, n->ip[0], n->ip[1], (int)n->ip[2]);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_UPSAMPLE_BILINEAR = {"upsample_bilinear", bilinear_bw};
static const md_opdef OP_UPSAMPLE_BILINEAR_BWD = {"upsample_bilinear_bwd", bilinear_adj_bw};

md_tensor *md_upsample_bilinear(const md_tensor *x, int64_t oh, int64_t ow, int align_corners) {
  static const char *op = "upsample_bilinear";
  if (!x4_check(op, "x", x)) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (!size_check(op, H, W, oh, ow)) return NULL;
  align_corners = align_corners != 0;
  const int64_t os[4] = {N, C, oh, ow};
  lin *tab = bilinear_tables(op, H, W, oh, ow, align_corners);
  if (!tab) return NULL;
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *out = px ? md_new(4, os, MD_F32) : NULL;
  if (out) bilinear_kernel(out->data, px, tab, tab + oh, N * C, H, W, oh, ow);
  md_release(tmp);
  free(tab);
  md_node *nd;
  out = md_finish(out, &OP_UPSAMPLE_BILINEAR, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = H;
    nd->ip[1] = W;
    nd->ip[2] = align_corners;
  }
  return out;
}

md_tensor *md_upsample_bilinear_bwd(const md_tensor *gy, int64_t H, int64_t W, int align_corners) {
  static const char *op = "upsample_bilinear_bwd";
  if (!x4_check(op, "gy", gy)) return NULL;
  const int64_t N = gy->shape[0], C = gy->shape[1], oh = gy->shape[2], ow = gy->shape[3];
  if (!size_check(op, H, W, oh, ow)) return NULL;
  align_corners = align_corners != 0;
  const int64_t xs[4] = {N, C, H, W};
  lin *tab = bilinear_tables(op, H, W, oh, ow, align_corners);
  if (!tab) return NULL;
  md_tensor *tmp;
  const float *pg = md_cdata(gy, &tmp);
  md_tensor *out = pg ? md_new(4, xs, MD_F32) : NULL;
  if (out) bilinear_adj_kernel(out->data, pg, tab, tab + oh, N * C, H, W, oh, ow);
  md_release(tmp);
  free(tab);
  md_node *nd;
  out = md_finish(out, &OP_UPSAMPLE_BILINEAR_BWD, 1, (const md_tensor *const[]){gy}, &nd);
  if (out && nd) {
    nd->ip[0] = oh;
    nd->ip[1] = ow;
    nd->ip[2] = align_corners;
  }
  return out;
}
/* }====================================================== */
