/*
** ldata.c -- Lua bindings of datasets/ (readers, images, the cluttered
** compositor) and of the core's mask ops: the functions mdL_datalib and the
** md.Dataset metatable (mdL_opendata), which linit.c puts into the
** `mdoctor.core` module.  The batch loader lives in lua/lloader.c.
**
**   ds = md.open_idx(images, labels)
**   ds = md.open_cifar({file, ...} | file [, {fine=true, version=10|100}])
**   ds = md.open_stl10(x [, y])
**   ds = md.open_svhn(mat)     -- train_32x32.mat etc. (libmatio)
**   ds = md.open_folder(root [, {masks=dir, labelme=bool, fill="evenodd"|"nonzero",
**                               size={h,w} | n, channels=1|3, csv=file | {file, ...},
**                               classes_from={file, ...}, stats=n}])
**   #ds; ds[i] (1-based) -> {image, label, mask; image=, label=, mask=}
**   ds:get(i) -> image (c,h,w) float in [0,1], label (0-based), mask (1,h,w) 0/1 or nil
**   ds:label(i), ds:labels() (int64 tensor), ds:info(), ds:close()
**   md.mask_resize / mask_dilate / mask_erode / mask_expand / mask_for_layer
**   md.png_write(path, t), md.png_read(path [, channels]), md.labelme_mask(...)
**   md.clutter_compose(item, {...}) -> image, mask; md.clutter_families()
*/
#include "lbind.h"

#include "image.h"
#include "readers.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

/* {====================================================== helpers */
/* boxes, errors, GC pressure and option checks come from lbind.h */

/* option field helpers: the value of key k of the table at i, or the default */
static int opt_type(lua_State *L, int i, const char *k) {
  if (lua_isnoneornil(L, i)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, i, k);
}
static int optbool(lua_State *L, int i, const char *fname, const char *k, int d) {
  int t = opt_type(L, i, k);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: option '%s' must be a boolean, got %s", fname, k, lua_typename(L, t));
  int v = t == LUA_TNIL ? d : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}
static lua_Integer optint(lua_State *L, int i, const char *fname, const char *k, lua_Integer d) {
  int t = opt_type(L, i, k);
  if (t != LUA_TNIL && !lua_isinteger(L, -1))
    luaL_error(L, "%s: option '%s' must be an integer, got %s", fname, k, luaL_typename(L, -1));
  lua_Integer v = t == LUA_TNIL ? d : lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}
/* a string option; the string stays valid while the options table lives */
static const char *optstr(lua_State *L, int i, const char *fname, const char *k) {
  int t = opt_type(L, i, k);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "%s: option '%s' must be a string, got %s", fname, k, lua_typename(L, t));
  const char *s = t == LUA_TNIL ? NULL : lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}
/* {h, w} or n (square), from the value at index i; 0 = absent */
static void getsize(lua_State *L, int i, const char *fname, const char *what, int *h, int *w) {
  *h = *w = 0;
  if (lua_isnoneornil(L, i)) return;
  if (lua_isinteger(L, i)) {
    *h = *w = (int)lua_tointeger(L, i);
  } else if (lua_istable(L, i) && luaL_len(L, i) == 2) {
    int v[2];
    for (int k = 0; k < 2; k++) {
      lua_geti(L, i, k + 1);
      if (!lua_isinteger(L, -1)) luaL_error(L, "%s: %s must be {h, w} integers", fname, what);
      lua_Integer x = lua_tointeger(L, -1);
      v[k] = x > 0 && x < (1 << 20) ? (int)x : -1;
      lua_pop(L, 1);
    }
    *h = v[0], *w = v[1];
  } else {
    luaL_error(L, "%s: %s must be {h, w} or an integer, got %s", fname, what, luaL_typename(L, i));
  }
  if (*h <= 0 || *w <= 0) luaL_error(L, "%s: %s must be positive", fname, what);
}
/* }====================================================== */

/* {====================================================== md.Dataset */
md_dataset *mdL_todataset(lua_State *L, int i) {
  md_dataset **b = luaL_testudata(L, i, MDL_DATASET);
  return b ? *b : NULL;
}

md_dataset *mdL_checkdataset(lua_State *L, int i) {
  md_dataset **b = luaL_testudata(L, i, MDL_DATASET);
  if (!b) luaL_argerror(L, i, lua_pushfstring(L, "data set expected, got %s", luaL_typename(L, i)));
  if (!*b) luaL_argerror(L, i, "data set was closed");
  return *b;
}

static md_dataset **newdsbox(lua_State *L) {
  md_dataset **b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = NULL;
  luaL_setmetatable(L, MDL_DATASET);
  return b;
}

void mdL_pushdataset(lua_State *L, md_dataset *ds) {
  md_dataset **b = newdsbox(L);
  *b = ds;
}

static int ds_gc(lua_State *L) {
  md_dataset **b = luaL_checkudata(L, 1, MDL_DATASET);
  md_dataset_release(*b);
  *b = NULL;
  return 0;
}

static int ds_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mdL_checkdataset(L, 1)->n);
  return 1;
}

static int64_t checkindex(lua_State *L, md_dataset *ds, int arg) {
  int ok;
  lua_Integer i = lua_tointegerx(L, arg, &ok);
  if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "integer index expected, got %s", luaL_typename(L, arg)));
  if (i < 1 || i > ds->n)
    luaL_error(L, "data set %s: index %I out of range 1..%I (indices are 1-based)", ds->name, i, (lua_Integer)ds->n);
  return (int64_t)i - 1;
}

/* pushes image, label, mask (or nil) */
static void push_item(lua_State *L, md_dataset *ds, int64_t i) {
  size_t hw = (size_t)ds->h * ds->w, chw = hw * (size_t)ds->c;
  md_tensor **bi = mdL_newbox(L);
  lua_pushinteger(L, ds->labels ? (lua_Integer)ds->labels[i] : -1);
  md_tensor **bm = NULL;
  if (ds->has_masks)
    bm = mdL_newbox(L);
  else
    lua_pushnil(L);
  uint8_t *px = lua_newuserdatauv(L, chw + hw, 0); /* scratch, collected */
  *bi = md_empty(3, (int64_t[]){ds->c, ds->h, ds->w}, MD_F32);
  if (!*bi) mdL_fail(L);
  if (bm && !(*bm = md_empty(3, (int64_t[]){1, ds->h, ds->w}, MD_F32))) mdL_fail(L);
  if (md_dataset_get(ds, i, px, bm ? px + chw : NULL) != MD_OK) mdL_fail(L);
  float *d = (*bi)->data;
  for (size_t k = 0; k < chw; k++) d[k] = px[k] * (1.0f / 255.0f);
  if (bm) {
    float *m = (*bm)->data;
    for (size_t k = 0; k < hw; k++) m[k] = px[chw + k] ? 1.0f : 0.0f;
  }
  lua_pop(L, 1); /* scratch */
  mdL_gccheck(L);
}

/* ds:get(i) -> image, label, mask|nil */
static int ds_get(lua_State *L) {
  md_dataset *ds = mdL_checkdataset(L, 1);
  push_item(L, ds, checkindex(L, ds, 2));
  return 3;
}

static int ds_label(lua_State *L) {
  md_dataset *ds = mdL_checkdataset(L, 1);
  int64_t i = checkindex(L, ds, 2);
  lua_pushinteger(L, ds->labels ? (lua_Integer)ds->labels[i] : -1);
  return 1;
}

static int ds_labels(lua_State *L) {
  md_dataset *ds = mdL_checkdataset(L, 1);
  md_tensor **b = mdL_newbox(L);
  if (!ds->labels) return mdL_result(L, b, md_full(1, (int64_t[]){ds->n}, -1.0f));
  return mdL_result(L, b, md_from_i64(1, (int64_t[]){ds->n}, ds->labels));
}

static int ds_close(lua_State *L) { return ds_gc(L); }

static void setnum_array(lua_State *L, const float *v, int n, const char *k) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, k);
}

static int ds_info(lua_State *L) {
  md_dataset *ds = mdL_checkdataset(L, 1);
  lua_createtable(L, 0, 12);
  lua_pushinteger(L, (lua_Integer)ds->n), lua_setfield(L, -2, "n");
  lua_pushinteger(L, ds->c), lua_setfield(L, -2, "c");
  lua_pushinteger(L, ds->h), lua_setfield(L, -2, "h");
  lua_pushinteger(L, ds->w), lua_setfield(L, -2, "w");
  lua_pushinteger(L, ds->nclasses), lua_setfield(L, -2, "classes");
  lua_pushboolean(L, ds->has_masks), lua_setfield(L, -2, "has_masks");
  lua_pushboolean(L, ds->images != NULL), lua_setfield(L, -2, "in_memory");
  lua_pushstring(L, ds->name), lua_setfield(L, -2, "name");
  if (ds->class_names) {
    lua_createtable(L, ds->nclasses, 0);
    for (int k = 0; k < ds->nclasses; k++) {
      lua_pushstring(L, ds->class_names[k] ? ds->class_names[k] : "");
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "class_names");
  }
  int nc = ds->c < 3 ? ds->c : 3;
  setnum_array(L, ds->mean, nc, "mean");
  setnum_array(L, ds->std, nc, "std");
  return 1;
}

static int ds_tostring(lua_State *L) {
  md_dataset **b = luaL_checkudata(L, 1, MDL_DATASET);
  md_dataset *ds = *b;
  if (!ds)
    lua_pushliteral(L, "md.Dataset(closed)");
  else
    lua_pushfstring(L, "md.Dataset(%s: %I items of %dx%dx%d, %d classes%s)", ds->name, (lua_Integer)ds->n, ds->c,
                    ds->h, ds->w, ds->nclasses, ds->has_masks ? ", with masks" : "");
  return 1;
}

static const luaL_Reg ds_methods[] = {{"get", ds_get},   {"label", ds_label}, {"labels", ds_labels},
                                      {"info", ds_info}, {"close", ds_close}, {NULL, NULL}};

/* ds[i] -> {image, label, mask, image=, label=, mask=}; ds.method -> method */
static int ds_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) { /* a method (works on a closed set: ds:close() twice) */
    luaL_getmetatable(L, MDL_DATASET);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
  }
  md_dataset *ds = mdL_checkdataset(L, 1);
  int64_t i = checkindex(L, ds, 2);
  lua_createtable(L, 3, 3);
  int t = lua_gettop(L);
  push_item(L, ds, i);
  const char *names[3] = {"image", "label", "mask"};
  for (int k = 0; k < 3; k++) {
    lua_pushvalue(L, t + 1 + k);
    lua_setfield(L, t, names[k]);
    lua_pushvalue(L, t + 1 + k);
    lua_rawseti(L, t, k + 1);
  }
  lua_settop(L, t);
  return 1;
}
/* }====================================================== */

/* {====================================================== readers */
static int l_open_idx(lua_State *L) {
  const char *im = luaL_checkstring(L, 1), *lb = luaL_checkstring(L, 2);
  md_dataset **b = newdsbox(L);
  if (!(*b = md_open_idx(im, lb))) return mdL_fail(L);
  return 1;
}

static const char *const cifar_opts[] = {"fine", "version", NULL};
static int l_open_cifar(lua_State *L) {
  mdL_checkopts(L, 2, "open_cifar", cifar_opts);
  int fine = optbool(L, 2, "open_cifar", "fine", 1);
  lua_Integer version = optint(L, 2, "open_cifar", "version", 0);
  if (version != 0 && version != 10 && version != 100) return luaL_error(L, "open_cifar: version must be 10 or 100");
  int n;
  const char **files;
  if (lua_type(L, 1) == LUA_TSTRING) {
    n = 1;
    files = lua_newuserdatauv(L, sizeof *files, 0);
    files[0] = lua_tostring(L, 1);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)luaL_len(L, 1);
    if (n < 1 || n > 4096) return luaL_error(L, "open_cifar: give 1 to 4096 batch files");
    files = lua_newuserdatauv(L, sizeof *files * (size_t)n, 0);
    for (int k = 0; k < n; k++) {
      if (lua_geti(L, 1, k + 1) != LUA_TSTRING)
        return luaL_error(L, "open_cifar: file %d is %s, not a string", k + 1, luaL_typename(L, -1));
      files[k] = lua_tostring(L, -1); /* anchored by the table */
      lua_pop(L, 1);
    }
  }
  md_dataset **b = newdsbox(L);
  if (!(*b = md_open_cifar(n, files, (int)version, fine))) return mdL_fail(L);
  return 1;
}

static int l_open_stl10(lua_State *L) {
  const char *x = luaL_checkstring(L, 1), *y = luaL_optstring(L, 2, NULL);
  md_dataset **b = newdsbox(L);
  if (!(*b = md_open_stl10(x, y))) return mdL_fail(L);
  return 1;
}

static int l_open_svhn(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  md_dataset **b = newdsbox(L);
  if (!(*b = md_open_svhn(path))) return mdL_fail(L);
  return 1;
}

/* a list option {"a", "b", ...} as a NULL-terminated array; the array stays
** on the stack and the strings in the options table, both alive until return */
static const char *const *optstrlist(lua_State *L, int i, const char *fname, const char *k) {
  if (opt_type(L, i, k) == LUA_TNIL) return lua_pop(L, 1), NULL;
  if (!lua_istable(L, -1)) luaL_error(L, "%s: option '%s' must be a list of file names, got %s", fname, k, luaL_typename(L, -1));
  lua_Integer n = luaL_len(L, -1);
  if (n < 1 || n > 4096) luaL_error(L, "%s: option '%s' must list 1 to 4096 files", fname, k);
  const char **v = lua_newuserdatauv(L, sizeof *v * (size_t)(n + 1), 0);
  for (lua_Integer j = 0; j < n; j++) {
    if (lua_geti(L, -2, j + 1) != LUA_TSTRING) luaL_error(L, "%s: %s[%I] is %s, not a file name", fname, k, j + 1, luaL_typename(L, -1));
    v[j] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
  lua_remove(L, -2); /* the list table (held by the options table) */
  return v;
}

static const char *const folder_opts[] = {"masks", "labelme", "fill", "size", "channels", "csv", "classes_from", "stats", NULL};
static int l_open_folder(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  mdL_checkopts(L, 2, "open_folder", folder_opts);
  md_folder_opts o = {0};
  o.masks = optstr(L, 2, "open_folder", "masks");
  int csv_list = opt_type(L, 2, "csv") == LUA_TTABLE;
  lua_pop(L, 1);
  if (csv_list)
    o.csvs = optstrlist(L, 2, "open_folder", "csv");
  else
    o.csv = optstr(L, 2, "open_folder", "csv");
  o.class_csvs = optstrlist(L, 2, "open_folder", "classes_from");
  o.labelme = optbool(L, 2, "open_folder", "labelme", 0);
  const char *fill = optstr(L, 2, "open_folder", "fill");
  if (fill && strcmp(fill, "evenodd") != 0 && strcmp(fill, "nonzero") != 0)
    return luaL_error(L, "open_folder: fill must be \"evenodd\" or \"nonzero\", got \"%s\"", fill);
  o.evenodd = !fill || strcmp(fill, "evenodd") == 0;
  lua_Integer ch = optint(L, 2, "open_folder", "channels", 0);
  if (ch != 0 && ch != 1 && ch != 3) return luaL_error(L, "open_folder: channels must be 1 or 3");
  o.channels = (int)ch;
  lua_Integer st = optint(L, 2, "open_folder", "stats", 1000);
  o.stats_max = st <= 0 ? -1 : st > (1 << 30) ? (1 << 30) : (int)st;
  opt_type(L, 2, "size");
  getsize(L, lua_gettop(L), "open_folder", "size", &o.h, &o.w);
  lua_pop(L, 1);
  md_dataset **b = newdsbox(L);
  if (!(*b = md_open_folder(root, &o))) return mdL_fail(L);
  return 1;
}
/* }====================================================== */

/* {====================================================== masks and images */
/* target size from (h, w), ({h, w}) or a tensor (its last two dims) at i */
static void target_size(lua_State *L, int i, const char *fname, int64_t *h, int64_t *w) {
  md_tensor *t = mdL_totensor(L, i);
  if (t) {
    if (t->ndim < 2) luaL_error(L, "%s: a size tensor needs 2 or more dims", fname);
    *h = t->shape[t->ndim - 2], *w = t->shape[t->ndim - 1];
    return;
  }
  if (lua_istable(L, i)) {
    int hh, ww;
    getsize(L, i, fname, "size", &hh, &ww);
    *h = hh, *w = ww;
    return;
  }
  *h = luaL_checkinteger(L, i);
  *w = luaL_checkinteger(L, i + 1);
}

static int checkradius(lua_State *L, int i) {
  lua_Integer r = luaL_checkinteger(L, i);
  luaL_argcheck(L, r > -(1 << 24) && r < (1 << 24), i, "radius out of range");
  return (int)r;
}

static int l_mask_resize(lua_State *L) {
  md_tensor *m = mdL_checktensor(L, 1);
  int64_t h, w;
  target_size(L, 2, "mask_resize", &h, &w);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_mask_resize(m, h, w));
}
/* op(mask, radius): dilate, erode, expand */
static int mask_radius_op(lua_State *L, md_tensor *(*op)(const md_tensor *, int)) {
  md_tensor *m = mdL_checktensor(L, 1);
  int r = checkradius(L, 2);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, op(m, r));
}
static int l_mask_dilate(lua_State *L) { return mask_radius_op(L, md_mask_dilate); }
static int l_mask_erode(lua_State *L) { return mask_radius_op(L, md_mask_erode); }
static int l_mask_expand(lua_State *L) { return mask_radius_op(L, md_mask_expand); }
/* mask_for_layer(mask, expand_px, h, w | {h, w} | feature_tensor) */
static int l_mask_for_layer(lua_State *L) {
  md_tensor *m = mdL_checktensor(L, 1);
  int r = checkradius(L, 2);
  int64_t h, w;
  target_size(L, 3, "mask_for_layer", &h, &w);
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_mask_for_layer(m, r, h, w));
}

static int l_png_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  md_tensor *t = mdL_checktensor(L, 2);
  if (md_png_write_tensor(path, t) != MD_OK) return mdL_fail(L);
  return 0;
}
static int l_png_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer c = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, c == 0 || c == 1 || c == 3 || c == 4, 2, "channels must be 1, 3 or 4 (or 0: as stored)");
  md_tensor **b = mdL_newbox(L);
  return mdL_result(L, b, md_image_read_tensor(path, (int)c));
}

/* labelme_mask(json, h, w [, {fill=, image_size={H,W}}]) -> (1,h,w) 0/1 */
static const char *const lm_opts[] = {"fill", "image_size", NULL};
static int l_labelme_mask(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
  luaL_argcheck(L, h > 0 && h < (1 << 15), 2, "height must be in 1..32767");
  luaL_argcheck(L, w > 0 && w < (1 << 15), 3, "width must be in 1..32767");
  mdL_checkopts(L, 4, "labelme_mask", lm_opts);
  const char *fill = optstr(L, 4, "labelme_mask", "fill");
  if (fill && strcmp(fill, "evenodd") != 0 && strcmp(fill, "nonzero") != 0)
    return luaL_error(L, "labelme_mask: fill must be \"evenodd\" or \"nonzero\"");
  int ih = 0, iw = 0;
  opt_type(L, 4, "image_size");
  getsize(L, lua_gettop(L), "labelme_mask", "image_size", &ih, &iw);
  lua_pop(L, 1);
  md_tensor **b = mdL_newbox(L);
  uint8_t *px = lua_newuserdatauv(L, (size_t)(h * w), 0);
  if (md_labelme_mask(path, ih, iw, (int)h, (int)w, !fill || strcmp(fill, "evenodd") == 0, px) != MD_OK)
    return mdL_fail(L);
  if (!(*b = md_empty(3, (int64_t[]){1, h, w}, MD_F32))) return mdL_fail(L);
  float *d = (*b)->data;
  for (lua_Integer k = 0; k < h * w; k++) d[k] = px[k] ? 1.0f : 0.0f;
  lua_pop(L, 1);
  return 1;
}

/* clutter_compose(item (H,W) or (1,H,W) in [0,1], {size=64, item_size=, x=, y=,
** texture=, seed=}) -> image (3,S,S), mask (1,S,S) */
static const char *const cc_opts[] = {"size", "item_size", "x", "y", "texture", "seed", NULL};
static int l_clutter_compose(lua_State *L) {
  md_tensor *item = mdL_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  mdL_checkopts(L, 2, "clutter_compose", cc_opts);
  if (!(item->ndim == 2 || (item->ndim == 3 && item->shape[0] == 1)))
    return luaL_error(L, "clutter_compose: item must be (H,W) or (1,H,W)");
  int64_t ih = item->shape[item->ndim - 2], iw = item->shape[item->ndim - 1];
  if (ih < 1 || iw < 1 || ih > 4096 || iw > 4096) return luaL_error(L, "clutter_compose: bad item size");
  md_clutter_params p;
  p.size = (int)optint(L, 2, "clutter_compose", "size", 64);
  p.item_size = (int)optint(L, 2, "clutter_compose", "item_size", p.size);
  p.x = (int)optint(L, 2, "clutter_compose", "x", 0);
  p.y = (int)optint(L, 2, "clutter_compose", "y", 0);
  p.texture = (int)optint(L, 2, "clutter_compose", "texture", 0);
  p.seed = (uint64_t)optint(L, 2, "clutter_compose", "seed", 0);
  if (p.size < 8 || p.size > 1024) return luaL_error(L, "clutter_compose: size must be in 8..1024");
  md_tensor **bi = mdL_newbox(L), **bm = mdL_newbox(L);
  size_t S2 = (size_t)p.size * p.size, in = (size_t)(ih * iw);
  uint8_t *px = lua_newuserdatauv(L, 4 * S2 + in, 0);
  float *f = lua_newuserdatauv(L, sizeof *f * in, 0);
  if (md_to_float(item, f) != MD_OK) return mdL_fail(L);
  uint8_t *it = px + 4 * S2;
  for (size_t k = 0; k < in; k++) {
    float v = f[k] > 0 ? (f[k] < 1 ? f[k] : 1) : 0;
    it[k] = (uint8_t)(v * 255.0f + 0.5f);
  }
  if (md_clutter_compose(it, (int)ih, (int)iw, &p, px, px + 3 * S2) != MD_OK) return mdL_fail(L);
  if (!(*bi = md_empty(3, (int64_t[]){3, p.size, p.size}, MD_F32))) return mdL_fail(L);
  if (!(*bm = md_empty(3, (int64_t[]){1, p.size, p.size}, MD_F32))) return mdL_fail(L);
  float *di = (*bi)->data, *dm = (*bm)->data;
  for (size_t k = 0; k < 3 * S2; k++) di[k] = px[k] * (1.0f / 255.0f);
  for (size_t k = 0; k < S2; k++) dm[k] = px[3 * S2 + k] ? 1.0f : 0.0f;
  lua_pop(L, 2);
  mdL_gccheck(L);
  return 2;
}

static int l_clutter_families(lua_State *L) {
  lua_createtable(L, MD_CLUTTER_FAMILIES, 0);
  for (int k = 0; k < MD_CLUTTER_FAMILIES; k++) {
    lua_pushstring(L, md_clutter_family_name(k));
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}
/* }====================================================== */

const luaL_Reg mdL_datalib[] = {{"open_idx", l_open_idx},
                                 {"open_cifar", l_open_cifar},
                                 {"open_stl10", l_open_stl10},
                                 {"open_svhn", l_open_svhn},
                                 {"open_folder", l_open_folder},
                                 {"mask_resize", l_mask_resize},
                                 {"mask_dilate", l_mask_dilate},
                                 {"mask_erode", l_mask_erode},
                                 {"mask_expand", l_mask_expand},
                                 {"mask_for_layer", l_mask_for_layer},
                                 {"png_write", l_png_write},
                                 {"png_read", l_png_read},
                                 {"image_read", l_png_read},
                                 {"labelme_mask", l_labelme_mask},
                                 {"clutter_compose", l_clutter_compose},
                                 {"clutter_families", l_clutter_families},
                                 {NULL, NULL}};

static const luaL_Reg ds_meta[] = {{"__gc", ds_gc},       {"__close", ds_gc},   {"__len", ds_len},
                                   {"__index", ds_index}, {"__tostring", ds_tostring}, {NULL, NULL}};

void mdL_opendata(lua_State *L) {
  luaL_newmetatable(L, MDL_DATASET);
  luaL_setfuncs(L, ds_meta, 0);
  luaL_newlib(L, ds_methods);
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
}
