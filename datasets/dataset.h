/*
** dataset.h -- data sets as the readers in datasets/ deliver them, and the
** batch loader.  Nothing here knows about Lua (lua/ldata.c binds it).
**
** A data set is n items of c x h x w uint8 pixels (CHW), an int64 label each,
** and optionally a 1 x h x w uint8 mask (0 background, 255 object).  Readers
** of compact formats (IDX, CIFAR, STL-10) hold everything in memory; image
** folders decode on access through get().  Errors: NULL / MD_ERR with a
** message in md_last_error() naming the file and the problem.
*/
#ifndef MD_DATASET_H
#define MD_DATASET_H

#include "md.h"

typedef struct md_dataset md_dataset;
struct md_dataset {
  int refcount;
  int64_t n;
  int c, h, w;
  int nclasses;
  char **class_names; /* nclasses strings or NULL */
  uint8_t *images;    /* n*c*h*w when in memory, else NULL */
  int64_t *labels;    /* n */
  uint8_t *masks;     /* n*h*w when in memory and present, else NULL */
  int has_masks;
  /* lazy sets: fill img (c*h*w) and, when non-NULL and has_masks, mask (h*w);
  ** must be thread-safe (the loader calls it from its worker thread) */
  int (*get)(md_dataset *ds, int64_t i, uint8_t *img, uint8_t *mask);
  void (*free_impl)(md_dataset *ds);
  void *impl;
  char name[64];
  float mean[3], std[3]; /* per-channel normalisation for this data set */
};

/* item i (0-based) into img / mask (mask may be NULL) */
int md_dataset_get(md_dataset *ds, int64_t i, uint8_t *img, uint8_t *mask);
md_dataset *md_dataset_retain(md_dataset *ds);
void md_dataset_release(md_dataset *ds);

#endif
