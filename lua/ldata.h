/*
** ldata.h -- what lua/ldata.c offers the other C parts of the Lua module
** (the loader, lua/lloader.c): data sets as Lua values.
*/
#ifndef MD_LDATA_H
#define MD_LDATA_H

#include "dataset.h"

#include <lua.h>

#define MD_LUA_DATASET "md.Dataset"

/* the md_dataset* of the md.Dataset userdata at index i (borrowed: retain it
** to keep it past the userdata's life); raises a Lua error otherwise */
md_dataset *md_lua_checkdataset(lua_State *L, int i);
/* the same, or NULL when the value is not an (open) md.Dataset */
md_dataset *md_lua_todataset(lua_State *L, int i);
/* push a new md.Dataset userdata holding ds; takes over one reference
** (the userdata releases it when collected or closed) */
void md_lua_pushdataset(lua_State *L, md_dataset *ds);

void md_lua_open_data(lua_State *L);

#endif
