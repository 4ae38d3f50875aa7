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

/* What the live handler set has, as bits of sl_server.present, so that the
 * hot path asks C rather than Lua whether a handler or hook exists. */
typedef enum {
  SL_SLOT_ALL, /* group slots: handlers[group] */
  SL_SLOT_CONNECTION,
  SL_SLOT_DISCONNECT,
  SL_SLOT_MESSAGE,
  SL_SLOT_GENERATE_ID, /* handlers.options[name] */
  SL_SLOT_HEALTH,
  SL_SLOT_RATE_LIMITER,
  SL_SLOT_IP_TRACKER,
  SL_SLOT_HOOK, /* handlers.hooks[name]: one slot per hook from here */
} sl_slot;

typedef enum {
  SL_HOOK_RATE_LIMIT_EXCEEDED,
  SL_HOOK_MAX_CONNECTIONS_REACHED,
  SL_HOOK_MAX_ROOMS_REACHED,
  SL_HOOK_MAX_ROOMS_PER_CLIENT_REACHED,
  SL_HOOK_PAYLOAD_TOO_LARGE,
  SL_HOOK_INVALID_MESSAGE,
  SL_HOOK_CLIENT_JOIN_ROOM,
  SL_HOOK_CLIENT_LEAVE_ROOM,
  SL_HOOK_BEFORE_BROADCAST,
  SL_HOOK_CLIENT_CONNECT,
  SL_HOOK_CLIENT_DISCONNECT,
  SL_HOOKS
} sl_hook;

extern const char *const sl_hook_names[SL_HOOKS];

static inline bool sl_lua_has(const sl_server *s, unsigned slot) { return s->present & (1u << slot); }
static inline bool sl_lua_has_hook(const sl_server *s, sl_hook h) { return sl_lua_has(s, SL_SLOT_HOOK + h); }
/* Recomputes s->present from the live handler set. */
void sl_lua_refresh_present(lua_State *L, sl_server *s);

/* Pushes the server's handler registered in group (and under name, for
 * "on" and "ack"), or nil. */
void sl_lua_push_handler(lua_State *L, const sl_server *s, const char *group, const char *name);
/* The hot path's form for on[name], name being the string at name_idx:
 * pushes the handler and returns true, or pushes nothing. */
bool sl_lua_push_on_handler(lua_State *L, const sl_server *s, int name_idx);

#endif
