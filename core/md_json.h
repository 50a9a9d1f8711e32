/*
** md_json.h -- the one JSON reader of mdoctor (RFC 8259, strict), a pull
** parser: the caller walks the document and asks for the value it expects
** next.  Used by core/safetensors.c (checkpoint headers) and by
** datasets/labelme.c (LabelMe annotations); datasets/ may include this
** header next to md.h.  Nothing here knows about Lua or md_last_error(): a
** failure leaves a message and a byte offset in the reader, and the caller
** words the error for its own file format.
**
**   md_json j;
**   md_json_init(&j, text, len, NULL);
**   if (!md_json_object(&j, "an object")) goto bad;
**   const char *k; size_t kl;
**   int r;
**   while ((r = md_json_key(&j, &k, &kl)) > 0) {
**     if (kl == 4 && !memcmp(k, "size", 4)) { md_json_num v; if (!md_json_number(&j, &v, NULL)) goto bad; }
**     else if (!md_json_skip(&j)) goto bad;
**   }
**   if (r < 0 || !md_json_end(&j)) goto bad;
**   md_json_free(&j);
**   ...
**   bad: printf("bad JSON at byte %zu: %s\n", j.err_at, j.err); md_json_free(&j);
**
** What the reader checks, as RFC 8259 asks:
**  - the grammar: one value, whitespace only around it (space, tab, LF,
**    CR), no trailing commas, no comments, no NaN/Infinity, no single quotes;
**  - numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; no leading
**    zeros, no bare '.', no '+'.  A number's value is what strtod gives in the
**    C locale (beyond the double range it is +-inf, as Python's json reads
**    1e400); an integer literal (no fraction, no exponent) is also given
**    exactly as an int64 when it fits, so 2^63 - 1 is not rounded;
**  - strings: the escapes \" \\ \/ \b \f \n \r \t \uXXXX, a \u high surrogate
**    only followed by a \u low one (decoded to one code point), no lone low
**    surrogate, no raw control characters (below 0x20); strings are decoded
**    to UTF-8 and may hold NUL bytes (\u0000), so their length is returned;
**  - UTF-8: invalid UTF-8 in a string (overlong forms, surrogates, beyond
**    U+10FFFF, cut sequences) is an error, unless opts.raw_bytes passes such
**    bytes through unchanged; outside strings any byte >= 0x80 is an
**    unexpected character.  A byte-order mark is not skipped;
**  - limits: at most max_depth nested arrays/objects (default 64, at most
**    MD_JSON_DEPTH_MAX), strings of at most max_string decoded bytes; memory
**    is two string buffers and no recursion, whatever the input.
** Duplicate keys: the reader reports every member in document order,
** duplicates included; the policy belongs to the format (safetensors rejects
** a repeated tensor name or field; LabelMe uses the first).
**
** Errors: the first failure sticks (failed = 1, err_at = byte offset, err =
** what went wrong, without the offset: "expected ',' or '}', found a
** number"); every later call fails at once.  Callers raise their own schema
** errors in the same form with md_json_expect / md_json_fail.
*/
#ifndef MD_JSON_H
#define MD_JSON_H

#include <stddef.h>
#include <stdint.h>

#define MD_JSON_DEPTH_MAX 256

typedef enum {
  MD_JSON_NONE = 0, /* the end of the input, a byte that starts no value, or after an error */
  MD_JSON_NULL,
  MD_JSON_BOOL,
  MD_JSON_NUMBER,
  MD_JSON_STRING,
  MD_JSON_ARRAY,
  MD_JSON_OBJECT
} md_json_type;

typedef struct md_json_opts {
  int max_depth;     /* nested arrays/objects allowed; 0: 64 */
  size_t max_string; /* longest string in decoded bytes; 0: no limit beyond the input */
  int raw_bytes;     /* 1: invalid UTF-8 inside strings is passed through, not an error */
} md_json_opts;

typedef struct md_json_num {
  double d;         /* the value (strtod, C locale): +-inf beyond the double range */
  int64_t i;        /* the exact value when fits */
  int is_int;       /* the literal has neither a fraction nor an exponent */
  int fits;         /* is_int and the value is within int64 (i is exact) */
  const char *text; /* the literal as written, in the input (not NUL-terminated) */
  size_t len;
} md_json_num;

typedef struct md_json {
  /* read-only for callers */
  int failed;    /* an error happened; every call fails from now on */
  size_t err_at; /* its byte offset in the input */
  char err[240]; /* what went wrong (no offset) */
  size_t at;     /* where the last key or value read began (for schema errors) */
  /* private */
  const char *s;
  size_t n, i;
  md_json_opts o;
  int depth, top; /* open containers; the top-level value's type once read */
  unsigned char stack[MD_JSON_DEPTH_MAX]; /* per level: type, and whether a member was read */
  char *kbuf, *vbuf; /* decoded key / string value */
  size_t kcap, vcap;
  char found[40];
} md_json;

/* start reading s[0..n) (needs no NUL terminator); opts may be NULL */
void md_json_init(md_json *j, const char *s, size_t n, const md_json_opts *opts);
/* free the string buffers (the reader can be initialised again) */
void md_json_free(md_json *j);

/* the type of the next value, judged by its first byte (after whitespace) */
md_json_type md_json_peek(md_json *j);
/* the byte offset of the next token (after whitespace) */
size_t md_json_offset(md_json *j);
/* what the next token is, for messages: "an object", "a number", "','",
** "the end of the input", "an unexpected character 'x'" */
const char *md_json_found(md_json *j);
/* fail with "expected <what>, found <the next token>" (at the end of the
** input: "unexpected end of the input (expected <what>)"); returns 0 */
int md_json_expect(md_json *j, const char *what);
/* fail with a message of the caller's at byte offset at; returns 0 */
int md_json_fail(md_json *j, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Values: each reads one value of its type and returns 1, or fails with
** "expected <what>, found ..." (what NULL: "an object", "a string", ...) and
** returns 0.  Strings returned stay valid until the next call of the same
** kind (keys and string values have a buffer each) or md_json_free. */
int md_json_object(md_json *j, const char *what); /* '{': then md_json_key until it returns 0 */
int md_json_array(md_json *j, const char *what);  /* '[': then md_json_item until it returns 0 */
/* in an object: 1 a key follows (decoded into *key, *len; its ':' read; key
** may be NULL to skip it), 0 the object ended ('}' read), -1 an error */
int md_json_key(md_json *j, const char **key, size_t *len);
/* in an array: 1 an item follows, 0 the array ended (']' read), -1 an error */
int md_json_item(md_json *j);
int md_json_string(md_json *j, const char **s, size_t *len, const char *what);
int md_json_number(md_json *j, md_json_num *v, const char *what);
int md_json_bool(md_json *j, int *v, const char *what);
int md_json_null(md_json *j, const char *what);
/* any one value, checked in full (nesting included) and dropped */
int md_json_skip(md_json *j);
/* after the top-level value: nothing but whitespace may follow */
int md_json_end(md_json *j);

/* UTF-8 as JSON requires (no overlong forms, no surrogates, nothing above
** U+10FFFF): 1, or 0 with the offset of the first bad sequence in *bad */
int md_json_utf8_valid(const char *s, size_t n, size_t *bad);

/* {====================================================== writing
** A growable text buffer for writing JSON; out of memory sets oom and
** drops further text.  p is NUL-terminated (or NULL while empty); free(p). */
typedef struct md_json_buf {
  char *p;
  size_t n, cap;
  int oom;
} md_json_buf;
void md_json_put(md_json_buf *b, const char *s, size_t n);
void md_json_putf(md_json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a string literal: quotes, and escapes for '"', '\\' and control bytes;
** other bytes are copied (the caller checks UTF-8 with md_json_utf8_valid) */
void md_json_put_string(md_json_buf *b, const char *s, size_t n);
/* }====================================================== */

#endif
