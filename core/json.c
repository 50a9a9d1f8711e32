/*
** json.c -- the strict JSON pull reader and the small writer of md_json.h.
**
** One pass over the bytes, no recursion (md_json_skip walks nesting with
** the reader's own stack of open containers), and every access bounded by
** the length, so hostile input can neither run past the buffer nor exhaust
** the C stack.  Strings are decoded into one of two growable buffers (keys,
** values): a string never decodes longer than it is written, so one
** allocation per string suffices.
*/
#include "md_json.h"

#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEN 0x80 /* stack flag: this container has had a member */
#define DEFAULT_DEPTH 64

/* {====================================================== UTF-8 */
/* the length of the valid UTF-8 sequence at s (n bytes available), or 0 */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t k;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    k = 1, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    k = 2, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    k = 3, cp = c & 0x07;
  } else {
    return 0; /* a continuation byte, an overlong lead (c0, c1) or beyond U+10FFFF */
  }
  if (n <= k) return 0;
  for (size_t j = 1; j <= k; j++) {
    if ((s[j] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[j] & 0x3f);
  }
  if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return k + 1;
}

int md_json_utf8_valid(const char *s, size_t n, size_t *bad) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = utf8_seq(u + i, n - i);
    if (!k) {
      if (bad) *bad = i;
      return 0;
    }
    i += k;
  }
  return 1;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}
/* }====================================================== */

/* {====================================================== state and errors */
void md_json_init(md_json *j, const char *s, size_t n, const md_json_opts *opts) {
  memset(j, 0, sizeof *j);
  j->s = s;
  j->n = s ? n : 0;
  if (opts) j->o = *opts;
  if (j->o.max_depth <= 0) j->o.max_depth = DEFAULT_DEPTH;
  if (j->o.max_depth > MD_JSON_DEPTH_MAX) j->o.max_depth = MD_JSON_DEPTH_MAX;
}

void md_json_free(md_json *j) {
  free(j->kbuf);
  free(j->vbuf);
  j->kbuf = j->vbuf = NULL;
  j->kcap = j->vcap = 0;
}

int md_json_fail(md_json *j, size_t at, const char *fmt, ...) {
  if (j->failed) return 0; /* the first error is the one to report */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->err, sizeof j->err, fmt, ap);
  va_end(ap);
  j->failed = 1;
  j->err_at = at;
  return 0;
}

static void ws(md_json *j) {
  while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
    j->i++;
}

size_t md_json_offset(md_json *j) {
  ws(j);
  return j->i;
}

const char *md_json_found(md_json *j) {
  ws(j);
  if (j->i >= j->n) return "the end of the input";
  unsigned char c = (unsigned char)j->s[j->i];
  switch (c) {
  case '{': return "an object";
  case '[': return "an array";
  case '"': return "a string";
  case 't':
  case 'f':
  case 'n': { /* a literal only when spelled out, else a stray letter */
    const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
    size_t l = strlen(w);
    if (j->n - j->i >= l && !memcmp(j->s + j->i, w, l)) return c == 'n' ? "null" : "a boolean";
    break;
  }
  case ',': return "','";
  case ':': return "':'";
  case '}': return "'}'";
  case ']': return "']'";
  default: break;
  }
  if (c == '-' || (c >= '0' && c <= '9')) return "a number";
  if (c > 0x20 && c < 0x7f)
    snprintf(j->found, sizeof j->found, "an unexpected character '%c'", c);
  else
    snprintf(j->found, sizeof j->found, "an unexpected byte 0x%02x", c);
  return j->found;
}

int md_json_expect(md_json *j, const char *what) {
  if (j->failed) return 0;
  const char *f = md_json_found(j);
  if (j->i >= j->n) return md_json_fail(j, j->n, "unexpected end of the input (expected %s)", what);
  return md_json_fail(j, j->i, "expected %s, found %s", what, f);
}

md_json_type md_json_peek(md_json *j) {
  if (j->failed) return MD_JSON_NONE;
  ws(j);
  if (j->i >= j->n) return MD_JSON_NONE;
  char c = j->s[j->i];
  switch (c) {
  case '{': return MD_JSON_OBJECT;
  case '[': return MD_JSON_ARRAY;
  case '"': return MD_JSON_STRING;
  case 't':
  case 'f': return MD_JSON_BOOL;
  case 'n': return MD_JSON_NULL;
  default: return c == '-' || (c >= '0' && c <= '9') ? MD_JSON_NUMBER : MD_JSON_NONE;
  }
}

/* a value of type t begins at the current position (after whitespace) */
static int begin(md_json *j, md_json_type t, const char *what) {
  if (md_json_peek(j) != t) return md_json_expect(j, what);
  j->at = j->i;
  if (j->depth == 0 && !j->top) j->top = t;
  return 1;
}
/* }====================================================== */

/* {====================================================== containers */
static int open_container(md_json *j, md_json_type t, const char *what) {
  if (!begin(j, t, what)) return 0;
  if (j->depth >= j->o.max_depth)
    return md_json_fail(j, j->i, "nested too deeply (more than %d levels of arrays and objects)", j->o.max_depth);
  j->stack[j->depth++] = (unsigned char)t;
  j->i++;
  return 1;
}
int md_json_object(md_json *j, const char *what) { return open_container(j, MD_JSON_OBJECT, what ? what : "an object"); }
int md_json_array(md_json *j, const char *what) { return open_container(j, MD_JSON_ARRAY, what ? what : "an array"); }

/* the common part of key / item: 1 a member follows, 0 closed, -1 error */
static int next_member(md_json *j, md_json_type t, char close) {
  if (j->failed) return -1;
  if (j->depth == 0 || (j->stack[j->depth - 1] & ~SEEN) != t) {
    md_json_fail(j, j->i, "%s called outside an %s", t == MD_JSON_OBJECT ? "md_json_key" : "md_json_item",
                 t == MD_JSON_OBJECT ? "object" : "array");
    return -1;
  }
  unsigned char *st = &j->stack[j->depth - 1];
  ws(j);
  if (j->i < j->n && j->s[j->i] == close) {
    j->i++;
    j->depth--;
    return 0;
  }
  if (*st & SEEN) {
    if (j->i >= j->n || j->s[j->i] != ',') {
      md_json_expect(j, t == MD_JSON_OBJECT ? "',' or '}'" : "',' or ']'");
      return -1;
    }
    j->i++;
    ws(j);
  } else if (j->i >= j->n) {
    md_json_expect(j, t == MD_JSON_OBJECT ? "a string key or '}'" : "a value or ']'");
    return -1;
  }
  *st |= SEEN;
  return 1;
}

static int scan_string(md_json *j, char **buf, size_t *cap, const char **out, size_t *len);

int md_json_key(md_json *j, const char **key, size_t *len) {
  int first = j->depth > 0 && !(j->stack[j->depth - 1] & SEEN);
  int r = next_member(j, MD_JSON_OBJECT, '}');
  if (r <= 0) return r;
  if (j->i >= j->n || j->s[j->i] != '"') {
    md_json_expect(j, first ? "a string key or '}'" : "a string key");
    return -1;
  }
  j->at = j->i;
  if (!scan_string(j, key ? &j->kbuf : NULL, &j->kcap, key, len)) return -1;
  ws(j);
  if (j->i >= j->n || j->s[j->i] != ':') {
    md_json_expect(j, "':'");
    return -1;
  }
  j->i++;
  return 1;
}

int md_json_item(md_json *j) { return next_member(j, MD_JSON_ARRAY, ']'); }
/* }====================================================== */

/* {====================================================== scalars */
static int hex4(const char *s, uint32_t *v) {
  *v = 0;
  for (int k = 0; k < 4; k++) {
    char c = s[k];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return 0;
    *v = *v << 4 | (uint32_t)d;
  }
  return 1;
}

/* the string at j->i (its opening quote), decoded into *buf (NULL: only
** checked); *out and *len receive the text */
static int scan_string(md_json *j, char **buf, size_t *cap, const char **out, size_t *len) {
  const char *s = j->s;
  size_t start = j->i, q = start + 1, e = q, k = 0;
  while (e < j->n && s[e] != '"') e += s[e] == '\\' ? 2 : 1;
  if (e >= j->n) return md_json_fail(j, start, "unterminated string (the string starting here is not closed)");
  if (buf && *cap < e - q + 1) {
    char *nb = realloc(*buf, e - q + 1);
    if (!nb) return md_json_fail(j, start, "out of memory for a string of %zu bytes", e - q);
    *buf = nb, *cap = e - q + 1;
  }
  char *o = buf ? *buf : NULL, tmp[4];
  while (q < e) {
    unsigned char c = (unsigned char)s[q];
    size_t w = 1; /* bytes written */
    if (c == '\\') {
      char x = s[q + 1]; /* q + 1 < e: the scan above stepped over escapes */
      const char *simple = strchr("\"\\/bfnrt", x);
      if (x && simple) {
        tmp[0] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
        q += 2;
      } else {
        uint32_t cp, lo;
        if (x != 'u' || q + 6 > e || !hex4(s + q + 2, &cp))
          return md_json_fail(j, q, "invalid escape in a string (\\%c)", x >= 0x20 && x < 0x7f ? x : '?');
        if (cp >= 0xdc00 && cp <= 0xdfff) return md_json_fail(j, q, "lone low surrogate \\u%04x in a string", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (!(q + 12 <= e && s[q + 6] == '\\' && s[q + 7] == 'u' && hex4(s + q + 8, &lo) && lo >= 0xdc00 &&
                lo <= 0xdfff))
            return md_json_fail(j, q, "high surrogate \\u%04x not followed by a low one", cp);
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          q += 6;
        }
        q += 6;
        w = put_utf8(tmp, cp);
      }
    } else if (c < 0x20) {
      return md_json_fail(j, q, "control character 0x%02x inside a string (write it as an escape)", c);
    } else {
      w = c < 0x80 ? 1 : utf8_seq((const unsigned char *)s + q, e - q);
      if (!w) {
        if (!j->o.raw_bytes) return md_json_fail(j, q, "a string is not valid UTF-8 (byte 0x%02x)", c);
        w = 1;
      }
      if (o) memcpy(o + k, s + q, w);
      k += w;
      q += w;
      w = 0;
    }
    if (w && o) memcpy(o + k, tmp, w);
    k += w;
    if (j->o.max_string && k > j->o.max_string)
      return md_json_fail(j, start, "a string longer than the %zu-byte limit", j->o.max_string);
  }
  if (o) o[k] = 0;
  if (out) *out = o;
  if (len) *len = k;
  j->i = e + 1;
  return 1;
}

int md_json_string(md_json *j, const char **s, size_t *len, const char *what) {
  if (!begin(j, MD_JSON_STRING, what ? what : "a string")) return 0;
  return scan_string(j, s ? &j->vbuf : NULL, &j->vcap, s, len);
}

static int digit(md_json *j, size_t p) { return p < j->n && j->s[p] >= '0' && j->s[p] <= '9'; }

int md_json_number(md_json *j, md_json_num *v, const char *what) {
  if (!begin(j, MD_JSON_NUMBER, what ? what : "a number")) return 0;
  const char *s = j->s;
  size_t st = j->i, p = st;
  int neg = s[p] == '-', is_int = 1;
  if (neg) p++;
  if (!digit(j, p)) return md_json_fail(j, p, "a number with no digits after '-'");
  if (s[p] == '0') {
    if (digit(j, ++p)) return md_json_fail(j, st, "a number with a leading zero");
  } else {
    while (digit(j, p)) p++;
  }
  if (p < j->n && s[p] == '.') {
    is_int = 0;
    if (!digit(j, ++p)) return md_json_fail(j, p, "no digits after the decimal point");
    while (digit(j, p)) p++;
  }
  if (p < j->n && (s[p] == 'e' || s[p] == 'E')) {
    is_int = 0;
    p++;
    if (p < j->n && (s[p] == '+' || s[p] == '-')) p++;
    if (!digit(j, p)) return md_json_fail(j, p, "no digits in the exponent");
    while (digit(j, p)) p++;
  }
  md_json_num r = {0};
  r.text = s + st, r.len = p - st, r.is_int = is_int;
  if (is_int) { /* exact, in uint64 with an overflow flag */
    uint64_t u = 0;
    int big = 0;
    for (size_t q = st + (size_t)neg; q < p; q++) {
      unsigned d = (unsigned)(s[q] - '0');
      if (u > (UINT64_MAX - d) / 10) big = 1;
      if (!big) u = u * 10 + d;
    }
    uint64_t lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    r.fits = !big && u <= lim;
    if (r.fits) r.i = neg ? (u == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
  }
  /* strtod wants a NUL-terminated copy, with the locale's decimal point */
  char small[64], *b = r.len < sizeof small ? small : malloc(r.len + 1);
  if (!b) return md_json_fail(j, st, "out of memory for a number of %zu digits", r.len);
  memcpy(b, r.text, r.len);
  b[r.len] = 0;
  const char *dp = localeconv()->decimal_point;
  if (!is_int && dp && dp[0] && dp[0] != '.' && !dp[1]) {
    char *dot = strchr(b, '.');
    if (dot) *dot = dp[0];
  }
  r.d = strtod(b, NULL);
  if (b != small) free(b);
  j->i = p;
  if (v) *v = r;
  return 1;
}

/* true, false or null at the current position */
static int literal(md_json *j, md_json_type t, const char *what, int *v) {
  if (!begin(j, t, what)) return 0;
  const char *w = j->s[j->i] == 't' ? "true" : j->s[j->i] == 'f' ? "false" : "null";
  size_t l = strlen(w);
  if (j->n - j->i < l || memcmp(j->s + j->i, w, l) != 0)
    return md_json_fail(j, j->i, "invalid literal (expected true, false or null)");
  if (v) *v = w[0] == 't';
  j->i += l;
  return 1;
}
int md_json_bool(md_json *j, int *v, const char *what) { return literal(j, MD_JSON_BOOL, what ? what : "true or false", v); }
int md_json_null(md_json *j, const char *what) { return literal(j, MD_JSON_NULL, what ? what : "null", NULL); }

int md_json_skip(md_json *j) {
  int base = j->depth;
  for (;;) { /* at a value */
    int ok;
    switch (md_json_peek(j)) {
    case MD_JSON_OBJECT: ok = md_json_object(j, NULL); break;
    case MD_JSON_ARRAY: ok = md_json_array(j, NULL); break;
    case MD_JSON_STRING: ok = md_json_string(j, NULL, NULL, NULL); break;
    case MD_JSON_NUMBER: ok = md_json_number(j, NULL, NULL); break;
    case MD_JSON_BOOL: ok = md_json_bool(j, NULL, NULL); break;
    case MD_JSON_NULL: ok = md_json_null(j, NULL); break;
    default: ok = md_json_expect(j, "a value"); break;
    }
    if (!ok) return 0;
    for (;;) { /* to the next value, or out */
      if (j->depth == base) return 1;
      int r = (j->stack[j->depth - 1] & ~SEEN) == MD_JSON_OBJECT ? md_json_key(j, NULL, NULL) : md_json_item(j);
      if (r < 0) return 0;
      if (r > 0) break;
    }
  }
}

int md_json_end(md_json *j) {
  if (j->failed) return 0;
  if (j->depth > 0)
    return md_json_expect(j, (j->stack[j->depth - 1] & ~SEEN) == MD_JSON_OBJECT ? "',' or '}'" : "',' or ']'");
  if (!j->top) return md_json_expect(j, "a value");
  ws(j);
  if (j->i < j->n)
    return md_json_fail(j, j->i, "trailing data after the end of the %s (found %s)",
                        j->top == MD_JSON_OBJECT ? "object" : j->top == MD_JSON_ARRAY ? "array" : "value",
                        md_json_found(j));
  return 1;
}
/* }====================================================== */

/* {====================================================== writing */
static int reserve(md_json_buf *b, size_t more) {
  if (b->oom) return 0;
  if (b->n + more + 1 <= b->cap) return 1;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->n + more + 1) nc *= 2;
  char *p = realloc(b->p, nc);
  if (!p) return b->oom = 1, 0;
  b->p = p, b->cap = nc;
  return 1;
}

void md_json_put(md_json_buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

void md_json_putf(md_json_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0 || !reserve(b, (size_t)k)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

void md_json_put_string(md_json_buf *b, const char *s, size_t n) {
  md_json_put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      md_json_put(b, e, 2);
    } else if (c < 0x20) {
      md_json_putf(b, "\\u%04x", c);
    } else {
      md_json_put(b, s + i, 1);
    }
  }
  md_json_put(b, "\"", 1);
}
/* }====================================================== */
