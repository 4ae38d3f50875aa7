/* The `server` object (metatable "stelar.server") and stelar.server{...}. */
#ifndef SL_LUA_SERVER_H
#define SL_LUA_SERVER_H

#include <lua.h>
#include <stdbool.h>

#include "conn.h"
#include "server.h"

/* Adds `server` to the module table on top of the stack. */
void sl_lua_open_server(lua_State *L);

/* Fills m from the event name at event_idx and the value at data_idx:
 * JSON-encoded, or the bytes of a string for binary messages. Raises a Lua
 * error for a bad name or unencodable data. m's text stays valid until the
 * next call; the caller releases m's wire buffers with sl_msg_release. */
void sl_lua_check_msg(lua_State *L, int event_idx, int data_idx, sl_msg_type type, sl_msg *m);

/* The onBeforeBroadcast hook: false when it cancels the broadcast. */
bool sl_lua_broadcast_allowed(lua_State *L, sl_server *s, int event_idx, int data_idx, const char *exclude_id);

/* Pushes the server's handler registered in group (and under name, for
 * "on" and "ack"), or nil. */
void sl_lua_push_handler(lua_State *L, const sl_server *s, const char *group, const char *name);

#endif
