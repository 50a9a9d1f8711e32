/*
** test_resize.c -- nearest and bilinear resizing, up and down: forward
** values against PyTorch and hand-computed cases, a naive reference on a
** larger input (the OpenMP path), gradcheck and gradgradcheck for every op,
** the adjoint identity of each closed pair, and the error paths.
*/
#include "check.h"

/* {====================================================== reference values
** Made once with PyTorch 1.13 (/usr/bin/python3), float32, by:
**   import torch, torch.nn.functional as F
**   def perm(*s):   # = perm_input() below: distinct values in [-2, 2)
**       n = prod(s); v = [((i*37+11) % n)/n*4.0-2.0 for i in range(n)]
**       return torch.tensor(v, dtype=torch.float64).float().reshape(s)
**   NEAR1 = F.interpolate(perm(1,2,3,5), size=(7,4), mode='nearest')
**   NEAR2 = F.interpolate(perm(1,2,3,5), size=(6,10), mode='nearest')
**   NEAR3 = F.interpolate(perm(1,2,5,7), size=(3,3), mode='nearest')
**   NEAR4 = F.interpolate(perm(1,2,5,7), size=(5,7), mode='nearest')
**   BIL1 / BIL2 = F.interpolate(perm(1,2,4,5), size=(7,3), mode='bilinear',
**                               align_corners=False / True)
**   BIL3 / BIL4 = F.interpolate(perm(1,2,6,7), size=(3,4), mode='bilinear',
**                               align_corners=False / True)
**   BIL5 = F.interpolate(perm(1,2,6,7), size=(1,13), mode='bilinear', align_corners=True)
**   BIL6 = F.interpolate(perm(1,2,6,7), size=(12,14), mode='bilinear', align_corners=False)
** printed with '%.9g'. */
static const float NEAR1[56] = {-0.533333361,
                                0.400000006,
                                1.33333337,
                                -1.73333335,
                                -0.533333361,
                                0.400000006,
                                1.33333337,
                                -1.73333335,
                                -0.533333361,
                                0.400000006,
                                1.33333337,
                                -1.73333335,
                                0.13333334,
                                1.06666672,
                                -2,
                                -1.06666672,
                                0.13333334,
                                1.06666672,
                                -2,
                                -1.06666672,
                                0.800000012,
                                1.73333335,
                                -1.33333337,
                                -0.400000006,
                                0.800000012,
                                1.73333335,
                                -1.33333337,
                                -0.400000006,
                                1.4666667,
                                -1.60000002,
                                -0.666666687,
                                0.266666681,
                                1.4666667,
                                -1.60000002,
                                -0.666666687,
                                0.266666681,
                                1.4666667,
                                -1.60000002,
                                -0.666666687,
                                0.266666681,
                                -1.86666667,
                                -0.933333337,
                                0,
                                0.933333337,
                                -1.86666667,
                                -0.933333337,
                                0,
                                0.933333337,
                                -1.20000005,
                                -0.266666681,
                                0.666666687,
                                1.60000002,
                                -1.20000005,
                                -0.266666681,
                                0.666666687,
                                1.60000002};
static const float NEAR2[120] = {-0.533333361,
                                 -0.533333361,
                                 0.400000006,
                                 0.400000006,
                                 1.33333337,
                                 1.33333337,
                                 -1.73333335,
                                 -1.73333335,
                                 -0.800000012,
                                 -0.800000012,
                                 -0.533333361,
                                 -0.533333361,
                                 0.400000006,
                                 0.400000006,
                                 1.33333337,
                                 1.33333337,
                                 -1.73333335,
                                 -1.73333335,
                                 -0.800000012,
                                 -0.800000012,
                                 0.13333334,
                                 0.13333334,
                                 1.06666672,
                                 1.06666672,
                                 -2,
                                 -2,
                                 -1.06666672,
                                 -1.06666672,
                                 -0.13333334,
                                 -0.13333334,
                                 0.13333334,
                                 0.13333334,
                                 1.06666672,
                                 1.06666672,
                                 -2,
                                 -2,
                                 -1.06666672,
                                 -1.06666672,
                                 -0.13333334,
                                 -0.13333334,
                                 0.800000012,
                                 0.800000012,
                                 1.73333335,
                                 1.73333335,
                                 -1.33333337,
                                 -1.33333337,
                                 -0.400000006,
                                 -0.400000006,
                                 0.533333361,
                                 0.533333361,
                                 0.800000012,
                                 0.800000012,
                                 1.73333335,
                                 1.73333335,
                                 -1.33333337,
                                 -1.33333337,
                                 -0.400000006,
                                 -0.400000006,
                                 0.533333361,
                                 0.533333361,
                                 1.4666667,
                                 1.4666667,
                                 -1.60000002,
                                 -1.60000002,
                                 -0.666666687,
                                 -0.666666687,
                                 0.266666681,
                                 0.266666681,
                                 1.20000005,
                                 1.20000005,
                                 1.4666667,
                                 1.4666667,
                                 -1.60000002,
                                 -1.60000002,
                                 -0.666666687,
                                 -0.666666687,
                                 0.266666681,
                                 0.266666681,
                                 1.20000005,
                                 1.20000005,
                                 -1.86666667,
                                 -1.86666667,
                                 -0.933333337,
                                 -0.933333337,
                                 0,
                                 0,
                                 0.933333337,
                                 0.933333337,
                                 1.86666667,
                                 1.86666667,
                                 -1.86666667,
                                 -1.86666667,
                                 -0.933333337,
                                 -0.933333337,
                                 0,
                                 0,
                                 0.933333337,
                                 0.933333337,
                                 1.86666667,
                                 1.86666667,
                                 -1.20000005,
                                 -1.20000005,
                                 -0.266666681,
                                 -0.266666681,
                                 0.666666687,
                                 0.666666687,
                                 1.60000002,
                                 1.60000002,
                                 -1.4666667,
                                 -1.4666667,
                                 -1.20000005,
                                 -1.20000005,
                                 -0.266666681,
                                 -0.266666681,
                                 0.666666687,
                                 0.666666687,
                                 1.60000002,
                                 1.60000002,
                                 -1.4666667,
                                 -1.4666667};
static const float NEAR3[18] = {-1.37142861, -1.14285719,  -0.914285719, 1.42857146,   1.65714288,
                                1.88571429,  -0.971428573, -0.742857158, -0.514285743, 0.628571451,
                                0.857142866, 1.08571434,   -0.571428597, -0.342857152, -0.114285715,
                                1.02857149,  1.2571429,    1.48571432};
static const float NEAR4[70] = {-1.37142861,
                                0.742857158,
                                -1.14285719,
                                0.971428573,
                                -0.914285719,
                                1.20000005,
                                -0.685714304,
                                1.42857146,
                                -0.45714286,
                                1.65714288,
                                -0.22857143,
                                1.88571429,
                                0,
                                -1.88571429,
                                0.22857143,
                                -1.65714288,
                                0.45714286,
                                -1.42857146,
                                0.685714304,
                                -1.20000005,
                                0.914285719,
                                -0.971428573,
                                1.14285719,
                                -0.742857158,
                                1.37142861,
                                -0.514285743,
                                1.60000002,
                                -0.285714298,
                                1.82857144,
                                -0.0571428575,
                                -1.94285715,
                                0.171428576,
                                -1.71428573,
                                0.400000006,
                                -1.48571432,
                                0.628571451,
                                -1.2571429,
                                0.857142866,
                                -1.02857149,
                                1.08571434,
                                -0.800000012,
                                1.31428576,
                                -0.571428597,
                                1.54285717,
                                -0.342857152,
                                1.77142859,
                                -0.114285715,
                                -2,
                                0.114285715,
                                -1.77142859,
                                0.342857152,
                                -1.54285717,
                                0.571428597,
                                -1.31428576,
                                0.800000012,
                                -1.08571434,
                                1.02857149,
                                -0.857142866,
                                1.2571429,
                                -0.628571451,
                                1.48571432,
                                -0.400000006,
                                1.71428573,
                                -0.171428576,
                                1.94285715,
                                0.0571428575,
                                -1.82857144,
                                0.285714298,
                                -1.60000002,
                                0.514285743};
static const float BIL1[42] = {-1,
                               -1.5,
                               0.666666269,
                               -0.107142746,
                               -0.607142687,
                               0.607142568,
                               1.32142866,
                               0.821428657,
                               0.511904716,
                               0.749999821,
                               0.249999851,
                               -0.250000179,
                               -0.107143022,
                               -0.607143044,
                               -0.821428299,
                               -0.96428597,
                               -1.46428597,
                               0.607143283,
                               -1.5,
                               -2,
                               1.5,
                               1,
                               0.5,
                               3.22858504e-08,
                               0.464285612,
                               -0.0357143581,
                               -0.535714328,
                               -0.392857194,
                               -0.892857194,
                               -1.39285707,
                               -0.583333373,
                               0.250000298,
                               -0.249999642,
                               -0.583333313,
                               1.39285707,
                               0.892857015,
                               0.0833335072,
                               0.53571403,
                               0.0357140601,
                               0.5,
                               1.78813941e-08,
                               -0.49999997};
static const float BIL2[42] = {
    -0.899999976, -1.5,  1.89999998,   0.350000024,  -0.25, 1.14999998,
    1.60000002,   1,     0.400000006,  0.850000024,  0.25,  -0.350000024,
    0.100000001,  -0.5,  -1.10000002,  -0.649999976, -1.25, 0.149999976,
    -1.39999998,  -2,    1.39999998,   1.10000002,   0.5,   -0.100000001,
    0.350000024,  -0.25, -0.850000024, -0.400000006, -1,    -1.60000002,
    -1.14999998,  0.25,  -0.350000024, -1.89999998,  1.5,   0.899999976,
    -0.649999976, 0.75,  0.149999976,  0.600000024,  0,     -0.600000024};
static const float BIL3[24] = {
    -0.648809552, -1.56547618,  1.51785707,    0.601190507,  0.0178571492, -0.898809552,
    -1.31547618,  0.0178571343, 0.684523821,   -0.232142881, -0.648809552, -0.565476179,
    -0.148809507, 0.184523821,  -0.232142851,  0.101190485,  0.517857134,  0.601190507,
    0.184523806,  -0.732142866, -0.0654762387, 1.26785707,   0.851190507,  -0.0654762015};
static const float BIL4[24] = {-1.47619045,  -1.9523809,  1.57142854,   1.09523809,   -0.642857134,
                               -1.11904764,  -1.59523809, -0.071428597, 0.190476194,  -0.285714298,
                               -0.761904776, -1.23809528, 0.523809552,  0.0476190485, -0.428571433,
                               -0.90476191,  1.35714293,  0.880952418,  0.40476191,   -0.0714285672,
                               -1.80952382,  1.71428573,  1.23809528,   0.761904776};
static const float BIL5[26] = {
    -1.47619045,  -0.59523809, 0.285714298,  -0.833333313, -1.9523809,  -1.07142854, -0.190476194,
    0.690476179,  1.57142854,  0.452380925,  -0.666666687, 0.214285702, 1.09523809,  0.523809552,
    -0.59523809,  -1.71428573, -0.833333313, 0.0476190485, 0.928571463, 1.80952382,  0.690476179,
    -0.428571433, 0.452380955, 1.33333337,   0.214285731,  -0.90476191};
static const float BIL6[336] = {
    -1.47619045,   -1.03571427,   -0.154761881,  -0.273809493,  -1.39285707,   -1.51190472,
    -0.630952358,  0.249999985,   1.13095236,    1.01190472,    -0.107142866,  -0.226190493,
    0.654761851,   1.09523809,    -1.39285707,   -0.952380955,  -0.0714285523, -0.190476164,
    -1.30952382,   -1.42857146,   -0.547619045,  0.333333313,   1.21428573,    1.09523809,
    -0.0238095298, -0.142857149,  0.738095164,   1.17857146,    -1.22619057,   -0.785714269,
    0.095238097,   -0.0238095075, -1.14285707,   -1.26190472,   -0.380952358,  0.5,
    1.38095236,    1.26190472,    0.142857149,   0.0238095187,  0.904761851,   1.34523809,
    -1.05952382,   -0.619047642,  0.261904776,   0.142857149,   -0.976190507,  -1.09523809,
    -0.214285702,  0.416666657,   0.797619104,   0.678571463,   0.0595238134,  0.190476194,
    1.07142854,    1.51190472,    -0.892857194,  -0.452380985,  0.428571463,   0.309523821,
    -0.809523821,  -0.928571403,  -0.0476190373, 0.0833333358,  -0.535714269,  -0.65476191,
    -0.273809522,  0.357142836,   1.23809516,    1.67857146,    -0.726190507,  -0.285714298,
    0.59523809,    0.476190448,   -0.642857194,  -0.761904776,  0.119047634,   9.31322575e-09,
    -1.11904752,   -1.23809528,   -0.357142866,  0.273809522,   0.65476191,    0.84523809,
    -0.559523821,  -0.119047627,  0.761904716,   0.642857075,   -0.476190507,  -0.59523809,
    0.285714298,   0.166666672,   -0.952380896,  -1.07142854,   -0.190476194,  -0.0595238209,
    -0.678571403,  -0.988095284,  -0.392857134,  0.0476190448,  0.928571463,   0.809523821,
    -0.309523821,  -0.428571433,  0.452380985,   0.333333343,   -0.785714269,  -0.90476191,
    -0.0238095298, -0.142857134,  -1.26190472,   -1.82142854,   -0.226190478,  0.214285716,
    1.09523809,    0.976190448,   -0.142857164,  -0.261904776,  0.619047642,   0.5,
    -0.619047582,  -0.738095284,  0.142857149,   0.0238095447,  -1.09523821,   -1.65476191,
    -0.0595238134, 0.380952358,   1.26190472,    1.14285707,    0.0238095075,  -0.0952381045,
    0.785714328,   0.666666687,   -0.452380955,  -0.571428597,  0.309523821,   0.190476209,
    -0.928571463,  -1.48809528,   0.107142866,   0.547619045,   1.42857146,    1.30952382,
    0.190476164,   0.0714285523,  0.952381015,   0.833333373,   -0.285714298,  -0.40476191,
    0.476190478,   0.357142866,   -0.761904836,  -1.32142854,   0.190476194,   0.630952358,
    1.51190472,    1.39285707,    0.273809493,   0.154761881,   1.03571427,    0.916666627,
    -0.202380985,  -0.321428597,  0.559523821,   0.440476179,   -0.678571463,  -1.23809528,
    0.523809552,   -0.0357142687, -1.15476191,   -1.27380955,   -0.392857134,  0.488095254,
    1.36904764,    1.25,          0.130952388,   0.0119047686,  0.892857134,   0.773809552,
    -0.345238119,  -0.90476191,   0.607142866,   0.0476190597,  -1.07142854,   -1.19047618,
    -0.309523791,  0.321428597,   0.702381015,   0.583333373,   -0.0357142761, 0.095238097,
    0.976190448,   0.857142866,   -0.261904776,  -0.821428597,  0.773809552,   0.214285716,
    -0.90476191,   -1.02380955,   -0.142857134,  -0.0119047388, -0.630952358,  -0.75,
    -0.369047612,  0.261904746,   1.14285707,    1.02380943,    -0.0952381343, -0.65476191,
    0.940476179,   0.380952358,   -0.738095224,  -0.857142866,  0.0238095298,  -0.0952380747,
    -1.21428561,   -1.33333325,   -0.452380955,  0.178571433,   0.559523821,   0.440476149,
    -0.178571463,  -0.488095254,  1.10714281,    0.547619045,   -0.571428597,  -0.690476239,
    0.190476179,   0.0714285821,  -1.04761899,   -1.16666663,   -0.285714269,  -0.15476191,
    -0.773809433,  -0.892857194,  -0.511904776,  -0.321428597,  1.27380955,    0.714285731,
    -0.40476194,   -0.523809552,  0.357142866,   0.238095254,   -0.880952358,  -1,
    -0.119047612,  -0.238095224,  -1.35714281,   -1.47619045,   -0.59523809,   -0.15476191,
    1.44047618,    0.880952358,   -0.238095224,  -0.357142866,  0.523809552,   0.40476194,
    -0.714285731,  -0.833333373,  0.0476190746,  -0.0714285523, -1.19047618,   -1.30952382,
    -0.428571433,  0.0119047649,  1.60714293,    1.0476191,     -0.0714285597, -0.190476194,
    0.690476239,   0.571428597,   -0.547619045,  -0.666666687,  0.214285746,   0.0952381194,
    -1.02380943,   -1.14285707,   -0.261904776,  0.178571433,   1.77380943,    1.21428573,
    0.0952380821,  -0.0238095298, 0.857142866,   0.738095224,   -0.380952358,  -0.5,
    0.380952418,   0.261904776,   -0.857142925,  -0.976190567,  -0.0952381045, 0.34523809,
    0.940476179,   0.630952358,   0.0119047388,  0.142857134,   1.02380955,    0.90476191,
    -0.214285716,  -0.333333343,  0.547619104,   0.428571433,   -0.690476179,  -0.809523821,
    0.0714285672,  0.511904776,   -0.892857194,  -0.702381015,  -0.321428597,  0.309523821,
    1.19047618,    1.07142854,    -0.0476190597, -0.166666687,  0.714285731,   0.59523809,
    -0.523809552,  -0.642857194,  0.238095254,   0.678571463,   -1.80952382,   -1.36904764,
    -0.488095254,  0.392857134,   1.27380955,    1.15476191,    0.0357142687,  -0.0833333433,
    0.797619104,   0.678571463,   -0.440476179,  -0.559523821,  0.321428597,   0.761904776};
/* }====================================================== */

/* {====================================================== helpers */
#define SHAPE4(a, b, c, d) ((const int64_t[]){a, b, c, d})

/* distinct values in [-2, 2); the generator of the reference values above */
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

static double dot(const md_tensor *a, const md_tensor *b) {
  double s = 0;
  for (int64_t i = 0; i < md_numel(a); i++) s += md_get(a, i) * md_get(b, i);
  return s;
}

/* <A x, y> = <x, A^T y> for random x, y; releases all four */
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
  int64_t h, w; /* output size (forward ops) or input size (bwd ops) */
  int ac;       /* align_corners */
} args;
static md_tensor *f_near(md_tensor **in, void *ud) {
  args *a = ud;
  return md_upsample_nearest(in[0], a->h, a->w);
}
static md_tensor *f_near_bwd(md_tensor **in, void *ud) {
  args *a = ud;
  return md_upsample_nearest_bwd(in[0], a->h, a->w);
}
static md_tensor *f_bil(md_tensor **in, void *ud) {
  args *a = ud;
  return md_upsample_bilinear(in[0], a->h, a->w, a->ac);
}
static md_tensor *f_bil_bwd(md_tensor **in, void *ud) {
  args *a = ud;
  return md_upsample_bilinear_bwd(in[0], a->h, a->w, a->ac);
}
/* x * resize(x): the second derivative runs through the bwd op's backward */
static md_tensor *f_bil_prod(md_tensor **in, void *ud) {
  args *a = ud;
  md_tensor *y = md_upsample_bilinear(in[0], a->h, a->w, a->ac);
  md_tensor *r = md_mul(y, y);
  md_release(y);
  return r;
}
static md_tensor *f_near_prod(md_tensor **in, void *ud) {
  args *a = ud;
  md_tensor *y = md_upsample_nearest(in[0], a->h, a->w);
  md_tensor *r = md_mul(y, y);
  md_release(y);
  return r;
}

static void grads(const char *name, check_fn f, md_tensor *x, args a) {
  md_set_requires_grad(x, 1);
  gradcheck(name, f, 1, &x, &a, 1e-2, 1e-2);
  gradgradcheck(name, f, 1, &x, &a, 1e-2, 1e-2);
  md_release(x);
}
/* }====================================================== */

/* {====================================================== forward */
static void test_hand(void) {
  /* x = [[0,1],[2,3]] */
  md_tensor *x = md_from_data(4, SHAPE4(1, 1, 2, 2), (const float[]){0, 1, 2, 3});
  md_tensor *y = md_upsample_nearest(x, 4, 4);
  check_ref("hand nearest 2x2->4x4", y, 1, 1, 4, 4,
            (const float[]){0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
  md_release(y);
  /* 2 -> 3 rows: src = floor(i * 2/3) = 0, 0, 1 */
  y = md_upsample_nearest(x, 3, 1);
  check_ref("hand nearest 2x2->3x1", y, 1, 1, 3, 1, (const float[]){0, 0, 2});
  md_release(y);
  /* align_corners: corners kept, the middle is the mean */
  y = md_upsample_bilinear(x, 3, 3, 1);
  check_ref("hand bilinear align_corners 2x2->3x3", y, 1, 1, 3, 3,
            (const float[]){0, 0.5f, 1, 1, 1.5f, 2, 2, 2.5f, 3});
  md_release(y);
  /* half-pixel 2 -> 4: src = (i+0.5)/2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 */
  y = md_upsample_bilinear(x, 1, 4, 0);
  check_ref("hand bilinear half-pixel 2x2->1x4", y, 1, 1, 1, 4,
            (const float[]){1, 1.25f, 1.75f, 2});
  md_release(y);
  /* downsampling to 1x1: half-pixel src = 0.5 in both axes, the mean */
  y = md_upsample_bilinear(x, 1, 1, 0);
  check_ref("hand bilinear 2x2->1x1", y, 1, 1, 1, 1, (const float[]){1.5f});
  md_release(y);
  /* same size: the identity */
  y = md_upsample_bilinear(x, 2, 2, 0);
  check_ref("hand bilinear same size", y, 1, 1, 2, 2, (const float[]){0, 1, 2, 3});
  md_release(y);
  md_release(x);
}

static void test_torch(void) {
  md_tensor *x = perm_input(1, 2, 3, 5), *y;
  y = md_upsample_nearest(x, 7, 4);
  check_ref("torch nearest 3x5->7x4", y, 1, 2, 7, 4, NEAR1);
  md_release(y);
  y = md_upsample_nearest(x, 6, 10);
  check_ref("torch nearest 3x5->6x10", y, 1, 2, 6, 10, NEAR2);
  md_release(y);
  md_release(x);
  x = perm_input(1, 2, 5, 7);
  y = md_upsample_nearest(x, 3, 3);
  check_ref("torch nearest 5x7->3x3", y, 1, 2, 3, 3, NEAR3);
  md_release(y);
  y = md_upsample_nearest(x, 5, 7);
  check_ref("torch nearest same size", y, 1, 2, 5, 7, NEAR4);
  md_release(y);
  md_release(x);

  x = perm_input(1, 2, 4, 5);
  y = md_upsample_bilinear(x, 7, 3, 0);
  check_ref("torch bilinear 4x5->7x3", y, 1, 2, 7, 3, BIL1);
  md_release(y);
  y = md_upsample_bilinear(x, 7, 3, 1);
  check_ref("torch bilinear 4x5->7x3 align_corners", y, 1, 2, 7, 3, BIL2);
  md_release(y);
  md_release(x);
  x = perm_input(1, 2, 6, 7);
  y = md_upsample_bilinear(x, 3, 4, 0);
  check_ref("torch bilinear 6x7->3x4", y, 1, 2, 3, 4, BIL3);
  md_release(y);
  y = md_upsample_bilinear(x, 3, 4, 1);
  check_ref("torch bilinear 6x7->3x4 align_corners", y, 1, 2, 3, 4, BIL4);
  md_release(y);
  y = md_upsample_bilinear(x, 1, 13, 1);
  check_ref("torch bilinear 6x7->1x13 align_corners", y, 1, 2, 1, 13, BIL5);
  md_release(y);
  y = md_upsample_bilinear(x, 12, 14, 0);
  check_ref("torch bilinear 6x7->12x14", y, 1, 2, 12, 14, BIL6);
  md_release(y);
  md_release(x);
}

/* bilinear from the definition, in double: the source coordinate of each
** output, then the weighted four neighbours */
static double src_coord(int64_t i, int64_t in, int64_t out, int ac) {
  if (ac) return out > 1 ? (double)i * (double)(in - 1) / (double)(out - 1) : 0.0;
  double s = ((double)i + 0.5) * (double)in / (double)out - 0.5;
  return s < 0 ? 0 : s;
}
static md_tensor *ref_bilinear(const md_tensor *x, int64_t oh, int64_t ow, int ac) {
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  md_tensor *y = md_empty(4, SHAPE4(x->shape[0], x->shape[1], oh, ow), MD_F32);
  const float *xd = x->data;
  float *yd = y->data;
  for (int64_t p = 0; p < P; p++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        double sh = src_coord(i, H, oh, ac), sw = src_coord(j, W, ow, ac);
        int64_t h0 = (int64_t)sh, w0 = (int64_t)sw;
        int64_t h1 = h0 + 1 < H ? h0 + 1 : H - 1, w1 = w0 + 1 < W ? w0 + 1 : W - 1;
        double a = sh - h0, b = sw - w0;
        const float *q = xd + p * H * W;
        yd[(p * oh + i) * ow + j] =
            (float)((1 - a) * ((1 - b) * q[h0 * W + w0] + b * q[h0 * W + w1]) +
                    a * ((1 - b) * q[h1 * W + w0] + b * q[h1 * W + w1]));
      }
  return y;
}
static md_tensor *ref_nearest(const md_tensor *x, int64_t oh, int64_t ow) {
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  md_tensor *y = md_empty(4, SHAPE4(x->shape[0], x->shape[1], oh, ow), MD_F32);
  const float *xd = x->data;
  float *yd = y->data;
  for (int64_t p = 0; p < P; p++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        int64_t h = i * H / oh, w = j * W / ow; /* exact floor(i*H/oh) */
        yd[(p * oh + i) * ow + j] = xd[p * H * W + h * W + w];
      }
  return y;
}

/* large enough for the OpenMP path; also a non-contiguous input */
static void test_naive(void) {
  md_manual_seed(5);
  md_tensor *x = md_randn(4, SHAPE4(2, 16, 29, 23));
  const int64_t sizes[][2] = {{64, 48}, {13, 7}, {29, 23}, {1, 50}};
  for (int k = 0; k < 4; k++) {
    int64_t oh = sizes[k][0], ow = sizes[k][1];
    char nm[96];
    for (int ac = 0; ac < 2; ac++) {
      md_tensor *y = md_upsample_bilinear(x, oh, ow, ac), *r = ref_bilinear(x, oh, ow, ac);
      snprintf(nm, sizeof nm, "naive bilinear 29x23->%lldx%lld align_corners=%d", (long long)oh,
               (long long)ow, ac);
      check_close(nm, y, r, 1e-5, 1e-5);
      md_release(y);
      md_release(r);
    }
    /* float and exact index arithmetic agree on these sizes */
    md_tensor *y = md_upsample_nearest(x, oh, ow), *r = ref_nearest(x, oh, ow);
    snprintf(nm, sizeof nm, "naive nearest 29x23->%lldx%lld", (long long)oh, (long long)ow);
    check_close(nm, y, r, 0, 0);
    md_release(y);
    md_release(r);
  }
  md_tensor *xt = md_transpose(x, 2, 3), *xc = md_contiguous(xt);
  CHECK(xt && !md_is_contiguous(xt), "transposed input is a strided view");
  md_tensor *a = md_upsample_bilinear(xt, 40, 17, 0), *b = md_upsample_bilinear(xc, 40, 17, 0);
  check_close("bilinear strided input", a, b, 0, 0);
  md_release(a);
  md_release(b);
  a = md_upsample_nearest(xt, 40, 17);
  b = md_upsample_nearest(xc, 40, 17);
  check_close("nearest strided input", a, b, 0, 0);
  md_release(a);
  md_release(b);
  md_release(xt);
  md_release(xc);
  md_release(x);
}
/* }====================================================== */

/* {====================================================== gradients */
static void test_grads(void) {
  md_manual_seed(13);
  grads("nearest 3x4->5x7", f_near, rnd(4, SHAPE4(1, 2, 3, 4)), (args){5, 7, 0});
  grads("nearest 5x7->3x2", f_near, rnd(4, SHAPE4(1, 2, 5, 7)), (args){3, 2, 0});
  grads("nearest squared", f_near_prod, rnd(4, SHAPE4(1, 1, 3, 4)), (args){6, 3, 0});
  grads("nearest_bwd", f_near_bwd, rnd(4, SHAPE4(1, 2, 5, 3)), (args){3, 4, 0});
  grads("bilinear 3x4->5x7", f_bil, rnd(4, SHAPE4(1, 2, 3, 4)), (args){5, 7, 0});
  grads("bilinear 3x4->5x7 align_corners", f_bil, rnd(4, SHAPE4(1, 2, 3, 4)), (args){5, 7, 1});
  grads("bilinear 6x5->4x2", f_bil, rnd(4, SHAPE4(1, 2, 6, 5)), (args){4, 2, 0});
  grads("bilinear 6x5->4x2 align_corners", f_bil, rnd(4, SHAPE4(1, 2, 6, 5)), (args){4, 2, 1});
  grads("bilinear squared", f_bil_prod, rnd(4, SHAPE4(1, 1, 3, 4)), (args){5, 3, 0});
  grads("bilinear_bwd", f_bil_bwd, rnd(4, SHAPE4(1, 2, 5, 3)), (args){3, 4, 0});
  grads("bilinear_bwd align_corners", f_bil_bwd, rnd(4, SHAPE4(1, 2, 2, 6)), (args){4, 3, 1});
}

static void test_adjoint(void) {
  md_manual_seed(17);
  const int64_t sizes[][2] = {{17, 20}, {4, 3}, {9, 8}, {1, 1}, {2, 16}, {18, 5}};
  for (int k = 0; k < 6; k++) {
    int64_t oh = sizes[k][0], ow = sizes[k][1];
    char nm[96];
    md_tensor *x = md_randn(4, SHAPE4(2, 3, 9, 8)), *Ax = md_upsample_nearest(x, oh, ow);
    md_tensor *y = md_randn(4, SHAPE4(2, 3, oh, ow)), *ATy = md_upsample_nearest_bwd(y, 9, 8);
    snprintf(nm, sizeof nm, "adjoint nearest 9x8->%lldx%lld", (long long)oh, (long long)ow);
    check_adjoint(nm, x, Ax, y, ATy);
    for (int ac = 0; ac < 2; ac++) {
      x = md_randn(4, SHAPE4(2, 3, 9, 8));
      Ax = md_upsample_bilinear(x, oh, ow, ac);
      y = md_randn(4, SHAPE4(2, 3, oh, ow));
      ATy = md_upsample_bilinear_bwd(y, 9, 8, ac);
      snprintf(nm, sizeof nm, "adjoint bilinear 9x8->%lldx%lld align_corners=%d", (long long)oh,
               (long long)ow, ac);
      check_adjoint(nm, x, Ax, y, ATy);
    }
  }
}

static void test_backward(void) {
  md_tensor *x = md_ones(4, SHAPE4(1, 1, 2, 3));
  md_set_requires_grad(x, 1);
  md_tensor *y = md_upsample_nearest(x, 4, 6);
  CHECK(y && !strcmp(md_grad_fn_name(y), "upsample_nearest"), "nearest grad_fn");
  md_tensor *s = md_sum(y, 0, NULL, 0);
  CHECK(md_backward(s, NULL, 0, 0) == MD_OK, "nearest backward");
  md_tensor *w = md_full(4, x->shape, 4.0f); /* each input copied to a 2x2 block */
  check_close("nearest backward counts", x->grad, w, 0, 0);
  md_release(w);
  md_release(s);
  md_release(y);
  md_release(x);

  /* align_corners: the weights of each output sum to 1, so the gradient of
  ** sum() adds up to the number of outputs */
  x = md_ones(4, SHAPE4(1, 1, 3, 4));
  md_set_requires_grad(x, 1);
  y = md_upsample_bilinear(x, 7, 5, 1);
  CHECK(y && !strcmp(md_grad_fn_name(y), "upsample_bilinear"), "bilinear grad_fn");
  s = md_sum(y, 0, NULL, 0);
  CHECK(md_backward(s, NULL, 0, 0) == MD_OK, "bilinear backward");
  md_tensor *gs = x->grad ? md_sum(x->grad, 0, NULL, 0) : NULL;
  CHECK(gs && fabs(md_item(gs) - 35.0) < 1e-4, "bilinear backward total");
  md_release(gs);
  md_release(s);
  md_release(y);
  md_release(x);
}
/* }====================================================== */

/* {====================================================== errors */
static void test_errors(void) {
  md_tensor *x = md_zeros(4, SHAPE4(1, 1, 2, 2)), *x3 = md_zeros(3, (const int64_t[]){1, 4, 4});
  md_tensor *xi = md_empty(4, SHAPE4(1, 1, 4, 4), MD_I64), *x0 = md_zeros(4, SHAPE4(1, 1, 0, 3));
  CHECK_ERR(md_upsample_nearest(x3, 4, 4), "must be 4-d", "nearest 3-d input");
  CHECK_ERR(md_upsample_bilinear(x3, 4, 4, 0), "must be 4-d", "bilinear 3-d input");
  CHECK_ERR(md_upsample_nearest_bwd(x3, 4, 4), "must be 4-d", "nearest_bwd 3-d gy");
  CHECK_ERR(md_upsample_bilinear_bwd(x3, 4, 4, 1), "must be 4-d", "bilinear_bwd 3-d gy");
  CHECK_ERR(md_upsample_nearest(x, 0, 4), "must be positive", "nearest zero output");
  CHECK_ERR(md_upsample_bilinear(x, 3, 0, 1), "must be positive", "bilinear zero output");
  CHECK_ERR(md_upsample_bilinear(x, -2, 3, 0), "must be positive", "bilinear negative output");
  CHECK_ERR(md_upsample_nearest(x0, 4, 4), "must be positive", "nearest empty input plane");
  CHECK_ERR(md_upsample_nearest_bwd(x, 0, 3), "must be positive", "nearest_bwd zero input size");
  CHECK_ERR(md_upsample_bilinear_bwd(x, 3, -1, 0), "must be positive",
            "bilinear_bwd negative input size");
  CHECK_ERR(md_upsample_bilinear(xi, 4, 4, 0), "must be a float tensor", "bilinear int input");
  md_set_error("earlier error");
  CHECK(md_upsample_bilinear(NULL, 2, 2, 0) == NULL && !strcmp(md_last_error(), "earlier error"),
        "NULL input keeps the earlier error");
  md_clear_error();
  md_release(x);
  md_release(x3);
  md_release(xi);
  md_release(x0);
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
  /* away_from is for kinked ops; resizing is linear (keeps -Wunused quiet) */
  (void)away_from;
  return summary();
}
