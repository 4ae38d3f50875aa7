/* The `ctx` userdata handed to every handler (metatable "stelar.ctx").
 *
 * A context boxes a pointer to its connection; the connection keeps a list
 * of its live contexts and sets each pointer to NULL as it goes, after which
 * sending methods return nil, "closed" and ctx.id still reads. One context
 * is reused across a client's events; a handler that waits keeps the one it
 * was given, and the client's next event gets a new one. Per-event fields
 * (event, data) and per-client tables (metadata, req) live in the box's
 * environment table. */
#ifndef SL_LUA_CTX_H
#define SL_LUA_CTX_H

#include <lua.h>
#include <stdbool.h>

#include "conn.h"

typedef struct sl_ctx {
  const void *tag; /* what check_ctx knows a ctx by */
  sl_conn *conn; /* NULL once the connection is gone */
  sl_server *server;
  struct sl_ctx *next; /* the connection's list */
  bool is_binary;
  char id[SL_ID_MAX + 1];
} sl_ctx;

/* Pushes c's context for a new event: sets event and data (the value on top
 * of the stack, which is popped) and isBinary. */
sl_ctx *sl_ctx_push_event(lua_State *L, sl_conn *c, const char *event, bool is_binary);
/* The same with the event name already a Lua string at event_idx. */
sl_ctx *sl_ctx_push_event_at(lua_State *L, sl_conn *c, int event_idx, bool is_binary);
/* Pushes c's metadata table (ctx:setMetadata), making it on first use. */
void sl_ctx_push_meta(lua_State *L, sl_conn *c);
/* c stops reusing its current context: a waiting handler holds it now. */
void sl_ctx_unshare(lua_State *L, sl_conn *c);
/* The connection is going: every context's pointer becomes NULL. */
void sl_ctx_detach_all(lua_State *L, sl_conn *c);
void sl_lua_open_ctx(lua_State *L);

#endif
