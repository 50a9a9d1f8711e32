/*
** linalg.c -- matrix products on BLIS: matmul (2-d and batched 3-d) and
** linear (x w^T + b).  Views are handed to sgemm through their strides, so a
** transposed operand costs no copy; only a matrix with no unit stride (or an
** expanded, overlapping one) is copied first.  The backward formulas are
** matmuls of transposed views, so they are differentiable themselves.
*/
#include "internal.h"

/* {====================================================== operands */

/* a matrix operand: data, BLIS row/column strides, stride between batches */
typedef struct operand {
  const float *p;
  int64_t rs, cs, bs;
  md_tensor *copy; /* contiguous copy when the strides were unusable */
} operand;

/* strides that BLIS can read for the (m x n) matrix with strides (s0, s1):
** one of them must be 1 and the other must step over a whole row/column
** (a size-1 dim's stride is arbitrary, so it is replaced) */
static int blis_strides(int64_t m, int64_t n, int64_t s0, int64_t s1, int64_t *rs, int64_t *cs) {
  if ((n <= 1 || s1 == 1) && (m <= 1 || s0 >= (n > 1 ? n : 1))) { /* row-major */
    *rs = m <= 1 ? (n > 1 ? n : 1) : s0;
    *cs = 1;
    return 1;
  }
  if ((m <= 1 || s0 == 1) && (n <= 1 || s1 >= (m > 1 ? m : 1))) { /* column-major */
    *rs = 1;
    *cs = n <= 1 ? (m > 1 ? m : 1) : s1;
    return 1;
  }
  return 0;
}

/* the last two dims of t as a (batch of) matrices, transposed if trans */
static int get_operand(operand *o, const md_tensor *t, int trans) {
  int d = t->ndim;
  int64_t m = t->shape[d - 2], n = t->shape[d - 1];
  o->copy = NULL;
  o->p = t->data;
  o->bs = d == 3 && t->shape[0] > 1 ? t->stride[0] : 0;
  if (!blis_strides(m, n, t->stride[d - 2], t->stride[d - 1], &o->rs, &o->cs)) {
    const float *p = md_cdata(t, &o->copy); /* no unit stride: BLIS would go element by element */
    if (!p) return 0;
    o->p = p;
    o->bs = d == 3 && t->shape[0] > 1 ? m * n : 0;
    blis_strides(m, n, n, 1, &o->rs, &o->cs);
  }
  if (trans) {
    int64_t r = o->rs;
    o->rs = o->cs;
    o->cs = r;
  }
  return 1;
}
/* }====================================================== */

/* {====================================================== matmul */

/* sum g over the batch dim when the operand had none (2-d) or size 1 */
static md_tensor *unbatch(md_tensor *g, const md_tensor *like, md_scope *s) {
  if (!g || md_same_shape(g, like)) return g;
  return md_sum(MD_S(s, g), 1, (const int[]){0}, like->ndim == 3);
}

/* c = a b:  ga = g b^T,  gb = a^T g, summed over a broadcast batch */
static md_status matmul_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *a = n->in[0], *b = n->in[1];
  if (need[0] && !(gin[0] = unbatch(md_matmul(g, MD_S(s, md_transpose(b, -1, -2))), a, s)))
    return MD_ERR;
  if (need[1] && !(gin[1] = unbatch(md_matmul(MD_S(s, md_transpose(a, -1, -2)), g), b, s)))
    return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_MATMUL = {"matmul", matmul_bw};

md_tensor *md_matmul(const md_tensor *a, const md_tensor *b) {
  if (!md_check_f32("matmul", "a", a) || !md_check_f32("matmul", "b", b)) return NULL;
  if (a->ndim < 2 || a->ndim > 3 || b->ndim < 2 || b->ndim > 3) {
    md_err("matmul", "expected 2-d [m,k] or batched 3-d [b,m,k] operands, got a %s and b %s",
           md_shp(a), md_shp(b));
    return NULL;
  }
  int da = a->ndim, db = b->ndim;
  int64_t m = a->shape[da - 2], k = a->shape[da - 1], n = b->shape[db - 1];
  if (b->shape[db - 2] != k) {
    md_err("matmul", "a %s and b %s: inner dimensions differ (%lld vs %lld)", md_shp(a), md_shp(b),
           (long long)k, (long long)b->shape[db - 2]);
    return NULL;
  }
  int64_t ba = da == 3 ? a->shape[0] : 1, bb = db == 3 ? b->shape[0] : 1;
  if (ba != bb && ba != 1 && bb != 1) {
    md_err("matmul", "a %s and b %s: batch sizes %lld and %lld differ", md_shp(a), md_shp(b),
           (long long)ba, (long long)bb);
    return NULL;
  }
  int64_t B = ba > bb ? ba : bb;
  int on = da == 3 || db == 3 ? 3 : 2;
  md_tensor *out = on == 3 ? md_new(3, (const int64_t[]){B, m, n}, MD_F32)
                           : md_new(2, (const int64_t[]){m, n}, MD_F32);
  operand oa = {0}, ob = {0};
  if (out && get_operand(&oa, a, 0) && get_operand(&ob, b, 0)) {
    float *pc = out->data;
    for (int64_t i = 0; i < B; i++)
      md_sgemm(0, 0, m, n, k, 1.0f, oa.p + i * oa.bs, oa.rs, oa.cs, ob.p + i * ob.bs, ob.rs, ob.cs,
               0.0f, pc + i * m * n, n > 1 ? n : 1, 1);
  } else {
    md_release(out);
    out = NULL;
  }
  md_release(oa.copy);
  md_release(ob.copy);
  return md_finish(out, &OP_MATMUL, 2, (const md_tensor *const[]){a, b}, NULL);
}
/* }====================================================== */

/* {====================================================== linear */

/* y = x w^T + b:  gx = g w,  gw = g^T x,  gb = sum of g over the batch */
static md_status linear_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  if (need[0] && !(gin[0] = md_matmul(g, n->in[1]))) return MD_ERR;
  if (need[1] && !(gin[1] = md_matmul(MD_S(s, md_transpose(g, 0, 1)), n->in[0]))) return MD_ERR;
  if (need[2] && !(gin[2] = md_sum(g, 1, (const int[]){0}, 0))) return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_LINEAR = {"linear", linear_bw};

md_tensor *md_linear(const md_tensor *x, const md_tensor *w, const md_tensor *b) {
  if (!md_check_f32("linear", "x", x) || !md_check_f32("linear", "w", w)) return NULL;
  if (b && !md_check_f32("linear", "b", b)) return NULL;
  if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1]) {
    md_err("linear", "expected x [N,in] and w [out,in], got x %s and w %s", md_shp(x), md_shp(w));
    return NULL;
  }
  int64_t N = x->shape[0], in = x->shape[1], nout = w->shape[0];
  if (b && (b->ndim != 1 || b->shape[0] != nout)) {
    md_err("linear", "bias b %s must be a vector of the %lld outputs of w %s", md_shp(b),
           (long long)nout, md_shp(w));
    return NULL;
  }
  md_tensor *out = md_new(2, (const int64_t[]){N, nout}, MD_F32);
  md_tensor *tb = NULL;
  const float *pb = b && out ? md_cdata(b, &tb) : NULL;
  operand ox = {0}, ow = {0}; /* w^T is w read with its strides swapped */
  if (out && (pb || !b) && get_operand(&ox, x, 0) && get_operand(&ow, w, 1)) {
    float *pc = out->data;
    if (pb) /* bias first, the GEMM adds to it */
      for (int64_t i = 0; i < N; i++) memcpy(pc + i * nout, pb, sizeof(float) * (size_t)nout);
    md_sgemm(0, 0, N, nout, in, 1.0f, ox.p, ox.rs, ox.cs, ow.p, ow.rs, ow.cs, pb ? 1.0f : 0.0f, pc,
             nout > 1 ? nout : 1, 1);
  } else {
    md_release(out);
    out = NULL;
  }
  md_release(tb);
  md_release(ox.copy);
  md_release(ow.copy);
  return md_finish(out, &OP_LINEAR, 3, (const md_tensor *const[]){x, w, b}, NULL);
}
/* }====================================================== */
