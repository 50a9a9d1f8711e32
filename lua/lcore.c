/*
** lcore.c -- the Lua 5.4 module `mdoctor.core`: tensors as userdata, every
** core op as a function, autograd, safetensors.
**
** Conventions for Lua (README "Lua API"):
**  - dims are 1-based like Lua (and Torch7); negative dims count from the end
**    (-1 is the last).  Class labels are values, 0-based as in the data sets.
**  - options come as a table; an unknown key is an error naming it.
**  - every failure is a Lua error with the core's message (op and shapes).
*/
#include "md.h"
#include "lbind.h"

#include <dlfcn.h>

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TNAME MD_LUA_TENSOR
#define SIZENAME "md.Size"

/* {====================================================== boxes & GC pressure */
/* The result box is created before any work (liolib's newprefile rule), so a
** Lua memory error can never leak a core tensor. */
md_tensor **newbox(lua_State *L) {
  md_tensor **b = lua_newuserdatauv(L, sizeof *b, 1);
  *b = NULL;
  luaL_setmetatable(L, TNAME);
  return b;
}

/* The core counts the bytes its tensors hold; Lua only sees small boxes.  So
** when the core's bytes double since the last collection we run a full
** collection: a training loop never needs collectgarbage() by hand. */
#define GC_FLOOR (8u << 20) /* measured: a 1000-step loop stays within ~1 MB */
static size_t gc_threshold = GC_FLOOR;
void gc_check(lua_State *L) {
  size_t used = md_bytes_in_use();
  if (used > gc_threshold) {
    lua_gc(L, LUA_GCCOLLECT);
    used = md_bytes_in_use();
    gc_threshold = used * 2 > GC_FLOOR ? used * 2 : GC_FLOOR;
  }
}

static const char *md_shp(const md_tensor *t) {
  static char buf[4][96];
  static int k;
  return md_shape_str(t, buf[k++ & 3], 96);
}

int fail(lua_State *L) { return luaL_error(L, "%s", md_last_error()); }

/* put t (a new reference, or NULL on error) into box at the top */
int ret(lua_State *L, md_tensor **b, md_tensor *t) {
  if (!t) return fail(L);
  *b = t;
  gc_check(L);
  return 1;
}
/* push a new reference as a fresh box (for results made before a box) */
static void pushtensor(lua_State *L, md_tensor *t) {
  md_tensor **b = newbox(L);
  *b = t;
}

static md_tensor *totensor(lua_State *L, int i) {
  md_tensor **b = luaL_testudata(L, i, TNAME);
  return b ? *b : NULL;
}
md_tensor *checktensor(lua_State *L, int i) {
  md_tensor **b = luaL_testudata(L, i, TNAME);
  if (!b) {
    const char *got = luaL_typename(L, i);
    luaL_argerror(L, i, lua_pushfstring(L, "tensor expected, got %s", got));
  }
  if (!*b) luaL_argerror(L, i, "tensor was closed");
  return *b;
}
static md_tensor *opttensor(lua_State *L, int i) {
  return lua_isnoneornil(L, i) ? NULL : checktensor(L, i);
}
/* }====================================================== */

/* {====================================================== argument helpers */
/* 1-based Lua dim -> 0-based core dim (negatives pass through) */
static int checkdim(lua_State *L, int arg, lua_Integer d) {
  if (d == 0) luaL_argerror(L, arg, "dims are 1-based (1 is the first, -1 the last); got 0");
  if (d > 0x7fff || d < -0x7fff) luaL_argerror(L, arg, "dim out of range");
  return d > 0 ? (int)d - 1 : (int)d;
}

/* shape from varargs starting at i, or from a table at i */
static int getshape(lua_State *L, int i, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, i)) {
    n = (int)luaL_len(L, i);
    luaL_argcheck(L, n <= MD_MAX_DIMS, i, "too many dimensions");
    for (int k = 0; k < n; k++) {
      lua_geti(L, i, k + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_argerror(L, i, "shape entries must be integers");
      shape[k] = v;
      lua_pop(L, 1);
    }
    return n;
  }
  int top = lua_gettop(L);
  for (int k = i; k <= top && lua_type(L, k) == LUA_TNUMBER; k++) {
    luaL_argcheck(L, n < MD_MAX_DIMS, k, "too many dimensions");
    shape[n++] = luaL_checkinteger(L, k);
  }
  return n;
}

/* dims list from a number or a table (1-based), into 0-based */
static int getdims(lua_State *L, int i, int *dims) {
  if (lua_isnoneornil(L, i)) return 0;
  if (lua_isinteger(L, i)) {
    dims[0] = checkdim(L, i, lua_tointeger(L, i));
    return 1;
  }
  luaL_checktype(L, i, LUA_TTABLE);
  int n = (int)luaL_len(L, i);
  luaL_argcheck(L, n <= MD_MAX_DIMS, i, "too many dims");
  for (int k = 0; k < n; k++) {
    lua_geti(L, i, k + 1);
    dims[k] = checkdim(L, i, luaL_checkinteger(L, -1));
    lua_pop(L, 1);
  }
  return n;
}

/* options table: reject unknown keys */
void checkopts(lua_State *L, int i, const char *fname, const char *const *allowed) {
  if (lua_isnoneornil(L, i)) return;
  luaL_checktype(L, i, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, i)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: option keys must be strings", fname);
    const char *k = lua_tostring(L, -1);
    int ok = 0;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, k) == 0) ok = 1;
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *const *a = allowed; *a; a++) {
        luaL_addstring(&b, *a);
        if (a[1]) luaL_addstring(&b, ", ");
      }
      luaL_pushresult(&b);
      luaL_error(L, "%s: unknown option '%s' (known: %s)", fname, k, lua_tostring(L, -1));
    }
  }
}
static int optfield_type(lua_State *L, int i, const char *k) {
  if (lua_isnoneornil(L, i)) return LUA_TNIL;
  return lua_getfield(L, i, k);
}
static lua_Number optnum(lua_State *L, int i, const char *k, lua_Number d) {
  int t = optfield_type(L, i, k);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, i)) lua_pop(L, 1);
    return d;
  }
  if (t != LUA_TNUMBER) luaL_error(L, "option '%s' must be a number, got %s", k, lua_typename(L, t));
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}
static int optbool(lua_State *L, int i, const char *k, int d) {
  int t = optfield_type(L, i, k);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, i)) lua_pop(L, 1);
    return d;
  }
  if (t != LUA_TBOOLEAN) luaL_error(L, "option '%s' must be a boolean, got %s", k, lua_typename(L, t));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}
/* an int or a pair {a,b} */
static void optpair(lua_State *L, int i, const char *k, int *out, int d) {
  out[0] = out[1] = d;
  int t = optfield_type(L, i, k);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, i)) lua_pop(L, 1);
    return;
  }
  if (t == LUA_TNUMBER) {
    if (!lua_isinteger(L, -1)) luaL_error(L, "option '%s' must be an integer", k);
    out[0] = out[1] = (int)lua_tointeger(L, -1);
  } else if (t == LUA_TTABLE) {
    for (int j = 0; j < 2; j++) {
      lua_geti(L, -1, j + 1);
      if (!lua_isinteger(L, -1)) luaL_error(L, "option '%s' must be an integer or a pair of integers", k);
      out[j] = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  } else
    luaL_error(L, "option '%s' must be an integer or a pair, got %s", k, lua_typename(L, t));
  lua_pop(L, 1);
}

/* a number argument becomes a 0-d tensor (scope'd by the caller) */
static md_tensor *tensor_or_number(lua_State *L, int i, md_tensor **owned) {
  *owned = NULL;
  if (lua_type(L, i) == LUA_TNUMBER) {
    *owned = md_scalar((float)lua_tonumber(L, i));
    if (!*owned) fail(L);
    return *owned;
  }
  return checktensor(L, i);
}
/* }====================================================== */

/* {====================================================== creation */
static void fill_from_table(lua_State *L, int i, int depth, int ndim, const int64_t *shape, float *dst,
                            int64_t *pos) {
  int64_t n = (int64_t)luaL_len(L, i);
  if (n != shape[depth]) luaL_error(L, "tensor: ragged nested table (dim %d has %d and %d entries)", depth + 1,
                                    (int)shape[depth], (int)n);
  for (int64_t k = 1; k <= n; k++) {
    lua_geti(L, i, k);
    if (depth == ndim - 1) {
      int ok;
      lua_Number v = lua_tonumberx(L, -1, &ok);
      if (!ok) luaL_error(L, "tensor: entry %d at depth %d is %s, not a number", (int)k, depth + 1,
                          luaL_typename(L, -1));
      dst[(*pos)++] = (float)v;
    } else {
      if (!lua_istable(L, -1)) luaL_error(L, "tensor: ragged nested table at depth %d", depth + 1);
      fill_from_table(L, lua_gettop(L), depth + 1, ndim, shape, dst, pos);
    }
    lua_pop(L, 1);
  }
}

static const char *const tensor_opts[] = {"dtype", "requires_grad", NULL};
/* md.tensor({{1,2},{3,4}} [, {dtype="int64", requires_grad=true}]) or md.tensor(3.5) */
static int l_tensor(lua_State *L) {
  lua_settop(L, 2); /* the box below must not sit where the options are */
  md_tensor **b = newbox(L);
  checkopts(L, 2, "tensor", tensor_opts);
  int isint = 0;
  if (optfield_type(L, 2, "dtype") != LUA_TNIL) {
    const char *dt = luaL_checkstring(L, -1);
    if (strcmp(dt, "int64") == 0) isint = 1;
    else if (strcmp(dt, "float32") != 0) luaL_error(L, "tensor: unknown dtype '%s' (float32 or int64)", dt);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 2))
    lua_pop(L, 1);
  int rg = optbool(L, 2, "requires_grad", 0);
  int64_t shape[MD_MAX_DIMS];
  int nd = 0;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    *b = md_scalar((float)lua_tonumber(L, 1));
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    while (lua_istable(L, -1)) { /* find the shape along first elements */
      if (nd == MD_MAX_DIMS) luaL_error(L, "tensor: more than %d nesting levels", MD_MAX_DIMS);
      shape[nd++] = (int64_t)luaL_len(L, -1);
      if (shape[nd - 1] == 0) break;
      lua_geti(L, -1, 1);
      lua_remove(L, -2);
    }
    lua_pop(L, 1);
    md_tensor *t = md_zeros(nd, shape);
    if (!t) return fail(L);
    *b = t;
    int64_t pos = 0;
    if (md_numel(t) > 0) fill_from_table(L, 1, 0, nd, shape, t->data, &pos);
  }
  if (!*b) return fail(L);
  if (isint) {
    md_tensor *f = *b, *t = md_empty(f->ndim, f->shape, MD_I64);
    if (!t) return fail(L);
    md_to_i64(f, t->data);
    *b = t;
    md_release(f);
  }
  if (rg && md_set_requires_grad(*b, 1) != MD_OK) return fail(L);
  gc_check(L);
  return 1;
}

typedef md_tensor *(*shape_ctor)(int, const int64_t *);
static int ctor(lua_State *L, shape_ctor f, int from) {
  md_tensor **b = newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, from, shape);
  return ret(L, b, f(nd, shape));
}
static int l_zeros(lua_State *L) { return ctor(L, md_zeros, 1); }
static int l_ones(lua_State *L) { return ctor(L, md_ones, 1); }
static int l_randn(lua_State *L) { return ctor(L, md_randn, 1); }
static int l_rand(lua_State *L) { return ctor(L, md_rand, 1); }
/* full(shape..., value): the value is the last argument */
static int l_full(lua_State *L) {
  lua_Number v = luaL_checknumber(L, lua_gettop(L));
  lua_pop(L, 1);
  md_tensor **b = newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, 1, shape);
  return ret(L, b, md_full(nd, shape, (float)v));
}
static int l_uniform(lua_State *L) { /* uniform(lo, hi, shape...) */
  float lo = (float)luaL_checknumber(L, 1), hi = (float)luaL_checknumber(L, 2);
  md_tensor **b = newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, 3, shape);
  return ret(L, b, md_uniform(nd, shape, lo, hi));
}
static int l_randint(lua_State *L) { /* randint(lo, hi, shape...): [lo, hi) */
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  md_tensor **b = newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, 3, shape);
  return ret(L, b, md_randint(nd, shape, lo, hi));
}
static int l_bernoulli(lua_State *L) { /* bernoulli(p, shape...) */
  float p = (float)luaL_checknumber(L, 1);
  md_tensor **b = newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, 2, shape);
  return ret(L, b, md_bernoulli(nd, shape, p));
}
static int l_arange(lua_State *L) {
  md_tensor **b = newbox(L);
  return ret(L, b, md_arange(luaL_checkinteger(L, 1)));
}
static int l_manual_seed(lua_State *L) {
  md_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}
static int l_zeros_like(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  md_tensor **b = newbox(L);
  return ret(L, b, md_zeros_like(x));
}
static int l_ones_like(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  md_tensor **b = newbox(L);
  return ret(L, b, md_ones_like(x));
}
/* }====================================================== */

/* {====================================================== ops: generic wrappers */
typedef md_tensor *(*un_f)(const md_tensor *);
typedef md_tensor *(*bin_f)(const md_tensor *, const md_tensor *);

static int unary(lua_State *L, un_f f) {
  md_tensor *x = checktensor(L, 1);
  md_tensor **b = newbox(L);
  return ret(L, b, f(x));
}
#define UN(name) \
  static int l_##name(lua_State *L) { return unary(L, md_##name); }
UN(neg) UN(abs) UN(exp) UN(log) UN(sqrt) UN(rsqrt) UN(square) UN(reciprocal) UN(relu) UN(relu6)
UN(sigmoid) UN(tanh) UN(silu) UN(hardsigmoid) UN(hardswish) UN(sign) UN(detach) UN(contiguous)
UN(clone)

/* a op b where either may be a number */
static int binary(lua_State *L, bin_f f, int kind) {
  md_tensor **b = newbox(L); /* at top; args are 1 and 2 */
  int na = lua_type(L, 1) == LUA_TNUMBER, nb = lua_type(L, 2) == LUA_TNUMBER;
  md_tensor *r;
  if (na && nb) return luaL_error(L, "tensor op on two numbers");
  if (nb) { /* tensor op number: scalar fast paths */
    md_tensor *x = checktensor(L, 1);
    float s = (float)lua_tonumber(L, 2);
    switch (kind) {
    case 0: r = md_add_scalar(x, s); break;
    case 1: r = md_add_scalar(x, -s); break;
    case 2: r = md_mul_scalar(x, s); break;
    default: r = md_mul_scalar(x, 1.0f / s); break;
    }
    return ret(L, b, r);
  }
  if (na) {
    md_tensor *x = checktensor(L, 2);
    float s = (float)lua_tonumber(L, 1);
    switch (kind) {
    case 0: r = md_add_scalar(x, s); break;
    case 1: r = md_rsub_scalar(x, s); break;
    case 2: r = md_mul_scalar(x, s); break;
    default: {
      md_tensor *rc = md_reciprocal(x);
      r = md_mul_scalar(rc, s);
      md_release(rc);
    }
    }
    return ret(L, b, r);
  }
  return ret(L, b, f(checktensor(L, 1), checktensor(L, 2)));
}
static int l_add(lua_State *L) { return binary(L, md_add, 0); }
static int l_sub(lua_State *L) { return binary(L, md_sub, 1); }
static int l_mul(lua_State *L) { return binary(L, md_mul, 2); }
static int l_div(lua_State *L) { return binary(L, md_div, 3); }
/* eq(a, b): 0/1 float, either side a tensor (float or int64) or a number,
** so md.eq(md.argmax(logits, 2), labels) counts correct predictions */
static md_tensor *as_float(md_tensor *t, md_tensor **owned) {
  if (t->dtype == MD_F32) return t;
  md_tensor *f = md_empty(t->ndim, t->shape, MD_F32);
  if (f) md_to_float(t, f->data);
  md_release(*owned);
  *owned = f;
  return f;
}
static int l_eq(lua_State *L) {
  md_tensor *o1, *o2;
  lua_settop(L, 2);
  md_tensor **b = newbox(L);
  md_tensor *x = tensor_or_number(L, 1, &o1), *y = tensor_or_number(L, 2, &o2);
  x = as_float(x, &o1);
  y = as_float(y, &o2);
  md_tensor *r = x && y ? md_eq(x, y) : NULL;
  md_release(o1);
  md_release(o2);
  return ret(L, b, r);
}

static int l_pow(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  float p = (float)luaL_checknumber(L, 2);
  md_tensor **b = newbox(L);
  return ret(L, b, md_pow_scalar(x, p));
}
static int l_clamp(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  float lo = lua_isnoneornil(L, 2) ? -INFINITY : (float)luaL_checknumber(L, 2);
  float hi = lua_isnoneornil(L, 3) ? INFINITY : (float)luaL_checknumber(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_clamp(x, lo, hi));
}
static int l_leaky_relu(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  float s = (float)luaL_optnumber(L, 2, 0.01);
  md_tensor **b = newbox(L);
  return ret(L, b, md_leaky_relu(x, s));
}
static int cmp(lua_State *L, md_tensor *(*f)(const md_tensor *, float)) {
  md_tensor *x = checktensor(L, 1);
  float s = (float)luaL_checknumber(L, 2);
  md_tensor **b = newbox(L);
  return ret(L, b, f(x, s));
}
static int l_gt(lua_State *L) { return cmp(L, md_gt_scalar); }
static int l_ge(lua_State *L) { return cmp(L, md_ge_scalar); }
static int l_lt(lua_State *L) { return cmp(L, md_lt_scalar); }
/* }====================================================== */

/* {====================================================== reductions */
/* sum(x [, dims [, keepdim]]) */
static int reduce(lua_State *L, md_tensor *(*f)(const md_tensor *, int, const int *, int)) {
  md_tensor *x = checktensor(L, 1);
  int dims[MD_MAX_DIMS];
  int n = getdims(L, 2, dims);
  int keep = lua_toboolean(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, f(x, n, dims, keep));
}
static int l_sum(lua_State *L) { return reduce(L, md_sum); }
static int l_mean(lua_State *L) { return reduce(L, md_mean); }
static int l_var(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int dims[MD_MAX_DIMS];
  int n = getdims(L, 2, dims);
  int keep = lua_toboolean(L, 3);
  int unb = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
  md_tensor **b = newbox(L);
  return ret(L, b, md_var(x, n, dims, keep, unb));
}
/* max(x) -> scalar tensor; max(x, dim [, keepdim]) -> values, indices
** (int64, 0-based values like every index tensor) */
static int l_max(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    md_tensor **b = newbox(L);
    md_tensor *f = md_reshape(x, 1, (int64_t[]){-1});
    md_tensor *r = md_max(f, 0, 0, NULL);
    md_release(f);
    return ret(L, b, r);
  }
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  int keep = lua_toboolean(L, 3);
  md_tensor **b = newbox(L), **bi = newbox(L);
  md_tensor *idx = NULL;
  md_tensor *v = md_max(x, d, keep, &idx);
  if (!v) return fail(L);
  *b = v;
  *bi = idx;
  gc_check(L);
  return 2;
}
static int l_argmax(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  int keep = lua_toboolean(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_argmax(x, d, keep));
}
static int l_logsumexp(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor **b = newbox(L);
  return ret(L, b, md_logsumexp(x, d, lua_toboolean(L, 3)));
}
/* }====================================================== */

/* {====================================================== shape ops */
static int l_reshape(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, 2, shape);
  md_tensor **b = newbox(L);
  return ret(L, b, md_reshape(x, nd, shape));
}
static int l_flatten(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int s = checkdim(L, 2, luaL_optinteger(L, 2, 1)), e = checkdim(L, 3, luaL_optinteger(L, 3, -1));
  md_tensor **b = newbox(L);
  return ret(L, b, md_flatten(x, s, e));
}
static int l_permute(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int dims[MD_MAX_DIMS], n;
  if (lua_istable(L, 2))
    n = getdims(L, 2, dims);
  else {
    n = lua_gettop(L) - 1;
    luaL_argcheck(L, n <= MD_MAX_DIMS, 2, "too many dims");
    for (int i = 0; i < n; i++) dims[i] = checkdim(L, i + 2, luaL_checkinteger(L, i + 2));
  }
  if (n != x->ndim)
    return luaL_error(L, "permute: %d dims given for a tensor with %d dimensions", n, x->ndim);
  md_tensor **b = newbox(L);
  return ret(L, b, md_permute(x, dims));
}
static int l_transpose(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int a = checkdim(L, 2, luaL_checkinteger(L, 2)), c = checkdim(L, 3, luaL_checkinteger(L, 3));
  md_tensor **b = newbox(L);
  return ret(L, b, md_transpose(x, a, c));
}
/* narrow(x, dim, start, len): start is 1-based */
static int l_narrow(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  lua_Integer s = luaL_checkinteger(L, 3), n = luaL_checkinteger(L, 4);
  luaL_argcheck(L, s >= 1, 3, "start is 1-based");
  md_tensor **b = newbox(L);
  return ret(L, b, md_slice(x, d, s - 1, n));
}
static int l_expand(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int64_t shape[MD_MAX_DIMS];
  int nd = getshape(L, 2, shape);
  md_tensor **b = newbox(L);
  return ret(L, b, md_expand(x, nd, shape));
}
/* pad(x, {left, right, top, bottom} [, value]) like F.pad for the last 2 dims */
static int l_pad(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  luaL_argcheck(L, n == 2 || n == 4, 2, "padding must have 2 or 4 entries");
  int64_t p[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    p[i] = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  float v = (float)luaL_optnumber(L, 3, 0);
  md_tensor **b = newbox(L);
  if (n == 2) return ret(L, b, md_pad_dim(x, -1, p[0], p[1], v));
  return ret(L, b, md_pad2d(x, p[0], p[1], p[2], p[3], v));
}
static int l_cat(lua_State *L) {
  lua_settop(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 4096, 1, "need 1 to 4096 tensors");
  int d = checkdim(L, 2, luaL_optinteger(L, 2, 1));
  md_tensor **xs = lua_newuserdatauv(L, sizeof *xs * (size_t)n, 0); /* GC'd scratch */
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    xs[i] = checktensor(L, -1);
    lua_pop(L, 1); /* still referenced by the table */
  }
  md_tensor **b = newbox(L);
  return ret(L, b, md_cat(n, xs, d));
}
static int push_pieces(lua_State *L, int k, md_tensor **out) {
  lua_createtable(L, k, 0);
  for (int i = 0; i < k; i++) {
    pushtensor(L, out[i]);
    lua_seti(L, -2, i + 1);
  }
  return 1;
}
/* split(x, size_or_sizes, dim) like torch.split */
static int l_split(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 3, luaL_optinteger(L, 3, 1));
  int dd = d < 0 ? d + x->ndim : d;
  luaL_argcheck(L, dd >= 0 && dd < x->ndim, 3, "dim out of range");
  int64_t sizes[1024];
  int k = 0;
  if (lua_istable(L, 2)) {
    k = (int)luaL_len(L, 2);
    luaL_argcheck(L, k >= 1 && k <= 1024, 2, "1 to 1024 sizes");
    for (int i = 0; i < k; i++) {
      lua_geti(L, 2, i + 1);
      sizes[i] = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lua_Integer s = luaL_checkinteger(L, 2);
    luaL_argcheck(L, s > 0, 2, "split size must be positive");
    for (int64_t off = 0; off < x->shape[dd] && k < 1024; off += s)
      sizes[k++] = off + s <= x->shape[dd] ? s : x->shape[dd] - off;
  }
  md_tensor *out[1024];
  if (md_split(x, d, k, sizes, out) != MD_OK) return fail(L);
  return push_pieces(L, k, out);
}
static int l_chunk(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 1024, 2, "1 to 1024 chunks");
  int d = checkdim(L, 3, luaL_optinteger(L, 3, 1));
  md_tensor *out[1024];
  int k = md_chunk(x, d, (int)n, out);
  if (k < 0) return fail(L);
  return push_pieces(L, k, out);
}
/* index tensors hold 0-based values (like class labels and PyTorch) */
static int l_gather(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor *idx = checktensor(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_gather(x, d, idx));
}
static int l_scatter_add(lua_State *L) { /* scatter_add(shape_table, dim, idx, src) */
  int64_t shape[MD_MAX_DIMS];
  luaL_checktype(L, 1, LUA_TTABLE);
  int nd = getshape(L, 1, shape);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor *idx = checktensor(L, 3), *src = checktensor(L, 4);
  md_tensor **b = newbox(L);
  return ret(L, b, md_scatter_add(nd, shape, d, idx, src));
}
static int l_index_select(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor *idx = checktensor(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_index_select(x, d, idx));
}
static int l_one_hot(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  md_tensor **b = newbox(L);
  return ret(L, b, md_one_hot(x, n));
}
/* }====================================================== */

/* {====================================================== nn ops */
static int l_matmul(lua_State *L) {
  md_tensor *a = checktensor(L, 1), *c = checktensor(L, 2);
  md_tensor **b = newbox(L);
  return ret(L, b, md_matmul(a, c));
}
static int l_linear(lua_State *L) {
  md_tensor *x = checktensor(L, 1), *w = checktensor(L, 2), *bias = opttensor(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_linear(x, w, bias));
}
static const char *const conv_opts[] = {"stride", "padding", "dilation", "groups", NULL};
/* conv2d(x, w, b|nil, {stride=, padding=, dilation=, groups=}) */
static int l_conv2d(lua_State *L) {
  md_tensor *x = checktensor(L, 1), *w = checktensor(L, 2), *bias = opttensor(L, 3);
  checkopts(L, 4, "conv2d", conv_opts);
  md_conv_params p = md_conv_params_default();
  optpair(L, 4, "stride", p.stride, 1);
  optpair(L, 4, "padding", p.pad, 0);
  optpair(L, 4, "dilation", p.dilation, 1);
  p.groups = (int)optnum(L, 4, "groups", 1);
  md_tensor **b = newbox(L);
  return ret(L, b, md_conv2d(x, w, bias, p));
}
static const char *const pool_opts[] = {"kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                        "count_include_pad", "return_indices", NULL};
static md_pool_params poolparams(lua_State *L, int i, const char *fname) {
  checkopts(L, i, fname, pool_opts);
  md_pool_params p;
  memset(&p, 0, sizeof p);
  optpair(L, i, "kernel_size", p.kernel, 0);
  if (p.kernel[0] <= 0) luaL_error(L, "%s: option kernel_size is required (a positive integer or pair)", fname);
  optpair(L, i, "stride", p.stride, 0);
  if (p.stride[0] == 0) p.stride[0] = p.kernel[0];
  if (p.stride[1] == 0) p.stride[1] = p.kernel[1];
  optpair(L, i, "padding", p.pad, 0);
  optpair(L, i, "dilation", p.dilation, 1);
  p.ceil_mode = optbool(L, i, "ceil_mode", 0);
  p.count_include_pad = optbool(L, i, "count_include_pad", 1);
  return p;
}
/* max_pool2d(x, {kernel_size=2, ...}) -> y [, indices if return_indices] */
static int l_max_pool2d(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  if (lua_isinteger(L, 2)) { /* max_pool2d(x, 2) shorthand */
    lua_Integer k = lua_tointeger(L, 2);
    lua_settop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, k);
    lua_setfield(L, 2, "kernel_size");
  }
  md_pool_params p = poolparams(L, 2, "max_pool2d");
  int want = optbool(L, 2, "return_indices", 0);
  md_tensor **b = newbox(L), **bi = newbox(L);
  md_tensor *idx = NULL, *y = md_max_pool2d(x, p, want ? &idx : NULL);
  if (!y) return fail(L);
  *b = y;
  *bi = idx;
  gc_check(L);
  return want ? 2 : (lua_pop(L, 1), 1);
}
static int l_avg_pool2d(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  if (lua_isinteger(L, 2)) {
    lua_Integer k = lua_tointeger(L, 2);
    lua_settop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, k);
    lua_setfield(L, 2, "kernel_size");
  }
  md_pool_params p = poolparams(L, 2, "avg_pool2d");
  md_tensor **b = newbox(L);
  return ret(L, b, md_avg_pool2d(x, p));
}
static void outsize(lua_State *L, int i, int64_t *oh, int64_t *ow) {
  if (lua_istable(L, i)) {
    lua_geti(L, i, 1);
    lua_geti(L, i, 2);
    *oh = luaL_checkinteger(L, -2);
    *ow = luaL_checkinteger(L, -1);
    lua_pop(L, 2);
  } else
    *oh = *ow = luaL_checkinteger(L, i);
}
static int l_adaptive_avg_pool2d(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int64_t oh, ow;
  outsize(L, 2, &oh, &ow);
  md_tensor **b = newbox(L);
  return ret(L, b, md_adaptive_avg_pool2d(x, oh, ow));
}
static int l_adaptive_max_pool2d(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int64_t oh, ow;
  outsize(L, 2, &oh, &ow);
  md_tensor **b = newbox(L);
  return ret(L, b, md_adaptive_max_pool2d(x, oh, ow, NULL));
}
static const char *const interp_opts[] = {"size", "scale_factor", "mode", "align_corners", NULL};
/* interpolate(x, {size={h,w} | scale_factor=s, mode="nearest"|"bilinear", align_corners=false}) */
static int l_interpolate(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  checkopts(L, 2, "interpolate", interp_opts);
  if (x->ndim != 4) return luaL_error(L, "interpolate: input must be 4-d (N,C,H,W), got %s", md_shp(x));
  int64_t oh = 0, ow = 0;
  if (lua_getfield(L, 2, "size") != LUA_TNIL) {
    outsize(L, lua_gettop(L), &oh, &ow);
  } else {
    lua_Number s = optnum(L, 2, "scale_factor", 0);
    if (s <= 0) return luaL_error(L, "interpolate: give size or a positive scale_factor");
    oh = (int64_t)floor(x->shape[2] * s);
    ow = (int64_t)floor(x->shape[3] * s);
  }
  lua_pop(L, 1);
  const char *mode = "nearest";
  if (lua_getfield(L, 2, "mode") != LUA_TNIL) mode = luaL_checkstring(L, -1);
  int ac = optbool(L, 2, "align_corners", 0);
  md_tensor **b = newbox(L);
  if (strcmp(mode, "nearest") == 0) return ret(L, b, md_upsample_nearest(x, oh, ow));
  if (strcmp(mode, "bilinear") == 0) return ret(L, b, md_upsample_bilinear(x, oh, ow, ac));
  return luaL_error(L, "interpolate: unknown mode '%s' (nearest or bilinear)", mode);
}
static const char *const bn_opts[] = {"running_mean", "running_var", "weight", "bias", "training",
                                      "momentum", "eps", NULL};
static md_tensor *fieldtensor(lua_State *L, int i, const char *k) {
  md_tensor *t = NULL;
  if (lua_getfield(L, i, k) != LUA_TNIL) t = checktensor(L, lua_gettop(L));
  lua_pop(L, 1); /* the options table keeps it alive */
  return t;
}
/* batch_norm(x, {running_mean=, running_var=, weight=, bias=, training=, momentum=0.1, eps=1e-5}) */
static int l_batch_norm(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  checkopts(L, 2, "batch_norm", bn_opts);
  md_tensor *rm = NULL, *rv = NULL, *w = NULL, *bb = NULL;
  if (!lua_isnoneornil(L, 2)) {
    rm = fieldtensor(L, 2, "running_mean");
    rv = fieldtensor(L, 2, "running_var");
    w = fieldtensor(L, 2, "weight");
    bb = fieldtensor(L, 2, "bias");
  }
  int training = optbool(L, 2, "training", 1);
  float mom = (float)optnum(L, 2, "momentum", 0.1), eps = (float)optnum(L, 2, "eps", 1e-5);
  md_tensor **b = newbox(L);
  return ret(L, b, md_batch_norm(x, rm, rv, w, bb, training, mom, eps));
}
static int l_softmax(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor **b = newbox(L);
  return ret(L, b, md_softmax(x, d));
}
static int l_log_softmax(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor **b = newbox(L);
  return ret(L, b, md_log_softmax(x, d));
}
static int reduction_arg(lua_State *L, int i) {
  const char *r = luaL_optstring(L, i, "mean");
  if (strcmp(r, "none") == 0) return 0;
  if (strcmp(r, "mean") == 0) return 1;
  if (strcmp(r, "sum") == 0) return 2;
  return luaL_argerror(L, i, lua_pushfstring(L, "unknown reduction '%s' (none, mean or sum)", r));
}
static int l_nll_loss(lua_State *L) {
  md_tensor *x = checktensor(L, 1), *t = checktensor(L, 2);
  int r = reduction_arg(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_nll_loss(x, t, r));
}
static int l_cross_entropy(lua_State *L) {
  md_tensor *x = checktensor(L, 1), *t = checktensor(L, 2);
  int r = reduction_arg(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_cross_entropy(x, t, r));
}
static int l_mse_loss(lua_State *L) {
  md_tensor *x = checktensor(L, 1), *t = checktensor(L, 2);
  int r = reduction_arg(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_mse_loss(x, t, r));
}
static int l_dropout(lua_State *L) {
  md_tensor *x = checktensor(L, 1);
  float p = (float)luaL_optnumber(L, 2, 0.5);
  int training = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  md_tensor **b = newbox(L);
  return ret(L, b, md_dropout(x, p, training));
}
/* }====================================================== */

/* {====================================================== autograd */
/* a tensor or a list of tensors at i -> array in a GC'd scratch userdata */
static md_tensor **tensorlist(lua_State *L, int i, int *n, const char *what) {
  if (totensor(L, i)) {
    md_tensor **v = lua_newuserdatauv(L, sizeof *v, 0);
    v[0] = checktensor(L, i);
    *n = 1;
    return v;
  }
  if (!lua_istable(L, i))
    luaL_error(L, "grad: %s must be a tensor or a list of tensors, got %s", what, luaL_typename(L, i));
  int k = (int)luaL_len(L, i);
  if (k < 1 || k > 100000) luaL_error(L, "grad: %s is an empty list", what);
  md_tensor **v = lua_newuserdatauv(L, sizeof *v * (size_t)k, 0);
  for (int j = 0; j < k; j++) {
    lua_geti(L, i, j + 1);
    if (!totensor(L, -1)) luaL_error(L, "grad: %s[%d] is %s, not a tensor", what, j + 1, luaL_typename(L, -1));
    v[j] = checktensor(L, -1);
    lua_pop(L, 1);
  }
  *n = k;
  return v;
}
static const char *const grad_opts[] = {"grad_outputs", "create_graph", "retain_graph", "allow_unused", NULL};
/* grad(outputs, inputs [, {grad_outputs=, create_graph=, retain_graph=, allow_unused=}]) -> {g1, ...} */
static int l_grad(lua_State *L) {
  lua_settop(L, 3); /* scratch pushed below must not shift the options' index */
  checkopts(L, 3, "grad", grad_opts);
  int no, ni, ng = 0;
  md_tensor **outs = tensorlist(L, 1, &no, "outputs");
  md_tensor **ins = tensorlist(L, 2, &ni, "inputs");
  md_tensor **gos = NULL;
  if (!lua_isnoneornil(L, 3) && lua_getfield(L, 3, "grad_outputs") != LUA_TNIL) {
    gos = tensorlist(L, lua_gettop(L), &ng, "grad_outputs");
    if (ng != no) return luaL_error(L, "grad: %d grad_outputs for %d outputs", ng, no);
  }
  int create = optbool(L, 3, "create_graph", 0);
  int retain = optbool(L, 3, "retain_graph", create);
  int unused = optbool(L, 3, "allow_unused", 0);
  md_tensor **res = lua_newuserdatauv(L, sizeof *res * (size_t)ni, 0);
  lua_createtable(L, ni, 0); /* made before the work: no leak on a memory error below */
  if (md_grad(no, outs, gos, ni, ins, res, create, retain, unused) != MD_OK) return fail(L);
  for (int j = 0; j < ni; j++) {
    if (res[j]) {
      pushtensor(L, res[j]);
      res[j] = NULL;
    } else
      lua_pushboolean(L, 0); /* unused input: false keeps the list dense */
    lua_seti(L, -2, j + 1);
  }
  gc_check(L);
  return 1;
}
static const char *const backward_opts[] = {"create_graph", "retain_graph", NULL};
/* t:backward([grad_output] [, {create_graph=, retain_graph=}]) */
static int l_backward(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  md_tensor *g = NULL;
  int oi = 2;
  lua_settop(L, 3);
  if (totensor(L, 2)) {
    g = checktensor(L, 2);
    oi = 3;
  }
  checkopts(L, oi, "backward", backward_opts);
  int create = optbool(L, oi, "create_graph", 0);
  int retain = optbool(L, oi, "retain_graph", create);
  if (md_backward(t, g, create, retain) != MD_OK) return fail(L);
  gc_check(L);
  return 0;
}
static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, md_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}
static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, md_grad_enabled());
  return 1;
}
/* no_grad(f, ...) calls f with grad mode off, restoring it even on error */
static int l_no_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int old = md_set_grad_enabled(0);
  int n = lua_gettop(L) - 1;
  int rc = lua_pcall(L, n, LUA_MULTRET, 0);
  md_set_grad_enabled(old);
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

typedef struct luahook {
  lua_State *L;
  int ref;
} luahook;
static md_tensor *call_hook(void *ud, md_tensor *g) {
  luahook *h = ud;
  lua_State *L = h->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
  pushtensor(L, md_retain(g));
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    md_set_error("hook: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return (md_tensor *)-1;
  }
  md_tensor *r = totensor(L, -1);
  if (!r && !lua_isnil(L, -1)) {
    md_set_error("hook: must return a tensor or nil, returned %s", luaL_typename(L, -1));
    lua_settop(L, top);
    return (md_tensor *)-1;
  }
  md_retain(r);
  lua_settop(L, top);
  return r;
}
static void free_hook(void *ud) {
  luahook *h = ud;
  luaL_unref(h->L, LUA_REGISTRYINDEX, h->ref);
  free(h);
}
/* register_hook(t, function(grad) return grad_or_nil end) */
static int l_register_hook(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luahook *h = malloc(sizeof *h);
  if (!h) return luaL_error(L, "register_hook: out of memory");
  lua_pushvalue(L, 2);
  h->L = L;
  h->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (md_register_hook(t, call_hook, h, free_hook) != MD_OK) {
    free_hook(h);
    return fail(L);
  }
  return 0;
}
/* }====================================================== */

/* {====================================================== tensor methods */
static void pushsize(lua_State *L, const md_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_seti(L, -2, i + 1);
  }
  luaL_setmetatable(L, SIZENAME);
}
static int t_shape(lua_State *L) {
  pushsize(L, checktensor(L, 1));
  return 1;
}
static int t_size(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  int d = checkdim(L, 2, luaL_checkinteger(L, 2));
  int dd = d < 0 ? d + t->ndim : d;
  luaL_argcheck(L, dd >= 0 && dd < t->ndim, 2, "dim out of range");
  lua_pushinteger(L, t->shape[dd]);
  return 1;
}
static int t_dim(lua_State *L) {
  lua_pushinteger(L, checktensor(L, 1)->ndim);
  return 1;
}
static int t_numel(lua_State *L) {
  lua_pushinteger(L, md_numel(checktensor(L, 1)));
  return 1;
}
static int t_item(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  if (md_numel(t) != 1)
    return luaL_error(L, "item: tensor of shape %s has %d elements, not one", md_shp(t), (int)md_numel(t));
  if (t->dtype == MD_I64)
    lua_pushinteger(L, (lua_Integer)md_get(t, 0));
  else
    lua_pushnumber(L, md_get(t, 0));
  return 1;
}
static void totable_rec(lua_State *L, md_tensor *t, int d, int64_t *flat) {
  if (d == t->ndim) {
    if (t->dtype == MD_I64) lua_pushinteger(L, (lua_Integer)md_get(t, (*flat)++));
    else lua_pushnumber(L, md_get(t, (*flat)++));
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    totable_rec(L, t, d + 1, flat);
    lua_seti(L, -2, i + 1);
  }
}
static int t_totable(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  int64_t flat = 0;
  luaL_checkstack(L, t->ndim + 4, "too deep");
  totable_rec(L, t, 0, &flat);
  return 1;
}
static int t_requires_grad(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (md_set_requires_grad(t, on) != MD_OK) return fail(L);
  lua_settop(L, 1);
  return 1;
}
/* t:needs_grad(): does t take part in autograd (a leaf that requires grad,
** or the result of a recorded op)?  (t:requires_grad() is the setter, as in
** the README's example) */
static int t_needs_grad(lua_State *L) {
  lua_pushboolean(L, md_requires_grad(checktensor(L, 1)));
  return 1;
}
static int t_is_leaf(lua_State *L) {
  lua_pushboolean(L, checktensor(L, 1)->grad_fn == NULL);
  return 1;
}
static int t_grad_fn(lua_State *L) {
  const char *n = md_grad_fn_name(checktensor(L, 1));
  if (n) lua_pushstring(L, n);
  else lua_pushnil(L);
  return 1;
}
static int t_dtype(lua_State *L) {
  lua_pushstring(L, checktensor(L, 1)->dtype == MD_I64 ? "int64" : "float32");
  return 1;
}
static int t_float(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  if (t->dtype == MD_F32) {
    lua_settop(L, 1);
    return 1;
  }
  md_tensor **b = newbox(L);
  md_tensor *r = md_empty(t->ndim, t->shape, MD_F32);
  if (r) md_to_float(t, r->data);
  return ret(L, b, r);
}
static int t_long(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  if (t->dtype == MD_I64) {
    lua_settop(L, 1);
    return 1;
  }
  md_tensor **b = newbox(L);
  md_tensor *r = md_empty(t->ndim, t->shape, MD_I64);
  if (r) md_to_i64(t, r->data);
  return ret(L, b, r);
}
/* in place, for optimisers and initialisers (refused on a leaf that
** requires grad while grad mode is on) */
static int t_copy_(lua_State *L) {
  md_tensor *t = checktensor(L, 1), *s = checktensor(L, 2);
  if (md_copy_(t, s) != MD_OK) return fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_fill_(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  if (md_fill_(t, (float)luaL_checknumber(L, 2)) != MD_OK) return fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_add_(lua_State *L) { /* t:add_(x [, alpha]) : t += alpha*x */
  md_tensor *t = checktensor(L, 1), *x = checktensor(L, 2);
  if (md_axpy_(t, (float)luaL_optnumber(L, 3, 1), x) != MD_OK) return fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_mul_(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  if (md_scale_(t, (float)luaL_checknumber(L, 2)) != MD_OK) return fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_zero_grad(lua_State *L) { /* drop .grad */
  md_tensor *t = checktensor(L, 1);
  md_release(t->grad);
  t->grad = NULL;
  return 0;
}
static int t_close(lua_State *L) {
  md_tensor **b = luaL_checkudata(L, 1, TNAME);
  md_release(*b);
  *b = NULL;
  return 0;
}
static int t_gc(lua_State *L) { return t_close(L); }
static int t_len(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
  return 1;
}

/* a readable picture for the REPL: shape, dtype, grad state, values */
static void fmtnum(luaL_Buffer *b, double v, int isint) {
  char s[32];
  if (isint) snprintf(s, sizeof s, "%lld", (long long)v);
  else snprintf(s, sizeof s, "%.4g", v);
  luaL_addstring(b, s);
}
static int t_tostring(lua_State *L) {
  md_tensor **bx = luaL_checkudata(L, 1, TNAME);
  md_tensor *t = *bx;
  if (!t) {
    lua_pushliteral(L, "md.Tensor(closed)");
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char sh[128];
  luaL_addstring(&b, "md.Tensor(");
  luaL_addstring(&b, md_shape_str(t, sh, sizeof sh));
  luaL_addstring(&b, t->dtype == MD_I64 ? ", int64" : ", float32");
  if (t->grad_fn) {
    luaL_addstring(&b, ", grad_fn=");
    luaL_addstring(&b, md_grad_fn_name(t));
  } else if (t->requires_grad)
    luaL_addstring(&b, ", requires_grad");
  luaL_addstring(&b, ")");
  int64_t n = md_numel(t);
  int isint = t->dtype == MD_I64;
  if (n <= 64 && t->ndim <= 3) {
    int64_t last = t->ndim ? t->shape[t->ndim - 1] : 1;
    int one = t->ndim <= 1; /* a vector prints as [a, b, c], a matrix as rows */
    luaL_addstring(&b, "\n");
    for (int64_t i = 0; i < n; i++) {
      if (i % (last ? last : 1) == 0) luaL_addstring(&b, i ? "]\n [" : (one ? "[" : "[["));
      else luaL_addstring(&b, ", ");
      fmtnum(&b, md_get(t, i), isint);
    }
    luaL_addstring(&b, n ? (one ? "]" : "]]") : "[]");
  } else if (n > 0) {
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
      double v = md_get(t, i);
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
      sum += v;
    }
    luaL_addstring(&b, "\n first: ");
    for (int64_t i = 0; i < 6 && i < n; i++) {
      if (i) luaL_addstring(&b, ", ");
      fmtnum(&b, md_get(t, i), isint);
    }
    char s[128];
    snprintf(s, sizeof s, ", ...\n min %.4g  max %.4g  mean %.4g", mn, mx, sum / (double)n);
    luaL_addstring(&b, s);
  }
  luaL_pushresult(&b);
  return 1;
}
static int size_tostring(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "md.Size{");
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    if (i > 1) luaL_addstring(&b, ", ");
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, "}");
  luaL_pushresult(&b);
  return 1;
}

/* t[i]: the i-th (1-based) slice along the first dim; a number for 1-d */
static int t_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    md_tensor *t = checktensor(L, 1);
    if (!lua_isinteger(L, 2)) return luaL_error(L, "tensor index must be an integer");
    lua_Integer i = lua_tointeger(L, 2);
    if (t->ndim == 0) return luaL_error(L, "cannot index a 0-d tensor (use :item())");
    if (i < 0) i += t->shape[0] + 1;
    if (i < 1 || i > t->shape[0])
      return luaL_error(L, "index %d out of range for dim 1 of size %d", (int)lua_tointeger(L, 2), (int)t->shape[0]);
    if (t->ndim == 1) {
      double v = md_get(t, i - 1);
      if (t->dtype == MD_I64) lua_pushinteger(L, (lua_Integer)v);
      else lua_pushnumber(L, v);
      return 1;
    }
    md_tensor **b = newbox(L);
    md_tensor *s = md_slice(t, 0, i - 1, 1);
    md_tensor *r = md_reshape(s, t->ndim - 1, t->shape + 1);
    md_release(s);
    return ret(L, b, r);
  }
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "grad") == 0) {
    md_tensor *t = checktensor(L, 1);
    if (t->grad) pushtensor(L, md_retain(t->grad));
    else lua_pushnil(L);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}
static int t_newindex(lua_State *L) {
  md_tensor *t = checktensor(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "grad") != 0) return luaL_error(L, "cannot set field '%s' of a tensor", k);
  md_tensor *g = lua_isnil(L, 3) ? NULL : checktensor(L, 3);
  if (g && !md_same_shape(g, t))
    return luaL_error(L, "grad of shape %s for a tensor of shape %s", md_shp(g), md_shp(t));
  md_retain(g);
  md_release(t->grad);
  t->grad = g;
  return 0;
}
/* }====================================================== */

/* {====================================================== I/O, misc */
static int named_cmp(const void *a, const void *b) {
  return strcmp(((const md_named *)a)->name, ((const md_named *)b)->name);
}

/* save(path, {name = tensor, ...}): safetensors, atomically (temp + rename),
** the tensors in the order of their names (a table's own order changes
** from run to run: the same model would give files that differ) */
static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "save: keys must be strings (tensor names)");
    if (!totensor(L, -1)) return luaL_error(L, "save: value for '%s' is %s, not a tensor", lua_tostring(L, -2), luaL_typename(L, -1));
    n++;
    lua_pop(L, 1);
  }
  md_named *items = lua_newuserdatauv(L, sizeof *items * (size_t)(n ? n : 1), 0);
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    items[k].name = lua_tostring(L, -2);
    items[k].t = checktensor(L, -1);
    k++;
    lua_pop(L, 1);
  }
  qsort(items, (size_t)n, sizeof *items, named_cmp);
  if (md_safetensors_save(path, n, items) != MD_OK) return fail(L);
  return 0;
}
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_newtable(L);
  int n = 0;
  md_named *items = NULL;
  if (md_safetensors_load(path, &n, &items) != MD_OK) return fail(L);
  /* move refs into boxes first so a Lua memory error cannot leak them */
  for (int i = 0; i < n; i++) {
    md_tensor **b = newbox(L);
    *b = items[i].t;
    items[i].t = NULL;
    lua_setfield(L, -2, items[i].name);
  }
  md_named_free(n, items);
  gc_check(L);
  return 1;
}
static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, totensor(L, 1) != NULL);
  return 1;
}
static int l_bytes_in_use(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)md_bytes_in_use());
  return 1;
}
static int l_tensors_alive(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)md_tensors_alive());
  return 1;
}
static int l_blas_info(lua_State *L) {
  lua_pushstring(L, md_blas_info());
  return 1;
}
static int l_set_num_threads(lua_State *L) {
  md_set_num_threads((int)luaL_checkinteger(L, 1));
  return 0;
}
static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, md_get_num_threads());
  return 1;
}
static int l_now(lua_State *L) { /* wall clock, seconds */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}
static int l_isatty(lua_State *L) { /* isatty(fd) for progress lines */
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 2)));
  return 1;
}
static int l_interrupt_check(lua_State *L) { /* for Lua loops: raise if Ctrl-C was pressed */
  volatile int *f = md_interrupt_flag();
  if (*f) {
    *f = 0;
    return luaL_error(L, "interrupted!");
  }
  return 0;
}
/* }====================================================== */

static const luaL_Reg funcs[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full}, {"randn", l_randn},
    {"rand", l_rand}, {"uniform", l_uniform}, {"randint", l_randint}, {"bernoulli", l_bernoulli},
    {"arange", l_arange}, {"manual_seed", l_manual_seed}, {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like},
    {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div}, {"eq", l_eq}, {"neg", l_neg},
    {"abs", l_abs}, {"exp", l_exp}, {"log", l_log}, {"sqrt", l_sqrt}, {"rsqrt", l_rsqrt},
    {"square", l_square}, {"reciprocal", l_reciprocal}, {"pow", l_pow}, {"clamp", l_clamp},
    {"relu", l_relu}, {"relu6", l_relu6}, {"leaky_relu", l_leaky_relu}, {"sigmoid", l_sigmoid},
    {"tanh", l_tanh}, {"silu", l_silu}, {"hardsigmoid", l_hardsigmoid}, {"hardswish", l_hardswish},
    {"sign", l_sign}, {"gt", l_gt}, {"ge", l_ge}, {"lt", l_lt},
    {"sum", l_sum}, {"mean", l_mean}, {"var", l_var}, {"max", l_max}, {"argmax", l_argmax},
    {"logsumexp", l_logsumexp},
    {"reshape", l_reshape}, {"view", l_reshape}, {"flatten", l_flatten}, {"permute", l_permute},
    {"transpose", l_transpose}, {"narrow", l_narrow}, {"expand", l_expand}, {"pad", l_pad},
    {"cat", l_cat}, {"split", l_split}, {"chunk", l_chunk}, {"detach", l_detach},
    {"contiguous", l_contiguous}, {"clone", l_clone},
    {"gather", l_gather}, {"scatter_add", l_scatter_add}, {"index_select", l_index_select},
    {"one_hot", l_one_hot},
    {"matmul", l_matmul}, {"linear", l_linear}, {"conv2d", l_conv2d}, {"max_pool2d", l_max_pool2d},
    {"avg_pool2d", l_avg_pool2d}, {"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
    {"adaptive_max_pool2d", l_adaptive_max_pool2d}, {"interpolate", l_interpolate},
    {"batch_norm", l_batch_norm}, {"softmax", l_softmax}, {"log_softmax", l_log_softmax},
    {"nll_loss", l_nll_loss}, {"cross_entropy", l_cross_entropy}, {"mse_loss", l_mse_loss},
    {"dropout", l_dropout},
    {"grad", l_grad}, {"backward", l_backward}, {"set_grad_enabled", l_set_grad_enabled},
    {"is_grad_enabled", l_is_grad_enabled}, {"no_grad", l_no_grad}, {"register_hook", l_register_hook},
    {"save", l_save}, {"load", l_load}, {"is_tensor", l_is_tensor}, {"bytes_in_use", l_bytes_in_use},
    {"tensors_alive", l_tensors_alive}, {"blas_info", l_blas_info},
    {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads},
    {"interrupt_check", l_interrupt_check}, {"now", l_now}, {"isatty", l_isatty},
    {NULL, NULL}};

/* methods: every function taking the tensor first, plus the tensor-only ones */
static const luaL_Reg methods[] = {
    {"shape", t_shape}, {"size", t_size}, {"dim", t_dim}, {"numel", t_numel}, {"item", t_item},
    {"totable", t_totable}, {"requires_grad", t_requires_grad}, {"needs_grad", t_needs_grad}, {"is_leaf", t_is_leaf},
    {"grad_fn", t_grad_fn}, {"dtype", t_dtype}, {"float", t_float}, {"long", t_long},
    {"copy_", t_copy_}, {"fill_", t_fill_}, {"add_", t_add_}, {"mul_", t_mul_},
    {"zero_grad", t_zero_grad}, {"backward", l_backward}, {"register_hook", l_register_hook},
    {NULL, NULL}};
static const char *const tensor_first[] = {
    "add", "sub", "mul", "div", "eq", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "square",
    "reciprocal", "pow", "clamp", "relu", "relu6", "sigmoid", "tanh", "silu", "sign", "gt", "ge", "lt",
    "sum", "mean", "var", "max", "argmax", "logsumexp", "reshape", "view", "flatten", "permute",
    "transpose", "narrow", "expand", "split", "chunk", "detach", "contiguous", "clone", "gather",
    "index_select", "matmul", "softmax", "log_softmax", NULL};

static const luaL_Reg metameth[] = {
    {"__gc", t_gc}, {"__close", t_close}, {"__tostring", t_tostring}, {"__index", t_index},
    {"__newindex", t_newindex}, {"__len", t_len}, {"__add", l_add}, {"__sub", l_sub},
    {"__mul", l_mul}, {"__div", l_div}, {"__unm", l_neg}, {NULL, NULL}};

void md_lua_open_data(lua_State *L);
void md_lua_open_loader(lua_State *L);
int luaopen_mdoctor_core(lua_State *L);
int luaopen_mdoctor_core(lua_State *L) {
  /* loaded by a stock lua5.4 through dlopen: pin the library, because
  ** lua_close would dlclose it while OpenMP/BLIS worker threads still run
  ** its code (a crash at exit) */
  Dl_info info;
  if (dladdr((void *)luaopen_mdoctor_core, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
  md_init();
  md_set_dim_base(1); /* messages count dims as Lua code does */
  luaL_newmetatable(L, SIZENAME);
  lua_pushcfunction(L, size_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  luaL_newmetatable(L, TNAME);
  luaL_setfuncs(L, metameth, 0);
  lua_pushliteral(L, "md.Tensor");
  lua_setfield(L, -2, "__name");
  luaL_newlib(L, methods);
  for (const char *const *k = tensor_first; *k; k++) {
    lua_getfield(L, -3, *k);
    lua_setfield(L, -2, *k);
  }
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
  lua_pushliteral(L, MD_VERSION);
  lua_setfield(L, -2, "version");
  md_lua_open_data(L);   /* datasets and masks, lua/ldata.c */
  md_lua_open_loader(L); /* the batch loader, lua/lloader.c */
  return 1;
}
