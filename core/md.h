/*
** md.h -- the public C API of the mdoctor core: tensors, ops, autograd.
**
** Conventions (see README.md, "The core"):
**  - Every function that returns an md_tensor* returns a NEW reference (refcount
**    owned by the caller, drop it with md_release) or NULL on error.  On error a
**    message naming the op and the shapes is kept in md_last_error().
**  - Ops never keep or steal their arguments' references; they retain what the
**    autograd graph needs.  Passing NULL as a tensor argument is an error that
**    keeps the earlier message, so ops can be chained without checks in between
**    (but the intermediates must still be released: see md_scope below).
**  - Core never calls exit/abort/longjmp on user input.
**  - All float tensors are float32; index/label tensors are int64.
**  - Strides are in elements, row-major.  Ops accept any strides and produce
**    contiguous results unless they are views (reshape of contiguous, permute,
**    transpose, slice, expand, detach).
**  - Grad mode is per thread (md_grad_enabled).  With grad mode on, an op whose
**    inputs require grad records a node; its backward formula is written with the
**    same public ops, so md_grad(..., create_graph=1) gives a differentiable
**    gradient (double backward and beyond).
*/
#ifndef MD_H
#define MD_H

#include <stddef.h>
#include <stdint.h>

#define MD_VERSION "0.1.0"
#define MD_MAX_DIMS 8

/* {====================================================== status & errors */
typedef enum { MD_OK = 0, MD_ERR = -1, MD_ENOMEM = -2, MD_EINTR = -3 } md_status;

const char *md_last_error(void);
/* messages show dims counted from this base (0 as C; the Lua binding sets 1,
** so "dim 3" means what the Lua user typed) */
void md_set_dim_base(int base);
/* printf-style; also used by the Lua binding and datasets/ */
void md_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
md_status md_last_status(void);
void md_clear_error(void);

/* Ctrl-C: a host sets *md_interrupt_flag() from a signal handler; long core
** loops (the autograd engine, between nodes) return MD_EINTR when it is set. */
volatile int *md_interrupt_flag(void);

/* library set-up: threads and BLIS kernels.  Called lazily by the first op
** that needs it; calling it first lets a host choose the thread count. */
void md_init(void);
void md_set_num_threads(int n);
int md_get_num_threads(void);
const char *md_blas_info(void); /* "BLIS 0.9.0, kernels skx, 2 threads" */

/* bytes held by tensor storages right now (drives the Lua GC) */
size_t md_bytes_in_use(void);
size_t md_tensors_alive(void);

/* }====================================================== */

/* {====================================================== tensors */
typedef enum { MD_F32 = 0, MD_I64 = 1 } md_dtype;

typedef struct md_storage md_storage;
typedef struct md_node md_node;
typedef struct md_tensor md_tensor;

/* a gradient hook: called with the gradient flowing into t; return NULL to
** keep it, or a new reference to replace it.  Return (md_tensor*)-1 with an
** error set to fail the backward pass. */
typedef md_tensor *(*md_hook_fn)(void *ud, md_tensor *grad);
typedef void (*md_hook_free_fn)(void *ud);

struct md_tensor {
  md_storage *storage;
  void *data; /* first element (storage base + offset) */
  int64_t shape[MD_MAX_DIMS];
  int64_t stride[MD_MAX_DIMS];
  int ndim;
  md_dtype dtype;
  int refcount;
  int requires_grad; /* leaf flag; non-leaves require grad iff grad_fn */
  md_node *grad_fn;  /* retained; NULL for leaves and constants */
  md_tensor *grad;   /* accumulated by md_backward (leaves only) */
  struct md_hook *hooks; /* leaves: here; non-leaves: on grad_fn */
  void *user;            /* free for hosts (the Lua binding) */
  /* private to the autograd engine */
  md_tensor *gacc_;
  unsigned epoch_;
};

md_tensor *md_retain(md_tensor *t);
void md_release(md_tensor *t); /* NULL is fine */

md_tensor *md_empty(int ndim, const int64_t *shape, md_dtype dt);
md_tensor *md_zeros(int ndim, const int64_t *shape);
md_tensor *md_ones(int ndim, const int64_t *shape);
md_tensor *md_full(int ndim, const int64_t *shape, float v);
md_tensor *md_scalar(float v); /* 0-dim */
md_tensor *md_from_data(int ndim, const int64_t *shape, const float *src);
md_tensor *md_from_i64(int ndim, const int64_t *shape, const int64_t *src);
md_tensor *md_arange(int64_t n); /* float 0..n-1 */
md_tensor *md_zeros_like(const md_tensor *t);
md_tensor *md_ones_like(const md_tensor *t);

/* random numbers: one seeded generator per process (xoshiro256**) */
void md_manual_seed(uint64_t seed);
md_tensor *md_randn(int ndim, const int64_t *shape);
md_tensor *md_rand(int ndim, const int64_t *shape); /* uniform [0,1) */
md_tensor *md_uniform(int ndim, const int64_t *shape, float lo, float hi);
md_tensor *md_randint(int ndim, const int64_t *shape, int64_t lo, int64_t hi);
md_tensor *md_bernoulli(int ndim, const int64_t *shape, float p); /* 0/1 floats */
uint64_t md_rand_u64(void);
double md_rand_uniform01(void);

int64_t md_numel(const md_tensor *t);
int md_is_contiguous(const md_tensor *t);
int md_requires_grad(const md_tensor *t); /* leaf flag or grad_fn */
int md_set_requires_grad(md_tensor *t, int on); /* leaves only */
float md_item(const md_tensor *t); /* one element, float */
/* copy out all elements in logical (row-major) order */
int md_to_float(const md_tensor *t, float *dst);
int md_to_i64(const md_tensor *t, int64_t *dst);
/* element access by flat logical index (slow; for hosts and tests) */
double md_get(const md_tensor *t, int64_t flat);
int md_set(md_tensor *t, int64_t flat, double v);
int md_same_shape(const md_tensor *a, const md_tensor *b);
/* "2x3x4" into buf, returns buf */
const char *md_shape_str(const md_tensor *t, char *buf, size_t n);

/* in-place, never recorded (optimisers, running stats, init); they refuse a
** leaf that requires grad only while grad mode is on. */
int md_copy_(md_tensor *dst, const md_tensor *src); /* broadcast src */
int md_fill_(md_tensor *t, float v);
int md_axpy_(md_tensor *y, float a, const md_tensor *x); /* y += a*x */
int md_scale_(md_tensor *t, float a);
/* }====================================================== */

/* {====================================================== grad mode */
int md_grad_enabled(void);
int md_set_grad_enabled(int on); /* returns previous */
/* }====================================================== */

/* {====================================================== ops
** Every op below is differentiable in all float inputs unless marked
** "no grad" (its result never requires grad).  dims arrays may hold negative
** dims (counted from the end).  */

/* views (share storage) */
md_tensor *md_reshape(const md_tensor *x, int ndim, const int64_t *shape); /* -1 allowed once; copies if needed */
md_tensor *md_flatten(const md_tensor *x, int start_dim, int end_dim);
md_tensor *md_permute(const md_tensor *x, const int *perm);
md_tensor *md_transpose(const md_tensor *x, int d0, int d1);
md_tensor *md_slice(const md_tensor *x, int dim, int64_t start, int64_t len); /* narrow */
md_tensor *md_expand(const md_tensor *x, int ndim, const int64_t *shape);    /* broadcast view */
md_tensor *md_detach(const md_tensor *x); /* no grad */
md_tensor *md_contiguous(const md_tensor *x); /* new ref to x if already contiguous */
md_tensor *md_clone(const md_tensor *x);

/* shape plumbing */
md_tensor *md_sum_to(const md_tensor *x, int ndim, const int64_t *shape); /* reduce broadcast dims */
md_tensor *md_pad_dim(const md_tensor *x, int dim, int64_t before, int64_t after, float value);
md_tensor *md_pad2d(const md_tensor *x, int64_t left, int64_t right, int64_t top, int64_t bottom, float value);
md_tensor *md_cat(int n, md_tensor *const *xs, int dim);
/* split into pieces of `sizes` along dim; out[] receives n new refs */
int md_split(const md_tensor *x, int dim, int n, const int64_t *sizes, md_tensor **out);
int md_chunk(const md_tensor *x, int dim, int n, md_tensor **out);

/* elementwise, broadcasting */
md_tensor *md_add(const md_tensor *a, const md_tensor *b);
md_tensor *md_sub(const md_tensor *a, const md_tensor *b);
md_tensor *md_mul(const md_tensor *a, const md_tensor *b);
md_tensor *md_div(const md_tensor *a, const md_tensor *b);
md_tensor *md_add_scalar(const md_tensor *a, float s);
md_tensor *md_mul_scalar(const md_tensor *a, float s);
md_tensor *md_rsub_scalar(const md_tensor *a, float s); /* s - a */
md_tensor *md_neg(const md_tensor *x);
md_tensor *md_abs(const md_tensor *x);
md_tensor *md_exp(const md_tensor *x);
md_tensor *md_log(const md_tensor *x);
md_tensor *md_sqrt(const md_tensor *x);
md_tensor *md_rsqrt(const md_tensor *x);
md_tensor *md_pow_scalar(const md_tensor *x, float p);
md_tensor *md_square(const md_tensor *x);
md_tensor *md_reciprocal(const md_tensor *x);
md_tensor *md_clamp(const md_tensor *x, float lo, float hi); /* -INF/INF for none */
md_tensor *md_relu(const md_tensor *x);
md_tensor *md_relu6(const md_tensor *x);
md_tensor *md_leaky_relu(const md_tensor *x, float slope);
md_tensor *md_sigmoid(const md_tensor *x);
md_tensor *md_tanh(const md_tensor *x);
md_tensor *md_silu(const md_tensor *x);
md_tensor *md_hardsigmoid(const md_tensor *x);
md_tensor *md_hardswish(const md_tensor *x);
/* no grad: 0/1 float masks and signs (the constants of kinked derivatives) */
md_tensor *md_sign(const md_tensor *x);
md_tensor *md_gt_scalar(const md_tensor *x, float s);          /* x > s */
md_tensor *md_ge_scalar(const md_tensor *x, float s);          /* x >= s */
md_tensor *md_lt_scalar(const md_tensor *x, float s);          /* x < s */
md_tensor *md_in_range(const md_tensor *x, float lo, float hi); /* lo < x < hi */
md_tensor *md_eq(const md_tensor *a, const md_tensor *b);      /* broadcasting, f32 0/1 */
md_tensor *md_isfinite_all(const md_tensor *x);                /* 0-dim 1/0 */

/* reductions; dims=NULL,n=0 reduces everything */
md_tensor *md_sum(const md_tensor *x, int n, const int *dims, int keepdim);
md_tensor *md_mean(const md_tensor *x, int n, const int *dims, int keepdim);
md_tensor *md_var(const md_tensor *x, int n, const int *dims, int keepdim, int unbiased);
/* max along one dim; *idx (may be NULL) receives int64 indices (no grad) */
md_tensor *md_max(const md_tensor *x, int dim, int keepdim, md_tensor **idx);
md_tensor *md_argmax(const md_tensor *x, int dim, int keepdim); /* int64, no grad */
md_tensor *md_logsumexp(const md_tensor *x, int dim, int keepdim);

/* indexing: torch.gather / scatter_add semantics on one dim; idx is int64 with
** x's rank.  scatter_add returns zeros of `shape` with src added at idx. */
md_tensor *md_gather(const md_tensor *x, int dim, const md_tensor *idx);
md_tensor *md_scatter_add(int ndim, const int64_t *shape, int dim, const md_tensor *idx, const md_tensor *src);
md_tensor *md_index_select(const md_tensor *x, int dim, const md_tensor *idx); /* idx 1-d */
md_tensor *md_index_add(int64_t size, int dim, const md_tensor *idx, const md_tensor *src);
md_tensor *md_one_hot(const md_tensor *labels, int64_t n); /* f32 [..., n], no grad */

/* linear algebra */
md_tensor *md_matmul(const md_tensor *a, const md_tensor *b); /* [..,m,k]x[..,k,n], 2-d or batched 3-d */
md_tensor *md_linear(const md_tensor *x, const md_tensor *w, const md_tensor *b); /* x[N,in] w[out,in] b[out]|NULL */

/* convolution: x (N,C,H,W), w (K,C/groups,R,S), b (K) or NULL */
typedef struct md_conv_params {
  int stride[2], pad[2], dilation[2], groups;
} md_conv_params;
md_conv_params md_conv_params_default(void);
md_tensor *md_conv2d(const md_tensor *x, const md_tensor *w, const md_tensor *b, md_conv_params p);
/* dx from dy (N,K,Ho,Wo) and w; H,W = input spatial size */
md_tensor *md_conv2d_bwd_input(const md_tensor *gy, const md_tensor *w, int64_t H, int64_t W, md_conv_params p);
/* dw from x and dy; R,S = kernel size */
md_tensor *md_conv2d_bwd_weight(const md_tensor *x, const md_tensor *gy, int64_t R, int64_t S, md_conv_params p);

/* pooling: x (N,C,H,W) */
typedef struct md_pool_params {
  int kernel[2], stride[2], pad[2], dilation[2];
  int ceil_mode, count_include_pad;
} md_pool_params;
md_pool_params md_pool_params_make(int k, int stride, int pad);
/* *idx (may be NULL) receives the int64 argmax per output (flat h*W+w) */
md_tensor *md_max_pool2d(const md_tensor *x, md_pool_params p, md_tensor **idx);
md_tensor *md_avg_pool2d(const md_tensor *x, md_pool_params p);
md_tensor *md_avg_pool2d_bwd(const md_tensor *gy, int64_t H, int64_t W, md_pool_params p);
md_tensor *md_adaptive_avg_pool2d(const md_tensor *x, int64_t oh, int64_t ow);
md_tensor *md_adaptive_avg_pool2d_bwd(const md_tensor *gy, int64_t H, int64_t W);
md_tensor *md_adaptive_max_pool2d(const md_tensor *x, int64_t oh, int64_t ow, md_tensor **idx);

/* resizing: x (N,C,H,W) -> (N,C,oh,ow) */
md_tensor *md_upsample_nearest(const md_tensor *x, int64_t oh, int64_t ow);
md_tensor *md_upsample_nearest_bwd(const md_tensor *gy, int64_t H, int64_t W);
md_tensor *md_upsample_bilinear(const md_tensor *x, int64_t oh, int64_t ow, int align_corners);
md_tensor *md_upsample_bilinear_bwd(const md_tensor *gy, int64_t H, int64_t W, int align_corners);

/* normalisation: x (N,C,...) ; weight, bias (C) or NULL.  In training mode the
** batch statistics are used and running_mean/var (if given) are updated in
** place with momentum (unbiased variance, as PyTorch); in eval mode the
** running statistics are used. */
md_tensor *md_batch_norm(const md_tensor *x, md_tensor *running_mean, md_tensor *running_var,
                         const md_tensor *weight, const md_tensor *bias, int training, float momentum,
                         float eps);

/* activations over a dim, losses */
md_tensor *md_softmax(const md_tensor *x, int dim);
md_tensor *md_log_softmax(const md_tensor *x, int dim);
/* logp (N,C), target int64 (N); reduction 0 none, 1 mean, 2 sum */
md_tensor *md_nll_loss(const md_tensor *logp, const md_tensor *target, int reduction);
md_tensor *md_cross_entropy(const md_tensor *logits, const md_tensor *target, int reduction);
md_tensor *md_mse_loss(const md_tensor *a, const md_tensor *b, int reduction);
/* dropout: training ? x * bernoulli(1-p)/(1-p) : x */
md_tensor *md_dropout(const md_tensor *x, float p, int training);
/* }====================================================== */

/* {====================================================== autograd */
/* gradients of sum_i <grad_outputs[i], outputs[i]> with respect to inputs[].
** grad_outputs may be NULL (ones, outputs must be scalars) or hold NULLs.
** out[j] receives a new ref, or NULL if inputs[j] does not depend on the
** outputs and allow_unused is set (an error otherwise).  With create_graph the
** result is differentiable.  With retain_graph == 0 the saved tensors of the
** nodes run are released, so a second pass over them is an error (PyTorch's
** rule), and memory goes back at once. */
int md_grad(int n_out, md_tensor *const *outputs, md_tensor *const *grad_outputs, int n_in,
            md_tensor *const *inputs, md_tensor **out, int create_graph, int retain_graph,
            int allow_unused);
/* accumulate d(output)/d(leaf) into every leaf's ->grad that requires grad */
int md_backward(md_tensor *output, md_tensor *grad_output, int create_graph, int retain_graph);
/* hooks run when the gradient w.r.t. t is known, before it is used */
int md_register_hook(md_tensor *t, md_hook_fn fn, void *ud, md_hook_free_fn free_ud);
void md_clear_hooks(md_tensor *t);
/* the name of the op that made t ("conv2d"), or NULL for a leaf */
const char *md_grad_fn_name(const md_tensor *t);
/* }====================================================== */

/* {====================================================== scopes
** Collect temporaries in C code: md_scope s = {0}; x = MD_S(&s, md_relu(y));
** ...; md_scope_free(&s).  (Backward formulas get one from the engine.) */
typedef struct md_scope {
  md_tensor **v;
  int n, cap;
  int failed; /* an allocation for the list failed */
} md_scope;
md_tensor *md_scope_add(md_scope *s, md_tensor *t);
void md_scope_free(md_scope *s);
#define MD_S(s, expr) md_scope_add((s), (expr))
/* }====================================================== */

/* {====================================================== safetensors I/O
** (used by checkpoints and the test fixtures).  The writer goes through a
** temporary file and rename(2). */
typedef struct md_named {
  const char *name;
  md_tensor *t;
} md_named;
int md_safetensors_save(const char *path, int n, const md_named *items);
/* *items receives a malloc'd array of n entries with malloc'd names and new
** tensor refs; free with md_named_free */
int md_safetensors_load(const char *path, int *n, md_named **items);
void md_named_free(int n, md_named *items);
/* }====================================================== */

/* {====================================================== masks
** Object masks for Model Doctor's space-wise constraint (core/mask.c).  No
** grad: the results never require grad.  A mask is a float tensor (H,W),
** (N,H,W) or (N,C,H,W) whose last two dims are spatial, 1 = object, 0 =
** background (other values: see each op).
**
** md_mask_resize: to (N,C,h,w) -- (H,W) gives (1,1,h,w), (N,H,W) gives
**   (N,1,h,w).  AREA-AVERAGE then THRESHOLD: an output cell covers the input
**   rectangle [i*H/h, (i+1)*H/h) x [j*W/w, (j+1)*W/w); it is 1 when at least
**   half of that area is object (>= 0.5), else 0.  Why not nearest: nearest
**   reads one input pixel per cell, so thin parts vanish or appear with the
**   grid's alignment (aliasing) and a one-pixel shift can flip whole cells of
**   a 7x7 feature map; the area fraction is what "this cell sees the
**   object" means, is stable under shifts, and equals nearest for integer
**   upscaling.
** md_mask_dilate / md_mask_erode: max / min over the square (Chebyshev)
**   neighbourhood |dy| <= r, |dx| <= r, same shape as the input.  Pixels
**   outside the image are ignored (not background), so an object touching
**   the border is not eaten from the border by erosion.  r = 0 copies.
** md_mask_expand: px > 0 dilates by px, px < 0 erodes by -px, 0 copies.
** md_mask_for_layer: the paper's recipe -- expand by expand_px pixels in
**   INPUT space (30 px worked best), then resize to the layer's h x w. */
md_tensor *md_mask_resize(const md_tensor *mask, int64_t h, int64_t w);
md_tensor *md_mask_dilate(const md_tensor *mask, int r);
md_tensor *md_mask_erode(const md_tensor *mask, int r);
md_tensor *md_mask_expand(const md_tensor *mask, int px);
md_tensor *md_mask_for_layer(const md_tensor *mask, int expand_px, int64_t h, int64_t w);
/* }====================================================== */

#endif
