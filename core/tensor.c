/*
** tensor.c -- errors, library set-up, storage, tensor creation, random
** numbers, raw views and element access.
*/
#include "internal.h"

#include <blis.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* {====================================================== errors */
static _Thread_local char errbuf[1024];
static _Thread_local md_status errstatus = MD_OK;
static volatile int interrupt_flag;

static _Thread_local int dim_base;
void md_set_dim_base(int base) { dim_base = base; }
int md_dim_show(int d) { return d >= 0 ? d + dim_base : d; }
const char *md_last_error(void) { return errbuf[0] ? errbuf : "no error"; }
md_status md_last_status(void) { return errstatus; }
void md_clear_error(void) {
  errbuf[0] = 0;
  errstatus = MD_OK;
}
void md_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  errstatus = MD_ERR;
}
static void set_enomem(size_t n) {
  snprintf(errbuf, sizeof errbuf, "out of memory allocating %zu bytes", n);
  errstatus = MD_ENOMEM;
}
volatile int *md_interrupt_flag(void) { return &interrupt_flag; }
/* }====================================================== */

/* {====================================================== set-up */
static int initialised;
static int nthreads = 1;
static char blasinfo[160];

/* BLIS picks its kernels at the first call from BLIS_ARCH_TYPE.  Debian's
** 0.9 build chooses "haswell" on AVX-512 AMD cores although its skx kernels
** run there and are ~1.8x faster for sgemm (measured: 190 vs 345 GFLOP/s on
** 2 cores), so choose skx ourselves when the CPU has AVX-512F and the user
** did not choose (MD_BLIS_ARCH / BLIS_ARCH_TYPE override). */
static void choose_blis_arch(void) {
  const char *user = getenv("MD_BLIS_ARCH");
  if (user && *user) {
    setenv("BLIS_ARCH_TYPE", user, 1);
    return;
  }
  if (getenv("BLIS_ARCH_TYPE")) return;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    char v[16];
    snprintf(v, sizeof v, "%d", (int)BLIS_ARCH_SKX);
    setenv("BLIS_ARCH_TYPE", v, 1);
  }
#endif
}

void md_init(void) {
  if (initialised) return;
  initialised = 1;
  /* Tensors of a training step are freed and made again at every step.
  ** glibc serves blocks above 128 KB with mmap and returns them at free,
  ** so each step page-faulted all its activations anew (19% of a small
  ** VGG step, measured with perf).  Keep them in the heap for reuse. */
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1024 << 20);
  choose_blis_arch();
  int n = 0;
  const char *e = getenv("MD_NUM_THREADS");
  if (e && atoi(e) > 0) n = atoi(e);
#ifdef _OPENMP
  if (n <= 0) n = omp_get_max_threads();
#endif
  if (n <= 0) n = 1;
  md_set_num_threads(n);
}

void md_set_num_threads(int n) {
  if (!initialised) md_init();
  if (n < 1) n = 1;
  nthreads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  bli_thread_set_num_threads(n);
  snprintf(blasinfo, sizeof blasinfo, "BLIS %s, kernels %s, %d thread%s",
           bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()), n, n == 1 ? "" : "s");
}
int md_get_num_threads(void) {
  md_init();
  return nthreads;
}
int md_num_threads_internal(void) { return nthreads; }
const char *md_blas_info(void) {
  md_init();
  return blasinfo;
}

void md_sgemm_1t(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                 int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                 int64_t rsc, int64_t csc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    md_sgemm(0, 0, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    return;
  }
  float al = alpha, be = beta;
  rntm_t rntm;
  bli_rntm_init(&rntm);
  bli_rntm_set_num_threads(1, &rntm);
  bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &al, (float *)a,
               (inc_t)rsa, (inc_t)csa, (float *)b, (inc_t)rsb, (inc_t)csb, &be, c, (inc_t)rsc,
               (inc_t)csc, NULL, &rntm);
}

void md_ukr_get(md_ukr *u) {
  md_init();
  cntx_t *cx = bli_gks_query_cntx();
  u->mr = (int)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MR, cx);
  u->nr = (int)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NR, cx);
  u->kc = (int)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_KC, cx);
  u->mc = (int)bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MC, cx);
  u->prefers_cols = bli_cntx_l3_nat_ukr_prefers_cols_dt(BLIS_FLOAT, BLIS_GEMM_UKR, cx);
  u->fn = (void (*)(void))bli_cntx_get_l3_nat_ukr_dt(BLIS_FLOAT, BLIS_GEMM_UKR, cx);
  u->cntx = cx;
}

typedef void (*sgemm_ukr)(dim_t m, dim_t n, dim_t k, float *alpha, float *a, float *b, float *beta, float *c,
                          inc_t rs_c, inc_t cs_c, auxinfo_t *data, cntx_t *cntx);

void md_ukr_call(const md_ukr *u, int64_t k, const float *a, const float *b, float beta, float *c,
                 int64_t rsc, int64_t csc, const float *a_next, const float *b_next) {
  float one = 1.0f;
  auxinfo_t aux;
  memset(&aux, 0, sizeof aux);
  bli_auxinfo_set_next_a((void *)a_next, &aux);
  bli_auxinfo_set_next_b((void *)b_next, &aux);
  ((sgemm_ukr)u->fn)(u->mr, u->nr, (dim_t)k, &one, (float *)a, (float *)b, &beta, c, (inc_t)rsc, (inc_t)csc, &aux,
                     (cntx_t *)u->cntx);
}

void md_sgemm(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t rsa, int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta,
              float *c, int64_t rsc, int64_t csc) {
  md_init();
  if (m == 0 || n == 0) return;
  if (k == 0) { /* BLIS handles it, but keep beta semantics explicit */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * rsc + j * csc] = beta == 0 ? 0 : beta * c[i * rsc + j * csc];
    return;
  }
  float al = alpha, be = beta;
  /* a small product gains little from a second thread and pays the
  ** fork/join (and, on a loaded machine, waiting for a busy core): below
  ** ~16 MFLOP (~0.1 ms) run it on one.  LeNet-sized layers are all below. */
  rntm_t rntm;
  bli_rntm_init(&rntm);
  if ((double)m * (double)n * (double)k < (double)(1 << 23) || nthreads == 1)
    bli_rntm_set_num_threads(1, &rntm);
  else
    bli_rntm_set_num_threads(nthreads, &rntm);
  bli_sgemm_ex(transa ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, transb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
               (dim_t)m, (dim_t)n, (dim_t)k, &al, (float *)a, (inc_t)rsa, (inc_t)csa, (float *)b,
               (inc_t)rsb, (inc_t)csb, &be, c, (inc_t)rsc, (inc_t)csc, NULL, &rntm);
}
/* }====================================================== */

/* {====================================================== memory */
static size_t bytes_in_use, tensors_alive;
size_t md_bytes_in_use(void) { return bytes_in_use; }
size_t md_tensors_alive(void) { return tensors_alive; }

void *md_alloc(size_t nbytes) {
  /* one line more than asked: BLIS's haswell edge kernels read up to 16
  ** bytes past the end of C, which may be a tensor's data (found with a
  ** guard-page allocator) */
  size_t n = (nbytes + MD_ALIGN - 1) / MD_ALIGN * MD_ALIGN + MD_ALIGN;
  void *p = aligned_alloc(MD_ALIGN, n);
  if (!p) set_enomem(nbytes);
  return p;
}
void md_free(void *p) { free(p); }

static md_storage *storage_new(size_t nbytes) {
  md_storage *s = malloc(sizeof *s);
  if (!s) {
    set_enomem(sizeof *s);
    return NULL;
  }
  s->data = md_alloc(nbytes);
  if (!s->data) {
    free(s);
    return NULL;
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  __atomic_add_fetch(&bytes_in_use, nbytes, __ATOMIC_RELAXED);
  return s;
}
static void storage_release(md_storage *s) {
  if (!s || --s->refcount > 0) return;
  __atomic_sub_fetch(&bytes_in_use, s->nbytes, __ATOMIC_RELAXED);
  md_free(s->data);
  free(s);
}

int64_t md_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}
int64_t md_numel(const md_tensor *t) { return md_shape_numel(t->ndim, t->shape); }

void md_fill_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i] > 0 ? shape[i] : 1;
  }
}

static size_t dsize(md_dtype dt) { return dt == MD_I64 ? 8 : 4; }

static md_tensor *tensor_shell(void) {
  md_tensor *t = calloc(1, sizeof *t);
  if (!t) {
    set_enomem(sizeof *t);
    return NULL;
  }
  t->refcount = 1;
  __atomic_add_fetch(&tensors_alive, 1, __ATOMIC_RELAXED); /* loader threads make tensors too */
  return t;
}

md_tensor *md_new(int ndim, const int64_t *shape, md_dtype dt) {
  if (ndim < 0 || ndim > MD_MAX_DIMS) {
    md_set_error("tensor: %d dimensions (at most %d)", ndim, MD_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) {
      md_set_error("tensor: negative size %lld in shape %s", (long long)shape[i],
                   md_shp_raw(ndim, shape));
      return NULL;
    }
  int64_t n = md_shape_numel(ndim, shape);
  if (n > ((int64_t)1 << 40)) {
    md_set_error("tensor: shape %s has too many elements", md_shp_raw(ndim, shape));
    return NULL;
  }
  md_tensor *t = tensor_shell();
  if (!t) return NULL;
  t->storage = storage_new((size_t)n * dsize(dt));
  if (!t->storage) {
    free(t);
    __atomic_sub_fetch(&tensors_alive, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  t->data = t->storage->data;
  t->ndim = ndim;
  t->dtype = dt;
  if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * ndim);
  md_fill_strides(ndim, shape, t->stride);
  return t;
}
md_tensor *md_new_like(const md_tensor *t) { return md_new(t->ndim, t->shape, t->dtype); }

md_tensor *md_view_raw(const md_tensor *x, int ndim, const int64_t *shape, const int64_t *stride,
                       int64_t offset) {
  md_tensor *t = tensor_shell();
  if (!t) return NULL;
  t->storage = x->storage;
  x->storage->refcount++;
  t->data = (char *)x->data + offset * (int64_t)dsize(x->dtype);
  t->ndim = ndim;
  t->dtype = x->dtype;
  if (ndim) {
    memcpy(t->shape, shape, sizeof(int64_t) * ndim);
    memcpy(t->stride, stride, sizeof(int64_t) * ndim);
  }
  return t;
}

md_tensor *md_retain(md_tensor *t) {
  if (t) t->refcount++;
  return t;
}

static void hooks_free(md_hook *h) {
  while (h) {
    md_hook *nx = h->next;
    if (h->free_ud) h->free_ud(h->ud);
    free(h);
    h = nx;
  }
}

void md_release(md_tensor *t) {
  if (!t || --t->refcount > 0) return;
  storage_release(t->storage);
  if (t->grad_fn) md_node_release(t->grad_fn);
  md_release(t->grad);
  md_release(t->gacc_);
  hooks_free(t->hooks);
  __atomic_sub_fetch(&tensors_alive, 1, __ATOMIC_RELAXED);
  free(t);
}

void md_node_release(md_node *n) {
  /* recursion depth is the graph depth (a few frames per op): fine for the
  ** networks we build, whose graphs are a few thousand ops deep at most */
  if (!n || --n->refcount > 0) return;
  for (int i = 0; i < n->n_in; i++) md_release(n->in[i]);
  for (int i = 0; i < MD_MAX_SAVED; i++) md_release(n->saved[i]);
  md_release(n->gacc);
  hooks_free(n->hooks);
  free(n->in);
  free(n);
}

md_tensor *md_empty(int ndim, const int64_t *shape, md_dtype dt) {
  return md_new(ndim, shape, dt);
}
md_tensor *md_full(int ndim, const int64_t *shape, float v) {
  md_tensor *t = md_new(ndim, shape, MD_F32);
  if (!t) return NULL;
  float *p = t->data;
  int64_t n = md_numel(t);
  for (int64_t i = 0; i < n; i++) p[i] = v;
  return t;
}
md_tensor *md_zeros(int ndim, const int64_t *shape) {
  md_tensor *t = md_new(ndim, shape, MD_F32);
  if (t) memset(t->data, 0, (size_t)md_numel(t) * 4);
  return t;
}
md_tensor *md_ones(int ndim, const int64_t *shape) { return md_full(ndim, shape, 1.0f); }
md_tensor *md_scalar(float v) { return md_full(0, NULL, v); }
md_tensor *md_zeros_like(const md_tensor *t) { return t ? md_zeros(t->ndim, t->shape) : NULL; }
md_tensor *md_ones_like(const md_tensor *t) { return t ? md_ones(t->ndim, t->shape) : NULL; }
md_tensor *md_from_data(int ndim, const int64_t *shape, const float *src) {
  md_tensor *t = md_new(ndim, shape, MD_F32);
  if (t && md_numel(t)) memcpy(t->data, src, (size_t)md_numel(t) * 4);
  return t;
}
md_tensor *md_from_i64(int ndim, const int64_t *shape, const int64_t *src) {
  md_tensor *t = md_new(ndim, shape, MD_I64);
  if (t && md_numel(t)) memcpy(t->data, src, (size_t)md_numel(t) * 8);
  return t;
}
md_tensor *md_arange(int64_t n) {
  md_tensor *t = md_new(1, &n, MD_F32);
  if (!t) return NULL;
  float *p = t->data;
  for (int64_t i = 0; i < n; i++) p[i] = (float)i;
  return t;
}
/* }====================================================== */

/* {====================================================== random numbers */
/* xoshiro256** seeded through splitmix64 (public-domain algorithms by
** Blackman & Vigna, written from their description) */
static uint64_t rng[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 1};
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
void md_manual_seed(uint64_t seed) {
  for (int i = 0; i < 4; i++) rng[i] = splitmix(&seed);
}
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
uint64_t md_rand_u64(void) {
  uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0];
  rng[3] ^= rng[1];
  rng[1] ^= rng[2];
  rng[0] ^= rng[3];
  rng[2] ^= t;
  rng[3] = rotl(rng[3], 45);
  return r;
}
double md_rand_uniform01(void) { return (double)(md_rand_u64() >> 11) * (1.0 / 9007199254740992.0); }

md_tensor *md_rand(int ndim, const int64_t *shape) { return md_uniform(ndim, shape, 0.0f, 1.0f); }
md_tensor *md_uniform(int ndim, const int64_t *shape, float lo, float hi) {
  md_tensor *t = md_new(ndim, shape, MD_F32);
  if (!t) return NULL;
  float *p = t->data;
  int64_t n = md_numel(t);
  for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)md_rand_uniform01();
  return t;
}
md_tensor *md_randn(int ndim, const int64_t *shape) {
  md_tensor *t = md_new(ndim, shape, MD_F32);
  if (!t) return NULL;
  float *p = t->data;
  int64_t n = md_numel(t);
  for (int64_t i = 0; i < n; i += 2) { /* Box-Muller, both values used */
    double u1 = md_rand_uniform01(), u2 = md_rand_uniform01();
    if (u1 < 1e-300) u1 = 1e-300;
    double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    p[i] = (float)(r * cos(th));
    if (i + 1 < n) p[i + 1] = (float)(r * sin(th));
  }
  return t;
}
md_tensor *md_randint(int ndim, const int64_t *shape, int64_t lo, int64_t hi) {
  if (hi <= lo) {
    md_set_error("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi);
    return NULL;
  }
  md_tensor *t = md_new(ndim, shape, MD_I64);
  if (!t) return NULL;
  int64_t *p = t->data, n = md_numel(t);
  uint64_t span = (uint64_t)(hi - lo);
  for (int64_t i = 0; i < n; i++) p[i] = lo + (int64_t)(md_rand_u64() % span);
  return t;
}
md_tensor *md_bernoulli(int ndim, const int64_t *shape, float prob) {
  md_tensor *t = md_new(ndim, shape, MD_F32);
  if (!t) return NULL;
  float *p = t->data;
  int64_t n = md_numel(t);
  for (int64_t i = 0; i < n; i++) p[i] = md_rand_uniform01() < prob ? 1.0f : 0.0f;
  return t;
}
/* }====================================================== */

/* {====================================================== access */
int md_is_contiguous(const md_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

static int64_t flat_offset(const md_tensor *t, int64_t flat) {
  int64_t off = 0;
  for (int i = t->ndim - 1; i >= 0; i--) {
    int64_t sz = t->shape[i];
    off += (flat % sz) * t->stride[i];
    flat /= sz;
  }
  return off;
}
double md_get(const md_tensor *t, int64_t flat) {
  int64_t off = flat_offset(t, flat);
  return t->dtype == MD_F32 ? ((const float *)t->data)[off] : (double)((const int64_t *)t->data)[off];
}
int md_set(md_tensor *t, int64_t flat, double v) {
  if (flat < 0 || flat >= md_numel(t)) {
    md_set_error("set: index %lld out of range for %lld elements", (long long)flat,
                 (long long)md_numel(t));
    return MD_ERR;
  }
  int64_t off = flat_offset(t, flat);
  if (t->dtype == MD_F32)
    ((float *)t->data)[off] = (float)v;
  else
    ((int64_t *)t->data)[off] = (int64_t)v;
  return MD_OK;
}
float md_item(const md_tensor *t) {
  if (!t) return NAN;
  if (md_numel(t) != 1) {
    md_set_error("item: tensor of shape %s has %lld elements, not one", md_shp(t),
                 (long long)md_numel(t));
    return NAN;
  }
  return (float)md_get(t, 0);
}

/* iterate all elements of t in logical order, calling back with offsets in
** runs along the last dim */
#define FOR_EACH_ELEM(t, off, body)                                                                \
  do {                                                                                             \
    int64_t idx_[MD_MAX_DIMS] = {0};                                                               \
    int64_t n_ = md_numel(t);                                                                      \
    for (int64_t k_ = 0; k_ < n_; k_++) {                                                          \
      int64_t off = 0;                                                                             \
      for (int d_ = 0; d_ < (t)->ndim; d_++) off += idx_[d_] * (t)->stride[d_];                   \
      body;                                                                                        \
      for (int d_ = (t)->ndim - 1; d_ >= 0; d_--) {                                                \
        if (++idx_[d_] < (t)->shape[d_]) break;                                                    \
        idx_[d_] = 0;                                                                              \
      }                                                                                            \
    }                                                                                              \
  } while (0)

int md_to_float(const md_tensor *t, float *dst) {
  if (t->dtype == MD_F32 && md_is_contiguous(t)) {
    memcpy(dst, t->data, (size_t)md_numel(t) * 4);
    return MD_OK;
  }
  int64_t k = 0;
  if (t->dtype == MD_F32) {
    const float *p = t->data;
    FOR_EACH_ELEM(t, off, dst[k++] = p[off]);
  } else {
    const int64_t *p = t->data;
    FOR_EACH_ELEM(t, off, dst[k++] = (float)p[off]);
  }
  return MD_OK;
}
int md_to_i64(const md_tensor *t, int64_t *dst) {
  int64_t k = 0;
  if (t->dtype == MD_I64) {
    const int64_t *p = t->data;
    FOR_EACH_ELEM(t, off, dst[k++] = p[off]);
  } else {
    const float *p = t->data;
    FOR_EACH_ELEM(t, off, dst[k++] = (int64_t)p[off]);
  }
  return MD_OK;
}

const float *md_cdata(const md_tensor *x, md_tensor **tmp) {
  *tmp = NULL;
  if (md_is_contiguous(x)) return x->data;
  md_tensor *c = md_new(x->ndim, x->shape, MD_F32);
  if (!c) return NULL;
  md_to_float(x, c->data);
  *tmp = c;
  return c->data;
}

int md_same_shape(const md_tensor *a, const md_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

const char *md_shape_str(const md_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  if (t->ndim == 0) snprintf(buf, n, "scalar");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)t->shape[i]);
  return buf;
}
const char *md_shp_raw(int ndim, const int64_t *shape) {
  static _Thread_local char bufs[4][96];
  static _Thread_local int which;
  char *b = bufs[which++ & 3];
  md_tensor tmp;
  tmp.ndim = ndim;
  memcpy(tmp.shape, shape, sizeof(int64_t) * (ndim > 0 ? ndim : 0));
  return md_shape_str(&tmp, b, 96);
}
const char *md_shp(const md_tensor *t) { return t ? md_shp_raw(t->ndim, t->shape) : "(null)"; }

int md_check_f32(const char *op, const char *arg, const md_tensor *t) {
  if (!t) {
    if (md_last_status() == MD_OK) md_set_error("%s: argument '%s' is missing", op, arg);
    return 0;
  }
  if (t->dtype != MD_F32) {
    md_set_error("%s: argument '%s' must be a float tensor, got an integer tensor of shape %s", op,
                 arg, md_shp(t));
    return 0;
  }
  return 1;
}
int md_check_i64(const char *op, const char *arg, const md_tensor *t) {
  if (!t) {
    if (md_last_status() == MD_OK) md_set_error("%s: argument '%s' is missing", op, arg);
    return 0;
  }
  if (t->dtype != MD_I64) {
    md_set_error("%s: argument '%s' must be an integer (int64) tensor, got a float tensor of shape %s",
                 op, arg, md_shp(t));
    return 0;
  }
  return 1;
}
int md_check_ndim(const char *op, const char *arg, const md_tensor *t, int ndim) {
  if (t->ndim != ndim) {
    md_set_error("%s: argument '%s' must have %d dimensions, got shape %s", op, arg, ndim, md_shp(t));
    return 0;
  }
  return 1;
}
int md_wrap_dim(const char *op, int dim, int ndim) {
  int d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= (ndim > 0 ? ndim : 1)) {
    md_set_error("%s: dim %d out of range for a tensor with %d dimensions", op, md_dim_show(dim), ndim);
    return -1;
  }
  return d;
}

int md_requires_grad(const md_tensor *t) { return t && (t->requires_grad || t->grad_fn); }
int md_set_requires_grad(md_tensor *t, int on) {
  if (t->grad_fn) {
    md_set_error("requires_grad: only leaf tensors can change requires_grad (this one comes from %s)",
                 t->grad_fn->op->name);
    return MD_ERR;
  }
  if (on && t->dtype != MD_F32) {
    md_set_error("requires_grad: only float tensors can require gradients");
    return MD_ERR;
  }
  t->requires_grad = on;
  return MD_OK;
}
/* }====================================================== */

/* {====================================================== scopes */
md_tensor *md_scope_add(md_scope *s, md_tensor *t) {
  if (!t) return NULL;
  if (s->n == s->cap) {
    int nc = s->cap ? 2 * s->cap : 16;
    md_tensor **v = realloc(s->v, sizeof *v * (size_t)nc);
    if (!v) { /* keep the tensor alive rather than lose it: leak is better than UAF */
      s->failed = 1;
      set_enomem(sizeof *v * (size_t)nc);
      md_release(t);
      return NULL;
    }
    s->v = v;
    s->cap = nc;
  }
  s->v[s->n++] = t;
  return t;
}
void md_scope_free(md_scope *s) {
  for (int i = 0; i < s->n; i++) md_release(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}
/* }====================================================== */
