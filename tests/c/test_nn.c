/*
** test_nn.c -- batch_norm, softmax, log_softmax, nll_loss, cross_entropy,
** mse_loss and dropout: forward values against PyTorch and against naive
** double loops, first and second derivatives against finite differences,
** the fused batch-norm backward against the composed one, error paths.
**
** The PyTorch values below were made once with torch 1.13 (CPU, float32)
** from inputs given by formulas that this file computes again (fx below):
**
**   def f(n, fn): return torch.tensor([fn(i) for i in range(n)], dtype=torch.float32)
**   x1 = f(24, lambda i: math.sin(0.7*i + 0.3)*1.5 + 0.2*(i % 3)).reshape(2,3,2,2)
**   x2 = f(24, lambda i: math.cos(0.45*i)*2 - 0.3).reshape(2,3,2,2)
**   w = f(3, lambda c: 0.5 + 0.25*c); b = f(3, lambda c: 0.1*c - 0.2)
**   rm = torch.zeros(3); rv = torch.ones(3)
**   BN_Y1 = F.batch_norm(x1, rm, rv, w, b, True, 0.1, 1e-5)
**   BN_Y2 = F.batch_norm(x2, rm, rv, w, b, True, 0.1, 1e-5); BN_RM, BN_RV = rm, rv
**   BN_YE = F.batch_norm(x1, rm, rv, w, b, False, 0.1, 1e-5)
**   x3 = f(12, lambda i: math.sin(1.3*i)*2).reshape(4,3); rm3 = zeros(3); rv3 = ones(3)
**   BN2_Y = F.batch_norm(x3, rm3, rv3, None, None, True, 0.3, 1e-3); BN2_RM, BN2_RV = rm3, rv3
**   xs = f(24, lambda i: math.sin(0.9*i)*3).reshape(2,3,4)
**   SM_D1 = F.softmax(xs, 1); LSM_DM1 = F.log_softmax(xs, -1); LSM_D0 = F.log_softmax(xs, 0)
**   xl = f(12, lambda i: math.cos(0.8*i)*2).reshape(3,4); tg = torch.tensor([2,0,3])
**   NLL_* = F.nll_loss(F.log_softmax(xl, 1), tg, reduction=none/mean/sum)
**   CE_* = F.cross_entropy(xl, tg, reduction=none/mean/sum)
**   a = f(6, lambda i: math.sin(0.5*i + 1)).reshape(2,3); bb = f(6, lambda i: math.cos(0.3*i)).reshape(2,3)
**   MSE_* = F.mse_loss(a, bb, reduction=none/mean/sum); MSE_BC = F.mse_loss(a, bb[0], reduction='none')
*/
#include "check.h"

static const float BN_Y1[24] = {-0.2294423f, 0.26791507f, 0.47550759f, 0.04874387f, 0.32537857f, -0.30427739f, -1.0698069f, -0.79449868f, -1.073227f, -0.35060576f, 0.80943048f, 1.2792492f, 0.039596051f, -0.33005202f, -0.70823169f, -1.1640365f, -0.7848106f, 0.0027734917f, 0.51007307f, 1.3151684f, 1.2747861f, 0.23395456f, -0.64438999f, -1.5291976f};
static const float BN_Y2[24] = {0.25560236f, 0.056642324f, -0.50062346f, -1.3052404f, 0.084016256f, -0.49720713f, -0.89713246f, -1.0361323f, -0.71501571f, -0.0097567532f, 1.0020062f, 2.1188252f, -0.47447687f, 0.071004145f, 0.2553198f, 0.041771732f, 1.2951825f, 0.70698714f, 0.060327802f, -0.51604187f, -0.75098974f, -0.97264189f, -0.69607419f, 0.023647204f};
static const float BN_RM[3] = {0.16973022f, -0.12465151f, -0.082734548f};
static const float BN_RV[3] = {0.9465363f, 1.0212001f, 0.96067613f};
static const float BN_YE[24] = {-0.059415996f, 0.4642348f, 0.68280196f, 0.23347685f, 0.18723671f, -0.39177349f, -1.0957284f, -0.84256434f, -0.07966207f, 0.5611884f, 1.5899565f, 2.0066111f, 0.22384541f, -0.1653446f, -0.56351721f, -1.0434188f, -0.83365548f, -0.10941994f, 0.35707551f, 1.0974137f, 2.0026531f, 1.0796007f, 0.30064839f, -0.48403552f};
static const float BN2_Y[12] = {0.15949233f, 1.1246535f, 0.44010743f, -0.81295335f, -1.6131952f, -0.01091856f, 1.5713518f, 0.16936319f, -1.5769142f, -0.91789079f, 0.31917846f, 1.1477255f};
static const float BN2_RM[3] = {-0.067680962f, 0.12290534f, 0.13343503f};
static const float BN2_RV[3] = {1.4999334f, 1.4277837f, 1.4092805f};
static const float SM_D1[24] = {0.082775459f, 0.36294916f, 0.83983451f, 0.73415333f, 0.02194568f, 0.0018435479f, 0.0044520656f, 0.21422353f, 0.89527887f, 0.63520724f, 0.15571344f, 0.051623162f, 0.0028843572f, 0.022332946f, 0.086192518f, 0.38342828f, 0.99136603f, 0.72215188f, 0.018886512f, 0.0017960756f, 0.0057497076f, 0.25551522f, 0.894921f, 0.61477566f};
static const float LSM_DM1[24] = {-3.5162992f, -1.1663184f, -0.59475631f, -2.2341595f, -1.711843f, -3.3168719f, -2.7025752f, -0.33383986f, -1.1113429f, -0.58267707f, -2.255991f, -4.864954f, -5.4612765f, -4.8044181f, -2.4175985f, -0.10711426f, -0.18041413f, -1.8871658f, -4.4946537f, -6.0295825f, -5.6749134f, -3.270684f, -0.98093075f, -0.53849381f};
static const float LSM_D0[24] = {-0.051374868f, -0.0096503645f, -0.057859186f, -1.4093328f, -4.2390609f, -4.1388807f, -1.2418846f, -0.04846241f, -0.0096692545f, -0.061464738f, -1.4668702f, -4.270144f, -2.9941835f, -4.6455817f, -2.8785329f, -0.28011906f, -0.01452609f, -0.016069071f, -0.340857f, -3.0510991f, -4.6436348f, -2.8198662f, -0.26220438f, -0.014078352f};
static const float NLL_NONE[3] = {2.5912807f, 3.8394225f, 4.0740566f};
static const float NLL_MEAN[1] = {3.5015867f};
static const float NLL_SUM[1] = {10.50476f};
static const float CE_NONE[3] = {2.5912807f, 3.8394225f, 4.0740566f};
static const float CE_MEAN[1] = {3.5015867f};
static const float CE_SUM[1] = {10.50476f};
static const float MSE_NONE[6] = {0.025131458f, 0.0017773379f, 0.0070495815f, 0.00053536089f, 0.04894615f, 0.17767946f};
static const float MSE_MEAN[1] = {0.043519899f};
static const float MSE_SUM[1] = {0.2611194f};
static const float MSE_BC[6] = {0.025131458f, 0.0017773379f, 0.0070495815f, 0.16122463f, 0.66294849f, 1.3832556f};

/* {====================================================== helpers */
static double f_x1(int i) { return sin(0.7 * i + 0.3) * 1.5 + 0.2 * (i % 3); }
static double f_x2(int i) { return cos(0.45 * i) * 2 - 0.3; }
static double f_w(int i) { return 0.5 + 0.25 * i; }
static double f_b(int i) { return 0.1 * i - 0.2; }
static double f_x3(int i) { return sin(1.3 * i) * 2; }
static double f_xs(int i) { return sin(0.9 * i) * 3; }
static double f_xl(int i) { return cos(0.8 * i) * 2; }
static double f_a(int i) { return sin(0.5 * i + 1); }
static double f_bb(int i) { return cos(0.3 * i); }

/* a float tensor with element i = fn(i), rounded to float as torch.tensor does */
static md_tensor *fx(int ndim, const int64_t *shape, double (*fn)(int)) {
  md_tensor *t = md_zeros(ndim, shape);
  for (int64_t i = 0; i < md_numel(t); i++) md_set(t, i, (float)fn((int)i));
  return t;
}

/* compare t with a literal array (PyTorch's values) of t's shape; releases t */
static void check_lit(const char *name, md_tensor *t, const float *want, double tol) {
  md_tensor *ref = t ? md_from_data(t->ndim, t->shape, want) : NULL;
  check_close(name, t, ref, tol, tol);
  md_release(ref);
  md_release(t);
}

static md_tensor *req(md_tensor *t) {
  md_set_requires_grad(t, 1);
  return t;
}
/* }====================================================== */

/* {====================================================== batch norm */
typedef struct bnargs {
  md_tensor *rm, *rv;
  int training;
  float momentum, eps;
} bnargs;

/* in: x, weight or NULL, bias or NULL */
static md_tensor *f_bn(md_tensor **in, void *ud) {
  bnargs *a = ud;
  return md_batch_norm(in[0], a->rm, a->rv, in[1], in[2], a->training, a->momentum, a->eps);
}

/* naive double reference of training-mode batch norm on x (N,C,L), with the
** running statistics updated the same way */
static md_tensor *bn_ref(const md_tensor *x, md_tensor *rm, md_tensor *rv, const md_tensor *w,
                         const md_tensor *b, float momentum, float eps) {
  int64_t N = x->shape[0], C = x->shape[1], L = md_numel(x) / (N * C);
  md_tensor *y = md_zeros(x->ndim, x->shape);
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0, M = (double)(N * L);
    for (int64_t n = 0; n < N; n++)
      for (int64_t l = 0; l < L; l++) s += md_get(x, (n * C + c) * L + l);
    double m = s / M;
    for (int64_t n = 0; n < N; n++)
      for (int64_t l = 0; l < L; l++) {
        double d = md_get(x, (n * C + c) * L + l) - m;
        q += d * d;
      }
    double var = q / M, r = 1 / sqrt(var + eps);
    double wc = w ? md_get(w, c) : 1, bc = b ? md_get(b, c) : 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t l = 0; l < L; l++) {
        int64_t k = (n * C + c) * L + l;
        md_set(y, k, (md_get(x, k) - m) * r * wc + bc);
      }
    md_set(rm, c, (1 - momentum) * md_get(rm, c) + momentum * m);
    md_set(rv, c, (1 - momentum) * md_get(rv, c) + momentum * var * M / (M - 1));
  }
  return y;
}

static void test_bn_forward(void) {
  int64_t s4[4] = {2, 3, 2, 2}, s1 = 3, s2[2] = {4, 3};
  md_tensor *x1 = fx(4, s4, f_x1), *x2 = fx(4, s4, f_x2);
  md_tensor *w = fx(1, &s1, f_w), *b = fx(1, &s1, f_b);
  md_tensor *rm = md_zeros(1, &s1), *rv = md_ones(1, &s1);
  check_lit("bn train step 1 vs torch", md_batch_norm(x1, rm, rv, w, b, 1, 0.1f, 1e-5f), BN_Y1, 1e-5);
  check_lit("bn train step 2 vs torch", md_batch_norm(x2, rm, rv, w, b, 1, 0.1f, 1e-5f), BN_Y2, 1e-5);
  check_lit("bn running_mean after 2 steps", md_retain(rm), BN_RM, 1e-6);
  check_lit("bn running_var after 2 steps", md_retain(rv), BN_RV, 1e-6);
  /* eval: the fused path (nothing requires grad) and the composed one */
  md_tensor *rm_before = md_clone(rm), *rv_before = md_clone(rv);
  check_lit("bn eval vs torch (fused)", md_batch_norm(x1, rm, rv, w, b, 0, 0.1f, 1e-5f), BN_YE, 1e-5);
  md_set_requires_grad(x1, 1);
  md_tensor *ye = md_batch_norm(x1, rm, rv, w, b, 0, 0.1f, 1e-5f);
  CHECK(ye && md_grad_fn_name(ye) && !strcmp(md_grad_fn_name(ye), "add"), "bn eval with grad is a composition");
  check_lit("bn eval vs torch (composed)", ye, BN_YE, 1e-5);
  /* eval leaves the running statistics alone */
  check_close("bn eval keeps running_mean", rm, rm_before, 0, 0);
  check_close("bn eval keeps running_var", rv, rv_before, 0, 0);
  md_release(rm_before);
  md_release(rv_before);
  /* training with a graph records one node; same values */
  md_tensor *rm0 = md_zeros(1, &s1), *rv0 = md_ones(1, &s1);
  md_tensor *yt = md_batch_norm(x1, rm0, rv0, w, b, 1, 0.1f, 1e-5f);
  CHECK(yt && md_grad_fn_name(yt) && !strcmp(md_grad_fn_name(yt), "batch_norm"), "bn train records batch_norm");
  check_lit("bn train with graph vs torch", yt, BN_Y1, 1e-5);
  /* (N,C), no weight/bias, another momentum and eps */
  md_tensor *x3 = fx(2, s2, f_x3), *rm3 = md_zeros(1, &s1), *rv3 = md_ones(1, &s1);
  check_lit("bn (N,C) no affine vs torch", md_batch_norm(x3, rm3, rv3, NULL, NULL, 1, 0.3f, 1e-3f), BN2_Y, 1e-5);
  check_lit("bn (N,C) running_mean", md_retain(rm3), BN2_RM, 1e-6);
  check_lit("bn (N,C) running_var", md_retain(rv3), BN2_RV, 1e-6);
  /* no running statistics in training mode is fine (track_running_stats=False) */
  check_lit("bn train without running stats", md_batch_norm(x3, NULL, NULL, NULL, NULL, 1, 0.3f, 1e-3f), BN2_Y, 1e-5);
  md_release(x1); md_release(x2); md_release(w); md_release(b); md_release(rm); md_release(rv);
  md_release(rm0); md_release(rv0); md_release(x3); md_release(rm3); md_release(rv3);
}

/* big enough for the OpenMP paths, and non-contiguous inputs */
static void test_bn_large(void) {
  md_manual_seed(11);
  int64_t s[4] = {8, 16, 16, 16}, c = 16;
  md_tensor *x0 = md_randn(4, s), *x = md_add_scalar(x0, 3.0f); /* a mean that must not cancel */
  md_tensor *w = md_uniform(1, &c, 0.5f, 1.5f), *b = md_uniform(1, &c, -1.0f, 1.0f);
  md_tensor *rm = md_uniform(1, &c, -1.0f, 1.0f), *rv = md_uniform(1, &c, 0.5f, 2.0f);
  md_tensor *rm2 = md_clone(rm), *rv2 = md_clone(rv);
  md_tensor *y = md_batch_norm(x, rm, rv, w, b, 1, 0.2f, 1e-5f);
  md_tensor *yr = bn_ref(x, rm2, rv2, w, b, 0.2f, 1e-5f);
  check_close("bn 8x16x16x16 vs double loops", y, yr, 1e-4, 1e-5);
  check_close("bn 8x16x16x16 running_mean", rm, rm2, 1e-5, 1e-6);
  check_close("bn 8x16x16x16 running_var", rv, rv2, 1e-5, 1e-6);
  /* a transposed (non-contiguous) x gives the same as its contiguous copy */
  md_tensor *xt = md_transpose(x, 2, 3), *xc = md_contiguous(xt);
  md_tensor *yt = md_batch_norm(xt, NULL, NULL, w, b, 1, 0.1f, 1e-5f);
  md_tensor *yc = md_batch_norm(xc, NULL, NULL, w, b, 1, 0.1f, 1e-5f);
  CHECK(xt && !md_is_contiguous(xt), "transposed x is strided");
  check_close("bn non-contiguous x", yt, yc, 1e-6, 1e-6);
  md_tensor *ye = md_batch_norm(xt, rm, rv, w, b, 0, 0.1f, 1e-5f), *yec = md_batch_norm(xc, rm, rv, w, b, 0, 0.1f, 1e-5f);
  check_close("bn eval non-contiguous x", ye, yec, 1e-6, 1e-6);
  md_release(x0); md_release(x); md_release(w); md_release(b); md_release(rm); md_release(rv);
  md_release(rm2); md_release(rv2); md_release(y); md_release(yr); md_release(xt); md_release(xc);
  md_release(yt); md_release(yc); md_release(ye); md_release(yec);
}

static void test_bn_grads(void) {
  md_manual_seed(1);
  int64_t s4[4] = {3, 2, 2, 2}, s2[2] = {5, 3}, c2 = 2, c3 = 3;
  bnargs tr = {NULL, NULL, 1, 0.1f, 1e-5f};
  {
    md_tensor *in[3] = {req(rnd(4, s4)), req(md_uniform(1, &c2, 0.5f, 1.5f)), req(rnd(1, &c2))};
    gradcheck("bn train w,b", f_bn, 3, in, &tr, 1e-2, 1e-2);
    gradgradcheck("bn train w,b", f_bn, 3, in, &tr, 1e-2, 2e-2);
    for (int i = 0; i < 3; i++) md_release(in[i]);
  }
  {
    md_tensor *in[3] = {req(rnd(2, s2)), NULL, NULL};
    gradcheck("bn train no affine", f_bn, 3, in, &tr, 1e-2, 1e-2);
    gradgradcheck("bn train no affine", f_bn, 3, in, &tr, 1e-2, 2e-2);
    md_release(in[0]);
  }
  {
    /* weight only, and bias only */
    md_tensor *in[3] = {req(rnd(2, s2)), req(md_uniform(1, &c3, 0.5f, 1.5f)), NULL};
    gradcheck("bn train w only", f_bn, 3, in, &tr, 1e-2, 1e-2);
    gradgradcheck("bn train w only", f_bn, 3, in, &tr, 1e-2, 2e-2);
    in[2] = req(rnd(1, &c3));
    md_release(in[1]);
    in[1] = NULL;
    gradcheck("bn train b only", f_bn, 3, in, &tr, 1e-2, 1e-2);
    gradgradcheck("bn train b only", f_bn, 3, in, &tr, 1e-2, 2e-2);
    md_release(in[0]);
    md_release(in[2]);
  }
  {
    bnargs ev = {md_uniform(1, &c2, -0.5f, 0.5f), md_uniform(1, &c2, 0.5f, 1.5f), 0, 0.1f, 1e-5f};
    md_tensor *in[3] = {req(rnd(4, s4)), req(md_uniform(1, &c2, 0.5f, 1.5f)), req(rnd(1, &c2))};
    gradcheck("bn eval w,b", f_bn, 3, in, &ev, 1e-2, 1e-2);
    gradgradcheck("bn eval w,b", f_bn, 3, in, &ev, 1e-2, 1e-2);
    md_release(in[1]);
    md_release(in[2]);
    in[1] = in[2] = NULL;
    gradcheck("bn eval no affine", f_bn, 3, in, &ev, 1e-2, 1e-2);
    gradgradcheck("bn eval no affine", f_bn, 3, in, &ev, 1e-2, 1e-2);
    md_release(in[0]);
    md_release(ev.rm);
    md_release(ev.rv);
  }
}

/* the fused first-order backward (create_graph off) against the composed
** formula (create_graph on): same numbers, and only the second has a graph */
static void test_bn_fused_vs_composed(void) {
  md_manual_seed(5);
  int64_t s[4] = {4, 3, 5, 5}, c = 3;
  md_tensor *x = req(md_randn(4, s)), *w = req(md_uniform(1, &c, 0.5f, 1.5f)), *b = req(rnd(1, &c));
  md_tensor *u = md_randn(4, s);
  md_tensor *y = md_batch_norm(x, NULL, NULL, w, b, 1, 0.1f, 1e-5f);
  md_tensor *uy = md_mul(u, y), *L = md_sum(uy, 0, NULL, 0);
  md_tensor *wrt[3] = {x, w, b}, *g1[3] = {0}, *g2[3] = {0};
  int rc1 = md_grad(1, &L, NULL, 3, wrt, g1, 0, 1, 0);
  int rc2 = md_grad(1, &L, NULL, 3, wrt, g2, 1, 1, 0);
  CHECK(rc1 == MD_OK && rc2 == MD_OK, "bn fused and composed backward run");
  CHECK(g1[0] && !md_requires_grad(g1[0]), "bn fused backward has no graph");
  CHECK(g2[0] && md_requires_grad(g2[0]), "bn composed backward has a graph");
  check_close("bn fused vs composed dx", g1[0], g2[0], 1e-4, 1e-5);
  check_close("bn fused vs composed dw", g1[1], g2[1], 1e-4, 1e-5);
  check_close("bn fused vs composed db", g1[2], g2[2], 1e-4, 1e-5);
  /* and a strided incoming gradient (an expanded u) */
  md_tensor *u1 = md_randn(4, (int64_t[]){1, 3, 5, 1});
  md_tensor *ue = md_expand(u1, 4, s), *g3[3] = {0}, *g4[3] = {0};
  md_tensor *gy[1] = {ue};
  rc1 = md_grad(1, &y, gy, 3, wrt, g3, 0, 1, 0);
  rc2 = md_grad(1, &y, gy, 3, wrt, g4, 1, 1, 0);
  CHECK(rc1 == MD_OK && rc2 == MD_OK, "bn backward with an expanded gradient");
  check_close("bn fused vs composed dx, expanded g", g3[0], g4[0], 1e-4, 1e-5);
  check_close("bn fused vs composed dw, expanded g", g3[1], g4[1], 1e-4, 1e-5);
  for (int i = 0; i < 3; i++) {
    md_release(g1[i]); md_release(g2[i]); md_release(g3[i]); md_release(g4[i]);
  }
  md_release(x); md_release(w); md_release(b); md_release(u); md_release(y); md_release(uy);
  md_release(L); md_release(u1); md_release(ue);
}

static void test_bn_errors(void) {
  int64_t s4[4] = {2, 3, 2, 2}, c3 = 3, c4 = 4, s1[2] = {1, 3}, s11[4] = {1, 3, 1, 1};
  int64_t s14[4] = {1, 3, 2, 2};
  md_tensor *x = md_zeros(4, s4), *v3 = md_ones(1, &c3), *v4 = md_ones(1, &c4);
  md_tensor *x1 = md_zeros(1, &c3), *b1 = md_zeros(2, s1), *b11 = md_zeros(4, s11);
  md_tensor *xi = md_from_i64(1, &c3, (int64_t[]){1, 2, 3});
  CHECK_ERR(md_batch_norm(x1, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "at least 2 dimensions", "bn error: 1-d x");
  CHECK_ERR(md_batch_norm(x, v4, v3, NULL, NULL, 1, 0.1f, 1e-5f), "running_mean should be 1-d with 3 elements", "bn error: running_mean size");
  CHECK_ERR(md_batch_norm(x, v3, v4, NULL, NULL, 0, 0.1f, 1e-5f), "running_var should be 1-d with 3 elements", "bn error: running_var size");
  CHECK_ERR(md_batch_norm(x, NULL, NULL, v4, NULL, 1, 0.1f, 1e-5f), "weight should be 1-d with 3 elements", "bn error: weight C mismatch");
  CHECK_ERR(md_batch_norm(x, NULL, NULL, NULL, v4, 1, 0.1f, 1e-5f), "bias should be 1-d with 3 elements", "bn error: bias C mismatch");
  CHECK_ERR(md_batch_norm(x, NULL, NULL, NULL, NULL, 0, 0.1f, 1e-5f), "running_mean must be defined in evaluation mode", "bn error: eval without stats");
  CHECK_ERR(md_batch_norm(x, v3, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "given together", "bn error: running_mean alone");
  CHECK_ERR(md_batch_norm(b1, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "Expected more than 1 value per channel when training", "bn error: batch of 1 (N,C)");
  CHECK_ERR(md_batch_norm(b11, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "Expected more than 1 value per channel when training", "bn error: batch of 1, 1x1");
  CHECK_ERR(md_batch_norm(x, xi, v3, NULL, NULL, 1, 0.1f, 1e-5f), "must be a float tensor", "bn error: integer running_mean");
  CHECK_ERR(md_batch_norm(NULL, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "missing", "bn error: NULL x");
  /* a running statistic that requires grad cannot be updated in place */
  md_tensor *rq = req(md_zeros(1, &c3));
  CHECK_ERR(md_batch_norm(x, rq, v3, NULL, NULL, 1, 0.1f, 1e-5f), "require grad", "bn error: running stats require grad");
  /* batch of 1 is fine in eval mode, and in training when H*W > 1 */
  md_tensor *ok1 = md_batch_norm(b11, v3, v3, NULL, NULL, 0, 0.1f, 1e-5f);
  md_tensor *x14 = md_zeros(4, s14), *ok2 = md_batch_norm(x14, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
  CHECK(ok1 && ok2, "bn batch of 1: eval, and training with H*W > 1");
  /* a failed call leaves the running statistics alone */
  CHECK(md_get(v3, 0) == 1.0 && md_get(v4, 0) == 1.0, "bn errors leave running stats alone");
  md_release(x); md_release(v3); md_release(v4); md_release(x1); md_release(b1); md_release(b11);
  md_release(xi); md_release(rq); md_release(ok1); md_release(x14); md_release(ok2);
}
/* }====================================================== */

/* {====================================================== softmax */
typedef struct smargs {
  int dim, log;
} smargs;
static md_tensor *f_sm(md_tensor **in, void *ud) {
  smargs *a = ud;
  return a->log ? md_log_softmax(in[0], a->dim) : md_softmax(in[0], a->dim);
}

/* naive double (log_)softmax of x over dim */
static md_tensor *sm_ref(const md_tensor *x, int dim, int logsm) {
  int nd = x->ndim, d = dim < 0 ? dim + nd : dim;
  int64_t outer = 1, inner = 1, D = x->shape[d];
  for (int i = 0; i < d; i++) outer *= x->shape[i];
  for (int i = d + 1; i < nd; i++) inner *= x->shape[i];
  md_tensor *y = md_zeros(nd, x->shape);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < D; k++) m = fmax(m, md_get(x, (o * D + k) * inner + i));
      for (int64_t k = 0; k < D; k++) s += exp(md_get(x, (o * D + k) * inner + i) - m);
      for (int64_t k = 0; k < D; k++) {
        double v = md_get(x, (o * D + k) * inner + i) - m;
        md_set(y, (o * D + k) * inner + i, logsm ? v - log(s) : exp(v) / s);
      }
    }
  return y;
}

static void test_softmax(void) {
  int64_t s3[3] = {2, 3, 4};
  md_tensor *xs = fx(3, s3, f_xs);
  check_lit("softmax dim 1 vs torch", md_softmax(xs, 1), SM_D1, 1e-6);
  check_lit("log_softmax dim -1 vs torch", md_log_softmax(xs, -1), LSM_DM1, 1e-5);
  check_lit("log_softmax dim 0 vs torch", md_log_softmax(xs, 0), LSM_D0, 1e-5);
  md_release(xs);

  /* large shapes (OpenMP, the blocked strided path with a partial block),
  ** and a non-contiguous input */
  md_manual_seed(3);
  int64_t sa[2] = {64, 700}, sb[3] = {4, 300, 70};
  md_tensor *xa = md_randn(2, sa), *xb0 = md_randn(3, sb), *xb = md_mul_scalar(xb0, 4.0f);
  struct { md_tensor *x; int dim; const char *name; } cases[] = {
    {xa, 1, "64x700 dim 1"}, {xa, 0, "64x700 dim 0"}, {xb, 1, "4x300x70 dim 1"},
    {xb, 0, "4x300x70 dim 0"}, {xb, 2, "4x300x70 dim 2"}};
  char nm[128];
  for (int k = 0; k < 5; k++)
    for (int lg = 0; lg < 2; lg++) {
      md_tensor *y = lg ? md_log_softmax(cases[k].x, cases[k].dim) : md_softmax(cases[k].x, cases[k].dim);
      md_tensor *r = sm_ref(cases[k].x, cases[k].dim, lg);
      snprintf(nm, sizeof nm, "%s %s vs double loops", lg ? "log_softmax" : "softmax", cases[k].name);
      check_close(nm, y, r, 1e-5, 1e-6);
      md_release(y);
      md_release(r);
    }
  md_tensor *xt = md_transpose(xb, 0, 2); /* (70,300,4), strided */
  md_tensor *yt = md_softmax(xt, 1), *rt = sm_ref(xt, 1, 0);
  check_close("softmax non-contiguous x", yt, rt, 1e-5, 1e-6);
  md_tensor *lt = md_log_softmax(xt, -1), *lr = sm_ref(xt, -1, 1);
  check_close("log_softmax non-contiguous x", lt, lr, 1e-5, 1e-6);
  md_release(xa); md_release(xb0); md_release(xb); md_release(xt); md_release(yt); md_release(rt);
  md_release(lt); md_release(lr);

  /* numerical stability: huge and very negative logits */
  int64_t s2 = 3;
  md_tensor *big = md_from_data(1, &s2, (float[]){1000.0f, 1001.0f, -1000.0f});
  md_tensor *sb1 = md_softmax(big, 0), *lb1 = md_log_softmax(big, 0);
  md_tensor *wsb = md_from_data(1, &s2, (float[]){0.26894142f, 0.73105858f, 0.0f});
  md_tensor *wlb = md_from_data(1, &s2, (float[]){-1.31326169f, -0.31326169f, -2001.31326169f});
  check_close("softmax of huge logits", sb1, wsb, 1e-6, 1e-7);
  check_close("log_softmax of huge logits", lb1, wlb, 1e-6, 1e-5);
  md_release(big); md_release(sb1); md_release(lb1); md_release(wsb); md_release(wlb);

  /* derivatives over every dim of a 3-d tensor */
  md_manual_seed(7);
  int64_t sg[3] = {2, 3, 4};
  md_tensor *x = req(md_uniform(3, sg, -2.0f, 2.0f));
  int dims[3] = {0, 1, -1};
  for (int k = 0; k < 3; k++)
    for (int lg = 0; lg < 2; lg++) {
      smargs a = {dims[k], lg};
      snprintf(nm, sizeof nm, "%s dim %d", lg ? "log_softmax" : "softmax", dims[k]);
      gradcheck(nm, f_sm, 1, &x, &a, 1e-2, 1e-2);
      gradgradcheck(nm, f_sm, 1, &x, &a, 1e-2, 1e-2);
    }
  md_release(x);

  md_tensor *xi = md_from_i64(1, &s2, (int64_t[]){1, 2, 3}), *x3 = md_zeros(3, sg);
  CHECK_ERR(md_softmax(x3, 3), "dim 3 out of range", "softmax error: dim out of range");
  CHECK_ERR(md_log_softmax(x3, -4), "dim -4 out of range", "log_softmax error: dim out of range");
  CHECK_ERR(md_softmax(xi, 0), "must be a float tensor", "softmax error: integer x");
  CHECK_ERR(md_log_softmax(NULL, 0), "missing", "log_softmax error: NULL x");
  md_release(xi);
  md_release(x3);
}
/* }====================================================== */

/* {====================================================== losses */
typedef struct lossargs {
  md_tensor *target;
  int reduction;
} lossargs;
static md_tensor *f_nll(md_tensor **in, void *ud) {
  lossargs *a = ud;
  return md_nll_loss(in[0], a->target, a->reduction);
}
static md_tensor *f_ce(md_tensor **in, void *ud) {
  lossargs *a = ud;
  return md_cross_entropy(in[0], a->target, a->reduction);
}
static md_tensor *f_mse(md_tensor **in, void *ud) {
  lossargs *a = ud;
  return md_mse_loss(in[0], in[1], a->reduction);
}

static void test_losses(void) {
  int64_t s34[2] = {3, 4}, n3 = 3, s23[2] = {2, 3};
  md_tensor *xl = fx(2, s34, f_xl), *tg = md_from_i64(1, &n3, (int64_t[]){2, 0, 3});
  md_tensor *lp = md_log_softmax(xl, 1);
  check_lit("nll none vs torch", md_nll_loss(lp, tg, 0), NLL_NONE, 1e-5);
  check_lit("nll mean vs torch", md_nll_loss(lp, tg, 1), NLL_MEAN, 1e-5);
  check_lit("nll sum vs torch", md_nll_loss(lp, tg, 2), NLL_SUM, 1e-5);
  check_lit("cross_entropy none vs torch", md_cross_entropy(xl, tg, 0), CE_NONE, 1e-5);
  check_lit("cross_entropy mean vs torch", md_cross_entropy(xl, tg, 1), CE_MEAN, 1e-5);
  check_lit("cross_entropy sum vs torch", md_cross_entropy(xl, tg, 2), CE_SUM, 1e-5);
  md_tensor *l0 = md_nll_loss(lp, tg, 1);
  CHECK(l0 && l0->ndim == 0, "nll mean is 0-dim");
  md_release(l0);
  md_tensor *a = fx(2, s23, f_a), *bb = fx(2, s23, f_bb), *b0 = md_slice(bb, 0, 0, 1);
  md_tensor *b1 = md_reshape(b0, 1, &n3);
  check_lit("mse none vs torch", md_mse_loss(a, bb, 0), MSE_NONE, 1e-6);
  check_lit("mse mean vs torch", md_mse_loss(a, bb, 1), MSE_MEAN, 1e-6);
  check_lit("mse sum vs torch", md_mse_loss(a, bb, 2), MSE_SUM, 1e-6);
  check_lit("mse broadcast vs torch", md_mse_loss(a, b1, 0), MSE_BC, 1e-6);

  /* derivatives: every reduction */
  md_manual_seed(9);
  const char *rn[3] = {"none", "mean", "sum"};
  char nm[96];
  md_tensor *lpr = req(md_uniform(2, s34, -3.0f, 0.0f)), *xr = req(md_uniform(2, s34, -2.0f, 2.0f));
  md_tensor *in2[2] = {req(rnd(2, s23)), req(rnd(2, s23))};
  md_tensor *inb[2] = {req(rnd(2, s23)), req(rnd(1, &n3))};
  for (int r = 0; r < 3; r++) {
    lossargs la = {tg, r};
    snprintf(nm, sizeof nm, "nll %s", rn[r]);
    gradcheck(nm, f_nll, 1, &lpr, &la, 1e-2, 1e-2);
    gradgradcheck(nm, f_nll, 1, &lpr, &la, 1e-2, 1e-2);
    snprintf(nm, sizeof nm, "cross_entropy %s", rn[r]);
    gradcheck(nm, f_ce, 1, &xr, &la, 1e-2, 1e-2);
    gradgradcheck(nm, f_ce, 1, &xr, &la, 1e-2, 1e-2);
    snprintf(nm, sizeof nm, "mse %s", rn[r]);
    gradcheck(nm, f_mse, 2, in2, &la, 1e-2, 1e-2);
    gradgradcheck(nm, f_mse, 2, in2, &la, 1e-2, 1e-2);
    snprintf(nm, sizeof nm, "mse broadcast %s", rn[r]);
    gradcheck(nm, f_mse, 2, inb, &la, 1e-2, 1e-2);
    gradgradcheck(nm, f_mse, 2, inb, &la, 1e-2, 1e-2);
  }

  /* errors */
  md_tensor *bad = md_from_i64(1, &n3, (int64_t[]){2, 4, 0}), *neg = md_from_i64(1, &n3, (int64_t[]){0, 1, -1});
  int64_t n2 = 2;
  md_tensor *t2 = md_from_i64(1, &n2, (int64_t[]){0, 1}), *tf = md_zeros(1, &n3), *l1 = md_zeros(1, &n3);
  int64_t s4 = 4;
  md_tensor *v4 = md_zeros(1, &s4);
  CHECK_ERR(md_nll_loss(lp, bad, 1), "Target 4 is out of bounds: target[1] = 4", "nll error: target too large");
  CHECK_ERR(md_nll_loss(lp, neg, 0), "target[2] = -1 is not in [0, 4)", "nll error: negative target");
  CHECK_ERR(md_nll_loss(lp, t2, 1), "target must be (N) = (3)", "nll error: target length");
  CHECK_ERR(md_nll_loss(lp, tf, 1), "must be an integer", "nll error: float target");
  CHECK_ERR(md_nll_loss(l1, tg, 1), "nll_loss: logp must be (N,C)", "nll error: 1-d logp");
  CHECK_ERR(md_nll_loss(lp, tg, 3), "reduction 3 is not", "nll error: bad reduction");
  CHECK_ERR(md_cross_entropy(xl, bad, 1), "cross_entropy: Target 4 is out of bounds", "cross_entropy error: target");
  CHECK_ERR(md_cross_entropy(l1, tg, 1), "cross_entropy: logits must be (N,C)", "cross_entropy error: 1-d logits");
  CHECK_ERR(md_mse_loss(a, v4, 1), "mse_loss", "mse error: shapes do not broadcast");
  CHECK_ERR(md_mse_loss(a, bb, -1), "mse_loss: reduction -1 is not", "mse error: bad reduction");
  CHECK_ERR(md_mse_loss(a, tg, 1), "must be a float tensor", "mse error: integer b");

  md_release(xl); md_release(tg); md_release(lp); md_release(a); md_release(bb); md_release(b0);
  md_release(b1); md_release(lpr); md_release(xr); md_release(in2[0]); md_release(in2[1]);
  md_release(inb[0]); md_release(inb[1]); md_release(bad); md_release(neg); md_release(t2);
  md_release(tf); md_release(l1); md_release(v4);
}
/* }====================================================== */

/* {====================================================== dropout */
static void test_dropout(void) {
  md_manual_seed(2);
  int64_t s[2] = {100, 100};
  md_tensor *x = req(md_uniform(2, s, 0.5f, 1.5f));
  md_tensor *e = md_dropout(x, 0.3f, 0), *z = md_dropout(x, 0.0f, 1);
  CHECK(e == x && z == x && x->refcount == 3, "dropout eval and p=0 give x itself (new refs)");
  md_release(e);
  md_release(z);
  md_tensor *y = md_dropout(x, 0.3f, 1);
  int64_t zeros = 0, bad = 0, n = md_numel(x);
  for (int64_t i = 0; i < n; i++) {
    double v = md_get(y, i), xv = md_get(x, i);
    if (v == 0)
      zeros++;
    else if (fabs(v - xv / 0.7f) > 1e-6 * fabs(v))
      bad++;
  }
  CHECK(bad == 0, "dropout keeps x/(1-p)");
  CHECK(fabs((double)zeros / n - 0.3) < 0.02, "dropout drops about p");
  /* the gradient is the scaled mask: d sum(y) / dx = y / x */
  md_tensor *L = md_sum(y, 0, NULL, 0), *g = NULL;
  CHECK(md_grad(1, &L, NULL, 1, &x, &g, 0, 0, 0) == MD_OK, "dropout backward");
  md_tensor *want = md_div(y, x);
  check_close("dropout gradient is the scaled mask", g, want, 1e-6, 1e-7);
  md_tensor *y1 = md_dropout(x, 1.0f, 1), *zz = md_zeros(2, s);
  check_close("dropout p=1 gives zeros", y1, zz, 0, 0);
  CHECK(md_requires_grad(y1), "dropout p=1 stays in the graph");
  CHECK_ERR(md_dropout(x, 1.5f, 1), "probability has to be between 0 and 1, but got 1.5", "dropout error: p > 1");
  CHECK_ERR(md_dropout(x, -0.1f, 0), "probability has to be between 0 and 1", "dropout error: p < 0");
  CHECK_ERR(md_dropout(x, NAN, 1), "probability has to be between 0 and 1", "dropout error: p NaN");
  md_release(x); md_release(y); md_release(L); md_release(g); md_release(want); md_release(y1);
  md_release(zz);
}
/* }====================================================== */

int main(void) {
  (void)away_from; /* nothing here has a kink; keeps -Wunused-function quiet */
  md_manual_seed(1234);
  test_bn_forward();
  test_bn_large();
  test_bn_grads();
  test_bn_fused_vs_composed();
  test_bn_errors();
  test_softmax();
  test_losses();
  test_dropout();
  return summary();
}
