/*
** index.c -- gather / scatter_add along a dim (torch semantics), and
** index_select / index_add.  The pairs are each other's derivative, which is
** what makes max pooling (scatter by argmax) twice differentiable.
*/
#include "internal.h"

/* {====================================================== checks */
static int check_index(const char *op, const md_tensor *idx, int64_t limit, const char *what) {
  int64_t n = md_numel(idx);
  md_tensor *tmp = NULL;
  const int64_t *p = idx->data;
  if (!md_is_contiguous(idx)) {
    tmp = md_new(idx->ndim, idx->shape, MD_I64);
    if (!tmp) return 0;
    md_to_i64(idx, tmp->data);
    p = tmp->data;
  }
  for (int64_t i = 0; i < n; i++)
    if (p[i] < 0 || p[i] >= limit) {
      md_set_error("%s: index %lld at position %lld is out of range for %s of size %lld", op,
                   (long long)p[i], (long long)i, what, (long long)limit);
      md_release(tmp);
      return 0;
    }
  md_release(tmp);
  return 1;
}

/* gather/scatter: idx has x's rank and idx.shape[d] <= x.shape[d] off dim */
static int check_gs(const char *op, int nd, const int64_t *xshape, int dim, const md_tensor *idx) {
  if (idx->ndim != nd) {
    md_set_error("%s: index of shape %s must have the same number of dimensions as the data (%s)",
                 op, md_shp(idx), md_shp_raw(nd, xshape));
    return 0;
  }
  for (int i = 0; i < nd; i++)
    if (i != dim && idx->shape[i] > xshape[i]) {
      md_set_error("%s: index of shape %s is larger than the data (%s) in dim %d", op, md_shp(idx),
                   md_shp_raw(nd, xshape), md_dim_show(i));
      return 0;
    }
  return check_index(op, idx, nd ? xshape[dim] : 1, "the indexed dim");
}

/* element offsets of an idx-shaped walk over a strided tensor; calls body
** per element with the flat idx position k and the data offset off (dim d
** excluded) */
#define WALK(idx, st, body)                                                                       \
  do {                                                                                            \
    int64_t n_ = md_numel(idx), c_[MD_MAX_DIMS] = {0};                                           \
    for (int64_t k = 0; k < n_; k++) {                                                            \
      int64_t off = 0;                                                                            \
      for (int i_ = 0; i_ < (idx)->ndim; i_++)                                                    \
        if (i_ != d) off += c_[i_] * (st)[i_];                                                    \
      body;                                                                                       \
      for (int i_ = (idx)->ndim - 1; i_ >= 0; i_--) {                                             \
        if (++c_[i_] < (idx)->shape[i_]) break;                                                   \
        c_[i_] = 0;                                                                               \
      }                                                                                           \
    }                                                                                             \
  } while (0)
/* }====================================================== */

/* {====================================================== gather, scatter_add */
static md_status gather_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  gin[0] = md_scatter_add(x->ndim, x->shape, (int)n->ip[0], n->saved[0], g);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_GATHER = {"gather", gather_bw};

md_tensor *md_gather(const md_tensor *x, int dim, const md_tensor *idx) {
  if (!md_check_f32("gather", "x", x) || !md_check_i64("gather", "index", idx)) return NULL;
  int d = md_wrap_dim("gather", dim, x->ndim);
  if (d < 0 || !check_gs("gather", x->ndim, x->shape, d, idx)) return NULL;
  md_tensor *ic = md_contiguous(idx);
  md_tensor *out = ic ? md_new(idx->ndim, idx->shape, MD_F32) : NULL;
  if (out) {
    const int64_t *pi = ic->data;
    const float *px = x->data;
    float *po = out->data;
    int64_t sd = x->ndim ? x->stride[d] : 0;
    WALK(ic, x->stride, po[k] = px[off + pi[k] * sd]);
  }
  md_node *nd;
  out = md_finish(out, &OP_GATHER, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = d;
    nd->saved[0] = md_retain(ic);
  }
  md_release(ic);
  return out;
}

static md_status scatter_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  gin[0] = md_gather(g, (int)n->ip[0], n->saved[0]);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_SCATTER = {"scatter_add", scatter_bw};

md_tensor *md_scatter_add(int ndim, const int64_t *shape, int dim, const md_tensor *idx,
                          const md_tensor *src) {
  if (!md_check_i64("scatter_add", "index", idx) || !md_check_f32("scatter_add", "src", src)) return NULL;
  int d = md_wrap_dim("scatter_add", dim, ndim);
  if (d < 0 || !check_gs("scatter_add", ndim, shape, d, idx)) return NULL;
  if (!md_same_shape(idx, src)) {
    md_set_error("scatter_add: index of shape %s and src of shape %s must match", md_shp(idx),
                 md_shp(src));
    return NULL;
  }
  md_tensor *ic = md_contiguous(idx), *sc = md_contiguous(src);
  md_tensor *out = ic && sc ? md_zeros(ndim, shape) : NULL;
  if (out) {
    const int64_t *pi = ic->data;
    const float *ps = sc->data;
    float *po = out->data;
    int64_t sd = ndim ? out->stride[d] : 0;
    if (d == ndim - 1 && ndim > 0) {
      /* rows are independent: parallel without races */
      int64_t L = idx->shape[d], rows = L ? md_numel(idx) / L : 0;
#pragma omp parallel for if (rows * L >= MD_PAR_MIN)
      for (int64_t r = 0; r < rows; r++) {
        int64_t q = r, off = 0;
        for (int i = ndim - 2; i >= 0; i--) {
          off += (q % idx->shape[i]) * out->stride[i];
          q /= idx->shape[i];
        }
        for (int64_t j = 0; j < L; j++) po[off + pi[r * L + j]] += ps[r * L + j];
      }
    } else
      WALK(ic, out->stride, po[off + pi[k] * sd] += ps[k]);
  }
  md_node *nd;
  out = md_finish(out, &OP_SCATTER, 1, (const md_tensor *const[]){src}, &nd);
  if (out && nd) {
    nd->ip[0] = d;
    nd->saved[0] = md_retain(ic);
  }
  md_release(ic);
  md_release(sc);
  return out;
}
/* }====================================================== */

/* {====================================================== index_select, index_add */
static md_status isel_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  int d = (int)n->ip[0];
  gin[0] = md_index_add(x->shape[d], d, n->saved[0], g);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_ISEL = {"index_select", isel_bw};

static md_status iadd_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  gin[0] = md_index_select(g, (int)n->ip[0], n->saved[0]);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_IADD = {"index_add", iadd_bw};

static void oi_split(const int64_t *shape, int nd, int d, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < nd; i++) {
    if (i < d) *outer *= shape[i];
    if (i > d) *inner *= shape[i];
  }
}

md_tensor *md_index_select(const md_tensor *x, int dim, const md_tensor *idx) {
  if (!md_check_f32("index_select", "x", x) || !md_check_i64("index_select", "index", idx)) return NULL;
  if (idx->ndim != 1) {
    md_set_error("index_select: index must be 1-d, got shape %s", md_shp(idx));
    return NULL;
  }
  int d = md_wrap_dim("index_select", dim, x->ndim);
  if (d < 0 || x->ndim == 0 || !check_index("index_select", idx, x->shape[d], "the indexed dim"))
    return NULL;
  md_tensor *ic = md_contiguous(idx), *tmp;
  const float *px = ic ? md_cdata(x, &tmp) : NULL;
  if (!px) {
    md_release(ic);
    return NULL;
  }
  int64_t sh[MD_MAX_DIMS], outer, inner, L = idx->shape[0], D = x->shape[d];
  memcpy(sh, x->shape, sizeof sh);
  sh[d] = L;
  md_tensor *out = md_new(x->ndim, sh, MD_F32);
  if (out) {
    oi_split(x->shape, x->ndim, d, &outer, &inner);
    const int64_t *pi = ic->data;
    float *po = out->data;
#pragma omp parallel for if (outer * L * inner >= MD_PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
      for (int64_t l = 0; l < L; l++)
        memcpy(po + (o * L + l) * inner, px + (o * D + pi[l]) * inner, sizeof(float) * (size_t)inner);
  }
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, &OP_ISEL, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = d;
    nd->saved[0] = md_retain(ic);
  }
  md_release(ic);
  return out;
}

md_tensor *md_index_add(int64_t size, int dim, const md_tensor *idx, const md_tensor *src) {
  if (!md_check_f32("index_add", "src", src) || !md_check_i64("index_add", "index", idx)) return NULL;
  if (idx->ndim != 1) {
    md_set_error("index_add: index must be 1-d, got shape %s", md_shp(idx));
    return NULL;
  }
  int d = md_wrap_dim("index_add", dim, src->ndim);
  if (d < 0 || src->ndim == 0) return NULL;
  if (src->shape[d] != idx->shape[0]) {
    md_set_error("index_add: src of shape %s has %lld entries in dim %d but the index has %lld",
                 md_shp(src), (long long)src->shape[d], md_dim_show(dim), (long long)idx->shape[0]);
    return NULL;
  }
  if (size < 0 || !check_index("index_add", idx, size, "the output dim")) return NULL;
  md_tensor *ic = md_contiguous(idx), *tmp;
  const float *ps = ic ? md_cdata(src, &tmp) : NULL;
  if (!ps) {
    md_release(ic);
    return NULL;
  }
  int64_t sh[MD_MAX_DIMS], outer, inner, L = idx->shape[0];
  memcpy(sh, src->shape, sizeof sh);
  sh[d] = size;
  md_tensor *out = md_zeros(src->ndim, sh);
  if (out) {
    oi_split(src->shape, src->ndim, d, &outer, &inner);
    const int64_t *pi = ic->data;
    float *po = out->data;
#pragma omp parallel for if (outer * L * inner >= MD_PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
      for (int64_t l = 0; l < L; l++) {
        float *y = po + (o * size + pi[l]) * inner;
        const float *xs = ps + (o * L + l) * inner;
        for (int64_t i = 0; i < inner; i++) y[i] += xs[i];
      }
  }
  md_release(tmp);
  md_node *nd;
  out = md_finish(out, &OP_IADD, 1, (const md_tensor *const[]){src}, &nd);
  if (out && nd) {
    nd->ip[0] = d;
    nd->saved[0] = md_retain(ic);
  }
  md_release(ic);
  return out;
}

md_tensor *md_one_hot(const md_tensor *labels, int64_t n) {
  if (!md_check_i64("one_hot", "labels", labels)) return NULL;
  if (n < 1 || labels->ndim >= MD_MAX_DIMS) {
    md_set_error("one_hot: need a positive class count (got %lld) and fewer than %d dims", (long long)n,
                 MD_MAX_DIMS);
    return NULL;
  }
  if (!check_index("one_hot", labels, n, "the class count")) return NULL;
  int64_t sh[MD_MAX_DIMS];
  memcpy(sh, labels->shape, sizeof(int64_t) * (size_t)labels->ndim);
  sh[labels->ndim] = n;
  md_tensor *out = md_zeros(labels->ndim + 1, sh);
  if (!out) return NULL;
  int64_t m = md_numel(labels);
  float *po = out->data;
  for (int64_t i = 0; i < m; i++) po[i * n + (int64_t)md_get(labels, i)] = 1.0f;
  return out;
}
/* }====================================================== */
