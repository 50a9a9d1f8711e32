/*
** loader.h -- the batch loader: an epoch of shuffled (or ordered) batches of
** a data set, transformed (transform.h), prefetched by a background thread.
**
**   md_loader *l = md_loader_new(ds, NULL, 0, 128, 1, 42, 0, &tf, 2);
**   md_tensor *x, *y, *m;
**   int r;
**   while ((r = md_loader_next(l, &x, &y, &m)) == 1) { ...; md_release(x); md_release(y); md_release(m); }
**   if (r < 0) ... md_last_error() ...
**   md_loader_reset(l);   -- the next epoch
**   md_loader_free(l);
**
** Batches: images float (B, C, H', W') after the transform, labels int64 (B),
** masks float (B, 1, H', W') of 0/1, or NULL when the data set has none.
**
** Determinism: epoch e's order and augmentation draws come from generators
** seeded with (seed, e) -- not from md_rand*.  Epochs differ; the same seed
** repeats a run exactly, whatever the prefetch depth.
**
** Threads: with prefetch >= 1 a POSIX thread makes the next `prefetch`
** batches ahead of the consumer (the worker's errors come back as the
** consumer's md_last_error()); with prefetch 0 next() makes each batch
** itself.  The loader retains the data set (md_dataset_retain); the data
** set's get() is called from the worker thread.  All loader functions are
** for the one thread that owns the loader.
*/
#ifndef MD_LOADER_H
#define MD_LOADER_H

#include "dataset.h"
#include "transform.h"

#define MD_LOADER_MAX_PREFETCH 64

typedef struct md_loader md_loader;

/* indices: 0-based items of ds to draw from (copied), or NULL for all of them
** (n_idx ignored).  tf may be NULL (x/255 only).  Starts epoch 0. */
md_loader *md_loader_new(md_dataset *ds, const int64_t *indices, int64_t n_idx, int64_t batch_size,
                         int shuffle, uint64_t seed, int drop_last, const md_transform *tf,
                         int prefetch);
/* 1: a batch (three new references; *masks may be NULL), 0: end of the epoch
** (again on every later call until reset), <0: an error (md_last_error();
** the epoch is over after it) */
int md_loader_next(md_loader *l, md_tensor **images, md_tensor **labels, md_tensor **masks);
/* start the next epoch (drops the batches not consumed yet) */
int md_loader_reset(md_loader *l);
void md_loader_free(md_loader *l); /* stops and joins the worker; NULL is fine */

int64_t md_loader_num_batches(const md_loader *l);
int64_t md_loader_num_items(const md_loader *l);
int64_t md_loader_epoch(const md_loader *l);  /* 0 for the first */
int64_t md_loader_position(const md_loader *l); /* batches delivered this epoch */
/* the item shape of a batch: channels, height, width after the transform */
void md_loader_item_shape(const md_loader *l, int *c, int *h, int *w);
/* OpenMP threads the worker reads and transforms a batch with (default 1:
** the worker runs beside a training thread that wants the other cores; see
** BENCHMARKS.md).  At once when no batch of this epoch was taken yet (the
** epoch restarts with the same order and draws), else from the next epoch. */
int md_loader_set_num_threads(md_loader *l, int n);

#endif
