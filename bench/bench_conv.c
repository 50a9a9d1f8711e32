/*
** bench_conv.c -- GFLOP/s of conv2d, conv2d_bwd_input and conv2d_bwd_weight
** on the convolutions of VGG-16 and ResNet-18 for CIFAR (32x32 input, batch
** 32), next to BLIS sgemm on a 1024^3 product measured the same way, at 1
** and 2 threads.  Each figure is the median of several runs after a warm-up.
** The last three columns compare each op with sgemm on the same product
** (the convolution's GEMM as im2col + sgemm would run it, its operands
** given to BLIS contiguous and row-major): what BLIS itself does on a
** product of that shape.
**   build/bench/bench_conv            all shapes, 1 and 2 threads
**   MD_BLIS_ARCH=3 build/bench/...    the same with BLIS's haswell kernels
**   BENCH_THREADS=2 ...               one thread count only
**   BENCH_ONLY=1x1 ...                the shapes whose name holds "1x1"
*/
#include "internal.h" /* md_sgemm: the benchmark calls BLIS through the same door as the ops */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct shape {
  const char *net, *name;
  int64_t C, K, H, R; /* square maps and kernels */
  int stride, pad;
} shape;

static const shape SHAPES[] = {
    {"vgg", "conv1 3->64 3x3 @32", 3, 64, 32, 3, 1, 1},
    {"both", "64->64 3x3 @32", 64, 64, 32, 3, 1, 1},
    {"both", "128->128 3x3 @16", 128, 128, 16, 3, 1, 1},
    {"both", "256->256 3x3 @8", 256, 256, 8, 3, 1, 1},
    {"both", "512->512 3x3 @4", 512, 512, 4, 3, 1, 1},
    {"vgg", "512->512 3x3 @2", 512, 512, 2, 3, 1, 1},
    {"resnet", "64->128 3x3 s2 @32", 64, 128, 32, 3, 2, 1},
    {"resnet", "128->256 3x3 s2 @16", 128, 256, 16, 3, 2, 1},
    {"resnet", "256->512 3x3 s2 @8", 256, 512, 8, 3, 2, 1},
    {"resnet", "64->128 1x1 s2 @32", 64, 128, 32, 1, 2, 0},
    {"resnet", "128->256 1x1 s2 @16", 128, 256, 16, 1, 2, 0},
    {"resnet", "256->512 1x1 s2 @8", 256, 512, 8, 1, 2, 0},
};
#define BATCH 32

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* the median time of fn(ctx) over 5..15 runs (about 0.2 s) after 8
** warm-up calls (fewer if they take over 0.3 s, at least 2): first touch
** of the buffers, BLIS's packing memory, and the allocator, which took 5-6
** calls of an op with a 4 MB output before it stopped faulting the
** output's pages in afresh (1024 page faults a call, each such call 10-20x
** slower; seen with one op alone, BENCH_ONLY).  The warm-up calls must not
** decide the number of runs */
typedef void (*bench_fn)(void *ctx);
static double median_time(bench_fn fn, void *ctx) {
  double w0 = now();
  for (int i = 0; i < 8 && (i < 2 || now() - w0 < 0.3); i++) fn(ctx);
  double t0 = now();
  fn(ctx);
  double first = now() - t0;
  int reps = first > 0 ? (int)(0.2 / first) : 15;
  if (reps < 5) reps = 5;
  if (reps > 15) reps = 15;
  double t[15];
  for (int i = 0; i < reps; i++) {
    t0 = now();
    fn(ctx);
    t[i] = now() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_d);
  return t[reps / 2];
}

typedef struct gemm_ctx {
  float *a, *b, *c;
  int64_t m, n, k;
} gemm_ctx;
static void run_gemm(void *p) {
  gemm_ctx *g = p;
  md_sgemm(0, 0, g->m, g->n, g->k, 1.0f, g->a, g->k, 1, g->b, g->n, 1, 0.0f, g->c, g->n, 1);
}

typedef struct conv_ctx {
  md_tensor *x, *w, *gy;
  md_conv_params p;
  int op;
  int64_t H, R;
} conv_ctx;
static void run_conv(void *q) {
  conv_ctx *c = q;
  md_tensor *r = c->op == 0   ? md_conv2d(c->x, c->w, NULL, c->p)
                 : c->op == 1 ? md_conv2d_bwd_input(c->gy, c->w, c->H, c->H, c->p)
                              : md_conv2d_bwd_weight(c->x, c->gy, c->R, c->R, c->p);
  if (!r) {
    fprintf(stderr, "bench_conv: %s\n", md_last_error());
    exit(1);
  }
  md_release(r);
}

/* sgemm's GFLOP/s on C (m x n) = A (m x k) B (k x n), all row-major */
static double sgemm_gflops(int64_t m, int64_t n, int64_t k) {
  gemm_ctx g = {malloc(sizeof(float) * (size_t)(m * k)), malloc(sizeof(float) * (size_t)(k * n)),
                malloc(sizeof(float) * (size_t)(m * n)), m, n, k};
  if (!g.a || !g.b || !g.c) {
    fprintf(stderr, "bench_conv: out of memory for a %lldx%lldx%lld product\n", (long long)m, (long long)n,
            (long long)k);
    exit(1);
  }
  for (int64_t i = 0; i < m * k; i++) g.a[i] = (float)(i % 7) * 0.1f;
  for (int64_t i = 0; i < k * n; i++) g.b[i] = (float)(i % 5) * 0.1f;
  double t = median_time(run_gemm, &g);
  free(g.a);
  free(g.b);
  free(g.c);
  return 2.0 * m * n * k / t * 1e-9;
}

/* CPU seconds of the process so far (all threads) */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void run_threads(int threads) {
  md_set_num_threads(threads);
  double w0 = now(), c0 = cpu_seconds();
  double peak = sgemm_gflops(1024, 1024, 1024);
  printf("\n%s\n", md_blas_info());
  printf("sgemm 1024x1024x1024: %.1f GFLOP/s\n\n", peak);
  printf("%-7s %-22s %9s %9s %9s   %6s %6s %6s   %6s %6s %6s\n", "net", "conv (N=32)", "fwd", "bwd_in", "bwd_w",
         "fwd%", "in%", "w%", "fwd%p", "in%p", "w%p");
  double tot_flop = 0, tot_time = 0;
  for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
    const shape *s = &SHAPES[i];
    const char *only = getenv("BENCH_ONLY");
    if (only && !strstr(s->name, only)) continue;
    int64_t Ho = (s->H + 2 * s->pad - s->R) / s->stride + 1;
    conv_ctx c;
    c.x = md_randn(4, (const int64_t[]){BATCH, s->C, s->H, s->H});
    c.w = md_randn(4, (const int64_t[]){s->K, s->C, s->R, s->R});
    c.gy = md_randn(4, (const int64_t[]){BATCH, s->K, Ho, Ho});
    c.p = md_conv_params_default();
    c.p.stride[0] = c.p.stride[1] = s->stride;
    c.p.pad[0] = c.p.pad[1] = s->pad;
    c.H = s->H;
    c.R = s->R;
    double flop = 2.0 * BATCH * s->K * Ho * Ho * s->C * s->R * s->R, gf[3];
    for (int op = 0; op < 3; op++) {
      c.op = op;
      double t = median_time(run_conv, &c);
      gf[op] = flop / t * 1e-9;
      tot_flop += flop;
      tot_time += t;
    }
    /* the same products: W col, W^T gy, gy col^T (col: C*R*S x N*Ho*Wo) */
    const int64_t crs = s->C * s->R * s->R, np = BATCH * Ho * Ho;
    const double pf[3] = {sgemm_gflops(s->K, np, crs), sgemm_gflops(crs, np, s->K), sgemm_gflops(s->K, crs, np)};
    printf("%-7s %-22s %9.1f %9.1f %9.1f   %5.0f%% %5.0f%% %5.0f%%   %5.0f%% %5.0f%% %5.0f%%\n", s->net, s->name,
           gf[0], gf[1], gf[2], 100 * gf[0] / peak, 100 * gf[1] / peak, 100 * gf[2] / peak, 100 * gf[0] / pf[0],
           100 * gf[1] / pf[1], 100 * gf[2] / pf[2]);
    fflush(stdout);
    md_release(c.x);
    md_release(c.w);
    md_release(c.gy);
  }
  printf("all shapes, 3 ops: %.1f GFLOP/s (%.0f%% of sgemm)\n", tot_flop / tot_time * 1e-9,
         100 * tot_flop / tot_time * 1e-9 / peak);
  /* a run that shared its cores with other processes shows here: sgemm
  ** slower after than before, and less than all of the threads' time */
  double after = sgemm_gflops(1024, 1024, 1024);
  printf("sgemm again after the convolutions: %.1f GFLOP/s; CPU share %.0f%% of %d thread%s\n", after,
         100 * (cpu_seconds() - c0) / ((now() - w0) * threads), threads, threads == 1 ? "" : "s");
}

int main(void) {
  md_init();
  md_manual_seed(1);
  md_set_grad_enabled(0);
  printf("bench_conv: GFLOP/s = 2*N*K*Ho*Wo*C/g*R*S / median time; %% = of sgemm 1024^3; %%p = of sgemm on\n"
         "the same product (W col, W^T gy, gy col^T with col C*R*S x N*Ho*Wo, contiguous row-major)\n");
  const char *only = getenv("BENCH_THREADS");
  if (only && atoi(only) > 0) {
    run_threads(atoi(only));
  } else {
    run_threads(1);
    run_threads(2);
  }
  return 0;
}
