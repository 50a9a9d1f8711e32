/*
** lsys.c -- the runtime seen from Lua: the core's memory counters, the BLAS
** and its threads, a monotonic clock, isatty and the Ctrl-C check for Lua
** loops.
*/
#include "lbind.h"

#include <lauxlib.h>
#include <lua.h>
#include <time.h>
#include <unistd.h>

/* {====================================================== runtime */
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

const luaL_Reg mdL_syslib[] = {
    {"bytes_in_use", l_bytes_in_use}, {"tensors_alive", l_tensors_alive}, {"blas_info", l_blas_info},
    {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads},
    {"interrupt_check", l_interrupt_check}, {"now", l_now}, {"isatty", l_isatty},
    {NULL, NULL}};
