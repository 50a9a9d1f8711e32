/*
** cifar.c -- CIFAR-10 / CIFAR-100 binary batches.
**
** CIFAR-10 record: 1 label byte (0..9), then 3072 bytes: 1024 red, 1024
** green, 1024 blue, each 32x32 row-major -- already CHW.  CIFAR-100 record:
** coarse label (0..19), fine label (0..99), then the same 3072 bytes.
*/
#include "readers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PIX 3072

static const char *const c10_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};
static const char *const c100_fine[100] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew",
    "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
    "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};
static const char *const c100_coarse[20] = {
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2"};

static const char *base(const char *p) {
  const char *b = strrchr(p, '/');
  return b ? b + 1 : p;
}

/* 10 or 100 from the name, else the size, else 0 (error set) */
static int guess_version(const char *path, long long size) {
  const char *b = base(path);
  if (strncmp(b, "data_batch", 10) == 0 || strncmp(b, "test_batch", 10) == 0) return 10;
  if (strcmp(b, "train.bin") == 0 || strcmp(b, "test.bin") == 0) return 100;
  int m10 = size > 0 && size % (PIX + 1) == 0, m100 = size > 0 && size % (PIX + 2) == 0;
  if (m10 && !m100) return 10;
  if (m100 && !m10) return 100;
  if (!m10 && !m100)
    md_set_error("cifar %s: size %lld is a multiple of neither record size (3073 for CIFAR-10, 3074 "
                 "for CIFAR-100)",
                 path, size);
  else
    md_set_error("cifar %s: cannot tell CIFAR-10 from CIFAR-100 by name or size; give version = 10 or 100",
                 path);
  return 0;
}

md_dataset *md_open_cifar(int nfiles, const char *const *files, int version, int fine) {
  if (nfiles < 1 || !files) {
    md_set_error("open_cifar: give at least one batch file");
    return NULL;
  }
  if (version != 0 && version != 10 && version != 100) {
    md_set_error("open_cifar: version must be 10 or 100, got %d", version);
    return NULL;
  }
  /* sizes and version first: allocate once */
  int64_t total = 0;
  int given = version;
  for (int f = 0; f < nfiles; f++) {
    struct stat st;
    if (!files[f] || stat(files[f], &st) != 0) {
      md_set_error("cifar %s: cannot open", files[f] ? files[f] : "(null)");
      return NULL;
    }
    int v = given ? given : guess_version(files[f], (long long)st.st_size);
    if (!v) return NULL;
    if (version && v != version) {
      md_set_error("cifar %s: looks like CIFAR-%d but %s is CIFAR-%d; one version per call", files[f], v,
                   files[0], version);
      return NULL;
    }
    version = v;
    int rec = PIX + (version == 10 ? 1 : 2);
    if (st.st_size == 0 || st.st_size % rec != 0) {
      md_set_error("cifar %s: size %lld is not a multiple of the CIFAR-%d record (%d bytes)%s", files[f],
                   (long long)st.st_size, version, rec, st.st_size == 0 ? " (empty)" : "");
      return NULL;
    }
    total += st.st_size / rec;
  }
  int rec = PIX + (version == 10 ? 1 : 2);
  int ncl = version == 10 ? 10 : fine ? 100 : 20;
  md_dataset *ds = md_dataset_new();
  if (!ds) return NULL;
  ds->images = malloc((size_t)total * PIX);
  ds->labels = malloc(sizeof *ds->labels * (size_t)total);
  ds->class_names = calloc((size_t)ncl, sizeof(char *));
  ds->nclasses = ncl;
  if (!ds->images || !ds->labels || !ds->class_names) {
    md_set_error("cifar: out of memory for %lld images", (long long)total);
    md_dataset_release(ds);
    return NULL;
  }
  const char *const *names = version == 10 ? c10_names : fine ? c100_fine : c100_coarse;
  for (int k = 0; k < ncl; k++)
    if (!(ds->class_names[k] = strdup(names[k]))) {
      md_set_error("cifar: out of memory");
      md_dataset_release(ds);
      return NULL;
    }
  int64_t at = 0;
  for (int f = 0; f < nfiles; f++) {
    size_t size;
    uint8_t *buf = md_read_file(files[f], &size, "cifar");
    if (!buf) goto fail;
    if (size % rec != 0 || at + (int64_t)(size / rec) > total) { /* changed under us */
      free(buf);
      md_set_error("cifar %s: size changed while reading", files[f]);
      goto fail;
    }
    int64_t m = (int64_t)(size / rec);
    for (int64_t i = 0; i < m; i++) {
      const uint8_t *r = buf + (size_t)i * rec;
      int lab = version == 10 ? r[0] : fine ? r[1] : r[0];
      if (lab >= ncl) {
        free(buf);
        md_set_error("cifar %s: record %lld has %s label %d (want 0..%d)", files[f], (long long)i,
                     version == 10 ? "the" : fine ? "fine" : "coarse", lab, ncl - 1);
        goto fail;
      }
      if (version == 100 && (r[0] >= 20 || r[1] >= 100)) {
        md_set_error("cifar %s: record %lld has labels %d/%d (want coarse 0..19, fine 0..99)", files[f],
                     (long long)i, r[0], r[1]);
        free(buf);
        goto fail;
      }
      ds->labels[at] = lab;
      memcpy(ds->images + (size_t)at * PIX, r + (rec - PIX), PIX);
      at++;
    }
    free(buf);
  }
  ds->n = at;
  ds->c = 3, ds->h = 32, ds->w = 32;
  if (version == 10) {
    snprintf(ds->name, sizeof ds->name, "CIFAR-10");
    const float m[3] = {0.4914f, 0.4822f, 0.4465f}, s[3] = {0.2470f, 0.2435f, 0.2616f};
    memcpy(ds->mean, m, sizeof m), memcpy(ds->std, s, sizeof s);
  } else {
    snprintf(ds->name, sizeof ds->name, "CIFAR-100");
    const float m[3] = {0.5071f, 0.4865f, 0.4409f}, s[3] = {0.2673f, 0.2564f, 0.2762f};
    memcpy(ds->mean, m, sizeof m), memcpy(ds->std, s, sizeof s);
  }
  return ds;
fail:
  md_dataset_release(ds);
  return NULL;
}
