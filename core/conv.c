/*
** conv.c -- 2-d convolution as three ops that are each other's backward:
**   conv2d(x, w, b)              y  (N,K,Ho,Wo)
**   conv2d_bwd_input(gy, w)      gx (N,C,H,W)    = d<gy, conv2d(x,w)>/dx
**   conv2d_bwd_weight(x, gy)     gw (K,C/g,R,S)  = d<gy, conv2d(x,w)>/dw
** Each is bilinear in its two tensor arguments, so the backward of each is
** made of the other two (and of conv2d itself), and gradients of any order
** come out of the same three kernels.
**
** General path: im2col into a column matrix col [C*R*S, columns] (row
** (c,r,s), column (image, oh, ow)) one block of columns at a time, then one
** sgemm per group:  y = W col,  gcol = W^T gy (then col2im),  gw = gy col^T.
** A block holds a few output rows of one image when the maps are large (the
** GEMM then reads and writes the NCHW tensors in place through strides), or
** several whole images side by side when they are small (a 4x4 map gives
** only 16 columns per image; those are gathered and scattered).  1x1
** stride-1 unpadded convolutions need no im2col: the input already is the
** column matrix.  Depthwise convolutions (one input channel per group) are
** too thin for a GEMM and use direct loops.
**
** Packed path (no groups, stride 1 or 2 across, maps of 64 pixels and
** more, not 1x1 stride 1): the column matrix is never written.  The
** operands go straight from the NCHW tensors into the micro-panels that
** BLIS's sgemm micro-kernel reads, and this file runs the GEMM's loops
** itself.  conv2d and conv2d_bwd_weight take it, and conv2d_bwd_input of a
** stride-1 convolution (the forward of gy with the weights transposed and
** flipped).  See "packed path".
**
** With several threads, the forward and bwd_input of strided 1x1
** convolutions on small maps (the ResNet shortcuts at 4x4 and 8x8 output)
** run channel-major: each thread copies runs of whole images into
** (channels, pixels) form and multiplies them with one sgemm of its own
** (see "strided 1x1 on small maps").
**
** With several threads, the images (packed: blocks of columns, or for
** bwd_weight the rows of the column matrix) are shared out in chunks and
** every GEMM runs on one thread (see "running the blocks").
**
** Measured on a 2-core Zen 4 with BLIS's skx kernels (BENCHMARKS.md): with
** the packed path the 3x3 convolutions of VGG and ResNet at 32x32 input run
** at 70-103% of the sgemm rate at 1 and 2 threads; the im2col path had the
** 64-channel ones at 55-76%, losing a third of the arithmetic's time to
** writing the column matrix that BLIS then reads again to pack it.
*/
#include "internal.h"

#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#define PAR_IF(work) ((work) >= MD_PAR_MIN && !omp_in_parallel())
#define IN_PARALLEL omp_in_parallel()
#else
#define PAR_IF(work) 0
#define IN_PARALLEL 0
#endif

/* {====================================================== geometry */

/* md_err wants a literal op name; these messages are shared by the three ops */
#define cerr(op, fmt, ...) md_set_error("%s: " fmt, (op), __VA_ARGS__)

/* blocking of the column matrix (see the GEMM-path kernels): a block of
** about BLK_BYTES (measured best at 2-4 MB on a 2-core Zen 4: bigger blocks
** fall out of the caches before BLIS packs them), but between QMIN and QMAX
** columns so that the GEMM stays wide enough and the buffers bounded */
#define BLK_BYTES ((int64_t)2 << 20)
#define QMIN 256
#define QMAX 4096
/* bwd_weight computes gw^T (CRS, K) when K is below this (see there) */
#define BWW_TRANSPOSED_BELOW 256

typedef struct geom {
  int64_t N, C, H, W; /* input */
  int64_t K, R, S;    /* weight (K, C/G, R, S) */
  int64_t Ho, Wo, G;
  int64_t sh, sw, ph, pw, dh, dw;
} geom;

/* output size along one dim; 0 when the dilated kernel does not fit */
static int64_t out_size(int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride) {
  int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

static int check_params(const char *op, md_conv_params p) {
  if (p.stride[0] < 1 || p.stride[1] < 1 || p.dilation[0] < 1 || p.dilation[1] < 1 || p.pad[0] < 0 ||
      p.pad[1] < 0 || p.groups < 1) {
    cerr(op, "bad parameters stride %dx%d, padding %dx%d, dilation %dx%d, groups %d (need stride, "
               "dilation, groups >= 1 and padding >= 0)", p.stride[0], p.stride[1], p.pad[0], p.pad[1],
           p.dilation[0], p.dilation[1], p.groups);
    return 0;
  }
  return 1;
}

/* fill g from the sizes and check groups and the output size; `what`
** names the tensors for the messages */
static int fill_geom(const char *op, geom *g, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                     int64_t R, int64_t S, md_conv_params p, const char *what) {
  if (!check_params(op, p)) return 0;
  *g = (geom){N, C, H, W, K, R, S, 0, 0, p.groups, p.stride[0], p.stride[1], p.pad[0], p.pad[1],
              p.dilation[0], p.dilation[1]};
  if (C % g->G || K % g->G) {
    cerr(op, "%s: groups %d must divide both the input channels (%lld) and the output channels "
               "(%lld)", what, p.groups, (long long)C, (long long)K);
    return 0;
  }
  g->Ho = out_size(H, g->ph, g->dh, R, g->sh);
  g->Wo = out_size(W, g->pw, g->dw, S, g->sw);
  if (g->Ho < 1 || g->Wo < 1) {
    cerr(op, "%s: given input size per channel (%lld x %lld), padding %lldx%lld, kernel %lldx%lld "
               "and dilation %lldx%lld, the calculated output size per channel is (%lld x %lld): too "
               "small (the dilated kernel is bigger than the padded input)", what, (long long)H,
           (long long)W, (long long)g->ph, (long long)g->pw, (long long)R, (long long)S,
           (long long)g->dh, (long long)g->dw, (long long)g->Ho, (long long)g->Wo);
    return 0;
  }
  return 1;
}

/* the params live in node->ip: stride, pad, dilation, groups, H, W, R, S */
static void save_params(md_node *nd, const geom *g) {
  int64_t v[] = {g->sh, g->sw, g->ph, g->pw, g->dh, g->dw, g->G, g->H, g->W, g->R, g->S};
  memcpy(nd->ip, v, sizeof v);
}
static md_conv_params params_of(const md_node *nd) {
  md_conv_params p = {{(int)nd->ip[0], (int)nd->ip[1]}, {(int)nd->ip[2], (int)nd->ip[3]},
                      {(int)nd->ip[4], (int)nd->ip[5]}, (int)nd->ip[6]};
  return p;
}

md_conv_params md_conv_params_default(void) {
  md_conv_params p = {{1, 1}, {0, 0}, {1, 1}, 1};
  return p;
}

/* a 1x1 kernel without padding (any stride) */
static int is_1x1(const geom *g) { return g->R == 1 && g->S == 1 && g->ph == 0 && g->pw == 0; }
static int is_pointwise(const geom *g) { return is_1x1(g) && g->sh == 1 && g->sw == 1; }
static int is_depthwise(const geom *g) { return g->G > 1 && g->C == g->G; }

/* the indices o in [0,n) with 0 <= o*stride + off < len: [*lo, *hi) */
static inline void valid_range(int64_t *lo, int64_t *hi, int64_t off, int64_t stride, int64_t n,
                               int64_t len) {
  int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t b = len - 1 - off < 0 ? 0 : (len - 1 - off) / stride + 1;
  if (b > n) b = n;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}
/* }====================================================== */

/* {====================================================== GEMM-path kernels
** The column matrix of the whole batch has N*Ho*Wo columns (n, oh, ow).  It
** is made and consumed a block of columns at a time: a few output rows of one
** image when the maps are large (the GEMM can then read and write the NCHW
** tensors in place through strides), or several whole images when they are
** small.  A block stays within the caches between im2col and the GEMM's own
** packing of it. */

typedef struct block {
  int64_t n0, nb;   /* images n0 .. n0+nb-1 */
  int64_t oh0, oh1; /* output rows oh0 .. oh1-1 of each */
  int64_t q0, qn;   /* the same as columns of one image: q0 = oh0*Wo, qn = (oh1-oh0)*Wo */
  int64_t ncol;     /* nb * qn */
} block;

typedef struct plan {
  int64_t nb, rb; /* images per block, output rows per block */
  int64_t maxcol; /* columns of the largest block */
  int64_t *tab;   /* narrow maps: see make_table */
} plan;

/* For maps narrower than SMALL_WO, im2col and col2im go through a table
** instead of row by row: rows of a few elements cost more in loop set-up
** than in copying (measured 20% of a 512->512 @2 forward).  tab[(r*S+s) *
** maxcol + column] is the offset of the element a column reads, counted
** from channel c of the block's first image, or -1 in the padding. */
#define SMALL_WO 16
static int64_t *make_table(const plan *pl, const geom *g) {
  const int64_t RS = g->R * g->S, HW = g->H * g->W;
  int64_t *tab = md_alloc(sizeof(int64_t) * (size_t)(RS * pl->maxcol));
  if (!tab) return NULL;
  for (int64_t r = 0; r < g->R; r++)
    for (int64_t s = 0; s < g->S; s++) {
      int64_t *t = tab + (r * g->S + s) * pl->maxcol;
      for (int64_t j = 0; j < pl->nb; j++)
        for (int64_t oh = 0; oh < g->Ho; oh++)
          for (int64_t ow = 0; ow < g->Wo; ow++) {
            int64_t ih = oh * g->sh - g->ph + r * g->dh, iw = ow * g->sw - g->pw + s * g->dw;
            int ok = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
            *t++ = ok ? j * g->C * HW + ih * g->W + iw : -1;
          }
    }
  return tab;
}

/* n split into blocks of at most m, evenly: the size of the largest */
static int64_t even_split(int64_t n, int64_t m) {
  int64_t nblk = (n + m - 1) / m;
  return (n + nblk - 1) / nblk;
}

/* even_split(n, m), or the next smaller such size whose blocks are not a
** multiple of `bad` columns wide (unit columns each; bad 0: any) */
static int64_t block_size(int64_t n, int64_t m, int64_t unit, int64_t bad) {
  int64_t b = even_split(n, m);
  for (int64_t k = b - 1; bad && b * unit % bad == 0 && k >= 1; k--) b = even_split(n, k);
  return b;
}

/* The column matrix's rows (and gy's and the output's, gathered) lie ncol
** floats apart.  At a multiple of 1024 (4 KB) the rows of a micro-tile of C
** fall on the same cache sets, and BLIS's haswell kernel stores them into
** the addresses its loads alias to: 64->128 3x3 stride 2 bwd_input (4
** images of 256 columns) ran at 42 GFLOP/s at 1 thread, 71 with 3 or 5
** images.  So with a kernel that stores C by rows, blocks take the next
** smaller count of images (or rows) that avoids it, unless every count
** gives it.  (skx's stores C by columns: 128 GFLOP/s either way at 1
** thread, and at 2 the 11 blocks of 3 images shared out worse than 8 of 4,
** -6 %.) */
static void make_plan(plan *out, const geom *g) {
  md_ukr u;
  md_ukr_get(&u);
  const int64_t bad = u.prefers_cols ? 0 : 1024; /* a column count to avoid multiples of */
  int64_t CRS = g->C * g->R * g->S, P = g->Ho * g->Wo;
  int64_t q = BLK_BYTES / ((CRS > 0 ? CRS : 1) * (int64_t)sizeof(float));
  if (q < QMIN) q = QMIN;
  if (q > QMAX) q = QMAX;
  plan pl = {1, g->Ho, 0, NULL};
  if (P >= q) /* rows of one image, in blocks of equal size (no thin last one) */
    pl.rb = block_size(g->Ho, q / g->Wo < 1 ? 1 : q / g->Wo, g->Wo, bad);
  else if (g->N > 0) /* whole images, likewise */
    pl.nb = block_size(g->N, (q + P - 1) / P, P, bad);
  pl.maxcol = pl.nb * pl.rb * g->Wo;
  *out = pl;
}

/* the plan and, for narrow maps in blocks of whole images, the table;
** 0 when out of memory */
static int plan_for(plan *pl, const geom *g) {
  make_plan(pl, g);
  if (g->Wo < SMALL_WO && pl->rb == g->Ho && !is_pointwise(g) && !(pl->tab = make_table(pl, g)))
    return 0;
  return 1;
}

/* col (C*R*S, ncol) <- x (N,C,H,W) for block b: row (c,r,s), column
** (j,oh,ow) holds x[n0+j, c, oh*sh-ph+r*dh, ow*sw-pw+s*dw], 0 in the padding.
** A gather costs about twice a copy per element: the loops are split for
** half the elements (2 threads, 256->512 1x1 stride 2 @8 bwd_weight: its
** 131K-element im2col ran on one thread beside a 2-thread GEMM; +7 %) */
static void im2col(float *col, const float *x, const block *b, const plan *pl, const geom *g) {
  const int64_t C = g->C, H = g->H, W = g->W, R = g->R, S = g->S, Wo = g->Wo;
  const int64_t rows = C * R * S, ncol = b->ncol;
  if (pl->tab) { /* narrow maps: one long gather per row */
    const float *x0 = x + b->n0 * C * H * W;
#pragma omp parallel for schedule(static) if (PAR_IF(2 * rows * ncol))
    for (int64_t row = 0; row < rows; row++) {
      const int64_t *t = pl->tab + row % (R * S) * pl->maxcol;
      const float *xc = x0 + row / (R * S) * H * W;
      float *dst = col + row * ncol;
#pragma omp simd
      for (int64_t q = 0; q < ncol; q++) dst[q] = t[q] >= 0 ? xc[t[q]] : 0.0f;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (PAR_IF(2 * rows * ncol))
  for (int64_t row = 0; row < rows; row++) {
    int64_t c = row / (R * S), r = row / S % R, s = row % S;
    int64_t off = s * g->dw - g->pw, lo, hi;
    valid_range(&lo, &hi, off, g->sw, Wo, W);
    float *dst = col + row * ncol;
    for (int64_t j = 0; j < b->nb; j++) {
      const float *xp = x + ((b->n0 + j) * C + c) * H * W;
      for (int64_t oh = b->oh0; oh < b->oh1; oh++, dst += Wo) {
        int64_t ih = oh * g->sh - g->ph + r * g->dh;
        if (ih < 0 || ih >= H) {
          if (Wo >= 16)
            memset(dst, 0, sizeof(float) * (size_t)Wo);
          else /* a call costs more than a few stores */
            for (int64_t ow = 0; ow < Wo; ow++) dst[ow] = 0;
          continue;
        }
        const float *src = xp + ih * W;
        for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0;
        if (g->sw == 1 && hi - lo >= 16)
          memcpy(dst + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
        else
          for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw + off];
        for (int64_t ow = hi; ow < Wo; ow++) dst[ow] = 0;
      }
    }
  }
}

/* the input rows lo .. hi-1 that block b is the first to reach (the
** blocks of an image's rows run in order): every row of x is in one
** block's range, which col2im zeroes before it adds */
static void fresh_rows(int64_t *lo, int64_t *hi, const block *b, const geom *g) {
  const int64_t span = (g->R - 1) * g->dh + 1; /* the rows one output row reads */
  int64_t l = b->oh0 == 0 ? 0 : (b->oh0 - 1) * g->sh - g->ph + span;
  int64_t h = b->oh1 >= g->Ho ? g->H : (b->oh1 - 1) * g->sh - g->ph + span;
  *lo = l < 0 ? 0 : l > g->H ? g->H : l;
  *hi = h < *lo ? *lo : h > g->H ? g->H : h;
}

/* zero the rows lo .. hi-1 of plane c of block b's images of x */
static void zero_rows(float *x, const block *b, const geom *g, int64_t c, int64_t lo, int64_t hi) {
  for (int64_t j = 0; j < b->nb && hi > lo; j++)
    memset(x + ((b->n0 + j) * g->C + c) * g->H * g->W + lo * g->W, 0,
           sizeof(float) * (size_t)((hi - lo) * g->W));
}

/* x (N,C,H,W) <- col2im(col (C*R*S, ncol)) for block b: the adjoint of
** im2col, every column entry added back where it was read from, into the
** rows earlier blocks left (fresh_rows: zeroed here, a channel at a time,
** right before the adds; zeroing all of x up front left its lines in
** memory by the time the adds came, and they stalled on every one).
** Threads take channels, so they never write the same element, and each
** reads its rows of col front to back: visiting them image by image
** instead jumps between rows far apart and stalls on every cache line
** (measured 3x slower for 4x4 maps). */
static void col2im(float *x, const float *col, const block *b, const plan *pl, const geom *g) {
  const int64_t C = g->C, H = g->H, W = g->W, R = g->R, S = g->S, Wo = g->Wo;
  const int64_t ncol = b->ncol;
  int64_t zlo, zhi;
  fresh_rows(&zlo, &zhi, b, g);
  if (pl->tab && g->Ho * Wo <= 8) {
    /* tiny maps: through the table, image by image.  Row by row (below),
    ** each add went to another image, 4 KB apart from the one before with
    ** the same offset in its page, and the adds ran at ~10 cycles each
    ** (512->512 @2 bwd_input: col2im 1.7 ms next to 4.7 ms of GEMM); this
    ** order is 1.2x faster overall.  At 4x4 row by row is faster (1.4x). */
    const int64_t P = g->Ho * Wo, RS = R * S;
#pragma omp parallel for schedule(static) if (PAR_IF(C * R * S * ncol))
    for (int64_t c = 0; c < C; c++) {
      zero_rows(x, b, g, c, zlo, zhi);
      for (int64_t j = 0; j < b->nb; j++) {
        /* the table's offsets of image j, counted from x[n0 + j, c] */
        float *xj = x + ((b->n0 + j) * C + c) * H * W - j * C * H * W;
        for (int64_t rs = 0; rs < RS; rs++) {
          const int64_t *t = pl->tab + rs * pl->maxcol + j * P;
          const float *src = col + (c * RS + rs) * ncol + j * P;
          for (int64_t q = 0; q < P; q++)
            if (t[q] >= 0) xj[t[q]] += src[q];
        }
      }
    }
    return;
  }
  if (pl->tab) { /* narrow maps: one long scatter per row, to distinct elements */
#pragma omp parallel for schedule(static) if (PAR_IF(C * R * S * ncol))
    for (int64_t c = 0; c < C; c++) {
      zero_rows(x, b, g, c, zlo, zhi);
      float *xc = x + (b->n0 * C + c) * H * W;
      for (int64_t rs = 0; rs < R * S; rs++) {
        const int64_t *t = pl->tab + rs * pl->maxcol;
        const float *src = col + (c * R * S + rs) * ncol;
        for (int64_t q = 0; q < ncol; q++)
          if (t[q] >= 0) xc[t[q]] += src[q];
      }
    }
    return;
  }
#pragma omp parallel for schedule(static) if (PAR_IF(C * R * S * ncol))
  for (int64_t c = 0; c < C; c++) {
    zero_rows(x, b, g, c, zlo, zhi);
    for (int64_t r = 0; r < R; r++)
      for (int64_t s = 0; s < S; s++) {
        int64_t off = s * g->dw - g->pw, lo, hi;
        valid_range(&lo, &hi, off, g->sw, Wo, W);
        const float *src = col + ((c * R + r) * S + s) * ncol;
        for (int64_t j = 0; j < b->nb; j++) {
          float *xp = x + ((b->n0 + j) * C + c) * H * W;
          for (int64_t oh = b->oh0; oh < b->oh1; oh++, src += Wo) {
            int64_t ih = oh * g->sh - g->ph + r * g->dh;
            if (ih < 0 || ih >= H) continue;
            float *dst = xp + ih * W;
            if (g->sw == 1 && hi - lo >= 16) { /* short rows: scalar (no vector set-up) */
#pragma omp simd
              for (int64_t ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw + off] += src[ow];
            }
          }
        }
      }
  }
}

/* m (rows, ncol) <- block b of t (N, rows, P): the images side by side */
static void gather_block(float *m, const float *t, const block *b, int64_t rows, int64_t P) {
#pragma omp parallel for collapse(2) schedule(static) if (PAR_IF(rows * b->ncol))
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < b->nb; j++)
      memcpy(m + i * b->ncol + j * b->qn, t + ((b->n0 + j) * rows + i) * P + b->q0,
             sizeof(float) * (size_t)b->qn);
}

/* block b of t (N, rows, P) <- m (rows, ncol) + bias[row] (bias may be NULL) */
static void scatter_block(float *t, const float *m, const float *bias, const block *b, int64_t rows,
                          int64_t P) {
#pragma omp parallel for collapse(2) schedule(static) if (PAR_IF(rows * b->ncol))
  for (int64_t j = 0; j < b->nb; j++)
    for (int64_t i = 0; i < rows; i++) {
      float *dst = t + ((b->n0 + j) * rows + i) * P + b->q0;
      const float *src = m + i * b->ncol + j * b->qn;
      float bv = bias ? bias[i] : 0.0f;
#pragma omp simd
      for (int64_t q = 0; q < b->qn; q++) dst[q] = src[q] + bv;
    }
}

/* dst (cols, rows) <- src (rows, cols)^T, leading dims lds, ldd; in 32x32
** tiles so that both sides move whole cache lines (a plain loop misses on
** every element of the strided side) */
static void transpose(float *dst, const float *src, int64_t rows, int64_t cols, int64_t lds,
                      int64_t ldd) {
  const int64_t T = 32, nct = (cols + T - 1) / T;
#pragma omp parallel for schedule(static) if (PAR_IF(rows * cols))
  for (int64_t ct = 0; ct < nct; ct++) {
    int64_t j0 = ct * T, j1 = j0 + T < cols ? j0 + T : cols;
    for (int64_t i0 = 0; i0 < rows; i0 += T) {
      int64_t i1 = i0 + T < rows ? i0 + T : rows;
      for (int64_t j = j0; j < j1; j++) {
        float *d = dst + j * ldd;
        for (int64_t i = i0; i < i1; i++) d[i] = src[i * lds + j];
      }
    }
  }
}

/* {====================================================== running the blocks
** With several threads there are two ways to share the work: BLIS threads
** each GEMM, or the blocks are shared out and each GEMM runs on one thread.
** The second is much faster when there are enough blocks (measured at 2
** threads: 64->64 @32 forward 106 -> 190 GFLOP/s), because the GEMMs of a
** block are too small for BLIS to split without waiting at its barriers;
** and the im2col/col2im passes run in parallel for free.  Threads take
** chunks of images (all the row blocks of an image go to one thread, so
** col2im never has two threads adding to the same rows). */

/* the calling thread's number in its OpenMP team (0 outside one) */
static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
/* the size of the calling thread's team (1 outside one) */
static int team_size(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

typedef struct job job;
/* process block b with scratch memory scr of thread tid */
typedef void (*block_fn)(const job *jb, const block *b, float *scr, int tid);
struct job {
  const geom *g;
  plan pl;
  const float *x, *w, *gy, *b; /* the op's inputs (unused ones NULL) */
  float *out;
  int one_thread_gemm; /* blocks in parallel: every GEMM on one thread */
  int direct;          /* bwd_weight: accumulate straight into out */
  int *started;        /* bwd_weight: thread tid's accumulator holds a sum */
  int fixed_split;     /* blocks in parallel: each thread a fixed run of chunks */
  float *scratch;      /* one slice of `slice` floats per thread */
  int64_t slice;
  int nthr;
};

/* c = a b + beta c on all threads (BLIS's), or on this one only */
static void gemm(const job *jb, int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                 int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                 int64_t rsc, int64_t csc) {
  if (!jb->one_thread_gemm || k == 0) { /* md_sgemm spells out k == 0 */
    md_sgemm(0, 0, m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    return;
  }
  md_sgemm_1t(m, n, k, 1.0f, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
}

/* row block `rowblk` of chunk `chunk` */
static block block_at(const plan *pl, const geom *g, int64_t chunk, int64_t rowblk) {
  block b;
  b.n0 = chunk * pl->nb;
  b.nb = g->N - b.n0 < pl->nb ? g->N - b.n0 : pl->nb;
  b.oh0 = rowblk * pl->rb;
  b.oh1 = b.oh0 + pl->rb < g->Ho ? b.oh0 + pl->rb : g->Ho;
  b.q0 = b.oh0 * g->Wo;
  b.qn = (b.oh1 - b.oh0) * g->Wo;
  b.ncol = b.nb * b.qn;
  return b;
}

static int64_t chunks(const plan *pl, const geom *g) {
  return g->N > 0 ? (g->N + pl->nb - 1) / pl->nb : 0;
}

/* whether the chunks go to the threads (else BLIS threads each GEMM) */
static int blocks_in_parallel(const plan *pl, const geom *g) {
  int nthr = md_num_threads_internal();
  return nthr > 1 && chunks(pl, g) >= 2 * nthr;
}

/* fn over the nrb row blocks of chunk ch, on thread tid's scratch */
static void run_chunk(job *jb, block_fn fn, int64_t ch, int64_t nrb, int tid) {
  for (int64_t rb = 0; rb < nrb; rb++) {
    block b = block_at(&jb->pl, jb->g, ch, rb);
    fn(jb, &b, jb->scratch + tid * jb->slice, tid);
  }
}

/* run fn over all blocks, with `slice` floats of scratch per thread;
** 0 when out of memory */
static int run_blocks(job *jb, block_fn fn, int64_t slice) {
  const geom *g = jb->g;
  const plan *pl = &jb->pl;
  int64_t nrb = (g->Ho + pl->rb - 1) / pl->rb, nch = chunks(pl, g);
  int nthr = md_num_threads_internal();
  md_init(); /* BLIS's kernels are chosen before any thread calls it */
  jb->one_thread_gemm = blocks_in_parallel(pl, g);
  jb->nthr = jb->one_thread_gemm ? nthr : 1;
  /* slack after each slice: BLIS's kernels may read a little past the
  ** end of an operand or of C (seen with its haswell edge kernels) */
  slice = (slice + MD_UKR_SLACK + 15) / 16 * 16;
  jb->slice = slice;
  jb->scratch = md_alloc(sizeof(float) * (size_t)(slice * jb->nthr));
  jb->started = calloc((size_t)jb->nthr, sizeof(int));
  if (!jb->scratch || !jb->started) {
    if (jb->scratch) md_set_error("conv2d: out of memory");
    return 0;
  }
  if (jb->one_thread_gemm && jb->fixed_split) {
    /* each thread sums a fixed run of chunks, in order: the same sums
    ** on every call (with chunks handed out as threads come free, which
    ** balances better, a thread's accumulator got a different set each
    ** time and bwd_weight differed from call to call in the last bits) */
#pragma omp parallel num_threads(nthr)
    {
      const int tid = thread_id(), nth = team_size();
      for (int64_t ch = nch * tid / nth; ch < nch * (tid + 1) / nth; ch++) run_chunk(jb, fn, ch, nrb, tid);
    }
  } else if (jb->one_thread_gemm) {
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
    for (int64_t ch = 0; ch < nch; ch++) run_chunk(jb, fn, ch, nrb, thread_id());
  } else {
    for (int64_t ch = 0; ch < nch; ch++) run_chunk(jb, fn, ch, nrb, 0);
  }
  return 1;
}

static void end_job(job *jb) {
  md_free(jb->scratch);
  free(jb->started);
  md_free(jb->pl.tab);
}

/* the column matrix of block b: a strided view of x for 1x1 convs on one
** image, else made in col; *rs receives its row stride */
static const float *columns(const job *jb, const block *b, float *col, int64_t *rs) {
  const geom *g = jb->g;
  const int64_t P = g->Ho * g->Wo;
  *rs = b->ncol;
  if (is_pointwise(g) && b->nb == 1) {
    *rs = P;
    return jb->x + b->n0 * g->C * P + b->q0;
  }
  if (is_pointwise(g))
    gather_block(col, jb->x, b, g->C, P);
  else
    im2col(col, jb->x, b, &jb->pl, g);
  return col;
}

/* y (N,K,Ho,Wo) <- x (N,C,H,W) conv w (K,C/G,R,S) + b (K) or NULL, one
** block: y = W col.  (Computing y^T = col^T W^T instead, to give BLIS the
** long dim as rows, measured no faster once the transpose back into NCHW is
** paid.)  Scratch: col (CRS, maxcol), obuf (K, maxcol). */
static void forward_block(const job *jb, const block *bk, float *scr, int tid) {
  const geom *g = jb->g;
  const int64_t K = g->K, P = g->Ho * g->Wo, G = g->G, ncol = bk->ncol;
  const int64_t Kg = K / G, CgRS = g->C / G * g->R * g->S, CRS = g->C * g->R * g->S;
  float *obuf = scr + CRS * jb->pl.maxcol;
  int64_t crs;
  const float *cm = columns(jb, bk, scr, &crs);
  /* one image: straight into y[n] (K, P) through its row stride, bias
  ** first so that the GEMM adds to it; several: into obuf, then scatter */
  float *out = obuf;
  int64_t ors = ncol;
  if (bk->nb == 1) {
    out = jb->out + bk->n0 * K * P + bk->q0;
    ors = P;
    if (jb->b)
      for (int64_t k = 0; k < K; k++)
        for (int64_t q = 0; q < ncol; q++) out[k * P + q] = jb->b[k];
  }
  for (int64_t gi = 0; gi < G; gi++)
    gemm(jb, Kg, ncol, CgRS, jb->w + gi * Kg * CgRS, CgRS, 1, cm + gi * CgRS * crs, crs, 1,
         bk->nb == 1 && jb->b ? 1.0f : 0.0f, out + gi * Kg * ors, ors, 1);
  if (bk->nb > 1) scatter_block(jb->out, obuf, jb->b, bk, K, P);
}

static int gemm_forward(float *y, const float *x, const float *w, const float *b, const geom *g) {
  job jb = {.g = g, .x = x, .w = w, .b = b, .out = y};
  int ok = plan_for(&jb.pl, g) &&
           run_blocks(&jb, forward_block, (g->C * g->R * g->S + g->K) * jb.pl.maxcol);
  end_job(&jb);
  return ok;
}

/* gx (N,C,H,W) <- gy (N,K,Ho,Wo) and w (K,C/G,R,S), one block: gcol =
** W^T gy, then col2im.  Scratch: gcol (CRS, maxcol), gbuf (K, maxcol). */
static void bwd_input_block(const job *jb, const block *bk, float *scr, int tid) {
  const geom *g = jb->g;
  const int64_t K = g->K, C = g->C, P = g->Ho * g->Wo, G = g->G, ncol = bk->ncol;
  const int64_t Kg = K / G, CgRS = C / G * g->R * g->S, CRS = C * g->R * g->S;
  const int pw = is_pointwise(g);
  float *gcol = scr, *gbuf = scr + CRS * jb->pl.maxcol;
  const float *gm = jb->gy + bk->n0 * K * P + bk->q0; /* one image: gy[n] read in place */
  int64_t grs = P;
  if (bk->nb > 1) {
    gather_block(gbuf, jb->gy, bk, K, P);
    gm = gbuf;
    grs = ncol;
  }
  float *out = gcol; /* 1x1 on one image: gcol is gx[n] itself */
  int64_t ors = ncol;
  if (pw && bk->nb == 1) {
    out = jb->out + bk->n0 * C * P + bk->q0;
    ors = P;
  }
  for (int64_t gi = 0; gi < G; gi++) /* W_g^T (CgRS, Kg) read through strides */
    gemm(jb, CgRS, ncol, Kg, jb->w + gi * Kg * CgRS, 1, CgRS, gm + gi * Kg * grs, grs, 1, 0.0f,
         out + gi * CgRS * ors, ors, 1);
  if (pw && bk->nb > 1)
    scatter_block(jb->out, gcol, NULL, bk, C, P);
  else if (!pw)
    col2im(jb->out, gcol, bk, &jb->pl, g);
}

static int gemm_bwd_input(float *gx, const float *gy, const float *w, const geom *g) {
  job jb = {.g = g, .gy = gy, .w = w, .out = gx};
  int ok = plan_for(&jb.pl, g) &&
           run_blocks(&jb, bwd_input_block, (g->C * g->R * g->S + g->K) * jb.pl.maxcol);
  end_job(&jb);
  return ok;
}

/* gw (K,C/G,R,S) <- x (N,C,H,W) and gy (N,K,Ho,Wo): gw = gy col^T summed
** over the blocks, or computed transposed, gw^T (CRS, K) = col gy^T, and
** transposed into place at the end.  BLIS does much better with the longer
** dim as the rows of C (measured 2x in the GEMM for K=64, CRS=576, and 1.5x
** the other way round for the 27 rows of a first layer).  From
** BWW_TRANSPOSED_BELOW output channels on, both run alike and the direct
** one saves the transpose. */
static int bww_transposed(const geom *g) {
  int64_t Kg = g->K / g->G, CgRS = g->C / g->G * g->R * g->S;
  return Kg < BWW_TRANSPOSED_BELOW && CgRS > Kg;
}

/* one block of bwd_weight.  Each thread sums into its own accumulator (in
** its scratch, or gw itself when one thread does all); they are added at
** the end.  Scratch: col (CRS, maxcol), gbuf (K, maxcol), acc (CgRS*K). */
static void bwd_weight_block(const job *jb, const block *bk, float *scr, int tid) {
  const geom *g = jb->g;
  const int64_t K = g->K, P = g->Ho * g->Wo, G = g->G, ncol = bk->ncol;
  const int64_t Kg = K / G, CgRS = g->C / G * g->R * g->S, CRS = g->C * g->R * g->S;
  const int tr = bww_transposed(g);
  float *gbuf = scr + CRS * jb->pl.maxcol, *acc = jb->direct ? jb->out : gbuf + K * jb->pl.maxcol;
  int64_t crs;
  const float *cm = columns(jb, bk, scr, &crs), *gm = jb->gy + bk->n0 * K * P + bk->q0;
  int64_t grs = P;
  if (bk->nb > 1) {
    gather_block(gbuf, jb->gy, bk, K, P);
    gm = gbuf;
    grs = ncol;
  }
  float beta = jb->started[tid] ? 1.0f : 0.0f; /* the first block sets, the others add */
  jb->started[tid] = 1;
  for (int64_t gi = 0; gi < G; gi++) {
    const float *cg = cm + gi * CgRS * crs, *yg = gm + gi * Kg * grs;
    if (tr) /* col_g (CgRS, ncol) x gy_g^T (ncol, Kg), the latter through strides */
      gemm(jb, CgRS, Kg, ncol, cg, crs, 1, yg, 1, grs, beta, acc + gi * CgRS * Kg, Kg, 1);
    else /* gy_g (Kg, ncol) x col_g^T (ncol, CgRS) */
      gemm(jb, Kg, CgRS, ncol, yg, grs, 1, cg, 1, crs, beta, acc + gi * Kg * CgRS, CgRS, 1);
  }
}

static int gemm_bwd_weight(float *gw, const float *x, const float *gy, const geom *g) {
  const int64_t K = g->K, G = g->G, Kg = K / G, CgRS = g->C / G * g->R * g->S;
  const int64_t CRS = g->C * g->R * g->S, n = CgRS * K;
  const int tr = bww_transposed(g);
  job jb = {.g = g, .x = x, .gy = gy, .out = gw};
  if (!plan_for(&jb.pl, g)) {
    end_job(&jb);
    return 0;
  }
  /* one accumulator per thread unless the GEMMs are BLIS-threaded and
  ** gw can take the sum as it is */
  jb.direct = !tr && !blocks_in_parallel(&jb.pl, g);
  jb.fixed_split = 1;
  if (!run_blocks(&jb, bwd_weight_block, (CRS + K) * jb.pl.maxcol + (jb.direct ? 0 : n))) {
    end_job(&jb);
    return 0;
  }
  if (!jb.direct) { /* sum the accumulators into the first, then into place */
    float *acc0 = jb.scratch + (CRS + K) * jb.pl.maxcol;
    int any = jb.started[0];
    if (!any) memset(acc0, 0, sizeof(float) * (size_t)n);
    for (int t = 1; t < jb.nthr; t++) {
      if (!jb.started[t]) continue;
      const float *a = jb.scratch + t * jb.slice + (CRS + K) * jb.pl.maxcol;
#pragma omp parallel for schedule(static) if (PAR_IF(n))
      for (int64_t i = 0; i < n; i++) acc0[i] += a[i];
    }
    if (tr)
      for (int64_t gi = 0; gi < G; gi++)
        transpose(gw + gi * Kg * CgRS, acc0 + gi * CgRS * Kg, CgRS, Kg, Kg, CgRS);
    else
      memcpy(gw, acc0, sizeof(float) * (size_t)n);
  } else if (!jb.started[0]) {
    memset(gw, 0, sizeof(float) * (size_t)n); /* an empty batch */
  }
  end_job(&jb);
  return 1;
}
/* }====================================================== */

/* {====================================================== packed path
** For convolutions with horizontal stride 1 (2), a row of the column
** matrix, taken over a few consecutive columns of one output row, is a run
** of consecutive (every other) input elements.  So the column matrix need
** not be written at all: the weights are packed once into BLIS's
** micro-panel format, and the columns are packed straight from x, NR at a
** time, into the panels that BLIS's micro-kernel reads (a few KB each).
** Compared with im2col + sgemm this saves writing the column matrix and
** BLIS reading it again to pack it, which at 64 channels cost about a third
** of the arithmetic (BENCHMARKS.md).  The forward uses it, and so does
** bwd_input of a stride-1 convolution: it is the forward convolution of gy
** with the weights transposed and flipped, padded by dilation*(R-1) - pad.
** With a micro-kernel that stores C by columns (skx) the GEMM is turned
** around, pixels as its rows (tconv_block), which also serves the 1x1
** convolutions and the strided 1x1 bwd_input.  bwd_weight has its own
** packing (below). */

#if defined(__AVX512F__)
#include <immintrin.h>
#define PK_MAXNR 16 /* one vector of lanes per packed row */
#else
#define PK_MAXNR 32
#endif

/* a run: columns j0 .. j0+len-1 of a tile, in one output row (n, oh) from
** column ow0 on.  For row (c, rs) of the column matrix, lane j reads
** x[base + c*H*W + off[rs] + sw*j] when bit j of its mask[rs] is set, else 0 */
typedef struct prun {
  int64_t base, n, p0; /* p0: the run's first output pixel oh*Wo + ow0 */
  int j0, len;
} prun;

#ifdef __AVX512F__
/* the first n lanes (none for n <= 0, all 16 for n >= 16) */
static inline __mmask16 first_lanes(int64_t n) {
  return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1);
}

/* v with the lanes j of mask m replaced by p[sw*j], for sw 1 or 2 (two
** loads, then the even elements) */
static inline __m512 load_lanes(__m512 v, uint32_t m, const float *p, int64_t sw) {
  if (sw == 1) return _mm512_mask_loadu_ps(v, (__mmask16)m, p);
  uint32_t e = 0; /* element 2j for lane j */
#ifdef __BMI2__
  e = _pdep_u32(m, 0x55555555u);
#else
  for (int j = 0; j < 16; j++) e |= (m >> j & 1u) << (2 * j);
#endif
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  __m512 lo = _mm512_maskz_loadu_ps((__mmask16)e, p);
  __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(e >> 16), p + 16);
  return _mm512_mask_mov_ps(v, (__mmask16)m, _mm512_permutex2var_ps(lo, even, hi));
}
#endif

/* off[r*S + s] <- where tap (r, s) reads in an input plane, from its
** top-left corner */
static void tap_offsets(int64_t *off, const geom *g) {
  for (int64_t r = 0; r < g->R; r++)
    for (int64_t s = 0; s < g->S; s++) off[r * g->S + s] = r * g->dh * g->W + s * g->dw;
}

typedef struct pconv {
  const geom *g; /* the convolution of x into y; g->sw 1 or 2, g->G == 1 */
  const float *x, *ap, *bias;
  float *y;
  md_ukr u;
  int64_t M, Mp, CRS; /* output channels, rounded up to MR, rows of the column matrix */
  int64_t kc, nkc;    /* the column matrix's rows in nkc chunks of kc */
  int64_t tpb;        /* tiles (NR columns, or MR pixels transposed) per block */
  int lanes, tpp, rl; /* a tile's lanes; tiles per packed panel; a panel row's floats */
  int tr;             /* 1: the transposed orientation (below) */
  int edge;           /* 1: edge_ukr computes the last panel of weights */
  int direct;         /* 1: no packing, edge_ukr reads the pixels from x (direct_ok) */
  const geom *sp;     /* NULL, or y is (N, M, sp->H, sp->W) and output pixel
                      ** (oh, ow) goes to (oh*sp->sh, ow*sp->sw), zeros between */
  int64_t *off;       /* (R*S): r*dh*W + s*dw */
  int64_t flo;        /* floats of bt and cb, rounded up to 16 */
  int64_t slice;      /* scratch floats per thread */
  float *scratch;
} pconv;

/* ap (Mp/MR panels of CRS columns of MR) <- the M x CRS matrix a, where
** element (m, k) is w[m*CRS + k], or with flip (bwd_input: a = the weights
** (K, M, R, S) transposed and flipped) w[(k/RS)*M*RS + m*RS + RS-1-k%RS] */
static void pack_a(float *ap, const float *w, int64_t M, int64_t Mp, int64_t CRS, int mr, int flip,
                   int64_t RS) {
#pragma omp parallel for schedule(static) if (PAR_IF(Mp * CRS))
  for (int64_t i = 0; i < Mp / mr; i++)
    for (int64_t k = 0; k < CRS; k++) {
      float *d = ap + (i * CRS + k) * mr;
      for (int mm = 0; mm < mr; mm++) {
        int64_t m = i * mr + mm;
        d[mm] = m >= M ? 0.0f : flip ? w[(k / RS) * M * RS + m * RS + RS - 1 - k % RS] : w[m * CRS + k];
      }
    }
}

/* the runs of the tile of columns c0 .. c0+ncols-1 (over the whole batch)
** and their lane masks (nrun x RS); returns the number of runs */
static int tile_runs(prun *run, uint32_t *mask, int64_t c0, int ncols, const geom *g) {
  const int64_t P = g->Ho * g->Wo, RS = g->R * g->S;
  int nrun = 0;
  for (int j = 0; j < ncols;) {
    int64_t col = c0 + j, n = col / P, p = col % P, oh = p / g->Wo, ow = p % g->Wo;
    int len = (int)(ncols - j < g->Wo - ow ? ncols - j : g->Wo - ow);
    prun *u = &run[nrun];
    u->n = n;
    u->p0 = p;
    u->j0 = j;
    u->len = len;
    u->base = n * g->C * g->H * g->W + (oh * g->sh - g->ph) * g->W + (ow * g->sw - g->pw) - g->sw * j;
    for (int64_t r = 0; r < g->R; r++) {
      int64_t ih = oh * g->sh - g->ph + r * g->dh;
      for (int64_t s = 0; s < g->S; s++) {
        uint32_t m = 0;
        if (ih >= 0 && ih < g->H) {
          int64_t iw0 = ow * g->sw - g->pw + s * g->dw; /* input column of lane j */
          for (int64_t l = j; l < j + len; l++) {
            int64_t iw = iw0 + g->sw * (l - j);
            if (iw >= 0 && iw < g->W) m |= 1u << l;
          }
        }
        mask[nrun * RS + r * g->S + s] = m;
      }
    }
    nrun++;
    j += len;
  }
  return nrun;
}

/* bt (nt tiles of kc rows of NR) <- rows k0 .. k0+kc-1 of the columns of
** the nt tiles, row by row across the tiles (the tiles of a row read
** neighbouring elements of x).  This costs about a third of the time of a
** 64->64 @32 forward: most loads of x miss the caches the first time, as
** the planes are visited 4 KB apart.  BLIS's kernel alone would run at
** ~200 GFLOP/s there, the whole at ~130 (1 thread, Zen 4). */
static void pack_block(float *bt, const pconv *pc, const prun *runs, const int *nruns, const uint32_t *masks,
                       int64_t nt, int64_t k0, int64_t kc) {
  const geom *g = pc->g;
  const int64_t RS = g->R * g->S, HW = g->H * g->W;
  const int ln = pc->lanes, tpp = pc->tpp, rl = pc->rl;
  int64_t c = k0 / RS, rs = k0 % RS;
  for (int64_t kk = 0; kk < kc; kk++) {
    const float *xc = pc->x + c * HW + pc->off[rs];
    if (rs == 0 && c + 1 < g->C) /* the next plane's lines, an R*S rows ahead */
      for (int64_t t = 0; t < nt; t++)
        for (int u = 0; u < nruns[t]; u++) {
          const prun *ru = runs + t * ln + u;
          for (int64_t r = 0; r < g->R; r++) {
            int64_t first = (c + 1) * HW + pc->off[r * g->S] + ru->base + g->sw * ru->j0;
            int64_t last = first + g->sw * (ru->len - 1) + (g->S - 1) * g->dw;
            /* (integers: the padding's addresses lie outside x) */
            __builtin_prefetch((const void *)((uintptr_t)pc->x + sizeof(float) * (uintptr_t)first));
            __builtin_prefetch((const void *)((uintptr_t)pc->x + sizeof(float) * (uintptr_t)last));
          }
        }
    for (int64_t t = 0; t < nt; t++) {
      const prun *run = runs + t * ln;
      const uint32_t *mask = masks + t * ln * RS + rs;
      float *d = bt + ((t / tpp) * kc + kk) * rl + (t % tpp) * ln;
#ifdef __AVX512F__
      __m512 v = _mm512_setzero_ps();
      for (int u = 0; u < nruns[t]; u++) /* lanes outside the mask are not read */
        v = load_lanes(v, mask[u * RS], xc + run[u].base, g->sw);
      _mm512_mask_storeu_ps(d, (__mmask16)((1u << ln) - 1), v);
#else
      for (int j = 0; j < ln; j++) d[j] = 0.0f;
      for (int u = 0; u < nruns[t]; u++) {
        uint32_t m = mask[u * RS];
        for (int j = run[u].j0; j < run[u].j0 + run[u].len; j++)
          if (m >> j & 1) d[j] = xc[run[u].base + g->sw * j];
      }
#endif
    }
    if (++rs == RS) {
      rs = 0;
      c++;
    }
  }
}

/* whether the w columns (pixels) from c0 of a batch of images of P pixels
** (ncol in all) lie in one image, so that a tile of them can go straight
** into y */
static int in_one_image(int64_t c0, int64_t w, int64_t P, int64_t ncol) {
  return c0 % P + w <= P && c0 + w <= ncol;
}

/* the tiles t0 .. t0+nt-1: every chunk of rows through the micro-kernel
** into cb (a tile is nr columns of Mp, or Mp rows of nr, as the kernel
** prefers), then cb + bias into y */
static void pconv_block(const pconv *pc, int64_t t0, int64_t nt, float *scr) {
  const geom *g = pc->g;
  const md_ukr *u = &pc->u;
  const int mr = u->mr, nr = u->nr;
  const int64_t RS = g->R * g->S, P = g->Ho * g->Wo, ncolall = g->N * P, Mp = pc->Mp, CRS = pc->CRS;
  const int64_t crs = u->prefers_cols ? 1 : nr, ccs = u->prefers_cols ? Mp : 1;
  float *bt = scr, *cb = bt + pc->tpb * pc->kc * nr;
  prun *runs = (prun *)(bt + pc->flo); /* 64-byte aligned */
  int *nruns = (int *)(runs + pc->tpb * nr);
  uint32_t *masks = (uint32_t *)(nruns + pc->tpb);
  for (int64_t t = 0; t < nt; t++) {
    int64_t c0 = (t0 + t) * nr;
    int ncols = (int)(ncolall - c0 < nr ? ncolall - c0 : nr);
    nruns[t] = tile_runs(runs + t * nr, masks + t * nr * RS, c0, ncols, g);
  }
  /* A kernel that stores C by rows (haswell) writes the whole panels of a
  ** tile whose columns lie in one image straight into y, rows of nr
  ** pixels (haswell, 2 threads, 1x1 stride 2 forward: 64->128 @32
  ** 104 -> 136 GFLOP/s, 128->256 @16 120 -> 145; 3x3 +1-2 %) */
  const int64_t mfull = u->prefers_cols ? 0 : pc->M / mr; /* panels written into y */
  for (int64_t kci = 0; kci < pc->nkc; kci++) {
    int64_t k0 = kci * pc->kc, kc = CRS - k0 < pc->kc ? CRS - k0 : pc->kc;
    float beta = kci ? 1.0f : 0.0f;
    pack_block(bt, pc, runs, nruns, masks, nt, k0, kc);
    for (int64_t t = 0; t < nt; t++) {
      float *ct = cb + t * nr * Mp;
      const float *b = bt + t * kc * nr;
      const int64_t c0 = (t0 + t) * nr, direct = in_one_image(c0, nr, P, ncolall);
      float *yt = pc->y + c0 / P * pc->M * P + c0 % P;
      for (int64_t i = 0; i < Mp / mr; i++) {
        const float *a = pc->ap + (i * CRS + k0) * mr;
        const float *an = i + 1 < Mp / mr ? a + CRS * mr : pc->ap + k0 * mr;
        const float *bn = i + 1 < Mp / mr ? b : b + kc * nr;
        if (direct && i < mfull)
          md_ukr_call(u, kc, a, b, beta, yt + i * mr * P, P, 1, an, bn);
        else
          md_ukr_call(u, kc, a, b, beta, ct + i * mr * crs, crs, ccs, an, bn);
      }
    }
  }
  for (int64_t t = 0; t < nt; t++) { /* scatter, run by run (the bias only where written) */
    const float *ct = cb + t * nr * Mp;
    const int64_t c0 = (t0 + t) * nr, direct = in_one_image(c0, nr, P, ncolall);
    const int64_t m1 = direct ? mfull * mr : 0;
    for (int ru = 0; ru < nruns[t]; ru++) {
      const prun *r = runs + t * nr + ru;
      float *yp = pc->y + r->n * pc->M * P + r->p0;
      for (int64_t m = 0; m < pc->M; m++) {
        float b = pc->bias ? pc->bias[m] : 0.0f;
        const float *src = ct + m * crs + r->j0 * ccs;
        float *dst = yp + m * P;
        if (m < m1) {
          if (pc->bias)
            for (int j = 0; j < r->len; j++) dst[j] += b;
          continue;
        }
        for (int j = 0; j < r->len; j++) dst[j] = src[j * ccs] + b;
      }
    }
  }
}

/* The transposed orientation: the pixels are the GEMM's rows and the output
** channels its columns, yT = colT w^T.  A micro-panel is then mr output
** pixels (tpp tiles of 16 lanes, packed from x as above) and B is the
** weights, packed once in panels of nr channels.  With a kernel that
** stores C by columns (skx: 32 x 12) a C tile is nr channel rows of y, mr
** pixels each, so when the mr pixels lie in one image the kernel writes
** straight into y (rs 1, cs Ho*Wo).  The other orientation must copy each
** tile into y element by element (a channel of a column at a time); at
** 64 input channels that copy cost as much as the arithmetic (64->128 1x1
** stride 2 @32 forward, 1 thread: 40 -> 107 GFLOP/s). */

/* the block's results cb (its pixels x pc->M channels, by columns of ld)
** into y as pc->sp says: each run's pixels at every sw-th column of every
** sh-th row, zeros in the other columns and rows they cover.  The kernel
** accumulates the chunks of rows in cb, so y is written once, a channel
** at a time. */
static void spread_block(const pconv *pc, const float *cb, int64_t ld, const prun *runs, const int *nruns,
                         int64_t nsub) {
  const geom *g = pc->g, *sp = pc->sp;
  const int ln = pc->lanes;
  const int64_t H = sp->H, W = sp->W, sh = sp->sh, sw = sp->sw;
  for (int64_t m = 0; m < pc->M; m++)
    for (int64_t q = 0; q < nsub; q++)
      for (int ru = 0; ru < nruns[q]; ru++) {
        const prun *r = runs + q * ln + ru;
        const int64_t oh = r->p0 / g->Wo, ow0 = r->p0 % g->Wo, len = r->len;
        const int64_t c0 = ow0 * sw, c1 = (ow0 + len) * sw < W ? (ow0 + len) * sw : W, cnt = c1 - c0;
        const float *src = cb + m * ld + q * ln + r->j0;
        float *row = pc->y + (r->n * pc->M + m) * H * W + oh * sh * W + c0;
#ifdef __AVX512F__
        if (sw == 2) { /* the shortcuts' case: len <= 16 values, cnt <= 32 floats */
          const __m512i lo = _mm512_set_epi32(16, 7, 16, 6, 16, 5, 16, 4, 16, 3, 16, 2, 16, 1, 16, 0);
          const __m512i hi = _mm512_set_epi32(16, 15, 16, 14, 16, 13, 16, 12, 16, 11, 16, 10, 16, 9, 16, 8);
          const __m512 z = _mm512_setzero_ps(), v = _mm512_maskz_loadu_ps(first_lanes(len), src);
          const __m512 a = _mm512_permutex2var_ps(v, lo, z), b = _mm512_permutex2var_ps(v, hi, z);
          /* full vectors where they fit: masked stores that miss the
          ** cache are slow here (128->256 @16, 1 thread: 62 -> 79 GFLOP/s) */
          if (cnt == 32 || cnt == 16) {
            for (int64_t i = 0; i < sh && oh * sh + i < H; i++) {
              _mm512_storeu_ps(row + i * W, i ? z : a);
              if (cnt == 32) _mm512_storeu_ps(row + i * W + 16, i ? z : b);
            }
          } else {
            const __mmask16 k0 = first_lanes(cnt), k1 = first_lanes(cnt - 16);
            for (int64_t i = 0; i < sh && oh * sh + i < H; i++) {
              _mm512_mask_storeu_ps(row + i * W, k0, i ? z : a);
              _mm512_mask_storeu_ps(row + i * W + 16, k1, i ? z : b);
            }
          }
          continue;
        }
#endif
        for (int64_t i = 0; i < sh && oh * sh + i < H; i++)
          memset(row + i * W, 0, sizeof(float) * (size_t)cnt);
        for (int64_t i = 0; i < len; i++) row[i * sw] = src[i];
      }
}

#ifdef __AVX512F__
/* c (32 x NM, column jj at c + jj*cs) = a b + beta c, for a (k columns of
** 32, column kk at a + kk*lda) and the first NM of each row of b (k rows of
** ldb).  For the last panel of weights when the outputs are not a multiple
** of 12 (BLIS's kernel would compute all 12 columns, 1/9 of the work
** wasted at 64 outputs), and for pixels read straight from x (direct_ok),
** then with a the 32 pixels of plane kk (lda the plane's size). */
static inline __attribute__((always_inline)) void edge_body(const int NM, int64_t k, const float *a,
                                                            int64_t lda, const float *b, int ldb, float beta,
                                                            float *c, int64_t cs, const float *pfa) {
  __m512 lo[12], hi[12];
#pragma GCC unroll 12
  for (int j = 0; j < NM; j++) lo[j] = hi[j] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < k; kk++) {
    const __m512 a0 = _mm512_loadu_ps(a + kk * lda), a1 = _mm512_loadu_ps(a + kk * lda + 16);
    if (pfa) { /* the next panel's column kk */
      __builtin_prefetch(pfa + kk * lda);
      __builtin_prefetch(pfa + kk * lda + 16);
    }
#pragma GCC unroll 12
    for (int j = 0; j < NM; j++) {
      __m512 bb = _mm512_set1_ps(b[kk * ldb + j]);
      __asm__("" : "+v"(bb)); /* one broadcast, not one per FMA (see pw_block) */
      lo[j] = _mm512_fmadd_ps(a0, bb, lo[j]);
      hi[j] = _mm512_fmadd_ps(a1, bb, hi[j]);
    }
  }
#pragma GCC unroll 12
  for (int j = 0; j < NM; j++) {
    if (beta != 0.0f) {
      lo[j] = _mm512_add_ps(lo[j], _mm512_loadu_ps(c + j * cs));
      hi[j] = _mm512_add_ps(hi[j], _mm512_loadu_ps(c + j * cs + 16));
    }
    _mm512_storeu_ps(c + j * cs, lo[j]);
    _mm512_storeu_ps(c + j * cs + 16, hi[j]);
  }
}
/* whether edge_ukr can stand in for the micro-kernel u */
static int edge_fits(const md_ukr *u) { return u->mr == 32 && u->nr <= 12; }

static void edge_ukr(int nm, int64_t k, const float *a, int64_t lda, const float *b, int ldb, float beta,
                     float *c, int64_t cs, const float *pfa) {
  switch (nm) {
#define EDGE(n)                                                                                        \
  case n:                                                                                              \
    edge_body(n, k, a, lda, b, ldb, beta, c, cs, pfa);                                                 \
    break;
    EDGE(1) EDGE(2) EDGE(3) EDGE(4) EDGE(5) EDGE(6) EDGE(7) EDGE(8) EDGE(9) EDGE(10) EDGE(11) EDGE(12)
#undef EDGE
  }
}
#endif

/* the panels t0 .. t0+nt-1 of mr pixels, in the transposed orientation:
** every chunk of rows through the micro-kernel, a panel of weights at a
** time over all the block's pixels (it stays in L1) */
static void tconv_block(const pconv *pc, int64_t t0, int64_t nt, float *scr) {
  const geom *g = pc->g;
  const md_ukr *u = &pc->u;
  const int mr = u->mr, nr = u->nr, tpp = pc->tpp, ln = pc->lanes;
  const int64_t RS = g->R * g->S, P = g->Ho * g->Wo, ncolall = g->N * P, Np = pc->Mp, CRS = pc->CRS;
  float *at = scr, *ct = at + pc->tpb * pc->kc * mr;
  prun *runs = (prun *)(at + pc->flo);
  int *nruns = (int *)(runs + pc->tpb * tpp * ln);
  uint32_t *masks = (uint32_t *)(nruns + pc->tpb * tpp);
  for (int64_t t = 0; t < nt * tpp; t++) {
    int64_t c0 = t0 * mr + t * ln;
    int ncols = (int)(ncolall - c0 < ln ? (ncolall - c0 > 0 ? ncolall - c0 : 0) : ln);
    nruns[t] = ncols ? tile_runs(runs + t * ln, masks + t * ln * RS, c0, ncols, g) : 0;
  }
  for (int64_t kci = 0; kci < pc->nkc; kci++) {
    int64_t k0 = kci * pc->kc, kc = CRS - k0 < pc->kc ? CRS - k0 : pc->kc;
    int last = kci + 1 == pc->nkc;
    if (!pc->direct) pack_block(at, pc, runs, nruns, masks, nt * tpp, k0, kc);
    for (int64_t j = 0; j < Np / nr; j++) {
      const float *b = pc->ap + (j * CRS + k0) * nr;
      int64_t m0 = j * nr, nm = pc->M - m0 < nr ? pc->M - m0 : nr;
      for (int64_t t = 0; t < nt; t++) {
        const float *a = at + t * kc * mr;
        const float *an = t + 1 < nt ? a + kc * mr : at;
        const float *bn = t + 1 < nt ? b : j + 1 < Np / nr ? b + CRS * nr : pc->ap + k0 * nr;
        int64_t c0 = (t0 + t) * mr, n = c0 / P, p0 = c0 % P;
        /* the tile's place: in the block's results (spread at the end), or
        ** in y when its pixels lie in one image */
        float *c = pc->sp                             ? ct + m0 * nt * mr + t * mr
                   : in_one_image(c0, mr, P, ncolall) ? pc->y + (n * pc->M + m0) * P + p0
                                                      : NULL;
        int64_t cs = pc->sp ? nt * mr : P;
#ifdef __AVX512F__
        if (pc->direct) { /* (c is set: every panel lies in one image) */
          const float *ax = pc->x + (n * g->C + k0) * P + p0, *pf = NULL;
          if (j == 0 && t + 1 < nt) /* the first pass over the block brings its pixels in */
            pf = pc->x + ((c0 + mr) / P * g->C + k0) * P + (c0 + mr) % P;
          edge_ukr((int)nm, kc, ax, P, b, nr, kci ? 1.0f : 0.0f, c, cs, pf);
        } else
#endif
        if (c && nm == nr) {
          md_ukr_call(u, kc, a, b, kci ? 1.0f : 0.0f, c, 1, cs, an, bn);
        } else if (c && pc->edge) {
#ifdef __AVX512F__
          edge_ukr((int)nm, kc, a, 32, b, nr, kci ? 1.0f : 0.0f, c, cs, NULL);
#endif
        } else if (pc->sp) { /* (the results have room for all Np columns) */
          md_ukr_call(u, kc, a, b, kci ? 1.0f : 0.0f, c, 1, cs, an, bn);
        } else {
          c = NULL;
        }
        if (c) {
          if (last && pc->bias && !pc->sp)
            for (int jj = 0; jj < nm; jj++)
              for (int i = 0; i < mr; i++) c[jj * P + i] += pc->bias[m0 + jj];
          continue;
        }
        md_ukr_call(u, kc, a, b, 0.0f, ct, 1, mr, an, bn);
        for (int64_t q = 0; q < tpp; q++) /* copy out run by run */
          for (int ru = 0; ru < nruns[t * tpp + q]; ru++) {
            const prun *r = runs + (t * tpp + q) * ln + ru;
            float *yp = pc->y + (r->n * pc->M + m0) * P + r->p0;
            const float *src = ct + q * ln + r->j0;
            for (int64_t jj = 0; jj < nm; jj++) {
              float bb = last && pc->bias ? pc->bias[m0 + jj] : 0.0f;
              float *dst = yp + jj * P;
              const float *sp = src + jj * mr;
              if (kci)
                for (int i = 0; i < r->len; i++) dst[i] += sp[i] + bb;
              else
                for (int i = 0; i < r->len; i++) dst[i] = sp[i] + bb;
            }
          }
      }
    }
  }
  if (pc->sp) spread_block(pc, ct, nt * mr, runs, nruns, nt * tpp);
}

/* whether the packed path computes g in the transposed orientation */
static int transposed_ok(const geom *g, const md_ukr *u) {
  const char *e = getenv("MD_CONV_TPACK");
  return !(e && *e == '0') && u->prefers_cols && u->mr % 16 == 0 && u->mr <= 64;
}

/* whether the transposed path reads the pixels of this 1x1 stride-1
** convolution straight from x with edge_ukr, packing nothing: x's planes
** are the micro-panels' columns already, when no panel of 32 pixels
** crosses into the next image.  1 thread, against packing + BLIS's kernel:
** the strided 1x1 bwd_input (which is one) 64->128 @32 +30 %, 128->256 @16
** +33 %; 1x1 forwards +10-30 % (256->1024 @8 -7 %) */
static int direct_ok(const geom *g, const md_ukr *u) {
#ifdef __AVX512F__
  return edge_fits(u) && transposed_ok(g, u) && is_pointwise(g) && (g->Ho * g->Wo) % 32 == 0;
#else
  (void)g;
  (void)u;
  return 0;
#endif
}

/* whether a 1x1 stride-1 convolution with M outputs takes the packed path
** (else the im2col path, which reads x in place): in the transposed
** orientation when it reads x directly, or with at most 1/16 of the weight
** panels' columns padding (64 outputs in panels of 12: 1/9, and slower
** than the im2col path when packed; read directly, 256->64 @32 85 -> 135
** GFLOP/s); with a kernel that stores C by rows, for up to 256 inputs
** (2 threads, haswell: 512->128 @16 bwd_input +74 %, 128->256 stride 2
** +15 %, 256->64 @32 forward -6 %; 1024->256 @8 forward -15 %) */
static int pointwise_ok(const geom *g, int64_t M, const md_ukr *u) {
  if (!u->prefers_cols) return g->C <= 256;
  return transposed_ok(g, u) && (direct_ok(g, u) || ((M + u->nr - 1) / u->nr * u->nr - M) * 16 <= M);
}

/* whether the packed path can run this convolution (g as for the forward),
** 1x1 stride-1 ones aside */
static int packed_fits(const geom *g, int64_t M) {
  static int enabled = -1;
  if (enabled < 0) {
    const char *e = getenv("MD_CONV_PACKED");
    enabled = !(e && *e == '0');
  }
  md_ukr u;
  md_ukr_get(&u);
  /* Measured against the im2col path (bench_conv, 1 thread): faster for
  ** maps of 8x8 and more, slower for 4x4 and 2x2 ones with 512 channels
  ** (there the weights do not stay in the caches between the few columns)
  ** and for the 27 rows of a first layer.  1x1 stride-1 convolutions: see
  ** pointwise_ok. */
  return enabled && g->G == 1 && g->sw <= 2 && M >= 16 && g->C * g->R * g->S >= 64 && g->Ho * g->Wo >= 64 &&
         u.nr <= PK_MAXNR && u.mr <= 64;
}

/* whether the packed path runs this convolution (g as for the forward) */
static int packed_ok(const geom *g, int64_t M) {
  md_ukr u;
  md_ukr_get(&u);
  return packed_fits(g, M) && (!is_pointwise(g) || pointwise_ok(g, M, &u));
}

/* y (N,M,Ho,Wo) <- conv of x (N,C,H,W) (geometry g, stride 1 across) with
** the weights packed from w (flip: see pack_a), + bias; 0 when out of memory */
static int packed_conv(float *y, const float *x, const float *w, int flip, const float *bias, const geom *g,
                       int64_t M, const geom *sp) {
  pconv pc = {.g = g, .x = x, .bias = bias, .y = y, .M = M, .sp = sp};
  md_ukr_get(&pc.u);
  const int mr = pc.u.mr, nr = pc.u.nr;
  const int64_t RS = g->R * g->S, ncols = g->N * g->Ho * g->Wo;
  pc.tr = sp || transposed_ok(g, &pc.u);
#ifdef __AVX512F__
  pc.edge = pc.tr && edge_fits(&pc.u);
  pc.direct = pc.tr && direct_ok(g, &pc.u);
#endif
  /* the GEMM's tiles: along the pixels tw wide, along the channels tm */
  const int tw = pc.tr ? mr : nr, tm = pc.tr ? nr : mr;
  const int64_t ntiles = (ncols + tw - 1) / tw;
  pc.lanes = pc.tr ? 16 : nr;
  pc.tpp = tw / pc.lanes;
  pc.rl = tw;
  pc.Mp = (M + tm - 1) / tm * tm;
  pc.CRS = g->C * RS;
  /* rows in equal chunks of at most KC, fewer when a chunk of the weights
  ** (Mp x kc) would fill more than half of a 1 MB L2 */
  int64_t kmax = pc.u.kc, kfit = (512 << 10) / (4 * pc.Mp);
  if (kfit < kmax) kmax = kfit < 64 ? 64 : kfit;
  pc.nkc = (pc.CRS + kmax - 1) / kmax;
  pc.kc = (pc.CRS + pc.nkc - 1) / pc.nkc;
  /* blocks of tiles, and enough blocks to share out: the results of a
  ** block (Mp x tpb*nr) in about 48 KB, or in the transposed orientation
  ** its packed pixels (tpb*mr x kc) in about 256 KB (measured best of
  ** 32..512 KB at 64->128 3x3 stride 2: 128 KB lost 7 % to the other
  ** orientation) */
  int nthr = md_num_threads_internal();
  pc.tpb = pc.tr ? (256 << 10) / (4 * mr * pc.kc) : (48 << 10) / (4 * nr * pc.Mp);
  if (sp && pc.tpb * mr * pc.Mp > (64 << 10)) pc.tpb = (64 << 10) / (mr * pc.Mp); /* results in 256 KB */
  if (pc.tpb < 1) pc.tpb = 1;
  if (pc.tpb > 16) pc.tpb = 16;
  while (pc.tpb > 1 && (ntiles + pc.tpb - 1) / pc.tpb < 4 * nthr) pc.tpb /= 2;
  const int64_t nblk = (ntiles + pc.tpb - 1) / pc.tpb;
  /* scratch per thread: the packed pixels, a C tile (both orientations'
  ** sizes), runs, nruns, masks (64-byte multiples) */
  const int64_t nsub = pc.tpb * pc.tpp; /* lanes-wide tiles per block */
  int64_t fl = (pc.tpb * pc.kc * tw + (pc.tr && !sp ? mr * nr : pc.tpb * tw * pc.Mp) + 15) / 16 * 16;
  pc.flo = fl;
  int64_t by = nsub * pc.lanes * (int64_t)sizeof(prun) + nsub * (int64_t)sizeof(int) +
               nsub * pc.lanes * RS * (int64_t)sizeof(uint32_t);
  pc.slice = (fl + (by + 3) / 4 + MD_UKR_SLACK + 15) / 16 * 16;
  int par = nthr > 1 && nblk >= 2 * nthr && !IN_PARALLEL;
  int nt = par ? nthr : 1;
  float *ap = md_alloc(sizeof(float) * (size_t)(pc.Mp * pc.CRS + MD_UKR_SLACK));
  pc.scratch = md_alloc(sizeof(float) * (size_t)(pc.slice * nt));
  pc.off = malloc(sizeof(int64_t) * (size_t)RS);
  if (!ap || !pc.scratch || !pc.off) {
    md_free(ap);
    md_free(pc.scratch);
    free(pc.off);
    md_set_error("conv2d: out of memory");
    return 0;
  }
  tap_offsets(pc.off, g);
  pack_a(ap, w, M, pc.Mp, pc.CRS, tm, flip, RS);
  pc.ap = ap;
#pragma omp parallel for schedule(dynamic) num_threads(nthr) if (par)
  for (int64_t b = 0; b < nblk; b++) {
    int64_t t0 = b * pc.tpb, n = ntiles - t0 < pc.tpb ? ntiles - t0 : pc.tpb;
    float *scr = pc.scratch + thread_id() * pc.slice;
    if (pc.tr)
      tconv_block(&pc, t0, n, scr);
    else
      pconv_block(&pc, t0, n, scr);
  }
  md_free(ap);
  md_free(pc.scratch);
  free(pc.off);
  return 1;
}

/* bwd_weight, packed: gw (K x CRS) = gy (K x columns) col^T (columns x
** CRS), summed over the batch.  The columns are the GEMM's k dim, so both
** operands are packed across their natural order: gy's rows into A
** micro-panels (MR channels per column), and the column matrix's rows into
** B micro-panels (NR rows of it per column), 16 columns at a time as a
** 16 x 16 transpose in registers.  The column matrix is again never
** written.  Threads take B tiles; the accumulator holds gw in tiles of the
** kernel's preferred layout, copied into place at the end. */

#ifdef __AVX512F__
/* r[i] lane j <- r[j] lane i */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int k = 0; k < 8; k++) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {
    u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k + 0], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k + 0], t[4 * k + 2], 0xee);
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xee);
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    t[q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
    t[4 + q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xdd);
    t[8 + q] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
    t[12 + q] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xdd);
  }
#pragma GCC unroll 8
  for (int q = 0; q < 8; q++) {
    r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
    r[8 + q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xdd);
  }
}
#endif

typedef struct pbw {
  const geom *g; /* g->sw 1 or 2, g->G == 1 */
  const float *x, *gy;
  md_ukr u;
  int64_t M, Mp, CRS, ntile; /* ntile B tiles of NR rows of the column matrix */
  int64_t kc;                /* columns per chunk, a multiple of 16 */
  int64_t *off;              /* (R*S): r*dh*W + s*dw */
  int64_t slice;             /* scratch floats per thread */
  float *scratch;
} pbw;

/* prefetch planes c0 .. c1-1 of what columns q0 .. q0+n-1 read from t:
** x (the input rows of their output rows) when input, else gy.  For both
** bwd_weight paths (packed and pw_bwd_weight) */
static void prefetch_cols(const geom *g, const float *t, int input, int64_t c0, int64_t c1, int64_t q0,
                          int64_t n) {
  const int64_t P = g->Ho * g->Wo;
  for (int64_t q = q0; q < q0 + n;) { /* image by image */
    int64_t img = q / P, p0 = q % P, p1 = (q0 + n - q < P - p0 ? q0 + n - q : P - p0) + p0; /* p0 .. p1-1 */
    int64_t lo, hi, planes = input ? g->C : g->K, psize;
    const float *base;
    if (input) {
      lo = p0 / g->Wo * g->sh - g->ph;
      hi = (p1 - 1) / g->Wo * g->sh - g->ph + (g->R - 1) * g->dh + 1;
      lo = lo < 0 ? 0 : lo;
      hi = hi > g->H ? g->H : hi;
      psize = g->H * g->W;
      base = t + img * planes * psize;
      lo *= g->W;
      hi *= g->W;
    } else {
      lo = p0;
      hi = p1;
      psize = P;
      base = t + img * planes * psize;
    }
    /* a 1x1 kernel reads every sh-th row only (lo is one of them) */
    const int64_t step = input && g->R == 1 && g->ph == 0 ? g->sh * g->W : hi - lo;
    const int64_t span = input && g->R == 1 && g->ph == 0 ? g->W : hi - lo;
    for (int64_t c = c0; c < c1 && c < planes; c++)
      for (int64_t r = lo; r < hi; r += step)
        for (int64_t e = r; e < r + span; e += 16) __builtin_prefetch(base + c * psize + e);
    q += p1 - p0;
  }
}

/* the chunk of columns q0 .. q0+n-1 (n <= kc) into acc (beta: 0 sets, 1 adds) */
static void pbw_chunk(const pbw *pb, int64_t q0, int64_t n, int64_t nnext, int64_t t0, int64_t t1,
                      float *scr, float *acc, float beta) {
  const geom *g = pb->g;
  const md_ukr *u = &pb->u;
  const int mr = u->mr, nr = u->nr;
  const int64_t RS = g->R * g->S, HW = g->H * g->W, P = g->Ho * g->Wo, Mp = pb->Mp, CRS = pb->CRS;
  const int64_t kcp = (n + 15) / 16 * 16, ng = kcp / 16;
  const int64_t crs_ = u->prefers_cols ? 1 : nr, ccs = u->prefers_cols ? Mp : 1;
  float *ap = scr, *bt = ap + Mp * pb->kc, *rb = bt + pb->kc * nr + 16;
  prun *runs = (prun *)(rb + pb->kc * nr);
  int *nruns = (int *)(runs + pb->kc);
  uint32_t *masks = (uint32_t *)(nruns + pb->kc / 16);
  for (int64_t gi = 0; gi < ng; gi++) {
    int64_t c0 = q0 + gi * 16;
    int ncols = (int)(n - gi * 16 < 16 ? n - gi * 16 : 16);
    nruns[gi] = tile_runs(runs + gi * 16, masks + gi * 16 * RS, c0, ncols, g);
  }
  /* A: ap[i][kk][mm] = gy[n, i*mr + mm, p] for column q0 + kk, 0 beyond */
#ifdef __AVX512F__
  if (mr % 16 == 0) { /* 16 channels x 16 columns at a time, transposed */
    for (int64_t gi = 0; gi < ng; gi++)
      for (int64_t m0 = 0; m0 < Mp; m0 += 16) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int mm = 0; mm < 16; mm++) {
          r[mm] = _mm512_setzero_ps();
          if (m0 + mm >= pb->M) continue;
          for (int q = 0; q < nruns[gi]; q++) {
            const prun *ru = runs + gi * 16 + q;
            r[mm] = _mm512_mask_loadu_ps(r[mm], (__mmask16)(((1u << ru->len) - 1) << ru->j0),
                                         pb->gy + (ru->n * pb->M + m0 + mm) * P + ru->p0 - ru->j0);
          }
        }
        transpose16(r);
        float *d = ap + ((m0 / mr) * kcp + gi * 16) * mr + m0 % mr;
#pragma GCC unroll 16
        for (int l = 0; l < 16; l++) _mm512_store_ps(d + l * mr, r[l]);
      }
  } else
#endif
  {
    memset(ap, 0, sizeof(float) * (size_t)(Mp * kcp));
    for (int64_t kk = 0; kk < n;) {
      int64_t col = q0 + kk, img = col / P, p = col % P, len = P - p < n - kk ? P - p : n - kk;
      const float *src = pb->gy + img * pb->M * P + p;
      for (int64_t m = 0; m < pb->M; m++) {
        float *d = ap + ((m / mr) * kcp + kk) * mr + m % mr;
        const float *sp = src + m * P;
        for (int64_t l = 0; l < len; l++) d[l * mr] = sp[l];
      }
      kk += len;
    }
  }
  for (int64_t t = t0; t < t1; t++) {
    /* the next chunk's planes (nnext columns from q0 + n), a share per tile,
    ** so that they are in L2 when it starts: visiting the planes a few
    ** elements at a time defeats the hardware's prefetcher.  x: the planes
    ** of this tile's rows; gy: all of it, over this thread's tiles */
    if (nnext > 0) {
      int64_t i = t - t0, nl = t1 - t0;
      prefetch_cols(g, pb->x, 1, t * g->C / pb->ntile, (t + 1) * g->C / pb->ntile, q0 + n, nnext);
      prefetch_cols(g, pb->gy, 0, i * pb->M / nl, (i + 1) * pb->M / nl, q0 + n, nnext);
    }
    /* B: bt[kk][j] = row t*nr + j of the column matrix at column q0 + kk */
#ifdef __AVX512F__
    /* row by row into rb (nr rows of kcp), each read along x, then 16 x 16
    ** transposes into bt (measured: visiting the rows 16 columns at a time
    ** instead stalls on loads from a dozen places at once) */
    for (int j = 0; j < nr; j++) {
      int64_t row = t * nr + j, rs = row % RS;
      float *dst = rb + j * kcp;
      if (row >= CRS) {
        memset(dst, 0, sizeof(float) * (size_t)kcp);
        continue;
      }
      const float *xc = pb->x + row / RS * HW + pb->off[rs];
      for (int64_t gi = 0; gi < ng; gi++) {
        const prun *run = runs + gi * 16;
        const uint32_t *mask = masks + gi * 16 * RS + rs;
        __m512 v = _mm512_setzero_ps();
        for (int q = 0; q < nruns[gi]; q++) v = load_lanes(v, mask[q * RS], xc + run[q].base, g->sw);
        _mm512_store_ps(dst + gi * 16, v);
      }
    }
    for (int64_t gi = 0; gi < ng; gi++) {
      __m512 r[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; j++)
        r[j] = j < nr ? _mm512_load_ps(rb + j * kcp + gi * 16) : _mm512_setzero_ps();
      transpose16(r);
#pragma GCC unroll 16
      for (int l = 0; l < 16; l++) /* 16 - nr floats spill into the next row */
        _mm512_storeu_ps(bt + (gi * 16 + l) * nr, r[l]);
    }
#else
    for (int64_t gi = 0; gi < ng; gi++) {
      const prun *run = runs + gi * 16;
      const uint32_t *mask = masks + gi * 16 * RS;
      for (int l = 0; l < 16; l++)
        for (int j = 0; j < nr; j++) bt[(gi * 16 + l) * nr + j] = 0.0f;
      for (int j = 0; j < nr; j++) {
        int64_t row = t * nr + j;
        if (row >= CRS) continue;
        const float *xc = pb->x + row / RS * HW + pb->off[row % RS];
        for (int q = 0; q < nruns[gi]; q++) {
          uint32_t m = mask[q * RS + row % RS];
          for (int l = run[q].j0; l < run[q].j0 + run[q].len; l++)
            if (m >> l & 1) bt[(gi * 16 + l) * nr + j] = xc[run[q].base + g->sw * l];
        }
      }
    }
#endif
    float *ct = acc + t * nr * Mp;
    for (int64_t i = 0; i < Mp / mr; i++) {
      const float *a = ap + i * kcp * mr;
      const float *an = i + 1 < Mp / mr ? a + kcp * mr : ap;
#ifdef __AVX512F__
      const int64_t rows = CRS - t * nr < nr ? CRS - t * nr : nr;
      if (rows < nr && edge_fits(u) && u->prefers_cols) { /* the last tile's rows only */
        edge_ukr((int)rows, kcp, a, 32, bt, nr, beta, ct + i * mr, Mp, NULL);
        continue;
      }
#endif
      md_ukr_call(u, kcp, a, bt, beta, ct + i * mr * crs_, crs_, ccs, an, bt);
    }
  }
}

/* gw's columns of B tiles t0 .. t1-1 <- the sum of nsum accumulators
** (nacc floats apart) in order, 0 when empty.  Tile by tile, without a
** division per element: the copy with one (row / nr, row % nr) took 80 us
** of a 700 us 128->256 stride-2 1x1 at 2 threads, on one thread; and on
** AVX-512 reading the tiles along their columns, 16 x 16 transposes into
** gw's rows (each element of a column-stored tile read on its own took
** another 100 us there, the other thread's accumulator from its cache) */
static void pbw_store(float *gw, const float *acc, int64_t nacc, int nsum, int empty, const pbw *pb, int64_t t0,
                      int64_t t1) {
  const int nr = pb->u.nr;
  const int64_t CRS = pb->CRS, crs_ = pb->u.prefers_cols ? 1 : nr, ccs = pb->u.prefers_cols ? pb->Mp : 1;
#ifdef __AVX512F__
  if (pb->u.prefers_cols && nr <= 16) { /* 16 x nr at a time, transposed in registers */
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r0 = t * nr, rows = CRS - r0 < nr ? CRS - r0 : nr;
      const float *ct = acc + r0 * pb->Mp;
      const __mmask16 wm = first_lanes(rows);
      for (int64_t m0 = 0; m0 < pb->M; m0 += 16) {
        const __mmask16 mm = first_lanes(pb->M - m0);
        __m512 r[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) {
          r[j] = _mm512_setzero_ps();
          if (j >= rows || empty) continue;
          const float *e = ct + j * pb->Mp + m0;
          r[j] = _mm512_maskz_loadu_ps(mm, e);
          for (int k = 1; k < nsum; k++) r[j] = _mm512_add_ps(r[j], _mm512_maskz_loadu_ps(mm, e + k * nacc));
        }
        transpose16(r);
        for (int i = 0; i < 16 && m0 + i < pb->M; i++) _mm512_mask_storeu_ps(gw + (m0 + i) * CRS + r0, wm, r[i]);
      }
    }
    return;
  }
#endif
  for (int64_t t = t0; t < t1; t++) {
    const int64_t r0 = t * nr, rows = CRS - r0 < nr ? CRS - r0 : nr;
    const float *ct = acc + r0 * pb->Mp;
    for (int64_t m = 0; m < pb->M; m++) {
      float *d = gw + m * CRS + r0;
      for (int64_t j = 0; j < rows; j++) {
        const float *e = ct + m * crs_ + j * ccs;
        float v = empty ? 0.0f : e[0];
        for (int k = 1; k < nsum; k++) v += e[k * nacc];
        d[j] = v;
      }
    }
  }
}

static int packed_bwd_weight(float *gw, const float *x, const float *gy, const geom *g) {
  pbw pb = {.g = g, .x = x, .gy = gy, .M = g->K};
  md_ukr_get(&pb.u);
  const int mr = pb.u.mr, nr = pb.u.nr;
  const int64_t RS = g->R * g->S, ncol = g->N * g->Ho * g->Wo;
  pb.Mp = (pb.M + mr - 1) / mr * mr;
  pb.CRS = g->C * RS;
  pb.ntile = (pb.CRS + nr - 1) / nr;
  /* columns per chunk: BLIS's KC, fewer when the packed gy (Mp x kc)
  ** would fill more than half of a 1 MB L2 */
  int64_t kc = pb.u.kc, kfit = (512 << 10) / (4 * pb.Mp);
  if (kfit < kc) kc = kfit < 64 ? 64 : kfit;
  pb.kc = (kc + 15) / 16 * 16;
  const int64_t nch = (ncol + pb.kc - 1) / pb.kc, nacc = pb.ntile * nr * pb.Mp;
  /* threads share out the B tiles (rows of the column matrix), each over
  ** all the columns, into disjoint tiles of one accumulator.  (Sharing out
  ** the columns instead needed an accumulator per thread, summed at the
  ** end: 15% of a 256->256 @8 bwd_weight on 2 threads.)  Each thread packs
  ** gy itself; that is M / (C*R*S) of the packing. */
  int nthr = md_num_threads_internal();
  /* But where gw is small (<= 160 KB) and the work per element of it
  ** large (2*N*Ho*Wo >= 4096 flops), share out the chunks of columns
  ** instead, an accumulator per thread: then gy is packed once in all, not
  ** once per thread.  2 threads: 128->256 1x1 stride 2 @16 +40 %, 64->128
  ** @32 +14-18 %; 64->64 3x3 @32: +1-3 %; at 64->128 3x3 stride 2 @32
  ** (288 KB) -1-5 %. */
  int bycols = nthr > 1 && ncol >= 2048 && pb.M * pb.CRS <= 40960 && nch >= 2 * nthr && !IN_PARALLEL;
  int par = nthr > 1 && (bycols || pb.ntile >= 2 * nthr) && !IN_PARALLEL;
  int nt = par ? nthr : 1;
  /* scratch per thread: ap, bt, rb, runs, nruns, masks for a chunk */
  int64_t fl = pb.Mp * pb.kc + 2 * pb.kc * nr + 16;
  int64_t by = pb.kc * (int64_t)sizeof(prun) + pb.kc / 16 * (int64_t)sizeof(int) +
               pb.kc * RS * (int64_t)sizeof(uint32_t);
  pb.slice = (fl + (by + 3) / 4 + MD_UKR_SLACK + 15) / 16 * 16;
  pb.scratch = md_alloc(sizeof(float) * (size_t)(pb.slice * nt));
  const int nacc_ = bycols ? nt : 1; /* accumulators */
  float *acc = md_alloc(sizeof(float) * (size_t)(nacc * nacc_ + MD_UKR_SLACK));
  if (acc && bycols) /* (the edge kernel leaves the last tile's padding rows unwritten; summed here) */
    memset(acc, 0, sizeof(float) * (size_t)(nacc * nacc_));
  pb.off = malloc(sizeof(int64_t) * (size_t)RS);
  if (!pb.scratch || !acc || !pb.off) {
    md_free(pb.scratch);
    md_free(acc);
    free(pb.off);
    md_set_error("conv2d_bwd_weight: out of memory");
    return 0;
  }
  tap_offsets(pb.off, g);
#pragma omp parallel num_threads(nt) if (par)
  {
    int tid = thread_id(), nth = team_size();
    int64_t t0 = pb.ntile * tid / nth, t1 = pb.ntile * (tid + 1) / nth, qa = 0, qb = ncol;
    float *ac = acc;
    if (bycols) { /* an equal share of the columns (to 16), in chunks of kc or less: chunks
                  ** of kc shared out whole gave 1152 and 896 of 2048 columns (2 threads) */
      t0 = 0;
      t1 = pb.ntile;
      qa = ncol * tid / nth / 16 * 16;
      qb = tid + 1 < nth ? ncol * (tid + 1) / nth / 16 * 16 : ncol;
      ac = acc + tid * nacc;
    }
    for (int64_t q0 = qa; q0 < qb; q0 += pb.kc) {
      int64_t n = qb - q0 < pb.kc ? qb - q0 : pb.kc, nn = qb - q0 - n;
      pbw_chunk(&pb, q0, n, nn < pb.kc ? nn : pb.kc, t0, t1, pb.scratch + tid * pb.slice, ac,
                q0 > qa ? 1.0f : 0.0f);
    }
    /* gw <- the tiles: each thread its own, or (bycols) once all are
    ** done a share of the tiles each, the threads' accumulators summed */
    if (bycols) {
#pragma omp barrier
      t0 = pb.ntile * tid / nth;
      t1 = pb.ntile * (tid + 1) / nth;
    }
    pbw_store(gw, acc, nacc, bycols ? nth : 1, nch == 0, &pb, t0, t1);
  }
  md_free(pb.scratch);
  md_free(acc);
  free(pb.off);
  return 1;
}
/* the geometry of bwd_input as a forward convolution of gy (stride 1 and
** no groups only): gx = conv(gy, flip(w)^T) padded by dil*(R-1) - pad;
** 0 when it does not apply */
static int bwd_input_as_forward(geom *f, const geom *g) {
  if (g->sh != 1 || g->sw != 1 || g->G != 1) return 0;
  geom t = *g;
  t.C = g->K;
  t.H = g->Ho;
  t.W = g->Wo;
  t.K = g->C;
  t.Ho = g->H;
  t.Wo = g->W;
  t.ph = g->dh * (g->R - 1) - g->ph;
  t.pw = g->dw * (g->S - 1) - g->pw;
  if (t.ph < 0 || t.pw < 0) return 0;
  *f = t;
  return 1;
}
/* }====================================================== */

/* {====================================================== depthwise kernels
** C == G: output channel k reads input channel k / mult only (mult = K/C).
** A GEMM per group would be [mult, R*S] x [R*S, P]: far too thin, so these
** are direct loops, threaded over planes. */

/* y (N,K,Ho,Wo) <- x (N,C,H,W), w (K,1,R,S), b (K) or NULL */
static void dw_forward(float *y, const float *x, const float *w, const float *b, const geom *g) {
  const int64_t C = g->C, H = g->H, W = g->W, K = g->K, R = g->R, S = g->S, Ho = g->Ho, Wo = g->Wo;
  const int64_t mult = K / C, P = Ho * Wo, sw = g->sw;
#pragma omp parallel for schedule(static) if (PAR_IF(g->N * K * P * R * S))
  for (int64_t nk = 0; nk < g->N * K; nk++) {
    int64_t n = nk / K, k = nk % K;
    const float *xp = x + (n * C + k / mult) * H * W, *wk = w + k * R * S;
    float *yp = y + nk * P;
    float bias = b ? b[k] : 0.0f;
    for (int64_t q = 0; q < P; q++) yp[q] = bias;
    for (int64_t oh = 0; oh < Ho; oh++) {
      float *yr = yp + oh * Wo;
      for (int64_t r = 0; r < R; r++) {
        int64_t ih = oh * g->sh - g->ph + r * g->dh;
        if (ih < 0 || ih >= H) continue;
        const float *xr = xp + ih * W;
        for (int64_t s = 0; s < S; s++) {
          int64_t off = s * g->dw - g->pw, lo, hi;
          valid_range(&lo, &hi, off, sw, Wo, W);
          float wv = wk[r * S + s];
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * sw + off];
        }
      }
    }
  }
}

/* gx (N,C,H,W) <- gy (N,K,Ho,Wo), w (K,1,R,S) */
static void dw_bwd_input(float *gx, const float *gy, const float *w, const geom *g) {
  const int64_t C = g->C, H = g->H, W = g->W, K = g->K, R = g->R, S = g->S, Ho = g->Ho, Wo = g->Wo;
  const int64_t mult = K / C, P = Ho * Wo, sw = g->sw;
#pragma omp parallel for schedule(static) if (PAR_IF(g->N * K * P * R * S))
  for (int64_t nc = 0; nc < g->N * C; nc++) {
    int64_t n = nc / C, c = nc % C;
    float *xp = gx + nc * H * W;
    memset(xp, 0, sizeof(float) * (size_t)(H * W));
    for (int64_t k = c * mult; k < (c + 1) * mult; k++) {
      const float *yp = gy + (n * K + k) * P, *wk = w + k * R * S;
      for (int64_t oh = 0; oh < Ho; oh++) {
        const float *yr = yp + oh * Wo;
        for (int64_t r = 0; r < R; r++) {
          int64_t ih = oh * g->sh - g->ph + r * g->dh;
          if (ih < 0 || ih >= H) continue;
          float *xr = xp + ih * W;
          for (int64_t s = 0; s < S; s++) {
            int64_t off = s * g->dw - g->pw, lo, hi;
            valid_range(&lo, &hi, off, sw, Wo, W);
            float wv = wk[r * S + s];
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ow++) xr[ow * sw + off] += wv * yr[ow];
          }
        }
      }
    }
  }
}

/* gw (K,1,R,S) <- x (N,C,H,W), gy (N,K,Ho,Wo); sums in double over the
** whole batch (N*Ho*Wo terms) */
static void dw_bwd_weight(float *gw, const float *x, const float *gy, const geom *g) {
  const int64_t C = g->C, H = g->H, W = g->W, K = g->K, R = g->R, S = g->S, Ho = g->Ho, Wo = g->Wo;
  const int64_t mult = K / C, P = Ho * Wo, sw = g->sw;
#pragma omp parallel for schedule(static) if (PAR_IF(g->N * K * P * R * S))
  for (int64_t k = 0; k < K; k++) {
    for (int64_t r = 0; r < R; r++)
      for (int64_t s = 0; s < S; s++) {
        int64_t off = s * g->dw - g->pw, lo, hi;
        valid_range(&lo, &hi, off, sw, Wo, W);
        double acc = 0;
        for (int64_t n = 0; n < g->N; n++) {
          const float *xp = x + (n * C + k / mult) * H * W, *yp = gy + (n * K + k) * P;
          for (int64_t oh = 0; oh < Ho; oh++) {
            int64_t ih = oh * g->sh - g->ph + r * g->dh;
            if (ih < 0 || ih >= H) continue;
            const float *xr = xp + ih * W, *yr = yp + oh * Wo;
            float part = 0;
#pragma omp simd reduction(+ : part)
            for (int64_t ow = lo; ow < hi; ow++) part += yr[ow] * xr[ow * sw + off];
            acc += part;
          }
        }
        gw[(k * R + r) * S + s] = (float)acc;
      }
  }
}
/* }====================================================== */

/* {====================================================== strided 1x1 convolutions
** A 1x1 convolution with stride s and no padding (ResNet's shortcuts) only
** reads x[:, :, ::sh, ::sw].  bwd_input is a 1x1 stride-1 convolution of
** gy into the shape of that subsample, spread out with zeros between: in
** the transposed packed path the spreading is part of writing the results
** (spread_block); otherwise the pointwise GEMM path writes the subsample
** and spread() copies it out.  Both beat the strided col2im (1 thread,
** 64->128 @32: 25-50 GFLOP/s, pointwise + spread 75, transposed 90).  The
** forward could gather the subsample and run the pointwise path on it, but
** that measured no better than the packed path. */

static int is_strided_pointwise(const geom *g) { return is_1x1(g) && (g->sh > 1 || g->sw > 1); }

/* g as the 1x1 stride-1 convolution of the subsample */
static geom pointwise_of(const geom *g) {
  geom t = *g;
  t.H = g->Ho;
  t.W = g->Wo;
  t.sh = t.sw = 1;
  return t;
}

/* d (an H x W plane) <- zeros with s (an Ho x Wo plane) at every sh-th
** row and sw-th column: the plane zeroed, then written into while in L1.
** (Zeroing all of x first and then writing into it went through memory
** twice: 26 % of a 64->128 stride-2 1x1 bwd_input with the haswell
** kernels, 8 MB of gx.  Writing row by row, zeros and (value, 0) pairs,
** measured the same there and 5-10 % slower on 8x8 maps.) */
static void spread_plane(float *d, const float *s, const geom *g) {
  const int64_t Ho = g->Ho, Wo = g->Wo;
  memset(d, 0, sizeof(float) * (size_t)(g->H * g->W));
  for (int64_t oh = 0; oh < Ho; oh++)
    for (int64_t ow = 0; ow < Wo; ow++) d[oh * g->sh * g->W + ow * g->sw] = s[oh * Wo + ow];
}

/* x (N*C, H, W) <- zeros with the planes (N*C, Ho, Wo) of xs at every sh-th
** row and sw-th column */
static void spread(float *x, const float *xs, const geom *g) {
  const int64_t NC = g->N * g->C, HW = g->H * g->W, P = g->Ho * g->Wo;
#pragma omp parallel for schedule(static) if (PAR_IF(NC * HW))
  for (int64_t pl = 0; pl < NC; pl++) spread_plane(x + pl * HW, xs + pl * P, g);
}

static int conv_bwd_input(float *gx, const float *gy, const float *w, const geom *g);

static int sub_bwd_input(float *gx, const float *gy, const float *w, const geom *g) {
  geom t = pointwise_of(g), f;
  md_ukr u;
  md_ukr_get(&u);
  if (bwd_input_as_forward(&f, &t) && transposed_ok(&f, &u) && packed_fits(&f, g->C))
    return packed_conv(gx, gy, w, 1, NULL, &f, g->C, g);
  float *gs = md_alloc(sizeof(float) * (size_t)(g->N * g->C * g->Ho * g->Wo));
  if (!gs) return 0;
  int ok = conv_bwd_input(gs, gy, w, &t);
  if (ok) spread(gx, gs, g);
  md_free(gs);
  return ok;
}
/* }====================================================== */

/* {====================================================== strided 1x1 on small maps
** A 1x1 convolution is one product along all the batch's pixels, but in
** NCHW each image's P pixels lie apart from the next image's.  With 4x4
** and 8x8 output maps the paths above take few columns at a time (the
** packed path needs 64 pixels an image), and with several threads they
** share out each product, the threads meeting at every step.  Here each
** thread takes runs of whole images instead: copies a run's operands into
** channel-major form (channels, pixels of the run), subsampling in the same
** pass, multiplies them with one sgemm on the thread, and writes the result
** out, spreading it for bwd_input.  The copies move (C + K) floats a pixel,
** against C * K multiply-adds. */

/* xs (C, ld) <- x (N, C, H, W) at every sh-th row and sw-th column from the
** top left (g's output pixels), image n's at xs + n*Ho*Wo */
static void cm_subsample(float *xs, int64_t ld, const float *x, int64_t N, const geom *g) {
  const int64_t C = g->C, Ho = g->Ho, Wo = g->Wo, P = Ho * Wo;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      const float *s = x + (n * C + c) * g->H * g->W;
      float *d = xs + c * ld + n * P;
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) d[oh * Wo + ow] = s[oh * g->sh * g->W + ow * g->sw];
    }
}

/* gx (N, C, H, W) <- xs (C, ld) at every sh-th row and sw-th column, zeros
** between (the adjoint of cm_subsample) */
static void cm_spread(float *gx, const float *xs, int64_t ld, int64_t N, const geom *g) {
  const int64_t C = g->C, P = g->Ho * g->Wo;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) spread_plane(gx + (n * C + c) * g->H * g->W, xs + c * ld + n * P, g);
}

/* whether a strided 1x1 convolution's forward (op 0) or bwd_input (op 1)
** runs channel-major: with several threads, forward at 16-63 output
** pixels an image, bwd_input at up to 64.  Measured against the other
** paths at 2 threads, batch 32, in separate processes run alternately
** (alternating calls in one process flattered whichever path ran after
** the other, by up to 2x): 256->512 @8 forward 200-213 -> 242-250 GFLOP/s
** and bwd_input 175-179 -> 242-265 (bench_conv), 512->1024 @8 +10 % and
** +22-30 %, 128->256 @16 bwd_input 183-186 -> 233-235 (bench_conv); at
** 8x8 256->512 bwd_input within 4 %, 64->128 -5 %.  At 1 thread the
** others are as fast or faster: they copy nothing, and what this path
** saves with several threads is their waiting on each other.  bwd_weight
** this way (the inputs gathered pixel-major, the B layout BLIS packs
** fastest) was no faster than pw_bwd_weight or the packed path in
** bench_conv at 1 or 2 threads, and is not done. */
static int cm_ok(const geom *g, int op) {
  const char *e = getenv("MD_CONV_CM");
  const int64_t P = g->Ho * g->Wo;
  return !(e && *e == '0') && is_strided_pointwise(g) && g->G == 1 && g->N >= 2 &&
         md_num_threads_internal() > 1 && !IN_PARALLEL && (op == 0 ? P >= 16 && P < 64 : P <= 64);
}

/* op 0: y <- conv(a = x, w) + bias; 1: gx <- bwd_input(a = gy, w).  The
** threads take runs of whole images, each run gathered, multiplied (on the
** thread: no barriers) and written out in turn; 0 when out of memory */
static int cm_conv(int op, float *out, const float *a, const float *w, const float *bias, const geom *g) {
  const int64_t N = g->N, C = g->C, K = g->K, P = g->Ho * g->Wo, HW = g->H * g->W;
  const int nthr = md_num_threads_internal(), nt = nthr < N ? nthr : (int)N;
  /* runs of up to 1024 columns (measured flat from 512 to 4096), evenly
  ** over the threads */
  int64_t ipr = (N + nt - 1) / nt, cap = 1024 / P > 0 ? 1024 / P : 1;
  ipr = ipr < cap ? ipr : cap;
  const int64_t nrun = (N + ipr - 1) / ipr, slice = (C + K) * ipr * P + MD_UKR_SLACK;
  float *buf = md_alloc(sizeof(float) * (size_t)(slice * nt));
  if (!buf) {
    md_set_error("%s: out of memory", op == 0 ? "conv2d" : "conv2d_bwd_input");
    return 0;
  }
#pragma omp parallel num_threads(nt)
  {
    int tid = thread_id(), nth = team_size();
    float *xs = buf + tid * slice, *ys = xs + C * ipr * P; /* (C, ld) and (K, ld) */
    const int64_t r1 = nrun * (tid + 1) / nth;
    for (int64_t r = nrun * tid / nth; r < r1; r++) {
      const int64_t n0 = r * ipr, nn = N - n0 < ipr ? N - n0 : ipr, ld = nn * P;
      const block bk = {n0, nn, 0, g->Ho, 0, P, ld}; /* whole images: the output side is (K, ld) */
      if (op == 0) {
        cm_subsample(xs, ld, a + n0 * C * HW, nn, g);
        md_sgemm_1t(K, ld, C, 1.0f, w, C, 1, xs, ld, 1, 0.0f, ys, ld, 1); /* w xs */
        scatter_block(out, ys, bias, &bk, K, P);
      } else {
        gather_block(ys, a, &bk, K, P);
        md_sgemm_1t(C, ld, K, 1.0f, w, 1, C, ys, ld, 1, 0.0f, xs, ld, 1); /* w^T gys */
        cm_spread(out + n0 * C * HW, xs, ld, nn, g);
      }
    }
  }
  md_free(buf);
  return 1;
}
/* }====================================================== */

/* {====================================================== 1x1 bwd_weight
** gw (K x C) of a 1x1 convolution is the sum over the output pixels of gy
** (K x pixels) times xs^T, xs (C x pixels) the inputs at the pixels (x
** itself at stride 1).  Both run along the pixels, which the packed path
** must transpose (16 x 16 in registers) into BLIS's panels; here each
** 6 x 4 block of gw is 24 dot products straight along them, 16 pixels a
** vector, the accumulators summed across their lanes once per chunk of
** pixels.  Measured against the packed path (alternating calls): 64->256
** @32 1.7x at 1 thread and 1.6x at 2, 64->128 stride 2 @32 1.08x,
** 512->128 @16 1.0x and 1.13x; slower on maps under 16x16 (too few pixels
** per image, and too few chunks to share out). */
#ifdef __AVX512F__
/* lane i <- the sum of the lanes of v[i] (46 instructions for 16 sums) */
static inline __attribute__((always_inline)) __m512 hsum16(const __m512 v[16]) {
  __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) /* halves: v[2i] in the low 256 bits, v[2i+1] in the high */
    t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) /* quarters: v[4i + q] in quarter q */
    u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xdd));
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) /* quarter q: v[8i + q] twice, v[8i + 4 + q] twice */
    w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xee));
  /* lane 4q + r: the sum of v[4r + q] */
  __m512 z = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xdd));
  const __m512i ix = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  return _mm512_permutexvar_ps(ix, z);
}

/* a run of pixels of one image within a chunk: pixels p .. p+len-1 of
** image img, gathered to xs + c*ld + xo (each run padded to 16) */
typedef struct pwseg {
  int64_t img, p, xo, len;
} pwseg;

/* seg <- the runs of the pixels q0 .. q0+n-1 of a batch of images of P
** pixels, as pw_gather lays them out; returns their number */
static int pw_segments(pwseg *seg, int64_t q0, int64_t n, int64_t P) {
  int nseg = 0;
  for (int64_t q = q0, xo = 0; q < q0 + n; nseg++) {
    int64_t p = q % P, len = P - p < q0 + n - q ? P - p : q0 + n - q;
    seg[nseg] = (pwseg){q / P, p, xo, len};
    xo += (len + 15) / 16 * 16;
    q += len;
  }
  return nseg;
}

/* acc (32 floats) += the PW_K x 4 block of sums over the runs' pixels of
** gy rows k0.. (rows past K read the last one, their sums not kept) times
** xs rows c0.. (likewise past C), lane 4i + j for (k0 + i, c0 + j).  gy
** is read where it lies (its rows run along the pixels already); xs was
** gathered, each run padded with zeros to 16.  6 x 4 accumulators, 6 rows
** of gy loaded and one row of xs at a time: 31 registers.  Each xs vector
** serves 6 rows of gy, which keeps what comes from L2 (all of xs for each
** 6 rows of gy) to 21 bytes a cycle at full speed; 4 x 4 blocks needed 32
** and ran at 60 %. */
#define PW_K 6
static void pw_block(float *acc, const float *gy, const float *xs, int64_t ld, const pwseg *seg, int nseg,
                     int64_t k0, int64_t c0, const geom *g) {
  const int64_t P = g->Ho * g->Wo;
  int64_t go[PW_K];
  const float *xr[4];
  for (int i = 0; i < PW_K; i++) go[i] = (k0 + i < g->K ? k0 + i : g->K - 1) * P;
  for (int j = 0; j < 4; j++) xr[j] = xs + (c0 + j < g->C ? c0 + j : g->C - 1) * ld;
  __m512 v[32];
#pragma GCC unroll 32
  for (int i = 0; i < 32; i++) v[i] = _mm512_setzero_ps();
  for (int s = 0; s < nseg; s++) {
    const float *gb = gy + seg[s].img * g->K * P + seg[s].p;
    const int64_t xo = seg[s].xo, len = seg[s].len;
    for (int64_t p = 0; p < len; p += 16) {
      const __mmask16 m = first_lanes(len - p);
      __m512 a[PW_K];
#pragma GCC unroll 6
      for (int i = 0; i < PW_K; i++) {
        a[i] = _mm512_maskz_loadu_ps(m, gb + go[i] + p);
        /* in a register: GCC would fold the load into each of the four FMAs
        ** that use it, 28 loads a step for 24 FMAs (load-bound, 150 GFLOP/s
        ** with all in L1; 195 so) */
        __asm__("" : "+v"(a[i]));
      }
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) {
        __m512 b = _mm512_load_ps(xr[j] + xo + p);
#pragma GCC unroll 6
        for (int i = 0; i < PW_K; i++) v[4 * i + j] = _mm512_fmadd_ps(a[i], b, v[4 * i + j]);
      }
    }
  }
  _mm512_store_ps(acc, _mm512_add_ps(_mm512_load_ps(acc), hsum16(v)));
  _mm512_store_ps(acc + 16, _mm512_add_ps(_mm512_load_ps(acc + 16), hsum16(v + 16)));
}

/* prefetch what output pixels p .. p+len-1 (a run) read of the plane pln
** (of x).  Inlined: as a call, the 64->128 stride-2 bwd_weight below ran
** 20 % slower (measured, not understood) */
static inline __attribute__((always_inline)) void prefetch_run(const float *pln, int64_t p, int64_t len,
                                                              const geom *g) {
  if (g->sh == 1 && g->sw == 1) {
    for (int64_t i = 0; i < len; i += 16) __builtin_prefetch(pln + p + i);
    return;
  }
  const float *sr = pln + p / g->Wo * g->sh * g->W; /* every sh-th row, the whole row */
  for (int64_t r = 0, nrow = (p % g->Wo + len + g->Wo - 1) / g->Wo; r < nrow; r++)
    for (int64_t i = 0; i < g->W; i += 16) __builtin_prefetch(sr + r * g->sh * g->W + i);
}

/* xs (C rows at xs + c*ld) <- x's inputs of the output pixels in the runs
** seg (pw_segments), each run padded with zeros to 16.  While a run of one
** channel is copied, the same run of the next is prefetched: 64->128
** stride 2 @32 +11-17 % at 1 thread (and a few % at 2), 64->256 stride 1
** +5-7 %, against prefetching the next chunk's x a share at a time during
** the kernel (by the time the copy came to them much of it had left L2,
** pushed out by gy going through) */
static void pw_gather(float *xs, int64_t ld, const float *x, const geom *g, const pwseg *seg, int nseg) {
  const int64_t HW = g->H * g->W;
  const int strided = g->sh != 1 || g->sw != 1;
  for (int64_t c = 0; c < g->C; c++)
    for (int s = 0; s < nseg; s++) {
      const int64_t p = seg[s].p, len = seg[s].len;
      const float *pln = x + (seg[s].img * g->C + c) * HW;
      float *o = xs + c * ld + seg[s].xo;
      if (c + 1 < g->C) /* the next channel's inputs of this run, while these are copied */
        prefetch_run(pln + HW, p, len, g);
      if (!strided) {
        for (int64_t i = 0; i < len; i += 16) /* the last vector's tail: zeros */
          _mm512_store_ps(o + i, _mm512_maskz_loadu_ps(first_lanes(len - i), pln + p + i));
      } else { /* output row by output row: every sw-th of every sh-th row */
        float *e = o;
        const float *sr = pln + p / g->Wo * g->sh * g->W; /* the input row of the first output row */
        for (int64_t ow = p % g->Wo, left = len; left > 0; ow = 0, sr += g->sh * g->W) {
          const int64_t l = g->Wo - ow < left ? g->Wo - ow : left;
          if (g->sw == 2)
            for (int64_t i = 0; i < l; i += 16) {
              __mmask16 m = first_lanes(l - i);
              _mm512_mask_storeu_ps(e + i, m, load_lanes(_mm512_setzero_ps(), m, sr + 2 * (ow + i), 2));
            }
          else
            for (int64_t i = 0; i < l; i++) e[i] = sr[(ow + i) * g->sw];
          e += l;
          left -= l;
        }
        for (; (e - o) % 16; e++) *e = 0.0f;
      }
    }
}

static int pw_bwd_weight(float *gw, const float *x, const float *gy, const geom *g) {
  const int64_t K = g->K, C = g->C, P = g->Ho * g->Wo, ncol = g->N * P;
  const int64_t kb = (K + PW_K - 1) / PW_K, cbn = (C + 3) / 4, nacc = kb * cbn * 32;
  /* chunks of pixels: xs (C rows) in half of L2, PW_K rows of gy and 4 of
  ** xs (10 x 4 KB) in L1.  xs is copied into place so that the rows of
  ** different images do not land on the same few cache sets (images are a
  ** multiple of 4 KB apart) */
  int64_t pc = (128 << 10) / C;
  pc = pc > 1024 ? 1024 : pc < 64 ? 64 : pc;
  pc = pc / 16 * 16;
  const int64_t nch = (ncol + pc - 1) / pc, mseg = pc / P + 2, ld = pc + 16 * mseg; /* room for the padding */
  int nthr = md_num_threads_internal();
  int par = nthr > 1 && nch >= 2 * nthr && !IN_PARALLEL;
  int nt = par ? nthr : 1;
  const int64_t slice = nacc + C * ld + MD_UKR_SLACK;
  float *scr = md_alloc(sizeof(float) * (size_t)(slice * nt));
  pwseg *segs = malloc(sizeof(pwseg) * (size_t)(mseg * nt));
  if (!scr || !segs) {
    md_free(scr);
    free(segs);
    md_set_error("conv2d_bwd_weight: out of memory");
    return 0;
  }
  for (int t = 0; t < nt; t++) /* (all: the team may have fewer threads than asked) */
    memset(scr + t * slice, 0, sizeof(float) * (size_t)nacc);
#pragma omp parallel num_threads(nt) if (par)
  {
    int tid = thread_id(), nth = team_size();
    float *acc = scr + tid * slice, *xs = acc + nacc;
    pwseg *seg = segs + tid * mseg;
    const int64_t ch1 = nch * (tid + 1) / nth;
    for (int64_t ch = nch * tid / nth; ch < ch1; ch++) {
      int64_t q0 = ch * pc, n = ncol - q0 < pc ? ncol - q0 : pc;
      const int nseg = pw_segments(seg, q0, n, P);
      pw_gather(xs, ld, x, g, seg, nseg);
      for (int64_t i = 0; i < kb; i++) {
        /* while this block runs: the next rows of gy */
        if (i + 1 < kb) prefetch_cols(g, gy, 0, PW_K * (i + 1), PW_K * (i + 2), q0, n);
        for (int64_t j = 0; j < cbn; j++)
          pw_block(acc + (i * cbn + j) * 32, gy, xs, ld, seg, nseg, PW_K * i, 4 * j, g);
      }
    }
    /* gw <- the sum of the threads' blocks (rows past K not kept), the
    ** rows shared out once all are done (on one thread after the region,
    ** 16-30 us of a 64->128 stride-2 @32 at 2 threads, ~600 us) */
#pragma omp barrier
    for (int64_t k = K * tid / nth; k < K * (tid + 1) / nth; k++)
      for (int64_t c = 0; c < C; c++) {
        float v = 0.0f;
        for (int t = 0; t < nt; t++)
          v += scr[t * slice + ((k / PW_K) * cbn + c / 4) * 32 + (k % PW_K) * 4 + c % 4];
        gw[k * C + c] = v;
      }
  }
  md_free(scr);
  free(segs);
  return 1;
}

/* whether pw_bwd_weight computes this bwd_weight */
static int pw_ok(const geom *g) {
  const char *e = getenv("MD_CONV_PW");
  return !(e && *e == '0') && is_1x1(g) && g->G == 1 && g->K >= 16 && g->C >= 16 && g->C <= 512 &&
         g->Ho * g->Wo >= 256;
}
#endif
/* }====================================================== */

/* {====================================================== choosing a kernel
** 0 when out of memory (the error set) */
static int conv_forward(float *y, const float *x, const float *w, const float *b, const geom *g) {
  if (is_depthwise(g)) {
    dw_forward(y, x, w, b, g);
    return 1;
  }
  if (cm_ok(g, 0)) return cm_conv(0, y, x, w, b, g);
  if (packed_ok(g, g->K)) return packed_conv(y, x, w, 0, b, g, g->K, NULL);
  return gemm_forward(y, x, w, b, g);
}

static int conv_bwd_input(float *gx, const float *gy, const float *w, const geom *g) {
  geom f;
  if (is_depthwise(g)) {
    dw_bwd_input(gx, gy, w, g);
    return 1;
  }
  if (cm_ok(g, 1)) return cm_conv(1, gx, gy, w, NULL, g);
  if (is_strided_pointwise(g)) return sub_bwd_input(gx, gy, w, g);
  if (bwd_input_as_forward(&f, g) && packed_ok(&f, g->C)) return packed_conv(gx, gy, w, 1, NULL, &f, g->C, NULL);
  return gemm_bwd_input(gx, gy, w, g);
}

static int conv_bwd_weight(float *gw, const float *x, const float *gy, const geom *g) {
  if (is_depthwise(g)) {
    dw_bwd_weight(gw, x, gy, g);
    return 1;
  }
#ifdef __AVX512F__
  if (pw_ok(g)) return pw_bwd_weight(gw, x, gy, g);
#endif
  if (packed_ok(g, g->K)) return packed_bwd_weight(gw, x, gy, g);
  return gemm_bwd_weight(gw, x, gy, g);
}
/* }====================================================== */

/* {====================================================== the ops */
static const char *pstr(const geom *g) {
  static _Thread_local char buf[4][96];
  static _Thread_local int which;
  char *b = buf[which++ & 3];
  snprintf(b, 96, "stride %lldx%lld, padding %lldx%lld, dilation %lldx%lld, groups %lld",
           (long long)g->sh, (long long)g->sw, (long long)g->ph, (long long)g->pw, (long long)g->dh,
           (long long)g->dw, (long long)g->G);
  return b;
}

/* conv2d(x, w, b):  gx = bwd_input(g, w), gw = bwd_weight(x, g), gb = sum of
** g over N, Ho, Wo */
static md_status conv2d_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_conv_params p = params_of(n);
  if (need[0] && !(gin[0] = md_conv2d_bwd_input(g, n->in[1], n->ip[7], n->ip[8], p))) return MD_ERR;
  if (need[1] && !(gin[1] = md_conv2d_bwd_weight(n->in[0], g, n->ip[9], n->ip[10], p))) return MD_ERR;
  if (need[2] && !(gin[2] = md_sum(g, 3, (const int[]){0, 2, 3}, 0))) return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_CONV2D = {"conv2d", conv2d_bw};

md_tensor *md_conv2d(const md_tensor *x, const md_tensor *w, const md_tensor *b, md_conv_params p) {
  static const char *op = "conv2d";
  if (!md_check_f32(op, "x", x) || !md_check_f32(op, "w", w)) return NULL;
  if (b && !md_check_f32(op, "b", b)) return NULL;
  if (x->ndim != 4 || w->ndim != 4) {
    cerr(op, "expected x (N,C,H,W) and w (K,C/groups,R,S), got x %s and w %s", md_shp(x), md_shp(w));
    return NULL;
  }
  geom g;
  char what[160];
  snprintf(what, sizeof what, "x %s, w %s", md_shp(x), md_shp(w));
  if (!fill_geom(op, &g, x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2],
                 w->shape[3], p, what))
    return NULL;
  if (w->shape[1] * g.G != g.C) {
    cerr(op, "x %s has %lld channels but w %s with groups %lld expects %lld", md_shp(x),
           (long long)g.C, md_shp(w), (long long)g.G, (long long)(w->shape[1] * g.G));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != g.K)) {
    cerr(op, "bias b %s must be a vector of the %lld output channels of w %s", md_shp(b),
           (long long)g.K, md_shp(w));
    return NULL;
  }
  md_tensor *tx, *tw, *tb = NULL;
  const float *px = md_cdata(x, &tx), *pw = md_cdata(w, &tw), *pb = b ? md_cdata(b, &tb) : NULL;
  md_tensor *out = NULL;
  if (px && pw && (pb || !b)) out = md_new(4, (const int64_t[]){g.N, g.K, g.Ho, g.Wo}, MD_F32);
  if (out && md_numel(out) > 0) {
    if (!conv_forward(out->data, px, pw, pb, &g)) {
      md_release(out);
      out = NULL;
    }
  }
  md_release(tx);
  md_release(tw);
  md_release(tb);
  md_node *nd;
  out = md_finish(out, &OP_CONV2D, 3, (const md_tensor *const[]){x, w, b}, &nd);
  if (out && nd) save_params(nd, &g);
  return out;
}

/* bwd_input(gy, w) is linear in each: <gg, bwd_input(gy, w)> = <gy, conv2d(gg, w)>,
** so d/dgy = conv2d(gg, w) and d/dw = bwd_weight(gg, gy) */
static md_status bwd_input_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need, md_scope *s) {
  md_conv_params p = params_of(n);
  if (need[0] && !(gin[0] = md_conv2d(g, n->in[1], NULL, p))) return MD_ERR;
  if (need[1] && !(gin[1] = md_conv2d_bwd_weight(g, n->in[0], n->ip[9], n->ip[10], p))) return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_BWD_INPUT = {"conv2d_bwd_input", bwd_input_bw};

md_tensor *md_conv2d_bwd_input(const md_tensor *gy, const md_tensor *w, int64_t H, int64_t W,
                               md_conv_params p) {
  static const char *op = "conv2d_bwd_input";
  if (!md_check_f32(op, "gy", gy) || !md_check_f32(op, "w", w)) return NULL;
  if (gy->ndim != 4 || w->ndim != 4) {
    cerr(op, "expected gy (N,K,Ho,Wo) and w (K,C/groups,R,S), got gy %s and w %s", md_shp(gy),
           md_shp(w));
    return NULL;
  }
  if (H < 1 || W < 1) {
    cerr(op, "input size %lldx%lld must be positive", (long long)H, (long long)W);
    return NULL;
  }
  if (gy->shape[1] != w->shape[0]) {
    cerr(op, "gy %s has %lld channels but w %s has %lld output channels", md_shp(gy),
           (long long)gy->shape[1], md_shp(w), (long long)w->shape[0]);
    return NULL;
  }
  geom g;
  char what[160];
  snprintf(what, sizeof what, "gy %s, w %s", md_shp(gy), md_shp(w));
  if (!fill_geom(op, &g, gy->shape[0], w->shape[1] * p.groups, H, W, w->shape[0], w->shape[2],
                 w->shape[3], p, what))
    return NULL;
  if (g.Ho != gy->shape[2] || g.Wo != gy->shape[3]) {
    cerr(op, "gy %s does not match input size %lldx%lld with kernel %lldx%lld (%s), which gives "
               "output size %lldx%lld", md_shp(gy), (long long)H, (long long)W, (long long)g.R,
           (long long)g.S, pstr(&g), (long long)g.Ho, (long long)g.Wo);
    return NULL;
  }
  md_tensor *ty, *tw;
  const float *py = md_cdata(gy, &ty), *pw = md_cdata(w, &tw);
  md_tensor *out = NULL;
  if (py && pw) out = md_new(4, (const int64_t[]){g.N, g.C, H, W}, MD_F32);
  if (out && md_numel(out) > 0) {
    if (!conv_bwd_input(out->data, py, pw, &g)) {
      md_release(out);
      out = NULL;
    }
  }
  md_release(ty);
  md_release(tw);
  md_node *nd;
  out = md_finish(out, &OP_BWD_INPUT, 2, (const md_tensor *const[]){gy, w}, &nd);
  if (out && nd) save_params(nd, &g);
  return out;
}

/* bwd_weight(x, gy): <gg, bwd_weight(x, gy)> = <gy, conv2d(x, gg)>, so
** d/dx = bwd_input(gy, gg) and d/dgy = conv2d(x, gg) */
static md_status bwd_weight_bw(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                               md_scope *s) {
  md_conv_params p = params_of(n);
  if (need[0] && !(gin[0] = md_conv2d_bwd_input(n->in[1], g, n->ip[7], n->ip[8], p))) return MD_ERR;
  if (need[1] && !(gin[1] = md_conv2d(n->in[0], g, NULL, p))) return MD_ERR;
  return MD_OK;
}
static const md_opdef OP_BWD_WEIGHT = {"conv2d_bwd_weight", bwd_weight_bw};

md_tensor *md_conv2d_bwd_weight(const md_tensor *x, const md_tensor *gy, int64_t R, int64_t S,
                                md_conv_params p) {
  static const char *op = "conv2d_bwd_weight";
  if (!md_check_f32(op, "x", x) || !md_check_f32(op, "gy", gy)) return NULL;
  if (x->ndim != 4 || gy->ndim != 4) {
    cerr(op, "expected x (N,C,H,W) and gy (N,K,Ho,Wo), got x %s and gy %s", md_shp(x), md_shp(gy));
    return NULL;
  }
  if (R < 1 || S < 1) {
    cerr(op, "kernel size %lldx%lld must be positive", (long long)R, (long long)S);
    return NULL;
  }
  if (x->shape[0] != gy->shape[0]) {
    cerr(op, "x %s and gy %s have different batch sizes", md_shp(x), md_shp(gy));
    return NULL;
  }
  geom g;
  char what[160];
  snprintf(what, sizeof what, "x %s, gy %s, kernel %lldx%lld", md_shp(x), md_shp(gy), (long long)R,
           (long long)S);
  if (!fill_geom(op, &g, x->shape[0], x->shape[1], x->shape[2], x->shape[3], gy->shape[1], R, S, p,
                 what))
    return NULL;
  if (g.Ho != gy->shape[2] || g.Wo != gy->shape[3]) {
    cerr(op, "gy %s does not match x %s with kernel %lldx%lld (%s), which gives output size "
               "%lldx%lld", md_shp(gy), md_shp(x), (long long)R, (long long)S, pstr(&g),
           (long long)g.Ho, (long long)g.Wo);
    return NULL;
  }
  md_tensor *tx, *ty;
  const float *px = md_cdata(x, &tx), *py = md_cdata(gy, &ty);
  md_tensor *out = NULL;
  if (px && py) out = md_new(4, (const int64_t[]){g.K, g.C / g.G, R, S}, MD_F32);
  if (out && md_numel(out) > 0) {
    if (!conv_bwd_weight(out->data, px, py, &g)) {
      md_release(out);
      out = NULL;
    }
  }
  md_release(tx);
  md_release(ty);
  md_node *nd;
  out = md_finish(out, &OP_BWD_WEIGHT, 2, (const md_tensor *const[]){x, gy}, &nd);
  if (out && nd) save_params(nd, &g);
  return out;
}
/* }====================================================== */
