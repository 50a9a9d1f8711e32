/*
** elementwise.c -- broadcasting binary ops, unary math and activations,
** 0/1 masks, and the in-place helpers used by optimisers.
**
** Derivatives of kinked functions (relu, abs, clamp) multiply by a mask that
** is a constant (md_gt_scalar & co. never require grad), as PyTorch's
** threshold_backward: so the second derivative through the kink is zero and
** the first-order formula stays differentiable in g.
*/
#include "internal.h"

/* {====================================================== broadcasting */
int md_broadcast_shape(const char *op, const md_tensor *a, const md_tensor *b, int64_t *out) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      md_set_error("%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)", op, md_shp(a),
                   md_shp(b), md_dim_show(i), (long long)sa, (long long)sb);
      return -1;
    }
    out[i] = sa == 1 ? sb : sa;
  }
  return nd;
}

/* strides of x aligned to an nd-dim broadcast shape (0 on broadcast dims) */
static void bstrides(const md_tensor *x, int nd, const int64_t *shape, int64_t *st) {
  for (int i = 0; i < nd; i++) {
    int ix = x->ndim - nd + i;
    st[i] = (ix >= 0 && x->shape[ix] == shape[i] && shape[i] != 1) ? x->stride[ix] : 0;
  }
}

/* merge adjacent dims that are contiguous for every operand; returns ndim */
static int coalesce(int nd, int64_t *shape, int64_t *sa, int64_t *sb) {
  if (nd == 0) {
    shape[0] = 1;
    sa[0] = sb[0] = 0;
    return 1;
  }
  int k = 0;
  for (int i = 1; i < nd; i++) {
    if (shape[i] == 1) continue;
    if (shape[k] == 1) { /* drop a size-1 dim */
      shape[k] = shape[i];
      sa[k] = sa[i];
      sb[k] = sb[i];
      continue;
    }
    if (sa[k] == sa[i] * shape[i] && sb[k] == sb[i] * shape[i]) {
      shape[k] *= shape[i];
      sa[k] = sa[i];
      sb[k] = sb[i];
    } else {
      k++;
      shape[k] = shape[i];
      sa[k] = sa[i];
      sb[k] = sb[i];
    }
  }
  return k + 1;
}

typedef enum { B_ADD, B_SUB, B_MUL, B_DIV, B_EQ } binop;

static md_tensor *binary(const char *name, binop op, const md_tensor *a, const md_tensor *b) {
  if (!md_check_f32(name, "a", a) || !md_check_f32(name, "b", b)) return NULL;
  int64_t shape[MD_MAX_DIMS], sa[MD_MAX_DIMS], sb[MD_MAX_DIMS];
  int nd = md_broadcast_shape(name, a, b, shape);
  if (nd < 0) return NULL;
  md_tensor *out = md_new(nd, shape, MD_F32);
  if (!out) return NULL;
  bstrides(a, nd, shape, sa);
  bstrides(b, nd, shape, sb);
  int64_t cs[MD_MAX_DIMS + 1];
  memcpy(cs, shape, sizeof(int64_t) * (size_t)nd);
  int cd = coalesce(nd, cs, sa, sb);
  int64_t inner = cs[cd - 1], ia = sa[cd - 1], ib = sb[cd - 1];
  int64_t outer = md_numel(out) / (inner ? inner : 1);
  const float *pa = a->data, *pb = b->data;
  float *po = out->data;
  if (inner == 0) return out;
#pragma omp parallel for if (outer * inner >= MD_PAR_MIN && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    int64_t oa = 0, ob = 0, r = o;
    for (int d = cd - 2; d >= 0; d--) {
      int64_t i = r % cs[d];
      r /= cs[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    const float *xa = pa + oa, *xb = pb + ob;
    float *y = po + o * inner;
#define LOOP(expr)                                                                                 \
  if (ia == 1 && ib == 1)                                                                          \
    for (int64_t j = 0; j < inner; j++) {                                                          \
      float u = xa[j], v = xb[j];                                                                  \
      y[j] = expr;                                                                                 \
    }                                                                                              \
  else if (ia == 1 && ib == 0) {                                                                   \
    float v = xb[0];                                                                               \
    for (int64_t j = 0; j < inner; j++) {                                                          \
      float u = xa[j];                                                                             \
      y[j] = expr;                                                                                 \
    }                                                                                              \
  } else                                                                                           \
    for (int64_t j = 0; j < inner; j++) {                                                          \
      float u = xa[j * ia], v = xb[j * ib];                                                        \
      y[j] = expr;                                                                                 \
    }
    switch (op) {
    case B_ADD: LOOP(u + v) break;
    case B_SUB: LOOP(u - v) break;
    case B_MUL: LOOP(u * v) break;
    case B_DIV: LOOP(u / v) break;
    case B_EQ: LOOP(u == v ? 1.0f : 0.0f) break;
    }
#undef LOOP
  }
  return out;
}

static md_status add_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  (void)s;
  for (int i = 0; i < 2; i++)
    if (need[i] && !(gin[i] = md_sum_to(g, n->in[i]->ndim, n->in[i]->shape))) return MD_ERR;
  return MD_OK;
}
static md_status sub_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  if (need[0] && !(gin[0] = md_sum_to(g, n->in[0]->ndim, n->in[0]->shape))) return MD_ERR;
  if (need[1] && !(gin[1] = md_sum_to(MD_S(s, md_neg(g)), n->in[1]->ndim, n->in[1]->shape)))
    return MD_ERR;
  return MD_OK;
}
static md_status mul_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *a = n->in[0], *b = n->in[1];
  if (need[0] && !(gin[0] = md_sum_to(MD_S(s, md_mul(g, b)), a->ndim, a->shape))) return MD_ERR;
  if (need[1] && !(gin[1] = md_sum_to(MD_S(s, md_mul(g, a)), b->ndim, b->shape))) return MD_ERR;
  return MD_OK;
}
static md_status div_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *a = n->in[0], *b = n->in[1];
  md_tensor *gb = MD_S(s, md_div(g, b)); /* d/da = g/b; d/db = -(g/b) * (a/b) */
  if (need[0] && !(gin[0] = md_sum_to(gb, a->ndim, a->shape))) return MD_ERR;
  if (need[1] &&
      !(gin[1] = md_sum_to(MD_S(s, md_neg(MD_S(s, md_mul(gb, MD_S(s, md_div(a, b)))))), b->ndim,
                           b->shape)))
    return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_ADD = {"add", add_bw}, OP_SUB = {"sub", sub_bw}, OP_MUL = {"mul", mul_bw},
                      OP_DIV = {"div", div_bw};

static md_tensor *binary_op(const md_opdef *def, binop op, const md_tensor *a, const md_tensor *b) {
  md_tensor *out = binary(def->name, op, a, b);
  return md_finish(out, def, 2, (const md_tensor *const[]){a, b}, NULL);
}
md_tensor *md_add(const md_tensor *a, const md_tensor *b) { return binary_op(&OP_ADD, B_ADD, a, b); }
md_tensor *md_sub(const md_tensor *a, const md_tensor *b) { return binary_op(&OP_SUB, B_SUB, a, b); }
md_tensor *md_mul(const md_tensor *a, const md_tensor *b) { return binary_op(&OP_MUL, B_MUL, a, b); }
md_tensor *md_div(const md_tensor *a, const md_tensor *b) { return binary_op(&OP_DIV, B_DIV, a, b); }
md_tensor *md_eq(const md_tensor *a, const md_tensor *b) { return binary("eq", B_EQ, a, b); }
/* }====================================================== */

/* {====================================================== unary */
typedef enum {
  U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_POW, U_SQUARE, U_RECIP, U_CLAMP, U_RELU, U_RELU6,
  U_LEAKY, U_SIGMOID, U_TANH, U_SILU, U_HSIG, U_HSWISH, U_ADDS, U_MULS, U_RSUBS,
  /* masks, no grad */
  U_SIGN, U_GT, U_GE, U_LT, U_INRANGE, U_INRANGE_INCL
} unop;

static inline float sigm(float v) { return v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v)); }

static md_tensor *unary(const char *name, unop op, const md_tensor *x, float p0, float p1) {
  if (!md_check_f32(name, "x", x)) return NULL;
  md_tensor *tmp;
  const float *px = md_cdata(x, &tmp);
  md_tensor *out = px ? md_new(x->ndim, x->shape, MD_F32) : NULL;
  if (!out) {
    md_release(tmp);
    return NULL;
  }
  float *y = out->data;
  int64_t n = md_numel(x);
#define UL(expr)                                                                                   \
  _Pragma("omp parallel for if (n >= MD_PAR_MIN) schedule(static)") for (int64_t i = 0; i < n;    \
                                                                         i++) {                    \
    float v = px[i];                                                                               \
    y[i] = (expr);                                                                                 \
  }                                                                                                \
  break;
  switch (op) {
  case U_NEG: UL(-v)
  case U_ABS: UL(fabsf(v))
  case U_EXP: UL(expf(v))
  case U_LOG: UL(logf(v))
  case U_SQRT: UL(sqrtf(v))
  case U_RSQRT: UL(1.0f / sqrtf(v))
  case U_POW: UL(powf(v, p0))
  case U_SQUARE: UL(v * v)
  case U_RECIP: UL(1.0f / v)
  case U_CLAMP: UL(v < p0 ? p0 : v > p1 ? p1 : v)
  case U_RELU: UL(v > 0 ? v : 0.0f)
  case U_RELU6: UL(v < 0 ? 0.0f : v > 6 ? 6.0f : v)
  case U_LEAKY: UL(v > 0 ? v : v * p0)
  case U_SIGMOID: UL(sigm(v))
  case U_TANH: UL(tanhf(v))
  case U_SILU: UL(v * sigm(v))
  case U_HSIG: UL(v <= -3 ? 0.0f : v >= 3 ? 1.0f : v / 6.0f + 0.5f)
  case U_HSWISH: UL(v <= -3 ? 0.0f : v >= 3 ? v : v * (v + 3.0f) / 6.0f)
  case U_ADDS: UL(v + p0)
  case U_MULS: UL(v * p0)
  case U_RSUBS: UL(p0 - v)
  case U_SIGN: UL(v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f)
  case U_GT: UL(v > p0 ? 1.0f : 0.0f)
  case U_GE: UL(v >= p0 ? 1.0f : 0.0f)
  case U_LT: UL(v < p0 ? 1.0f : 0.0f)
  case U_INRANGE: UL(v > p0 && v < p1 ? 1.0f : 0.0f)
  case U_INRANGE_INCL: UL(v >= p0 && v <= p1 ? 1.0f : 0.0f)
  }
#undef UL
  md_release(tmp);
  return out;
}

/* g * (a*mask(x) + b) for the kinked functions, whose derivative is piecewise
** constant.  It is an op of its own, with inputs (g, x), as PyTorch's
** threshold_backward: d/dg is the same op, d/dx is zero -- but the result stays
** connected to x, so a gradient of a gradient through relu is a (zero)
** tensor, not "unused", exactly as in PyTorch. */
static md_tensor *masked_grad(const md_tensor *g, const md_tensor *x, unop kind, float p0, float p1,
                              float a, float b);
static md_status masked_bw(md_node *n, md_tensor *gg, md_tensor **gin, const int *need, md_scope *s) {
  if (need[0] && !(gin[0] = masked_grad(gg, n->in[1], (unop)n->ip[0], n->fp[0], n->fp[1], n->fp[2], n->fp[3])))
    return MD_ERR;
  if (need[1] && !(gin[1] = md_zeros_like(n->in[1]))) return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_MASKED = {"masked_grad", masked_bw};
static md_tensor *unary(const char *name, unop op, const md_tensor *x, float p0, float p1);
static md_tensor *masked_grad(const md_tensor *g, const md_tensor *x, unop kind, float p0, float p1,
                              float a, float b) {
  if (!md_check_f32("masked_grad", "g", g) || !md_check_f32("masked_grad", "x", x)) return NULL;
  int old = md_set_grad_enabled(0);
  md_tensor *m = unary("mask", kind, x, p0, p1), *out = NULL;
  if (m && (a != 1.0f || b != 0.0f)) {
    md_tensor *m2 = unary("mask", U_MULS, m, a, 0), *m3 = m2 ? unary("mask", U_ADDS, m2, b, 0) : NULL;
    md_release(m2);
    md_release(m);
    m = m3;
  }
  if (m) out = binary("masked_grad", B_MUL, g, m);
  md_release(m);
  md_set_grad_enabled(old);
  md_node *nd;
  out = md_finish(out, &OP_MASKED, 2, (const md_tensor *const[]){g, x}, &nd);
  if (out && nd) {
    nd->ip[0] = kind;
    nd->fp[0] = p0;
    nd->fp[1] = p1;
    nd->fp[2] = a;
    nd->fp[3] = b;
  }
  return out;
}

/* d/dx of a unary op as a product g * f'(x) with f' built from ops */
static md_status unary_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_tensor *x = n->in[0], *d = NULL;
  unop op = (unop)n->ip[0];
  float p0 = n->fp[0], p1 = n->fp[1];
  (void)need;
  switch (op) {
  case U_NEG: gin[0] = md_neg(g); break;
  case U_ADDS: gin[0] = md_retain(g); break;
  case U_MULS: gin[0] = md_mul_scalar(g, p0); break;
  case U_RSUBS: gin[0] = md_neg(g); break;
  case U_ABS: gin[0] = masked_grad(g, x, U_SIGN, 0, 0, 1, 0); break;
  case U_EXP: d = MD_S(s, md_exp(x)); break;
  case U_LOG: gin[0] = md_div(g, x); break;
  case U_SQRT: gin[0] = md_div(MD_S(s, md_mul_scalar(g, 0.5f)), MD_S(s, md_sqrt(x))); break;
  case U_RSQRT: d = MD_S(s, md_mul_scalar(MD_S(s, md_pow_scalar(x, -1.5f)), -0.5f)); break;
  case U_POW:
    if (p0 == 0.0f)
      gin[0] = md_zeros_like(x);
    else if (p0 == 1.0f)
      gin[0] = md_retain(g);
    else if (p0 == 2.0f)
      d = MD_S(s, md_mul_scalar(x, 2.0f));
    else
      d = MD_S(s, md_mul_scalar(MD_S(s, md_pow_scalar(x, p0 - 1.0f)), p0));
    break;
  case U_SQUARE: d = MD_S(s, md_mul_scalar(x, 2.0f)); break;
  case U_RECIP: /* -1/x^2 */
    d = MD_S(s, md_neg(MD_S(s, md_reciprocal(MD_S(s, md_square(x))))));
    break;
  case U_CLAMP: gin[0] = masked_grad(g, x, U_INRANGE_INCL, p0, p1, 1, 0); break;
  case U_RELU: gin[0] = masked_grad(g, x, U_GT, 0, 0, 1, 0); break;
  case U_RELU6: gin[0] = masked_grad(g, x, U_INRANGE, 0, 6, 1, 0); break;
  case U_LEAKY: /* mask*(1-slope) + slope */
    gin[0] = masked_grad(g, x, U_GT, 0, 0, 1.0f - p0, p0);
    break;
  case U_SIGMOID: {
    md_tensor *sg = MD_S(s, md_sigmoid(x));
    d = MD_S(s, md_mul(sg, MD_S(s, md_rsub_scalar(sg, 1.0f))));
    break;
  }
  case U_TANH: {
    md_tensor *t = MD_S(s, md_tanh(x));
    d = MD_S(s, md_rsub_scalar(MD_S(s, md_square(t)), 1.0f));
    break;
  }
  case U_SILU: { /* s * (1 + x*(1-s)) */
    md_tensor *sg = MD_S(s, md_sigmoid(x));
    md_tensor *t = MD_S(s, md_mul(x, MD_S(s, md_rsub_scalar(sg, 1.0f))));
    d = MD_S(s, md_mul(sg, MD_S(s, md_add_scalar(t, 1.0f))));
    break;
  }
  case U_HSIG: gin[0] = masked_grad(g, x, U_INRANGE, -3, 3, 1.0f / 6.0f, 0); break;
  case U_HSWISH: { /* (x/3 + 1/2) inside (-3,3), 1 above */
    md_tensor *mid = MD_S(s, md_in_range(x, -3.0f, 3.0f));
    md_tensor *lin = MD_S(s, md_add_scalar(MD_S(s, md_mul_scalar(x, 1.0f / 3.0f)), 0.5f));
    d = MD_S(s, md_add(MD_S(s, md_mul(mid, lin)), MD_S(s, md_ge_scalar(x, 3.0f))));
    break;
  }
  default: md_set_error("internal: no derivative for unary op %d", (int)op); return MD_ERR;
  }
  if (d) gin[0] = md_mul(g, d);
  return gin[0] ? MD_OK : MD_ERR;
}

#define UNARY_OPDEF(var, nm) static const md_opdef var = {nm, unary_bw};
UNARY_OPDEF(OP_NEG, "neg")
UNARY_OPDEF(OP_ABS, "abs")
UNARY_OPDEF(OP_EXP, "exp")
UNARY_OPDEF(OP_LOG, "log")
UNARY_OPDEF(OP_SQRT, "sqrt")
UNARY_OPDEF(OP_RSQRT, "rsqrt")
UNARY_OPDEF(OP_POW, "pow")
UNARY_OPDEF(OP_SQUARE, "square")
UNARY_OPDEF(OP_RECIP, "reciprocal")
UNARY_OPDEF(OP_CLAMP, "clamp")
UNARY_OPDEF(OP_RELU, "relu")
UNARY_OPDEF(OP_RELU6, "relu6")
UNARY_OPDEF(OP_LEAKY, "leaky_relu")
UNARY_OPDEF(OP_SIGMOID, "sigmoid")
UNARY_OPDEF(OP_TANH, "tanh")
UNARY_OPDEF(OP_SILU, "silu")
UNARY_OPDEF(OP_HSIG, "hardsigmoid")
UNARY_OPDEF(OP_HSWISH, "hardswish")
UNARY_OPDEF(OP_ADDS, "add_scalar")
UNARY_OPDEF(OP_MULS, "mul_scalar")
UNARY_OPDEF(OP_RSUBS, "rsub_scalar")

static md_tensor *unary_op(const md_opdef *def, unop op, const md_tensor *x, float p0, float p1) {
  md_node *nd;
  md_tensor *out = md_finish(unary(def->name, op, x, p0, p1), def, 1, (const md_tensor *const[]){x}, &nd);
  if (out && nd) {
    nd->ip[0] = op;
    nd->fp[0] = p0;
    nd->fp[1] = p1;
  }
  return out;
}

md_tensor *md_neg(const md_tensor *x) { return unary_op(&OP_NEG, U_NEG, x, 0, 0); }
md_tensor *md_abs(const md_tensor *x) { return unary_op(&OP_ABS, U_ABS, x, 0, 0); }
md_tensor *md_exp(const md_tensor *x) { return unary_op(&OP_EXP, U_EXP, x, 0, 0); }
md_tensor *md_log(const md_tensor *x) { return unary_op(&OP_LOG, U_LOG, x, 0, 0); }
md_tensor *md_sqrt(const md_tensor *x) { return unary_op(&OP_SQRT, U_SQRT, x, 0, 0); }
md_tensor *md_rsqrt(const md_tensor *x) { return unary_op(&OP_RSQRT, U_RSQRT, x, 0, 0); }
md_tensor *md_pow_scalar(const md_tensor *x, float p) { return unary_op(&OP_POW, U_POW, x, p, 0); }
md_tensor *md_square(const md_tensor *x) { return unary_op(&OP_SQUARE, U_SQUARE, x, 0, 0); }
md_tensor *md_reciprocal(const md_tensor *x) { return unary_op(&OP_RECIP, U_RECIP, x, 0, 0); }
md_tensor *md_clamp(const md_tensor *x, float lo, float hi) {
  if (lo > hi) {
    md_set_error("clamp: min %g is greater than max %g", lo, hi);
    return NULL;
  }
  return unary_op(&OP_CLAMP, U_CLAMP, x, lo, hi);
}
md_tensor *md_relu(const md_tensor *x) { return unary_op(&OP_RELU, U_RELU, x, 0, 0); }
md_tensor *md_relu6(const md_tensor *x) { return unary_op(&OP_RELU6, U_RELU6, x, 0, 0); }
md_tensor *md_leaky_relu(const md_tensor *x, float sl) { return unary_op(&OP_LEAKY, U_LEAKY, x, sl, 0); }
md_tensor *md_sigmoid(const md_tensor *x) { return unary_op(&OP_SIGMOID, U_SIGMOID, x, 0, 0); }
md_tensor *md_tanh(const md_tensor *x) { return unary_op(&OP_TANH, U_TANH, x, 0, 0); }
md_tensor *md_silu(const md_tensor *x) { return unary_op(&OP_SILU, U_SILU, x, 0, 0); }
md_tensor *md_hardsigmoid(const md_tensor *x) { return unary_op(&OP_HSIG, U_HSIG, x, 0, 0); }
md_tensor *md_hardswish(const md_tensor *x) { return unary_op(&OP_HSWISH, U_HSWISH, x, 0, 0); }
md_tensor *md_add_scalar(const md_tensor *x, float s) { return unary_op(&OP_ADDS, U_ADDS, x, s, 0); }
md_tensor *md_mul_scalar(const md_tensor *x, float s) { return unary_op(&OP_MULS, U_MULS, x, s, 0); }
md_tensor *md_rsub_scalar(const md_tensor *x, float s) { return unary_op(&OP_RSUBS, U_RSUBS, x, s, 0); }

md_tensor *md_sign(const md_tensor *x) { return unary("sign", U_SIGN, x, 0, 0); }
md_tensor *md_gt_scalar(const md_tensor *x, float s) { return unary("gt", U_GT, x, s, 0); }
md_tensor *md_ge_scalar(const md_tensor *x, float s) { return unary("ge", U_GE, x, s, 0); }
md_tensor *md_lt_scalar(const md_tensor *x, float s) { return unary("lt", U_LT, x, s, 0); }
md_tensor *md_in_range(const md_tensor *x, float lo, float hi) { return unary("in_range", U_INRANGE, x, lo, hi); }

md_tensor *md_isfinite_all(const md_tensor *x) {
  if (!md_check_f32("isfinite", "x", x)) return NULL;
  md_tensor *tmp;
  const float *p = md_cdata(x, &tmp);
  if (!p) return NULL;
  int64_t n = md_numel(x);
  int ok = 1;
  for (int64_t i = 0; i < n && ok; i++) ok = isfinite(p[i]);
  md_release(tmp);
  return md_scalar(ok ? 1.0f : 0.0f);
}
/* }====================================================== */

/* {====================================================== in place (never recorded) */
static int inplace_ok(const char *op, md_tensor *t) {
  if (!md_check_f32(op, "self", t)) return 0;
  if (md_grad_enabled() && md_requires_grad(t)) {
    md_set_error("%s: in-place change of a tensor that requires grad (shape %s); do it under no_grad",
                 op, md_shp(t));
    return 0;
  }
  return 1;
}

/* apply f(dst_elem, src_elem) over dst with src broadcast to it */
static int inplace2(const char *op, md_tensor *dst, const md_tensor *src, int kind, float a) {
  if (!inplace_ok(op, dst) || !md_check_f32(op, "src", src)) return MD_ERR;
  int64_t shape[MD_MAX_DIMS];
  int nd = md_broadcast_shape(op, dst, src, shape);
  if (nd < 0) return MD_ERR;
  int fits = nd == dst->ndim;
  for (int i = 0; fits && i < nd; i++) fits = shape[i] == dst->shape[i];
  if (!fits) {
    md_set_error("%s: src of shape %s does not broadcast to the destination's shape %s", op,
                 md_shp(src), md_shp(dst));
    return MD_ERR;
  }
  md_tensor *s2 = md_expand(src, dst->ndim, dst->shape); /* a view */
  if (!s2) return MD_ERR;
  int64_t n = md_numel(dst);
  if (md_is_contiguous(dst) && md_is_contiguous(s2)) {
    float *d = dst->data;
    const float *s = s2->data;
#pragma omp parallel for if (n >= MD_PAR_MIN)
    for (int64_t i = 0; i < n; i++) d[i] = kind == 0 ? s[i] : d[i] + a * s[i];
  } else {
    int64_t idx[MD_MAX_DIMS] = {0};
    float *d = dst->data;
    const float *s = s2->data;
    for (int64_t k = 0; k < n; k++) {
      int64_t od = 0, os = 0;
      for (int i = 0; i < dst->ndim; i++) {
        od += idx[i] * dst->stride[i];
        os += idx[i] * s2->stride[i];
      }
      d[od] = kind == 0 ? s[os] : d[od] + a * s[os];
      for (int i = dst->ndim - 1; i >= 0; i--) {
        if (++idx[i] < dst->shape[i]) break;
        idx[i] = 0;
      }
    }
  }
  md_release(s2);
  return MD_OK;
}
int md_copy_(md_tensor *dst, const md_tensor *src) { return inplace2("copy_", dst, src, 0, 0); }
int md_axpy_(md_tensor *y, float a, const md_tensor *x) { return inplace2("axpy_", y, x, 1, a); }

static int inplace1(const char *op, md_tensor *t, int kind, float a) {
  if (!inplace_ok(op, t)) return MD_ERR;
  int64_t n = md_numel(t);
  float *d = t->data;
  if (md_is_contiguous(t)) {
#pragma omp parallel for if (n >= MD_PAR_MIN)
    for (int64_t i = 0; i < n; i++) d[i] = kind == 0 ? a : d[i] * a;
    return MD_OK;
  }
  for (int64_t i = 0; i < n; i++) md_set(t, i, kind == 0 ? a : md_get(t, i) * a);
  return MD_OK;
}
int md_fill_(md_tensor *t, float v) { return inplace1("fill_", t, 0, v); }
int md_scale_(md_tensor *t, float a) { return inplace1("scale_", t, 1, a); }
/* }====================================================== */
