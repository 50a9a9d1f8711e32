/*
** internal.h -- what the files of core/ share and nothing outside core/ sees:
** storage, the autograd node, op definitions, argument checks and helpers
** for writing ops.
*/
#ifndef MD_INTERNAL_H
#define MD_INTERNAL_H

#include "md.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MD_ALIGN 64
#define MD_MAX_SAVED 3
#define MD_MAX_IP 24
#define MD_MAX_FP 4

#ifdef MD_DEBUG
#include <stdio.h>
#define md_assert(c, msg)                                                                          \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "%s:%d: assertion '%s' failed: %s\n", __FILE__, __LINE__, #c, msg);         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)
#else
#define md_assert(c, msg) ((void)0)
#endif

/* {====================================================== storage */
struct md_storage {
  void *data; /* MD_ALIGN-aligned */
  size_t nbytes;
  int refcount;
};
/* }====================================================== */

/* {====================================================== autograd node
** One node per recorded op; a node has exactly one output tensor (which
** retains it through grad_fn).  The node retains its inputs; it never points
** to its output, so the graph has no cycles and refcounting frees it.
** Backward formulas recompute what they need from the inputs (sigmoid's
** output, softmax, batch statistics) instead of saving the output.  */
typedef struct md_hook {
  md_hook_fn fn;
  void *ud;
  md_hook_free_fn free_ud;
  struct md_hook *next;
} md_hook;

/* g: the gradient w.r.t. the node's output.  need[i]: whether gin[i] is
** wanted.  gin[i] receives a new reference (or stays NULL for "no
** gradient"); temporaries go into the scope s.  Must use public md_* ops only,
** so that with grad mode on (create_graph) the result is differentiable. */
typedef md_status (*md_backward_fn)(md_node *n, md_tensor *g, md_tensor **gin, const int *need,
                                    md_scope *s);

typedef struct md_opdef {
  const char *name;
  md_backward_fn backward;
} md_opdef;

struct md_node {
  const md_opdef *op;
  int n_in;
  md_tensor **in;                  /* retained; in[i] may be NULL (optional input) */
  md_tensor *saved[MD_MAX_SAVED];  /* retained, not differentiable (indices, masks) */
  int64_t ip[MD_MAX_IP];           /* integer parameters (stride, dims, shapes) */
  float fp[MD_MAX_FP];             /* float parameters */
  int out_ndim;                    /* output shape, for checks and shape-only backward */
  int64_t out_shape[MD_MAX_DIMS];
  int refcount;
  int released; /* saved data freed by a retain_graph=0 pass */
  uint64_t seq; /* creation order: a topological order */
  md_hook *hooks;
  /* engine scratch */
  md_tensor *gacc;
  unsigned epoch;
  int run, reach, target;
};

/* Record a node for out if grad mode is on and any float input requires grad.
** Returns MD_OK (with *node set, or NULL when nothing was recorded) or an
** error.  The caller fills node->ip / fp / saved after the call. */
md_status md_record(md_tensor *out, const md_opdef *op, int n_in, const md_tensor *const *in,
                    md_node **node);
void md_node_release(md_node *n);
/* convenience: record and return out, or release out and return NULL on
** failure; params copied from ip[0..nip) */
md_tensor *md_finish(md_tensor *out, const md_opdef *op, int n_in, const md_tensor *const *in,
                     md_node **node);
/* }====================================================== */

/* {====================================================== helpers for ops */
/* error with the op name first: md_err("conv2d", "x is %s, w is %s", ...) */
#define md_err(op, ...) md_set_error(op ": " __VA_ARGS__)
/* fail if t is NULL (an earlier error) or not float/int as required */
int md_check_f32(const char *op, const char *arg, const md_tensor *t);
int md_check_i64(const char *op, const char *arg, const md_tensor *t);
int md_check_ndim(const char *op, const char *arg, const md_tensor *t, int ndim);
/* normalise a possibly negative dim; -1 with error if out of range */
int md_wrap_dim(const char *op, int dim, int ndim);
/* a dim as messages show it (see md_set_dim_base) */
int md_dim_show(int dim);
/* short shape string in a rotating static buffer (for messages) */
const char *md_shp(const md_tensor *t);
const char *md_shp_raw(int ndim, const int64_t *shape);

void *md_alloc(size_t nbytes); /* aligned; sets ENOMEM error */
void md_free(void *p);

/* a new contiguous tensor like shape/dtype */
md_tensor *md_new(int ndim, const int64_t *shape, md_dtype dt);
md_tensor *md_new_like(const md_tensor *t);
/* view sharing x's storage with given shape/stride/offset (in elements from x->data) */
md_tensor *md_view_raw(const md_tensor *x, int ndim, const int64_t *shape, const int64_t *stride,
                       int64_t offset);
int64_t md_shape_numel(int ndim, const int64_t *shape);
/* contiguous float pointer: if x is contiguous returns x->data, else fills
** *tmp with a contiguous copy (release it after) */
const float *md_cdata(const md_tensor *x, md_tensor **tmp);
void md_fill_strides(int ndim, const int64_t *shape, int64_t *stride);
/* broadcast two shapes; returns ndim or -1 with error */
int md_broadcast_shape(const char *op, const md_tensor *a, const md_tensor *b, int64_t *out);

/* scalar-valued convenience ops used by backward formulas */
md_tensor *md_reshape_as(const md_tensor *x, const md_tensor *like);
md_tensor *md_reshape_to(const md_tensor *x, int ndim, const int64_t *shape);
md_tensor *md_expand_to(const md_tensor *x, int ndim, const int64_t *shape);

int md_num_threads_internal(void);
/* OpenMP: parallelise loops with at least this much work.  Every parallel
** region needs all threads on a core at once; on a busy machine a worker may
** wait a scheduler slice (milliseconds) to start, so many small regions made
** a small VGG step 10-50x slower with 2 threads than with 1 (measured with
** load 4 on 2 cores).  Only loops of ~100 us or more are split. */
#define MD_PAR_MIN (1 << 18)

/* sgemm: C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta*C, strides in elements.
** md_sgemm picks BLIS's thread count by size; md_sgemm_1t uses only the
** calling thread, so it is safe inside an OpenMP parallel region (md_init
** must have run before the region: it chooses BLIS's kernels). */
void md_sgemm_1t(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                 int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                 int64_t rsc, int64_t csc);
void md_sgemm(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t rsa, int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta,
              float *c, int64_t rsc, int64_t csc);
/* BLIS's sgemm micro-kernel, for kernels that pack their own operands (the
** packed convolution path in conv.c).  It computes the mr x nr block
** c = a b + beta c (beta 0: c is only written), where a is k columns of mr
** floats (a micro-panel of A, column i at a + i*mr) and b is k rows of nr
** floats; both 64-byte aligned.  Filled by md_ukr_get after md_init.
** The kernels read ahead: keep MD_UKR_SLACK floats of memory after the
** end of any a or b (skx reads a whole column of a past its last one). */
#define MD_UKR_SLACK 64
typedef struct md_ukr {
  int mr, nr, kc, mc;   /* register block and BLIS's cache blocks */
  int prefers_cols;     /* c is best stored with rs 1 (else cs 1) */
  void (*fn)(void);     /* the kernel (BLIS's gemm_ukr_ft) */
  void *cntx;
} md_ukr;
void md_ukr_get(md_ukr *u);
void md_ukr_call(const md_ukr *u, int64_t k, const float *a, const float *b, float beta, float *c,
                 int64_t rsc, int64_t csc, const float *a_next, const float *b_next);
/* }====================================================== */

#endif
