/*
** pool.c -- 2-d pooling: max, average, adaptive average, adaptive max.
**
** Sizes, padding, ceil mode and divisors follow PyTorch exactly, so models
** and reference values carry over.  Every op works plane by plane on
** (N*C, H, W) and parallelises over the planes, so the adjoint kernels can
** add into their output without races.
**
** The autograd closure:
**   max_pool2d, adaptive_max_pool2d -> scatter_add(idx) <-> gather(idx)
**   avg_pool2d <-> avg_pool2d_bwd
**   adaptive_avg_pool2d <-> adaptive_avg_pool2d_bwd
** Each *_bwd op is the exact adjoint (transpose) of its forward op, so the
** gradient of one is the other and double backward needs nothing new.
*/
#include "internal.h"

/* md_err wants a literal op name; the shared checks get theirs as an argument */
#define op_err(op, fmt, ...) md_set_error("%s: " fmt, (op), __VA_ARGS__)

/* {====================================================== parameters & checks */
md_pool_params md_pool_params_make(int k, int stride, int pad) {
  md_pool_params p;
  p.kernel[0] = p.kernel[1] = k;
  p.stride[0] = p.stride[1] = stride ? stride : k;
  p.pad[0] = p.pad[1] = pad;
  p.dilation[0] = p.dilation[1] = 1;
  p.ceil_mode = 0;
  p.count_include_pad = 1;
  return p;
}

/* nodes keep the parameters in ip[0..9] */
static void params_put(int64_t *ip, const md_pool_params *p) {
  for (int d = 0; d < 2; d++) {
    ip[0 + d] = p->kernel[d];
    ip[2 + d] = p->stride[d];
    ip[4 + d] = p->pad[d];
    ip[6 + d] = p->dilation[d];
  }
  ip[8] = p->ceil_mode;
  ip[9] = p->count_include_pad;
}
static md_pool_params params_get(const int64_t *ip) {
  md_pool_params p;
  for (int d = 0; d < 2; d++) {
    p.kernel[d] = (int)ip[0 + d];
    p.stride[d] = (int)ip[2 + d];
    p.pad[d] = (int)ip[4 + d];
    p.dilation[d] = (int)ip[6 + d];
  }
  p.ceil_mode = (int)ip[8];
  p.count_include_pad = (int)ip[9];
  return p;
}

static int64_t floordiv(int64_t a, int64_t b) { /* b > 0 */
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* PyTorch's pooling_output_shape: in ceil mode the last window must start
** inside the input or the left padding, never in the right padding */
static int64_t out_size(int64_t in, int k, int s, int pad, int dil, int ceil_mode) {
  int64_t num = in + 2 * (int64_t)pad - (int64_t)dil * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = floordiv(num, s) + 1;
  if (ceil_mode && (o - 1) * s >= in + pad) o--;
  return o;
}

/* The one check shared by the forward ops and avg_pool2d_bwd: parameters,
** the (H, W) input size and the output size.  avg = no dilation allowed. */
static int pool_check(const char *op, md_pool_params p, int avg, int64_t H, int64_t W, int64_t *Ho,
                      int64_t *Wo) {
  for (int d = 0; d < 2; d++) {
    if (p.kernel[d] <= 0 || p.stride[d] <= 0 || p.dilation[d] <= 0 || p.pad[d] < 0) {
      op_err(op,
             "kernel %dx%d, stride %dx%d and dilation %dx%d must be positive and padding %dx%d "
             "non-negative",
             p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.dilation[0], p.dilation[1],
             p.pad[0], p.pad[1]);
      return 0;
    }
  }
  if (avg && (p.dilation[0] != 1 || p.dilation[1] != 1)) {
    op_err(op, "average pooling has no dilation (got %dx%d; use 1x1)", p.dilation[0],
           p.dilation[1]);
    return 0;
  }
  if (p.pad[0] > p.kernel[0] / 2 || p.pad[1] > p.kernel[1] / 2) {
    op_err(op, "padding %dx%d must be at most half the kernel size %dx%d", p.pad[0], p.pad[1],
           p.kernel[0], p.kernel[1]);
    return 0;
  }
  if (H < 1 || W < 1) {
    op_err(op, "the input plane %lldx%lld is empty", (long long)H, (long long)W);
    return 0;
  }
  /* PyTorch's rule is the output size, not the kernel size: in ceil mode a
  ** kernel one larger than the padded input still gives one window */
  *Ho = out_size(H, p.kernel[0], p.stride[0], p.pad[0], p.dilation[0], p.ceil_mode);
  *Wo = out_size(W, p.kernel[1], p.stride[1], p.pad[1], p.dilation[1], p.ceil_mode);
  if (*Ho < 1 || *Wo < 1) {
    int64_t eh = (int64_t)p.dilation[0] * (p.kernel[0] - 1) + 1;
    int64_t ew = (int64_t)p.dilation[1] * (p.kernel[1] - 1) + 1;
    op_err(op,
           "kernel %dx%d (dilation %dx%d, spans %lldx%lld) is larger than the padded input "
           "%lldx%lld (input %lldx%lld, padding %dx%d): the output would be %lldx%lld",
           p.kernel[0], p.kernel[1], p.dilation[0], p.dilation[1], (long long)eh, (long long)ew,
           (long long)(H + 2 * p.pad[0]), (long long)(W + 2 * p.pad[1]), (long long)H, (long long)W,
           p.pad[0], p.pad[1], (long long)*Ho, (long long)*Wo);
    return 0;
  }
  return 1;
}

/* a 4-d float tensor (N,C,H,W) */
static int x4_check(const char *op, const char *arg, const md_tensor *x) {
  if (!md_check_f32(op, arg, x)) return 0;
  if (x->ndim != 4) {
    op_err(op, "%s must be 4-d (N,C,H,W), got shape %s", arg, md_shp(x));
    return 0;
  }
  return 1;
}

/* With dilation a window can skip over the whole input (e.g. kernel 2,
** dilation 3, padding 1 on H=2 reads rows -1 and 2).  PyTorch then returns
** -inf with an out-of-range index; we refuse, since its gradient would
** land on a wrong element. */
static int windows_hit_input(int64_t in, int64_t o, int k, int s, int pad, int dil) {
  for (int64_t i = 0; i < o; i++) {
    int64_t st = i * s - pad, j0 = 0;
    if (st < 0) j0 = (-st + dil - 1) / dil; /* first tap inside */
    if (j0 >= k || st + j0 * dil >= in) return 0;
  }
  return 1;
}
/* }====================================================== */

/* {====================================================== max_pool2d */
/* y, ix (P,Ho,Wo), x (P,H,W): P = N*C planes; ix is the flat h*W+w of the
** maximum.  NaN wins, as in PyTorch. */
static void maxpool_kernel(float *y, int64_t *ix, const float *x, int64_t P, int64_t H, int64_t W,
                           int64_t Ho, int64_t Wo, const md_pool_params *p) {
  const int kh = p->kernel[0], kw = p->kernel[1], sh = p->stride[0], sw = p->stride[1];
  const int ph = p->pad[0], pw = p->pad[1], dh = p->dilation[0], dw = p->dilation[1];
  int64_t work = P * Ho * Wo * kh * kw;
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * Ho * Wo;
    int64_t *ip = ix + pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      int64_t h0 = oh * sh - ph, h1 = h0 + (int64_t)(kh - 1) * dh + 1;
      while (h0 < 0) h0 += dh;
      if (h1 > H) h1 = H;
      for (int64_t ow = 0; ow < Wo; ow++) {
        int64_t w0 = ow * sw - pw, w1 = w0 + (int64_t)(kw - 1) * dw + 1;
        while (w0 < 0) w0 += dw;
        if (w1 > W) w1 = W;
        float m = -INFINITY;
        int64_t mi = h0 * W + w0;
        for (int64_t h = h0; h < h1; h += dh)
          for (int64_t w = w0; w < w1; w += dw) {
            float v = xp[h * W + w];
            if (v > m || isnan(v)) {
              m = v;
              mi = h * W + w;
            }
          }
        yp[oh * Wo + ow] = m;
        ip[oh * Wo + ow] = mi;
      }
    }
  }
}

/* The backward of both max pools: g goes to the argmax of each window,
** gx = scatter_add over the flattened planes.  scatter_add's gradient is
** gather, so this is differentiable to any order.  ip[0..3]: N,C,H,W. */
static md_status maxpool_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                            md_scope *s) {
  if (!need[0]) return MD_OK;
  const int64_t N = n->ip[0], C = n->ip[1], H = n->ip[2], W = n->ip[3];
  const int64_t L = n->out_shape[2] * n->out_shape[3];
  const int64_t flat[3] = {N, C, L}, plane[3] = {N, C, H * W}, shape[4] = {N, C, H, W};
  md_tensor *g3 = MD_S(s, md_reshape(g, 3, flat));
  md_tensor *i3 = MD_S(s, md_reshape(n->saved[0], 3, flat));
  md_tensor *gx = MD_S(s, md_scatter_add(3, plane, 2, i3, g3));
  gin[0] = md_reshape(gx, 4, shape);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_MAX_POOL2D = {"max_pool2d", maxpool_bw};
static const md_opdef OP_ADAPTIVE_MAX_POOL2D = {"adaptive_max_pool2d", maxpool_bw};

/* finish a max pool: record the node with the indices saved, hand out idx */
static md_tensor *maxpool_finish(md_tensor *out, md_tensor *ix, const md_opdef *op,
                                 const md_tensor *x, md_tensor **idx) {
  md_node *nd;
  out = md_finish(out, op, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    for (int d = 0; d < 4; d++) nd->ip[d] = x->shape[d];
    nd->saved[0] = md_retain(ix);
  }
  if (out && idx) *idx = md_retain(ix);
  md_release(ix);
  return out;
}

md_tensor *md_max_pool2d(const md_tensor *x, md_pool_params p, md_tensor **idx) {
  static const char *op = "max_pool2d";
  if (idx) *idx = NULL;
  if (!x4_check(op, "x", x)) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho, Wo;
  if (!pool_check(op, p, 0, H, W, &Ho, &Wo)) return NULL;
  if (!windows_hit_input(H, Ho, p.kernel[0], p.stride[0], p.pad[0], p.dilation[0]) ||
      !windows_hit_input(W, Wo, p.kernel[1], p.stride[1], p.pad[1], p.dilation[1])) {
    op_err(op,
           "a pooling window of kernel %dx%d, dilation %dx%d, padding %dx%d lies entirely in "
           "the padding of input %s",
           p.kernel[0], p.kernel[1], p.dilation[0], p.dilation[1], p.pad[0], p.pad[1], md_shp(x));
    return NULL;
  }
  const int64_t os[4] = {N, C, Ho, Wo};
  md_tensor *tmp, *out = NULL, *ix = NULL;
  const float *px = md_cdata(x, &tmp);
  if (px) {
    out = md_new(4, os, MD_F32);
    ix = out ? md_new(4, os, MD_I64) : NULL;
  }
  if (out && ix) maxpool_kernel(out->data, ix->data, px, N * C, H, W, Ho, Wo, &p);
  md_release(tmp);
  if (!ix) {
    md_release(out);
    return NULL;
  }
  return maxpool_finish(out, ix, &OP_MAX_POOL2D, x, idx);
}
/* }====================================================== */

/* {====================================================== avg_pool2d */
/* The window of output (oh, ow) clipped as PyTorch does: [h0,h1) x [w0,w1)
** inside the input and the divisor (the clipped-to-padding window size
** with count_include_pad, the number of input elements without). */
typedef struct win {
  int64_t h0, h1, w0, w1;
  float div;
} win;
static win avg_window(int64_t oh, int64_t ow, int64_t H, int64_t W, const md_pool_params *p) {
  win r;
  int64_t hs = oh * p->stride[0] - p->pad[0], ws = ow * p->stride[1] - p->pad[1];
  int64_t he = hs + p->kernel[0], we = ws + p->kernel[1];
  if (he > H + p->pad[0]) he = H + p->pad[0];
  if (we > W + p->pad[1]) we = W + p->pad[1];
  int64_t padded = (he - hs) * (we - ws);
  r.h0 = hs < 0 ? 0 : hs;
  r.w0 = ws < 0 ? 0 : ws;
  r.h1 = he > H ? H : he;
  r.w1 = we > W ? W : we;
  int64_t inside = (r.h1 - r.h0) * (r.w1 - r.w0);
  if (r.h0 >= r.h1 || r.w0 >= r.w1) inside = 0;
  int64_t dv = p->count_include_pad ? padded : inside;
  r.div = dv > 0 && inside > 0 ? (float)dv : 0.0f; /* 0: an empty window gives 0 */
  return r;
}

/* y (P,Ho,Wo), x (P,H,W) */
static void avgpool_kernel(float *y, const float *x, int64_t P, int64_t H, int64_t W, int64_t Ho,
                           int64_t Wo, const md_pool_params *p) {
  int64_t work = P * Ho * Wo * p->kernel[0] * p->kernel[1];
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++) {
        win r = avg_window(oh, ow, H, W, p);
        float sum = 0;
        for (int64_t h = r.h0; h < r.h1; h++)
          for (int64_t w = r.w0; w < r.w1; w++) sum += xp[h * W + w];
        yp[oh * Wo + ow] = r.div > 0 ? sum / r.div : 0.0f;
      }
  }
}

/* the adjoint: gx (P,H,W) = sum over windows of gy/div; gy (P,Ho,Wo) */
static void avgpool_adj_kernel(float *gx, const float *gy, int64_t P, int64_t H, int64_t W,
                               int64_t Ho, int64_t Wo, const md_pool_params *p) {
  int64_t work = P * Ho * Wo * p->kernel[0] * p->kernel[1];
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    float *xp = gx + pl * H * W;
    const float *yp = gy + pl * Ho * Wo;
    memset(xp, 0, sizeof(float) * (size_t)(H * W));
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++) {
        win r = avg_window(oh, ow, H, W, p);
        if (r.div <= 0) continue;
        float v = yp[oh * Wo + ow] / r.div;
        for (int64_t h = r.h0; h < r.h1; h++)
          for (int64_t w = r.w0; w < r.w1; w++) xp[h * W + w] += v;
      }
  }
}

/* ip[0..9]: the parameters, ip[10..11]: H, W of the pooled input */
static md_status avgpool_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                            md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_avg_pool2d_bwd(g, n->ip[10], n->ip[11], params_get(n->ip));
  return gin[0] ? MD_OK : MD_ERR;
}
/* ip[0..9]: the parameters */
static md_status avgpool_adj_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                                md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_avg_pool2d(g, params_get(n->ip));
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_AVG_POOL2D = {"avg_pool2d", avgpool_bw};
static const md_opdef OP_AVG_POOL2D_BWD = {"avg_pool2d_bwd", avgpool_adj_bw};

md_tensor *md_avg_pool2d(const md_tensor *x, md_pool_params p) {
  static const char *op = "avg_pool2d";
  if (!x4_check(op, "x", x)) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho, Wo;
  if (!pool_check(op, p, 1, H, W, &Ho, &Wo)) return NULL;
  const int64_t os[4] = {N, C, Ho, Wo};
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *out = px ? md_new(4, os, MD_F32) : NULL;
  if (out) avgpool_kernel(out->data, px, N * C, H, W, Ho, Wo, &p);
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, &OP_AVG_POOL2D, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    params_put(nd->ip, &p);
    nd->ip[10] = H;
    nd->ip[11] = W;
  }
  return out;
}

md_tensor *md_avg_pool2d_bwd(const md_tensor *gy, int64_t H, int64_t W, md_pool_params p) {
  static const char *op = "avg_pool2d_bwd";
  if (!x4_check(op, "gy", gy)) return NULL;
  int64_t Ho, Wo;
  if (!pool_check(op, p, 1, H, W, &Ho, &Wo)) return NULL;
  if (gy->shape[2] != Ho || gy->shape[3] != Wo) {
    op_err(op, "gy is %s but pooling an input %lldx%lld gives %lldx%lld", md_shp(gy), (long long)H,
           (long long)W, (long long)Ho, (long long)Wo);
    return NULL;
  }
  const int64_t N = gy->shape[0], C = gy->shape[1], xs[4] = {N, C, H, W};
  md_tensor *tmp;
  const float *pg = md_cdata(gy, &tmp);
  md_tensor *out = pg ? md_new(4, xs, MD_F32) : NULL;
  if (out) avgpool_adj_kernel(out->data, pg, N * C, H, W, Ho, Wo, &p);
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, &OP_AVG_POOL2D_BWD, 1, (const md_tensor *const[]){gy}, &nd);
  if (out && nd) params_put(nd->ip, &p);
  return out;
}
/* }====================================================== */

/* {====================================================== adaptive pooling */
/* PyTorch's adaptive windows along one axis: [floor(i*in/o), ceil((i+1)*in/o)),
** never empty for o >= 1, overlapping when o does not divide in */
static int64_t ad_start(int64_t i, int64_t in, int64_t o) { return i * in / o; }
static int64_t ad_end(int64_t i, int64_t in, int64_t o) { return ((i + 1) * in + o - 1) / o; }

static int adaptive_check(const char *op, int64_t H, int64_t W, int64_t oh, int64_t ow) {
  if (oh < 1 || ow < 1) {
    op_err(op, "output size %lldx%lld must be positive", (long long)oh, (long long)ow);
    return 0;
  }
  if (H < 1 || W < 1) {
    op_err(op, "the input plane %lldx%lld is empty", (long long)H, (long long)W);
    return 0;
  }
  return 1;
}

/* y (P,oh,ow), x (P,H,W) */
static void adavg_kernel(float *y, const float *x, int64_t P, int64_t H, int64_t W, int64_t oh,
                         int64_t ow) {
  int64_t work = P * (H > oh ? H : oh) * (W > ow ? W : ow);
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * oh * ow;
    for (int64_t i = 0; i < oh; i++) {
      int64_t h0 = ad_start(i, H, oh), h1 = ad_end(i, H, oh);
      for (int64_t j = 0; j < ow; j++) {
        int64_t w0 = ad_start(j, W, ow), w1 = ad_end(j, W, ow);
        float sum = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) sum += xp[h * W + w];
        yp[i * ow + j] = sum / (float)((h1 - h0) * (w1 - w0));
      }
    }
  }
}

/* the adjoint: gx (P,H,W), gy (P,oh,ow) */
static void adavg_adj_kernel(float *gx, const float *gy, int64_t P, int64_t H, int64_t W,
                             int64_t oh, int64_t ow) {
  int64_t work = P * (H > oh ? H : oh) * (W > ow ? W : ow);
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    float *xp = gx + pl * H * W;
    const float *yp = gy + pl * oh * ow;
    memset(xp, 0, sizeof(float) * (size_t)(H * W));
    for (int64_t i = 0; i < oh; i++) {
      int64_t h0 = ad_start(i, H, oh), h1 = ad_end(i, H, oh);
      for (int64_t j = 0; j < ow; j++) {
        int64_t w0 = ad_start(j, W, ow), w1 = ad_end(j, W, ow);
        float v = yp[i * ow + j] / (float)((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) xp[h * W + w] += v;
      }
    }
  }
}

/* ip[0..1]: H, W of the input */
static md_status adavg_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_adaptive_avg_pool2d_bwd(g, n->ip[0], n->ip[1]);
  return gin[0] ? MD_OK : MD_ERR;
}
/* ip[0..1]: oh, ow (gy's plane) */
static md_status adavg_adj_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                              md_scope *s) {
  if (!need[0]) return MD_OK;
  gin[0] = md_adaptive_avg_pool2d(g, n->ip[0], n->ip[1]);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_ADAPTIVE_AVG_POOL2D = {"adaptive_avg_pool2d", adavg_bw};
static const md_opdef OP_ADAPTIVE_AVG_POOL2D_BWD = {"adaptive_avg_pool2d_bwd", adavg_adj_bw};

md_tensor *md_adaptive_avg_pool2d(const md_tensor *x, int64_t oh, int64_t ow) {
  static const char *op = "adaptive_avg_pool2d";
  if (!x4_check(op, "x", x)) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (!adaptive_check(op, H, W, oh, ow)) return NULL;
  const int64_t os[4] = {N, C, oh, ow};
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *out = px ? md_new(4, os, MD_F32) : NULL;
  if (out) adavg_kernel(out->data, px, N * C, H, W, oh, ow);
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, &OP_ADAPTIVE_AVG_POOL2D, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = H;
    nd->ip[1] = W;
  }
  return out;
}

md_tensor *md_adaptive_avg_pool2d_bwd(const md_tensor *gy, int64_t H, int64_t W) {
  static const char *op = "adaptive_avg_pool2d_bwd";
  if (!x4_check(op, "gy", gy)) return NULL;
  const int64_t N = gy->shape[0], C = gy->shape[1], oh = gy->shape[2], ow = gy->shape[3];
  if (!adaptive_check(op, H, W, oh, ow)) return NULL;
  const int64_t xs[4] = {N, C, H, W};
  md_tensor *tmp;
  const float *pg = md_cdata(gy, &tmp);
  md_tensor *out = pg ? md_new(4, xs, MD_F32) : NULL;
  if (out) adavg_adj_kernel(out->data, pg, N * C, H, W, oh, ow);
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, &OP_ADAPTIVE_AVG_POOL2D_BWD, 1, (const md_tensor *const[]){gy}, &nd);
  if (out && nd) {
    nd->ip[0] = oh;
    nd->ip[1] = ow;
  }
  return out;
}

/* y, ix (P,oh,ow), x (P,H,W); NaN wins, as in PyTorch */
static void admax_kernel(float *y, int64_t *ix, const float *x, int64_t P, int64_t H, int64_t W,
                         int64_t oh, int64_t ow) {
  int64_t work = P * (H > oh ? H : oh) * (W > ow ? W : ow);
#pragma omp parallel for if (work >= MD_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < P; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * oh * ow;
    int64_t *ip = ix + pl * oh * ow;
    for (int64_t i = 0; i < oh; i++) {
      int64_t h0 = ad_start(i, H, oh), h1 = ad_end(i, H, oh);
      for (int64_t j = 0; j < ow; j++) {
        int64_t w0 = ad_start(j, W, ow), w1 = ad_end(j, W, ow);
        float m = -INFINITY;
        int64_t mi = h0 * W + w0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            float v = xp[h * W + w];
            if (v > m || isnan(v)) {
              m = v;
              mi = h * W + w;
            }
          }
        yp[i * ow + j] = m;
        ip[i * ow + j] = mi;
      }
    }
  }
}

md_tensor *md_adaptive_max_pool2d(const md_tensor *x, int64_t oh, int64_t ow, md_tensor **idx) {
  static const char *op = "adaptive_max_pool2d";
  if (idx) *idx = NULL;
  if (!x4_check(op, "x", x)) return NULL;
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (!adaptive_check(op, H, W, oh, ow)) return NULL;
  const int64_t os[4] = {N, C, oh, ow};
  md_tensor *tmp, *out = NULL, *ix = NULL;
  const float *px = md_cdata(x, &tmp);
  if (px) {
    out = md_new(4, os, MD_F32);
    ix = out ? md_new(4, os, MD_I64) : NULL;
  }
  if (out && ix) admax_kernel(out->data, ix->data, px, N * C, H, W, oh, ow);
  md_release(tmp);
  if (!ix) {
    md_release(out);
    return NULL;
  }
  return maxpool_finish(out, ix, &OP_ADAPTIVE_MAX_POOL2D, x, idx);
}
/* }====================================================== */
