/* The cluster's Lua surface: the cluster-wide forms of getRoomMembers and
 * getClients, serverSideEmit, and getStats().cluster. (onServerEvent
 * handlers are registered with the others, in lua_server.c.) */
#ifndef SL_LUA_CLUSTER_H
#define SL_LUA_CLUSTER_H

#include <lua.h>

#include "server.h"

/* The members of room (room NULL: every client, {id, node, rooms}) on every
 * node. With a callback at fn_idx it is called with (result, err) once
 * Redis answers; without one, the calling handler waits and gets them as
 * results. err is "cluster unavailable" when Redis cannot answer (the
 * result is then this node's own). Returns the lua_CFunction's result. */
int sl_lua_cluster_query(lua_State *L, sl_server *s, const char *room, size_t len, int fn_idx);

/* server:serverSideEmit(event, data) -> true when published. */
int sl_lua_server_side_emit(lua_State *L, sl_server *s);

/* Pushes getStats().cluster. */
void sl_lua_push_cluster_stats(lua_State *L, const sl_server *s);

/* Pushes the array of room's member ids on this node. */
void sl_lua_push_room_members(lua_State *L, sl_server *s, const char *room, size_t len);

#endif
