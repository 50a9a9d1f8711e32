/*
** ldata.c -- Lua bindings of datasets/ (readers, masks, the loader).
** Adds its functions to the `mdoctor.core` table (called from
** luaopen_mdoctor_core).
*/
#include <lauxlib.h>
#include <lua.h>

void md_lua_open_data(lua_State *L);
void md_lua_open_data(lua_State *L) { (void)L; }
