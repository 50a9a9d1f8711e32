/*
** ltensor.c -- the md.Tensor type: constructors, the tensor metatable (methods,
** metamethods, __tostring, __index for t[i] and t.grad), the md.Size shape
** table, and safetensors save/load.  The ops live in lops.c, autograd in
** lautograd.c; a tensor's op methods (t:sum(), t + u) are the module's own
** functions, taken from the module table by mdL_opentensor.
*/
#include "lbind.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  md_tensor **b = mdL_newbox(L);
  mdL_checkopts(L, 2, "tensor", tensor_opts);
  int isint = 0;
  if (mdL_optfield(L, 2, "dtype") != LUA_TNIL) {
    const char *dt = luaL_checkstring(L, -1);
    if (strcmp(dt, "int64") == 0) isint = 1;
    else if (strcmp(dt, "float32") != 0) luaL_error(L, "tensor: unknown dtype '%s' (float32 or int64)", dt);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 2))
    lua_pop(L, 1);
  int rg = mdL_optbool(L, 2, "requires_grad", 0);
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
    if (!t) return mdL_fail(L);
    *b = t;
    int64_t pos = 0;
    if (md_numel(t) > 0) fill_from_table(L, 1, 0, nd, shape, t->data, &pos);
  }
  if (!*b) return mdL_fail(L);
  if (isint) {
    md_tensor *f = *b, *t = md_empty(f->ndim, f->shape, MD_I64);
    if (!t) return mdL_fail(L);
    md_to_i64(f, t->data);
    *b = t;
    md_release(f);
  }
  if (rg && md_set_requires_grad(*b, 1) != MD_OK) return mdL_fail(L);
  mdL_gccheck(L);
  return 1;
}

typedef md_tensor *(*shape_ctor)(int, const int64_t *);
static int ctor(lua_State *L, shape_ctor f, int from) {
  md_tensor **b = mdL_newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, from, shape);
  return mdL_result(L, b, f(nd, shape));
}
static int l_zeros(lua_State *L) { return ctor(L, md_zeros, 1); }
static int l_ones(lua_State *L) { return ctor(L, md_ones, 1); }
static int l_randn(lua_State *L) { return ctor(L, md_randn, 1); }
static int l_rand(lua_State *L) { return ctor(L, md_rand, 1); }
/* full(shape..., value): the value is the last argument */
static int l_full(lua_State *L) {
  lua_Number v = luaL_checknumber(L, lua_gettop(L));
  lua_pop(L, 1);
  md_tensor **b = mdL_newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, 1, shape);
  return mdL_result(L, b, md_full(nd, shape, (float)v));
}
static int l_uniform(lua_State *L) { /* uniform(lo, hi, shape...) */
  float lo = (float)luaL_checknumber(L, 1), hi = (float)luaL_checknumber(L, 2);
  md_tensor **b = mdL_newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, 3, shape);
  return mdL_result(L, b, md_uniform(nd, shape, lo, hi));
}
static int l_randint(lua_State *L) { /* randint(lo, hi, shape...): [lo, hi) */
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  md_tensor **b = mdL_newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, 3, shape);
  return mdL_result(L, b, md_randint(nd, shape, lo, hi));
}
static int l_bernoulli(lua_State *L) { /* bernoulli(p, shape...) */
  float p = (float)luaL_checknumber(L, 1);
  md_tensor **b = mdL_newbox(L);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, 2, shape);
  return mdL_result(L, b, md_bernoulli(nd, shape, p));
}
static int l_arange(lua_State *L) {
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_arange(luaL_checkinteger(L, 1)));
}
static int l_manual_seed(lua_State *L) {
  md_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}
static int l_zeros_like(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_zeros_like(x));
}
static int l_ones_like(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_ones_like(x));
}
/* }====================================================== */

/* {====================================================== tensor methods */
static void pushsize(lua_State *L, const md_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_seti(L, -2, i + 1);
  }
  luaL_setmetatable(L, MDL_SIZE);
}
static int t_shape(lua_State *L) {
  pushsize(L, mdL_checktensor(L, 1));
  return 1;
}
static int t_size(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  int dd = d < 0 ? d + t->ndim : d;
  luaL_argcheck(L, dd >= 0 && dd < t->ndim, 2, "dim out of range");
  lua_pushinteger(L, t->shape[dd]);
  return 1;
}
static int t_dim(lua_State *L) {
  lua_pushinteger(L, mdL_checktensor(L, 1)->ndim);
  return 1;
}
static int t_numel(lua_State *L) {
  lua_pushinteger(L, md_numel(mdL_checktensor(L, 1)));
  return 1;
}
static int t_item(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  if (md_numel(t) != 1)
    return luaL_error(L, "item: tensor of shape %s has %d elements, not one", mdL_shapestr(t), (int)md_numel(t));
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
  md_tensor *t = mdL_checktensor(L, 1);
  int64_t flat = 0;
  luaL_checkstack(L, t->ndim + 4, "too deep");
  totable_rec(L, t, 0, &flat);
  return 1;
}
static int t_requires_grad(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (md_set_requires_grad(t, on) != MD_OK) return mdL_fail(L);
  lua_settop(L, 1);
  return 1;
}
/* t:needs_grad(): does t take part in autograd (a leaf that requires grad,
** or the result of a recorded op)?  (t:requires_grad() is the setter, as in
** the README's example) */
static int t_needs_grad(lua_State *L) {
  lua_pushboolean(L, md_requires_grad(mdL_checktensor(L, 1)));
  return 1;
}
static int t_is_leaf(lua_State *L) {
  lua_pushboolean(L, mdL_checktensor(L, 1)->grad_fn == NULL);
  return 1;
}
static int t_grad_fn(lua_State *L) {
  const char *n = md_grad_fn_name(mdL_checktensor(L, 1));
  if (n) lua_pushstring(L, n);
  else lua_pushnil(L);
  return 1;
}
static int t_dtype(lua_State *L) {
  lua_pushstring(L, mdL_checktensor(L, 1)->dtype == MD_I64 ? "int64" : "float32");
  return 1;
}
static int t_float(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  if (t->dtype == MD_F32) {
    lua_settop(L, 1);
    return 1;
  }
  md_tensor **b = mdL_newbox(L);
  md_tensor *r = md_empty(t->ndim, t->shape, MD_F32);
  if (r) md_to_float(t, r->data);
  return mdL_result(L, b, r);
}
static int t_long(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  if (t->dtype == MD_I64) {
    lua_settop(L, 1);
    return 1;
  }
  md_tensor **b = mdL_newbox(L);
  md_tensor *r = md_empty(t->ndim, t->shape, MD_I64);
  if (r) md_to_i64(t, r->data);
  return mdL_result(L, b, r);
}
/* in place, for optimisers and initialisers (refused on a leaf that
** requires grad while grad mode is on) */
static int t_copy_(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1), *s = mdL_checktensor(L, 2);
  if (md_copy_(t, s) != MD_OK) return mdL_fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_fill_(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  if (md_fill_(t, (float)luaL_checknumber(L, 2)) != MD_OK) return mdL_fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_add_(lua_State *L) { /* t:add_(x [, alpha]) : t += alpha*x */
  md_tensor *t = mdL_checktensor(L, 1), *x = mdL_checktensor(L, 2);
  if (md_axpy_(t, (float)luaL_optnumber(L, 3, 1), x) != MD_OK) return mdL_fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_mul_(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  if (md_scale_(t, (float)luaL_checknumber(L, 2)) != MD_OK) return mdL_fail(L);
  lua_settop(L, 1);
  return 1;
}
static int t_zero_grad(lua_State *L) { /* drop .grad */
  md_tensor *t = mdL_checktensor(L, 1);
  md_release(t->grad);
  t->grad = NULL;
  return 0;
}
/* }====================================================== */

/* {====================================================== metamethods */
static int t_close(lua_State *L) {
  md_tensor **b = luaL_checkudata(L, 1, MDL_TENSOR);
  md_release(*b);
  *b = NULL;
  return 0;
}
static int t_gc(lua_State *L) { return t_close(L); }
static int t_len(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
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
  md_tensor **bx = luaL_checkudata(L, 1, MDL_TENSOR);
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
    md_tensor *t = mdL_checktensor(L, 1);
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
    md_tensor **b = mdL_newbox(L);
    md_tensor *s = md_slice(t, 0, i - 1, 1);
    md_tensor *r = md_reshape(s, t->ndim - 1, t->shape + 1);
    md_release(s);
    return mdL_result(L, b, r);
  }
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "grad") == 0) {
    md_tensor *t = mdL_checktensor(L, 1);
    if (t->grad) mdL_pushtensor(L, md_retain(t->grad));
    else lua_pushnil(L);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}
static int t_newindex(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "grad") != 0) return luaL_error(L, "cannot set field '%s' of a tensor", k);
  md_tensor *g = lua_isnil(L, 3) ? NULL : mdL_checktensor(L, 3);
  if (g && !md_same_shape(g, t))
    return luaL_error(L, "grad of shape %s for a tensor of shape %s", mdL_shapestr(g), mdL_shapestr(t));
  md_retain(g);
  md_release(t->grad);
  t->grad = g;
  return 0;
}
/* }====================================================== */

/* {====================================================== save, load */
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
    if (!mdL_totensor(L, -1)) return luaL_error(L, "save: value for '%s' is %s, not a tensor", lua_tostring(L, -2), luaL_typename(L, -1));
    n++;
    lua_pop(L, 1);
  }
  md_named *items = lua_newuserdatauv(L, sizeof *items * (size_t)(n ? n : 1), 0);
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    items[k].name = lua_tostring(L, -2);
    items[k].t = mdL_checktensor(L, -1);
    k++;
    lua_pop(L, 1);
  }
  qsort(items, (size_t)n, sizeof *items, named_cmp);
  if (md_safetensors_save(path, n, items) != MD_OK) return mdL_fail(L);
  return 0;
}
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_newtable(L);
  int n = 0;
  md_named *items = NULL;
  if (md_safetensors_load(path, &n, &items) != MD_OK) return mdL_fail(L);
  /* move refs into boxes first so a Lua memory error cannot leak them */
  for (int i = 0; i < n; i++) {
    md_tensor **b = mdL_newbox(L);
    *b = items[i].t;
    items[i].t = NULL;
    lua_setfield(L, -2, items[i].name);
  }
  md_named_free(n, items);
  mdL_gccheck(L);
  return 1;
}
static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, mdL_totensor(L, 1) != NULL);
  return 1;
}
/* }====================================================== */

const luaL_Reg mdL_tensorlib[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full}, {"randn", l_randn},
    {"rand", l_rand}, {"uniform", l_uniform}, {"randint", l_randint}, {"bernoulli", l_bernoulli},
    {"arange", l_arange}, {"manual_seed", l_manual_seed}, {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like},
    {"save", l_save}, {"load", l_load}, {"is_tensor", l_is_tensor},
    {NULL, NULL}};

/* the tensor-only methods */
static const luaL_Reg methods[] = {
    {"shape", t_shape}, {"size", t_size}, {"dim", t_dim}, {"numel", t_numel}, {"item", t_item},
    {"totable", t_totable}, {"requires_grad", t_requires_grad}, {"needs_grad", t_needs_grad}, {"is_leaf", t_is_leaf},
    {"grad_fn", t_grad_fn}, {"dtype", t_dtype}, {"float", t_float}, {"long", t_long},
    {"copy_", t_copy_}, {"fill_", t_fill_}, {"add_", t_add_}, {"mul_", t_mul_},
    {"zero_grad", t_zero_grad},
    {NULL, NULL}};
/* module functions that take the tensor first and are methods too */
static const char *const tensor_first[] = {
    "backward", "register_hook",
    "add", "sub", "mul", "div", "eq", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "square",
    "reciprocal", "pow", "clamp", "relu", "relu6", "sigmoid", "tanh", "silu", "sign", "gt", "ge", "lt",
    "sum", "mean", "var", "max", "argmax", "logsumexp", "reshape", "view", "flatten", "permute",
    "transpose", "narrow", "expand", "split", "chunk", "detach", "contiguous", "clone", "gather",
    "index_select", "matmul", "softmax", "log_softmax", NULL};

static const luaL_Reg metameth[] = {
    {"__gc", t_gc}, {"__close", t_close}, {"__tostring", t_tostring}, {"__index", t_index},
    {"__newindex", t_newindex}, {"__len", t_len}, {NULL, NULL}};
/* arithmetic metamethods: module functions */
static const char *const arith[][2] = {
    {"__add", "add"}, {"__sub", "sub"}, {"__mul", "mul"}, {"__div", "div"}, {"__unm", "neg"}, {NULL, NULL}};

void mdL_opentensor(lua_State *L) {
  luaL_newmetatable(L, MDL_SIZE);
  lua_pushcfunction(L, size_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, MDL_TENSOR); /* module, meta */
  luaL_setfuncs(L, metameth, 0);
  for (int k = 0; arith[k][0]; k++) {
    lua_getfield(L, -2, arith[k][1]);
    lua_setfield(L, -2, arith[k][0]);
  }
  luaL_newlib(L, methods); /* module, meta, methods */
  for (const char *const *k = tensor_first; *k; k++) {
    lua_getfield(L, -3, *k);
    lua_setfield(L, -2, *k);
  }
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
}
