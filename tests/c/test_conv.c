/*
** test_conv.c -- conv2d, conv2d_bwd_input, conv2d_bwd_weight: forward
** values against naive double loops, first and second derivatives against
** finite differences, and the error messages.
*/
#include "check.h"

typedef struct cfg {
  const char *name;
  int64_t N, C, H, W, K, R, S;
  md_conv_params p;
  int bias, noncontig;
} cfg;

static md_conv_params P(int sh, int sw, int ph, int pw, int dh, int dw, int groups) {
  md_conv_params p = {{sh, sw}, {ph, pw}, {dh, dw}, groups};
  return p;
}

static int64_t osz(int64_t in, int pad, int dil, int64_t k, int stride) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* {====================================================== references */
/* the same triple loop for all three: visit every (n,k,oh,ow,c,r,s) term
** of y = x * w and let `mode` decide what it feeds */
enum { FWD, BWD_IN, BWD_W };
static void ref(int mode, double *out, const float *x, const float *w, const float *gy, const float *b,
                const cfg *c, int64_t Ho, int64_t Wo) {
  int64_t G = c->p.groups, Cg = c->C / G, Kg = c->K / G;
  int64_t nout = mode == FWD ? c->N * c->K * Ho * Wo
                 : mode == BWD_IN ? c->N * c->C * c->H * c->W
                                  : c->K * Cg * c->R * c->S;
  for (int64_t i = 0; i < nout; i++) out[i] = 0;
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t k = 0; k < c->K; k++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          int64_t yi = ((n * c->K + k) * Ho + oh) * Wo + ow;
          if (mode == FWD && b) out[yi] += b[k];
          for (int64_t cg = 0; cg < Cg; cg++)
            for (int64_t r = 0; r < c->R; r++)
              for (int64_t s = 0; s < c->S; s++) {
                int64_t ih = oh * c->p.stride[0] - c->p.pad[0] + r * c->p.dilation[0];
                int64_t iw = ow * c->p.stride[1] - c->p.pad[1] + s * c->p.dilation[1];
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                int64_t ch = k / Kg * Cg + cg;
                int64_t xi = ((n * c->C + ch) * c->H + ih) * c->W + iw;
                int64_t wi = ((k * Cg + cg) * c->R + r) * c->S + s;
                if (mode == FWD) out[yi] += (double)x[xi] * w[wi];
                if (mode == BWD_IN) out[xi] += (double)gy[yi] * w[wi];
                if (mode == BWD_W) out[wi] += (double)gy[yi] * x[xi];
              }
        }
}

static float *floats(const md_tensor *t) {
  float *p = malloc(sizeof(float) * (size_t)(md_numel(t) + 1));
  md_to_float(t, p);
  return p;
}
static md_tensor *from_double(int ndim, const int64_t *shape, const double *v) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *f = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) f[i] = (float)v[i];
  md_tensor *t = md_from_data(ndim, shape, f);
  free(f);
  return t;
}

/* a random (a,b,c,d) tensor, non-contiguous (dims 2,3 transposed) if asked */
static md_tensor *rnd4(int64_t a, int64_t b, int64_t c, int64_t d, int noncontig) {
  if (!noncontig) return rnd(4, (const int64_t[]){a, b, c, d});
  md_tensor *t = rnd(4, (const int64_t[]){a, b, d, c});
  md_tensor *v = md_transpose(t, 2, 3);
  md_release(t);
  return v;
}

static void forward_checks(const cfg *c) {
  char nm[160];
  int64_t G = c->p.groups;
  int64_t Ho = osz(c->H, c->p.pad[0], c->p.dilation[0], c->R, c->p.stride[0]);
  int64_t Wo = osz(c->W, c->p.pad[1], c->p.dilation[1], c->S, c->p.stride[1]);
  md_tensor *x = rnd4(c->N, c->C, c->H, c->W, c->noncontig);
  md_tensor *w = rnd(4, (const int64_t[]){c->K, c->C / G, c->R, c->S});
  md_tensor *b = c->bias ? rnd(1, &c->K) : NULL;
  md_tensor *gy = rnd4(c->N, c->K, Ho, Wo, c->noncontig);
  if (c->noncontig) CHECK(!md_is_contiguous(x) && !md_is_contiguous(gy), "non-contiguous inputs");
  float *px = floats(x), *pw = floats(w), *pgy = floats(gy), *pb = b ? floats(b) : NULL;
  size_t big = (size_t)(c->N * (c->K * Ho * Wo + c->C * c->H * c->W) + c->K * c->C * c->R * c->S);
  double *buf = malloc(sizeof(double) * big);

  md_tensor *y = md_conv2d(x, w, b, c->p);
  ref(FWD, buf, px, pw, NULL, pb, c, Ho, Wo);
  md_tensor *yr = from_double(4, (const int64_t[]){c->N, c->K, Ho, Wo}, buf);
  snprintf(nm, sizeof nm, "conv2d forward %s", c->name);
  check_close(nm, y, yr, 1e-4, 1e-4);

  md_tensor *gx = md_conv2d_bwd_input(gy, w, c->H, c->W, c->p);
  ref(BWD_IN, buf, NULL, pw, pgy, NULL, c, Ho, Wo);
  md_tensor *gxr = from_double(4, (const int64_t[]){c->N, c->C, c->H, c->W}, buf);
  snprintf(nm, sizeof nm, "conv2d_bwd_input forward %s", c->name);
  check_close(nm, gx, gxr, 1e-4, 1e-4);

  md_tensor *gw = md_conv2d_bwd_weight(x, gy, c->R, c->S, c->p);
  ref(BWD_W, buf, px, NULL, pgy, NULL, c, Ho, Wo);
  md_tensor *gwr = from_double(4, (const int64_t[]){c->K, c->C / G, c->R, c->S}, buf);
  snprintf(nm, sizeof nm, "conv2d_bwd_weight forward %s", c->name);
  check_close(nm, gw, gwr, 1e-4, 1e-3);

  free(px);
  free(pw);
  free(pgy);
  free(pb);
  free(buf);
  md_tensor *ts[] = {x, w, b, gy, y, yr, gx, gxr, gw, gwr};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) md_release(ts[i]);
}
/* }====================================================== */

/* {====================================================== derivatives */
/* forward_checks of the configurations pick selects, with the
** environment variable var set to 0 (a path switched off) */
static void rerun_with(const char *var, const cfg *cs, size_t n, int (*pick)(const cfg *)) {
  setenv(var, "0", 1);
  for (size_t i = 0; i < n; i++)
    if (pick(&cs[i])) {
      cfg c = cs[i];
      char nm[160];
      snprintf(nm, sizeof nm, "%s (%s=0)", c.name, var);
      c.name = nm;
      forward_checks(&c);
    }
  unsetenv(var);
}
static int is_packed_cfg(const cfg *c) {
  return !strncmp(c->name, "packed", 6) || !strncmp(c->name, "transposed", 10);
}
static int is_strided_1x1_cfg(const cfg *c) {
  return c->R == 1 && c->S == 1 && (c->p.stride[0] > 1 || c->p.stride[1] > 1);
}

typedef struct gcfg {
  md_conv_params p;
  int64_t H, W, R, S;
} gcfg;

static md_tensor *f_conv(md_tensor **in, void *ud) {
  return md_conv2d(in[0], in[1], in[2], ((gcfg *)ud)->p);
}
static md_tensor *f_bwd_input(md_tensor **in, void *ud) {
  gcfg *g = ud;
  return md_conv2d_bwd_input(in[0], in[1], g->H, g->W, g->p);
}
static md_tensor *f_bwd_weight(md_tensor **in, void *ud) {
  gcfg *g = ud;
  return md_conv2d_bwd_weight(in[0], in[1], g->R, g->S, g->p);
}

static md_tensor *leaf(md_tensor *t) {
  md_set_requires_grad(t, 1);
  return t;
}

static void grad_checks(const cfg *c) {
  char nm[160];
  int64_t G = c->p.groups;
  int64_t Ho = osz(c->H, c->p.pad[0], c->p.dilation[0], c->R, c->p.stride[0]);
  int64_t Wo = osz(c->W, c->p.pad[1], c->p.dilation[1], c->S, c->p.stride[1]);
  gcfg g = {c->p, c->H, c->W, c->R, c->S};
  md_tensor *x = leaf(rnd(4, (const int64_t[]){c->N, c->C, c->H, c->W}));
  md_tensor *w = leaf(rnd(4, (const int64_t[]){c->K, c->C / G, c->R, c->S}));
  md_tensor *b = c->bias ? leaf(rnd(1, &c->K)) : NULL;
  md_tensor *gy = leaf(rnd(4, (const int64_t[]){c->N, c->K, Ho, Wo}));

  md_tensor *in1[3] = {x, w, b};
  snprintf(nm, sizeof nm, "conv2d %s", c->name);
  gradcheck(nm, f_conv, 3, in1, &g, 1e-2, 1e-2);
  gradgradcheck(nm, f_conv, 3, in1, &g, 1e-2, 1e-2);

  md_tensor *in2[2] = {gy, w};
  snprintf(nm, sizeof nm, "conv2d_bwd_input %s", c->name);
  gradcheck(nm, f_bwd_input, 2, in2, &g, 1e-2, 1e-2);
  gradgradcheck(nm, f_bwd_input, 2, in2, &g, 1e-2, 1e-2);

  md_tensor *in3[2] = {x, gy};
  snprintf(nm, sizeof nm, "conv2d_bwd_weight %s", c->name);
  gradcheck(nm, f_bwd_weight, 2, in3, &g, 1e-2, 1e-2);
  gradgradcheck(nm, f_bwd_weight, 2, in3, &g, 1e-2, 1e-2);

  md_release(x);
  md_release(w);
  md_release(b);
  md_release(gy);
}

/* the graph records the op names and the bias gradient is the sum of g */
static void autograd_checks(void) {
  md_tensor *x = leaf(rnd(4, (const int64_t[]){2, 3, 5, 5}));
  md_tensor *w = leaf(rnd(4, (const int64_t[]){4, 3, 3, 3}));
  md_tensor *b = leaf(rnd(1, (const int64_t[]){4}));
  md_tensor *y = md_conv2d(x, w, b, P(1, 1, 1, 1, 1, 1, 1));
  CHECK(y && md_grad_fn_name(y) && !strcmp(md_grad_fn_name(y), "conv2d"), "conv2d records a node");
  md_tensor *L = md_sum(y, 0, NULL, 0);
  CHECK(md_backward(L, NULL, 0, 0) == MD_OK, "conv2d backward runs");
  int ok = b->grad != NULL;
  for (int i = 0; ok && i < 4; i++) ok = fabs(md_get(b->grad, i) - 50.0) < 1e-4; /* 2*5*5 ones */
  CHECK(ok, "conv2d bias gradient = N*Ho*Wo for sum(y)");
  int old = md_set_grad_enabled(0);
  md_tensor *y2 = md_conv2d(x, w, b, P(1, 1, 1, 1, 1, 1, 1));
  md_set_grad_enabled(old);
  CHECK(y2 && !md_requires_grad(y2), "no node with grad mode off");
  md_tensor *ts[] = {x, w, b, y, L, y2};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) md_release(ts[i]);
}
/* }====================================================== */

/* {====================================================== errors */
static void error_checks(void) {
  md_conv_params d = md_conv_params_default();
  CHECK(d.stride[0] == 1 && d.stride[1] == 1 && d.pad[0] == 0 && d.pad[1] == 0 && d.dilation[0] == 1 &&
            d.dilation[1] == 1 && d.groups == 1,
        "conv_params_default");
  md_tensor *x = rnd(4, (const int64_t[]){1, 3, 5, 5});
  md_tensor *w = rnd(4, (const int64_t[]){4, 3, 3, 3});
  md_tensor *w2 = rnd(4, (const int64_t[]){4, 2, 3, 3});
  md_tensor *wbig = rnd(4, (const int64_t[]){4, 3, 9, 9});
  md_tensor *x3 = rnd(3, (const int64_t[]){3, 5, 5});
  md_tensor *xi = md_randint(4, (const int64_t[]){1, 3, 5, 5}, 0, 5);
  md_tensor *b5 = rnd(1, (const int64_t[]){5});
  md_tensor *gy = rnd(4, (const int64_t[]){1, 4, 3, 3});
  md_tensor *gy5 = rnd(4, (const int64_t[]){1, 5, 3, 3});

  CHECK_ERR(md_conv2d(x, w2, NULL, d), "channels", "conv2d: wrong channel count");
  CHECK_ERR(md_conv2d(x, w2, NULL, d), "1x3x5x5", "conv2d: message names the shapes");
  CHECK_ERR(md_conv2d(x, wbig, NULL, d), "too small", "conv2d: kernel bigger than the input");
  CHECK_ERR(md_conv2d(x, wbig, NULL, P(1, 1, 1, 1, 1, 1, 1)), "too small",
            "conv2d: kernel bigger than the padded input");
  CHECK_ERR(md_conv2d(x, w, NULL, P(1, 1, 0, 0, 3, 3, 1)), "too small",
            "conv2d: dilated kernel bigger than the input");
  CHECK_ERR(md_conv2d(x, w, NULL, P(1, 1, 0, 0, 1, 1, 2)), "groups", "conv2d: groups do not divide C");
  CHECK_ERR(md_conv2d(x, w, NULL, P(0, 1, 0, 0, 1, 1, 1)), "stride", "conv2d: stride 0");
  CHECK_ERR(md_conv2d(x, w, NULL, P(1, 1, -1, 0, 1, 1, 1)), "padding", "conv2d: negative padding");
  CHECK_ERR(md_conv2d(x, w, NULL, P(1, 1, 0, 0, 1, 1, 0)), "groups", "conv2d: groups 0");
  CHECK_ERR(md_conv2d(xi, w, NULL, d), "float", "conv2d: int tensor as input");
  CHECK_ERR(md_conv2d(x3, w, NULL, d), "(N,C,H,W)", "conv2d: 3-d input");
  CHECK_ERR(md_conv2d(x, w, b5, d), "bias", "conv2d: bias of the wrong size");
  CHECK_ERR(md_conv2d(NULL, w, NULL, d), "missing", "conv2d: NULL input");
  md_set_error("earlier error");
  md_tensor *r = md_conv2d(NULL, w, NULL, d);
  CHECK(!r && !strcmp(md_last_error(), "earlier error"), "conv2d: NULL input keeps the earlier error");

  CHECK_ERR(md_conv2d_bwd_input(gy, w, 6, 6, d), "does not match", "bwd_input: wrong input size");
  CHECK_ERR(md_conv2d_bwd_input(gy5, w, 5, 5, d), "channels", "bwd_input: gy channels differ");
  CHECK_ERR(md_conv2d_bwd_input(gy, w, 0, 5, d), "positive", "bwd_input: zero input size");
  CHECK_ERR(md_conv2d_bwd_input(gy, w, 2, 2, d), "too small", "bwd_input: kernel bigger than input");
  CHECK_ERR(md_conv2d_bwd_input(xi, w, 5, 5, d), "float", "bwd_input: int tensor");
  CHECK_ERR(md_conv2d_bwd_input(NULL, w, 5, 5, d), "missing", "bwd_input: NULL");
  CHECK_ERR(md_conv2d_bwd_weight(x, gy, 2, 2, d), "does not match", "bwd_weight: wrong kernel size");
  CHECK_ERR(md_conv2d_bwd_weight(x, gy, 0, 3, d), "positive", "bwd_weight: zero kernel size");
  CHECK_ERR(md_conv2d_bwd_weight(x, gy5, 3, 3, P(1, 1, 0, 0, 1, 1, 2)), "groups",
            "bwd_weight: bad groups");
  CHECK_ERR(md_conv2d_bwd_weight(x3, gy, 3, 3, d), "(N,C,H,W)", "bwd_weight: 3-d input");
  CHECK_ERR(md_conv2d_bwd_weight(x, xi, 3, 3, d), "float", "bwd_weight: int tensor");
  md_tensor *ts[] = {x, w, w2, wbig, x3, xi, b5, gy, gy5};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) md_release(ts[i]);
}

/* bwd_weight with chunks of images shared out among the threads, an
** accumulator each: the same bits on every call (128 -> 128 at 7x7 takes
** the im2col path, 64 images in chunks of 9) */
static void repeatable_checks(void) {
  md_tensor *x = rnd(4, (const int64_t[]){64, 128, 7, 7}), *gy = rnd(4, (const int64_t[]){64, 128, 7, 7});
  md_conv_params p = P(1, 1, 1, 1, 1, 1, 1);
  md_tensor *a = md_conv2d_bwd_weight(x, gy, 3, 3, p);
  int same = a != NULL;
  for (int i = 0; same && i < 10; i++) {
    md_tensor *b = md_conv2d_bwd_weight(x, gy, 3, 3, p);
    same = b && !memcmp(a->data, b->data, sizeof(float) * 128 * 128 * 9);
    md_release(b);
  }
  CHECK(same, "bwd_weight over chunks on 2 threads: the same bits on 10 more calls");
  md_release(a);
  md_release(x);
  md_release(gy);
}

/* an empty batch: an empty output, and a zero weight gradient, on both
** the packed path (16 -> 32 channels at 9x9) and the im2col path (3 -> 4) */
static void empty_batch_checks(void) {
  const int64_t shapes[2][2] = {{16, 32}, {3, 4}};
  md_conv_params p = P(1, 1, 1, 1, 1, 1, 1);
  for (int i = 0; i < 2; i++) {
    int64_t C = shapes[i][0], K = shapes[i][1];
    md_tensor *x = rnd(4, (const int64_t[]){0, C, 9, 9}), *w = rnd(4, (const int64_t[]){K, C, 3, 3});
    md_tensor *gy = rnd(4, (const int64_t[]){0, K, 9, 9});
    md_tensor *y = md_conv2d(x, w, NULL, p), *gx = md_conv2d_bwd_input(gy, w, 9, 9, p);
    md_tensor *gw = md_conv2d_bwd_weight(x, gy, 3, 3, p);
    CHECK(y && y->shape[0] == 0 && y->shape[1] == K, i ? "empty batch: conv2d (im2col path)" : "empty batch: conv2d (packed)");
    CHECK(gx && gx->shape[0] == 0 && gx->shape[1] == C,
          i ? "empty batch: bwd_input (im2col path)" : "empty batch: bwd_input (packed)");
    int zero = gw != NULL && gw->shape[0] == K;
    for (int64_t j = 0; zero && j < K * C * 9; j++) zero = ((const float *)gw->data)[j] == 0.0f;
    CHECK(zero, i ? "empty batch: bwd_weight is zero (im2col path)" : "empty batch: bwd_weight is zero (packed)");
    md_tensor *ts[] = {x, w, gy, y, gx, gw};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) md_release(ts[k]);
  }
}
/* }====================================================== */

int main(void) {
  md_manual_seed(1234);
  (void)away_from; /* part of the harness; convolution has no kinks */
  md_set_num_threads(2); /* the blocks-in-parallel path needs more than one */
  const cfg fwd[] = {
      {"3x3 pad 1 bias", 2, 3, 7, 6, 4, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"stride 2 odd 3x2 kernel", 2, 3, 9, 7, 5, 3, 2, P(2, 2, 1, 0, 1, 1, 1), 1, 0},
      {"dilation 2", 2, 2, 8, 9, 3, 3, 3, P(1, 1, 2, 2, 2, 2, 1), 0, 0},
      {"groups 2", 3, 4, 6, 6, 6, 3, 3, P(1, 2, 1, 1, 1, 1, 2), 1, 0},
      {"depthwise mult 2 stride 2", 2, 4, 7, 7, 8, 3, 3, P(2, 2, 1, 1, 1, 1, 4), 1, 0},
      {"depthwise dilation 2", 2, 3, 8, 8, 3, 3, 3, P(1, 1, 2, 2, 2, 2, 3), 0, 1},
      {"1x1 pointwise chunked", 5, 6, 4, 5, 7, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"1x1 pointwise big maps", 3, 3, 48, 50, 4, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"1x1 pointwise groups 2", 3, 4, 5, 5, 6, 1, 1, P(1, 1, 0, 0, 1, 1, 2), 0, 1},
      {"1x1 stride 2 shortcut", 3, 4, 8, 8, 6, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 0},
      {"3x3 big maps (one image per GEMM)", 2, 3, 48, 47, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"chunks with a remainder", 11, 3, 32, 32, 4, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"N=1", 1, 3, 5, 5, 2, 3, 3, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"non-contiguous", 2, 3, 6, 5, 4, 3, 3, P(2, 1, 1, 2, 1, 1, 1), 1, 1},
      {"kernel = padded input", 2, 2, 3, 3, 3, 5, 5, P(1, 1, 1, 1, 1, 1, 1), 0, 0},
      {"large stride", 2, 2, 9, 9, 3, 2, 2, P(4, 3, 1, 0, 1, 1, 1), 1, 0},
      /* blocks of output rows within an image (many input channels) */
      {"row blocks", 2, 64, 32, 32, 3, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"row blocks stride 2 groups 2", 2, 64, 65, 32, 4, 3, 3, P(2, 1, 1, 1, 1, 1, 2), 1, 1},
      {"wide maps stride 2 dilation 2", 2, 3, 37, 40, 4, 3, 3, P(2, 2, 2, 1, 2, 2, 1), 1, 0},
      {"wide maps 1x1 stride 2", 2, 5, 34, 36, 4, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 1},
      {"1x1 stride (3,1) groups 2", 2, 4, 7, 5, 6, 1, 1, P(3, 1, 0, 0, 1, 1, 2), 1, 1},
      {"1x1 stride 2, 64->128 (subsample + pointwise)", 2, 64, 16, 16, 128, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 1, 0},
      {"1x1 pointwise row blocks", 2, 8, 72, 72, 3, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      /* enough chunks of images to share them among 2 threads */
      {"parallel blocks", 5, 64, 32, 32, 3, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"parallel chunks of small maps", 60, 64, 8, 8, 4, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 1},
      {"parallel blocks 256 channels 1x1", 4, 4, 64, 64, 256, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      /* many output channels: bwd_weight computes gw directly, not gw^T */
      {"256 output channels", 2, 2, 4, 4, 256, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"512 output channels groups 2", 3, 4, 3, 3, 512, 3, 3, P(1, 1, 1, 1, 1, 1, 2), 0, 0},
      /* col2im image by image (maps of 8 pixels or fewer) */
      {"2x2 maps, many images", 9, 8, 2, 2, 16, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"2x4 maps, dilation 2, groups 2", 5, 6, 4, 6, 4, 3, 3, P(2, 1, 2, 1, 2, 2, 2), 1, 1},
      /* the packed path (>= 16 output channels, C*R*S >= 64, maps of 64
      ** pixels or more, stride 1 or 2 across, no groups; 1x1 ones below);
      ** bwd_input takes it too when it also has >= 16 input channels,
      ** stride 1 and pad <= dilation*(kernel-1).  Output channels that are
      ** not a multiple of the micro-kernel's rows, tiles of columns that
      ** straddle rows and images, masks at the borders */
      {"packed 3x3 pad 1 20->40", 3, 20, 9, 8, 40, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"packed stride (2,1) dilation (1,2)", 2, 17, 13, 11, 33, 3, 3, P(2, 1, 0, 3, 1, 2, 1), 1, 0},
      {"packed dilation 2 non-contiguous", 2, 18, 10, 9, 18, 3, 3, P(1, 1, 2, 2, 2, 2, 1), 0, 1},
      {"packed 5x5 unpadded", 2, 16, 12, 13, 24, 5, 5, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"packed 9x9 maps, tiles across images", 3, 32, 9, 9, 64, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"packed 1x3 on wide rows", 1, 24, 3, 70, 24, 1, 3, P(1, 1, 0, 1, 1, 1, 1), 0, 0},
      {"packed pad 3 > kernel - 1", 1, 16, 4, 4, 16, 3, 3, P(1, 1, 3, 3, 1, 1, 1), 1, 0},
      {"packed 64->64 32x32", 2, 64, 32, 32, 64, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"packed stride 2", 2, 16, 17, 19, 32, 3, 3, P(2, 2, 1, 1, 1, 1, 1), 1, 0},
      {"packed stride (1,2) dilation 2 non-contiguous", 2, 16, 10, 21, 20, 3, 3, P(1, 2, 2, 2, 2, 2, 1), 0, 1},
      {"packed 64->128 stride 2 32x32", 2, 64, 32, 32, 128, 3, 3, P(2, 2, 1, 1, 1, 1, 1), 1, 0},
      {"packed 256->288 (chunks of rows)", 1, 256, 8, 8, 288, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      /* the transposed orientation (kernels that store C by columns, as
      ** skx): chunks of rows with the bias added after the last, panels of
      ** pixels across images, output channels not a multiple of 12; 1x1
      ** stride-1 ones with few padding columns; and the strided 1x1
      ** bwd_input that spreads its results with zeros between, over odd
      ** sizes (a run's last column cut), strides (3,2) and (2,3), and
      ** more gy channels than one chunk */
      {"transposed 3x3 100->40, 7x11 maps", 2, 100, 7, 11, 40, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1, 0},
      {"transposed pointwise 64->48", 2, 64, 12, 12, 48, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"pointwise read from x, 64->40, 8x12 maps", 3, 64, 8, 12, 40, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 1},
      {"pointwise read from x, 400->70 (chunks of rows)", 2, 400, 8, 8, 70, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"spread 1x1 stride 2, odd sizes, 20->400", 2, 20, 17, 19, 400, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 0},
      {"spread 1x1 stride (3,2)", 2, 24, 25, 21, 70, 1, 1, P(3, 2, 0, 0, 1, 1, 1), 0, 1},
      {"spread 1x1 stride (2,3)", 2, 16, 20, 25, 64, 1, 1, P(2, 3, 0, 0, 1, 1, 1), 0, 0},
      /* 1x1 bwd_weight by dot products (>= 16 channels, <= 512 inputs,
      ** output maps of 256 pixels or more): runs padded to 16, rows past a
      ** 6 x 4 block's end, chunks shared out among threads, inputs
      ** gathered at strides 2, (3,2) and (1,3) */
      {"pointwise bwd_weight, 17x19 maps, 30->22", 3, 22, 17, 19, 30, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 1},
      {"pointwise bwd_weight, chunks over 2 threads", 16, 16, 16, 16, 24, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 0, 0},
      {"1x1 stride 2 bwd_weight by dot products, odd maps", 2, 16, 33, 33, 20, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 1},
      /* output channels of every residue mod 6 (the blocks' rows), inputs
      ** not a multiple of 4 */
      {"dot-product bwd_weight 17->19", 2, 17, 16, 16, 19, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 0, 0},
      {"dot-product bwd_weight 16->21 stride 2", 2, 16, 32, 32, 21, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 0},
      {"dot-product bwd_weight 23->22", 2, 23, 16, 17, 22, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 0, 1},
      {"dot-product bwd_weight 18->23", 2, 18, 17, 16, 23, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 0, 0},
      {"1x1 stride (3,2) bwd_weight by dot products", 2, 16, 49, 34, 20, 1, 1, P(3, 2, 0, 0, 1, 1, 1), 0, 0},
      {"1x1 stride (1,3) bwd_weight by dot products", 2, 16, 17, 49, 20, 1, 1, P(1, 3, 0, 0, 1, 1, 1), 0, 0},
      {"bwd_weight by chunks of columns, an accumulator per thread", 5, 16, 32, 32, 32, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 0, 0},
      {"spread 1x1 stride 2, 64->128 32x32 (blocks of panels)", 2, 64, 32, 32, 128, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 0},
      /* strided 1x1 on small maps with several threads: runs of whole
      ** images channel-major (forward under 64 output pixels, bwd_input up
      ** to 64): runs split unevenly between the threads, runs capped at
      ** 1024 columns (40 images of 8x8), odd strides and sizes, a bias */
      {"channel-major 1x1 stride 2, 7 images 4x4", 7, 20, 8, 8, 30, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 1, 0},
      {"channel-major 1x1 stride 2, 40 images 8x8", 40, 24, 16, 16, 20, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 1, 0},
      {"channel-major 1x1 stride (3,2), 4x5 maps", 5, 18, 11, 9, 34, 1, 1, P(3, 2, 0, 0, 1, 1, 1), 1, 1},
      {"channel-major 1x1 stride 2, 256->512 4x4", 3, 256, 8, 8, 512, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 0},
      {"channel-major 1x1 stride 2, 130->40 8x8, 40 images", 40, 130, 16, 16, 40, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 0, 0},
  };
  for (size_t i = 0; i < sizeof fwd / sizeof *fwd; i++) forward_checks(&fwd[i]);
  /* the packed shapes once more in the other orientation, which kernels
  ** that store C by rows (haswell) always take */
  rerun_with("MD_CONV_TPACK", fwd, sizeof fwd / sizeof *fwd, is_packed_cfg);
  /* and the strided 1x1 ones on the paths they take with one thread */
  rerun_with("MD_CONV_CM", fwd, sizeof fwd / sizeof *fwd, is_strided_1x1_cfg);

  const cfg grads[] = {
      {"plain bias", 2, 2, 4, 4, 3, 3, 3, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"stride 2 pad 1", 1, 2, 5, 6, 3, 3, 3, P(2, 2, 1, 1, 1, 1, 1), 1, 0},
      {"dilation 2", 1, 2, 6, 6, 2, 3, 3, P(1, 1, 1, 2, 2, 2, 1), 0, 0},
      {"groups 2", 2, 4, 4, 4, 4, 3, 3, P(1, 1, 1, 1, 1, 1, 2), 1, 0},
      {"depthwise", 2, 3, 5, 5, 6, 3, 3, P(2, 1, 1, 1, 1, 1, 3), 1, 0},
      {"1x1", 3, 3, 3, 3, 2, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1, 0},
      {"1x1 stride 2", 2, 3, 5, 4, 2, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 1, 0},
  };
  for (size_t i = 0; i < sizeof grads / sizeof *grads; i++) grad_checks(&grads[i]);
  autograd_checks();
  error_checks();
  empty_batch_checks();
  repeatable_checks();
  CHECK(md_tensors_alive() == 0, "no tensors leaked");
  return summary();
}
