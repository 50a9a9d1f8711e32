/*
** lbind.h -- what the files of the Lua module `mdoctor.core` share, as
** lauxlib.h and lualib.h are to Lua: the helper library (lbind.c: tensor
** boxes, the error bridge, garbage-collector pressure, dims, shapes and
** option tables), the data-set boxes of ldata.c, and the parts that
** linit.c assembles into the module.  Every name exported between the
** binding files starts with mdL_ (MDL_ for macros); statics keep short names.
**
** Conventions for Lua (README "Lua API"):
**  - dims are 1-based like Lua (and Torch7); negative dims count from the end
**    (-1 is the last).  Class labels are values, 0-based as in the data sets.
**  - options come as a table; an unknown key is an error naming it.
**  - every failure is a Lua error with the core's message (op and shapes).
*/
#ifndef MDL_BIND_H
#define MDL_BIND_H

#include "dataset.h"
#include "md.h"

#include <lauxlib.h>
#include <lua.h>

/* metatable names (also what luaL_typename and __name show) */
#define MDL_TENSOR "md.Tensor"
#define MDL_SIZE "md.Size"
#define MDL_DATASET "md.Dataset"
#define MDL_LOADER "md.Loader"

/* {====================================================== lbind.c: tensor boxes */
/* A tensor is a full userdata holding one md_tensor* (NULL once closed). */

/* a new, empty tensor box on the stack, made before any work so that a Lua
** memory error never leaks a core tensor (liolib's newprefile rule) */
md_tensor **mdL_newbox(lua_State *L);
/* push t (a new reference the box takes over) as a fresh box, for results
** made before a box could be */
void mdL_pushtensor(lua_State *L, md_tensor *t);
/* the tensor at i, or NULL when i is no (open) tensor */
md_tensor *mdL_totensor(lua_State *L, int i);
/* the tensor at i; an argument error otherwise (or when it was closed) */
md_tensor *mdL_checktensor(lua_State *L, int i);
/* the same, or NULL for none/nil */
md_tensor *mdL_opttensor(lua_State *L, int i);
/* "(2x3)": the shape for a message, from a ring of 4 static buffers (so one
** message may name up to 4 shapes) */
const char *mdL_shapestr(const md_tensor *t);
/* }====================================================== */

/* {====================================================== lbind.c: errors, GC */
/* raise the core's last error as a Lua error (the message is an argument,
** never the format) */
int mdL_fail(lua_State *L);
/* put t (a new reference, or NULL on error) into box b at the top and
** return 1, or raise the core's error */
int mdL_result(lua_State *L, md_tensor **b, md_tensor *t);
/* run a full collection when the core's bytes (md_bytes_in_use) have doubled
** since the last one: a training loop never needs collectgarbage() */
void mdL_gccheck(lua_State *L);
/* }====================================================== */

/* {====================================================== lbind.c: dims, shapes */
/* 1-based Lua dim d (argument arg) -> 0-based core dim (negatives pass) */
int mdL_checkdim(lua_State *L, int arg, lua_Integer d);
/* a shape from the integers from i on, or from a table at i; returns ndim */
int mdL_getshape(lua_State *L, int i, int64_t *shape);
/* dims (0-based) from an integer or a table of them at i; 0 for none/nil */
int mdL_getdims(lua_State *L, int i, int *dims);
/* }====================================================== */

/* {====================================================== lbind.c: option tables */
/* the options table at i (or none/nil): an unknown key is an error naming it
** and listing the allowed ones (a NULL-ended list) */
void mdL_checkopts(lua_State *L, int i, const char *fname, const char *const *allowed);
/* push field k of the options table at i and return its type; when i is
** none/nil, push nothing and return LUA_TNIL (so pop only when i is a table) */
int mdL_optfield(lua_State *L, int i, const char *k);
/* field k of the options at i as a number / boolean, d when absent */
lua_Number mdL_optnum(lua_State *L, int i, const char *k, lua_Number d);
int mdL_optbool(lua_State *L, int i, const char *k, int d);
/* field k as an integer or a pair {a, b} into out[2]; d when absent */
void mdL_optpair(lua_State *L, int i, const char *k, int *out, int d);
/* }====================================================== */

/* {====================================================== ldata.c: data sets */
/* the md_dataset* of the md.Dataset userdata at index i (borrowed: retain it
** to keep it past the userdata's life); raises a Lua error otherwise */
md_dataset *mdL_checkdataset(lua_State *L, int i);
/* the same, or NULL when the value is not an (open) md.Dataset */
md_dataset *mdL_todataset(lua_State *L, int i);
/* push a new md.Dataset userdata holding ds; takes over one reference
** (the userdata releases it when collected or closed) */
void mdL_pushdataset(lua_State *L, md_dataset *ds);
/* }====================================================== */

/* {====================================================== the parts (linit.c) */
/* Each file's functions for the module table, in the module's order. */
extern const luaL_Reg mdL_tensorlib[];   /* ltensor.c: constructors, save/load */
extern const luaL_Reg mdL_opslib[];      /* lops.c: math, reductions, shape, nn */
extern const luaL_Reg mdL_autogradlib[]; /* lautograd.c: grad, backward, modes */
extern const luaL_Reg mdL_syslib[];      /* lsys.c: memory, threads, clock */
extern const luaL_Reg mdL_datalib[];     /* ldata.c: readers, masks, images */
extern const luaL_Reg mdL_loaderlib[];   /* lloader.c: md.loader */

/* Each file's metatables; the module table is on top and stays there.
** mdL_opentensor takes tensor methods and arithmetic metamethods from the
** module table, so it runs after the *lib tables are in. */
void mdL_opentensor(lua_State *L);
void mdL_opendata(lua_State *L);
void mdL_openloader(lua_State *L);

/* the module itself, for require "mdoctor.core" and for the shell */
int luaopen_mdoctor_core(lua_State *L);
/* }====================================================== */

#endif
