/* lloader.c -- Lua bindings of the batch loader (being written). */
#include <lua.h>
void md_lua_open_loader(lua_State *L);
void md_lua_open_loader(lua_State *L) { (void)L; }
