/*
** safetensors.c -- reading and writing the safetensors format (checkpoints
** and the PyTorch test fixtures).
**
** The file: an 8-byte little-endian header length N, N bytes of JSON
**   {"name":{"dtype":"F32","shape":[2,3],"data_offsets":[b,e]}, ...,
**    "__metadata__":{"key":"value"}}
** padded with spaces to a multiple of 8, then the data section: raw
** little-endian tensors, offsets relative to its start.
**
** The reader treats the file as hostile: the core's strict JSON reader
** (md_json.h, a pull parser walked along the schema, so nothing nests deeper
** than the schema and nothing is built but the entries), every size
** checked against the file before anything is allocated, offsets that must
** tile the data section exactly (as the reference implementation demands),
** and an error naming the file and the problem instead of a crash.
** The writer goes through "<path>.tmp.<pid>", fsync and rename(2), so a crash
** leaves either the old file or the new one, never half of one.
*/
#include "internal.h"
#include "md_json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BE 1
#else
#define HOST_BE 0
#endif

/* the reference implementation refuses headers above 100 MB; so do we, so a
** hostile length cannot make us allocate the whole file for JSON */
#define MAX_HEADER ((uint64_t)100000000)
/* elements per tensor, as md_new allows (keeps strides far from overflow) */
#define MAX_NUMEL ((int64_t)1 << 40)

/* {====================================================== dtypes */
enum { ST_F32, ST_I64, ST_F64, ST_F16, ST_BF16, ST_I32, ST_NTYPES };
static const char *const st_names[ST_NTYPES] = {"F32", "I64", "F64", "F16", "BF16", "I32"};
static const int st_size[ST_NTYPES] = {4, 8, 8, 2, 2, 4};
/* other names of the format, recognised so the message can say "unsupported"
** rather than "unknown" */
static const char *const st_other[] = {"BOOL", "U8",  "I8",      "U16",     "I16",
                                       "U32",  "U64", "F8_E5M2", "F8_E4M3", NULL};

/* byte order: the format is little-endian; swap in place on big-endian hosts */
static void swap_bytes(void *buf, int64_t n, int esz) {
  if (!HOST_BE) return;
  unsigned char *p = buf;
  for (int64_t i = 0; i < n; i++, p += esz)
    for (int a = 0, b = esz - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

/* IEEE half to float, exactly (subnormals, infinities and NaN included) */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, ex = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (ex == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (ex == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: value man * 2^-24 is exact in float */
      float f = (float)man * 5.9604644775390625e-8f;
      return sign ? -f : f;
    }
  } else {
    bits = sign | ((ex + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* convert n elements of file type src (already in host order) into dst,
** which is float for the float types and int64 for the integer types */
static void convert(void *dst, const void *src, int64_t n, int st) {
  float *fd = dst;
  switch (st) {
  case ST_F64:
    for (int64_t i = 0; i < n; i++) {
      double v;
      memcpy(&v, (const char *)src + 8 * i, 8);
      fd[i] = (float)v;
    }
    break;
  case ST_F16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t v;
      memcpy(&v, (const char *)src + 2 * i, 2);
      fd[i] = half_to_float(v);
    }
    break;
  case ST_BF16: /* bf16 is the top half of a float */
    for (int64_t i = 0; i < n; i++) {
      uint16_t v;
      memcpy(&v, (const char *)src + 2 * i, 2);
      uint32_t bits = (uint32_t)v << 16;
      memcpy(&fd[i], &bits, 4);
    }
    break;
  case ST_I32: {
    int64_t *id = dst;
    for (int64_t i = 0; i < n; i++) {
      int32_t v;
      memcpy(&v, (const char *)src + 4 * i, 4);
      id[i] = v;
    }
    break;
  }
  default: break;
  }
}
/* }====================================================== */

/* {====================================================== helpers */
/* an error "fn: path: message" */
static int st_error(const char *fn, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int st_error(const char *fn, const char *path, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  md_set_error("%s: %s: %s", fn, path ? path : "(null)", msg);
  return MD_ERR;
}

/* a name for messages: printable, cut short, never the raw bytes of a hostile file */
static const char *show(const char *s, size_t n, char *buf, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 5 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      buf[k++] = (char)c;
    } else {
      k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
    }
    if (k + 5 >= cap && i + 1 < n) {
      memcpy(buf + (k < cap - 4 ? k : cap - 4), "...", 4);
      return buf;
    }
  }
  buf[k < cap ? k : cap - 1] = 0;
  return buf;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t k = write(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return 0;
    }
    c += k;
    n -= (size_t)k;
  }
  return 1;
}
static int pread_all(int fd, void *p, size_t n, uint64_t off) {
  char *c = p;
  while (n > 0) {
    ssize_t k = pread(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) return 0; /* end of file */
    c += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}
/* }====================================================== */

/* {====================================================== writing */
static const char *const SAVE = "safetensors_save";

/* fsync the directory holding path, so the rename itself is durable; a
** failure here is not reported (some file systems refuse it) */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t k = (size_t)(slash - path);
    if (k >= sizeof dir) return;
    memcpy(dir, path, k);
    dir[k] = 0;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* one tensor's bytes, little-endian, in logical order */
static int write_tensor(int fd, const md_tensor *t) {
  int64_t n = md_numel(t);
  size_t esz = t->dtype == MD_I64 ? 8 : 4, nb = (size_t)n * esz;
  if (n == 0) return 1;
  if (md_is_contiguous(t) && !HOST_BE) return write_all(fd, t->data, nb);
  void *buf = malloc(nb);
  if (!buf) {
    errno = ENOMEM;
    return 0;
  }
  if (t->dtype == MD_I64)
    md_to_i64(t, buf);
  else
    md_to_float(t, buf);
  swap_bytes(buf, n, (int)esz);
  int ok = write_all(fd, buf, nb);
  free(buf);
  return ok;
}

int md_safetensors_save(const char *path, int n, const md_named *items) {
  if (!path || !*path) return st_error(SAVE, "(no file name)", "a file name is needed");
  if (n < 0 || (n > 0 && !items)) return st_error(SAVE, path, "bad item count %d", n);
  /* check every item before touching the disk */
  for (int i = 0; i < n; i++) {
    const char *nm = items[i].name;
    const md_tensor *t = items[i].t;
    char sh[80];
    size_t bad;
    if (!nm) return st_error(SAVE, path, "item %d has no name", i + 1);
    if (!md_json_utf8_valid(nm, strlen(nm), &bad))
      return st_error(SAVE, path, "name '%s' (item %d) is not valid UTF-8 (byte %zu)",
                      show(nm, strlen(nm), sh, sizeof sh), i + 1, bad);
    if (!strcmp(nm, "__metadata__"))
      return st_error(SAVE, path, "item %d: the name '__metadata__' is reserved by the format",
                      i + 1);
    if (!t) {
      if (md_last_status() != MD_OK) return MD_ERR; /* keep the earlier error */
      return st_error(SAVE, path, "tensor '%s' (item %d) is missing",
                      show(nm, strlen(nm), sh, sizeof sh), i + 1);
    }
    if (t->dtype != MD_F32 && t->dtype != MD_I64)
      return st_error(SAVE, path, "tensor '%s' has an unknown dtype %d",
                      show(nm, strlen(nm), sh, sizeof sh), (int)t->dtype);
  }
  /* names must be unique: sort a copy of the list and compare neighbours */
  const char **names = malloc(sizeof *names * (size_t)(n > 0 ? n : 1));
  if (!names) return st_error(SAVE, path, "out of memory");
  for (int i = 0; i < n; i++) names[i] = items[i].name;
  qsort(names, (size_t)n, sizeof *names, by_name);
  for (int i = 1; i < n; i++)
    if (!strcmp(names[i], names[i - 1])) {
      char sh[80];
      st_error(SAVE, path, "the name '%s' is used twice",
               show(names[i], strlen(names[i]), sh, sizeof sh));
      free(names);
      return MD_ERR;
    }
  free(names);

  /* the header lists the tensors in the given order; the data section holds
  ** the int64 ones first, then the float ones (each group in the given order),
  ** so every tensor is aligned to its element size for readers that map the
  ** file, as the reference writer arranges it */
  uint64_t *offs = malloc(sizeof *offs * (size_t)(n > 0 ? n : 1));
  if (!offs) return st_error(SAVE, path, "out of memory");
  uint64_t off = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++)
      if ((items[i].t->dtype == MD_I64) == (pass == 0)) {
        offs[i] = off;
        off += (uint64_t)md_numel(items[i].t) * (items[i].t->dtype == MD_I64 ? 8u : 4u);
      }
  md_json_buf h = {0};
  md_json_put(&h, "{", 1);
  for (int i = 0; i < n; i++) {
    const md_tensor *t = items[i].t;
    uint64_t nb = (uint64_t)md_numel(t) * (t->dtype == MD_I64 ? 8u : 4u);
    if (i) md_json_put(&h, ",", 1);
    md_json_put_string(&h, items[i].name, strlen(items[i].name));
    md_json_putf(&h, ":{\"dtype\":\"%s\",\"shape\":[", t->dtype == MD_I64 ? "I64" : "F32");
    for (int d = 0; d < t->ndim; d++) md_json_putf(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    md_json_putf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offs[i],
              (unsigned long long)(offs[i] + nb));
  }
  free(offs);
  md_json_put(&h, "}", 1);
  while (!h.oom && h.n % 8) md_json_put(&h, " ", 1);
  if (h.oom) {
    free(h.p);
    return st_error(SAVE, path, "out of memory building the header");
  }

  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) {
    free(h.p);
    return st_error(SAVE, path, "out of memory");
  }
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    st_error(SAVE, path, "cannot create %s: %s", tmp, strerror(errno));
    free(h.p);
    free(tmp);
    return MD_ERR;
  }
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
  int ok = write_all(fd, len8, 8) && write_all(fd, h.p, h.n);
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; ok && i < n; i++)
      if ((items[i].t->dtype == MD_I64) == (pass == 0)) ok = write_tensor(fd, items[i].t);
  const char *what = "writing";
  if (ok && fsync(fd) != 0) {
    ok = 0;
    what = "syncing";
  }
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = 0;
    e = errno;
    what = "closing";
  }
  if (ok && rename(tmp, path) != 0) {
    ok = 0;
    e = errno;
    what = "renaming";
  }
  if (!ok) {
    st_error(SAVE, path, "%s %s failed: %s", what, tmp, strerror(e));
    unlink(tmp);
  } else {
    sync_dir(path);
  }
  free(h.p);
  free(tmp);
  return ok ? MD_OK : MD_ERR;
}
/* }====================================================== */

/* {====================================================== the header parser */
typedef struct entry {
  char *name;
  size_t name_len;
  int st; /* ST_* */
  int ndim;
  int64_t shape[MD_MAX_DIMS];
  uint64_t b, e;
} entry;

typedef struct parser {
  const char *path;
  md_json j; /* the header, through the shared strict reader (md_json.h) */
  entry *ent;
  int nent, cap;
} parser;

static const char *const LOAD = "safetensors_load";

static int perr(parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *P, const char *fmt, ...) {
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  md_set_error("%s: %s: %s", LOAD, P->path, msg);
  return 0;
}
/* the reader failed (bad JSON, or a value of another type than the schema's) */
static int jerr(parser *P) { return perr(P, "bad JSON in the header at byte %zu: %s", P->j.err_at, P->j.err); }
/* a key / item result: 1 another member, 0 the end, -1 an error (reported) */
static int more(parser *P, int r) { return r < 0 ? (jerr(P), -1) : r; }
static int is(const char *k, size_t l, const char *name) { return l == strlen(name) && !memcmp(k, name, l); }

/* a JSON number that must be a non-negative integer below 2^63 */
static int json_uint(parser *P, uint64_t *v, const char *what, const char *ctx) {
  char exp[160];
  md_json_num x;
  snprintf(exp, sizeof exp, "a number (%s%s)", ctx, what);
  if (!md_json_number(&P->j, &x, exp)) return jerr(P);
  int nlen = (int)(x.len > 40 ? 40 : x.len);
  if (x.text[0] == '-' && !(x.fits && x.i == 0)) return perr(P, "%snegative %s %.*s", ctx, what, nlen, x.text);
  if (!x.is_int) return perr(P, "%s%s %.*s is not an integer", ctx, what, nlen, x.text);
  if (!x.fits) return perr(P, "%s%s %.*s is too large", ctx, what, nlen, x.text);
  *v = (uint64_t)x.i;
  return 1;
}

/* "__metadata__": {"key": "value", ...}; the values must be strings.  We keep
** none of it (the API has no place for it) but check it all the same. */
static int parse_metadata(parser *P) {
  md_json *j = &P->j;
  int r;
  if (!md_json_object(j, "an object for __metadata__")) return jerr(P);
  while ((r = more(P, md_json_key(j, NULL, NULL))) > 0) {
    md_json_type t = md_json_peek(j);
    if (t != MD_JSON_STRING && t != MD_JSON_NONE)
      return perr(P, "__metadata__ values must be strings, found %s at byte %zu", md_json_found(j),
                  md_json_offset(j));
    if (!md_json_string(j, NULL, NULL, "a string value in __metadata__")) return jerr(P);
  }
  return r == 0;
}

static int parse_dtype(parser *P, entry *E, const char *ctx) {
  const char *dt;
  size_t l;
  if (!md_json_string(&P->j, &dt, &l, "a string (the dtype)")) return jerr(P);
  E->st = -1;
  for (int t = 0; t < ST_NTYPES; t++)
    if (is(dt, l, st_names[t])) E->st = t;
  if (E->st >= 0) return 1;
  int other = 0;
  for (int t = 0; st_other[t]; t++) other |= is(dt, l, st_other[t]);
  char sd[64];
  return perr(P, "%s%s dtype '%s' (supported: F32, F64, F16, BF16, I64, I32)", ctx, other ? "unsupported" : "unknown",
              show(dt, l, sd, sizeof sd));
}

static int parse_shape(parser *P, entry *E, const char *ctx) {
  int r;
  if (!md_json_array(&P->j, "an array (the shape)")) return jerr(P);
  E->ndim = 0;
  while ((r = more(P, md_json_item(&P->j))) > 0) {
    uint64_t d;
    if (!json_uint(P, &d, "size in shape", ctx)) return 0;
    if (E->ndim == MD_MAX_DIMS) return perr(P, "%sshape has more than %d dimensions", ctx, MD_MAX_DIMS);
    E->shape[E->ndim++] = (int64_t)d;
  }
  return r == 0;
}

static int parse_offsets(parser *P, entry *E, const char *ctx) {
  uint64_t o[2];
  int k = 0, r;
  if (!md_json_array(&P->j, "an array (data_offsets)")) return jerr(P);
  while ((r = more(P, md_json_item(&P->j))) > 0) {
    if (k == 2) return perr(P, "%sdata_offsets must have 2 entries, found more", ctx);
    if (!json_uint(P, &o[k++], "data offset", ctx)) return 0;
  }
  if (r < 0) return 0;
  if (k != 2) return perr(P, "%sdata_offsets must have 2 entries, found %d", ctx, k);
  E->b = o[0];
  E->e = o[1];
  return 1;
}

/* {"dtype":"F32","shape":[2,3],"data_offsets":[b,e]}, each field exactly once */
static int parse_entry(parser *P, entry *E, const char *shown) {
  static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
  int (*const parse[3])(parser *, entry *, const char *) = {parse_dtype, parse_shape, parse_offsets};
  int have[3] = {0, 0, 0}, r;
  char ctx[160], exp[200];
  const char *k;
  size_t l;
  snprintf(ctx, sizeof ctx, "tensor '%s': ", shown);
  snprintf(exp, sizeof exp, "an object describing tensor '%s'", shown);
  if (!md_json_object(&P->j, exp)) return jerr(P);
  while ((r = more(P, md_json_key(&P->j, &k, &l))) > 0) {
    int f = 0;
    while (f < 3 && !is(k, l, fields[f])) f++;
    char sk[64];
    if (f == 3)
      return perr(P, "%sunknown field '%s' (expected dtype, shape, data_offsets)", ctx, show(k, l, sk, sizeof sk));
    if (have[f]) return perr(P, "%sthe field '%s' appears twice", ctx, fields[f]);
    have[f] = 1;
    if (!parse[f](P, E, ctx)) return 0;
  }
  for (int f = 0; r == 0 && f < 3; f++)
    if (!have[f]) return perr(P, "%smissing field '%s'", ctx, fields[f]);
  return r == 0;
}

static int parse_header(parser *P) {
  md_json *j = &P->j;
  int have_meta = 0, r;
  const char *k;
  size_t l;
  if (!md_json_object(j, "'{' (the header is a JSON object)")) return jerr(P);
  while ((r = more(P, md_json_key(j, &k, &l))) > 0) {
    if (is(k, l, "__metadata__")) {
      if (have_meta) return perr(P, "__metadata__ appears twice");
      have_meta = 1;
      if (!parse_metadata(P)) return 0;
      continue;
    }
    char sk[80];
    show(k, l, sk, sizeof sk);
    if (memchr(k, 0, l)) return perr(P, "the tensor name at byte %zu ('%s') contains a NUL character", j->at, sk);
    if (P->nent == P->cap) {
      int nc = P->cap ? 2 * P->cap : 16;
      entry *v = realloc(P->ent, sizeof *v * (size_t)nc);
      if (!v) return perr(P, "out of memory");
      P->ent = v;
      P->cap = nc;
    }
    entry *E = &P->ent[P->nent++];
    memset(E, 0, sizeof *E);
    if (!(E->name = malloc(l + 1))) return perr(P, "out of memory");
    memcpy(E->name, k, l + 1);
    E->name_len = l;
    if (!parse_entry(P, E, sk)) return 0;
  }
  return r == 0 && (md_json_end(j) || jerr(P));
}

static int by_name_e(const void *a, const void *b) {
  return strcmp((*(entry *const *)a)->name, (*(entry *const *)b)->name);
}
static int by_offset(const void *a, const void *b) {
  const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
  if (x->b != y->b) return x->b < y->b ? -1 : 1;
  return x->e < y->e ? -1 : x->e > y->e;
}

/* "[2, 3]": md_shp_raw's "2x3" would read as hex after a 0 */
static const char *shape_str(const entry *E, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < E->ndim && k < cap; d++)
    k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)E->shape[d]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
  return buf;
}

/* names unique, sizes consistent, offsets tiling [0, dsize) exactly */
static int check_entries(parser *P, uint64_t dsize) {
  char sa[80], sb2[80], ss[200];
  for (int i = 0; i < P->nent; i++) {
    entry *E = &P->ent[i];
    show(E->name, E->name_len, sa, sizeof sa);
    int64_t cap = 1; /* product of sizes, zeros taken as one, so strides fit */
    for (int d = 0; d < E->ndim; d++) {
      int64_t s = E->shape[d] > 1 ? E->shape[d] : 1;
      if (s > MAX_NUMEL / cap)
        return perr(P, "tensor '%s': shape %s is too large", sa, shape_str(E, ss, sizeof ss));
      cap *= s;
    }
    uint64_t nb = (uint64_t)md_shape_numel(E->ndim, E->shape) * (uint64_t)st_size[E->st];
    if (E->e < E->b)
      return perr(P, "tensor '%s': data_offsets [%llu, %llu] end before they begin", sa,
                  (unsigned long long)E->b, (unsigned long long)E->e);
    if (E->e - E->b != nb)
      return perr(
          P, "tensor '%s': %s of shape %s needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
          sa, st_names[E->st], shape_str(E, ss, sizeof ss), (unsigned long long)nb,
          (unsigned long long)E->b, (unsigned long long)E->e, (unsigned long long)(E->e - E->b));
    if (E->e > dsize)
      return perr(P,
                  "tensor '%s': data_offsets [%llu, %llu] run past the end of the data section "
                  "(%llu bytes; is the file truncated?)",
                  sa, (unsigned long long)E->b, (unsigned long long)E->e,
                  (unsigned long long)dsize);
  }
  entry **v = malloc(sizeof *v * (size_t)(P->nent > 0 ? P->nent : 1));
  if (!v) return perr(P, "out of memory");
  for (int i = 0; i < P->nent; i++) v[i] = &P->ent[i];
  int ok = 1;
  qsort(v, (size_t)P->nent, sizeof *v, by_name_e);
  for (int i = 1; i < P->nent && ok; i++)
    if (!strcmp(v[i]->name, v[i - 1]->name))
      ok = perr(P, "duplicate tensor name '%s'", show(v[i]->name, v[i]->name_len, sa, sizeof sa));
  if (ok) qsort(v, (size_t)P->nent, sizeof *v, by_offset);
  uint64_t at = 0;
  for (int i = 0; i < P->nent && ok; i++) {
    if (v[i]->b < at)
      ok = perr(P, "tensors '%s' and '%s' overlap (data_offsets [%llu, %llu] and [%llu, %llu])",
                show(v[i - 1]->name, v[i - 1]->name_len, sa, sizeof sa),
                show(v[i]->name, v[i]->name_len, sb2, sizeof sb2), (unsigned long long)v[i - 1]->b,
                (unsigned long long)v[i - 1]->e, (unsigned long long)v[i]->b,
                (unsigned long long)v[i]->e);
    else if (v[i]->b > at)
      ok = perr(P,
                "%llu unused bytes in the data section before tensor '%s' (data_offsets [%llu, "
                "%llu]); the format packs tensors without gaps",
                (unsigned long long)(v[i]->b - at), show(v[i]->name, v[i]->name_len, sa, sizeof sa),
                (unsigned long long)v[i]->b, (unsigned long long)v[i]->e);
    at = v[i]->e > at ? v[i]->e : at;
  }
  if (ok && at != dsize)
    ok = perr(P, "the data section has %llu bytes but the tensors use %llu (trailing data)",
              (unsigned long long)dsize, (unsigned long long)at);
  free(v);
  return ok;
}
/* }====================================================== */

/* {====================================================== reading */
static void free_entries(parser *P) {
  for (int i = 0; i < P->nent; i++) free(P->ent[i].name);
  free(P->ent);
  P->ent = NULL;
  P->nent = P->cap = 0;
}

/* read one tensor at file offset off */
static md_tensor *read_tensor(parser *P, int fd, const entry *E, uint64_t off) {
  md_dtype dt = E->st == ST_I64 || E->st == ST_I32 ? MD_I64 : MD_F32;
  md_tensor *t = md_new(E->ndim, E->shape, dt);
  if (!t) return NULL;
  int64_t n = md_numel(t);
  size_t nb = (size_t)(E->e - E->b);
  int direct = E->st == ST_F32 || E->st == ST_I64;
  void *buf = direct ? t->data : malloc(nb ? nb : 1);
  if (!buf) {
    md_release(t);
    perr(P, "out of memory reading tensor of %zu bytes", nb);
    return NULL;
  }
  int r = pread_all(fd, buf, nb, off);
  if (r <= 0) {
    char sa[80];
    if (r == 0)
      perr(P, "tensor '%s': the file ended while reading its data (was it truncated meanwhile?)",
           show(E->name, E->name_len, sa, sizeof sa));
    else
      perr(P, "tensor '%s': read error: %s", show(E->name, E->name_len, sa, sizeof sa),
           strerror(errno));
    if (!direct) free(buf);
    md_release(t);
    return NULL;
  }
  swap_bytes(buf, n, st_size[E->st]);
  if (!direct) {
    convert(t->data, buf, n, E->st);
    free(buf);
  }
  return t;
}

int md_safetensors_load(const char *path, int *n, md_named **items) {
  if (n) *n = 0;
  if (items) *items = NULL;
  if (!n || !items) return st_error(LOAD, path, "no place for the result");
  if (!path || !*path) return st_error(LOAD, "(no file name)", "a file name is needed");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return st_error(LOAD, path, "cannot open: %s", strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return st_error(LOAD, path, "cannot stat: %s", strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return st_error(LOAD, path, "%s",
                    S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
  }
  uint64_t fsize = (uint64_t)sb.st_size;
  parser P = {0};
  P.path = path;
  unsigned char len8[8];
  if (fsize < 8) {
    close(fd);
    return st_error(LOAD, path, "truncated file: %llu bytes, less than the 8-byte header length",
                    (unsigned long long)fsize);
  }
  if (pread_all(fd, len8, 8, 0) != 1) {
    close(fd);
    return st_error(LOAD, path, "cannot read the header length: %s", strerror(errno));
  }
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | len8[k];
  if (hlen > fsize - 8) {
    close(fd);
    return st_error(LOAD, path,
                    "header length %llu is larger than the file allows (%llu bytes after the "
                    "length; truncated or not a safetensors file)",
                    (unsigned long long)hlen, (unsigned long long)(fsize - 8));
  }
  if (hlen > MAX_HEADER) {
    close(fd);
    return st_error(LOAD, path, "header length %llu exceeds the %llu-byte limit",
                    (unsigned long long)hlen, (unsigned long long)MAX_HEADER);
  }
  if (hlen == 0) {
    close(fd);
    return st_error(LOAD, path, "empty header (length 0); a header is at least '{}'");
  }
  char *hdr = malloc((size_t)hlen);
  if (!hdr) {
    close(fd);
    return st_error(LOAD, path, "out of memory for a %llu-byte header", (unsigned long long)hlen);
  }
  if (pread_all(fd, hdr, (size_t)hlen, 8) != 1) {
    free(hdr);
    close(fd);
    return st_error(LOAD, path, "cannot read the header: %s", strerror(errno));
  }
  md_json_init(&P.j, hdr, (size_t)hlen, NULL);
  int ok = parse_header(&P) && check_entries(&P, fsize - 8 - hlen);
  md_json_free(&P.j);
  md_named *out = NULL;
  int got = 0;
  if (ok) {
    out = calloc((size_t)(P.nent > 0 ? P.nent : 1), sizeof *out);
    if (!out) ok = perr(&P, "out of memory");
  }
  for (int i = 0; ok && i < P.nent; i++) {
    md_tensor *t = read_tensor(&P, fd, &P.ent[i], 8 + hlen + P.ent[i].b);
    if (!t) {
      ok = 0;
      break;
    }
    out[i].name = P.ent[i].name; /* hand the name over */
    out[i].t = t;
    P.ent[i].name = NULL;
    got++;
  }
  free(hdr);
  close(fd);
  free_entries(&P);
  if (!ok) {
    md_named_free(got, out);
    return md_last_status() == MD_ENOMEM ? MD_ENOMEM : MD_ERR;
  }
  *n = got;
  *items = out;
  return MD_OK;
}

void md_named_free(int n, md_named *items) {
  if (!items) return;
  for (int i = 0; i < n; i++) {
    free((char *)items[i].name);
    md_release(items[i].t);
  }
  free(items);
}
/* }====================================================== */
