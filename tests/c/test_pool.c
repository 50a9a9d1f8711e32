/*
** test_pool.c -- max / average / adaptive pooling: forward values against
** PyTorch and hand-computed cases, a naive reference on larger inputs (the
** OpenMP path), gradcheck and gradgradcheck for every op, the adjoint
** identity of each closed pair, and the error paths.
*/
#include "check.h"

/* {====================================================== reference values
** Made once with PyTorch 1.13 (/usr/bin/python3), float32, by:
**   import torch, torch.nn.functional as F
**   def perm(*s):   # = perm_input() below: distinct values in [-2, 2)
**       n = prod(s); v = [((i*37+11) % n)/n*4.0-2.0 for i in range(n)]
**       return torch.tensor(v, dtype=torch.float64).float().reshape(s)
**   MAX1, MAX1_IDX   = F.max_pool2d(perm(2,3,5,6), 3, 2, 1, return_indices=True)
**   MAX2, MAX2_IDX   = F.max_pool2d(perm(1,2,7,7), (3,2), (2,3), (1,1), (2,1),
**                                   ceil_mode=True, return_indices=True)
**   MAX3, MAX3_IDX   = F.max_pool2d(perm(1,2,5,5), 2, 2, 1, ceil_mode=True,
**                                   return_indices=True)   # ceil rule: 3x3, not 4x4
**   AVG1 / AVG2      = F.avg_pool2d(perm(2,3,5,6), 3, 2, 1, count_include_pad=True / False)
**   AVG3 / AVG4      = F.avg_pool2d(perm(1,2,6,7), (3,2), (2,2), (1,1), ceil_mode=True,
**                                   count_include_pad=True / False)
**   AAVG1            = F.adaptive_avg_pool2d(perm(2,3,7,5), (3,2))
**   AAVG2            = F.adaptive_avg_pool2d(perm(1,2,2,3), (3,5))
**   AMAX1, AMAX1_IDX = F.adaptive_max_pool2d(perm(2,3,7,5), (3,2), return_indices=True)
**   AMAX2, AMAX2_IDX = F.adaptive_max_pool2d(perm(1,2,2,3), (3,5), return_indices=True)
** printed with '%.9g'. */
static const float MAX1[54] = {
    0,          1.64444447, 1.64444447,  1.86666667, 1.86666667,  1.64444447,  1.97777772,
    1.86666667, 1.26666665, 0.666666687, 1.48888886, 1.37777781,  1.71111107,  1.60000002,
    1.82222223, 1.71111107, 1.11111116,  1.93333328, 1.33333337,  1.33333337,  0.622222245,
    1.44444442, 1.33333337, 1.66666663,  0.13333334, 1.77777779,  1.77777779,  1.17777777,
    1.88888884, 1.28888893, 1.17777777,  1.51111114, 1.51111114,  0.800000012, 1.62222219,
    1.51111114, 1.84444439, 1.73333335,  1.95555556, 1.84444439,  1.35555553,  1.95555556,
    1.4666667,  1.4666667,  0.75555557,  1.57777774, 0.977777779, 1.79999995,  1.20000005,
    1.91111112, 1.91111112, 1.31111109,  1.20000005, 1.42222226};
static const int64_t MAX1_IDX[54] = {7,  9,  9,  19, 19, 9,  24, 19, 28, 7,  8,  3,  18, 13,
                                     23, 18, 27, 28, 7,  7,  11, 12, 7,  22, 25, 27, 27, 6,
                                     2,  11, 6,  21, 21, 25, 26, 21, 6,  1,  11, 6,  20, 11,
                                     25, 25, 29, 0,  9,  10, 19, 15, 15, 24, 19, 29};
static const float MAX2[18] = {1.02040815,  1.55102038,   1.71428573, 1.02040815, 1.55102038,
                               1.71428573,  -0.693877578, 1.1836735,  1.71428573, 0.163265303,
                               0.693877578, 1.22448981,   1.30612242, 1.83673465, 1.22448981,
                               1.30612242,  1.83673465,   1.22448981};
static const int64_t MAX2_IDX[18] = {7,  10, 26, 7,  10, 26, 35, 23, 26,
                                     21, 24, 27, 35, 38, 27, 35, 38, 27};
static const float MAX3[18] = {-1.12,        1.84000003,   -0.239999995, 1.67999995, 0.639999986,
                               1.51999998,   -0.720000029, 1.20000005,   1.91999996, 0.879999995,
                               -0.159999996, 1.75999999,   -0.319999993, 1.60000002, 0.560000002,
                               1.27999997,   0.239999995,  1.12};
static const int64_t MAX3_IDX[18] = {0, 1, 3, 5, 6, 9, 15, 17, 24, 0, 1, 3, 5, 7, 8, 15, 16, 19};
static const float AVG1[54] = {
    -0.390123457,  0.237037048,  -6.62273836e-09, 0.348148137,   0.422222257,   -0.155555576,
    0.409876525,   -0.118518524, 0.0888888836,    -0.0938271582, 0.237037018,   -0.444444448,
    0.348148137,   -0.244444445, 0.0666666329,    -0.182716057,  -0.118518509,  0.533333361,
    0.20246914,    -0.207407415, -0.444444418,    -0.0962962881, -0.466666758,  0.288888872,
    -0.330864191,  0.325925946,  0.0888888761,    0.0543209985,  -0.207407415,  0,
    -0.540740728,  -0.24444437,  0.0666666999,    -0.0345679075, 0.325925916,   -0.355555564,
    0.35061726,    -0.207407415, 0.444444448,     -0.096296303,  -0.0222222283, -0.155555561,
    0.261728406,   -0.118518509, -0.355555534,    -0.241975307,  -0.207407415,  0.444444418,
    -0.0962962806, 0.200000003,  0.0666666478,    0.113580242,   -0.562962949,  0.0888888836};
static const float AVG2[54] = {
    -0.877777755, 0.355555564,  -9.93410776e-09, 0.522222221,  0.422222257,   -0.155555576,
    0.922222197,  -0.177777782, 0.133333325,     -0.211111113, 0.355555534,   -0.666666687,
    0.522222221,  -0.244444445, 0.0666666329,    -0.411111116, -0.177777767,  0.800000012,
    0.455555558,  -0.311111122, -0.666666627,    -0.144444436, -0.466666758,  0.288888872,
    -0.74444443,  0.48888889,   0.13333331,      0.122222245,  -0.311111122,  0,
    -0.811111033, -0.24444437,  0.0666666999,    -0.077777788, 0.48888886,    -0.533333361,
    0.788888812,  -0.311111122, 0.666666687,     -0.144444451, -0.0222222283, -0.155555561,
    0.588888884,  -0.177777767, -0.533333302,    -0.544444442, -0.311111122,  0.666666627,
    -0.144444421, 0.200000003,  0.0666666478,    0.25555554,   -0.844444454,  0.133333325};
static const float AVG3[32] = {
    -0.43650794,   -0.444444418, 0.571428597,   0.253968269,   -0.40476191,  -0.166666657,
    0.0238095522,  0.214285716,  -0.0714285746, 0.49999997,    0.0238095224, -0.452380925,
    0.0476190485,  0.416666657,  0.178571418,   -0.0595238209, 0.230158731,  -0.444444418,
    -0.0952380896, 0.253968269,  0.595238149,   -0.166666672,  -0.642857194, -0.452380985,
    0.261904746,   0.5,          0.0238095317,  -0.452380925,  -0.452380955, 0.416666657,
    0.178571433,   -0.059523806};
static const float AVG4[32] = {-1.30952382,  -0.666666627, 0.857142866,  0.380952388,  -0.809523821,
                               -0.166666657, 0.0238095522, 0.214285716,  -0.142857149, 0.49999997,
                               0.0238095224, -0.452380925, 0.190476194,  0.833333313,  0.357142836,
                               -0.119047642, 0.690476179,  -0.666666627, -0.142857134, 0.380952418,
                               1.1904763,    -0.166666672, -0.642857194, -0.452380985, 0.523809493,
                               0.5,          0.0238095317, -0.452380925, -1.80952382,  0.833333313,
                               0.357142866,  -0.119047612};
static const float AAVG1[36] = {
    -0.228571415,   -0.152380943, 0.596825421,  -0.660317481, 0.533333361,  0.16507937,
    -0.450793624,   0.514285743,  -0.069841288, -0.438095242, 0.75555557,   -0.501587272,
    -0.22857143,    0.736507952,  -0.736507952, 0.22857143,   0.088888891,  -0.72380954,
    0.438095301,    0.0698412806, -0.514285743, 0.450793713,  -0.577777743, -0.0571428575,
    0.66031754,     -0.596825421, 0.152380943,  0.22857143,   -0.800000012, 0.609523773,
    -0.00634919293, -0.81904763,  0.374603182,  -0.438095242, -0.133333325, 0.831746101};
static const float AAVG2[30] = {1.66666663,   -0.166666687, -2,   -1.83333325,  -1.66666663,
                                0.166666627,  -0.666666687, -1.5, -1.33333325,  -1.16666663,
                                -1.33333337,  -1.16666675,  -1,   -0.833333373, -0.666666687,
                                -0.333333343, -0.166666672, 0,    0.166666672,  0.333333343,
                                0.166666672,  0.333333343,  0.5,  0.666666687,  0.833333373,
                                0.666666687,  0.833333373,  1,    1.16666675,   1.33333337};
static const float AMAX1[36] = {
    1.96190476,  1.02857149, 1.96190476,  1.71428573,  1.71428573,  1.94285715,
    1.92380953,  1.69523811, 1.92380953,  0.742857158, 1.90476191,  1.90476191,
    0.952380955, 1.88571429, 1.63809526,  1.40952384,  1.86666667,  0.45714286,
    1.61904764,  1.84761906, 0.666666687, 1.60000002,  1.82857144,  1.12380958,
    1.80952382,  1.80952382, 1.33333337,  1.7904762,   0.380952388, 1.7904762,
    1.77142859,  0.36190477, 1.52380955,  1.75238097,  1.0476191,   1.98095238};
static const int64_t AMAX1_IDX[36] = {11, 4, 11, 22, 22, 28, 10, 4, 10, 14, 27, 27,
                                      2,  9, 20, 14, 26, 24, 2,  8, 12, 19, 25, 24,
                                      7,  7, 12, 24, 22, 24, 6,  4, 17, 23, 22, 29};
static const float AMAX2[30] = {1.66666663,   1.66666663, -2, -1.66666663,  -1.66666663,
                                1.66666663,   1.66666663, -1, -0.666666687, -0.666666687,
                                -1.33333337,  -1,         -1, -0.666666687, -0.666666687,
                                -0.333333343, 0,          0,  0.333333343,  0.333333343,
                                0.666666687,  1,          1,  1.33333337,   1.33333337,
                                0.666666687,  1,          1,  1.33333337,   1.33333337};
static const int64_t AMAX2_IDX[30] = {0, 0, 1, 2, 2, 0, 0, 4, 5, 5, 3, 4, 4, 5, 5,
                                      0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 3, 4, 4, 5, 5};
/* }====================================================== */

/* {====================================================== helpers */
#define SHAPE4(a, b, c, d) ((const int64_t[]){a, b, c, d})

/* distinct values in [-2, 2) (37 is coprime to every size used), so max
** pooling has no ties; the generator of the reference values above */
static md_tensor *perm_input(int64_t N, int64_t C, int64_t H, int64_t W) {
  md_tensor *x = md_empty(4, SHAPE4(N, C, H, W), MD_F32);
  int64_t n = N * C * H * W;
  float *p = x->data;
  for (int64_t i = 0; i < n; i++)
    p[i] = (float)((double)((i * 37 + 11) % n) / (double)n * 4.0 - 2.0);
  return x;
}

static const char *shape_of(const md_tensor *t) {
  static char b[64];
  return md_shape_str(t, b, sizeof b);
}

static md_pool_params pp(int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int ceil,
                         int cip) {
  md_pool_params p = {{kh, kw}, {sh, sw}, {ph, pw}, {dh, dw}, ceil, cip};
  return p;
}

/* compare with a reference array of the expected shape */
static void check_ref(const char *name, md_tensor *y, int64_t N, int64_t C, int64_t H, int64_t W,
                      const float *want) {
  char nm[160];
  snprintf(nm, sizeof nm, "%s shape", name);
  if (!y) {
    report(0, name, "failed: %s", md_last_error());
    return;
  }
  int ok =
      y->ndim == 4 && y->shape[0] == N && y->shape[1] == C && y->shape[2] == H && y->shape[3] == W;
  report(ok, nm, "%s", shape_of(y));
  md_tensor *r = md_from_data(4, SHAPE4(N, C, H, W), want);
  check_close(name, y, r, 1e-5, 1e-6);
  md_release(r);
}

static void check_idx(const char *name, md_tensor *idx, const int64_t *want, int64_t n) {
  if (!idx || idx->dtype != MD_I64 || md_numel(idx) != n) {
    report(0, name, "missing or wrong index tensor: %s", md_last_error());
    return;
  }
  int64_t bad = -1;
  for (int64_t i = 0; i < n && bad < 0; i++)
    if ((int64_t)md_get(idx, i) != want[i]) bad = i;
  if (bad < 0)
    report(1, name, "all %lld equal", (long long)n);
  else
    report(0, name, "at %lld: got %lld want %lld", (long long)bad, (long long)md_get(idx, bad),
           (long long)want[bad]);
}

static double dot(const md_tensor *a, const md_tensor *b) {
  double s = 0;
  for (int64_t i = 0; i < md_numel(a); i++) s += md_get(a, i) * md_get(b, i);
  return s;
}

/* <A x, y> = <x, A^T y> for random x, y */
static void check_adjoint(const char *name, md_tensor *x, md_tensor *Ax, md_tensor *y,
                          md_tensor *ATy) {
  if (!Ax || !ATy) {
    report(0, name, "failed: %s", md_last_error());
  } else {
    double l = dot(Ax, y), r = dot(x, ATy);
    report(fabs(l - r) <= 1e-5 * (1 + fabs(l)), name, "<Ax,y>=%.9g <x,ATy>=%.9g", l, r);
  }
  md_release(x);
  md_release(Ax);
  md_release(y);
  md_release(ATy);
}

typedef struct args {
  md_pool_params p;
  int64_t a, b; /* output size (adaptive) or input size (bwd ops) */
} args;
static md_tensor *f_max(md_tensor **in, void *ud) {
  return md_max_pool2d(in[0], ((args *)ud)->p, NULL);
}
static md_tensor *f_max_sq(md_tensor **in, void *ud) { /* second derivative through gather */
  md_tensor *y = md_max_pool2d(in[0], ((args *)ud)->p, NULL);
  md_tensor *r = md_mul(y, y);
  md_release(y);
  return r;
}
static md_tensor *f_relu_max(md_tensor **in, void *ud) { /* the CNN order: relu, then pool */
  md_tensor *r = md_relu(in[0]);
  md_tensor *y = md_max_pool2d(r, ((args *)ud)->p, NULL);
  md_release(r);
  return y;
}
static md_tensor *f_avg(md_tensor **in, void *ud) { return md_avg_pool2d(in[0], ((args *)ud)->p); }
static md_tensor *f_avg_sq(md_tensor **in, void *ud) {
  md_tensor *y = md_avg_pool2d(in[0], ((args *)ud)->p);
  md_tensor *r = md_mul(y, y);
  md_release(y);
  return r;
}
static md_tensor *f_avg_bwd(md_tensor **in, void *ud) {
  args *a = ud;
  return md_avg_pool2d_bwd(in[0], a->a, a->b, a->p);
}
static md_tensor *f_aavg(md_tensor **in, void *ud) {
  args *a = ud;
  return md_adaptive_avg_pool2d(in[0], a->a, a->b);
}
static md_tensor *f_aavg_bwd(md_tensor **in, void *ud) {
  args *a = ud;
  return md_adaptive_avg_pool2d_bwd(in[0], a->a, a->b);
}
static md_tensor *f_amax(md_tensor **in, void *ud) {
  args *a = ud;
  return md_adaptive_max_pool2d(in[0], a->a, a->b, NULL);
}
static md_tensor *f_amax_sq(md_tensor **in, void *ud) {
  args *a = ud;
  md_tensor *y = md_adaptive_max_pool2d(in[0], a->a, a->b, NULL);
  md_tensor *r = md_mul(y, y);
  md_release(y);
  return r;
}

/* gradcheck + gradgradcheck of f on one input */
static void grads(const char *name, check_fn f, md_tensor *x, args *a, double eps, double tol) {
  md_set_requires_grad(x, 1);
  gradcheck(name, f, 1, &x, a, eps, tol);
  gradgradcheck(name, f, 1, &x, a, eps, tol);
  md_release(x);
}
/* }====================================================== */

/* {====================================================== forward */
static void test_hand(void) {
  /* x = 0..15 in a 4x4 plane */
  md_tensor *x = md_arange(16), *x4 = md_reshape(x, 4, SHAPE4(1, 1, 4, 4)), *idx = NULL;
  md_tensor *y = md_max_pool2d(x4, md_pool_params_make(2, 0, 0), &idx);
  check_ref("hand max_pool2d 2x2", y, 1, 1, 2, 2, (const float[]){5, 7, 13, 15});
  check_idx("hand max_pool2d 2x2 idx", idx, (const int64_t[]){5, 7, 13, 15}, 4);
  md_release(y);
  md_release(idx);
  y = md_avg_pool2d(x4, md_pool_params_make(2, 0, 0));
  check_ref("hand avg_pool2d 2x2", y, 1, 1, 2, 2, (const float[]){2.5f, 4.5f, 10.5f, 12.5f});
  md_release(y);
  /* padding 1, stride 2, kernel 3: the corner window holds 0,1,4,5 of 9 */
  y = md_avg_pool2d(x4, md_pool_params_make(3, 2, 1));
  check_ref("hand avg_pool2d pad count_include_pad", y, 1, 1, 2, 2,
            (const float[]){10.0f / 9, 24.0f / 9, 51.0f / 9, 90.0f / 9});
  md_release(y);
  md_pool_params p = md_pool_params_make(3, 2, 1);
  p.count_include_pad = 0;
  y = md_avg_pool2d(x4, p);
  check_ref("hand avg_pool2d pad exclude_pad", y, 1, 1, 2, 2,
            (const float[]){10.0f / 4, 24.0f / 6, 51.0f / 6, 90.0f / 9});
  md_release(y);
  y = md_adaptive_avg_pool2d(x4, 1, 1);
  check_ref("hand adaptive_avg_pool2d 1x1", y, 1, 1, 1, 1, (const float[]){7.5f});
  md_release(y);
  /* 4 -> 3: windows [0,2) [1,3) [2,4) */
  y = md_adaptive_max_pool2d(x4, 3, 1, &idx);
  check_ref("hand adaptive_max_pool2d 3x1", y, 1, 1, 3, 1, (const float[]){7, 11, 15});
  check_idx("hand adaptive_max_pool2d idx", idx, (const int64_t[]){7, 11, 15}, 3);
  md_release(y);
  md_release(idx);
  /* ceil mode lets a kernel one larger than the padded input give one
  ** window (PyTorch: 3, 0.375, 1.5) */
  md_tensor *x2 = md_from_data(4, SHAPE4(1, 1, 2, 2), (const float[]){0, 1, 2, 3});
  p = pp(5, 5, 2, 2, 1, 1, 1, 1, 1, 1);
  y = md_max_pool2d(x2, p, &idx);
  check_ref("hand max_pool2d ceil kernel > padded input", y, 1, 1, 1, 1, (const float[]){3});
  check_idx("hand max_pool2d ceil kernel > padded input idx", idx, (const int64_t[]){3}, 1);
  md_release(y);
  md_release(idx);
  y = md_avg_pool2d(x2, p);
  check_ref("hand avg_pool2d ceil kernel > padded input", y, 1, 1, 1, 1, (const float[]){0.375f});
  md_release(y);
  p.count_include_pad = 0;
  y = md_avg_pool2d(x2, p);
  check_ref("hand avg_pool2d ceil kernel > padded input exclude_pad", y, 1, 1, 1, 1,
            (const float[]){1.5f});
  md_release(y);
  md_release(x2);
  /* the defaults */
  p = md_pool_params_make(3, 0, 1);
  CHECK(p.kernel[0] == 3 && p.kernel[1] == 3 && p.stride[0] == 3 && p.stride[1] == 3 &&
            p.pad[0] == 1 && p.pad[1] == 1 && p.dilation[0] == 1 && p.dilation[1] == 1 &&
            p.ceil_mode == 0 && p.count_include_pad == 1,
        "pool_params_make defaults");
  md_release(x);
  md_release(x4);
}

static void test_torch(void) {
  md_tensor *x, *y, *idx;
  x = perm_input(2, 3, 5, 6);
  y = md_max_pool2d(x, md_pool_params_make(3, 2, 1), &idx);
  check_ref("torch max_pool2d k3 s2 p1", y, 2, 3, 3, 3, MAX1);
  check_idx("torch max_pool2d k3 s2 p1 idx", idx, MAX1_IDX, 54);
  md_release(y);
  md_release(idx);
  y = md_avg_pool2d(x, md_pool_params_make(3, 2, 1));
  check_ref("torch avg_pool2d count_include_pad", y, 2, 3, 3, 3, AVG1);
  md_release(y);
  md_pool_params p = md_pool_params_make(3, 2, 1);
  p.count_include_pad = 0;
  y = md_avg_pool2d(x, p);
  check_ref("torch avg_pool2d exclude_pad", y, 2, 3, 3, 3, AVG2);
  md_release(y);
  md_release(x);

  x = perm_input(1, 2, 7, 7);
  y = md_max_pool2d(x, pp(3, 2, 2, 3, 1, 1, 2, 1, 1, 1), &idx);
  check_ref("torch max_pool2d dilation ceil", y, 1, 2, 3, 3, MAX2);
  check_idx("torch max_pool2d dilation ceil idx", idx, MAX2_IDX, 18);
  md_release(y);
  md_release(idx);
  md_release(x);

  x = perm_input(1, 2, 5, 5);
  y = md_max_pool2d(x, pp(2, 2, 2, 2, 1, 1, 1, 1, 1, 1), &idx);
  check_ref("torch max_pool2d ceil last-window rule", y, 1, 2, 3, 3, MAX3);
  check_idx("torch max_pool2d ceil last-window rule idx", idx, MAX3_IDX, 18);
  md_release(y);
  md_release(idx);
  md_release(x);

  x = perm_input(1, 2, 6, 7);
  y = md_avg_pool2d(x, pp(3, 2, 2, 2, 1, 1, 1, 1, 1, 1));
  check_ref("torch avg_pool2d ceil count_include_pad", y, 1, 2, 4, 4, AVG3);
  md_release(y);
  y = md_avg_pool2d(x, pp(3, 2, 2, 2, 1, 1, 1, 1, 1, 0));
  check_ref("torch avg_pool2d ceil exclude_pad", y, 1, 2, 4, 4, AVG4);
  md_release(y);
  md_release(x);

  x = perm_input(2, 3, 7, 5);
  y = md_adaptive_avg_pool2d(x, 3, 2);
  check_ref("torch adaptive_avg_pool2d 7x5->3x2", y, 2, 3, 3, 2, AAVG1);
  md_release(y);
  y = md_adaptive_max_pool2d(x, 3, 2, &idx);
  check_ref("torch adaptive_max_pool2d 7x5->3x2", y, 2, 3, 3, 2, AMAX1);
  check_idx("torch adaptive_max_pool2d 7x5->3x2 idx", idx, AMAX1_IDX, 36);
  md_release(y);
  md_release(idx);
  md_release(x);

  x = perm_input(1, 2, 2, 3);
  y = md_adaptive_avg_pool2d(x, 3, 5);
  check_ref("torch adaptive_avg_pool2d 2x3->3x5", y, 1, 2, 3, 5, AAVG2);
  md_release(y);
  y = md_adaptive_max_pool2d(x, 3, 5, &idx);
  check_ref("torch adaptive_max_pool2d 2x3->3x5", y, 1, 2, 3, 5, AMAX2);
  check_idx("torch adaptive_max_pool2d 2x3->3x5 idx", idx, AMAX2_IDX, 30);
  md_release(y);
  md_release(idx);
  md_release(x);
}

/* naive references in double, written from the definitions: a window of
** taps at i*s - pad + j*dil; max over the taps inside (-inf padding); the
** average divides by the taps inside the padded input (count_include_pad)
** or inside the input */
static void ref_max(const md_tensor *x, md_pool_params p, int64_t Ho, int64_t Wo, float *y,
                    int64_t *ix) {
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  const float *xd = x->data;
  for (int64_t pl = 0; pl < P; pl++)
    for (int64_t i = 0; i < Ho; i++)
      for (int64_t j = 0; j < Wo; j++) {
        double m = -INFINITY;
        int64_t mi = -1;
        for (int a = 0; a < p.kernel[0]; a++)
          for (int b = 0; b < p.kernel[1]; b++) {
            int64_t h = i * p.stride[0] - p.pad[0] + (int64_t)a * p.dilation[0];
            int64_t w = j * p.stride[1] - p.pad[1] + (int64_t)b * p.dilation[1];
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            double v = xd[pl * H * W + h * W + w];
            if (v > m) {
              m = v;
              mi = h * W + w;
            }
          }
        y[(pl * Ho + i) * Wo + j] = (float)m;
        ix[(pl * Ho + i) * Wo + j] = mi;
      }
}
static void ref_avg(const md_tensor *x, md_pool_params p, int64_t Ho, int64_t Wo, float *y) {
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  const float *xd = x->data;
  for (int64_t pl = 0; pl < P; pl++)
    for (int64_t i = 0; i < Ho; i++)
      for (int64_t j = 0; j < Wo; j++) {
        double s = 0;
        int in = 0, padded = 0;
        for (int a = 0; a < p.kernel[0]; a++)
          for (int b = 0; b < p.kernel[1]; b++) {
            int64_t h = i * p.stride[0] - p.pad[0] + a, w = j * p.stride[1] - p.pad[1] + b;
            if (h < H + p.pad[0] && w < W + p.pad[1]) padded++;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            s += xd[pl * H * W + h * W + w];
            in++;
          }
        y[(pl * Ho + i) * Wo + j] = (float)(s / (p.count_include_pad ? padded : in));
      }
}

/* large enough for the OpenMP path; also a non-contiguous input */
static void test_naive(void) {
  md_manual_seed(7);
  md_tensor *x = md_randn(4, SHAPE4(3, 16, 33, 30));
  const md_pool_params ps[] = {pp(3, 3, 2, 2, 1, 1, 1, 1, 0, 1), pp(3, 2, 2, 1, 1, 1, 2, 3, 1, 1),
                               pp(5, 4, 3, 2, 2, 2, 1, 1, 1, 0), pp(2, 2, 2, 2, 0, 0, 1, 1, 1, 1)};
  for (int k = 0; k < 4; k++) {
    md_tensor *idx = NULL, *y = md_max_pool2d(x, ps[k], &idx);
    if (!y) {
      report(0, "naive max_pool2d", "failed: %s", md_last_error());
      continue;
    }
    int64_t Ho = y->shape[2], Wo = y->shape[3], n = md_numel(y);
    md_tensor *ry = md_empty(4, y->shape, MD_F32), *ri = md_empty(4, y->shape, MD_I64);
    ref_max(x, ps[k], Ho, Wo, ry->data, ri->data);
    char nm[80];
    snprintf(nm, sizeof nm, "naive max_pool2d case %d (%lldx%lld)", k, (long long)Ho,
             (long long)Wo);
    check_close(nm, y, ry, 0, 0);
    snprintf(nm, sizeof nm, "naive max_pool2d case %d idx", k);
    check_idx(nm, idx, ri->data, n);
    md_release(y);
    md_release(idx);
    md_release(ry);
    md_release(ri);
    if (ps[k].dilation[0] != 1 || ps[k].dilation[1] != 1) continue;
    y = md_avg_pool2d(x, ps[k]);
    ry = md_empty(4, y->shape, MD_F32);
    ref_avg(x, ps[k], Ho, Wo, ry->data);
    snprintf(nm, sizeof nm, "naive avg_pool2d case %d", k);
    check_close(nm, y, ry, 1e-5, 1e-6);
    md_release(y);
    md_release(ry);
  }
  /* a non-contiguous input (transposed planes) gives the result of its copy */
  md_tensor *xt = md_transpose(x, 2, 3), *xc = md_contiguous(xt);
  CHECK(xt && !md_is_contiguous(xt), "transposed input is a strided view");
  md_pool_params p = md_pool_params_make(3, 2, 1);
  md_tensor *a = md_max_pool2d(xt, p, NULL), *b = md_max_pool2d(xc, p, NULL);
  check_close("max_pool2d strided input", a, b, 0, 0);
  md_release(a);
  md_release(b);
  a = md_avg_pool2d(xt, p);
  b = md_avg_pool2d(xc, p);
  check_close("avg_pool2d strided input", a, b, 0, 0);
  md_release(a);
  md_release(b);
  a = md_adaptive_avg_pool2d(xt, 7, 5);
  b = md_adaptive_avg_pool2d(xc, 7, 5);
  check_close("adaptive_avg_pool2d strided input", a, b, 0, 0);
  md_release(a);
  md_release(b);
  a = md_adaptive_max_pool2d(xt, 7, 5, NULL);
  b = md_adaptive_max_pool2d(xc, 7, 5, NULL);
  check_close("adaptive_max_pool2d strided input", a, b, 0, 0);
  md_release(a);
  md_release(b);
  md_release(xt);
  md_release(xc);
  md_release(x);
}
/* }====================================================== */

/* {====================================================== gradients */
static void test_grads(void) {
  md_manual_seed(11);
  args a = {md_pool_params_make(3, 2, 1), 0, 0};
  /* max pools: distinct values (a permutation, spacing 4/50 > 2*eps) */
  grads("max_pool2d k3 s2 p1", f_max, perm_input(1, 2, 5, 5), &a, 1e-2, 1e-2);
  grads("max_pool2d squared", f_max_sq, perm_input(1, 2, 5, 5), &a, 1e-2, 1e-2);
  a.p = pp(3, 2, 2, 3, 1, 1, 2, 1, 1, 1);
  grads("max_pool2d dilation ceil", f_max, perm_input(1, 2, 7, 5), &a, 1e-2, 1e-2);
  grads("max_pool2d(relu(x))", f_relu_max, away_from(perm_input(1, 2, 5, 5), 0.0f, 0.05f), &a, 1e-2,
        1e-2);
  a.p = md_pool_params_make(2, 1, 0); /* overlapping windows: one input wins twice */
  grads("max_pool2d overlapping", f_max_sq, perm_input(1, 1, 4, 5), &a, 1e-2, 1e-2);

  a.p = md_pool_params_make(3, 2, 1);
  grads("avg_pool2d k3 s2 p1", f_avg, rnd(4, SHAPE4(2, 2, 5, 4)), &a, 1e-2, 1e-2);
  grads("avg_pool2d squared", f_avg_sq, rnd(4, SHAPE4(1, 2, 5, 4)), &a, 1e-2, 1e-2);
  a.p = pp(3, 2, 2, 2, 1, 1, 1, 1, 1, 0);
  grads("avg_pool2d ceil exclude_pad", f_avg_sq, rnd(4, SHAPE4(1, 2, 6, 7)), &a, 1e-2, 1e-2);
  a.p = md_pool_params_make(3, 2, 1);
  a.a = 5;
  a.b = 4;
  grads("avg_pool2d_bwd", f_avg_bwd, rnd(4, SHAPE4(2, 2, 3, 2)), &a, 1e-2, 1e-2);

  a.a = 3;
  a.b = 2;
  grads("adaptive_avg_pool2d 7x5->3x2", f_aavg, rnd(4, SHAPE4(1, 2, 7, 5)), &a, 1e-2, 1e-2);
  a.a = 7;
  a.b = 5;
  grads("adaptive_avg_pool2d_bwd", f_aavg_bwd, rnd(4, SHAPE4(1, 2, 3, 2)), &a, 1e-2, 1e-2);
  a.a = 3;
  a.b = 5;
  grads("adaptive_max_pool2d 2x3->3x5", f_amax, perm_input(1, 2, 2, 3), &a, 1e-2, 1e-2);
  a.a = 3;
  a.b = 2;
  grads("adaptive_max_pool2d squared", f_amax_sq, perm_input(1, 2, 7, 5), &a, 1e-2, 1e-2);
}

static void test_adjoint(void) {
  md_manual_seed(3);
  const md_pool_params ps[] = {md_pool_params_make(3, 2, 1), pp(3, 2, 2, 2, 1, 1, 1, 1, 1, 0),
                               pp(4, 3, 3, 1, 2, 1, 1, 1, 1, 1)};
  for (int k = 0; k < 3; k++) {
    md_tensor *x = md_randn(4, SHAPE4(2, 3, 9, 8)), *Ax = md_avg_pool2d(x, ps[k]);
    md_tensor *y = Ax ? md_randn(4, Ax->shape) : NULL;
    md_tensor *ATy = y ? md_avg_pool2d_bwd(y, 9, 8, ps[k]) : NULL;
    char nm[64];
    snprintf(nm, sizeof nm, "adjoint avg_pool2d case %d", k);
    check_adjoint(nm, x, Ax, y, ATy);
  }
  const int64_t sizes[][2] = {{3, 2}, {9, 8}, {13, 11}, {1, 1}};
  for (int k = 0; k < 4; k++) {
    md_tensor *x = md_randn(4, SHAPE4(2, 3, 9, 8));
    md_tensor *Ax = md_adaptive_avg_pool2d(x, sizes[k][0], sizes[k][1]);
    md_tensor *y = Ax ? md_randn(4, Ax->shape) : NULL;
    md_tensor *ATy = y ? md_adaptive_avg_pool2d_bwd(y, 9, 8) : NULL;
    char nm[64];
    snprintf(nm, sizeof nm, "adjoint adaptive_avg_pool2d %lldx%lld", (long long)sizes[k][0],
             (long long)sizes[k][1]);
    check_adjoint(nm, x, Ax, y, ATy);
  }
}

/* backward without create_graph and with the saved tensors freed */
static void test_backward(void) {
  md_tensor *x = perm_input(1, 1, 4, 4);
  md_set_requires_grad(x, 1);
  md_tensor *idx = NULL, *y = md_max_pool2d(x, md_pool_params_make(2, 1, 0), &idx);
  CHECK(y && md_grad_fn_name(y) && !strcmp(md_grad_fn_name(y), "max_pool2d"), "max_pool2d grad_fn");
  CHECK(idx && !md_requires_grad(idx), "max_pool2d indices need no grad");
  md_tensor *s = md_sum(y, 0, NULL, 0);
  CHECK(md_backward(s, NULL, 0, 0) == MD_OK, "max_pool2d backward");
  /* each input gets 1 per window it wins */
  float want[16] = {0};
  for (int64_t i = 0; i < 9; i++) want[(int64_t)md_get(idx, i)] += 1;
  md_tensor *w = md_from_data(4, x->shape, want);
  check_close("max_pool2d backward counts", x->grad, w, 0, 0);
  CHECK(md_backward(s, NULL, 0, 0) != MD_OK, "second backward without retain_graph fails");
  md_release(w);
  md_release(s);
  md_release(y);
  md_release(idx);
  md_release(x);

  x = md_ones(4, SHAPE4(1, 1, 4, 4));
  md_set_requires_grad(x, 1);
  y = md_avg_pool2d(x, md_pool_params_make(2, 0, 0));
  CHECK(y && !strcmp(md_grad_fn_name(y), "avg_pool2d"), "avg_pool2d grad_fn");
  s = md_sum(y, 0, NULL, 0);
  CHECK(md_backward(s, NULL, 0, 0) == MD_OK, "avg_pool2d backward");
  md_tensor *q = md_full(4, x->shape, 0.25f);
  check_close("avg_pool2d backward", x->grad, q, 0, 1e-7);
  md_release(q);
  md_release(s);
  md_release(y);
  md_release(x);

  /* grad mode off: nothing recorded */
  x = perm_input(1, 1, 4, 4);
  md_set_requires_grad(x, 1);
  int old = md_set_grad_enabled(0);
  y = md_max_pool2d(x, md_pool_params_make(2, 0, 0), NULL);
  CHECK(y && !md_requires_grad(y), "no graph with grad mode off");
  md_set_grad_enabled(old);
  md_release(y);
  md_release(x);
}
/* }====================================================== */

/* {====================================================== errors */
static void test_errors(void) {
  md_tensor *x = md_zeros(4, SHAPE4(1, 1, 2, 2)), *x3 = md_zeros(3, (const int64_t[]){1, 4, 4});
  md_tensor *x8 = md_zeros(4, SHAPE4(1, 1, 8, 8)), *xi = md_empty(4, SHAPE4(1, 1, 4, 4), MD_I64);
  md_tensor *idx = (md_tensor *)1;
  CHECK_ERR(md_max_pool2d(x, md_pool_params_make(5, 1, 1), &idx), "larger than the padded input",
            "max_pool2d kernel larger than padded input");
  CHECK(idx == NULL, "max_pool2d clears *idx on error");
  CHECK_ERR(md_avg_pool2d(x, md_pool_params_make(3, 1, 0)), "larger than the padded input",
            "avg_pool2d kernel larger than input");
  CHECK_ERR(md_max_pool2d(x8, md_pool_params_make(3, 1, 2), NULL), "at most half",
            "max_pool2d pad > kernel/2");
  CHECK_ERR(md_avg_pool2d(x8, md_pool_params_make(2, 2, 2)), "at most half",
            "avg_pool2d pad > kernel/2");
  CHECK_ERR(md_max_pool2d(x3, md_pool_params_make(2, 0, 0), NULL), "must be 4-d",
            "max_pool2d 3-d input");
  CHECK_ERR(md_avg_pool2d(x3, md_pool_params_make(2, 0, 0)), "must be 4-d", "avg_pool2d 3-d input");
  CHECK_ERR(md_adaptive_avg_pool2d(x3, 2, 2), "must be 4-d", "adaptive_avg_pool2d 3-d input");
  CHECK_ERR(md_adaptive_max_pool2d(x3, 2, 2, NULL), "must be 4-d", "adaptive_max_pool2d 3-d input");
  CHECK_ERR(md_avg_pool2d_bwd(x3, 4, 4, md_pool_params_make(2, 0, 0)), "must be 4-d",
            "avg_pool2d_bwd 3-d gy");
  CHECK_ERR(md_adaptive_avg_pool2d_bwd(x3, 4, 4), "must be 4-d", "adaptive_avg_pool2d_bwd 3-d gy");
  CHECK_ERR(md_max_pool2d(xi, md_pool_params_make(2, 0, 0), NULL), "must be a float tensor",
            "max_pool2d int input");
  CHECK_ERR(md_adaptive_avg_pool2d(x8, 0, 3), "must be positive",
            "adaptive_avg_pool2d zero output");
  CHECK_ERR(md_adaptive_max_pool2d(x8, 2, -1, NULL), "must be positive",
            "adaptive_max_pool2d negative output");
  CHECK_ERR(md_adaptive_avg_pool2d_bwd(x, 0, 4), "is empty",
            "adaptive_avg_pool2d_bwd zero input size");
  md_pool_params p = md_pool_params_make(2, 0, 0);
  p.stride[1] = 0;
  CHECK_ERR(md_max_pool2d(x8, p, NULL), "must be positive", "max_pool2d stride 0");
  p = md_pool_params_make(2, 0, 0);
  p.pad[0] = -1;
  CHECK_ERR(md_avg_pool2d(x8, p), "non-negative", "avg_pool2d negative padding");
  p = md_pool_params_make(2, 0, 0);
  p.dilation[0] = 2;
  CHECK_ERR(md_avg_pool2d(x8, p), "no dilation", "avg_pool2d dilation");
  /* kernel 2, dilation 3, padding 1 on H=2: taps at rows -1 and 2, both outside */
  CHECK_ERR(md_max_pool2d(x, pp(2, 2, 1, 1, 1, 1, 3, 3, 0, 1), NULL), "entirely in the padding",
            "max_pool2d window in padding only");
  CHECK_ERR(md_avg_pool2d_bwd(x, 8, 8, md_pool_params_make(2, 0, 0)), "gives 4x4",
            "avg_pool2d_bwd gy shape mismatch");
  md_set_error("earlier error");
  CHECK(md_max_pool2d(NULL, md_pool_params_make(2, 0, 0), NULL) == NULL &&
            !strcmp(md_last_error(), "earlier error"),
        "NULL input keeps the earlier error");
  md_clear_error();
  md_release(x);
  md_release(x3);
  md_release(x8);
  md_release(xi);
}
/* }====================================================== */

int main(void) {
  md_manual_seed(1);
  test_hand();
  test_torch();
  test_naive();
  test_grads();
  test_adjoint();
  test_backward();
  test_errors();
  return summary();
}
