/*
** lbind.c -- the helper library of the Lua module (what lauxlib is to Lua):
** tensor boxes, the error bridge from md_last_error to Lua errors, the
** garbage-collector trigger, dims, shapes and option tables.  It uses only
** the core's public API and Lua's; the binding files use only this (lbind.h).
*/
#include "lbind.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

/* {====================================================== tensor boxes */
/* The result box is created before any work (liolib's newprefile rule), so a
** Lua memory error can never leak a core tensor. */
md_tensor **mdL_newbox(lua_State *L) {
  md_tensor **b = lua_newuserdatauv(L, sizeof *b, 1);
  *b = NULL;
  luaL_setmetatable(L, MDL_TENSOR);
  return b;
}

void mdL_pushtensor(lua_State *L, md_tensor *t) {
  md_tensor **b = mdL_newbox(L);
  *b = t;
}

md_tensor *mdL_totensor(lua_State *L, int i) {
  md_tensor **b = luaL_testudata(L, i, MDL_TENSOR);
  return b ? *b : NULL;
}

md_tensor *mdL_checktensor(lua_State *L, int i) {
  md_tensor **b = luaL_testudata(L, i, MDL_TENSOR);
  if (!b) {
    const char *got = luaL_typename(L, i);
    luaL_argerror(L, i, lua_pushfstring(L, "tensor expected, got %s", got));
  }
  if (!*b) luaL_argerror(L, i, "tensor was closed");
  return *b;
}

md_tensor *mdL_opttensor(lua_State *L, int i) {
  return lua_isnoneornil(L, i) ? NULL : mdL_checktensor(L, i);
}

const char *mdL_shapestr(const md_tensor *t) {
  static char buf[4][96];
  static int k;
  return md_shape_str(t, buf[k++ & 3], 96);
}
/* }====================================================== */

/* {====================================================== errors, GC pressure */
int mdL_fail(lua_State *L) { return luaL_error(L, "%s", md_last_error()); }

int mdL_result(lua_State *L, md_tensor **b, md_tensor *t) {
  if (!t) return mdL_fail(L);
  *b = t;
  mdL_gccheck(L);
  return 1;
}

/* The core counts the bytes its tensors hold; Lua only sees small boxes.  So
** when the core's bytes double since the last collection we run a full
** collection: a training loop never needs collectgarbage() by hand. */
#define GC_FLOOR (8u << 20) /* measured: a 1000-step loop stays within ~1 MB */
static size_t gc_threshold = GC_FLOOR;
void mdL_gccheck(lua_State *L) {
  size_t used = md_bytes_in_use();
  if (used > gc_threshold) {
    lua_gc(L, LUA_GCCOLLECT);
    used = md_bytes_in_use();
    gc_threshold = used * 2 > GC_FLOOR ? used * 2 : GC_FLOOR;
  }
}
/* }====================================================== */

/* {====================================================== dims and shapes */
int mdL_checkdim(lua_State *L, int arg, lua_Integer d) {
  if (d == 0) luaL_argerror(L, arg, "dims are 1-based (1 is the first, -1 the last); got 0");
  if (d > 0x7fff || d < -0x7fff) luaL_argerror(L, arg, "dim out of range");
  return d > 0 ? (int)d - 1 : (int)d;
}

int mdL_getshape(lua_State *L, int i, int64_t *shape) {
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

int mdL_getdims(lua_State *L, int i, int *dims) {
  if (lua_isnoneornil(L, i)) return 0;
  if (lua_isinteger(L, i)) {
    dims[0] = mdL_checkdim(L, i, lua_tointeger(L, i));
    return 1;
  }
  luaL_checktype(L, i, LUA_TTABLE);
  int n = (int)luaL_len(L, i);
  luaL_argcheck(L, n <= MD_MAX_DIMS, i, "too many dims");
  for (int k = 0; k < n; k++) {
    lua_geti(L, i, k + 1);
    dims[k] = mdL_checkdim(L, i, luaL_checkinteger(L, -1));
    lua_pop(L, 1);
  }
  return n;
}
/* }====================================================== */

/* {====================================================== option tables */
void mdL_checkopts(lua_State *L, int i, const char *fname, const char *const *allowed) {
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

int mdL_optfield(lua_State *L, int i, const char *k) {
  if (lua_isnoneornil(L, i)) return LUA_TNIL;
  return lua_getfield(L, i, k);
}

lua_Number mdL_optnum(lua_State *L, int i, const char *k, lua_Number d) {
  int t = mdL_optfield(L, i, k);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, i)) lua_pop(L, 1);
    return d;
  }
  if (t != LUA_TNUMBER) luaL_error(L, "option '%s' must be a number, got %s", k, lua_typename(L, t));
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

int mdL_optbool(lua_State *L, int i, const char *k, int d) {
  int t = mdL_optfield(L, i, k);
  if (t == LUA_TNIL) {
    if (!lua_isnoneornil(L, i)) lua_pop(L, 1);
    return d;
  }
  if (t != LUA_TBOOLEAN) luaL_error(L, "option '%s' must be a boolean, got %s", k, lua_typename(L, t));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

void mdL_optpair(lua_State *L, int i, const char *k, int *out, int d) {
  out[0] = out[1] = d;
  int t = mdL_optfield(L, i, k);
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
/* }====================================================== */
