/* The `stelar` module: require("stelar") returns it. */
#ifndef SL_LUA_STELAR_H
#define SL_LUA_STELAR_H

#include <lua.h>

void sl_lua_open_stelar(lua_State *L);

#endif
