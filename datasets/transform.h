/*
** transform.h -- per-item transforms of the batch loader: uint8 CHW images
** (and their 1 x h x w masks) into float CHW.
**
** The pipeline, in torchvision's order:
**   1. resize (bilinear, PyTorch's half-pixel centres) to resize_h x resize_w
**      -- the result is rounded to uint8, as a PIL Resize would be;
**   2. pad by pad_crop zero pixels on every side and crop back to the size at
**      a random offset (torchvision RandomCrop(size, padding=p));
**   3. random horizontal flip with probability 1/2;
**   4. x/255, then (x/255 - mean[c]) / std[c] when normalize is set.
** The mask goes through the same geometry: it is binarised (nonzero is
** object), resized bilinearly and thresholded at one half, padded with
** background, cropped and flipped with the image's offsets, and delivered as
** float 0/1.
**
** Randomness comes from an md_rng the caller owns (the loader's worker has
** its own: the core's md_rand* generator is not thread-safe).  The random
** parameters of an item are drawn first (md_tf_draw_item), then applied
** (md_tf_apply): drawing in item order keeps runs reproducible however the
** application is scheduled.
*/
#ifndef MD_TRANSFORM_H
#define MD_TRANSFORM_H

#include "md.h"

#define MD_TF_MAXC 4 /* channels that normalize can take a mean/std for */

typedef struct md_transform {
  int resize_h, resize_w; /* 0, 0: keep the data set's size */
  int pad_crop;           /* 0: off */
  int hflip;              /* 0: off */
  int normalize;          /* 0: x/255; 1: (x/255 - mean[c]) / std[c] */
  float mean[MD_TF_MAXC], std[MD_TF_MAXC];
} md_transform;

/* {====================================================== random numbers
** xoshiro256** seeded through splitmix64 from (seed, stream): independent
** streams for each (seed, epoch, purpose). */
typedef struct md_rng {
  uint64_t s[4];
} md_rng;
void md_rng_seed(md_rng *r, uint64_t seed, uint64_t stream);
uint64_t md_rng_next(md_rng *r);
uint64_t md_rng_below(md_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n >= 1 */
/* }====================================================== */

/* the random choices for one item */
typedef struct md_tf_draw {
  int oy, ox; /* crop offset in the padded image, 0..2*pad_crop */
  int flip;
} md_tf_draw;

/* a transform compiled for one input size: lookup tables, resize tables,
** scratch sizes.  Errors (bad sizes, std 0, too many channels to normalise)
** name `what` (the data set). */
typedef struct md_tf_plan md_tf_plan;
md_tf_plan *md_tf_plan_new(const md_transform *tf, int c, int h, int w, const char *what);
void md_tf_plan_free(md_tf_plan *p);
void md_tf_out_size(const md_tf_plan *p, int *oh, int *ow);
/* bytes of scratch md_tf_apply needs (0 without resize) */
size_t md_tf_scratch_bytes(const md_tf_plan *p);

void md_tf_draw_item(const md_tf_plan *p, md_rng *r, md_tf_draw *d);
/* img: c*h*w uint8; mask: h*w uint8 or NULL.  out: c*oh*ow floats; mout:
** oh*ow floats (written when mask and mout are both non-NULL).  scratch:
** md_tf_scratch_bytes(p) bytes (may be NULL when that is 0).  Thread-safe for
** distinct out/scratch buffers. */
void md_tf_apply(const md_tf_plan *p, const md_tf_draw *d, const uint8_t *img, const uint8_t *mask,
                 float *out, float *mout, uint8_t *scratch);

#endif
