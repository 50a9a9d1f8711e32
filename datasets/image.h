/*
** image.h -- image files for the data layer: decoding (PNG, JPEG, BMP through
** stb_image), writing (PNG through stb_image_write with zlib's deflate,
** BMP), resizing (stb_image_resize), float tensors <-> PNG, and the
** compositing kernel of the generated "cluttered" data set.
**
** datasets/image.c is the ONE file that holds the stb implementations; the
** rest of the project includes this header and never stb's.
**
** Pixels in these functions are interleaved HWC uint8 (as files hold them)
** unless a name says CHW.  Every function reports errors through
** md_set_error with the file's path and returns NULL / MD_ERR; none aborts.
*/
#ifndef MD_IMAGE_H
#define MD_IMAGE_H

#include "md.h"

#include <stdint.h>

/* the header only: size and channels in the file (1 gray, 2 gray+alpha,
** 3 RGB, 4 RGBA).  MD_OK, or MD_ERR with "<path>: <reason>". */
int md_image_info(const char *path, int *w, int *h, int *c);

/* decode a whole file into malloc'd HWC pixels with req_c channels (1 or 3 or
** 4; 0 = as in the file, returned in *c).  Free with md_image_free. */
uint8_t *md_image_load(const char *path, int req_c, int *w, int *h, int *c);
void md_image_free(void *pixels);

/* resize HWC pixels (c channels) from sw x sh to dw x dh (stb_image_resize:
** Mitchell filter down, Catmull-Rom up, edges clamped).  Same size: a copy. */
int md_image_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int c);

/* decode `path`, convert to c channels (1: luminance, 3: RGB; alpha is
** dropped) and resize to w x h, into dst as CHW (c*h*w bytes). */
int md_image_load_chw(const char *path, int c, int h, int w, uint8_t *dst);

/* decode a mask file: any nonzero pixel (after conversion to gray) is
** object.  Resized to w x h like md_mask_resize (area average, >= 50% -> object), into
** dst (h*w bytes, 0 or 255). */
int md_mask_load(const char *path, int h, int w, uint8_t *dst);

/* writers: HWC pixels, c = 1..4 (BMP drops alpha).  No JPEG writer: stb's
** has undefined behaviour (int shifts) that UBSan stops on. */
int md_png_write(const char *path, const uint8_t *pixels, int w, int h, int c);
int md_bmp_write(const char *path, const uint8_t *pixels, int w, int h, int c);

/* tensors: a float (C,H,W) with C = 1, 2, 3 or 4, or (H,W), values in [0,1]
** (clamped, rounded to 1/255) written as PNG; read back as (C,H,W) float in
** [0,1] with C as in the file (channels = 0) or converted (1, 3 or 4). */
int md_png_write_tensor(const char *path, const md_tensor *t);
md_tensor *md_image_read_tensor(const char *path, int channels);

/* {=== the cluttered data set (datasets/gen_cluttered.lua)
** One sample: a textured, cluttered size x size RGB background of texture
** family `texture` (0 .. MD_CLUTTER_FAMILIES-1; its details -- colours,
** period, phase, angle, noise, distractor blobs -- drawn from `seed`), with
** the gray item (ih x iw, uint8) scaled to item_size x item_size and placed
** with its top-left corner at (x, y).  Writes img (3*size*size, CHW) and
** mask (size*size: 255 exactly where the scaled item's pixels are > 0). */
#define MD_CLUTTER_FAMILIES 10
typedef struct md_clutter_params {
  int size;      /* output side, 8..1024 */
  int item_size; /* scaled item side, 1..size */
  int x, y;      /* placement, 0..size-item_size */
  int texture;   /* family */
  uint64_t seed; /* everything random about this background */
} md_clutter_params;
int md_clutter_compose(const uint8_t *item, int ih, int iw, const md_clutter_params *p, uint8_t *img,
                       uint8_t *mask);
const char *md_clutter_family_name(int k); /* "hstripes", ...; NULL if out of range */
/* }=== */

#endif
