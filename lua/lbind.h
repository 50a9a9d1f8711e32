/*
** lbind.h -- what the files of the Lua module share: tensor boxes, errors,
** garbage-collector pressure and option tables (implemented in lcore.c).
*/
#ifndef MD_LBIND_H
#define MD_LBIND_H

#include "md.h"

#include <lua.h>

#define MD_LUA_TENSOR "md.Tensor"

/* a new, empty tensor box on the stack (made before any work, so a Lua
** memory error never leaks a core tensor) */
md_tensor **md_lua_newbox(lua_State *L);
/* run the collector when the core's bytes have doubled since the last run */
void md_lua_gc_check(lua_State *L);
/* raise the core's last error as a Lua error */
int md_lua_fail(lua_State *L);
/* put t (new ref or NULL = error) into box b at the top; returns 1 */
int md_lua_ret(lua_State *L, md_tensor **b, md_tensor *t);
md_tensor *md_lua_checktensor(lua_State *L, int i);
/* options table at i (or nil): an unknown key is an error listing the known */
void md_lua_checkopts(lua_State *L, int i, const char *fname, const char *const *allowed);

/* the short names the binding files use */
#define newbox md_lua_newbox
#define gc_check md_lua_gc_check
#define fail md_lua_fail
#define ret md_lua_ret
#define checktensor md_lua_checktensor
#define checkopts md_lua_checkopts

#endif
