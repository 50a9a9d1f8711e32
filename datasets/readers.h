/*
** readers.h -- the data-set readers of datasets/ (see dataset.h for the
** md_dataset they return and datasets/README.md for the formats).
**
** Every open function returns a new md_dataset (refcount 1, drop it with
** md_dataset_release) or NULL with md_last_error() naming the file and the
** problem.  Nothing here aborts on bad input.
**
** Ownership: md_dataset_release frees class_names (every string and the
** array), images, labels and masks with free(), then calls free_impl(ds) for
** impl, then frees ds.  A reader therefore allocates those with malloc.
*/
#ifndef MD_READERS_H
#define MD_READERS_H

#include "dataset.h"

/* a zeroed data set with refcount 1 (NULL on out of memory, error set) */
md_dataset *md_dataset_new(void);

/* IDX (MNIST, Fashion-MNIST, ...): images (magic 0x00000803, uint8 n x rows x
** cols) and labels (0x00000801, uint8 n), each plain or gzip'd (detected by
** the magic 1f 8b).  c = 1, nclasses = max label + 1.  A path containing
** "fashion" gives the name "Fashion-MNIST", its class names and its mean/std;
** one containing "mnist" gives "MNIST" and its constants; others compute
** mean/std from the pixels. */
md_dataset *md_open_idx(const char *images, const char *labels);

/* CIFAR binary batches: CIFAR-10 (label byte + 3072 bytes per record:
** data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (coarse byte, fine byte,
** 3072 bytes: train.bin, test.bin).  version: 10, 100, or 0 to tell from the
** file names (data_batch* / test_batch* vs train / test), else from the sizes.
** fine: CIFAR-100 fine labels (100 classes) or coarse (20).  All files of one
** call must be of the same version; items are concatenated in order. */
md_dataset *md_open_cifar(int nfiles, const char *const *files, int version, int fine);

/* STL-10 binary: x (uint8, 3 x 96 x 96 per image, each channel stored column
** by column) and y (one byte per image, 1..10, stored as 0..9).  y may be NULL
** (unlabeled.bin): labels are then -1. */
md_dataset *md_open_stl10(const char *x, const char *y);

/* SVHN (cropped digits, format 2): one MATLAB .mat file (train_32x32.mat,
** test_32x32.mat or extra_32x32.mat, v5 compressed or not; read with
** libmatio) holding X, uint8 32 x 32 x 3 x N in column-major order, and y,
** N x 1 with the digits 1..9 and 10 for the digit 0.  Labels are the digits
** (10 stored as 0), images 3 x 32 x 32; a missing X or y, another type or
** shape, or a truncated file is an error naming the file. */
md_dataset *md_open_svhn(const char *path);

/* image folders: root/<class>/<file>.{png,jpg,jpeg,bmp} (class ids by sorted
** folder name), or a CSV split "filename,label" (paths relative to root,
** label a class name or an integer; see README).  Pixels decode lazily in
** get(); every file's header is checked at open.
** The classes of a split's name labels: the sorted names of class_csvs'
** labels when given (mini-ImageNet: root = images/, csv = train.csv and
** class_csvs = train, val and test.csv, so each of the 100 wnids has one id
** in every split), else the root's class folders, else the sorted distinct
** names of the split itself. */
typedef struct md_folder_opts {
  const char *csv;   /* split file, or NULL for the class folders */
  const char *const *csvs;       /* or several split files (NULL-terminated), rows in order */
  const char *const *class_csvs; /* NULL-terminated CSV files whose labels name the classes, or NULL */
  const char *masks; /* parallel mask folder (same relative paths; PNG), or NULL */
  int labelme;       /* masks from LabelMe JSON next to each image (<file>.json) */
  int evenodd;       /* LabelMe polygons: even-odd fill (1) or nonzero winding (0) */
  int h, w;          /* output size; 0 = the first image's */
  int channels;      /* 1 or 3; 0 = 1 if the first image is gray, else 3 */
  int stats_max;     /* items decoded at open for mean/std: 0 = default (1000), < 0 none */
} md_folder_opts;
md_dataset *md_open_folder(const char *root, const md_folder_opts *opts);

/* LabelMe JSON alone: rasterise its polygons / rectangles / circles to an
** h x w mask (0/255) for an image of size img_h x img_w (0, 0: the size the
** JSON names).  evenodd as above.  For tests and tools. */
int md_labelme_mask(const char *json_path, int img_h, int img_w, int h, int w, int evenodd, uint8_t *mask);

/* internal to datasets/ (folder.c uses labelme.c) */
typedef struct md_polyset md_polyset;
md_polyset *md_labelme_parse(const char *json_path, int *img_h, int *img_w);
void md_polyset_free(md_polyset *ps);
void md_polyset_raster(const md_polyset *ps, int img_h, int img_w, int h, int w, int evenodd, uint8_t *mask);

/* a whole plain file, malloc'd (NULL with "<what> <path>: ..." set) */
uint8_t *md_read_file(const char *path, size_t *size, const char *what);

/* mean/std per channel of n in-memory CHW uint8 images, into ds->mean/std */
void md_dataset_compute_stats(md_dataset *ds);

#endif
