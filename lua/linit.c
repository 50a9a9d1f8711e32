/*
** linit.c -- the Lua module `mdoctor.core`, assembled from the function
** tables of its files (as Lua's linit.c opens its libraries), then their
** metatables.  luaopen_mdoctor_core is what `require "mdoctor.core"` calls
** in a stock lua5.4 (build/lua/mdoctor/core.so) and what the shell preloads.
*/
#include "lbind.h"

#include <dlfcn.h>

#include <lauxlib.h>
#include <lua.h>

/* the module's functions, file by file */
static const luaL_Reg *const libs[] = {
    mdL_tensorlib,   /* ltensor.c */
    mdL_opslib,      /* lops.c */
    mdL_autogradlib, /* lautograd.c */
    mdL_syslib,      /* lsys.c */
    mdL_datalib,     /* ldata.c */
    mdL_loaderlib,   /* lloader.c */
    NULL};

int luaopen_mdoctor_core(lua_State *L) {
  /* loaded by a stock lua5.4 through dlopen: pin the library, because
  ** lua_close would dlclose it while OpenMP/BLIS worker threads still run
  ** its code (a crash at exit) */
  Dl_info info;
  if (dladdr((void *)luaopen_mdoctor_core, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
  md_init();
  md_set_dim_base(1); /* messages count dims as Lua code does */
  lua_newtable(L);
  for (const luaL_Reg *const *lib = libs; *lib; lib++) luaL_setfuncs(L, *lib, 0);
  mdL_opentensor(L); /* after the functions: methods are module functions */
  mdL_opendata(L);
  mdL_openloader(L);
  lua_pushliteral(L, MD_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
