/*
** bench_loader.c -- the data loader on the real Fashion-MNIST training set:
**   1. time and peak RSS to load the 60,000 images (gzip'd IDX);
**   2. batches of 128 with augmentation (pad_crop 2 + hflip + normalise)
**      through the loader, consumed as fast as possible: batches/s and
**      images/s on the consumer side, prefetch 2 (1 and 2 transform threads)
**      and prefetch 0 (the consumer makes each batch itself);
**   3. a LeNet training step on such a batch (conv 1->6 5x5, relu, maxpool 2,
**      conv 6->16 5x5, relu, maxpool 2, linear 256->120->84->10, cross
**      entropy, backward, SGD), and the ratio step time / batch time
**      (requirement: the loader delivers >= 10x faster than the step eats);
**   4. LeNet training fed by the loader against training on one fixed batch
**      (alternating blocks of 10 steps), and the time the consumer waits in
**      md_loader_next.
**   FMNIST=/path/to/dir  another directory with the four files
**   BENCH_QUICK=1        fewer batches (for a smoke run)
*/
#include "loader.h"
#include "readers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double maxrss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0; /* kB on Linux */
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* {====================================================== LeNet */
typedef struct lenet {
  md_tensor *p[10]; /* c1w c1b c2w c2b f1w f1b f2w f2b f3w f3b */
} lenet;

static md_tensor *param(int ndim, const int64_t *shape, int fan_in) {
  md_tensor *t = md_uniform(ndim, shape, -1.0f, 1.0f);
  md_scale_(t, 1.0f / sqrtf((float)fan_in));
  md_set_requires_grad(t, 1);
  return t;
}
static void lenet_init(lenet *n) {
  n->p[0] = param(4, (int64_t[]){6, 1, 5, 5}, 25);
  n->p[1] = param(1, (int64_t[]){6}, 25);
  n->p[2] = param(4, (int64_t[]){16, 6, 5, 5}, 150);
  n->p[3] = param(1, (int64_t[]){16}, 150);
  n->p[4] = param(2, (int64_t[]){120, 256}, 256);
  n->p[5] = param(1, (int64_t[]){120}, 256);
  n->p[6] = param(2, (int64_t[]){84, 120}, 120);
  n->p[7] = param(1, (int64_t[]){84}, 120);
  n->p[8] = param(2, (int64_t[]){10, 84}, 84);
  n->p[9] = param(1, (int64_t[]){10}, 84);
}
static void lenet_free(lenet *n) {
  for (int i = 0; i < 10; i++) md_release(n->p[i]);
}
/* forward + cross entropy + backward + SGD; returns the loss */
static float lenet_step(lenet *n, md_tensor *x, md_tensor *y, float lr) {
  md_scope s = {0};
  md_conv_params cp = md_conv_params_default();
  md_pool_params pp = md_pool_params_make(2, 2, 0);
  md_tensor *h = MD_S(&s, md_relu(MD_S(&s, md_conv2d(x, n->p[0], n->p[1], cp))));
  h = MD_S(&s, md_max_pool2d(h, pp, NULL));
  h = MD_S(&s, md_relu(MD_S(&s, md_conv2d(h, n->p[2], n->p[3], cp))));
  h = MD_S(&s, md_max_pool2d(h, pp, NULL));
  h = MD_S(&s, md_flatten(h, 1, -1));
  h = MD_S(&s, md_relu(MD_S(&s, md_linear(h, n->p[4], n->p[5]))));
  h = MD_S(&s, md_relu(MD_S(&s, md_linear(h, n->p[6], n->p[7]))));
  h = MD_S(&s, md_linear(h, n->p[8], n->p[9]));
  md_tensor *loss = MD_S(&s, md_cross_entropy(h, y, 1));
  float lv = loss ? md_item(loss) : NAN;
  if (!loss || md_backward(loss, NULL, 0, 0) != 0) {
    fprintf(stderr, "bench_loader: LeNet step failed: %s\n", md_last_error());
    exit(1);
  }
  int g = md_set_grad_enabled(0);
  for (int i = 0; i < 10; i++) {
    md_axpy_(n->p[i], -lr, n->p[i]->grad);
    md_release(n->p[i]->grad);
    n->p[i]->grad = NULL;
  }
  md_set_grad_enabled(g);
  md_scope_free(&s);
  return lv;
}
/* }====================================================== */

static md_transform aug(const md_dataset *ds) {
  md_transform tf = {0};
  tf.pad_crop = 2;
  tf.hflip = 1;
  tf.normalize = 1;
  tf.mean[0] = ds->mean[0];
  tf.std[0] = ds->std[0];
  return tf;
}

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* batches/s of the loader over `nb` batches of one epoch (consumer only);
** *cpu (prefetch 0: the consumer makes the batches) the best CPU time per
** batch of this thread, which the machine's load hardly changes */
static double loader_rate(md_dataset *ds, int prefetch, int threads, int64_t nb, double *cpu) {
  md_transform tf = aug(ds);
  md_loader *l = md_loader_new(ds, NULL, 0, 128, 1, 1, 1, &tf, prefetch);
  if (!l) {
    fprintf(stderr, "bench_loader: %s\n", md_last_error());
    exit(1);
  }
  md_loader_set_num_threads(l, threads);
  md_tensor *x, *y, *m;
  double best = 0, best_cpu = 1e9;
  for (int rep = 0; rep < 3; rep++) {
    md_loader_reset(l);
    /* steady state: from the first batch taken to the last */
    if (md_loader_next(l, &x, &y, &m) != 1) exit(1);
    md_release(x), md_release(y), md_release(m);
    double t0 = now(), c0 = thread_cpu();
    int64_t k = 0;
    while (k < nb - 1 && md_loader_next(l, &x, &y, &m) == 1) {
      md_release(x), md_release(y), md_release(m);
      k++;
    }
    double r = k / (now() - t0), c = (thread_cpu() - c0) / k;
    if (r > best) best = r;
    if (c < best_cpu) best_cpu = c;
  }
  if (cpu) *cpu = best_cpu;
  md_loader_free(l);
  return best;
}

int main(void) {
  const char *dir = getenv("FMNIST") ? getenv("FMNIST") : "/usr/share/datasets/fashion-mnist";
  int quick = getenv("BENCH_QUICK") != NULL;
  char pi[512], pl[512];
  snprintf(pi, sizeof pi, "%s/train-images-idx3-ubyte.gz", dir);
  snprintf(pl, sizeof pl, "%s/train-labels-idx1-ubyte.gz", dir);
  FILE *f = fopen(pi, "rb");
  if (!f) {
    printf("bench_loader: %s not found (apt-get install dataset-fashion-mnist): skipped\n", pi);
    return 0;
  }
  fclose(f);

  /* 1. load */
  double rss0 = maxrss_mb(), t0 = now();
  md_dataset *ds = md_open_idx(pi, pl);
  double tload = now() - t0, rss1 = maxrss_mb();
  if (!ds) {
    fprintf(stderr, "bench_loader: %s\n", md_last_error());
    return 1;
  }
  printf("Fashion-MNIST train: %lld images %dx%dx%d, %d classes\n", (long long)ds->n, ds->c, ds->h, ds->w, ds->nclasses);
  printf("load:   %.3f s   peak RSS %.1f MB (%.1f MB before loading; requirement < 2 s, < 100 MB) %s\n", tload, rss1, rss0,
         tload < 2 && rss1 < 100 ? "OK" : "NOT MET");

  md_init();
  printf("core: %s\n", md_blas_info());
  int64_t nb = quick ? 60 : 60000 / 128;

  /* 2. loader alone */
  double cpu0;
  double r_p2 = loader_rate(ds, 2, 1, nb, NULL);
  double r_p2t2 = loader_rate(ds, 2, 2, nb, NULL);
  double r_p0 = loader_rate(ds, 0, 1, nb, &cpu0);
  printf("loader, batch 128, pad_crop 2 + hflip + normalise, consumer only:\n");
  printf("  prefetch 2, 1 thread : %8.1f batches/s %9.0f images/s\n", r_p2, r_p2 * 128);
  printf("  prefetch 2, 2 threads: %8.1f batches/s %9.0f images/s\n", r_p2t2, r_p2t2 * 128);
  printf("  prefetch 0 (inline)  : %8.1f batches/s %9.0f images/s; CPU time %.3f ms per batch\n", r_p0, r_p0 * 128,
         cpu0 * 1e3);

  /* 3. LeNet step */
  md_manual_seed(1);
  lenet net;
  lenet_init(&net);
  md_transform tf = aug(ds);
  md_loader *l = md_loader_new(ds, NULL, 0, 128, 1, 2, 1, &tf, 2);
  md_tensor *x, *y, *m;
  md_loader_next(l, &x, &y, &m);
  for (int i = 0; i < 3; i++) lenet_step(&net, x, y, 0.05f); /* warm-up */
  int reps = quick ? 5 : 15;
  double ts[64];
  for (int i = 0; i < reps; i++) {
    double s0 = now();
    lenet_step(&net, x, y, 0.05f);
    ts[i] = now() - s0;
  }
  qsort(ts, (size_t)reps, sizeof *ts, cmp_d);
  double tstep = ts[reps / 2];
  md_release(x), md_release(y), md_release(m);
  printf("LeNet step (batch 128, forward + CE + backward + SGD): %.2f ms (median of %d)\n", tstep * 1e3, reps);
  double ratio = tstep * r_p2;
  printf("ratio step time / loader batch time (prefetch 2, 1 thread): %.1fx (requirement >= 10x) %s; "
         "step time / batch CPU time: %.1fx\n",
         ratio, ratio >= 10 ? "OK" : "NOT MET", tstep / cpu0);

  /* 4. training on one fixed batch vs fed by the loader (1 and 2 transform
  ** threads), in alternating blocks of 10 steps so that changes of the
  ** machine's load hit all three alike; medians */
  md_loader *l2 = md_loader_new(ds, NULL, 0, 128, 1, 3, 1, &tf, 2);
  md_loader_set_num_threads(l2, 2);
  md_loader *ls[2] = {l, l2};
  md_loader_reset(l);
  md_tensor *fx, *fy;
  md_loader_next(l, &fx, &fy, &m);
  md_release(m);
  int rounds = quick ? 2 : 5, nsteps = rounds * 10;
  double tfix[50], tfed[2][50], wait[2] = {0, 0}, tall[2] = {0, 0}, loss = 0;
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < 10; k++) {
      double s0 = now();
      lenet_step(&net, fx, fy, 0.05f);
      tfix[r * 10 + k] = now() - s0;
    }
    for (int v = 0; v < 2; v++)
      for (int k = 0; k < 10; k++) {
        double s0 = now();
        if (md_loader_next(ls[v], &x, &y, &m) != 1) {
          md_loader_reset(ls[v]);
          md_loader_next(ls[v], &x, &y, &m);
        }
        wait[v] += now() - s0;
        loss = lenet_step(&net, x, y, 0.05f);
        md_release(x), md_release(y), md_release(m);
        tfed[v][r * 10 + k] = now() - s0;
        tall[v] += tfed[v][r * 10 + k];
      }
  }
  md_release(fx), md_release(fy);
  qsort(tfix, (size_t)nsteps, sizeof *tfix, cmp_d);
  printf("LeNet training, %d steps each, alternating blocks of 10 (median step):\n", nsteps);
  printf("  on one fixed batch          : %7.2f ms/step\n", tfix[nsteps / 2] * 1e3);
  for (int v = 0; v < 2; v++) {
    qsort(tfed[v], (size_t)nsteps, sizeof *tfed[v], cmp_d);
    printf("  fed by the loader, %d thread%s: %7.2f ms/step; waited %.3f ms/step in md_loader_next (%.2f%%)\n", v + 1,
           v ? "s" : " ", tfed[v][nsteps / 2] * 1e3, wait[v] / nsteps * 1e3, 100 * wait[v] / tall[v]);
  }
  printf("  last loss %.3f\n", loss);
  md_loader_free(l2);
  md_loader_free(l);
  lenet_free(&net);
  md_dataset_release(ds);
  return 0;
}
