/*
** test_ops.c -- elementwise, reductions, shape ops and indexing: forward
** values against hand-computed ones, and first- and second-order gradient
** checks against central differences for every op.
*/
#include "check.h"

#define SH(...) ((int64_t[]){__VA_ARGS__})
#define NSH(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), SH(__VA_ARGS__)

/* {====================================================== op wrappers */
static md_tensor *f_add(md_tensor **in, void *ud) { return md_add(in[0], in[1]); }
static md_tensor *f_sub(md_tensor **in, void *ud) { return md_sub(in[0], in[1]); }
static md_tensor *f_mul(md_tensor **in, void *ud) { return md_mul(in[0], in[1]); }
static md_tensor *f_div(md_tensor **in, void *ud) { return md_div(in[0], in[1]); }

typedef md_tensor *(*un_fn)(const md_tensor *);
static md_tensor *f_un(md_tensor **in, void *ud) { return ((un_fn)ud)(in[0]); }
static md_tensor *f_pow(md_tensor **in, void *ud) { return md_pow_scalar(in[0], *(float *)ud); }
static md_tensor *f_clamp(md_tensor **in, void *ud) { return md_clamp(in[0], -0.5f, 0.5f); }
static md_tensor *f_leaky(md_tensor **in, void *ud) { return md_leaky_relu(in[0], 0.1f); }
static md_tensor *f_adds(md_tensor **in, void *ud) { return md_add_scalar(in[0], 2.5f); }
static md_tensor *f_muls(md_tensor **in, void *ud) { return md_mul_scalar(in[0], -1.5f); }
static md_tensor *f_rsubs(md_tensor **in, void *ud) { return md_rsub_scalar(in[0], 3.0f); }

/* square the result so linear ops still have a non-zero second derivative
** in the check, which then exercises their backward's own backward */
static md_tensor *sq(md_tensor *t) {
  md_tensor *r = md_square(t);
  md_release(t);
  return r;
}
static md_tensor *f_sum_dims(md_tensor **in, void *ud) { return sq(md_sum(in[0], 2, (int[]){0, 2}, 0)); }
static md_tensor *f_sum_keep(md_tensor **in, void *ud) { return sq(md_sum(in[0], 1, (int[]){-1}, 1)); }
static md_tensor *f_sum_all(md_tensor **in, void *ud) { return sq(md_sum(in[0], 0, NULL, 0)); }
static md_tensor *f_mean(md_tensor **in, void *ud) { return sq(md_mean(in[0], 1, (int[]){1}, 0)); }
static md_tensor *f_var(md_tensor **in, void *ud) { return md_var(in[0], 2, (int[]){0, 2}, 1, 1); }
static md_tensor *f_max(md_tensor **in, void *ud) { return sq(md_max(in[0], 1, 0, NULL)); }
static md_tensor *f_lse(md_tensor **in, void *ud) { return md_logsumexp(in[0], -1, 0); }
static md_tensor *f_sum_to(md_tensor **in, void *ud) { return sq(md_sum_to(in[0], NSH(3, 1))); }
static md_tensor *f_expand(md_tensor **in, void *ud) { return sq(md_expand(in[0], NSH(2, 3, 4))); }
static md_tensor *f_reshape(md_tensor **in, void *ud) { return sq(md_reshape(in[0], NSH(4, -1))); }
static md_tensor *f_permute(md_tensor **in, void *ud) { return sq(md_permute(in[0], (int[]){2, 0, 1})); }
static md_tensor *f_perm_reshape(md_tensor **in, void *ud) { /* reshape of a non-contiguous view */
  md_tensor *t = md_transpose(in[0], 0, 2);
  md_tensor *r = md_reshape(t, NSH(-1));
  md_release(t);
  return sq(r);
}
static md_tensor *f_slice(md_tensor **in, void *ud) { return sq(md_slice(in[0], 1, 1, 2)); }
static md_tensor *f_pad(md_tensor **in, void *ud) { return sq(md_pad2d(in[0], 1, 2, 0, 1, 0.5f)); }
static md_tensor *f_cat(md_tensor **in, void *ud) { return sq(md_cat(2, in, 1)); }
static md_tensor *f_split(md_tensor **in, void *ud) {
  md_tensor *p[3];
  if (md_split(in[0], 1, 3, SH(1, 2, 1), p) != MD_OK) return NULL;
  md_tensor *a = md_mul(p[0], p[2]), *b = md_add(a, p[1]);
  for (int i = 0; i < 3; i++) md_release(p[i]);
  md_release(a);
  return b;
}
static md_tensor *f_contig(md_tensor **in, void *ud) {
  md_tensor *t = md_transpose(in[0], 0, 1), *c = md_contiguous(t);
  md_release(t);
  return sq(c);
}
static md_tensor *f_gather(md_tensor **in, void *ud) { return sq(md_gather(in[0], 1, (md_tensor *)ud)); }
static md_tensor *f_scatter(md_tensor **in, void *ud) {
  return sq(md_scatter_add(NSH(2, 5), 1, (md_tensor *)ud, in[0]));
}
static md_tensor *f_isel(md_tensor **in, void *ud) { return sq(md_index_select(in[0], 0, (md_tensor *)ud)); }
static md_tensor *f_iadd(md_tensor **in, void *ud) { return sq(md_index_add(4, 0, (md_tensor *)ud, in[0])); }
static md_tensor *f_bcast_chain(md_tensor **in, void *ud) { /* a*b + a/b with broadcasting */
  md_tensor *p = md_mul(in[0], in[1]), *q = md_div(in[0], in[1]), *r = md_add(p, q);
  md_release(p);
  md_release(q);
  return r;
}
/* }====================================================== */

static void both(const char *name, check_fn f, int n, md_tensor **in, void *ud, double eps, double tol) {
  gradcheck(name, f, n, in, ud, eps, tol);
  gradgradcheck(name, f, n, in, ud, eps, tol);
}

static md_tensor *leaf(md_tensor *t) {
  md_set_requires_grad(t, 1);
  return t;
}

static void test_forward_values(void) {
  md_tensor *a = md_from_data(NSH(2, 3), (float[]){1, 2, 3, 4, 5, 6});
  md_tensor *b = md_from_data(NSH(3), (float[]){10, 20, 30});
  md_tensor *c = md_add(a, b);
  md_tensor *want = md_from_data(NSH(2, 3), (float[]){11, 22, 33, 14, 25, 36});
  check_close("add broadcast values", c, want, 0, 0);
  md_tensor *s0 = md_sum(a, 1, (int[]){0}, 0);
  md_tensor *w0 = md_from_data(NSH(3), (float[]){5, 7, 9});
  check_close("sum dim 0", s0, w0, 0, 0);
  md_tensor *s1 = md_sum(a, 1, (int[]){1}, 1);
  md_tensor *w1 = md_from_data(NSH(2, 1), (float[]){6, 15});
  check_close("sum dim 1 keepdim", s1, w1, 0, 0);
  md_tensor *v = md_var(a, 1, (int[]){1}, 0, 1);
  md_tensor *wv = md_from_data(NSH(2), (float[]){1, 1});
  check_close("var unbiased", v, wv, 1e-6, 1e-6);
  md_tensor *idx;
  md_tensor *m = md_max(a, 0, 0, &idx);
  md_tensor *wm = md_from_data(NSH(3), (float[]){4, 5, 6});
  check_close("max values", m, wm, 0, 0);
  CHECK(idx && idx->dtype == MD_I64 && md_get(idx, 0) == 1 && md_get(idx, 2) == 1, "max indices");
  md_tensor *am = md_argmax(a, 1, 0);
  CHECK(am && md_get(am, 0) == 2 && md_get(am, 1) == 2, "argmax");
  md_tensor *t = md_transpose(a, 0, 1);
  md_tensor *tc = md_contiguous(t);
  md_tensor *wt = md_from_data(NSH(3, 2), (float[]){1, 4, 2, 5, 3, 6});
  check_close("transpose values", tc, wt, 0, 0);
  md_tensor *l = md_logsumexp(a, 1, 0);
  md_tensor *wl = md_from_data(NSH(2), (float[]){(float)(3 + log(1 + exp(-1) + exp(-2))),
                                                 (float)(6 + log(1 + exp(-1) + exp(-2)))});
  check_close("logsumexp", l, wl, 1e-6, 1e-6);
  md_tensor *p = md_pad2d(a, 1, 0, 0, 1, 9);
  md_tensor *wp = md_from_data(NSH(3, 4), (float[]){9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9});
  check_close("pad2d values", p, wp, 0, 0);
  md_tensor *gi = md_from_i64(NSH(2, 2), (int64_t[]){2, 0, 1, 1});
  md_tensor *g = md_gather(a, 1, gi);
  md_tensor *wg = md_from_data(NSH(2, 2), (float[]){3, 1, 5, 5});
  check_close("gather values", g, wg, 0, 0);
  md_tensor *sc = md_scatter_add(NSH(2, 3), 1, gi, g);
  md_tensor *wsc = md_from_data(NSH(2, 3), (float[]){1, 0, 3, 0, 10, 0});
  check_close("scatter_add values", sc, wsc, 0, 0);
  md_tensor *hs = md_hardswish(a);
  md_tensor *whs = md_from_data(NSH(2, 3), (float[]){1 * 4 / 6.0f, 2 * 5 / 6.0f, 3, 4, 5, 6});
  check_close("hardswish values", hs, whs, 1e-6, 1e-6);
  md_tensor *cat = md_cat(2, (md_tensor *[]){a, a}, 0);
  CHECK(cat && cat->shape[0] == 4 && md_get(cat, 9) == 4, "cat values");
  md_tensor *ch[3];
  int k = md_chunk(cat, 0, 3, ch);
  CHECK(k == 2 && ch[0]->shape[0] == 2 && md_get(ch[1], 0) == 1, "chunk like torch (4 rows in 3 -> 2,2)");
  for (int i = 0; i < (k > 0 ? k : 0); i++) md_release(ch[i]);
  md_tensor *oh = md_one_hot(gi, 3);
  CHECK(oh && oh->ndim == 3 && md_get(oh, 2) == 1 && md_get(oh, 3) == 1 && md_get(oh, 0) == 0, "one_hot");
  md_tensor *rs = md_reshape(t, NSH(6)); /* non-contiguous source copies */
  CHECK(rs && md_get(rs, 1) == 4 && md_get(rs, 5) == 6, "reshape of a transposed view");
  md_tensor *all[] = {a, b, c, want, s0, w0, s1, w1, v, wv, idx, m, wm, am, t, tc, wt, l, wl, p, wp,
                      gi, g, wg, sc, wsc, hs, whs, cat, oh, rs};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) md_release(all[i]);
}

static void test_grads(void) {
  md_manual_seed(1);
  /* binary with broadcasting: (2,3,4) op (3,1) */
  md_tensor *a = leaf(rnd(NSH(2, 3, 4))), *b = leaf(away_from(rnd(NSH(3, 1)), 0, 0.4f));
  md_tensor *ab[] = {a, b};
  both("add", f_add, 2, ab, NULL, 1e-2, 1e-2);
  both("sub", f_sub, 2, ab, NULL, 1e-2, 1e-2);
  both("mul", f_mul, 2, ab, NULL, 1e-2, 1e-2);
  both("div", f_div, 2, ab, NULL, 1e-3, 2e-2);
  both("broadcast chain", f_bcast_chain, 2, ab, NULL, 1e-3, 2e-2);
  md_release(a);
  md_release(b);

  struct { const char *name; un_fn f; float lo, hi, kink; } un[] = {
      {"neg", md_neg, -1, 1, 9},        {"abs", md_abs, -1, 1, 0},
      {"exp", md_exp, -1, 1, 9},        {"log", md_log, 0.5f, 2, 9},
      {"sqrt", md_sqrt, 0.5f, 2, 9},    {"rsqrt", md_rsqrt, 0.5f, 2, 9},
      {"square", md_square, -1, 1, 9},  {"reciprocal", md_reciprocal, 0.5f, 2, 9},
      {"relu", md_relu, -1, 1, 0},      {"relu6", md_relu6, -2, 8, 0},
      {"sigmoid", md_sigmoid, -3, 3, 9}, {"tanh", md_tanh, -2, 2, 9},
      {"silu", md_silu, -3, 3, 9},      {"hardsigmoid", md_hardsigmoid, -5, 5, 3},
      {"hardswish", md_hardswish, -5, 5, 3},
  };
  for (size_t i = 0; i < sizeof un / sizeof *un; i++) {
    md_tensor *x = md_uniform(NSH(3, 4), un[i].lo, un[i].hi);
    if (un[i].kink != 9) {
      away_from(x, un[i].kink, 0.05f);
      away_from(x, -un[i].kink, 0.05f);
      if (un[i].f == md_relu6) away_from(x, 6, 0.05f);
    }
    leaf(x);
    both(un[i].name, f_un, 1, &x, (void *)un[i].f, 1e-3, 2e-2);
    md_release(x);
  }
  md_tensor *x = leaf(md_uniform(NSH(3, 4), 0.5f, 2));
  float pw = 2.5f;
  both("pow 2.5", f_pow, 1, &x, &pw, 1e-3, 2e-2);
  pw = -1.5f;
  both("pow -1.5", f_pow, 1, &x, &pw, 1e-3, 2e-2);
  md_release(x);
  x = leaf(away_from(away_from(rnd(NSH(3, 4)), 0.5f, 0.05f), -0.5f, 0.05f));
  both("clamp", f_clamp, 1, &x, NULL, 1e-3, 2e-2);
  md_release(x);
  x = leaf(away_from(rnd(NSH(3, 4)), 0, 0.05f));
  both("leaky_relu", f_leaky, 1, &x, NULL, 1e-3, 2e-2);
  both("add_scalar", f_adds, 1, &x, NULL, 1e-3, 2e-2);
  both("mul_scalar", f_muls, 1, &x, NULL, 1e-3, 2e-2);
  both("rsub_scalar", f_rsubs, 1, &x, NULL, 1e-3, 2e-2);
  md_release(x);

  x = leaf(rnd(NSH(2, 3, 4)));
  both("sum dims (0,2)", f_sum_dims, 1, &x, NULL, 1e-2, 1e-2);
  both("sum keepdim", f_sum_keep, 1, &x, NULL, 1e-2, 1e-2);
  both("sum all", f_sum_all, 1, &x, NULL, 1e-2, 1e-2);
  both("mean", f_mean, 1, &x, NULL, 1e-2, 1e-2);
  both("var", f_var, 1, &x, NULL, 1e-2, 1e-2);
  both("logsumexp", f_lse, 1, &x, NULL, 1e-2, 1e-2);
  both("reshape", f_reshape, 1, &x, NULL, 1e-2, 1e-2);
  both("permute", f_permute, 1, &x, NULL, 1e-2, 1e-2);
  both("reshape of permuted", f_perm_reshape, 1, &x, NULL, 1e-2, 1e-2);
  both("slice", f_slice, 1, &x, NULL, 1e-2, 1e-2);
  both("pad2d", f_pad, 1, &x, NULL, 1e-2, 1e-2);
  both("contiguous", f_contig, 1, &x, NULL, 1e-2, 1e-2);
  md_release(x);
  /* max: distinct values so the argmax is stable under eps */
  x = leaf(md_from_data(NSH(2, 3, 2), (float[]){0.1f, 0.9f, -0.5f, 0.3f, 0.7f, -0.2f, 0.4f, -0.8f, 0.6f,
                                               0.2f, -0.1f, 0.5f}));
  both("max", f_max, 1, &x, NULL, 1e-2, 1e-2);
  md_release(x);
  x = leaf(rnd(NSH(3, 4)));
  both("split", f_split, 1, &x, NULL, 1e-2, 1e-2);
  md_release(x);
  x = leaf(rnd(NSH(3, 4)));
  both("sum_to", f_sum_to, 1, &x, NULL, 1e-2, 1e-2);
  md_release(x);
  x = leaf(rnd(NSH(3, 1)));
  both("expand", f_expand, 1, &x, NULL, 1e-2, 1e-2);
  md_release(x);
  md_tensor *c2[] = {leaf(rnd(NSH(2, 2))), leaf(rnd(NSH(2, 3)))};
  both("cat", f_cat, 2, c2, NULL, 1e-2, 1e-2);
  md_release(c2[0]);
  md_release(c2[1]);
  x = leaf(rnd(NSH(2, 5)));
  md_tensor *gi = md_from_i64(NSH(2, 3), (int64_t[]){4, 0, 4, 1, 1, 3});
  both("gather", f_gather, 1, &x, gi, 1e-2, 1e-2);
  md_release(x);
  x = leaf(rnd(NSH(2, 3)));
  both("scatter_add", f_scatter, 1, &x, gi, 1e-2, 1e-2);
  md_release(x);
  md_release(gi);
  md_tensor *ii = md_from_i64(NSH(3), (int64_t[]){2, 0, 2});
  x = leaf(rnd(NSH(4, 3)));
  both("index_select", f_isel, 1, &x, ii, 1e-2, 1e-2);
  md_release(x);
  x = leaf(rnd(NSH(3, 2)));
  both("index_add", f_iadd, 1, &x, ii, 1e-2, 1e-2);
  md_release(x);
  md_release(ii);
}

static md_tensor *hook_double(void *ud, md_tensor *g) {
  (*(int *)ud)++;
  return md_mul_scalar(g, 2.0f);
}

static void test_engine(void) {
  /* backward accumulates into leaves; a reused input gets both paths */
  md_tensor *x = leaf(md_from_data(NSH(2), (float[]){1, 2}));
  md_tensor *y = md_mul(x, x); /* x^2 */
  md_tensor *z = md_sum(y, 0, NULL, 0);
  CHECK(md_backward(z, NULL, 0, 1) == MD_OK, "backward runs");
  CHECK(x->grad && md_get(x->grad, 0) == 2 && md_get(x->grad, 1) == 4, "d sum(x^2) = 2x");
  CHECK(md_backward(z, NULL, 0, 0) == MD_OK, "second backward accumulates");
  CHECK(x->grad && md_get(x->grad, 1) == 8, "grad accumulated (4+4)");
  CHECK(md_backward(z, NULL, 0, 0) != MD_OK && strstr(md_last_error(), "second time"),
        "backward through a freed graph is an error");
  md_release(z);
  md_release(y);
  /* backward of a leaf itself: its gradient is the seed */
  md_tensor *lf = leaf(md_from_data(NSH(2), (float[]){5, 6})), *seed = md_from_data(NSH(2), (float[]){2, 3});
  CHECK(md_backward(lf, seed, 0, 0) == MD_OK && lf->grad && md_get(lf->grad, 0) == 2 && md_get(lf->grad, 1) == 3,
        "backward of a leaf sets its grad to the seed");
  md_release(lf);
  md_release(seed);
  /* hooks see and change the gradient */
  int calls = 0;
  md_tensor *w = leaf(md_from_data(NSH(2), (float[]){3, 4}));
  md_tensor *h = md_mul_scalar(w, 3.0f);
  md_register_hook(h, hook_double, &calls, NULL);
  md_tensor *hs = md_sum(h, 0, NULL, 0);
  md_tensor *gw;
  CHECK(md_grad(1, &hs, NULL, 1, &w, &gw, 0, 0, 0) == MD_OK && calls == 1 && md_get(gw, 0) == 6,
        "tensor hook doubles the gradient");
  md_release(gw);
  md_release(hs);
  md_release(h);
  /* grad w.r.t. a non-leaf (a feature map) and a double backward through it */
  md_tensor *m = md_mul(w, w); /* m = w^2 */
  md_tensor *q = md_sum(m, 0, NULL, 0);
  md_tensor *cube = md_mul(m, w); /* w^3 */
  md_tensor *cs = md_sum(cube, 0, NULL, 0);
  md_tensor *gm = NULL;
  CHECK(md_grad(1, &cs, NULL, 1, &m, &gm, 1, 1, 0) == MD_OK, "grad w.r.t. non-leaf");
  CHECK(gm && md_get(gm, 0) == 3 && md_get(gm, 1) == 4, "d sum(m*w)/dm = w");
  md_tensor *gm2 = md_sum(gm, 0, NULL, 0), *gg = NULL;
  CHECK(gm2 && md_grad(1, &gm2, NULL, 1, &w, &gg, 0, 0, 0) == MD_OK && md_get(gg, 0) == 1,
        "gradient of a gradient (d/dw sum(w) = 1)");
  /* unused input */
  md_tensor *u = leaf(md_ones(NSH(2))), *gu = NULL;
  CHECK(md_grad(1, &q, NULL, 1, &u, &gu, 0, 1, 0) != MD_OK && strstr(md_last_error(), "not used"),
        "unused input is an error");
  CHECK(md_grad(1, &q, NULL, 1, &u, &gu, 0, 1, 1) == MD_OK && gu == NULL, "allow_unused gives NULL");
  /* grad mode off records nothing */
  int old = md_set_grad_enabled(0);
  md_tensor *nog = md_mul(w, w);
  md_set_grad_enabled(old);
  CHECK(nog && !md_requires_grad(nog), "no-grad mode records nothing");
  /* interrupt */
  *md_interrupt_flag() = 1;
  md_tensor *gi2;
  CHECK(md_grad(1, &q, NULL, 1, &w, &gi2, 0, 1, 0) == MD_EINTR, "interrupt stops the engine");
  *md_interrupt_flag() = 0;
  md_tensor *all[] = {x, w, m, q, cube, cs, gm, gm2, gg, u, nog};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) md_release(all[i]);
}

/* a full sum, large enough to run in parallel, gives the same bits on 1,
** 2, 3 and 4 threads, and matches a double-precision sum */
static void test_sum_threads(void) {
  md_tensor *x = md_randn(2, (const int64_t[]){3, 200000});
  float got[4];
  for (int t = 1; t <= 4; t++) {
    md_set_num_threads(t);
    md_tensor *s = md_sum(x, 0, NULL, 0);
    got[t - 1] = s ? md_get(s, 0) : NAN;
    md_release(s);
  }
  md_set_num_threads(1);
  double ref = 0;
  const float *p = x->data;
  for (int64_t i = 0; i < 600000; i++) ref += p[i];
  CHECK(!memcmp(got, got + 1, sizeof(float)) && !memcmp(got, got + 2, sizeof(float)) &&
            !memcmp(got, got + 3, sizeof(float)),
        "sum of 600000: the same bits on 1-4 threads");
  CHECK(fabs(got[0] - ref) <= 1e-6 * (fabs(ref) + 600000 * 1e-3), "sum of 600000 = the double sum");
  md_release(x);
}

static void test_errors(void) {
  md_tensor *a = md_zeros(NSH(2, 3)), *b = md_zeros(NSH(4)), *i = md_from_i64(NSH(2, 1), (int64_t[]){0, 7});
  CHECK_ERR(md_add(a, b), "cannot be broadcast", "add: incompatible shapes");
  CHECK_ERR(md_mul(a, NULL), "missing", "mul: NULL argument");
  CHECK_ERR(md_add(a, i), "float tensor", "add: integer tensor");
  CHECK_ERR(md_reshape(a, NSH(4, -1)), "invalid for input", "reshape: wrong element count");
  CHECK_ERR(md_sum(a, 1, (int[]){2}, 0), "out of range", "sum: bad dim");
  CHECK_ERR(md_gather(a, 1, i), "out of range", "gather: index out of range");
  CHECK_ERR(md_slice(a, 1, 2, 2), "out of range", "slice: beyond the end");
  CHECK_ERR(md_expand(b, NSH(2, 3)), "cannot be expanded", "expand: bad shape");
  CHECK_ERR(md_cat(2, (md_tensor *[]){a, b}, 0), "only dim", "cat: mismatched shapes");
  CHECK_ERR(md_permute(a, (int[]){0, 0}), "repeated", "permute: repeated dim");
  CHECK_ERR(md_clamp(a, 1, 0), "greater than", "clamp: min > max");
  CHECK(md_copy_(a, b) != MD_OK && strstr(md_last_error(), "broadcast"), "copy_: shape mismatch");
  md_tensor *l = leaf(md_zeros(NSH(2)));
  CHECK(md_fill_(l, 1) != MD_OK && strstr(md_last_error(), "requires grad"), "in-place on a leaf");
  md_release(a);
  md_release(b);
  md_release(i);
  md_release(l);
}

int main(void) {
  md_manual_seed(0);
  test_forward_values();
  test_grads();
  test_engine();
  test_sum_threads();
  test_errors();
  CHECK(md_tensors_alive() == 0, "every tensor freed");
  if (md_tensors_alive()) printf("  %zu tensors alive\n", md_tensors_alive());
  return summary();
}
