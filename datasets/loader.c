/*
** loader.c -- the batch loader (see loader.h).
**
** One worker thread per epoch: md_loader_new / md_loader_reset compute the
** epoch's order and start it; it makes batches 0..nb-1 in order into a ring
** of `prefetch` slots (mutex + two condition variables) and ends.  The
** consumer pops them in order.  A failing batch ends the worker; its message
** (copied out of the worker's thread-local md_last_error) is handed to the
** consumer after the batches made before it.  Stopping (reset, free) sets
** `stop`, wakes the worker, joins it and releases what is still queued.
**
** Randomness: the order of epoch e comes from md_rng stream 2e, the
** augmentation draws from stream 2e+1, both seeded with the loader's seed,
** drawn item by item in batch order -- so a run repeats whatever the prefetch
** depth or thread count.
*/
#include "loader.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qitem {
  md_tensor *img, *lab, *mask;
} qitem;

/* buffers of one transforming thread */
typedef struct wbuf {
  uint8_t *in, *min, *scratch;
} wbuf;

typedef struct work {
  int nt;
  wbuf *b;
  md_tf_draw *draws;
} work;

struct md_loader {
  md_dataset *ds;
  int64_t *idx, n; /* the items drawn from (0-based in ds) */
  int64_t *order;  /* this epoch's order: n entries of idx */
  int64_t bs, nb;
  int shuffle, drop_last, prefetch, nthreads;
  uint64_t seed;
  int64_t epoch, pos;
  md_tf_plan *plan;
  int c, oh, ow, masks;
  int direct; /* the data set is in memory: read its arrays */
  /* prefetch 0: the consumer makes batches with these */
  md_rng rng;
  work w;
  /* consumer-side failure of this epoch (returned until reset) */
  int failed;
  char err[1024];
  /* the worker */
  pthread_mutex_t mu;
  pthread_cond_t cv_items, cv_space;
  pthread_t th;
  int running, sync_init;
  qitem *q;
  int qhead, qn;
  int stop, wdone, wfailed;
  char werr[1024];
  int wnt; /* the worker's thread count this epoch */
};

/* {====================================================== helpers */
/* keep a copy of this thread's last error (md_last_error is thread-local) */
static void keep_error(char *dst) { snprintf(dst, 1024, "%s", md_last_error()); }

static void work_free(work *w) {
  if (w->b)
    for (int t = 0; t < w->nt; t++) {
      free(w->b[t].in);
      free(w->b[t].min);
      free(w->b[t].scratch);
    }
  free(w->b);
  free(w->draws);
  memset(w, 0, sizeof *w);
}

static int work_init(const md_loader *l, work *w, int nt) {
  memset(w, 0, sizeof *w);
  w->nt = nt;
  w->b = calloc((size_t)nt, sizeof *w->b);
  w->draws = malloc(sizeof(md_tf_draw) * (size_t)(l->bs > 0 ? l->bs : 1));
  if (!w->b || !w->draws) goto nomem;
  size_t chw = (size_t)l->ds->c * l->ds->h * l->ds->w, hw = (size_t)l->ds->h * l->ds->w;
  size_t sb = md_tf_scratch_bytes(l->plan);
  for (int t = 0; t < nt; t++) {
    if (!l->direct) {
      w->b[t].in = malloc(chw);
      if (!w->b[t].in) goto nomem;
      if (l->masks && !(w->b[t].min = malloc(hw))) goto nomem;
    }
    if (sb && !(w->b[t].scratch = malloc(sb))) goto nomem;
  }
  return 0;
nomem:
  work_free(w);
  md_set_error("loader: out of memory for the buffers of %s", l->ds->name);
  return -1;
}

static void qitem_release(qitem *it) {
  md_release(it->img);
  md_release(it->lab);
  md_release(it->mask);
  it->img = it->lab = it->mask = NULL;
}
/* }====================================================== */

/* {====================================================== making a batch */
/* batch b of this epoch into *out; draws from r.  On failure: -1 with the
** message in this thread's md_last_error; -2 when the loader is stopping
** (lazy sets poll `stop` between items: a slow batch need not finish). */
static int make_batch(md_loader *l, int64_t b, md_rng *r, work *w, qitem *out) {
  md_dataset *ds = l->ds;
  int64_t start = b * l->bs, cnt = l->n - start < l->bs ? l->n - start : l->bs;
  const int64_t *items = l->order + start;
  memset(out, 0, sizeof *out);
  int64_t ishape[4] = {cnt, l->c, l->oh, l->ow}, mshape[4] = {cnt, 1, l->oh, l->ow};
  out->img = md_empty(4, ishape, MD_F32);
  out->lab = md_empty(1, &cnt, MD_I64);
  out->mask = l->masks ? md_empty(4, mshape, MD_F32) : NULL;
  if (!out->img || !out->lab || (l->masks && !out->mask)) {
    qitem_release(out);
    return -1;
  }
  for (int64_t i = 0; i < cnt; i++) md_tf_draw_item(l->plan, r, &w->draws[i]);
  int64_t *lab = out->lab->data;
  for (int64_t i = 0; i < cnt; i++) lab[i] = ds->labels[items[i]];
  float *img = out->img->data, *msk = out->mask ? out->mask->data : NULL;
  const size_t chw = (size_t)ds->c * ds->h * ds->w, hw = (size_t)ds->h * ds->w;
  const size_t ochw = (size_t)l->c * l->oh * l->ow, ohw = (size_t)l->oh * l->ow;
  int failed = 0; /* 1: an item failed; 2: the loader is stopping */
  char msg[1024];
  msg[0] = 0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(w->nt) if (w->nt > 1)
  for (int64_t i = 0; i < cnt; i++) {
    if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
    if (!l->direct && __atomic_load_n(&l->stop, __ATOMIC_RELAXED)) { /* slow reads: give up early */
      __atomic_store_n(&failed, 2, __ATOMIC_RELAXED);
      continue;
    }
    wbuf *tb = &w->b[w->nt > 1 ? omp_get_thread_num() : 0];
    const uint8_t *src, *msrc = NULL;
    int64_t it = items[i];
    if (l->direct) {
      src = ds->images + (size_t)it * chw;
      if (l->masks) msrc = ds->masks + (size_t)it * hw;
    } else {
      if (md_dataset_get(ds, it, tb->in, l->masks ? tb->min : NULL) != 0) {
        char inner[1024];
        snprintf(inner, sizeof inner, "%s", md_last_error());
#pragma omp critical(md_loader_err)
        if (!failed) {
          snprintf(msg, sizeof msg, "%.900s (loading item %lld of %.63s)", inner, (long long)it + 1,
                   ds->name[0] ? ds->name : "the data set");
          __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        }
        continue;
      }
      src = tb->in;
      msrc = l->masks ? tb->min : NULL;
    }
    md_tf_apply(l->plan, &w->draws[i], src, msrc, img + i * ochw, msk ? msk + i * ohw : NULL, tb->scratch);
  }
  if (failed) {
    qitem_release(out);
    if (failed == 2) return -2;
    md_set_error("%s", msg);
    return -1;
  }
  return 0;
}
/* }====================================================== */

/* {====================================================== the worker */
static void *worker(void *arg) {
  md_loader *l = arg;
  md_rng r;
  work w;
  char err[1024];
  int failed = 0;
  md_rng_seed(&r, l->seed, 2 * (uint64_t)l->epoch + 1);
  if (work_init(l, &w, l->wnt) != 0) {
    keep_error(err);
    failed = 1;
  }
  for (int64_t b = 0; !failed && b < l->nb; b++) {
    pthread_mutex_lock(&l->mu);
    while (l->qn == l->prefetch && !l->stop) pthread_cond_wait(&l->cv_space, &l->mu);
    int stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    if (stop) break;
    qitem it;
    int rc = make_batch(l, b, &r, &w, &it);
    if (rc == -2) break; /* stopped */
    if (rc != 0) {
      keep_error(err);
      failed = 1;
      break;
    }
    pthread_mutex_lock(&l->mu);
    if (l->stop) {
      pthread_mutex_unlock(&l->mu);
      qitem_release(&it);
      break;
    }
    l->q[(l->qhead + l->qn) % l->prefetch] = it;
    l->qn++;
    pthread_cond_signal(&l->cv_items);
    pthread_mutex_unlock(&l->mu);
  }
  work_free(&w);
  pthread_mutex_lock(&l->mu);
  if (failed) memcpy(l->werr, err, sizeof err);
  l->wfailed = failed;
  l->wdone = 1;
  pthread_cond_broadcast(&l->cv_items);
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void stop_worker(md_loader *l) {
  if (l->running) {
    pthread_mutex_lock(&l->mu);
    __atomic_store_n(&l->stop, 1, __ATOMIC_RELAXED); /* make_batch polls it */
    pthread_cond_broadcast(&l->cv_space);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    l->running = 0;
  }
  /* the worker is gone: no lock needed */
  while (l->qn > 0) {
    qitem_release(&l->q[l->qhead]);
    l->qhead = (l->qhead + 1) % l->prefetch;
    l->qn--;
  }
  l->qhead = 0;
  l->stop = l->wdone = l->wfailed = 0;
}
/* }====================================================== */

/* {====================================================== epochs */
static void make_order(md_loader *l) {
  memcpy(l->order, l->idx, sizeof(int64_t) * (size_t)l->n);
  if (!l->shuffle) return;
  md_rng r;
  md_rng_seed(&r, l->seed, 2 * (uint64_t)l->epoch);
  for (int64_t i = l->n - 1; i > 0; i--) {
    int64_t j = (int64_t)md_rng_below(&r, (uint64_t)i + 1);
    int64_t t = l->order[i];
    l->order[i] = l->order[j];
    l->order[j] = t;
  }
}

static int start_epoch(md_loader *l) {
  l->failed = 0;
  l->pos = 0;
  make_order(l);
  if (l->prefetch == 0) {
    md_rng_seed(&l->rng, l->seed, 2 * (uint64_t)l->epoch + 1);
    if (l->w.nt != l->nthreads) {
      work_free(&l->w);
      if (work_init(l, &l->w, l->nthreads) != 0) {
        keep_error(l->err);
        l->failed = 1;
        return -1;
      }
    }
    return 0;
  }
  l->wnt = l->nthreads;
  l->stop = l->wdone = 0;
  int e = pthread_create(&l->th, NULL, worker, l);
  if (e != 0) {
    md_set_error("loader: cannot start the prefetch thread for %s: %s", l->ds->name, strerror(e));
    keep_error(l->err);
    l->failed = 1;
    return -1;
  }
  l->running = 1;
  return 0;
}

int md_loader_reset(md_loader *l) {
  if (!l) {
    md_set_error("loader: reset of a NULL loader");
    return -1;
  }
  stop_worker(l);
  l->epoch++;
  return start_epoch(l);
}
/* }====================================================== */

/* {====================================================== public */
md_loader *md_loader_new(md_dataset *ds, const int64_t *indices, int64_t n_idx, int64_t batch_size,
                         int shuffle, uint64_t seed, int drop_last, const md_transform *tf,
                         int prefetch) {
  if (!ds) {
    md_set_error("loader: no data set");
    return NULL;
  }
  const char *name = ds->name[0] ? ds->name : "the data set";
  if (ds->n < 0 || ds->c < 1 || ds->h < 1 || ds->w < 1 || !ds->labels || (!ds->images && !ds->get)) {
    md_set_error("loader: %s is not usable (%lld items of %d x %d x %d, %s labels, %s images)", name,
                 (long long)ds->n, ds->c, ds->h, ds->w, ds->labels ? "with" : "no",
                 ds->images || ds->get ? "with" : "no");
    return NULL;
  }
  if (batch_size < 1) {
    md_set_error("loader: batch_size %lld for %s must be at least 1", (long long)batch_size, name);
    return NULL;
  }
  if (prefetch < 0 || prefetch > MD_LOADER_MAX_PREFETCH) {
    md_set_error("loader: prefetch %d for %s must be 0..%d", prefetch, name, MD_LOADER_MAX_PREFETCH);
    return NULL;
  }
  if (indices && n_idx < 0) {
    md_set_error("loader: %lld indices for %s", (long long)n_idx, name);
    return NULL;
  }
  if (indices)
    for (int64_t i = 0; i < n_idx; i++)
      if (indices[i] < 0 || indices[i] >= ds->n) {
        md_set_error("loader: index %lld (entry %lld of the list) is out of range for %s with %lld items",
                     (long long)indices[i], (long long)i + 1, name, (long long)ds->n);
        return NULL;
      }
  md_tf_plan *plan = md_tf_plan_new(tf, ds->c, ds->h, ds->w, name);
  if (!plan) return NULL;
  md_loader *l = calloc(1, sizeof *l);
  if (!l) {
    md_tf_plan_free(plan);
    md_set_error("loader: out of memory");
    return NULL;
  }
  l->plan = plan;
  l->ds = ds;
  l->n = indices ? n_idx : ds->n;
  l->bs = batch_size;
  l->nb = drop_last ? l->n / l->bs : (l->n + l->bs - 1) / l->bs;
  l->shuffle = shuffle != 0;
  l->drop_last = drop_last != 0;
  l->prefetch = prefetch;
  l->nthreads = 1;
  l->seed = seed;
  l->c = ds->c;
  md_tf_out_size(plan, &l->oh, &l->ow);
  l->masks = ds->has_masks != 0;
  l->direct = ds->images && (!l->masks || ds->masks);
  l->idx = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
  l->order = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
  l->q = calloc((size_t)(prefetch ? prefetch : 1), sizeof *l->q);
  if (!l->idx || !l->order || !l->q) {
    free(l->idx);
    free(l->order);
    free(l->q);
    md_tf_plan_free(plan);
    free(l);
    md_set_error("loader: out of memory for %lld indices", (long long)(indices ? n_idx : ds->n));
    return NULL;
  }
  if (indices)
    memcpy(l->idx, indices, sizeof(int64_t) * (size_t)l->n);
  else
    for (int64_t i = 0; i < l->n; i++) l->idx[i] = i;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_items, NULL);
  pthread_cond_init(&l->cv_space, NULL);
  l->sync_init = 1;
  md_dataset_retain(ds);
  if (start_epoch(l) != 0) {
    char m[1024];
    snprintf(m, sizeof m, "%s", md_last_error());
    md_loader_free(l);
    md_set_error("%s", m);
    return NULL;
  }
  return l;
}

int md_loader_next(md_loader *l, md_tensor **images, md_tensor **labels, md_tensor **masks) {
  qitem it = {0};
  if (images) *images = NULL;
  if (labels) *labels = NULL;
  if (masks) *masks = NULL;
  if (!l) {
    md_set_error("loader: next on a NULL loader");
    return -1;
  }
  if (l->failed) {
    md_set_error("%s", l->err);
    return -1;
  }
  if (l->prefetch == 0) {
    if (l->pos >= l->nb) return 0;
    if (make_batch(l, l->pos, &l->rng, &l->w, &it) != 0) {
      keep_error(l->err);
      l->failed = 1;
      return -1;
    }
  } else {
    pthread_mutex_lock(&l->mu);
    while (l->qn == 0 && !l->wdone) pthread_cond_wait(&l->cv_items, &l->mu);
    if (l->qn == 0) { /* the worker is done */
      int f = l->wfailed;
      if (f) memcpy(l->err, l->werr, sizeof l->err);
      pthread_mutex_unlock(&l->mu);
      if (!f) return 0;
      l->failed = 1;
      md_set_error("%s", l->err);
      return -1;
    }
    it = l->q[l->qhead];
    l->qhead = (l->qhead + 1) % l->prefetch;
    l->qn--;
    pthread_cond_signal(&l->cv_space);
    pthread_mutex_unlock(&l->mu);
  }
  l->pos++;
  if (images) *images = it.img; else md_release(it.img);
  if (labels) *labels = it.lab; else md_release(it.lab);
  if (masks) *masks = it.mask; else md_release(it.mask);
  return 1;
}

void md_loader_free(md_loader *l) {
  if (!l) return;
  if (l->sync_init) {
    stop_worker(l);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_items);
    pthread_cond_destroy(&l->cv_space);
    md_dataset_release(l->ds);
  }
  work_free(&l->w);
  md_tf_plan_free(l->plan);
  free(l->idx);
  free(l->order);
  free(l->q);
  free(l);
}

int64_t md_loader_num_batches(const md_loader *l) { return l ? l->nb : 0; }
int64_t md_loader_num_items(const md_loader *l) { return l ? l->n : 0; }
int64_t md_loader_epoch(const md_loader *l) { return l ? l->epoch : 0; }
int64_t md_loader_position(const md_loader *l) { return l ? l->pos : 0; }
void md_loader_item_shape(const md_loader *l, int *c, int *h, int *w) {
  *c = l->c;
  *h = l->oh;
  *w = l->ow;
}
int md_loader_set_num_threads(md_loader *l, int n) {
  if (!l) {
    md_set_error("loader: set_num_threads on a NULL loader");
    return -1;
  }
  l->nthreads = n < 1 ? 1 : n > 256 ? 256 : n;
  if (l->pos > 0 || l->failed) return 0; /* from the next epoch */
  /* nothing taken yet: restart this epoch with the new count (the same
  ** order and draws) */
  stop_worker(l);
  return start_epoch(l);
}
/* }====================================================== */
