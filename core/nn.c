/*
** nn.c -- normalisation, softmax and losses: batch_norm, softmax,
** log_softmax, nll_loss, cross_entropy, mse_loss, dropout.
**
** batch_norm and (log_)softmax have fused forward kernels (they run on every
** layer of every step).  Their backward formulas use public ops so that the
** gradient is itself differentiable; batch_norm also has a fused
** first-order backward for the common case (plain backward, no create_graph),
** where no graph is needed.  The losses and dropout are compositions of
** public ops, so all their derivatives come from those ops.
*/
#include "internal.h"

/* {====================================================== batch norm */

/* x (N,C,...) seen as (N,C,L): L is the product of the trailing dims */
static void bn_dims(const md_tensor *x, int64_t *N, int64_t *C, int64_t *L) {
  *N = x->shape[0];
  *C = x->shape[1];
  *L = md_shape_numel(x->ndim - 2, x->shape + 2);
}

/* the dims a batch statistic reduces ({0, 2, 3, ...}) and the keepdim shape
** of a statistic ({1, C, 1, ...}); returns the number of reduced dims */
static int bn_stat_dims(const md_tensor *x, int *dims, int64_t *shape) {
  int k = 0;
  for (int d = 0; d < x->ndim; d++) {
    shape[d] = d == 1 ? x->shape[1] : 1;
    if (d != 1) dims[k++] = d;
  }
  return k;
}

/* a per-channel argument: float, 1-d, C elements */
static int bn_check_vec(const char *arg, const md_tensor *v, const md_tensor *x, int64_t C) {
  if (!v) return 1;
  if (!md_check_f32("batch_norm", arg, v)) return 0;
  if (v->ndim != 1 || v->shape[0] != C) {
    md_err("batch_norm", "%s should be 1-d with %lld elements (one per channel of x %s), got shape %s",
           arg, (long long)C, md_shp(x), md_shp(v));
    return 0;
  }
  return 1;
}

static int bn_check(const md_tensor *x, const md_tensor *rm, const md_tensor *rv, const md_tensor *w,
                    const md_tensor *b, int training) {
  if (!md_check_f32("batch_norm", "x", x)) return 0;
  if (x->ndim < 2) {
    md_err("batch_norm", "x must be (N,C,...) with at least 2 dimensions, got shape %s", md_shp(x));
    return 0;
  }
  int64_t N, C, L;
  bn_dims(x, &N, &C, &L);
  if ((rm == NULL) != (rv == NULL)) {
    md_err("batch_norm", "running_mean and running_var must be given together (x %s)", md_shp(x));
    return 0;
  }
  if (!training && !rm) {
    md_err("batch_norm", "running_mean must be defined in evaluation mode (x %s)", md_shp(x));
    return 0;
  }
  if (!bn_check_vec("running_mean", rm, x, C) || !bn_check_vec("running_var", rv, x, C) ||
      !bn_check_vec("weight", w, x, C) || !bn_check_vec("bias", b, x, C))
    return 0;
  if (training && N * L == 1) {
    md_err("batch_norm", "Expected more than 1 value per channel when training, got input size %s",
           md_shp(x));
    return 0;
  }
  /* the running statistics are updated in place: a leaf that requires grad
  ** must not change under the graph (md_copy_'s rule) */
  if (training && rm && md_grad_enabled() && (md_requires_grad(rm) || md_requires_grad(rv))) {
    md_err("batch_norm", "the running statistics (shape %s) require grad and cannot be updated in "
           "place in training mode", md_shp(rm));
    return 0;
  }
  return 1;
}

/* mean, var (C): per-channel mean and biased variance of x (N,C,L), in
** double and in two passes (mean, then squared deviations) so a large mean
** does not cancel the variance away.  One thread per channel: a channel's
** values are N runs of L contiguous floats. */
static void bn_stats_kernel(double *mean, double *var, const float *x, int64_t N, int64_t C,
                            int64_t L) {
  double M = (double)(N * L);
#pragma omp parallel for schedule(static) if (N * C * L >= MD_PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; n++) {
      const float *p = x + (n * C + c) * L;
      for (int64_t l = 0; l < L; l++) s += p[l];
    }
    double m = M > 0 ? s / M : 0;
    for (int64_t n = 0; n < N; n++) {
      const float *p = x + (n * C + c) * L;
      for (int64_t l = 0; l < L; l++) {
        double d = p[l] - m;
        q += d * d;
      }
    }
    mean[c] = m;
    var[c] = M > 0 ? q / M : 0;
  }
}

/* y (N,C,L) = (x - mean)*rstd*w + b, folded per channel into y = x*a + k
** (a = rstd*w, k = b - mean*a, in double) as PyTorch's CPU kernel does;
** x (N,C,L), mean, rstd (C), w, b (C) or NULL */
static void bn_apply_kernel(float *y, const float *x, const float *mean, const float *rstd,
                            const float *w, const float *b, int64_t N, int64_t C, int64_t L) {
#pragma omp parallel for schedule(static) if (N * C * L >= MD_PAR_MIN)
  for (int64_t nc = 0; nc < N * C; nc++) {
    int64_t c = nc % C;
    double a = (double)rstd[c] * (w ? w[c] : 1.0);
    float fa = (float)a, fk = (float)((b ? b[c] : 0.0) - mean[c] * a);
    const float *p = x + nc * L;
    float *q = y + nc * L;
    for (int64_t l = 0; l < L; l++) q[l] = p[l] * fa + fk;
  }
}

/* first-order batch-norm backward in two passes per channel: sums of g and
** g*xhat, then gx = w*rstd*(g - mean(g) - xhat*mean(g*xhat)).
** gx (N,C,L) or NULL, gw, gb (C) or NULL; g, x (N,C,L); mean, rstd (C);
** w (C) or NULL */
static void bn_bwd_kernel(float *gx, float *gw, float *gb, const float *g, const float *x,
                          const float *mean, const float *rstd, const float *w, int64_t N,
                          int64_t C, int64_t L) {
  double M = (double)(N * L);
#pragma omp parallel for schedule(static) if (N * C * L >= MD_PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    double sg = 0, sgx = 0, m = mean[c], r = rstd[c];
    for (int64_t n = 0; n < N; n++) {
      const float *pg = g + (n * C + c) * L, *px = x + (n * C + c) * L;
      for (int64_t l = 0; l < L; l++) {
        sg += pg[l];
        sgx += pg[l] * (px[l] - m);
      }
    }
    sgx *= r; /* sum(g*xhat) */
    if (gw) gw[c] = (float)sgx;
    if (gb) gb[c] = (float)sg;
    if (!gx || M == 0) continue;
    double k = r * (w ? w[c] : 1.0), mg = sg / M, mgx = sgx / M;
    for (int64_t n = 0; n < N; n++) {
      const float *pg = g + (n * C + c) * L, *px = x + (n * C + c) * L;
      float *q = gx + (n * C + c) * L;
      for (int64_t l = 0; l < L; l++) q[l] = (float)(k * (pg[l] - mg - (px[l] - m) * r * mgx));
    }
  }
}

/* plain backward: the fused kernel with the statistics saved by the forward */
static md_status bn_bw_fused(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                             md_scope *s) {
  const md_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
  const md_tensor *mean = n->saved[0], *rstd = n->saved[1];
  int64_t N, C, L;
  bn_dims(x, &N, &C, &L);
  md_tensor *tg, *tx, *tw = NULL;
  const float *pg = md_cdata(g, &tg), *px = md_cdata(x, &tx), *pw = w ? md_cdata(w, &tw) : NULL;
  MD_S(s, tg);
  MD_S(s, tx);
  MD_S(s, tw);
  if (!pg || !px || (w && !pw)) return MD_ERR;
  if (need[0] && !(gin[0] = md_new_like(x))) return MD_ERR;
  if (need[1] && !(gin[1] = md_new_like(w))) return MD_ERR;
  if (need[2] && !(gin[2] = md_new_like(b))) return MD_ERR;
  bn_bwd_kernel(gin[0] ? gin[0]->data : NULL, gin[1] ? gin[1]->data : NULL,
                gin[2] ? gin[2]->data : NULL, pg, px, mean->data, rstd->data, pw, N, C, L);
  return MD_OK;
}

/* create_graph: the same formula with public ops, recomputing the batch
** statistics from x so that second derivatives flow through x and w */
static md_status bn_bw_composed(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                                md_scope *s) {
  const md_tensor *x = n->in[0], *w = n->in[1];
  int dims[MD_MAX_DIMS];
  int64_t sh[MD_MAX_DIMS];
  int nr = bn_stat_dims(x, dims, sh);
  md_tensor *mean = MD_S(s, md_mean(x, nr, dims, 1));
  md_tensor *xc = MD_S(s, md_sub(x, mean));
  md_tensor *var = MD_S(s, md_mean(MD_S(s, md_square(xc)), nr, dims, 1));
  md_tensor *rstd = MD_S(s, md_rsqrt(MD_S(s, md_add_scalar(var, n->fp[0]))));
  md_tensor *xhat = MD_S(s, md_mul(xc, rstd));
  md_tensor *gxh = MD_S(s, md_mul(g, xhat));
  if (need[2] && !(gin[2] = md_sum(g, nr, dims, 0))) return MD_ERR;
  if (need[1] && !(gin[1] = md_sum(gxh, nr, dims, 0))) return MD_ERR;
  if (need[0]) {
    md_tensor *mg = MD_S(s, md_mean(g, nr, dims, 1));
    md_tensor *mgx = MD_S(s, md_mean(gxh, nr, dims, 1));
    md_tensor *t = MD_S(s, md_sub(MD_S(s, md_sub(g, mg)), MD_S(s, md_mul(xhat, mgx))));
    md_tensor *k = w ? MD_S(s, md_mul(MD_S(s, md_reshape(w, x->ndim, sh)), rstd)) : rstd;
    if (!(gin[0] = md_mul(t, k))) return MD_ERR;
  }
  return MD_OK;
}

static md_status bn_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  return md_grad_enabled() ? bn_bw_composed(n, g, gin, need, s) : bn_bw_fused(n, g, gin, need, s);
}
static const md_opdef OP_BATCH_NORM = {"batch_norm", bn_bw};

/* eval mode with a graph: y = x*scale + shift, scale = w*rsqrt(rv + eps),
** shift = b - rm*scale, all public ops (differentiable in x, w, b and even
** the running statistics) */
static md_tensor *bn_eval_composed(const md_tensor *x, const md_tensor *rm, const md_tensor *rv,
                                   const md_tensor *w, const md_tensor *b, float eps) {
  md_scope s = {0};
  int dims[MD_MAX_DIMS];
  int64_t sh[MD_MAX_DIMS];
  bn_stat_dims(x, dims, sh);
  md_tensor *scale = MD_S(&s, md_rsqrt(MD_S(&s, md_add_scalar(rv, eps))));
  if (w) scale = MD_S(&s, md_mul(scale, w));
  md_tensor *ms = MD_S(&s, md_mul(rm, scale));
  md_tensor *shift = MD_S(&s, b ? md_sub(b, ms) : md_neg(ms));
  md_tensor *xs = MD_S(&s, md_mul(x, MD_S(&s, md_reshape(scale, x->ndim, sh))));
  md_tensor *y = md_add(xs, MD_S(&s, md_reshape(shift, x->ndim, sh)));
  if (s.failed) {
    md_release(y);
    y = NULL;
  }
  md_scope_free(&s);
  return y;
}

md_tensor *md_batch_norm(const md_tensor *x, md_tensor *running_mean, md_tensor *running_var,
                         const md_tensor *weight, const md_tensor *bias, int training, float momentum,
                         float eps) {
  if (!bn_check(x, running_mean, running_var, weight, bias, training)) return NULL;
  const md_tensor *rm = running_mean, *rv = running_var, *w = weight, *b = bias;
  if (!training && md_grad_enabled() &&
      (md_requires_grad(x) || md_requires_grad(w) || md_requires_grad(b) || md_requires_grad(rm) ||
       md_requires_grad(rv)))
    return bn_eval_composed(x, rm, rv, w, b, eps);

  int64_t N, C, L;
  bn_dims(x, &N, &C, &L);
  md_scope s = {0};
  md_tensor *tx, *tw = NULL, *tb = NULL;
  const float *px = md_cdata(x, &tx);
  const float *pw = w ? md_cdata(w, &tw) : NULL, *pb = b ? md_cdata(b, &tb) : NULL;
  MD_S(&s, tx);
  MD_S(&s, tw);
  MD_S(&s, tb);
  md_tensor *mean = MD_S(&s, md_new(1, &C, MD_F32)), *rstd = MD_S(&s, md_new(1, &C, MD_F32));
  md_tensor *out = md_new(x->ndim, x->shape, MD_F32);
  double *st = malloc(sizeof(double) * 2 * (size_t)(C > 0 ? C : 1));
  if (!px || (w && !pw) || (b && !pb) || !mean || !rstd || !out || !st) {
    if (!st) md_err("batch_norm", "out of memory (x %s)", md_shp(x));
    free(st);
    md_release(out);
    md_scope_free(&s);
    return NULL;
  }
  float *pm = mean->data, *pr = rstd->data;
  if (training) {
    double *bm = st, *bv = st + C;
    bn_stats_kernel(bm, bv, px, N, C, L);
    for (int64_t c = 0; c < C; c++) {
      pm[c] = (float)bm[c];
      pr[c] = (float)(1.0 / sqrt(bv[c] + eps));
    }
    /* running statistics: r = (1-m)*r + m*batch, with the unbiased
    ** variance; an empty batch leaves them alone (PyTorch) */
    if (rm && N * L > 0) {
      float *qm = rm->data, *qv = rv->data;
      double M = (double)(N * L), mo = momentum;
      for (int64_t c = 0; c < C; c++) {
        float *a = qm + c * rm->stride[0], *v = qv + c * rv->stride[0];
        *a = (float)(mo * bm[c] + (1 - mo) * *a);
        *v = (float)(mo * bv[c] * M / (M - 1) + (1 - mo) * *v);
      }
    }
  } else {
    /* eval without a graph: the same fused kernel on the running statistics */
    for (int64_t c = 0; c < C; c++) {
      pm[c] = ((const float *)rm->data)[c * rm->stride[0]];
      pr[c] = (float)(1.0 / sqrt((double)((const float *)rv->data)[c * rv->stride[0]] + eps));
    }
  }
  free(st);
  bn_apply_kernel(out->data, px, pm, pr, pw, pb, N, C, L);
  md_node *nd = NULL;
  if (training) {
    out = md_finish(out, &OP_BATCH_NORM, 3, (const md_tensor *const[]){x, w, b}, &nd);
    if (out && nd) {
      nd->fp[0] = eps;
      nd->saved[0] = md_retain(mean);
      nd->saved[1] = md_retain(rstd);
    }
  }
  md_scope_free(&s);
  return out;
}
/* }====================================================== */

/* {====================================================== softmax */

/* x seen as (outer, D, inner) around the softmax dim */
static void sm_dims(const md_tensor *x, int d, int64_t *outer, int64_t *D, int64_t *inner) {
  *outer = md_shape_numel(d, x->shape);
  *D = x->ndim ? x->shape[d] : 1;
  *inner = x->ndim ? md_shape_numel(x->ndim - d - 1, x->shape + d + 1) : 1;
}

#define SM_BLOCK 64 /* columns handled together when the softmax dim is strided */

/* y, x (outer, D, inner): softmax (or log_softmax) over D, stable: exp(x -
** max), sums in double.  inner == 1 (the last dim) walks contiguous rows;
** otherwise a block of SM_BLOCK neighbouring columns is done at once so
** every load is a contiguous run. */
static void softmax_kernel(float *y, const float *x, int64_t outer, int64_t D, int64_t inner,
                           int logsm) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * D >= MD_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
      const float *p = x + o * D;
      float *q = y + o * D;
      float m = -INFINITY;
      for (int64_t d = 0; d < D; d++) m = p[d] > m ? p[d] : m;
      double sum = 0;
      for (int64_t d = 0; d < D; d++) {
        float e = expf(p[d] - m);
        if (!logsm) q[d] = e;
        sum += e;
      }
      if (logsm) {
        float ls = (float)log(sum);
        for (int64_t d = 0; d < D; d++) q[d] = (p[d] - m) - ls;
      } else {
        float inv = (float)(1.0 / sum);
        for (int64_t d = 0; d < D; d++) q[d] *= inv;
      }
    }
    return;
  }
  int64_t nb = (inner + SM_BLOCK - 1) / SM_BLOCK;
#pragma omp parallel for schedule(static) if (outer * D * inner >= MD_PAR_MIN)
  for (int64_t t = 0; t < outer * nb; t++) {
    int64_t o = t / nb, i0 = t % nb * SM_BLOCK;
    int bw = (int)(inner - i0 < SM_BLOCK ? inner - i0 : SM_BLOCK);
    const float *p = x + o * D * inner + i0;
    float *q = y + o * D * inner + i0;
    float m[SM_BLOCK];
    double sum[SM_BLOCK];
    for (int i = 0; i < bw; i++) {
      m[i] = -INFINITY;
      sum[i] = 0;
    }
    for (int64_t d = 0; d < D; d++)
      for (int i = 0; i < bw; i++) m[i] = p[d * inner + i] > m[i] ? p[d * inner + i] : m[i];
    for (int64_t d = 0; d < D; d++)
      for (int i = 0; i < bw; i++) {
        float e = expf(p[d * inner + i] - m[i]);
        if (!logsm) q[d * inner + i] = e;
        sum[i] += e;
      }
    if (logsm) {
      float ls[SM_BLOCK];
      for (int i = 0; i < bw; i++) ls[i] = (float)log(sum[i]);
      for (int64_t d = 0; d < D; d++)
        for (int i = 0; i < bw; i++) q[d * inner + i] = (p[d * inner + i] - m[i]) - ls[i];
    } else {
      float inv[SM_BLOCK];
      for (int i = 0; i < bw; i++) inv[i] = (float)(1.0 / sum[i]);
      for (int64_t d = 0; d < D; d++)
        for (int i = 0; i < bw; i++) q[d * inner + i] *= inv[i];
    }
  }
}

/* softmax: gx = s*(g - sum(g*s, dim)), s recomputed from x by md_softmax so
** the formula is differentiable */
static md_status softmax_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                            md_scope *s) {
  int dim = (int)n->ip[0];
  md_tensor *sm = MD_S(s, md_softmax(n->in[0], dim));
  md_tensor *sg = MD_S(s, md_sum(MD_S(s, md_mul(g, sm)), 1, &dim, 1));
  gin[0] = md_mul(sm, MD_S(s, md_sub(g, sg)));
  return gin[0] ? MD_OK : MD_ERR;
}
/* log_softmax: gx = g - softmax(x)*sum(g, dim) */
static md_status log_softmax_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                                md_scope *s) {
  int dim = (int)n->ip[0];
  md_tensor *sm = MD_S(s, md_softmax(n->in[0], dim));
  md_tensor *sg = MD_S(s, md_sum(g, 1, &dim, 1));
  gin[0] = md_sub(g, MD_S(s, md_mul(sm, sg)));
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_SOFTMAX = {"softmax", softmax_bw};
static const md_opdef OP_LOG_SOFTMAX = {"log_softmax", log_softmax_bw};

static md_tensor *softmax_any(const char *op, const md_opdef *def, const md_tensor *x, int dim,
                              int logsm) {
  if (!md_check_f32(op, "x", x)) return NULL;
  int d = md_wrap_dim(op, dim, x->ndim);
  if (d < 0) return NULL;
  int64_t outer, D, inner;
  sm_dims(x, d, &outer, &D, &inner);
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *out = px ? md_new(x->ndim, x->shape, MD_F32) : NULL;
  if (out) softmax_kernel(out->data, px, outer, D, inner, logsm);
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, def, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) nd->ip[0] = d;
  return out;
}

md_tensor *md_softmax(const md_tensor *x, int dim) {
  return softmax_any("softmax", &OP_SOFTMAX, x, dim, 0);
}
md_tensor *md_log_softmax(const md_tensor *x, int dim) {
  return softmax_any("log_softmax", &OP_LOG_SOFTMAX, x, dim, 1);
}
/* }====================================================== */

/* {====================================================== losses */

static int check_reduction(const char *op, int reduction) {
  if (reduction < 0 || reduction > 2) {
    md_set_error("%s: reduction %d is not 0 (none), 1 (mean) or 2 (sum)", op, reduction);
    return 0;
  }
  return 1;
}

/* reduce a loss per element: none keeps it (new ref), mean or sum of all */
static md_tensor *reduce_loss(const md_tensor *l, int reduction) {
  if (!l) return NULL;
  if (reduction == 0) return md_retain((md_tensor *)l);
  return reduction == 1 ? md_mean(l, 0, NULL, 0) : md_sum(l, 0, NULL, 0);
}

/* logp (N,C) and target int64 (N) with every target in [0, C) */
static int nll_check(const char *op, const char *xname, const md_tensor *logp,
                     const md_tensor *target, int reduction) {
  if (!md_check_f32(op, xname, logp) || !md_check_i64(op, "target", target)) return 0;
  if (logp->ndim != 2) {
    md_set_error("%s: %s must be (N,C), got shape %s", op, xname, md_shp(logp));
    return 0;
  }
  if (target->ndim != 1 || target->shape[0] != logp->shape[0]) {
    md_set_error("%s: target must be (N) = (%lld) for %s %s, got shape %s", op,
           (long long)logp->shape[0], xname, md_shp(logp), md_shp(target));
    return 0;
  }
  if (!check_reduction(op, reduction)) return 0;
  const int64_t *pt = target->data;
  int64_t C = logp->shape[1];
  for (int64_t i = 0; i < target->shape[0]; i++) {
    int64_t t = pt[i * target->stride[0]];
    if (t < 0 || t >= C) {
      md_set_error("%s: Target %lld is out of bounds: target[%lld] = %lld is not in [0, %lld) (%s %s)",
             op, (long long)t, (long long)i, (long long)t, (long long)C, xname, md_shp(logp));
      return 0;
    }
  }
  return 1;
}

/* -logp[i, target[i]] by md_gather, then the reduction: differentiable to
** any order through gather <-> scatter_add */
static md_tensor *nll_compose(const md_tensor *logp, const md_tensor *target, int reduction) {
  int64_t N = logp->shape[0];
  md_scope s = {0};
  /* the (N,1) index gather wants, copied here so a strided target is fine */
  md_tensor *idx = MD_S(&s, md_new(2, (int64_t[]){N, 1}, MD_I64));
  if (idx) md_to_i64(target, idx->data);
  md_tensor *picked = MD_S(&s, md_gather(logp, 1, idx));
  md_tensor *l = MD_S(&s, md_neg(MD_S(&s, md_reshape(picked, 1, &N))));
  md_tensor *out = reduce_loss(l, reduction);
  if (s.failed) {
    md_release(out);
    out = NULL;
  }
  md_scope_free(&s);
  return out;
}

md_tensor *md_nll_loss(const md_tensor *logp, const md_tensor *target, int reduction) {
  if (!nll_check("nll_loss", "logp", logp, target, reduction)) return NULL;
  return nll_compose(logp, target, reduction);
}

md_tensor *md_cross_entropy(const md_tensor *logits, const md_tensor *target, int reduction) {
  if (!nll_check("cross_entropy", "logits", logits, target, reduction)) return NULL;
  md_tensor *ls = md_log_softmax(logits, 1);
  md_tensor *out = ls ? nll_compose(ls, target, reduction) : NULL;
  md_release(ls);
  return out;
}

md_tensor *md_mse_loss(const md_tensor *a, const md_tensor *b, int reduction) {
  if (!md_check_f32("mse_loss", "a", a) || !md_check_f32("mse_loss", "b", b)) return NULL;
  if (!check_reduction("mse_loss", reduction)) return NULL;
  int64_t shape[MD_MAX_DIMS];
  /* broadcasting is allowed, as in PyTorch; check here so the message names
  ** this op rather than sub */
  if (md_broadcast_shape("mse_loss", a, b, shape) < 0) return NULL;
  md_tensor *d = md_sub(a, b);
  md_tensor *sq = md_square(d);
  md_tensor *out = reduce_loss(sq, reduction);
  md_release(d);
  md_release(sq);
  return out;
}

/* training: x * mask with mask = bernoulli(1-p)/(1-p), a constant, so the
** gradient is g*mask through md_mul.  p == 0, eval mode or an empty x give
** x itself and draw no random numbers (PyTorch). */
md_tensor *md_dropout(const md_tensor *x, float p, int training) {
  if (!md_check_f32("dropout", "x", x)) return NULL;
  if (!(p >= 0.0f && p <= 1.0f)) {
    md_err("dropout", "probability has to be between 0 and 1, but got %g (x %s)", (double)p,
           md_shp(x));
    return NULL;
  }
  if (!training || p == 0.0f || md_numel(x) == 0) return md_retain((md_tensor *)x);
  md_tensor *mask = md_bernoulli(x->ndim, x->shape, 1.0f - p); /* p == 1: all zeros */
  if (!mask) return NULL;
  if (p < 1.0f) {
    float *m = mask->data, q = 1.0f - p;
    int64_t n = md_numel(mask);
    for (int64_t i = 0; i < n; i++) m[i] /= q;
  }
  md_tensor *out = md_mul(x, mask);
  md_release(mask);
  return out;
}
/* }====================================================== */
