/*
** shape.c -- views (reshape, permute, slice, detach) and the copying shape
** ops (contiguous, clone, pad, cat, split).
**
** Closed pairs: reshape <-> reshape, permute <-> permute (inverse),
** slice <-> pad_dim (zeros around), cat -> slices.
*/
#include "internal.h"

/* {====================================================== copies */
static md_tensor *copy_raw(const md_tensor *x) {
  md_tensor *out = md_new(x->ndim, x->shape, x->dtype);
  if (!out) return NULL;
  if (x->dtype == MD_F32)
    md_to_float(x, out->data);
  else
    md_to_i64(x, out->data);
  return out;
}

static md_status identity_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  gin[0] = md_retain(g);
  return MD_OK;
}
static const md_opdef OP_CONTIGUOUS = {"contiguous", identity_bw}, OP_CLONE = {"clone", identity_bw};

md_tensor *md_contiguous(const md_tensor *x) {
  if (!x) return NULL;
  if (md_is_contiguous(x)) return md_retain((md_tensor *)x);
  return md_finish(copy_raw(x), &OP_CONTIGUOUS, 1, (const md_tensor *const[]){x}, NULL);
}
md_tensor *md_clone(const md_tensor *x) {
  if (!x) return NULL;
  return md_finish(copy_raw(x), &OP_CLONE, 1, (const md_tensor *const[]){x}, NULL);
}
md_tensor *md_detach(const md_tensor *x) {
  if (!x) return NULL;
  return md_view_raw(x, x->ndim, x->shape, x->stride, 0);
}
/* }====================================================== */

/* {====================================================== reshape */
static md_status reshape_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  gin[0] = md_reshape(g, x->ndim, x->shape);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_RESHAPE = {"reshape", reshape_bw};

md_tensor *md_reshape(const md_tensor *x, int ndim, const int64_t *shape) {
  if (!x) return NULL;
  if (ndim < 0 || ndim > MD_MAX_DIMS) {
    md_set_error("reshape: %d dimensions (at most %d)", ndim, MD_MAX_DIMS);
    return NULL;
  }
  int64_t sh[MD_MAX_DIMS], known = 1;
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    sh[i] = shape[i];
    if (shape[i] == -1) {
      if (infer >= 0) {
        md_set_error("reshape: only one dimension can be -1 in %s", md_shp_raw(ndim, shape));
        return NULL;
      }
      infer = i;
    } else if (shape[i] < 0) {
      md_set_error("reshape: invalid size %lld in %s", (long long)shape[i], md_shp_raw(ndim, shape));
      return NULL;
    } else
      known *= shape[i];
  }
  int64_t n = md_numel(x);
  if (infer >= 0) {
    if (known == 0 || n % known) {
      md_set_error("reshape: shape %s is invalid for input of shape %s (%lld elements)",
                   md_shp_raw(ndim, shape), md_shp(x), (long long)n);
      return NULL;
    }
    sh[infer] = n / known;
  } else if (known != n) {
    md_set_error("reshape: shape %s is invalid for input of shape %s (%lld elements)",
                 md_shp_raw(ndim, shape), md_shp(x), (long long)n);
    return NULL;
  }
  if (ndim == x->ndim && memcmp(sh, x->shape, sizeof(int64_t) * (size_t)ndim) == 0)
    return md_retain((md_tensor *)x);
  int64_t st[MD_MAX_DIMS];
  md_fill_strides(ndim, sh, st);
  md_tensor *out;
  if (md_is_contiguous(x))
    out = md_view_raw(x, ndim, sh, st, 0);
  else {
    md_tensor *c = copy_raw(x);
    out = c ? md_view_raw(c, ndim, sh, st, 0) : NULL;
    md_release(c);
  }
  return md_finish(out, &OP_RESHAPE, 1, (const md_tensor *const[]){x}, NULL);
}
md_tensor *md_reshape_to(const md_tensor *x, int ndim, const int64_t *shape) { return md_reshape(x, ndim, shape); }
md_tensor *md_reshape_as(const md_tensor *x, const md_tensor *like) {
  return like ? md_reshape(x, like->ndim, like->shape) : NULL;
}

md_tensor *md_flatten(const md_tensor *x, int start, int end) {
  if (!x) return NULL;
  int nd = x->ndim ? x->ndim : 1;
  int s = md_wrap_dim("flatten", start, nd), e = md_wrap_dim("flatten", end, nd);
  if (s < 0 || e < 0) return NULL;
  if (x->ndim == 0) return md_reshape(x, 1, (int64_t[]){1});
  if (s > e) {
    md_set_error("flatten: start_dim %d comes after end_dim %d", md_dim_show(start), md_dim_show(end));
    return NULL;
  }
  int64_t sh[MD_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (i <= s || i > e)
      sh[k++] = x->shape[i];
    else
      sh[k - 1] *= x->shape[i];
  }
  return md_reshape(x, k, sh);
}
/* }====================================================== */

/* {====================================================== permute */
static md_status permute_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  int inv[MD_MAX_DIMS];
  for (int i = 0; i < n->in[0]->ndim; i++) inv[n->ip[i]] = i;
  gin[0] = md_permute(g, inv);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_PERMUTE = {"permute", permute_bw};

md_tensor *md_permute(const md_tensor *x, const int *perm) {
  if (!x) return NULL;
  int seen[MD_MAX_DIMS] = {0}, p[MD_MAX_DIMS];
  int64_t sh[MD_MAX_DIMS], st[MD_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    int d = md_wrap_dim("permute", perm[i], x->ndim);
    if (d < 0) return NULL;
    if (seen[d]++) {
      md_set_error("permute: dim %d repeated in the permutation", md_dim_show(perm[i]));
      return NULL;
    }
    p[i] = d;
    sh[i] = x->shape[d];
    st[i] = x->stride[d];
  }
  md_node *nd;
  md_tensor *out = md_finish(md_view_raw(x, x->ndim, sh, st, 0), &OP_PERMUTE, 1,
                             (const md_tensor *const[]){x}, &nd);
  if (out && nd)
    for (int i = 0; i < x->ndim; i++) nd->ip[i] = p[i];
  return out;
}
md_tensor *md_transpose(const md_tensor *x, int d0, int d1) {
  if (!x) return NULL;
  int a = md_wrap_dim("transpose", d0, x->ndim), b = md_wrap_dim("transpose", d1, x->ndim);
  if (a < 0 || b < 0) return NULL;
  int p[MD_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) p[i] = i;
  p[a] = b;
  p[b] = a;
  return md_permute(x, p);
}
/* }====================================================== */

/* {====================================================== slice <-> pad */
static md_status slice_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  int d = (int)n->ip[0];
  int64_t start = n->ip[1], len = n->ip[2];
  gin[0] = md_pad_dim(g, d, start, x->shape[d] - start - len, 0.0f);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_SLICE = {"slice", slice_bw};

md_tensor *md_slice(const md_tensor *x, int dim, int64_t start, int64_t len) {
  if (!x) return NULL;
  int d = md_wrap_dim("slice", dim, x->ndim);
  if (d < 0) return NULL;
  if (start < 0 || len < 0 || start + len > x->shape[d]) {
    md_set_error("slice: [%lld, %lld) is out of range for dim %d of shape %s", (long long)start,
                 (long long)(start + len), md_dim_show(dim), md_shp(x));
    return NULL;
  }
  int64_t sh[MD_MAX_DIMS];
  memcpy(sh, x->shape, sizeof sh);
  sh[d] = len;
  md_node *nd;
  md_tensor *out = md_finish(md_view_raw(x, x->ndim, sh, x->stride, start * x->stride[d]), &OP_SLICE,
                             1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = d;
    nd->ip[1] = start;
    nd->ip[2] = len;
  }
  return out;
}

static md_status pad_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0];
  int d = (int)n->ip[0];
  gin[0] = md_slice(g, d, n->ip[1], x->shape[d]);
  return gin[0] ? MD_OK : MD_ERR;
}
static const md_opdef OP_PAD = {"pad", pad_bw};

/* copy x (any strides) into the region of out (contiguous) starting at off
** along dim d */
static void place(md_tensor *out, const md_tensor *x, int d, int64_t off) {
  md_tensor *v = md_view_raw(out, x->ndim, x->shape, out->stride, off * out->stride[d]);
  if (!v) return;
  /* write through the view: out is contiguous, v shares its storage */
  int64_t n = md_numel(x), idx[MD_MAX_DIMS] = {0};
  const float *px = x->data;
  float *pv = v->data;
  if (md_is_contiguous(x) && x->ndim > 0) {
    /* rows along the last dim are contiguous on both sides */
    int64_t L = x->shape[x->ndim - 1], rows = L ? n / L : 0;
#pragma omp parallel for if (n >= MD_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
      int64_t q = r, ov = 0;
      for (int i = x->ndim - 2; i >= 0; i--) {
        ov += (q % x->shape[i]) * v->stride[i];
        q /= x->shape[i];
      }
      memcpy(pv + ov, px + r * L, sizeof(float) * (size_t)L);
    }
  } else {
    for (int64_t k = 0; k < n; k++) {
      int64_t ox = 0, ov = 0;
      for (int i = 0; i < x->ndim; i++) {
        ox += idx[i] * x->stride[i];
        ov += idx[i] * v->stride[i];
      }
      pv[ov] = px[ox];
      for (int i = x->ndim - 1; i >= 0; i--) {
        if (++idx[i] < x->shape[i]) break;
        idx[i] = 0;
      }
    }
  }
  md_release(v);
}

md_tensor *md_pad_dim(const md_tensor *x, int dim, int64_t before, int64_t after, float value) {
  if (!md_check_f32("pad", "x", x)) return NULL;
  int d = md_wrap_dim("pad", dim, x->ndim);
  if (d < 0) return NULL;
  if (before < 0 || after < 0) {
    md_set_error("pad: negative padding (%lld, %lld) on dim %d of shape %s", (long long)before,
                 (long long)after, md_dim_show(dim), md_shp(x));
    return NULL;
  }
  int64_t sh[MD_MAX_DIMS];
  memcpy(sh, x->shape, sizeof sh);
  sh[d] += before + after;
  md_tensor *out = md_full(x->ndim, sh, value);
  if (!out) return NULL;
  place(out, x, d, before);
  md_node *nd;
  out = md_finish(out, &OP_PAD, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = d;
    nd->ip[1] = before;
  }
  return out;
}

md_tensor *md_pad2d(const md_tensor *x, int64_t left, int64_t right, int64_t top, int64_t bottom,
                    float value) {
  if (!md_check_f32("pad2d", "x", x)) return NULL;
  if (x->ndim < 2) {
    md_set_error("pad2d: input must have at least 2 dimensions, got shape %s", md_shp(x));
    return NULL;
  }
  md_tensor *a = md_pad_dim(x, -1, left, right, value);
  md_tensor *b = md_pad_dim(a, -2, top, bottom, value);
  md_release(a);
  return b;
}
/* }====================================================== */

/* {====================================================== cat, split */
static md_status cat_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  int d = (int)n->ip[0];
  int64_t off = 0;
  for (int i = 0; i < n->n_in; i++) {
    int64_t len = n->in[i]->shape[d];
    if (need[i] && !(gin[i] = md_slice(g, d, off, len))) return MD_ERR;
    off += len;
  }
  return MD_OK;
}
static const md_opdef OP_CAT = {"cat", cat_bw};

md_tensor *md_cat(int n, md_tensor *const *xs, int dim) {
  if (n < 1) {
    md_set_error("cat: no tensors given");
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (!md_check_f32("cat", "tensors", xs[i])) return NULL;
  const md_tensor *x0 = xs[0];
  int d = md_wrap_dim("cat", dim, x0->ndim);
  if (d < 0) return NULL;
  int64_t sh[MD_MAX_DIMS];
  memcpy(sh, x0->shape, sizeof sh);
  sh[d] = 0;
  for (int i = 0; i < n; i++) {
    const md_tensor *x = xs[i];
    int ok = x->ndim == x0->ndim;
    for (int j = 0; ok && j < x->ndim; j++) ok = j == d || x->shape[j] == x0->shape[j];
    if (!ok) {
      md_set_error("cat: tensor %d has shape %s but tensor 1 has shape %s (only dim %d may differ)",
                   i + 1, md_shp(x), md_shp(x0), md_dim_show(dim));
      return NULL;
    }
    sh[d] += x->shape[d];
  }
  md_tensor *out = md_new(x0->ndim, sh, MD_F32);
  if (!out) return NULL;
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    place(out, xs[i], d, off);
    off += xs[i]->shape[d];
  }
  md_node *nd;
  out = md_finish(out, &OP_CAT, n, (const md_tensor *const *)xs, &nd);
  if (out && nd) nd->ip[0] = d;
  return out;
}

int md_split(const md_tensor *x, int dim, int n, const int64_t *sizes, md_tensor **out) {
  for (int i = 0; i < n; i++) out[i] = NULL;
  if (!x) return MD_ERR;
  int d = md_wrap_dim("split", dim, x->ndim);
  if (d < 0) return MD_ERR;
  int64_t tot = 0;
  for (int i = 0; i < n; i++) {
    if (sizes[i] < 0) {
      md_set_error("split: negative size %lld", (long long)sizes[i]);
      return MD_ERR;
    }
    tot += sizes[i];
  }
  if (tot != x->shape[d]) {
    md_set_error("split: sizes add up to %lld but dim %d of shape %s has %lld", (long long)tot, md_dim_show(dim),
                 md_shp(x), (long long)x->shape[d]);
    return MD_ERR;
  }
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    out[i] = md_slice(x, d, off, sizes[i]);
    if (!out[i]) {
      for (int j = 0; j < i; j++) {
        md_release(out[j]);
        out[j] = NULL;
      }
      return MD_ERR;
    }
    off += sizes[i];
  }
  return MD_OK;
}

/* torch.chunk: pieces of ceil(size/n); returns the number made (<= n) or
** MD_ERR */
int md_chunk(const md_tensor *x, int dim, int n, md_tensor **out) {
  if (!x) return MD_ERR;
  if (n < 1) {
    md_set_error("chunk: number of chunks must be positive, got %d", n);
    return MD_ERR;
  }
  int d = md_wrap_dim("chunk", dim, x->ndim);
  if (d < 0) return MD_ERR;
  int64_t size = x->shape[d], step = (size + n - 1) / n;
  int64_t sizes[256];
  int k = 0;
  if (step == 0) step = 1;
  for (int64_t off = 0; off < size && k < 256; off += step) sizes[k++] = off + step <= size ? step : size - off;
  if (k > n) k = n;
  return md_split(x, d, k, sizes, out) == MD_OK ? k : MD_ERR;
}
/* }====================================================== */
