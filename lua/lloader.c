/*
** lloader.c -- Lua bindings of the batch loader (datasets/loader.h).
** The function mdL_loaderlib and the md.Loader metatable (mdL_openloader),
** which linit.c puts into the `mdoctor.core` module:
**
**   md.loader(ds, {batch_size=32, shuffle=false, seed=<from md.manual_seed>,
**                  drop_last=false, indices={...}, prefetch=2, threads=1,
**                  transform={normalize=true | {mean=, std=}, pad_crop=4,
**                             hflip=true, resize={h, w} | n}})
**     ds: an md.Dataset, or a subset view {dataset=<md.Dataset>,
**     indices={1-based items}} (md.data.subset makes them).  indices: 1-based
**     items of ds (of the view, for a view).  normalize=true takes the data
**     set's own mean/std.
**   loader:iter()   for images, labels, masks in loader:iter() do ... end --
**                   one epoch per call (the first call uses the epoch the
**                   loader prefetched when it was made); masks is nil when
**                   the data set has none
**   loader:next()   one batch, or nil at the end of the epoch
**   loader:reset()  start the next epoch now
**   #loader         batches per epoch;  loader:size() items per epoch
**   loader:epoch()  the current epoch, from 1
**   loader:close()  stop the worker and free it now (also __close, __gc)
*/
#include "lbind.h"

#include "loader.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

typedef struct lloader {
  md_loader *l;
  int consumed; /* a batch of this epoch was asked for */
} lloader;

/* {====================================================== helpers */
/* boxes, GC pressure and option checks come from lbind.h */
static lloader *checkloader(lua_State *L, int i) {
  lloader *u = luaL_checkudata(L, i, MDL_LOADER);
  if (!u->l) luaL_argerror(L, i, "loader was closed");
  return u;
}

/* field k of the table at i: an integer / boolean / number, or d when nil */
static lua_Integer optint(lua_State *L, int i, const char *k, lua_Integer d, const char *fname) {
  int t = lua_getfield(L, i, k);
  lua_Integer v = d;
  if (t != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: option '%s' must be an integer, got %s", fname, k, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}
static int optbool(lua_State *L, int i, const char *k, int d, const char *fname) {
  int t = lua_getfield(L, i, k), v = d;
  if (t != LUA_TNIL) {
    if (t != LUA_TBOOLEAN) luaL_error(L, "%s: option '%s' must be a boolean, got %s", fname, k, luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* a number or a list of c numbers at the top into v[0..c-1] */
static void getfloats(lua_State *L, int c, float *v, const char *what) {
  if (lua_type(L, -1) == LUA_TNUMBER) {
    for (int k = 0; k < c; k++) v[k] = (float)lua_tonumber(L, -1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "loader: transform.normalize.%s must be a number or a list, got %s", what,
                                      luaL_typename(L, -1));
  lua_Integer n = luaL_len(L, -1);
  if (n != c) luaL_error(L, "loader: transform.normalize.%s has %d entries for %d channels", what, (int)n, c);
  for (int k = 0; k < c; k++) {
    lua_geti(L, -1, k + 1);
    int ok;
    lua_Number x = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "loader: transform.normalize.%s[%d] is not a number", what, k + 1);
    v[k] = (float)x;
    lua_pop(L, 1);
  }
}

static void gettransform(lua_State *L, int i, const md_dataset *ds, md_transform *tf) {
  static const char *const keys[] = {"normalize", "pad_crop", "hflip", "resize", NULL};
  memset(tf, 0, sizeof *tf);
  if (lua_isnil(L, i)) return;
  if (!lua_istable(L, i)) luaL_error(L, "loader: option 'transform' must be a table, got %s", luaL_typename(L, i));
  mdL_checkopts(L, i, "loader transform", keys);
  lua_Integer pad = optint(L, i, "pad_crop", 0, "loader transform");
  if (pad < 0 || pad > 4096) luaL_error(L, "loader: transform.pad_crop must be 0..4096, got %d", (int)pad);
  tf->pad_crop = (int)pad;
  tf->hflip = optbool(L, i, "hflip", 0, "loader transform");
  int t = lua_getfield(L, i, "resize");
  if (t == LUA_TNUMBER) {
    if (!lua_isinteger(L, -1)) luaL_error(L, "loader: transform.resize must be an integer or {h, w}");
    lua_Integer s = lua_tointeger(L, -1);
    if (s < 1 || s > 65536) luaL_error(L, "loader: transform.resize %d out of range 1..65536", (int)s);
    tf->resize_h = tf->resize_w = (int)s;
  } else if (t == LUA_TTABLE) {
    int hw[2];
    if (luaL_len(L, -1) != 2) luaL_error(L, "loader: transform.resize must be {h, w}");
    for (int k = 0; k < 2; k++) {
      lua_geti(L, -1, k + 1);
      int ok;
      lua_Integer s = lua_tointegerx(L, -1, &ok);
      if (!ok || s < 1 || s > 65536) luaL_error(L, "loader: transform.resize must be {h, w} of integers 1..65536");
      hw[k] = (int)s;
      lua_pop(L, 1);
    }
    tf->resize_h = hw[0], tf->resize_w = hw[1];
  } else if (t != LUA_TNIL)
    luaL_error(L, "loader: transform.resize must be an integer or {h, w}, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  t = lua_getfield(L, i, "normalize");
  if (t == LUA_TBOOLEAN) {
    if (lua_toboolean(L, -1)) {
      if (ds->c > 3)
        luaL_error(L, "loader: %s has %d channels: give normalize={mean=..., std=...}", ds->name, ds->c);
      tf->normalize = 1;
      for (int k = 0; k < ds->c; k++) tf->mean[k] = ds->mean[k], tf->std[k] = ds->std[k];
    }
  } else if (t == LUA_TTABLE) {
    static const char *const nkeys[] = {"mean", "std", NULL};
    int n = lua_gettop(L);
    mdL_checkopts(L, n, "loader transform.normalize", nkeys);
    if (ds->c > MD_TF_MAXC) luaL_error(L, "loader: normalize takes at most %d channels (%s has %d)", MD_TF_MAXC, ds->name, ds->c);
    tf->normalize = 1;
    if (lua_getfield(L, n, "mean") == LUA_TNIL) luaL_error(L, "loader: transform.normalize needs mean and std");
    getfloats(L, ds->c, tf->mean, "mean");
    lua_pop(L, 1);
    if (lua_getfield(L, n, "std") == LUA_TNIL) luaL_error(L, "loader: transform.normalize needs mean and std");
    getfloats(L, ds->c, tf->std, "std");
    lua_pop(L, 1);
  } else if (t != LUA_TNIL)
    luaL_error(L, "loader: transform.normalize must be a boolean or {mean=, std=}, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
}

/* 1-based item numbers of the list at index i, each 1..n, into malloc'd
** 0-based entries; base (may be NULL) maps them through a view's list */
static int64_t *getindices(lua_State *L, int i, int64_t n, const int64_t *base, const char *what, int64_t *count) {
  if (!lua_istable(L, i)) luaL_error(L, "loader: %s must be a list of item numbers, got %s", what, luaL_typename(L, i));
  lua_Integer m = luaL_len(L, i);
  int64_t *v = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(m > 0 ? m : 1), 0); /* collected with the stack */
  for (lua_Integer k = 0; k < m; k++) {
    lua_geti(L, i, k + 1);
    int ok;
    lua_Integer x = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "loader: %s[%d] is %s, not an integer", what, (int)k + 1, luaL_typename(L, -1));
    if (x < 1 || x > n)
      luaL_error(L, "loader: %s[%d] = %d is out of range 1..%d", what, (int)k + 1, (int)x, (int)n);
    v[k] = base ? base[x - 1] : x - 1;
    lua_pop(L, 1);
  }
  *count = m;
  return v;
}
/* }====================================================== */

/* {====================================================== md.loader */
static int l_loader(lua_State *L) {
  static const char *const keys[] = {"batch_size", "shuffle", "seed", "drop_last", "indices",
                                     "transform", "prefetch", "threads", NULL};
  lua_settop(L, 2);
  md_dataset *ds;
  const int64_t *idx = NULL;
  int64_t nidx = 0;
  if (lua_istable(L, 1)) { /* a subset view {dataset=, indices=} */
    if (lua_getfield(L, 1, "dataset") == LUA_TNIL)
      luaL_argerror(L, 1, "a data set or a subset view {dataset=, indices=} expected");
    ds = mdL_checkdataset(L, lua_gettop(L));
    lua_getfield(L, 1, "indices");
    idx = getindices(L, lua_gettop(L), ds->n, NULL, "the subset's indices", &nidx);
  } else
    ds = mdL_checkdataset(L, 1);
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    mdL_checkopts(L, 2, "loader", keys);
  } else {
    lua_newtable(L);
    lua_replace(L, 2);
  }
  lua_Integer bs = optint(L, 2, "batch_size", 32, "loader");
  if (bs < 1) luaL_error(L, "loader: batch_size must be at least 1, got %d", (int)bs);
  int shuffle = optbool(L, 2, "shuffle", 0, "loader");
  int drop_last = optbool(L, 2, "drop_last", 0, "loader");
  lua_Integer prefetch = optint(L, 2, "prefetch", 2, "loader");
  if (prefetch < 0 || prefetch > MD_LOADER_MAX_PREFETCH)
    luaL_error(L, "loader: prefetch must be 0..%d, got %d", MD_LOADER_MAX_PREFETCH, (int)prefetch);
  lua_Integer threads = optint(L, 2, "threads", 1, "loader");
  if (threads < 1 || threads > 256) luaL_error(L, "loader: threads must be 1..256, got %d", (int)threads);
  uint64_t seed;
  if (lua_getfield(L, 2, "seed") == LUA_TNIL)
    seed = md_rand_u64(); /* md.manual_seed makes it repeat */
  else {
    int ok;
    seed = (uint64_t)lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "loader: option 'seed' must be an integer, got %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 2, "indices") != LUA_TNIL)
    idx = getindices(L, lua_gettop(L), idx ? nidx : ds->n, idx, "indices", &nidx);
  else
    lua_pop(L, 1);
  md_transform tf;
  lua_getfield(L, 2, "transform");
  gettransform(L, lua_gettop(L), ds, &tf);
  lua_pop(L, 1);
  lloader *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->l = NULL;
  u->consumed = 0;
  luaL_setmetatable(L, MDL_LOADER);
  lua_pushvalue(L, 1); /* keep the data set (or view) for loader:dataset() */
  lua_setiuservalue(L, -2, 1);
  u->l = md_loader_new(ds, idx, nidx, bs, shuffle, seed, drop_last, &tf, (int)prefetch);
  if (!u->l) return mdL_fail(L);
  if (threads != 1 && md_loader_set_num_threads(u->l, (int)threads) != 0) return mdL_fail(L);
  return 1;
}

/* push one batch (or nil): images, labels, masks */
static int push_batch(lua_State *L, lloader *u) {
  md_tensor **bi = mdL_newbox(L), **bl = mdL_newbox(L), **bm = mdL_newbox(L);
  md_tensor *x, *y, *m;
  u->consumed = 1;
  int r = md_loader_next(u->l, &x, &y, &m);
  if (r < 0) return mdL_fail(L);
  if (r == 0) {
    lua_pushnil(L);
    return 1;
  }
  *bi = x, *bl = y, *bm = m;
  if (!m) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  mdL_gccheck(L);
  return 3;
}

static int lo_step(lua_State *L) { return push_batch(L, checkloader(L, 1)); }

static int lo_iter(lua_State *L) {
  lloader *u = checkloader(L, 1);
  if (u->consumed) {
    if (md_loader_reset(u->l) != 0) return mdL_fail(L);
    u->consumed = 0;
  }
  lua_pushcfunction(L, lo_step);
  lua_pushvalue(L, 1);
  return 2;
}

static int lo_next(lua_State *L) { return push_batch(L, checkloader(L, 1)); }

static int lo_reset(lua_State *L) {
  lloader *u = checkloader(L, 1);
  if (md_loader_reset(u->l) != 0) return mdL_fail(L);
  u->consumed = 0;
  return 0;
}

static int lo_len(lua_State *L) {
  lua_pushinteger(L, md_loader_num_batches(checkloader(L, 1)->l));
  return 1;
}
static int lo_size(lua_State *L) {
  lua_pushinteger(L, md_loader_num_items(checkloader(L, 1)->l));
  return 1;
}
static int lo_epoch(lua_State *L) {
  lua_pushinteger(L, md_loader_epoch(checkloader(L, 1)->l) + 1);
  return 1;
}
static int lo_dataset(lua_State *L) {
  checkloader(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}
static int lo_close(lua_State *L) {
  lloader *u = luaL_checkudata(L, 1, MDL_LOADER);
  md_loader_free(u->l);
  u->l = NULL;
  return 0;
}
static int lo_tostring(lua_State *L) {
  lloader *u = luaL_checkudata(L, 1, MDL_LOADER);
  if (!u->l) {
    lua_pushliteral(L, "md.Loader (closed)");
    return 1;
  }
  int c, h, w;
  md_loader_item_shape(u->l, &c, &h, &w);
  lua_pushfstring(L, "md.Loader: %I items of %dx%dx%d in %I batches per epoch (epoch %I)",
                  (lua_Integer)md_loader_num_items(u->l), c, h, w, (lua_Integer)md_loader_num_batches(u->l),
                  (lua_Integer)md_loader_epoch(u->l) + 1);
  return 1;
}
/* }====================================================== */

const luaL_Reg mdL_loaderlib[] = {{"loader", l_loader}, {NULL, NULL}};

static const luaL_Reg meth[] = {{"iter", lo_iter},   {"next", lo_next},   {"reset", lo_reset},
                                {"size", lo_size},   {"epoch", lo_epoch}, {"dataset", lo_dataset},
                                {"close", lo_close}, {NULL, NULL}};
static const luaL_Reg meta[] = {{"__len", lo_len},           {"__gc", lo_close}, {"__close", lo_close},
                                {"__tostring", lo_tostring}, {NULL, NULL}};

void mdL_openloader(lua_State *L) {
  luaL_newmetatable(L, MDL_LOADER);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
