/*
** lops.c -- the core's ops as module functions: elementwise math,
** comparisons, reductions, shape ops, nn functional ops and losses.  Each
** checks its arguments, makes its result box (mdL_newbox), then calls one md_*
** op and hands its result or error to mdL_result.  The tensor metatable
** (ltensor.c) takes the ops that take a tensor first as methods too.
*/
#include "lbind.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

/* {====================================================== elementwise */
typedef md_tensor *(*un_f)(const md_tensor *);
typedef md_tensor *(*bin_f)(const md_tensor *, const md_tensor *);

static int unary(lua_State *L, un_f f) {
  md_tensor *x = mdL_checktensor(L, 1);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, f(x));
}
#define UN(name) \
  static int l_##name(lua_State *L) { return unary(L, md_##name); }
UN(neg) UN(abs) UN(exp) UN(log) UN(sqrt) UN(rsqrt) UN(square) UN(reciprocal) UN(relu) UN(relu6)
UN(sigmoid) UN(tanh) UN(silu) UN(hardsigmoid) UN(hardswish) UN(sign) UN(detach) UN(contiguous)
UN(clone)

/* a op b where either may be a number */
static int binary(lua_State *L, bin_f f, int kind) {
  md_tensor **b = mdL_newbox(L); /* at top; args are 1 and 2 */
  int na = lua_type(L, 1) == LUA_TNUMBER, nb = lua_type(L, 2) == LUA_TNUMBER;
  md_tensor *r;
  if (na && nb) return luaL_error(L, "tensor op on two numbers");
  if (nb) { /* tensor op number: scalar fast paths */
    md_tensor *x = mdL_checktensor(L, 1);
    float s = (float)lua_tonumber(L, 2);
    switch (kind) {
    case 0: r = md_add_scalar(x, s); break;
    case 1: r = md_add_scalar(x, -s); break;
    case 2: r = md_mul_scalar(x, s); break;
    default: r = md_mul_scalar(x, 1.0f / s); break;
    }
    return mdL_result(L, b, r);
  }
  if (na) {
    md_tensor *x = mdL_checktensor(L, 2);
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
    return mdL_result(L, b, r);
  }
  return mdL_result(L, b, f(mdL_checktensor(L, 1), mdL_checktensor(L, 2)));
}
static int l_add(lua_State *L) { return binary(L, md_add, 0); }
static int l_sub(lua_State *L) { return binary(L, md_sub, 1); }
static int l_mul(lua_State *L) { return binary(L, md_mul, 2); }
static int l_div(lua_State *L) { return binary(L, md_div, 3); }
/* a number argument becomes a 0-d tensor (scope'd by the caller) */
static md_tensor *tensor_or_number(lua_State *L, int i, md_tensor **owned) {
  *owned = NULL;
  if (lua_type(L, i) == LUA_TNUMBER) {
    *owned = md_scalar((float)lua_tonumber(L, i));
    if (!*owned) mdL_fail(L);
    return *owned;
  }
  return mdL_checktensor(L, i);
}
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
  md_tensor **b = mdL_newbox(L);
  md_tensor *x = tensor_or_number(L, 1, &o1), *y = tensor_or_number(L, 2, &o2);
  x = as_float(x, &o1);
  y = as_float(y, &o2);
  md_tensor *r = x && y ? md_eq(x, y) : NULL;
  md_release(o1);
  md_release(o2);
  return mdL_result(L, b, r);
}

static int l_pow(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  float p = (float)luaL_checknumber(L, 2);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_pow_scalar(x, p));
}
static int l_clamp(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  float lo = lua_isnoneornil(L, 2) ? -INFINITY : (float)luaL_checknumber(L, 2);
  float hi = lua_isnoneornil(L, 3) ? INFINITY : (float)luaL_checknumber(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_clamp(x, lo, hi));
}
static int l_leaky_relu(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  float s = (float)luaL_optnumber(L, 2, 0.01);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_leaky_relu(x, s));
}
static int cmp(lua_State *L, md_tensor *(*f)(const md_tensor *, float)) {
  md_tensor *x = mdL_checktensor(L, 1);
  float s = (float)luaL_checknumber(L, 2);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, f(x, s));
}
static int l_gt(lua_State *L) { return cmp(L, md_gt_scalar); }
static int l_ge(lua_State *L) { return cmp(L, md_ge_scalar); }
static int l_lt(lua_State *L) { return cmp(L, md_lt_scalar); }
/* }====================================================== */

/* {====================================================== reductions */
/* sum(x [, dims [, keepdim]]) */
static int reduce(lua_State *L, md_tensor *(*f)(const md_tensor *, int, const int *, int)) {
  md_tensor *x = mdL_checktensor(L, 1);
  int dims[MD_MAX_DIMS];
  int n = mdL_getdims(L, 2, dims);
  int keep = lua_toboolean(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, f(x, n, dims, keep));
}
static int l_sum(lua_State *L) { return reduce(L, md_sum); }
static int l_mean(lua_State *L) { return reduce(L, md_mean); }
static int l_var(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int dims[MD_MAX_DIMS];
  int n = mdL_getdims(L, 2, dims);
  int keep = lua_toboolean(L, 3);
  int unb = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_var(x, n, dims, keep, unb));
}
/* max(x) -> scalar tensor; max(x, dim [, keepdim]) -> values, indices
** (int64, 0-based values like every index tensor) */
static int l_max(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    md_tensor **b = mdL_newbox(L);
    md_tensor *f = md_reshape(x, 1, (int64_t[]){-1});
    md_tensor *r = md_max(f, 0, 0, NULL);
    md_release(f);
    return mdL_result(L, b, r);
  }
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  int keep = lua_toboolean(L, 3);
  md_tensor **b = mdL_newbox(L), **bi = mdL_newbox(L);
  md_tensor *idx = NULL;
  md_tensor *v = md_max(x, d, keep, &idx);
  if (!v) return mdL_fail(L);
  *b = v;
  *bi = idx;
  mdL_gccheck(L);
  return 2;
}
static int l_argmax(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  int keep = lua_toboolean(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_argmax(x, d, keep));
}
static int l_logsumexp(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_logsumexp(x, d, lua_toboolean(L, 3)));
}
/* }====================================================== */

/* {====================================================== shape ops */
static int l_reshape(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, 2, shape);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_reshape(x, nd, shape));
}
static int l_flatten(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int s = mdL_checkdim(L, 2, luaL_optinteger(L, 2, 1)), e = mdL_checkdim(L, 3, luaL_optinteger(L, 3, -1));
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_flatten(x, s, e));
}
static int l_permute(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int dims[MD_MAX_DIMS], n;
  if (lua_istable(L, 2))
    n = mdL_getdims(L, 2, dims);
  else {
    n = lua_gettop(L) - 1;
    luaL_argcheck(L, n <= MD_MAX_DIMS, 2, "too many dims");
    for (int i = 0; i < n; i++) dims[i] = mdL_checkdim(L, i + 2, luaL_checkinteger(L, i + 2));
  }
  if (n != x->ndim)
    return luaL_error(L, "permute: %d dims given for a tensor with %d dimensions", n, x->ndim);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_permute(x, dims));
}
static int l_transpose(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int a = mdL_checkdim(L, 2, luaL_checkinteger(L, 2)), c = mdL_checkdim(L, 3, luaL_checkinteger(L, 3));
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_transpose(x, a, c));
}
/* narrow(x, dim, start, len): start is 1-based */
static int l_narrow(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  lua_Integer s = luaL_checkinteger(L, 3), n = luaL_checkinteger(L, 4);
  luaL_argcheck(L, s >= 1, 3, "start is 1-based");
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_slice(x, d, s - 1, n));
}
static int l_expand(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int64_t shape[MD_MAX_DIMS];
  int nd = mdL_getshape(L, 2, shape);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_expand(x, nd, shape));
}
/* pad(x, {left, right, top, bottom} [, value]) like F.pad for the last 2 dims */
static int l_pad(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
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
  md_tensor **b = mdL_newbox(L);
  if (n == 2) return mdL_result(L, b, md_pad_dim(x, -1, p[0], p[1], v));
  return mdL_result(L, b, md_pad2d(x, p[0], p[1], p[2], p[3], v));
}
static int l_cat(lua_State *L) {
  lua_settop(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 4096, 1, "need 1 to 4096 tensors");
  int d = mdL_checkdim(L, 2, luaL_optinteger(L, 2, 1));
  md_tensor **xs = lua_newuserdatauv(L, sizeof *xs * (size_t)n, 0); /* GC'd scratch */
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    xs[i] = mdL_checktensor(L, -1);
    lua_pop(L, 1); /* still referenced by the table */
  }
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_cat(n, xs, d));
}
static int push_pieces(lua_State *L, int k, md_tensor **out) {
  lua_createtable(L, k, 0);
  for (int i = 0; i < k; i++) {
    mdL_pushtensor(L, out[i]);
    lua_seti(L, -2, i + 1);
  }
  return 1;
}
/* split(x, size_or_sizes, dim) like torch.split */
static int l_split(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 3, luaL_optinteger(L, 3, 1));
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
  if (md_split(x, d, k, sizes, out) != MD_OK) return mdL_fail(L);
  return push_pieces(L, k, out);
}
static int l_chunk(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 1024, 2, "1 to 1024 chunks");
  int d = mdL_checkdim(L, 3, luaL_optinteger(L, 3, 1));
  md_tensor *out[1024];
  int k = md_chunk(x, d, (int)n, out);
  if (k < 0) return mdL_fail(L);
  return push_pieces(L, k, out);
}
/* index tensors hold 0-based values (like class labels and PyTorch) */
static int l_gather(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor *idx = mdL_checktensor(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_gather(x, d, idx));
}
static int l_scatter_add(lua_State *L) { /* scatter_add(shape_table, dim, idx, src) */
  int64_t shape[MD_MAX_DIMS];
  luaL_checktype(L, 1, LUA_TTABLE);
  int nd = mdL_getshape(L, 1, shape);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor *idx = mdL_checktensor(L, 3), *src = mdL_checktensor(L, 4);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_scatter_add(nd, shape, d, idx, src));
}
static int l_index_select(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor *idx = mdL_checktensor(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_index_select(x, d, idx));
}
static int l_one_hot(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_one_hot(x, n));
}
/* }====================================================== */

/* {====================================================== nn ops */
static int l_matmul(lua_State *L) {
  md_tensor *a = mdL_checktensor(L, 1), *c = mdL_checktensor(L, 2);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_matmul(a, c));
}
static int l_linear(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1), *w = mdL_checktensor(L, 2), *bias = mdL_opttensor(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_linear(x, w, bias));
}
static const char *const conv_opts[] = {"stride", "padding", "dilation", "groups", NULL};
/* conv2d(x, w, b|nil, {stride=, padding=, dilation=, groups=}) */
static int l_conv2d(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1), *w = mdL_checktensor(L, 2), *bias = mdL_opttensor(L, 3);
  mdL_checkopts(L, 4, "conv2d", conv_opts);
  md_conv_params p = md_conv_params_default();
  mdL_optpair(L, 4, "stride", p.stride, 1);
  mdL_optpair(L, 4, "padding", p.pad, 0);
  mdL_optpair(L, 4, "dilation", p.dilation, 1);
  p.groups = (int)mdL_optnum(L, 4, "groups", 1);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_conv2d(x, w, bias, p));
}
static const char *const pool_opts[] = {"kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                        "count_include_pad", "return_indices", NULL};
static md_pool_params poolparams(lua_State *L, int i, const char *fname) {
  mdL_checkopts(L, i, fname, pool_opts);
  md_pool_params p;
  memset(&p, 0, sizeof p);
  mdL_optpair(L, i, "kernel_size", p.kernel, 0);
  if (p.kernel[0] <= 0) luaL_error(L, "%s: option kernel_size is required (a positive integer or pair)", fname);
  mdL_optpair(L, i, "stride", p.stride, 0);
  if (p.stride[0] == 0) p.stride[0] = p.kernel[0];
  if (p.stride[1] == 0) p.stride[1] = p.kernel[1];
  mdL_optpair(L, i, "padding", p.pad, 0);
  mdL_optpair(L, i, "dilation", p.dilation, 1);
  p.ceil_mode = mdL_optbool(L, i, "ceil_mode", 0);
  p.count_include_pad = mdL_optbool(L, i, "count_include_pad", 1);
  return p;
}
/* max_pool2d(x, {kernel_size=2, ...}) -> y [, indices if return_indices] */
static int l_max_pool2d(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  if (lua_isinteger(L, 2)) { /* max_pool2d(x, 2) shorthand */
    lua_Integer k = lua_tointeger(L, 2);
    lua_settop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, k);
    lua_setfield(L, 2, "kernel_size");
  }
  md_pool_params p = poolparams(L, 2, "max_pool2d");
  int want = mdL_optbool(L, 2, "return_indices", 0);
  md_tensor **b = mdL_newbox(L), **bi = mdL_newbox(L);
  md_tensor *idx = NULL, *y = md_max_pool2d(x, p, want ? &idx : NULL);
  if (!y) return mdL_fail(L);
  *b = y;
  *bi = idx;
  mdL_gccheck(L);
  return want ? 2 : (lua_pop(L, 1), 1);
}
static int l_avg_pool2d(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  if (lua_isinteger(L, 2)) {
    lua_Integer k = lua_tointeger(L, 2);
    lua_settop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, k);
    lua_setfield(L, 2, "kernel_size");
  }
  md_pool_params p = poolparams(L, 2, "avg_pool2d");
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_avg_pool2d(x, p));
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
  md_tensor *x = mdL_checktensor(L, 1);
  int64_t oh, ow;
  outsize(L, 2, &oh, &ow);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_adaptive_avg_pool2d(x, oh, ow));
}
static int l_adaptive_max_pool2d(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int64_t oh, ow;
  outsize(L, 2, &oh, &ow);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_adaptive_max_pool2d(x, oh, ow, NULL));
}
static const char *const interp_opts[] = {"size", "scale_factor", "mode", "align_corners", NULL};
/* interpolate(x, {size={h,w} | scale_factor=s, mode="nearest"|"bilinear", align_corners=false}) */
static int l_interpolate(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  mdL_checkopts(L, 2, "interpolate", interp_opts);
  if (x->ndim != 4) return luaL_error(L, "interpolate: input must be 4-d (N,C,H,W), got %s", mdL_shapestr(x));
  int64_t oh = 0, ow = 0;
  if (lua_getfield(L, 2, "size") != LUA_TNIL) {
    outsize(L, lua_gettop(L), &oh, &ow);
  } else {
    lua_Number s = mdL_optnum(L, 2, "scale_factor", 0);
    if (s <= 0) return luaL_error(L, "interpolate: give size or a positive scale_factor");
    oh = (int64_t)floor(x->shape[2] * s);
    ow = (int64_t)floor(x->shape[3] * s);
  }
  lua_pop(L, 1);
  const char *mode = "nearest";
  if (lua_getfield(L, 2, "mode") != LUA_TNIL) mode = luaL_checkstring(L, -1);
  int ac = mdL_optbool(L, 2, "align_corners", 0);
  md_tensor **b = mdL_newbox(L);
  if (strcmp(mode, "nearest") == 0) return mdL_result(L, b, md_upsample_nearest(x, oh, ow));
  if (strcmp(mode, "bilinear") == 0) return mdL_result(L, b, md_upsample_bilinear(x, oh, ow, ac));
  return luaL_error(L, "interpolate: unknown mode '%s' (nearest or bilinear)", mode);
}
static const char *const bn_opts[] = {"running_mean", "running_var", "weight", "bias", "training",
                                      "momentum", "eps", NULL};
static md_tensor *fieldtensor(lua_State *L, int i, const char *k) {
  md_tensor *t = NULL;
  if (lua_getfield(L, i, k) != LUA_TNIL) t = mdL_checktensor(L, lua_gettop(L));
  lua_pop(L, 1); /* the options table keeps it alive */
  return t;
}
/* batch_norm(x, {running_mean=, running_var=, weight=, bias=, training=, momentum=0.1, eps=1e-5}) */
static int l_batch_norm(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  mdL_checkopts(L, 2, "batch_norm", bn_opts);
  md_tensor *rm = NULL, *rv = NULL, *w = NULL, *bb = NULL;
  if (!lua_isnoneornil(L, 2)) {
    rm = fieldtensor(L, 2, "running_mean");
    rv = fieldtensor(L, 2, "running_var");
    w = fieldtensor(L, 2, "weight");
    bb = fieldtensor(L, 2, "bias");
  }
  int training = mdL_optbool(L, 2, "training", 1);
  float mom = (float)mdL_optnum(L, 2, "momentum", 0.1), eps = (float)mdL_optnum(L, 2, "eps", 1e-5);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_batch_norm(x, rm, rv, w, bb, training, mom, eps));
}
/* }====================================================== */

/* {====================================================== softmax, losses, dropout */
static int l_softmax(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_softmax(x, d));
}
static int l_log_softmax(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  int d = mdL_checkdim(L, 2, luaL_checkinteger(L, 2));
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_log_softmax(x, d));
}
static int reduction_arg(lua_State *L, int i) {
  const char *r = luaL_optstring(L, i, "mean");
  if (strcmp(r, "none") == 0) return 0;
  if (strcmp(r, "mean") == 0) return 1;
  if (strcmp(r, "sum") == 0) return 2;
  return luaL_argerror(L, i, lua_pushfstring(L, "unknown reduction '%s' (none, mean or sum)", r));
}
static int l_nll_loss(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1), *t = mdL_checktensor(L, 2);
  int r = reduction_arg(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_nll_loss(x, t, r));
}
static int l_cross_entropy(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1), *t = mdL_checktensor(L, 2);
  int r = reduction_arg(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_cross_entropy(x, t, r));
}
static int l_mse_loss(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1), *t = mdL_checktensor(L, 2);
  int r = reduction_arg(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_mse_loss(x, t, r));
}
static int l_dropout(lua_State *L) {
  md_tensor *x = mdL_checktensor(L, 1);
  float p = (float)luaL_optnumber(L, 2, 0.5);
  int training = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_dropout(x, p, training));
}
/* }====================================================== */

const luaL_Reg mdL_opslib[] = {
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
    {NULL, NULL}};
