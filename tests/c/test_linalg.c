/*
** test_linalg.c -- matmul (2-d, batched, broadcast batch, strided views) and
** linear: values against naive double loops, first and second derivatives
** against finite differences, and the error messages.
*/
#include "check.h"

/* reference a (B?,m,k) x b (B?,k,n), batch 1 broadcast, in double */
static md_tensor *ref_matmul(const md_tensor *a, const md_tensor *b) {
  int da = a->ndim, db = b->ndim;
  int64_t m = a->shape[da - 2], k = a->shape[da - 1], n = b->shape[db - 1];
  int64_t ba = da == 3 ? a->shape[0] : 1, bb = db == 3 ? b->shape[0] : 1, B = ba > bb ? ba : bb;
  md_tensor *c = da == 3 || db == 3 ? md_zeros(3, (const int64_t[]){B, m, n})
                                    : md_zeros(2, (const int64_t[]){m, n});
  for (int64_t t = 0; t < B; t++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t l = 0; l < k; l++) {
          int64_t ia = (ba > 1 ? t : 0) * m * k + i * k + l, ib = (bb > 1 ? t : 0) * k * n + l * n + j;
          s += md_get(a, ia) * md_get(b, ib);
        }
        md_set(c, (t * m + i) * n + j, s);
      }
  return c;
}

static md_tensor *ref_linear(const md_tensor *x, const md_tensor *w, const md_tensor *b) {
  int64_t N = x->shape[0], in = x->shape[1], out = w->shape[0];
  md_tensor *y = md_zeros(2, (const int64_t[]){N, out});
  for (int64_t i = 0; i < N; i++)
    for (int64_t o = 0; o < out; o++) {
      double s = b ? md_get(b, o) : 0;
      for (int64_t l = 0; l < in; l++) s += md_get(x, i * in + l) * md_get(w, o * in + l);
      md_set(y, i * out + o, s);
    }
  return y;
}

static md_tensor *leaf(md_tensor *t) {
  md_set_requires_grad(t, 1);
  return t;
}
static md_tensor *r2(int64_t a, int64_t b) { return rnd(2, (const int64_t[]){a, b}); }
static md_tensor *r3(int64_t a, int64_t b, int64_t c) { return rnd(3, (const int64_t[]){a, b, c}); }
/* the transpose of a fresh random (b, a) matrix: a column-major (a, b) view */
static md_tensor *r2t(int64_t a, int64_t b) {
  md_tensor *t = r2(b, a), *v = md_transpose(t, 0, 1);
  md_release(t);
  return v;
}

static md_tensor *f_matmul(md_tensor **in, void *ud) { return md_matmul(in[0], in[1]); }
static md_tensor *f_linear(md_tensor **in, void *ud) { return md_linear(in[0], in[1], in[2]); }
/* a matmul whose operands are transposed views of the leaves */
static md_tensor *f_matmul_tt(md_tensor **in, void *ud) {
  md_tensor *a = md_transpose(in[0], -1, -2), *b = md_transpose(in[1], -1, -2);
  md_tensor *c = md_matmul(a, b);
  md_release(a);
  md_release(b);
  return c;
}
static md_tensor *f_linear_t(md_tensor **in, void *ud) {
  md_tensor *w = md_transpose(in[1], 0, 1);
  md_tensor *y = md_linear(in[0], w, in[2]);
  md_release(w);
  return y;
}

/* value check and both derivative checks of matmul(a, b); a and b are consumed */
static void check_matmul(const char *name, md_tensor *a, md_tensor *b) {
  char nm[160];
  md_tensor *c = md_matmul(a, b), *cr = ref_matmul(a, b);
  snprintf(nm, sizeof nm, "matmul %s", name);
  check_close(nm, c, cr, 1e-5, 1e-5);
  md_release(c);
  md_release(cr);
  /* derivatives on contiguous leaf copies (the checks poke single elements,
  ** which an expanded view shares) */
  md_tensor *in[2] = {leaf(md_clone(a)), leaf(md_clone(b))};
  gradcheck(nm, f_matmul, 2, in, NULL, 1e-2, 1e-2);
  gradgradcheck(nm, f_matmul, 2, in, NULL, 1e-2, 1e-2);
  md_release(in[0]);
  md_release(in[1]);
  md_release(a);
  md_release(b);
}

static void value_checks(void) {
  check_matmul("2-d 3x4 x 4x5", r2(3, 4), r2(4, 5));
  check_matmul("2-d transposed a", r2t(3, 4), r2(4, 5));
  check_matmul("2-d transposed b", r2(3, 4), r2t(4, 5));
  check_matmul("2-d both transposed", r2t(3, 4), r2t(4, 5));
  check_matmul("row vector x matrix", r2(1, 4), r2(4, 3));
  check_matmul("matrix x column vector", r2(3, 4), r2(4, 1));
  check_matmul("outer product (k=1)", r2(3, 1), r2(1, 4));
  check_matmul("1x1", r2(1, 1), r2(1, 1));
  check_matmul("batched 3-d", r3(2, 3, 4), r3(2, 4, 5));
  check_matmul("3-d x 2-d", r3(3, 2, 4), r2(4, 3));
  check_matmul("2-d x 3-d", r2(2, 4), r3(3, 4, 3));
  check_matmul("batch 1 broadcast", r3(1, 3, 4), r3(2, 4, 2));
  {
    md_tensor *t = r3(2, 4, 3), *a = md_transpose(t, 1, 2);
    md_release(t);
    check_matmul("batched transposed view", a, r3(2, 4, 2));
  }
  {
    /* no unit stride: expanded rows/columns are copied first */
    md_tensor *row = r2(1, 4), *col = r2(4, 1);
    md_tensor *a = md_expand(row, 2, (const int64_t[]){3, 4});
    md_tensor *b = md_expand(col, 2, (const int64_t[]){4, 5});
    CHECK(a && b && a->stride[0] == 0 && b->stride[1] == 0, "expanded operands have zero strides");
    md_release(row);
    md_release(col);
    check_matmul("expanded (stride 0) operands", a, b);
  }
  {
    md_tensor *t = r3(4, 3, 5), *a = md_permute(t, (const int[]){1, 0, 2});
    md_release(t);
    check_matmul("permuted batch (strided batch)", a, r3(3, 5, 2));
  }
  {
    md_tensor *t = r2(5, 7), *a = md_slice(t, 1, 2, 4);
    md_release(t);
    check_matmul("sliced columns (row stride > cols)", a, r2(4, 3));
  }
  {
    md_tensor *a = r2(0, 4), *b = r2(4, 3), *c = md_matmul(a, b);
    CHECK(c && c->shape[0] == 0 && c->shape[1] == 3, "matmul with an empty dim");
    md_release(c);
    md_release(a);
    md_release(b);
    a = r2(2, 0);
    b = r2(0, 3);
    c = md_matmul(a, b);
    CHECK(c && md_get(c, 0) == 0 && md_get(c, 5) == 0, "matmul with k=0 gives zeros");
    md_release(c);
    md_release(a);
    md_release(b);
  }
  {
    /* a bigger product exercises BLIS's packed path */
    md_tensor *a = r2(67, 129), *b = r2t(129, 45);
    md_tensor *c = md_matmul(a, b), *cr = ref_matmul(a, b);
    check_close("matmul 67x129 x 129x45 (transposed b)", c, cr, 1e-4, 1e-4);
    md_tensor *ts[] = {a, b, c, cr};
    for (int i = 0; i < 4; i++) md_release(ts[i]);
  }
  /* transposed views of leaves: gradients flow back through the views */
  {
    md_tensor *in[2] = {leaf(r3(2, 4, 3)), leaf(r3(2, 5, 4))};
    gradcheck("matmul of transposed views", f_matmul_tt, 2, in, NULL, 1e-2, 1e-2);
    gradgradcheck("matmul of transposed views", f_matmul_tt, 2, in, NULL, 1e-2, 1e-2);
    md_release(in[0]);
    md_release(in[1]);
  }

  /* linear */
  {
    md_tensor *x = leaf(r2(4, 5)), *w = leaf(r2(3, 5)), *b = leaf(rnd(1, (const int64_t[]){3}));
    md_tensor *y = md_linear(x, w, b), *yr = ref_linear(x, w, b);
    check_close("linear with bias", y, yr, 1e-5, 1e-5);
    md_release(y);
    md_release(yr);
    y = md_linear(x, w, NULL);
    yr = ref_linear(x, w, NULL);
    check_close("linear without bias", y, yr, 1e-5, 1e-5);
    md_release(y);
    md_release(yr);
    md_tensor *in[3] = {x, w, b};
    gradcheck("linear", f_linear, 3, in, NULL, 1e-2, 1e-2);
    gradgradcheck("linear", f_linear, 3, in, NULL, 1e-2, 1e-2);
    in[2] = NULL;
    gradcheck("linear no bias", f_linear, 3, in, NULL, 1e-2, 1e-2);
    gradgradcheck("linear no bias", f_linear, 3, in, NULL, 1e-2, 1e-2);
    md_release(x);
    md_release(w);
    md_release(b);
  }
  {
    /* w given as a transposed view (strides (1, out)) and x transposed too */
    md_tensor *x = r2t(6, 7), *w = r2t(4, 7), *b = rnd(1, (const int64_t[]){4});
    md_tensor *y = md_linear(x, w, b), *yr = ref_linear(x, w, b);
    check_close("linear with transposed x and w", y, yr, 1e-5, 1e-5);
    md_tensor *ts[] = {x, w, b, y, yr};
    for (int i = 0; i < 5; i++) md_release(ts[i]);
    md_tensor *in[3] = {leaf(r2(3, 4)), leaf(r2(4, 2)), leaf(rnd(1, (const int64_t[]){2}))};
    gradcheck("linear of a transposed weight view", f_linear_t, 3, in, NULL, 1e-2, 1e-2);
    gradgradcheck("linear of a transposed weight view", f_linear_t, 3, in, NULL, 1e-2, 1e-2);
    for (int i = 0; i < 3; i++) md_release(in[i]);
  }
  {
    md_tensor *x = leaf(r2(2, 3)), *w = leaf(r2(4, 3));
    md_tensor *y = md_linear(x, w, NULL);
    CHECK(y && md_grad_fn_name(y) && !strcmp(md_grad_fn_name(y), "linear"), "linear records a node");
    md_tensor *z = md_matmul(x, y);
    CHECK(!z, "matmul 2x3 x 2x4 fails");
    md_release(y);
    md_release(x);
    md_release(w);
  }
}

static void error_checks(void) {
  md_tensor *a = r2(3, 4), *b = r2(5, 2), *v = rnd(1, (const int64_t[]){4});
  md_tensor *a4 = rnd(4, (const int64_t[]){2, 2, 3, 4}), *a3 = r3(2, 3, 4), *b3 = r3(3, 4, 2);
  md_tensor *ai = md_randint(2, (const int64_t[]){3, 4}, 0, 3);
  md_tensor *w = r2(6, 4), *bias = rnd(1, (const int64_t[]){5});
  CHECK_ERR(md_matmul(a, b), "inner dimensions", "matmul: inner dims differ");
  CHECK_ERR(md_matmul(a, b), "3x4", "matmul: message names the shapes");
  CHECK_ERR(md_matmul(v, a), "2-d", "matmul: 1-d operand");
  CHECK_ERR(md_matmul(a4, a), "2-d", "matmul: 4-d operand");
  CHECK_ERR(md_matmul(a3, b3), "batch", "matmul: batch sizes differ");
  CHECK_ERR(md_matmul(ai, w), "float", "matmul: int operand");
  CHECK_ERR(md_matmul(NULL, a), "missing", "matmul: NULL operand");
  CHECK_ERR(md_linear(a, b, NULL), "[N,in]", "linear: in features differ");
  CHECK_ERR(md_linear(v, w, NULL), "[N,in]", "linear: 1-d x");
  CHECK_ERR(md_linear(a, w, bias), "bias", "linear: bias size");
  CHECK_ERR(md_linear(ai, w, NULL), "float", "linear: int x");
  CHECK_ERR(md_linear(a, NULL, NULL), "missing", "linear: NULL w");
  md_tensor *ts[] = {a, b, v, a4, a3, b3, ai, w, bias};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) md_release(ts[i]);
}

int main(void) {
  md_manual_seed(4321);
  (void)away_from; /* part of the harness; nothing here has a kink */
  value_checks();
  error_checks();
  CHECK(md_tensors_alive() == 0, "no tensors leaked");
  return summary();
}
