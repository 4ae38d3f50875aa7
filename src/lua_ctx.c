#include "lua_ctx.h"

#include <lauxlib.h>
#include <string.h>

#include "app.h"
#include "json.h"
#include "lua_server.h"
#include "server.h"
#include "ws.h"

#define CTX_MT "stelar.ctx"

/* The environment table's slots: integer keys cost no string lookup. */
enum { ENV_DATA = 1, ENV_EVENT, ENV_META, ENV_REQ };

/* Its address marks the first word of every ctx's memory. */
static const char ctx_tag;

/* luaL_checkudata, cheaper: only C code makes full userdata, so a block of
 * a ctx's size that starts with our tag's address is a ctx. Two API calls
 * where fetching and comparing the metatable took four, on every method
 * and field of every handler. A light userdata has no length, so it never
 * gets as far as the tag. */
static sl_ctx *check_ctx(lua_State *L) {
  sl_ctx *ctx = lua_touserdata(L, 1);
  if (ctx && lua_objlen(L, 1) == sizeof *ctx && ctx->tag == &ctx_tag) return ctx;
  luaL_typerror(L, 1, CTX_MT);
  return NULL;
}

/* The connection, if the client is still there to send to. */
static sl_conn *live_conn(const sl_ctx *ctx) {
  return (ctx->conn && sl_conn_sending(ctx->conn)) ? ctx->conn : NULL;
}

static int closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static int sent(lua_State *L, sl_msg *m, int r) {
  if (m) sl_msg_release(m);
  if (r != 0) return closed(L);
  lua_pushboolean(L, 1);
  return 1;
}

static int send_own(lua_State *L, sl_msg_type type) {
  sl_ctx *ctx = check_ctx(L);
  sl_msg m;
  sl_lua_check_msg(L, 2, 3, type, &m);
  sl_conn *c = live_conn(ctx);
  return sent(L, &m, c ? sl_conn_send(c, &m) : -1);
}

static int sl_ctx_emit(lua_State *L) { return send_own(L, SL_MSG_EVENT); }
static int sl_ctx_emit_binary(lua_State *L) { return send_own(L, SL_MSG_BINARY); }

/* Fan-out methods speak for the client to the others, so they still work
 * from onDisconnect, after the client itself is gone. */
static int sl_ctx_broadcast(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  if (!sl_lua_broadcast_allowed(L, ctx->server, 2, 3, ctx->id)) return sent(L, NULL, 0);
  sl_msg m;
  sl_lua_check_msg(L, 2, 3, SL_MSG_EVENT, &m);
  sl_app_broadcast(ctx->server, &m, ctx->id);
  return sent(L, &m, 0);
}

static int sl_ctx_broadcast_binary(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  sl_msg m;
  sl_lua_check_msg(L, 2, 3, SL_MSG_BINARY, &m);
  sl_app_broadcast(ctx->server, &m, ctx->id);
  return sent(L, &m, 0);
}

static int sl_ctx_to(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  size_t len;
  const char *room = luaL_checklstring(L, 2, &len);
  sl_msg m;
  sl_lua_check_msg(L, 3, 4, SL_MSG_EVENT, &m);
  sl_app_to_room(ctx->server, room, len, &m, ctx->id);
  return sent(L, &m, 0);
}

static int sl_ctx_to_id(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  size_t len;
  const char *id = luaL_checklstring(L, 2, &len);
  sl_msg m;
  sl_lua_check_msg(L, 3, 4, SL_MSG_EVENT, &m);
  return sent(L, &m, sl_app_to_id(ctx->server, id, len, &m) ? 0 : -1);
}

static int sl_ctx_send(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  size_t len;
  const char *bytes = luaL_checklstring(L, 2, &len);
  sl_msg m = {.type = lua_toboolean(L, 3) ? SL_MSG_RAW_BINARY : SL_MSG_RAW_TEXT, .data = bytes, .data_len = len};
  sl_conn *c = live_conn(ctx);
  if (c && c->is_tcp) return luaL_error(L, "ctx:send is for WebSocket clients");
  return sent(L, &m, c ? sl_conn_send(c, &m) : -1);
}

static int room_op(lua_State *L, int (*op)(lua_State *, sl_conn *, const char *, size_t, int)) {
  sl_ctx *ctx = check_ctx(L);
  size_t len;
  const char *room = luaL_checklstring(L, 2, &len);
  sl_conn *c = live_conn(ctx);
  if (!c) return closed(L);
  if (op(L, c, room, len, 0) != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "refused");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int sl_ctx_join_room(lua_State *L) { return room_op(L, sl_app_join); }
static int sl_ctx_leave_room(lua_State *L) { return room_op(L, sl_app_leave); }

/* The client's metadata table, made on first use: most clients never have
 * any, and an empty table per connection is memory for nothing. */
static void push_meta(lua_State *L) {
  sl_ctx *ctx = lua_touserdata(L, 1);
  lua_getfenv(L, 1);
  lua_rawgeti(L, -1, ENV_META);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (ctx->conn) sl_ctx_push_meta(L, ctx->conn);
    else lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, ENV_META);
  }
  lua_remove(L, -2);
}

static int sl_ctx_set_metadata(lua_State *L) {
  check_ctx(L);
  luaL_checkany(L, 2);
  lua_settop(L, 3);
  push_meta(L);
  lua_insert(L, 2);
  lua_settable(L, 2);
  lua_pushboolean(L, 1);
  return 1;
}

static int sl_ctx_get_metadata(lua_State *L) {
  check_ctx(L);
  push_meta(L);
  if (lua_isnoneornil(L, 2)) return 1; /* the whole table */
  lua_pushvalue(L, 2);
  lua_gettable(L, -2);
  return 1;
}

static int sl_ctx_get_clients(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  size_t len = 0;
  const char *room = luaL_optlstring(L, 2, NULL, &len);
  sl_app_push_clients(L, ctx->server, room, len);
  return 1;
}

static int sl_ctx_close(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  lua_Integer code = luaL_optinteger(L, 2, 1000);
  const char *reason = luaL_optstring(L, 3, "");
  luaL_argcheck(L, sl_ws_close_code_valid(code), 2, "close code must be 1000-1003, 1007-1014 or 3000-4999");
  sl_conn *c = live_conn(ctx);
  if (!c) return closed(L);
  sl_conn_close(c, (uint16_t)code, reason);
  lua_pushboolean(L, 1);
  return 1;
}

static int sl_ctx_reject(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  const char *reason = luaL_optstring(L, 2, "Rejected");
  sl_conn *c = live_conn(ctx);
  if (!c) return closed(L);
  sl_conn_close(c, 1008, reason);
  lua_pushboolean(L, 1);
  return 1;
}

static void push_client_info(lua_State *L, const sl_ctx *ctx) {
  const sl_conn *c = ctx->conn;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, ctx->id);
  lua_setfield(L, -2, "id");
  if (!c) return;
  lua_pushstring(L, c->is_tcp ? "tcp" : "ws");
  lua_setfield(L, -2, "protocol");
  lua_pushstring(L, c->remote);
  lua_setfield(L, -2, "remoteAddress");
  lua_pushnumber(L, (lua_Number)c->connected_at);
  lua_setfield(L, -2, "connectedAt");
  lua_pushnumber(L, (lua_Number)c->msgs_in);
  lua_setfield(L, -2, "messagesReceived");
  lua_pushnumber(L, (lua_Number)c->msgs_out);
  lua_setfield(L, -2, "messagesSent");
  lua_pushboolean(L, c->tls != NULL);
  lua_setfield(L, -2, "secure");
  lua_pushboolean(L, c->wire >= SL_WIRE_WS_DEFLATE);
  lua_setfield(L, -2, "compressed");
  lua_createtable(L, (int)c->rooms.count, 0);
  for (uint32_t i = 0; i < c->rooms.count; i++) {
    lua_pushlstring(L, c->rooms.items[i].room->name, c->rooms.items[i].room->name_len);
    lua_rawseti(L, -2, (int)i + 1);
  }
  sl_json_mark_array(L);
  lua_setfield(L, -2, "rooms");
}

static inline bool field_is(const char *key, size_t len, const char *field) {
  return key[0] == field[0] && len == strlen(field) && memcmp(key, field, len) == 0;
}

/* __index(ctx, key): fields first, then methods (upvalue 1). */
static int sl_ctx_index(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  size_t len;
  const char *key = lua_tolstring(L, 2, &len);
  if (!key) return 0;
  if (field_is(key, len, "id")) {
    lua_pushstring(L, ctx->id);
  } else if (field_is(key, len, "data")) {
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, ENV_DATA);
  } else if (field_is(key, len, "event")) {
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, ENV_EVENT);
  } else if (field_is(key, len, "req")) {
    lua_getfenv(L, 1);
    lua_rawgeti(L, -1, ENV_REQ);
    if (lua_isnil(L, -1) && ctx->conn) { /* first read: made now, kept for this ctx */
      lua_pop(L, 1);
      sl_app_push_req(L, ctx->conn);
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, ENV_REQ);
    }
  } else if (field_is(key, len, "isBinary")) {
    lua_pushboolean(L, ctx->is_binary);
  } else if (field_is(key, len, "clientInfo")) {
    push_client_info(L, ctx);
  } else {
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
  }
  return 1;
}

static int sl_ctx_tostring(lua_State *L) {
  sl_ctx *ctx = check_ctx(L);
  lua_pushfstring(L, "stelar.ctx(%s%s)", ctx->id, ctx->conn ? "" : ", closed");
  return 1;
}

static void unlink_ctx(sl_ctx *ctx) {
  if (!ctx->conn) return;
  sl_ctx **p = &ctx->conn->ctxs;
  while (*p && *p != ctx) p = &(*p)->next;
  if (*p) *p = ctx->next;
  if (ctx->conn->ctx == ctx) ctx->conn->ctx = NULL;
  ctx->conn = NULL;
}

static int sl_ctx_gc(lua_State *L) {
  unlink_ctx(lua_touserdata(L, 1));
  return 0;
}

static sl_ctx *new_ctx(lua_State *L, sl_conn *c) {
  sl_ctx *ctx = lua_newuserdata(L, sizeof *ctx);
  *ctx = (sl_ctx){.tag = &ctx_tag, .conn = c, .server = c->server, .next = c->ctxs};
  memcpy(ctx->id, c->id, sizeof ctx->id);
  c->ctxs = ctx;
  luaL_getmetatable(L, CTX_MT);
  lua_setmetatable(L, -2);
  lua_createtable(L, 4, 0);
  if (c->meta_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->meta_ref);
    lua_rawseti(L, -2, ENV_META);
  }
  lua_setfenv(L, -2);
  return ctx;
}

void sl_ctx_push_meta(lua_State *L, sl_conn *c) {
  if (c->meta_ref == LUA_NOREF) {
    lua_newtable(L);
    c->meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->meta_ref);
}

sl_ctx *sl_ctx_push_event(lua_State *L, sl_conn *c, const char *event, bool is_binary) {
  if (event) lua_pushstring(L, event);
  else lua_pushnil(L);
  lua_insert(L, -2); /* below the data */
  sl_ctx *ctx = sl_ctx_push_event_at(L, c, lua_gettop(L) - 1, is_binary);
  lua_remove(L, -2); /* the name */
  return ctx;
}

sl_ctx *sl_ctx_push_event_at(lua_State *L, sl_conn *c, int event_idx, bool is_binary) {
  if (event_idx < 0) event_idx = lua_gettop(L) + event_idx + 1;
  sl_ctx *ctx;
  if (c->ctx) {
    ctx = c->ctx;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ctx_ref);
  } else {
    ctx = new_ctx(L, c);
    lua_pushvalue(L, -1);
    c->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->ctx = ctx;
  }
  ctx->is_binary = is_binary;
  lua_getfenv(L, -1);
  lua_pushvalue(L, -3); /* data */
  lua_rawseti(L, -2, ENV_DATA);
  lua_pushvalue(L, event_idx);
  lua_rawseti(L, -2, ENV_EVENT);
  lua_pop(L, 1);
  lua_remove(L, -2); /* data */
  return ctx;
}

void sl_ctx_unshare(lua_State *L, sl_conn *c) {
  if (!c->ctx) return;
  luaL_unref(L, LUA_REGISTRYINDEX, c->ctx_ref);
  c->ctx_ref = LUA_NOREF;
  c->ctx = NULL;
}

void sl_ctx_detach_all(lua_State *L, sl_conn *c) {
  sl_ctx_unshare(L, c);
  for (sl_ctx *ctx = c->ctxs, *next; ctx; ctx = next) {
    next = ctx->next;
    ctx->conn = NULL;
    ctx->next = NULL;
  }
  c->ctxs = NULL;
}

void sl_lua_open_ctx(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"emit", sl_ctx_emit},
      {"emitBinary", sl_ctx_emit_binary},
      {"broadcast", sl_ctx_broadcast},
      {"broadcastBinary", sl_ctx_broadcast_binary},
      {"to", sl_ctx_to},
      {"toId", sl_ctx_to_id},
      {"send", sl_ctx_send},
      {"joinRoom", sl_ctx_join_room},
      {"leaveRoom", sl_ctx_leave_room},
      {"setMetadata", sl_ctx_set_metadata},
      {"getMetadata", sl_ctx_get_metadata},
      {"getClients", sl_ctx_get_clients},
      {"close", sl_ctx_close},
      {"reject", sl_ctx_reject},
      {NULL, NULL},
  };
  luaL_newmetatable(L, CTX_MT);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_pushcclosure(L, sl_ctx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sl_ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, sl_ctx_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
