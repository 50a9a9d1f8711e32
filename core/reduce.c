/*
** reduce.c -- sums over dims, sum_to/expand (the broadcast pair), mean,
** variance, max with indices, argmax, logsumexp.
**
** Closed under differentiation: sum -> expand, expand -> sum_to, sum_to ->
** expand, max -> scatter_add by the saved indices (index.c).
*/
#include "internal.h"

/* {====================================================== the sum kernel */
/* out = sum of contiguous x (shape[nd]) over the dims flagged in red[];
** out holds the kept dims in order.  Adjacent dims with the same flag are
** merged; then either the innermost group is reduced (sum contiguous runs)
** or kept (add whole rows), which covers BN's (0,2,3) and bias's (0) fast. */
static int sum_kernel(float *out, const float *x, int nd, const int64_t *shape, const int *red) {
  int64_t gs[MD_MAX_DIMS + 1], gst[MD_MAX_DIMS + 1];
  int gr[MD_MAX_DIMS + 1], ng = 0;
  for (int i = 0; i < nd; i++) {
    if (shape[i] == 1) continue;
    if (ng && gr[ng - 1] == red[i])
      gs[ng - 1] *= shape[i];
    else {
      gs[ng] = shape[i];
      gr[ng++] = red[i];
    }
  }
  int64_t total = md_shape_numel(nd, shape);
  if (ng == 0) { /* a single element */
    out[0] = total ? x[0] : 0.0f;
    return MD_OK;
  }
  int64_t st = 1;
  for (int i = ng - 1; i >= 0; i--) {
    gst[i] = st;
    st *= gs[i];
  }
  int last_red = gr[ng - 1];
  int64_t L = gs[ng - 1];
  /* offsets of every combination of the reduced groups (all but the last
  ** group, which is handled by the inner loop) */
  int64_t nro = 1, nko = 1;
  for (int i = 0; i < ng - 1; i++) {
    if (gr[i]) nro *= gs[i];
    else nko *= gs[i];
  }
  int64_t *ro = malloc(sizeof(int64_t) * (size_t)nro);
  if (!ro) {
    md_set_error("sum: out of memory");
    return MD_ENOMEM;
  }
  for (int64_t r = 0; r < nro; r++) {
    int64_t off = 0, q = r;
    for (int i = ng - 2; i >= 0; i--)
      if (gr[i]) {
        off += (q % gs[i]) * gst[i];
        q /= gs[i];
      }
    ro[r] = off;
  }
  if (last_red) {
    /* one output per kept combination: sum nro runs of length L */
    if (nko == 1) {
      /* NPART fixed parts (of the elements, or of the runs), summed in
      ** parallel and added in order: the same bits for any number of
      ** threads (an OpenMP reduction adds the threads' sums in the order
      ** they finish) */
      enum { NPART = 16 };
      double part[NPART];
      const int64_t n = nro == 1 ? L : nro;
#pragma omp parallel for schedule(static) if (total >= MD_PAR_MIN)
      for (int q = 0; q < NPART; q++) {
        const int64_t i0 = n * q / NPART, i1 = n * (q + 1) / NPART;
        double acc = 0;
        if (nro == 1) /* elements i0 .. i1-1 of the one run */
          for (int64_t i = i0; i < i1; i++) acc += x[ro[0] + i];
        else /* runs i0 .. i1-1 */
          for (int64_t i = i0; i < i1; i++) {
            const float *p = x + ro[i];
            float a = 0;
            for (int64_t j = 0; j < L; j++) a += p[j];
            acc += a;
          }
        part[q] = acc;
      }
      double acc = 0;
      for (int q = 0; q < NPART; q++) acc += part[q];
      out[0] = (float)acc;
    } else {
#pragma omp parallel for if (total >= MD_PAR_MIN) schedule(static)
      for (int64_t o = 0; o < nko; o++) {
        int64_t base = 0, q = o;
        for (int i = ng - 2; i >= 0; i--)
          if (!gr[i]) {
            base += (q % gs[i]) * gst[i];
            q /= gs[i];
          }
        double acc = 0;
        for (int64_t r = 0; r < nro; r++) {
          const float *p = x + base + ro[r];
          float a = 0; /* float partial per run vectorises; runs are short-ish */
          for (int64_t j = 0; j < L; j++) a += p[j];
          acc += a;
        }
        out[o] = (float)acc;
      }
    }
  } else {
    /* rows of L kept values: out row o = sum over reduced offsets */
#pragma omp parallel for if (total >= MD_PAR_MIN && nko > 1) schedule(static)
    for (int64_t o = 0; o < nko; o++) {
      int64_t base = 0, q = o;
      for (int i = ng - 2; i >= 0; i--)
        if (!gr[i]) {
          base += (q % gs[i]) * gst[i];
          q /= gs[i];
        }
      float *y = out + o * L;
      for (int64_t j = 0; j < L; j++) y[j] = 0;
      for (int64_t r = 0; r < nro; r++) {
        const float *p = x + base + ro[r];
        for (int64_t j = 0; j < L; j++) y[j] += p[j];
      }
    }
  }
  free(ro);
  return MD_OK;
}

/* parse dims into a flag array; n == 0 means all */
static int dim_flags(const char *op, const md_tensor *x, int n, const int *dims, int *red) {
  for (int i = 0; i < x->ndim; i++) red[i] = n == 0;
  for (int i = 0; i < n; i++) {
    int d = md_wrap_dim(op, dims[i], x->ndim);
    if (d < 0) return 0;
    if (x->ndim == 0) continue;
    if (red[d]) {
      md_set_error("%s: dim %d given twice", op, md_dim_show(dims[i]));
      return 0;
    }
    red[d] = 1;
  }
  return 1;
}

/* raw sum (no node): out shape keepdim-style or squeezed */
static md_tensor *sum_raw(const char *op, const md_tensor *x, const int *red, int keepdim) {
  int64_t shape[MD_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (red[i]) {
      if (keepdim) shape[k++] = 1;
    } else
      shape[k++] = x->shape[i];
  }
  md_tensor *out = md_new(k, shape, MD_F32);
  if (!out) return NULL;
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  if (!px || sum_kernel(out->data, px, x->ndim, x->shape, red) != MD_OK) {
    md_release(tmp);
    md_release(out);
    return NULL;
  }
  md_release(tmp);
  (void)op;
  return out;
}
/* }====================================================== */

/* {====================================================== sum, sum_to, expand */
static md_status sum_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  /* ip[0..ndim) holds the keepdim shape of the output */
  md_tensor *gk = MD_S(s, md_reshape(g, x->ndim, n->ip));
  gin[0] = md_expand(gk, x->ndim, x->shape);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_SUM = {"sum", sum_bw};

md_tensor *md_sum(const md_tensor *x, int n, const int *dims, int keepdim) {
  int red[MD_MAX_DIMS];
  if (!md_check_f32("sum", "x", x) || !dim_flags("sum", x, n, dims, red)) return NULL;
  md_node *nd;
  md_tensor *out = md_finish(sum_raw("sum", x, red, keepdim), &OP_SUM, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd)
    for (int i = 0; i < x->ndim; i++) nd->ip[i] = red[i] ? 1 : x->shape[i];
  return out;
}

static md_status sum_to_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  gin[0] = md_expand(g, x->ndim, x->shape);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_SUM_TO = {"sum_to", sum_to_bw};

md_tensor *md_sum_to(const md_tensor *x, int ndim, const int64_t *shape) {
  if (!md_check_f32("sum_to", "x", x)) return NULL;
  if (ndim == x->ndim) {
    int same = 1;
    for (int i = 0; i < ndim; i++) same &= shape[i] == x->shape[i];
    if (same) return md_retain((md_tensor *)x); /* nothing to reduce: no node needed */
  }
  int red[MD_MAX_DIMS], lead = x->ndim - ndim;
  if (lead < 0) goto bad;
  for (int i = 0; i < x->ndim; i++) {
    if (i < lead)
      red[i] = 1;
    else if (shape[i - lead] == x->shape[i])
      red[i] = 0;
    else if (shape[i - lead] == 1)
      red[i] = 1;
    else
      goto bad;
  }
  md_tensor *r = sum_raw("sum_to", x, red, 1);
  if (!r) return NULL;
  /* drop the leading dims: r is contiguous, so a view with the target shape */
  int64_t st[MD_MAX_DIMS];
  md_fill_strides(ndim, shape, st);
  md_tensor *out = md_view_raw(r, ndim, shape, st, 0);
  md_release(r);
  return md_finish(out, &OP_SUM_TO, 1, (const md_tensor *const[]){x}, NULL);
bad:
  md_set_error("sum_to: cannot reduce shape %s to %s", md_shp(x), md_shp_raw(ndim, shape));
  return NULL;
}

static md_status expand_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  gin[0] = md_sum_to(g, x->ndim, x->shape);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_EXPAND = {"expand", expand_bw};

md_tensor *md_expand(const md_tensor *x, int ndim, const int64_t *shape) {
  if (!x) return NULL;
  int lead = ndim - x->ndim;
  int64_t sh[MD_MAX_DIMS], st[MD_MAX_DIMS];
  if (lead < 0 || ndim > MD_MAX_DIMS) goto bad;
  for (int i = 0; i < ndim; i++) {
    int64_t want = shape[i];
    if (i < lead) {
      if (want < 0) goto bad;
      sh[i] = want;
      st[i] = 0;
      continue;
    }
    int64_t have = x->shape[i - lead];
    if (want == -1) want = have;
    if (want == have) {
      sh[i] = have;
      st[i] = x->stride[i - lead];
    } else if (have == 1) {
      sh[i] = want;
      st[i] = 0;
    } else
      goto bad;
  }
  if (ndim == x->ndim && memcmp(sh, x->shape, sizeof(int64_t) * (size_t)ndim) == 0)
    return md_retain((md_tensor *)x);
  md_tensor *out = md_view_raw(x, ndim, sh, st, 0);
  return md_finish(out, &OP_EXPAND, 1, (const md_tensor *const[]){x}, NULL);
bad:
  md_set_error("expand: shape %s cannot be expanded to %s", md_shp(x), md_shp_raw(ndim, shape));
  return NULL;
}
md_tensor *md_expand_to(const md_tensor *x, int ndim, const int64_t *shape) { return md_expand(x, ndim, shape); }
/* }====================================================== */

/* {====================================================== mean, var */
static int64_t reduced_count(const md_tensor *x, int n, const int *dims) {
  int red[MD_MAX_DIMS];
  if (!dim_flags("mean", x, n, dims, red)) return -1;
  int64_t c = 1;
  for (int i = 0; i < x->ndim; i++)
    if (red[i]) c *= x->shape[i];
  return c;
}
md_tensor *md_mean(const md_tensor *x, int n, const int *dims, int keepdim) {
  if (!md_check_f32("mean", "x", x)) return NULL;
  int64_t c = reduced_count(x, n, dims);
  if (c < 0) return NULL;
  md_tensor *s = md_sum(x, n, dims, keepdim);
  md_tensor *r = md_mul_scalar(s, c ? 1.0f / (float)c : NAN);
  md_release(s);
  return r;
}
md_tensor *md_var(const md_tensor *x, int n, const int *dims, int keepdim, int unbiased) {
  if (!md_check_f32("var", "x", x)) return NULL;
  int64_t c = reduced_count(x, n, dims);
  if (c < 0) return NULL;
  md_scope s = {0};
  md_tensor *m = MD_S(&s, md_mean(x, n, dims, 1));
  md_tensor *d = MD_S(&s, md_sub(x, m));
  md_tensor *ss = MD_S(&s, md_sum(MD_S(&s, md_square(d)), n, dims, keepdim));
  int64_t den = c - (unbiased ? 1 : 0);
  md_tensor *r = md_mul_scalar(ss, den > 0 ? 1.0f / (float)den : NAN);
  md_scope_free(&s);
  return r;
}
/* }====================================================== */

/* {====================================================== max, argmax */
/* x contiguous viewed as (outer, D, inner): values and indices over D */
static void max_kernel(float *val, int64_t *idx, const float *x, int64_t outer, int64_t D, int64_t inner) {
#pragma omp parallel for if (outer * D * inner >= MD_PAR_MIN) schedule(static)
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *p = x + o * D * inner + i;
      float best = p[0];
      int64_t bi = 0;
      for (int64_t d = 1; d < D; d++) {
        float v = p[d * inner];
        if (v > best || (isnan(v) && !isnan(best))) {
          best = v;
          bi = d;
        }
      }
      if (val) val[o * inner + i] = best;
      idx[o * inner + i] = bi;
    }
}

static md_status max_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0], *idx = n->saved[0]; /* idx has the keepdim shape */
  int dim = (int)n->ip[0];
  md_tensor *gk = MD_S(s, md_reshape(g, idx->ndim, idx->shape));
  gin[0] = md_scatter_add(x->ndim, x->shape, dim, idx, gk);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_MAX = {"max", max_bw};

static int max_common(const char *op, const md_tensor *x, int dim, int keepdim, int64_t *kshape,
                      int64_t *oshape, int *ond, int64_t *outer, int64_t *inner) {
  if (!md_check_f32(op, "x", x)) return -1;
  int d = md_wrap_dim(op, dim, x->ndim);
  if (d < 0) return -1;
  if (x->ndim == 0) {
    *ond = 0;
    *outer = *inner = 1;
    return 0;
  }
  if (x->shape[d] == 0) {
    md_set_error("%s: dim %d of shape %s is empty", op, md_dim_show(dim), md_shp(x));
    return -1;
  }
  *outer = 1;
  *inner = 1;
  int k = 0;
  for (int i = 0; i < x->ndim; i++) {
    kshape[i] = i == d ? 1 : x->shape[i];
    if (i < d) *outer *= x->shape[i];
    if (i > d) *inner *= x->shape[i];
    if (i != d || keepdim) oshape[k++] = kshape[i];
  }
  *ond = k;
  return d;
}

md_tensor *md_max(const md_tensor *x, int dim, int keepdim, md_tensor **pidx) {
  int64_t ks[MD_MAX_DIMS], os[MD_MAX_DIMS], outer, inner;
  int ond;
  if (pidx) *pidx = NULL;
  int d = max_common("max", x, dim, keepdim, ks, os, &ond, &outer, &inner);
  if (d < 0) return NULL;
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *val = md_new(ond, os, MD_F32), *idx = md_new(x->ndim, x->ndim ? ks : NULL, MD_I64);
  if (!px || !val || !idx) {
    md_release(tmp);
    md_release(val);
    md_release(idx);
    return NULL;
  }
  max_kernel(val->data, idx->data, px, outer, x->ndim ? x->shape[d] : 1, inner);
  md_release(tmp);
  md_node *nd;
  val = md_finish(val, &OP_MAX, 1, (const md_tensor *const[]){x}, &nd);
  if (val && nd) {
    nd->ip[0] = d;
    nd->saved[0] = md_retain(idx);
  }
  if (val && pidx) *pidx = keepdim ? md_retain(idx) : md_reshape(idx, ond, os);
  md_release(idx);
  return val;
}

md_tensor *md_argmax(const md_tensor *x, int dim, int keepdim) {
  int64_t ks[MD_MAX_DIMS], os[MD_MAX_DIMS], outer, inner;
  int ond;
  int d = max_common("argmax", x, dim, keepdim, ks, os, &ond, &outer, &inner);
  if (d < 0) return NULL;
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *idx = px ? md_new(ond, os, MD_I64) : NULL;
  if (idx) max_kernel(NULL, idx->data, px, outer, x->ndim ? x->shape[d] : 1, inner);
  md_release(tmp);
  return idx;
}

md_tensor *md_logsumexp(const md_tensor *x, int dim, int keepdim) {
  if (!md_check_f32("logsumexp", "x", x)) return NULL;
  md_scope s = {0};
  int old = md_set_grad_enabled(0); /* the shift is a constant: exact for any value */
  md_tensor *m = MD_S(&s, md_max(x, dim, 1, NULL));
  md_set_grad_enabled(old);
  md_tensor *r = NULL;
  if (m) {
    float *pm = m->data;
    int64_t n = md_numel(m);
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(pm[i])) pm[i] = 0; /* all -inf rows give -inf, not NaN */
    int d = dim;
    md_tensor *e = MD_S(&s, md_exp(MD_S(&s, md_sub(x, m))));
    md_tensor *l = MD_S(&s, md_log(MD_S(&s, md_sum(e, 1, &d, 1))));
    md_tensor *r1 = MD_S(&s, md_add(l, m));
    if (r1) {
      if (keepdim)
        r = md_retain(r1);
      else {
        int dd = md_wrap_dim("logsumexp", dim, x->ndim);
        int64_t sh[MD_MAX_DIMS];
        int k = 0;
        for (int i = 0; i < x->ndim; i++)
          if (i != dd) sh[k++] = x->shape[i];
        r = md_reshape(r1, k, sh);
      }
    }
  }
  md_scope_free(&s);
  return r;
}
/* }====================================================== */
