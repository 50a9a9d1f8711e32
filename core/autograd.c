/*
** autograd.c -- recording nodes and the backward engine.
**
** The engine visits the nodes reachable from the outputs in reverse creation
** order (creation order is topological), sums the gradients arriving at each
** node with md_add (so the sum is differentiable), runs the node's backward
** formula once, and hands the input gradients on.  Formulas are ordinary ops:
** with create_graph the engine runs them with grad mode on, and the
** gradients it returns carry a graph of their own.
*/
#include "internal.h"

#include <stdio.h>

static _Thread_local int grad_mode = 1;
static uint64_t next_seq = 1;
static unsigned next_epoch = 1;

int md_grad_enabled(void) { return grad_mode; }
int md_set_grad_enabled(int on) {
  int old = grad_mode;
  grad_mode = on != 0;
  return old;
}

md_status md_record(md_tensor *out, const md_opdef *op, int n_in, const md_tensor *const *in,
                    md_node **node) {
  *node = NULL;
  if (!grad_mode) return MD_OK;
  int any = 0;
  for (int i = 0; i < n_in; i++)
    if (in[i] && in[i]->dtype == MD_F32 && md_requires_grad(in[i])) any = 1;
  if (!any) return MD_OK;
  md_node *n = calloc(1, sizeof *n);
  md_tensor **v = calloc((size_t)(n_in > 0 ? n_in : 1), sizeof *v);
  if (!n || !v) {
    free(n);
    free(v);
    md_set_error("%s: out of memory recording the autograd node", op->name);
    return MD_ENOMEM;
  }
  n->op = op;
  n->n_in = n_in;
  n->in = v;
  for (int i = 0; i < n_in; i++) v[i] = md_retain((md_tensor *)in[i]);
  n->refcount = 1;
  n->seq = next_seq++;
  n->out_ndim = out->ndim;
  memcpy(n->out_shape, out->shape, sizeof(int64_t) * MD_MAX_DIMS);
  out->grad_fn = n;
  *node = n;
  return MD_OK;
}

md_tensor *md_finish(md_tensor *out, const md_opdef *op, int n_in, const md_tensor *const *in,
                     md_node **node) {
  md_node *tmp;
  if (!out) return NULL;
  if (md_record(out, op, n_in, in, node ? node : &tmp) != MD_OK) {
    md_release(out);
    return NULL;
  }
  return out;
}

const char *md_grad_fn_name(const md_tensor *t) { return t && t->grad_fn ? t->grad_fn->op->name : NULL; }

/* {====================================================== hooks */
int md_register_hook(md_tensor *t, md_hook_fn fn, void *ud, md_hook_free_fn free_ud) {
  if (!md_requires_grad(t)) {
    md_set_error("register_hook: the tensor (shape %s) does not require grad", md_shp(t));
    return MD_ERR;
  }
  md_hook *h = malloc(sizeof *h);
  if (!h) {
    md_set_error("register_hook: out of memory");
    return MD_ENOMEM;
  }
  h->fn = fn;
  h->ud = ud;
  h->free_ud = free_ud;
  h->next = NULL;
  md_hook **pp = t->grad_fn ? &t->grad_fn->hooks : &t->hooks;
  while (*pp) pp = &(*pp)->next; /* run in registration order */
  *pp = h;
  return MD_OK;
}
void md_clear_hooks(md_tensor *t) {
  md_hook **pp = t->grad_fn ? &t->grad_fn->hooks : &t->hooks;
  md_hook *h = *pp;
  *pp = NULL;
  while (h) {
    md_hook *nx = h->next;
    if (h->free_ud) h->free_ud(h->ud);
    free(h);
    h = nx;
  }
}
/* apply hooks to *g (owned); returns MD_OK or error */
static md_status run_hooks(md_hook *h, md_tensor **g) {
  for (; h; h = h->next) {
    md_tensor *r = h->fn(h->ud, *g);
    if (r == (md_tensor *)-1) return MD_ERR;
    if (r) {
      if (!md_same_shape(r, *g)) {
        md_set_error("hook: returned a gradient of shape %s for a tensor of shape %s", md_shp(r),
                     md_shp(*g));
        md_release(r);
        return MD_ERR;
      }
      md_release(*g);
      *g = r;
    }
  }
  return MD_OK;
}
/* }====================================================== */

/* {====================================================== the engine */
typedef struct nodevec {
  md_node **v;
  size_t n, cap;
} nodevec;
static int nv_push(nodevec *a, md_node *x) {
  if (a->n == a->cap) {
    size_t nc = a->cap ? 2 * a->cap : 64;
    md_node **v = realloc(a->v, sizeof *v * nc);
    if (!v) return 0;
    a->v = v;
    a->cap = nc;
  }
  a->v[a->n++] = x;
  return 1;
}
static int by_seq_desc(const void *a, const void *b) {
  uint64_t x = (*(md_node *const *)a)->seq, y = (*(md_node *const *)b)->seq;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* add g (owned) into *slot: in place when the slot is a private buffer and no
** graph is being built, otherwise with md_add (differentiable) */
static md_status accumulate(md_tensor **slot, md_tensor *g) {
  if (!*slot) {
    *slot = g;
    return MD_OK;
  }
  md_tensor *a = *slot;
  if (!md_grad_enabled() && a->refcount == 1 && a->storage->refcount == 1 && !a->grad_fn &&
      md_is_contiguous(a) && md_same_shape(a, g)) {
    if (md_axpy_(a, 1.0f, g) != MD_OK) {
      md_release(g);
      return MD_ERR;
    }
    md_release(g);
    return MD_OK;
  }
  md_tensor *s = md_add(a, g);
  md_release(g);
  if (!s) return MD_ERR;
  md_release(a);
  *slot = s;
  return MD_OK;
}

static int is_leaf_target(const md_tensor *t, unsigned ep) { return !t->grad_fn && t->epoch_ == ep; }

/* The common pass behind md_grad and md_backward.  Leaf targets are marked
** with t->epoch_ == ep, node targets with node->target. */
static md_status run_backward(int n_out, md_tensor *const *outputs, md_tensor *const *grad_outputs,
                              int create_graph, int retain_graph, unsigned ep, nodevec *order) {
  md_status rc = MD_OK;
  nodevec stack = {0};
  /* collect reachable nodes (iterative DFS), each once */
  for (int i = 0; i < n_out; i++) {
    md_node *r = outputs[i]->grad_fn;
    if (r && r->epoch != ep) {
      r->epoch = ep;
      r->run = r->reach = 0;
      if (!nv_push(&stack, r)) goto nomem;
    }
  }
  while (stack.n) {
    md_node *n = stack.v[--stack.n];
    if (!nv_push(order, n)) goto nomem;
    n->refcount++; /* released nodes must stay alive until the pass ends */
    for (int i = 0; i < n->n_in; i++) {
      md_tensor *t = n->in[i];
      if (t && t->grad_fn && t->grad_fn->epoch != ep) {
        md_node *m = t->grad_fn;
        m->epoch = ep;
        m->run = m->reach = 0;
        if (!nv_push(&stack, m)) goto nomem;
      }
    }
  }
  free(stack.v);
  stack.v = NULL;
  if (order->n) qsort(order->v, order->n, sizeof *order->v, by_seq_desc); /* none: a leaf output */

  /* which nodes lead to a target: inputs come before outputs, so go in
  ** creation order */
  for (size_t k = order->n; k-- > 0;) {
    md_node *n = order->v[k];
    n->run = 0;
    for (int i = 0; i < n->n_in; i++) {
      md_tensor *t = n->in[i];
      if (!t || t->dtype != MD_F32) continue;
      if (t->grad_fn ? t->grad_fn->reach : is_leaf_target(t, ep)) n->run = 1;
    }
    if (n->released) n->run = 1; /* so that the pass reports it below */
    n->reach = n->run || n->target;
  }

  /* seed */
  for (int i = 0; i < n_out; i++) {
    md_tensor *o = outputs[i], *g = grad_outputs ? grad_outputs[i] : NULL;
    if (g) {
      if (!md_same_shape(g, o)) {
        md_set_error("grad: grad_outputs[%d] has shape %s but outputs[%d] has shape %s", i + 1,
                     md_shp(g), i + 1, md_shp(o));
        return MD_ERR;
      }
      md_retain(g);
    } else {
      if (md_numel(o) != 1) {
        md_set_error("grad: outputs[%d] has shape %s; a gradient can be implied only for a "
                     "single-element output (pass grad_outputs)", i + 1, md_shp(o));
        return MD_ERR;
      }
      g = md_ones_like(o);
      if (!g) return MD_ERR;
    }
    md_tensor **slot = o->grad_fn ? &o->grad_fn->gacc : &o->gacc_;
    if (accumulate(slot, g) != MD_OK) return MD_ERR;
  }

  int saved_mode = md_set_grad_enabled(create_graph);
  for (size_t k = 0; k < order->n && rc == MD_OK; k++) {
    md_node *n = order->v[k];
    if (!n->gacc || !n->reach) continue;
    if (*md_interrupt_flag()) {
      md_set_error("interrupted!");
      rc = MD_EINTR;
      break;
    }
    if (n->hooks && (rc = run_hooks(n->hooks, &n->gacc)) != MD_OK) break;
    if (!n->run) continue; /* a target with nothing further to do */
    if (n->released) {
      md_set_error("grad: trying to go backward through the graph a second time (op %s); its "
                   "saved tensors were freed by an earlier pass: use retain_graph", n->op->name);
      rc = MD_ERR;
      break;
    }
    md_tensor *gin_small[4] = {0}, **gin = gin_small;
    int need_small[4] = {0}, *need = need_small;
    if (n->n_in > 4) {
      gin = calloc((size_t)n->n_in, sizeof *gin);
      need = calloc((size_t)n->n_in, sizeof *need);
      if (!gin || !need) {
        free(gin);
        free(need);
        md_set_error("grad: out of memory");
        rc = MD_ENOMEM;
        break;
      }
    }
    for (int i = 0; i < n->n_in; i++) {
      md_tensor *t = n->in[i];
      need[i] = t && t->dtype == MD_F32 && (t->grad_fn ? t->grad_fn->reach : is_leaf_target(t, ep));
    }
    md_scope sc = {0};
    rc = n->op->backward(n, n->gacc, gin, need, &sc);
    md_scope_free(&sc);
    if (rc == MD_OK && sc.failed) rc = MD_ENOMEM;
    if (rc != MD_OK && md_last_status() == MD_OK)
      md_set_error("grad: backward of %s failed", n->op->name);
    for (int i = 0; i < n->n_in; i++) {
      md_tensor *g = gin[i];
      gin[i] = NULL;
      if (!g) continue;
      md_tensor *t = n->in[i];
      if (rc != MD_OK || !need[i]) {
        md_release(g);
        continue;
      }
      if (!md_same_shape(g, t)) {
        md_set_error("grad: backward of %s gave a gradient of shape %s for input %d of shape %s "
                     "(internal error)", n->op->name, md_shp(g), i + 1, md_shp(t));
        md_release(g);
        rc = MD_ERR;
        continue;
      }
      rc = accumulate(t->grad_fn ? &t->grad_fn->gacc : &t->gacc_, g);
    }
    if (gin != gin_small) {
      free(gin);
      free(need);
    }
    if (!n->target) {
      md_release(n->gacc);
      n->gacc = NULL;
    }
    if (!retain_graph && rc == MD_OK) {
      /* free what the formula needed; the node keeps its place in the graph */
      for (int i = 0; i < n->n_in; i++) {
        md_tensor *t = n->in[i];
        if (t && !t->grad_fn && t->requires_grad) continue; /* leaves stay */
        md_release(t);
        n->in[i] = NULL;
      }
      for (int i = 0; i < MD_MAX_SAVED; i++) {
        md_release(n->saved[i]);
        n->saved[i] = NULL;
      }
      n->released = 1;
    }
  }
  md_set_grad_enabled(saved_mode);
  return rc;
nomem:
  free(stack.v);
  md_set_error("grad: out of memory collecting the graph");
  return MD_ENOMEM;
}

static void finish_order(nodevec *order) {
  for (size_t k = 0; k < order->n; k++) {
    md_node *n = order->v[k];
    md_release(n->gacc);
    n->gacc = NULL;
    n->target = 0;
    md_node_release(n);
  }
  free(order->v);
}

static int check_outputs(const char *op, int n_out, md_tensor *const *outputs) {
  if (n_out < 1) {
    md_set_error("%s: no outputs given", op);
    return 0;
  }
  for (int i = 0; i < n_out; i++) {
    if (!md_check_f32(op, "outputs", outputs[i])) return 0;
    if (!md_requires_grad(outputs[i])) {
      md_set_error("%s: outputs[%d] (shape %s) does not require grad and has no grad_fn", op, i + 1,
                   md_shp(outputs[i]));
      return 0;
    }
  }
  return 1;
}

int md_grad(int n_out, md_tensor *const *outputs, md_tensor *const *grad_outputs, int n_in,
            md_tensor *const *inputs, md_tensor **out, int create_graph, int retain_graph,
            int allow_unused) {
  for (int j = 0; j < n_in; j++) out[j] = NULL;
  if (!check_outputs("grad", n_out, outputs)) return MD_ERR;
  unsigned ep = next_epoch++;
  for (int j = 0; j < n_in; j++) {
    md_tensor *t = inputs[j];
    if (!md_check_f32("grad", "inputs", t)) return MD_ERR;
    if (!md_requires_grad(t)) {
      md_set_error("grad: inputs[%d] (shape %s) does not require grad", j + 1, md_shp(t));
      return MD_ERR;
    }
    if (t->grad_fn) {
      t->grad_fn->target = 1;
    } else {
      t->epoch_ = ep;
      md_release(t->gacc_);
      t->gacc_ = NULL;
    }
  }
  nodevec order = {0};
  md_status rc = run_backward(n_out, outputs, grad_outputs, create_graph, retain_graph || create_graph, ep, &order);
  if (rc == MD_OK) {
    for (int j = 0; j < n_in; j++) {
      md_tensor *t = inputs[j];
      md_tensor *g = t->grad_fn ? t->grad_fn->gacc : t->gacc_;
      if (!g && !allow_unused) {
        md_set_error("grad: inputs[%d] (shape %s) was not used to compute the outputs (pass "
                     "allow_unused)", j + 1, md_shp(t));
        rc = MD_ERR;
        break;
      }
      if (g && !t->grad_fn && t->hooks && (rc = run_hooks(t->hooks, t->grad_fn ? &t->grad_fn->gacc : &t->gacc_)) != MD_OK)
        break;
      out[j] = md_retain(t->grad_fn ? t->grad_fn->gacc : t->gacc_);
    }
  }
  for (int j = 0; j < n_in; j++) {
    md_tensor *t = inputs[j];
    if (t->grad_fn) {
      t->grad_fn->target = 0;
    } else {
      md_release(t->gacc_);
      t->gacc_ = NULL;
      t->epoch_ = 0;
    }
  }
  finish_order(&order);
  if (rc != MD_OK)
    for (int j = 0; j < n_in; j++) {
      md_release(out[j]);
      out[j] = NULL;
    }
  return rc;
}

/* the leaves a backward pass fills */
typedef struct tensorvec {
  md_tensor **v;
  size_t n, cap;
} tensorvec;
static int tv_push(tensorvec *a, md_tensor *x) {
  if (a->n == a->cap) {
    size_t nc = a->cap ? 2 * a->cap : 64;
    md_tensor **v = realloc(a->v, sizeof *v * nc);
    if (!v) return 0;
    a->v = v;
    a->cap = nc;
  }
  a->v[a->n++] = x;
  return 1;
}

/* add the pass's gradient g (owned) into leaf t's .grad, keeping a private
** contiguous buffer so later passes can add in place */
static md_status accumulate_leaf(md_tensor *t, md_tensor *g, int create_graph) {
  md_status rc = MD_OK;
  if (!t->grad) {
    if (create_graph || (md_is_contiguous(g) && g->storage->refcount == 1 && g->refcount == 1)) {
      t->grad = g;
      return MD_OK;
    }
    t->grad = md_clone(g);
    md_release(g);
    return t->grad ? MD_OK : MD_ERR;
  }
  int old = md_set_grad_enabled(create_graph);
  if (!create_graph && !t->grad->grad_fn && t->grad->storage->refcount == 1 && md_is_contiguous(t->grad))
    rc = md_axpy_(t->grad, 1.0f, g);
  else {
    md_tensor *sum = md_add(t->grad, g);
    if (!sum)
      rc = MD_ERR;
    else {
      md_release(t->grad);
      t->grad = sum;
    }
  }
  md_set_grad_enabled(old);
  md_release(g);
  return rc;
}

/* d output / d leaf into every reachable leaf that requires grad */
int md_backward(md_tensor *output, md_tensor *grad_output, int create_graph, int retain_graph) {
  if (!check_outputs("backward", 1, &output)) return MD_ERR;
  unsigned ep = next_epoch++, mark = next_epoch++;
  nodevec stack = {0};
  tensorvec leaves = {0};
  md_status rc = MD_OK;
  /* find the leaves (marked with epoch_ = ep, the engine's leaf targets) */
  if (!output->grad_fn) { /* a leaf's own gradient: the seed */
    output->epoch_ = ep;
    if (!tv_push(&leaves, output)) rc = MD_ENOMEM;
  } else {
    output->grad_fn->epoch = mark;
    if (!nv_push(&stack, output->grad_fn)) rc = MD_ENOMEM;
  }
  while (rc == MD_OK && stack.n) {
    md_node *n = stack.v[--stack.n];
    for (int i = 0; i < n->n_in && rc == MD_OK; i++) {
      md_tensor *t = n->in[i];
      if (!t) continue;
      if (t->grad_fn) {
        if (t->grad_fn->epoch != mark) {
          t->grad_fn->epoch = mark;
          if (!nv_push(&stack, t->grad_fn)) rc = MD_ENOMEM;
        }
      } else if (t->requires_grad && t->epoch_ != ep) {
        t->epoch_ = ep;
        md_release(t->gacc_);
        t->gacc_ = NULL;
        if (!tv_push(&leaves, t)) rc = MD_ENOMEM;
      }
    }
  }
  free(stack.v);
  nodevec order = {0};
  if (rc == MD_OK) {
    md_tensor *const outs[1] = {output};
    md_tensor *const gos[1] = {grad_output};
    rc = run_backward(1, outs, grad_output ? gos : NULL, create_graph, retain_graph || create_graph, ep,
                      &order);
  } else
    md_set_error("backward: out of memory");
  for (size_t k = 0; k < leaves.n; k++) {
    md_tensor *t = leaves.v[k], *g = t->gacc_;
    t->gacc_ = NULL;
    t->epoch_ = 0;
    if (rc == MD_OK && g && t->hooks) rc = run_hooks(t->hooks, &g);
    if (rc == MD_OK && g)
      rc = accumulate_leaf(t, g, create_graph);
    else
      md_release(g);
  }
  free(leaves.v);
  finish_order(&order);
  return rc;
}
/* }====================================================== */
