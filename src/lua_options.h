/* stelar.server{...} options: validated against the known names (a typo is
 * an error naming it, never a silent default) and applied to sl_config. */
#ifndef SL_LUA_OPTIONS_H
#define SL_LUA_OPTIONS_H

#include <lua.h>

#include "server.h"

/* Applies the options table at idx to s; raises a Lua error naming the
 * first unknown or ill-typed option. */
void sl_options_apply(lua_State *L, int idx, sl_server *s);
/* Reads {maxPoints, windowMs} (or false: off) at idx; raises naming what. */
sl_rate sl_options_check_rate(lua_State *L, int idx, const char *what);
/* Pushes a read-only snapshot of the configuration (getConfig). */
void sl_options_push(lua_State *L, const sl_server *s);

#endif
