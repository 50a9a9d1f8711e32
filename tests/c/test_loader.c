/*
** test_loader.c -- the batch loader and the transforms (datasets/loader.c,
** datasets/transform.c) on data sets built in memory: every item once per
** epoch, shuffles by epoch and by seed, drop_last, batch contents, the
** transforms against hand-computed results (the mask following the image),
** freeing mid-epoch, and errors carried from a failing get() in the worker.
*/
#include "check.h"
#include "loader.h"

#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* {====================================================== test data sets */
/* item i: pixel k of the image is (i*7 + k*3) % 251, the label is i + 1000,
** the mask marks the pixels whose image value is odd */
static uint8_t pix(int64_t i, size_t k) { return (uint8_t)((i * 7 + (int64_t)k * 3) % 251); }

typedef struct fake {
  md_dataset ds;
  int64_t fail_at;   /* get() fails on this item (-1: never) */
  int slow_us;       /* get() sleeps this long */
} fake;

static int fake_get(md_dataset *ds, int64_t i, uint8_t *img, uint8_t *mask) {
  fake *f = (fake *)ds;
  if (f->slow_us) usleep((useconds_t)f->slow_us);
  if (i == f->fail_at) {
    md_set_error("fake: /no/such/dir/item%lld.png: cannot open", (long long)i);
    return MD_ERR;
  }
  size_t chw = (size_t)ds->c * ds->h * ds->w, hw = (size_t)ds->h * ds->w;
  for (size_t k = 0; k < chw; k++) img[k] = pix(i, k);
  if (mask)
    for (size_t k = 0; k < hw; k++) mask[k] = (pix(i, k) & 1) ? 255 : 0;
  return MD_OK;
}

/* in memory (lazy = 0) or decoded on access through get() (lazy = 1) */
static fake *make_fake(int64_t n, int c, int h, int w, int masks, int lazy) {
  fake *f = calloc(1, sizeof *f);
  md_dataset *ds = &f->ds;
  ds->refcount = 1;
  ds->n = n, ds->c = c, ds->h = h, ds->w = w;
  ds->nclasses = 10;
  ds->has_masks = masks;
  f->fail_at = -1;
  ds->labels = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) ds->labels[i] = i + 1000;
  size_t chw = (size_t)c * h * w, hw = (size_t)h * w;
  if (lazy) {
    ds->get = fake_get;
  } else {
    ds->images = malloc(chw * (size_t)(n ? n : 1));
    if (masks) ds->masks = malloc(hw * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
      for (size_t k = 0; k < chw; k++) ds->images[i * chw + k] = pix(i, k);
      if (masks)
        for (size_t k = 0; k < hw; k++) ds->masks[i * hw + k] = (pix(i, k) & 1) ? 255 : 0;
    }
  }
  snprintf(ds->name, sizeof ds->name, "fake%s", lazy ? "-lazy" : "");
  for (int k = 0; k < 3; k++) ds->mean[k] = 0.5f, ds->std[k] = 0.25f;
  return f;
}

/* our reference; the loaders hold their own.  md_dataset_release frees the
** arrays and the struct (md_dataset comes first in fake); free_impl is NULL. */
static void drop_fake(fake *f) { md_dataset_release(&f->ds); }
/* }====================================================== */

/* one epoch: labels (as items) in order of delivery into *out (n), batch sizes */
static int64_t run_epoch(md_loader *l, int64_t *out, int64_t cap, int64_t *sizes, int *nbat, int *rc) {
  md_tensor *x, *y, *m;
  int64_t k = 0;
  int r, nb = 0;
  while ((r = md_loader_next(l, &x, &y, &m)) == 1) {
    int64_t b = y->shape[0];
    if (sizes) sizes[nb] = b;
    nb++;
    for (int64_t i = 0; i < b && k < cap; i++) out[k++] = ((int64_t *)y->data)[i] - 1000;
    md_release(x);
    md_release(y);
    md_release(m);
  }
  if (nbat) *nbat = nb;
  if (rc) *rc = r;
  return k;
}

static int is_permutation(const int64_t *v, int64_t n, const int64_t *of, int64_t m) {
  /* v (n entries) holds each entry of `of` (m entries, distinct) exactly once */
  if (n != m) return 0;
  int64_t maxv = 0;
  for (int64_t i = 0; i < m; i++) maxv = of[i] > maxv ? of[i] : maxv;
  int *seen = calloc((size_t)maxv + 1, sizeof *seen);
  int ok = 1;
  for (int64_t i = 0; i < m; i++) seen[of[i]] = 1;
  for (int64_t i = 0; i < n; i++) {
    if (v[i] < 0 || v[i] > maxv || seen[v[i]] != 1) {
      ok = 0;
      break;
    }
    seen[v[i]] = 2;
  }
  free(seen);
  return ok;
}

static void test_once_per_epoch(void) {
  fake *f = make_fake(37, 2, 5, 6, 1, 0);
  int64_t all[37], got[64], sizes[64];
  for (int i = 0; i < 37; i++) all[i] = i;
  const int64_t bss[] = {1, 8, 37, 50};
  const int pfs[] = {0, 1, 2, 5};
  int ok_perm = 1, ok_sizes = 1, ok_nb = 1, ok_rc = 1, ok_order = 1;
  for (int a = 0; a < 4; a++)
    for (int p = 0; p < 4; p++)
      for (int sh = 0; sh < 2; sh++) {
        md_loader *l = md_loader_new(&f->ds, NULL, 0, bss[a], sh, 7, 0, NULL, pfs[p]);
        if (!l) {
          CHECK(l != NULL, "loader new");
          continue;
        }
        for (int e = 0; e < 3; e++) {
          int nb, rc;
          int64_t k = run_epoch(l, got, 64, sizes, &nb, &rc);
          ok_perm &= is_permutation(got, k, all, 37);
          if (!sh)
            for (int64_t i = 0; i < k; i++) ok_order &= got[i] == i;
          ok_nb &= nb == md_loader_num_batches(l) && nb == (37 + bss[a] - 1) / bss[a];
          for (int b = 0; b < nb; b++) ok_sizes &= sizes[b] == (b < nb - 1 ? bss[a] : 37 - (nb - 1) * bss[a]);
          ok_rc &= rc == 0 && md_loader_next(l, NULL, NULL, NULL) == 0; /* end stays the end */
          md_loader_reset(l);
        }
        md_loader_free(l);
      }
  CHECK(ok_perm, "every item exactly once per epoch (batch 1/8/37/50, prefetch 0/1/2/5, shuffled or not)");
  CHECK(ok_order, "without shuffle the order is the data set's");
  CHECK(ok_nb, "batches per epoch = ceil(n / batch)");
  CHECK(ok_sizes, "full batches and a short last one");
  CHECK(ok_rc, "end of epoch: 0, and 0 again until reset");

  /* an index list: exactly those items, in that order without shuffle */
  int64_t idx[] = {36, 0, 5, 5 + 12, 2, 30, 31};
  md_loader *l = md_loader_new(&f->ds, idx, 7, 3, 0, 1, 0, NULL, 2);
  int64_t k = run_epoch(l, got, 64, NULL, NULL, NULL);
  int ok = k == 7;
  for (int i = 0; i < 7 && ok; i++) ok = got[i] == idx[i];
  CHECK(ok, "an index list is delivered in its order");
  md_loader_reset(l);
  k = run_epoch(l, got, 64, NULL, NULL, NULL);
  CHECK(k == 7 && is_permutation(got, k, idx, 7), "an index list, second epoch");
  md_loader_free(l);
  l = md_loader_new(&f->ds, idx, 7, 2, 1, 1, 0, NULL, 2);
  k = run_epoch(l, got, 64, NULL, NULL, NULL);
  CHECK(k == 7 && is_permutation(got, k, idx, 7), "an index list, shuffled: a permutation of it");
  md_loader_free(l);

  /* drop_last */
  l = md_loader_new(&f->ds, NULL, 0, 8, 1, 3, 1, NULL, 2);
  int nb;
  k = run_epoch(l, got, 64, sizes, &nb, NULL);
  int okd = nb == 4 && k == 32 && md_loader_num_batches(l) == 4;
  for (int b = 0; b < nb; b++) okd &= sizes[b] == 8;
  CHECK(okd, "drop_last: 37 items in batches of 8 -> 4 full batches");
  md_loader_free(l);
  l = md_loader_new(&f->ds, NULL, 0, 64, 1, 3, 1, NULL, 2);
  k = run_epoch(l, got, 64, sizes, &nb, NULL);
  CHECK(nb == 0 && k == 0 && md_loader_num_batches(l) == 0, "drop_last with a batch larger than the set: no batches");
  md_loader_free(l);

  /* an empty list */
  l = md_loader_new(&f->ds, idx, 0, 4, 1, 3, 0, NULL, 2);
  CHECK(l && md_loader_num_batches(l) == 0 && md_loader_next(l, NULL, NULL, NULL) == 0, "an empty index list: an empty epoch");
  md_loader_free(l);
  drop_fake(f);
}

static void test_shuffle_seeds(void) {
  fake *f = make_fake(200, 1, 4, 4, 0, 0);
  int64_t a0[200], a1[200], b0[200], b1[200], c0[200];
  md_loader *l = md_loader_new(&f->ds, NULL, 0, 16, 1, 42, 0, NULL, 2);
  run_epoch(l, a0, 200, NULL, NULL, NULL);
  md_loader_reset(l);
  run_epoch(l, a1, 200, NULL, NULL, NULL);
  CHECK(md_loader_epoch(l) == 1, "epoch counter");
  md_loader_free(l);
  l = md_loader_new(&f->ds, NULL, 0, 16, 1, 42, 0, NULL, 0);
  run_epoch(l, b0, 200, NULL, NULL, NULL);
  md_loader_reset(l);
  run_epoch(l, b1, 200, NULL, NULL, NULL);
  md_loader_free(l);
  l = md_loader_new(&f->ds, NULL, 0, 16, 1, 43, 0, NULL, 2);
  run_epoch(l, c0, 200, NULL, NULL, NULL);
  md_loader_free(l);
  int diff01 = memcmp(a0, a1, sizeof a0) != 0, same = !memcmp(a0, b0, sizeof a0) && !memcmp(a1, b1, sizeof a1);
  int dseed = memcmp(a0, c0, sizeof a0) != 0, shuffled = 0;
  for (int i = 0; i < 200; i++) shuffled += a0[i] != i;
  CHECK(shuffled > 150, "shuffle moves most items");
  CHECK(diff01, "epochs 0 and 1 are shuffled differently");
  CHECK(same, "the same seed repeats the run (prefetch 2 and prefetch 0 alike)");
  CHECK(dseed, "another seed, another order");
  drop_fake(f);
}

/* {====================================================== transforms */
static int near(float a, float b) { return fabsf(a - b) <= 1e-6f + 1e-6f * fabsf(b); }

static void test_transform_hand(void) {
  /* 1 x 3 x 4 image 1..12, pad 1, crop at (oy 0, ox 2), flipped.
  ** padded (5 x 6):            crop rows 0..2, cols 2..5:   flipped:
  **   0  0  0  0  0  0          0  0  0  0                  0  0  0  0
  **   0  1  2  3  4  0          2  3  4  0                  0  4  3  2
  **   0  5  6  7  8  0          6  7  8  0                  0  8  7  6
  **   0  9 10 11 12  0 */
  uint8_t img[12], mask[12];
  for (int i = 0; i < 12; i++) img[i] = (uint8_t)(i + 1), mask[i] = (i == 3 || i == 5) ? 255 : 0;
  md_transform tf = {0};
  tf.pad_crop = 1;
  tf.hflip = 1;
  md_tf_plan *p = md_tf_plan_new(&tf, 1, 3, 4, "hand");
  md_tf_draw d = {0, 2, 1};
  float out[12], mout[12];
  md_tf_apply(p, &d, img, mask, out, mout, NULL);
  const float want[12] = {0, 0, 0, 0, 0, 4, 3, 2, 0, 8, 7, 6};
  /* mask objects at pixels 4 (row 1, col 4... value 4) and 6 (value 6) */
  const float wantm[12] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  int ok = 1, okm = 1;
  for (int i = 0; i < 12; i++) ok &= near(out[i], want[i] / 255.0f), okm &= mout[i] == wantm[i];
  CHECK(ok, "pad_crop + flip by hand (image)");
  CHECK(okm, "pad_crop + flip by hand (the mask follows)");
  /* no flip, offset (2, 0): rows 1..3 of padded shifted down -> rows 2,3,4 */
  md_tf_draw d2 = {2, 0, 0};
  md_tf_apply(p, &d2, img, mask, out, mout, NULL);
  const float want2[12] = {0, 5, 6, 7, 0, 9, 10, 11, 0, 0, 0, 0};
  const float wantm2[12] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  ok = okm = 1;
  for (int i = 0; i < 12; i++) ok &= near(out[i], want2[i] / 255.0f), okm &= mout[i] == wantm2[i];
  CHECK(ok && okm, "pad_crop offset (2,0), no flip, image and mask");
  md_tf_plan_free(p);

  /* normalisation: 2 channels */
  md_transform tn = {0};
  tn.normalize = 1;
  tn.mean[0] = 0.5f, tn.std[0] = 0.25f, tn.mean[1] = 0.1f, tn.std[1] = 2.0f;
  p = md_tf_plan_new(&tn, 2, 1, 3, "norm");
  uint8_t im2[6] = {0, 128, 255, 10, 20, 30};
  md_tf_draw d0 = {0, 0, 0};
  float o2[6];
  md_tf_apply(p, &d0, im2, NULL, o2, NULL, NULL);
  ok = 1;
  for (int i = 0; i < 6; i++) {
    int c = i / 3;
    float want_v = ((float)im2[i] / 255.0f - tn.mean[c]) / tn.std[c];
    ok &= near(o2[i], want_v);
  }
  CHECK(ok && near(o2[1], (128.0f / 255.0f - 0.5f) / 0.25f), "normalize: (x/255 - mean) / std per channel");
  md_tf_plan_free(p);

  /* resize 4x4 -> 2x2 halves: each output is the mean of a 2x2 block */
  md_transform tr = {0};
  tr.resize_h = 2, tr.resize_w = 2;
  p = md_tf_plan_new(&tr, 1, 4, 4, "resize");
  uint8_t im4[16] = {0, 10, 100, 101, 20, 30, 103, 104, 200, 200, 5, 6, 200, 201, 7, 9};
  uint8_t m4[16] = {255, 255, 0, 0, 255, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1};
  uint8_t *scr = malloc(md_tf_scratch_bytes(p));
  float o4[4], mo4[4];
  md_tf_apply(p, &d0, im4, m4, o4, mo4, scr);
  /* block means 15, 102, 200.25, 6.75 -> rounded 15, 102, 200, 7;
  ** mask blocks: 3/4 object -> 1; 0; 0; all (value 1 counts as object) -> 1 */
  const float w4[4] = {15, 102, 200, 7}, wm4[4] = {1, 0, 0, 1};
  ok = okm = 1;
  for (int i = 0; i < 4; i++) ok &= near(o4[i], w4[i] / 255.0f), okm &= mo4[i] == wm4[i];
  CHECK(ok, "resize 4x4 -> 2x2 (bilinear, half-pixel centres)");
  CHECK(okm, "resize of the mask: binarised, bilinear, threshold 1/2");
  free(scr);
  md_tf_plan_free(p);

  /* upsampling against the core's bilinear (PyTorch's formula) */
  tr.resize_h = 7, tr.resize_w = 9;
  p = md_tf_plan_new(&tr, 3, 3, 4, "up");
  uint8_t im3[36];
  float f3[36];
  for (int i = 0; i < 36; i++) im3[i] = (uint8_t)((i * 37 + 11) % 256), f3[i] = im3[i];
  scr = malloc(md_tf_scratch_bytes(p));
  float o3[3 * 63];
  md_tf_apply(p, &d0, im3, NULL, o3, NULL, scr);
  md_tensor *t = md_from_data(4, (int64_t[]){1, 3, 3, 4}, f3);
  md_tensor *u = md_upsample_bilinear(t, 7, 9, 0);
  ok = u != NULL;
  for (int i = 0; ok && i < 3 * 63; i++) {
    float ref = floorf((float)md_get(u, i) + 0.5f);
    ok &= near(o3[i], ref / 255.0f);
  }
  CHECK(ok, "resize 3x4 -> 7x9 equals the core's upsample_bilinear, rounded");
  md_release(t);
  md_release(u);
  free(scr);
  md_tf_plan_free(p);

  /* bad plans are errors, not crashes */
  md_transform bad = {0};
  bad.resize_h = 5;
  CHECK(!md_tf_plan_new(&bad, 1, 4, 4, "x") && strstr(md_last_error(), "resize"), "resize with one size: error");
  bad = (md_transform){0};
  bad.normalize = 1;
  CHECK(!md_tf_plan_new(&bad, 1, 4, 4, "x") && strstr(md_last_error(), "std"), "normalize with std 0: error");
  bad.normalize = 0;
  bad.pad_crop = -1;
  CHECK(!md_tf_plan_new(&bad, 1, 4, 4, "x") && strstr(md_last_error(), "pad_crop"), "negative pad: error");
}

/* the expected transform of item it under draw (oy, ox, flip), pad p, for the
** fake data set's pixels: image (c,h,w) /255, mask 0/1 */
static float expect_pix(int64_t it, int ch, int y, int x, int h, int w, int p, int oy, int ox, int flip) {
  int sx = (flip ? w - 1 - x : x) + ox - p, sy = y + oy - p;
  if (sx < 0 || sx >= w || sy < 0 || sy >= h) return 0.0f;
  return (float)pix(it, (size_t)(ch * h + sy) * w + sx) / 255.0f;
}
static float expect_mask(int64_t it, int y, int x, int h, int w, int p, int oy, int ox, int flip) {
  int sx = (flip ? w - 1 - x : x) + ox - p, sy = y + oy - p;
  if (sx < 0 || sx >= w || sy < 0 || sy >= h) return 0.0f;
  return (pix(it, (size_t)sy * w + sx) & 1) ? 1.0f : 0.0f;
}

/* batches of the loader: each item matches some draw, with its mask */
static void check_aug_batches(const char *name, fake *f, int nthreads, int prefetch) {
  const int C = f->ds.c, H = f->ds.h, W = f->ds.w, P = 2;
  md_transform tf = {0};
  tf.pad_crop = P;
  tf.hflip = 1;
  md_loader *l = md_loader_new(&f->ds, NULL, 0, 10, 1, 5, 0, &tf, prefetch);
  md_loader_set_num_threads(l, nthreads);
  md_loader_reset(l);
  md_tensor *x, *y, *m;
  int items = 0, matched = 0, mask_ok = 0, flips = 0, offs[5] = {0};
  while (md_loader_next(l, &x, &y, &m) == 1) {
    const float *xi = x->data, *mi = m ? m->data : NULL;
    for (int64_t b = 0; b < x->shape[0]; b++) {
      int64_t it = ((int64_t *)y->data)[b] - 1000;
      items++;
      int found = 0;
      for (int oy = 0; oy <= 2 * P && !found; oy++)
        for (int ox = 0; ox <= 2 * P && !found; ox++)
          for (int fl = 0; fl < 2 && !found; fl++) {
            int ok = 1;
            for (int c = 0; c < C && ok; c++)
              for (int yy = 0; yy < H && ok; yy++)
                for (int xx = 0; xx < W && ok; xx++)
                  ok = xi[((b * C + c) * H + yy) * W + xx] == expect_pix(it, c, yy, xx, H, W, P, oy, ox, fl);
            if (!ok) continue;
            found = 1;
            flips += fl;
            offs[ox]++;
            int okm = mi != NULL;
            for (int yy = 0; yy < H && okm; yy++)
              for (int xx = 0; xx < W && okm; xx++)
                okm = mi[(b * H + yy) * W + xx] == expect_mask(it, yy, xx, H, W, P, oy, ox, fl);
            mask_ok += okm;
          }
      matched += found;
    }
    md_release(x);
    md_release(y);
    md_release(m);
  }
  char buf[160];
  snprintf(buf, sizeof buf, "%s: every image is a padded crop (+ flip) of its item (%d of %d)", name, matched, items);
  CHECK(items == f->ds.n && matched == items, buf);
  snprintf(buf, sizeof buf, "%s: every mask follows its image's crop and flip (%d)", name, mask_ok);
  CHECK(mask_ok == items, buf);
  snprintf(buf, sizeof buf, "%s: flips and offsets vary (%d flips, x offsets %d %d %d %d %d)", name, flips, offs[0],
           offs[1], offs[2], offs[3], offs[4]);
  CHECK(flips > items / 4 && flips < 3 * items / 4 && offs[0] > 0 && offs[4] > 0, buf);
  md_loader_free(l);
}

static void test_loader_contents(void) {
  /* plain batches: the items' pixels / 255, the masks 0/1 */
  fake *f = make_fake(23, 3, 4, 5, 1, 0);
  md_loader *l = md_loader_new(&f->ds, NULL, 0, 6, 1, 9, 0, NULL, 2);
  md_tensor *x, *y, *m;
  int ok = 1, shapes = 1;
  while (md_loader_next(l, &x, &y, &m) == 1) {
    int64_t B = x->shape[0];
    shapes &= x->ndim == 4 && x->shape[1] == 3 && x->shape[2] == 4 && x->shape[3] == 5 && x->dtype == MD_F32;
    shapes &= y->ndim == 1 && y->shape[0] == B && y->dtype == MD_I64;
    shapes &= m && m->ndim == 4 && m->shape[0] == B && m->shape[1] == 1 && m->shape[2] == 4 && m->shape[3] == 5;
    for (int64_t b = 0; b < B; b++) {
      int64_t it = ((int64_t *)y->data)[b] - 1000;
      for (int k = 0; k < 60; k++) ok &= ((float *)x->data)[b * 60 + k] == (float)pix(it, (size_t)k) / 255.0f;
      for (int k = 0; k < 20; k++) ok &= ((float *)m->data)[b * 20 + k] == ((pix(it, (size_t)k) & 1) ? 1.0f : 0.0f);
    }
    md_release(x);
    md_release(y);
    md_release(m);
  }
  CHECK(shapes, "batch shapes: images (B,C,H,W) float, labels (B) int64, masks (B,1,H,W)");
  CHECK(ok, "batch contents equal the items (images /255, masks 0/1, labels)");
  md_loader_free(l);
  drop_fake(f);

  /* without masks: NULL */
  f = make_fake(5, 1, 2, 2, 0, 0);
  l = md_loader_new(&f->ds, NULL, 0, 5, 0, 0, 0, NULL, 1);
  CHECK(md_loader_next(l, &x, &y, &m) == 1 && m == NULL, "no masks in the data set: masks NULL");
  md_release(x);
  md_release(y);
  md_loader_free(l);
  drop_fake(f);

  /* normalize with the loader, resize with masks, lazy set: sizes */
  f = make_fake(9, 3, 6, 8, 1, 1);
  md_transform tf = {0};
  tf.resize_h = 12, tf.resize_w = 10;
  tf.normalize = 1;
  for (int k = 0; k < 3; k++) tf.mean[k] = 0.5f, tf.std[k] = 0.25f;
  l = md_loader_new(&f->ds, NULL, 0, 4, 0, 0, 0, &tf, 2);
  int c, h, w;
  md_loader_item_shape(l, &c, &h, &w);
  CHECK(c == 3 && h == 12 && w == 10, "item shape after resize");
  ok = md_loader_next(l, &x, &y, &m) == 1;
  ok = ok && x->shape[2] == 12 && x->shape[3] == 10 && m->shape[2] == 12 && m->shape[3] == 10;
  /* the first pixel of a resize is the first source pixel (corner) */
  ok = ok && near(((float *)x->data)[0], ((float)pix(0, 0) / 255.0f - 0.5f) / 0.25f);
  CHECK(ok, "lazy set: resize + normalize through the loader");
  md_release(x);
  md_release(y);
  md_release(m);
  md_loader_free(l);
  drop_fake(f);

  /* augmentation: each item a crop + flip of itself, with its mask */
  f = make_fake(120, 2, 5, 7, 1, 0);
  check_aug_batches("in memory, prefetch 2", f, 1, 2);
  check_aug_batches("in memory, prefetch 0, 2 threads", f, 2, 0);
  drop_fake(f);
  f = make_fake(60, 1, 6, 6, 1, 1);
  check_aug_batches("lazy, prefetch 3, 2 threads", f, 2, 3);
  drop_fake(f);

  /* determinism of the augmentation: prefetch 0 vs 2, 1 vs 2 threads */
  f = make_fake(50, 1, 8, 8, 1, 0);
  md_transform ta = {0};
  ta.pad_crop = 3;
  ta.hflip = 1;
  float *first = NULL;
  int same = 1;
  for (int v = 0; v < 3; v++) {
    l = md_loader_new(&f->ds, NULL, 0, 50, 1, 77, 0, &ta, v == 0 ? 0 : 2);
    md_loader_set_num_threads(l, v == 2 ? 2 : 1);
    md_loader_reset(l); /* compare epoch 1 */
    md_loader_next(l, &x, &y, &m);
    if (!first) {
      first = malloc(sizeof(float) * 50 * 64);
      memcpy(first, x->data, sizeof(float) * 50 * 64);
    } else
      same &= memcmp(first, x->data, sizeof(float) * 50 * 64) == 0;
    md_release(x);
    md_release(y);
    md_release(m);
    md_loader_free(l);
  }
  free(first);
  CHECK(same, "augmented batches repeat exactly across prefetch depths and thread counts");
  drop_fake(f);
}
/* }====================================================== */

static void test_free_and_errors(void) {
  /* free mid-epoch: at once, after one batch, with a slow worker */
  fake *f = make_fake(100, 1, 8, 8, 1, 0);
  size_t alive0 = md_tensors_alive();
  md_loader *l = md_loader_new(&f->ds, NULL, 0, 4, 1, 1, 0, NULL, 3);
  md_loader_free(l);
  l = md_loader_new(&f->ds, NULL, 0, 4, 1, 1, 0, NULL, 3);
  md_tensor *x, *y, *m;
  md_loader_next(l, &x, &y, &m);
  md_release(x);
  md_release(y);
  md_release(m);
  usleep(20000); /* let the worker fill the queue and block */
  md_loader_free(l);
  CHECK(md_tensors_alive() == alive0, "freeing mid-epoch releases the queued batches");
  drop_fake(f);
  f = make_fake(100, 1, 8, 8, 1, 1);
  f->slow_us = 2000;
  l = md_loader_new(&f->ds, NULL, 0, 4, 1, 1, 0, NULL, 2);
  md_loader_next(l, &x, &y, &m);
  md_release(x);
  md_release(y);
  md_release(m);
  md_loader_free(l); /* the worker is inside get() */
  l = md_loader_new(&f->ds, NULL, 0, 4, 1, 1, 0, NULL, 2);
  md_loader_reset(l);
  md_loader_reset(l);
  md_loader_free(l);
  f->slow_us = 5000; /* a batch of 50 takes 250 ms */
  l = md_loader_new(&f->ds, NULL, 0, 50, 1, 1, 0, NULL, 2);
  usleep(20000);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  md_loader_free(l);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
  char nm[128];
  snprintf(nm, sizeof nm, "freeing stops a slow batch between items (%.1f ms, the batch takes 250)", ms);
  CHECK(ms < 150, nm);
  CHECK(md_tensors_alive() == alive0, "freeing while the worker is in get(), resets in a row: nothing left");
  drop_fake(f);

  /* errors from get() in the worker come to the consumer */
  for (int v = 0; v < 3; v++) {
    f = make_fake(30, 1, 3, 3, 0, 1);
    f->fail_at = 9;
    int prefetch = v == 0 ? 0 : 2;
    l = md_loader_new(&f->ds, NULL, 0, 4, 0, 1, 0, NULL, prefetch);
    if (v == 2) {
      md_loader_set_num_threads(l, 2);
      md_loader_reset(l);
    }
    int64_t got[64];
    int nb, rc;
    int64_t k = run_epoch(l, got, 64, NULL, &nb, &rc);
    char name[128];
    snprintf(name, sizeof name, "error carried from get() (prefetch %d, %d threads): batches before it, then -1", prefetch,
             v == 2 ? 2 : 1);
    CHECK(rc < 0 && nb == 2 && k == 8, name);
    const char *e = md_last_error();
    snprintf(name, sizeof name, "the message names the file and the item: %s", e);
    CHECK(strstr(e, "/no/such/dir/item9.png") && strstr(e, "item 10 of fake-lazy"), name);
    md_clear_error();
    CHECK(md_loader_next(l, &x, &y, &m) < 0 && strstr(md_last_error(), "item9.png") && !x && !y && !m,
          "after an error, next() fails again until reset");
    md_loader_reset(l);
    run_epoch(l, got, 64, NULL, &nb, &rc);
    CHECK(rc < 0 && nb == 2, "the next epoch meets the same error");
    f->fail_at = -1;
    md_loader_reset(l);
    k = run_epoch(l, got, 64, NULL, &nb, &rc);
    CHECK(rc == 0 && k == 30, "fixed: the epoch after runs to the end");
    md_loader_free(l);
    drop_fake(f);
  }

  /* bad arguments are errors */
  f = make_fake(10, 1, 3, 3, 0, 0);
  CHECK(!md_loader_new(&f->ds, NULL, 0, 0, 0, 0, 0, NULL, 2) && strstr(md_last_error(), "batch_size"), "batch_size 0: error");
  CHECK(!md_loader_new(&f->ds, NULL, 0, 4, 0, 0, 0, NULL, -1) && strstr(md_last_error(), "prefetch"), "prefetch -1: error");
  int64_t badidx[] = {1, 2, 10};
  CHECK(!md_loader_new(&f->ds, badidx, 3, 4, 0, 0, 0, NULL, 2) && strstr(md_last_error(), "index 10"), "index out of range: error");
  md_transform tn = {0};
  tn.normalize = 1;
  CHECK(!md_loader_new(&f->ds, NULL, 0, 4, 0, 0, 0, &tn, 2) && strstr(md_last_error(), "std"), "normalize with std 0: error");
  CHECK(!md_loader_new(NULL, NULL, 0, 4, 0, 0, 0, NULL, 2), "no data set: error");
  CHECK(md_loader_next(NULL, &x, &y, &m) < 0 && md_loader_reset(NULL) < 0, "NULL loader: errors");
  md_loader_free(NULL);
  CHECK(f->ds.refcount == 1, "the loaders gave back their references");
  drop_fake(f);
  CHECK(md_tensors_alive() == alive0, "no tensors left");
}

int main(void) {
  test_once_per_epoch();
  test_shuffle_seeds();
  test_transform_hand();
  test_loader_contents();
  test_free_and_errors();
  return summary();
}
