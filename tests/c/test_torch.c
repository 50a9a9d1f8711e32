/*
** test_torch.c -- the engine against PyTorch: a small conv net (conv, batch
** norm in training mode, relu, max pool, residual add, strided conv,
** adaptive average pool, linear, cross entropy) rebuilt from
** tests/fixtures/convnet.safetensors (written by tests/gen_fixtures.py, torch
** in float64) and checked for the logits, the loss, the loss gradient of
** every parameter (md_backward into .grad, and md_grad), and three
** Model-Doctor quantities with their gradients with respect to every
** parameter (double backward):
**
**   sel = sum_b logits[b, y_b]
**   Q   = sum(relu(d sel / d m) * mask)       m: after the residual add
**   Q1  = sum(relu(d sel / d h1) * mask)      h1: conv1's output, so the
**         double backward goes through bn, relu, max pool, conv, add, ...
**   Q2  = sum_j sum(|d sel_J / d m_J|[j] * mask) / 3,  m_J = cat(m,m,m) + sigma
**         (J = 3 noisy copies batched along the batch dim, Eq. 4)
**
** Tolerance: rtol 1e-4, atol 1e-4 * max|ref| per tensor, where a gradient
** that is identically zero (torch gives zeros or ~1e-17) is measured against
** 1% of the largest gradient of its family instead: float32 cannot give
** exact zeros where float64 gives rounding noise.
*/
#include "check.h"

#include <unistd.h>

#define NP 11
static const char *pname[NP] = {"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                                "conv2.weight", "bn2.weight", "bn2.bias",   "conv3.weight",
                                "conv3.bias",   "fc.weight",  "fc.bias"};

static int nfix;
static md_named *fix;

static md_tensor *ref(const char *name) {
  for (int i = 0; i < nfix; i++)
    if (!strcmp(fix[i].name, name)) return fix[i].t;
  report(0, name, "not in the fixture");
  return NULL;
}

static const char *fixture(const char *name) {
  static char buf[512];
  const char *env = getenv("MD_FIXTURES");
  const char *dirs[] = {env, "tests/fixtures", "../tests/fixtures", "../../tests/fixtures"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    if (!dirs[i]) continue;
    snprintf(buf, sizeof buf, "%s/%s", dirs[i], name);
    if (access(buf, R_OK) == 0) return buf;
  }
  return NULL;
}

static double maxabs(const md_tensor *t) {
  double m = 0;
  int64_t n = t ? md_numel(t) : 0;
  for (int64_t i = 0; i < n; i++)
    if (fabs(md_get(t, i)) > m) m = fabs(md_get(t, i));
  return m;
}

/* rtol 1e-4, atol 1e-4 * max(max|ref|, floor) */
static void cmp(const char *name, const md_tensor *got, const md_tensor *want, double floor) {
  char nm[128];
  snprintf(nm, sizeof nm, "torch %s", name);
  if (!want) return;
  if (got && !md_same_shape(got, want)) {
    char a[64], b[64];
    report(0, nm, "shape %s, want %s", md_shape_str(got, a, 64), md_shape_str(want, b, 64));
    return;
  }
  double m = maxabs(want);
  check_close(nm, got, want, 1e-4, 1e-4 * (m > floor ? m : floor));
}

/* gradients of one family (NULL = not reached = zero) against prefix.<p>;
** the checks are named label<p> */
static void cmp_family(const char *prefix, const char *label, md_tensor **g) {
  double scale = 0;
  char nm[96];
  for (int i = 0; i < NP; i++) {
    snprintf(nm, sizeof nm, "%s%s", prefix, pname[i]);
    double m = maxabs(ref(nm));
    if (m > scale) scale = m;
  }
  for (int i = 0; i < NP; i++) {
    char lb[96];
    snprintf(nm, sizeof nm, "%s%s", prefix, pname[i]);
    snprintf(lb, sizeof lb, "%s%s", label, pname[i]);
    md_tensor *w = ref(nm);
    md_tensor *z = g[i] || !w ? NULL : md_zeros(w->ndim, w->shape);
    cmp(lb, g[i] ? g[i] : z, w, 0.01 * scale);
    md_release(z);
  }
}

static md_tensor *P[NP];

static md_tensor *bn(const md_tensor *h, const md_tensor *w, const md_tensor *b) {
  return md_batch_norm(h, NULL, NULL, w, b, 1, 0.1f, 1e-5f);
}
static md_conv_params cp(int stride, int pad) {
  md_conv_params c = md_conv_params_default();
  c.stride[0] = c.stride[1] = stride;
  c.pad[0] = c.pad[1] = pad;
  return c;
}
/* h1 (conv1's output) to m */
static md_tensor *middle(md_tensor *h1, md_scope *s) {
  md_tensor *a1 = MD_S(s, md_relu(MD_S(s, bn(h1, P[2], P[3]))));
  md_tensor *p = MD_S(s, md_max_pool2d(a1, md_pool_params_make(2, 2, 0), NULL));
  md_tensor *h2 = MD_S(s, md_conv2d(p, P[4], NULL, cp(1, 1)));
  md_tensor *a2 = MD_S(s, md_relu(MD_S(s, bn(h2, P[5], P[6]))));
  return md_add(a2, p);
}
/* m to the logits */
static md_tensor *tail(md_tensor *m, md_scope *s) {
  md_tensor *h3 = MD_S(s, md_relu(MD_S(s, md_conv2d(m, P[7], P[8], cp(2, 1)))));
  md_tensor *z = MD_S(s, md_adaptive_avg_pool2d(h3, 1, 1));
  return md_linear(MD_S(s, md_flatten(z, 1, -1)), P[9], P[10]);
}
/* sum_b logits[b, y[b mod N]] */
static md_tensor *pick(md_tensor *logits, const md_tensor *y, md_scope *s) {
  if (!logits) return NULL;
  int64_t B = logits->shape[0], N = md_numel(y), idx[64];
  for (int64_t b = 0; b < B && b < 64; b++) idx[b] = (int64_t)md_get(y, b % N);
  md_tensor *it = MD_S(s, md_from_i64(2, (int64_t[]){B, 1}, idx));
  return md_sum(MD_S(s, md_gather(logits, 1, it)), 0, NULL, 0);
}

static void run(void) {
  md_scope s = {0};
  md_tensor *x = ref("x"), *y = ref("y"), *mask = ref("mask"), *sigma = ref("sigma");
  for (int i = 0; i < NP; i++) {
    P[i] = ref(pname[i]);
    if (P[i]) md_set_requires_grad(P[i], 1);
  }
  md_tensor *gr[NP] = {0};

  md_tensor *h1 = MD_S(&s, md_conv2d(x, P[0], P[1], cp(1, 1)));
  md_tensor *m = MD_S(&s, middle(h1, &s));
  md_tensor *logits = MD_S(&s, tail(m, &s));
  md_tensor *loss = MD_S(&s, md_cross_entropy(logits, y, 1));
  cmp("m", m, ref("m"), 0);
  cmp("logits", logits, ref("logits"), 0);
  cmp("loss", loss, ref("loss"), 0);

  /* the cross-entropy gradient, by md_backward into .grad and by md_grad;
  ** every graph is kept (retain_graph): the next quantities run through the
  ** same forward nodes */
  if (!loss || md_backward(loss, NULL, 0, 1) != MD_OK)
    report(0, "torch backward of the loss", "%s", md_last_error());
  for (int i = 0; i < NP; i++) gr[i] = P[i] ? P[i]->grad : NULL;
  cmp_family("grad.", "backward .grad of ", gr);
  if (!loss || md_grad(1, &loss, NULL, NP, P, gr, 0, 1, 1) != MD_OK)
    report(0, "torch grad of the loss", "%s", md_last_error());
  cmp_family("grad.", "grad.", gr);
  for (int i = 0; i < NP; i++) md_release(gr[i]);

  /* Q: the gradient at m, made a differentiable function (create_graph) */
  md_tensor *sel = MD_S(&s, pick(logits, y, &s));
  md_tensor *g = NULL;
  if (!sel || md_grad(1, &sel, NULL, 1, &m, &g, 1, 1, 0) != MD_OK)
    report(0, "torch g = d sel / d m", "%s", md_last_error());
  MD_S(&s, g);
  cmp("g", g, ref("g"), 0);
  md_tensor *Q = MD_S(&s, md_sum(MD_S(&s, md_mul(MD_S(&s, md_relu(g)), mask)), 0, NULL, 0));
  cmp("Q", Q, ref("Q"), 0);
  memset(gr, 0, sizeof gr);
  if (!Q || md_grad(1, &Q, NULL, NP, P, gr, 0, 1, 1) != MD_OK)
    report(0, "torch dQ", "%s", md_last_error());
  cmp_family("dQ.", "dQ.", gr);
  for (int i = 0; i < NP; i++) md_release(gr[i]);

  /* Q1: cut at conv1's output; double backward through the whole middle */
  md_tensor *g1 = NULL;
  if (!sel || md_grad(1, &sel, NULL, 1, &h1, &g1, 1, 1, 0) != MD_OK)
    report(0, "torch g1 = d sel / d h1", "%s", md_last_error());
  MD_S(&s, g1);
  cmp("g1", g1, ref("g1"), 0);
  md_tensor *Q1 = MD_S(&s, md_sum(MD_S(&s, md_mul(MD_S(&s, md_relu(g1)), mask)), 0, NULL, 0));
  cmp("Q1", Q1, ref("Q1"), 0);
  memset(gr, 0, sizeof gr);
  if (!Q1 || md_grad(1, &Q1, NULL, NP, P, gr, 0, 1, 1) != MD_OK)
    report(0, "torch dQ1", "%s", md_last_error());
  cmp_family("dQ1.", "dQ1.", gr);
  for (int i = 0; i < NP; i++) md_release(gr[i]);

  /* Q2: J = 3 noisy copies of m batched along the batch dim */
  md_tensor *three[3] = {m, m, m};
  md_tensor *mJ = MD_S(&s, md_add(MD_S(&s, md_cat(3, three, 0)), sigma));
  md_tensor *selJ = MD_S(&s, pick(MD_S(&s, tail(mJ, &s)), y, &s));
  md_tensor *gJ = NULL;
  if (!selJ || md_grad(1, &selJ, NULL, 1, &mJ, &gJ, 1, 1, 0) != MD_OK)
    report(0, "torch gJ = d selJ / d mJ", "%s", md_last_error());
  MD_S(&s, gJ);
  int64_t sh5[5] = {3, 4, 6, 4, 4};
  md_tensor *aJ = MD_S(&s, md_reshape(MD_S(&s, md_abs(gJ)), 5, sh5));
  md_tensor *Q2 = MD_S(
      &s, md_mul_scalar(MD_S(&s, md_sum(MD_S(&s, md_mul(aJ, mask)), 0, NULL, 0)), 1.0f / 3.0f));
  cmp("Q2", Q2, ref("Q2"), 0);
  memset(gr, 0, sizeof gr);
  if (!Q2 || md_grad(1, &Q2, NULL, NP, P, gr, 0, 0, 1) != MD_OK)
    report(0, "torch dQ2", "%s", md_last_error());
  cmp_family("dQ2.", "dQ2.", gr);
  for (int i = 0; i < NP; i++) md_release(gr[i]);
  md_scope_free(&s);
}

int main(void) {
  const char *path = fixture("convnet.safetensors");
  if (!path) {
    report(0, "torch fixture", "tests/fixtures/convnet.safetensors not found (set MD_FIXTURES)");
    return summary();
  }
  if (md_safetensors_load(path, &nfix, &fix) != MD_OK) {
    report(0, "torch fixture", "%s", md_last_error());
    return summary();
  }
  run();
  md_named_free(nfix, fix);
  CHECK(md_tensors_alive() == 0, "no tensor left alive");
  return summary();
}
