/*
** lautograd.c -- autograd for Lua: md.grad (torch.autograd.grad, with
** create_graph for double backward), t:backward(), grad mode (no_grad,
** set_grad_enabled) and gradient hooks that call Lua functions.
*/
#include "lbind.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

/* {====================================================== grad, backward */
/* a tensor or a list of tensors at i -> array in a GC'd scratch userdata */
static md_tensor **tensorlist(lua_State *L, int i, int *n, const char *what) {
  if (mdL_totensor(L, i)) {
    md_tensor **v = lua_newuserdatauv(L, sizeof *v, 0);
    v[0] = mdL_checktensor(L, i);
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
    if (!mdL_totensor(L, -1)) luaL_error(L, "grad: %s[%d] is %s, not a tensor", what, j + 1, luaL_typename(L, -1));
    v[j] = mdL_checktensor(L, -1);
    lua_pop(L, 1);
  }
  *n = k;
  return v;
}
static const char *const grad_opts[] = {"grad_outputs", "create_graph", "retain_graph", "allow_unused", NULL};
/* grad(outputs, inputs [, {grad_outputs=, create_graph=, retain_graph=, allow_unused=}]) -> {g1, ...} */
static int l_grad(lua_State *L) {
  lua_settop(L, 3); /* scratch pushed below must not shift the options' index */
  mdL_checkopts(L, 3, "grad", grad_opts);
  int no, ni, ng = 0;
  md_tensor **outs = tensorlist(L, 1, &no, "outputs");
  md_tensor **ins = tensorlist(L, 2, &ni, "inputs");
  md_tensor **gos = NULL;
  if (!lua_isnoneornil(L, 3) && lua_getfield(L, 3, "grad_outputs") != LUA_TNIL) {
    gos = tensorlist(L, lua_gettop(L), &ng, "grad_outputs");
    if (ng != no) return luaL_error(L, "grad: %d grad_outputs for %d outputs", ng, no);
  }
  int create = mdL_optbool(L, 3, "create_graph", 0);
  int retain = mdL_optbool(L, 3, "retain_graph", create);
  int unused = mdL_optbool(L, 3, "allow_unused", 0);
  md_tensor **res = lua_newuserdatauv(L, sizeof *res * (size_t)ni, 0);
  lua_createtable(L, ni, 0); /* made before the work: no leak on a memory error below */
  if (md_grad(no, outs, gos, ni, ins, res, create, retain, unused) != MD_OK) return mdL_fail(L);
  for (int j = 0; j < ni; j++) {
    if (res[j]) {
      mdL_pushtensor(L, res[j]);
      res[j] = NULL;
    } else
      lua_pushboolean(L, 0); /* unused input: false keeps the list dense */
    lua_seti(L, -2, j + 1);
  }
  mdL_gccheck(L);
  return 1;
}
static const char *const backward_opts[] = {"create_graph", "retain_graph", NULL};
/* t:backward([grad_output] [, {create_graph=, retain_graph=}]) */
static int l_backward(lua_State *L) {
  md_tensor *t = mdL_checktensor(L, 1);
  md_tensor *g = NULL;
  int oi = 2;
  lua_settop(L, 3);
  if (mdL_totensor(L, 2)) {
    g = mdL_checktensor(L, 2);
    oi = 3;
  }
  mdL_checkopts(L, oi, "backward", backward_opts);
  int create = mdL_optbool(L, oi, "create_graph", 0);
  int retain = mdL_optbool(L, oi, "retain_graph", create);
  if (md_backward(t, g, create, retain) != MD_OK) return mdL_fail(L);
  mdL_gccheck(L);
  return 0;
}
/* }====================================================== */

/* {====================================================== grad mode */
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
/* }====================================================== */

/* {====================================================== hooks */
/* a hook is a Lua function kept in the registry; the core calls it with
** each gradient that reaches its tensor */
typedef struct luahook {
  lua_State *L;
  int ref;
} luahook;
static md_tensor *call_hook(void *ud, md_tensor *g) {
  luahook *h = ud;
  lua_State *L = h->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
  mdL_pushtensor(L, md_retain(g));
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    md_set_error("hook: %s", lua_tostring(L, -1));
    lua_settop(L, top);
    return (md_tensor *)-1;
  }
  md_tensor *r = mdL_totensor(L, -1);
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
  md_tensor *t = mdL_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luahook *h = malloc(sizeof *h);
  if (!h) return luaL_error(L, "register_hook: out of memory");
  lua_pushvalue(L, 2);
  h->L = L;
  h->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (md_register_hook(t, call_hook, h, free_hook) != MD_OK) {
    free_hook(h);
    return mdL_fail(L);
  }
  return 0;
}
/* }====================================================== */

const luaL_Reg mdL_autogradlib[] = {
    {"grad", l_grad}, {"backward", l_backward}, {"set_grad_enabled", l_set_grad_enabled},
    {"is_grad_enabled", l_is_grad_enabled}, {"no_grad", l_no_grad}, {"register_hook", l_register_hook},
    {NULL, NULL}};
