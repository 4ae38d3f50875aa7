#include "lua_server.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "envelope.h"
#include "json.h"
#include "client_limits.h"
#include "log.h"
#include "lua_options.h"
#include "lua_cluster.h"
#include "lua_ctx.h"
#include "lua_vm.h"
#include "reload.h"
#include "utf8.h"

#define SERVER_MT "stelar.server"

typedef struct {
  sl_server *s;
} server_box;

static sl_server *check_server(lua_State *L) { return ((server_box *)luaL_checkudata(L, 1, SERVER_MT))->s; }

/* ---- messages from Lua values ---- */

static sl_sbuf data_json; /* the encoded data of the message being sent */

void sl_lua_check_msg(lua_State *L, int event_idx, int data_idx, sl_msg_type type, sl_msg *m) {
  size_t elen;
  const char *event = luaL_checklstring(L, event_idx, &elen);
  if (elen == 0 || elen > SL_EVENT_NAME_MAX)
    luaL_argerror(L, event_idx, "event name must be 1 to 256 bytes");
  if (!sl_utf8_valid(event, elen)) luaL_argerror(L, event_idx, "event name must be UTF-8");
  *m = (sl_msg){.type = type, .event = event, .event_len = elen};
  if (type == SL_MSG_BINARY) {
    m->data = luaL_checklstring(L, data_idx, &m->data_len);
    return;
  }
  char err[256];
  sl_sbuf_reset(&data_json);
  if (sl_json_encode(L, data_idx, &data_json, err, sizeof err) != 0) luaL_error(L, "%s", err);
  m->data = data_json.data;
  m->data_len = data_json.len;
}

/* ---- the handler set: {on={}, ack={}, use={}, all=, connection=, ...} ---- */

const char *const sl_hook_names[SL_HOOKS] = {
    "onRateLimitExceeded", "onMaxConnectionsReached", "onMaxRoomsReached", "onMaxRoomsPerClientReached",
    "onPayloadTooLarge",   "onInvalidMessage",        "onClientJoinRoom",  "onClientLeaveRoom",
    "onBeforeBroadcast",   "onClientConnect",         "onClientDisconnect"};

static const struct {
  const char *group, *name;
} slot_places[SL_SLOT_HOOK] = {
    [SL_SLOT_ALL] = {"all", NULL},
    [SL_SLOT_CONNECTION] = {"connection", NULL},
    [SL_SLOT_DISCONNECT] = {"disconnect", NULL},
    [SL_SLOT_MESSAGE] = {"message", NULL},
    [SL_SLOT_GENERATE_ID] = {"options", "generateClientId"},
    [SL_SLOT_HEALTH] = {"options", "customHealthHandler"},
    [SL_SLOT_RATE_LIMITER] = {"options", "customRateLimiter"},
    [SL_SLOT_IP_TRACKER] = {"options", "customIPTracker"},
};

static bool slot_filled(lua_State *L, const sl_server *s, const char *group, const char *name) {
  sl_lua_push_handler(L, s, group, name);
  bool filled = !lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  lua_pop(L, 1);
  return filled;
}

void sl_lua_refresh_present(lua_State *L, sl_server *s) {
  uint32_t present = 0;
  for (unsigned i = 0; i < SL_SLOT_HOOK; i++)
    if (slot_filled(L, s, slot_places[i].group, slot_places[i].name)) present |= 1u << i;
  for (unsigned h = 0; h < SL_HOOKS; h++)
    if (slot_filled(L, s, "hooks", sl_hook_names[h])) present |= 1u << (SL_SLOT_HOOK + h);
  s->present = present;
}

void sl_lua_push_handler(lua_State *L, const sl_server *s, const char *group, const char *name) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
  lua_getfield(L, -1, group);
  if (name && lua_istable(L, -1)) lua_getfield(L, -1, name);
  else lua_pushvalue(L, -1);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* handlers[ON_GROUP] is handlers.on as well: every event looks it up, and
 * an integer key costs no string hashing. */
#define ON_GROUP 1

bool sl_lua_push_on_handler(lua_State *L, const sl_server *s, int name_idx) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
  lua_rawgeti(L, -1, ON_GROUP);
  lua_pushvalue(L, name_idx);
  lua_rawget(L, -2);
  lua_replace(L, -3);
  lua_pop(L, 1);
  if (lua_isfunction(L, -1)) return true;
  lua_pop(L, 1);
  return false;
}

static void new_handler_set(lua_State *L) {
  lua_createtable(L, 1, 8);
  static const char *const groups[] = {"on", "ack", "use", "hooks", "shutdown", "options", "server"};
  for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) {
    lua_newtable(L);
    lua_setfield(L, -2, groups[i]);
  }
  lua_getfield(L, -1, "on");
  lua_rawseti(L, -2, ON_GROUP);
}

/* Stores fn (at fn_idx) in the handler set: group[name] = fn, or group = fn. */
/* Registrations go to the set a reload is building, else the live one. */
static int registration_set(const sl_server *s) {
  return s->staged_ref != LUA_NOREF ? s->staged_ref : s->handlers_ref;
}

static int set_handler(lua_State *L, const char *group, const char *name, int fn_idx) {
  sl_server *s = check_server(L);
  luaL_checktype(L, fn_idx, LUA_TFUNCTION);
  lua_rawgeti(L, LUA_REGISTRYINDEX, registration_set(s));
  if (name) lua_getfield(L, -1, group);
  lua_pushvalue(L, fn_idx);
  lua_setfield(L, -2, name ? name : group);
  lua_settop(L, 1);
  sl_lua_refresh_present(L, s);
  return 1; /* the server, so calls can chain */
}

static const char *check_name(lua_State *L, int idx) {
  size_t len;
  const char *name = luaL_checklstring(L, idx, &len);
  luaL_argcheck(L, len > 0 && len <= SL_EVENT_NAME_MAX, idx, "name must be 1 to 256 bytes");
  return name;
}

static int sl_server_on(lua_State *L) { return set_handler(L, "on", check_name(L, 2), 3); }
static int sl_server_on_ack(lua_State *L) { return set_handler(L, "ack", check_name(L, 2), 3); }
static int sl_server_on_all(lua_State *L) { return set_handler(L, "all", NULL, 2); }
static int sl_server_on_connection(lua_State *L) { return set_handler(L, "connection", NULL, 2); }
static int sl_server_on_disconnect(lua_State *L) { return set_handler(L, "disconnect", NULL, 2); }
static int sl_server_on_message(lua_State *L) { return set_handler(L, "message", NULL, 2); }
static int sl_server_on_server_event(lua_State *L) { return set_handler(L, "server", check_name(L, 2), 3); }

static int append_handler(lua_State *L, const char *group) {
  sl_server *s = check_server(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_rawgeti(L, LUA_REGISTRYINDEX, registration_set(s));
  lua_getfield(L, -1, group);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
  lua_settop(L, 1);
  return 1;
}

static int sl_server_use(lua_State *L) { return append_handler(L, "use"); }
static int sl_server_on_shutdown(lua_State *L) { return append_handler(L, "shutdown"); }

/* ---- sending ---- */

bool sl_lua_broadcast_allowed(lua_State *L, sl_server *s, int event_idx, int data_idx, const char *exclude_id) {
  if (!sl_app_push_hook(L, s, SL_HOOK_BEFORE_BROADCAST)) return true;
  lua_pushvalue(L, event_idx);
  lua_setfield(L, -2, "event");
  lua_pushvalue(L, data_idx);
  lua_setfield(L, -2, "data");
  if (exclude_id) sl_app_info_string(L, "excludeId", exclude_id);
  return sl_app_call_hook(L, SL_HOOK_BEFORE_BROADCAST, NULL) != SL_HOOK_VETO;
}

static int sl_server_broadcast(lua_State *L) {
  sl_server *s = check_server(L);
  if (!sl_lua_broadcast_allowed(L, s, 2, 3, luaL_optstring(L, 4, NULL))) return 0;
  sl_msg m;
  sl_lua_check_msg(L, 2, 3, SL_MSG_EVENT, &m);
  sl_app_broadcast(s, &m, luaL_optstring(L, 4, NULL));
  sl_msg_release(&m);
  return 0;
}

static int sl_server_broadcast_binary(lua_State *L) {
  sl_server *s = check_server(L);
  sl_msg m;
  sl_lua_check_msg(L, 2, 3, SL_MSG_BINARY, &m);
  sl_app_broadcast(s, &m, luaL_optstring(L, 4, NULL));
  sl_msg_release(&m);
  return 0;
}

static int sl_server_to(lua_State *L) {
  sl_server *s = check_server(L);
  size_t len;
  const char *room = luaL_checklstring(L, 2, &len);
  sl_msg m;
  sl_lua_check_msg(L, 3, 4, SL_MSG_EVENT, &m);
  sl_app_to_room(s, room, len, &m, luaL_optstring(L, 5, NULL));
  sl_msg_release(&m);
  return 0;
}

static int sl_server_to_id(lua_State *L) {
  sl_server *s = check_server(L);
  size_t len;
  const char *id = luaL_checklstring(L, 2, &len);
  sl_msg m;
  sl_lua_check_msg(L, 3, 4, SL_MSG_EVENT, &m);
  bool sent = sl_app_to_id(s, id, len, &m);
  sl_msg_release(&m);
  lua_pushboolean(L, sent);
  return 1;
}

static int sl_server_side_emit(lua_State *L) { return sl_lua_server_side_emit(L, check_server(L)); }

/* ---- queries ---- */

/* {cluster = true} asks every node, through Redis. */
static bool wants_cluster(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return false;
  lua_getfield(L, idx, "cluster");
  bool yes = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return yes;
}

static int sl_server_get_clients(lua_State *L) {
  sl_server *s = check_server(L);
  if (wants_cluster(L, 2)) return sl_lua_cluster_query(L, s, NULL, 0, 3);
  size_t len = 0;
  const char *room = luaL_optlstring(L, 2, NULL, &len);
  sl_app_push_clients(L, s, room, len);
  return 1;
}

void sl_lua_push_room_members(lua_State *L, sl_server *s, const char *name, size_t len) {
  const sl_room *room = sl_rooms_find(&s->rooms, name, len);
  lua_createtable(L, room ? (int)room->count : 0, 0);
  for (uint32_t i = 0; room && i < room->count; i++) {
    lua_pushstring(L, ((sl_conn *)room->members[i]->owner)->id);
    lua_rawseti(L, -2, (int)i + 1);
  }
  sl_json_mark_array(L);
}

static int sl_server_get_room_members(lua_State *L) {
  sl_server *s = check_server(L);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  if (wants_cluster(L, 3)) return sl_lua_cluster_query(L, s, name, len, 4);
  sl_lua_push_room_members(L, s, name, len);
  return 1;
}

static int sl_server_get_rooms(lua_State *L) {
  sl_server *s = check_server(L);
  const sl_map *m = &s->rooms.by_name;
  lua_createtable(L, (int)m->count, 0);
  int n = 0;
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->slots[i].key) continue;
    lua_pushlstring(L, m->slots[i].key, m->slots[i].key_len);
    lua_rawseti(L, -2, ++n);
  }
  sl_json_mark_array(L);
  return 1;
}

static int sl_server_get_stats(lua_State *L) {
  sl_app_push_stats(L, check_server(L));
  return 1;
}

static int sl_server_get_port(lua_State *L) {
  sl_server *s = check_server(L);
  lua_pushinteger(L, s->started ? s->bound_port : s->cfg.port);
  return 1;
}

static int sl_server_start_lua(lua_State *L) {
  sl_server *s = check_server(L);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  if (s->started || sl_vm_check_only()) return 0; /* a reloaded script starts again: no-op */
  int r = sl_server_start(s);
  if (r != 0) return luaL_error(L, "cannot listen on %s:%d: %s", s->cfg.host, s->cfg.port, uv_strerror(r));
  sl_info("listening on port %d (ws)", s->bound_port);
  if (s->tcp_listener.watch.fd >= 0) sl_info("listening on port %d (tcp)", s->tcp_bound_port);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    lua_pushinteger(L, s->bound_port);
    lua_call(L, 1, 0);
  }
  return 0;
}

static int sl_server_stop_lua(lua_State *L) {
  sl_server_stop(check_server(L));
  return 0;
}

static int sl_server_tostring(lua_State *L) {
  sl_server *s = check_server(L);
  lua_pushfstring(L, "stelar.server(port %d)", s->started ? s->bound_port : s->cfg.port);
  return 1;
}

/* ---- options ---- */

static int sl_server_get_config(lua_State *L) {
  sl_options_push(L, check_server(L));
  return 1;
}

static int sl_server_update_config(lua_State *L) {
  sl_server *s = check_server(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  sl_options_apply(L, 2, s);
  sl_lua_refresh_present(L, s);
  sl_info("config updated");
  lua_settop(L, 1);
  return 1;
}

/* server:set...RateLimit(name, {maxPoints, windowMs}) and remove...(name):
 * a rate with max_points 0 removes. */
static int rate_limit_call(lua_State *L, int (*set)(sl_server *, const char *, sl_rate), bool remove,
                           const char *what) {
  sl_server *s = check_server(L);
  const char *name = check_name(L, 2);
  set(s, name, remove ? (sl_rate){0, 0} : sl_options_check_rate(L, 3, what));
  lua_settop(L, 1);
  return 1;
}

static int sl_server_set_event_rate_limit(lua_State *L) {
  return rate_limit_call(L, sl_limits_set_event_rate, false, "setEventRateLimit: the limit");
}
static int sl_server_remove_event_rate_limit(lua_State *L) {
  return rate_limit_call(L, sl_limits_set_event_rate, true, NULL);
}
static int sl_server_set_client_rate_limit(lua_State *L) {
  return rate_limit_call(L, sl_limits_set_client_rate, false, "setClientRateLimit: the limit");
}
static int sl_server_remove_client_rate_limit(lua_State *L) {
  return rate_limit_call(L, sl_limits_set_client_rate, true, NULL);
}

static int validate_options(lua_State *L) {
  sl_options_apply(L, 1, lua_touserdata(L, lua_upvalueindex(1)));
  return 0;
}

/* During a reload: the running server, with a fresh handler set staged and
 * its options validated on a scratch server (they apply if the whole
 * script succeeds). */
static int reclaim_server(lua_State *L, sl_server *s) {
  new_handler_set(L);
  s->staged_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!lua_isnoneornil(L, 1)) {
    sl_server *scratch = sl_server_new(sl_vm_loop());
    if (!scratch) return luaL_error(L, "out of memory");
    scratch->handlers_ref = s->staged_ref;
    lua_pushlightuserdata(L, scratch);
    lua_pushcclosure(L, validate_options, 1);
    lua_pushvalue(L, 1);
    int r = lua_pcall(L, 1, 0, 0);
    sl_server_free(scratch);
    if (r != 0) return lua_error(L);
    lua_pushvalue(L, 1);
    s->staged_opts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->self_ref);
  return 1;
}

static int sl_server_new_lua(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  sl_server *running = sl_reload_active() ? sl_reload_claim_server() : NULL;
  if (running) return reclaim_server(L, running);
  sl_server *s = sl_server_new(sl_vm_loop());
  if (!s) return luaL_error(L, "out of memory");
  sl_vm_add_server(s); /* owned by the VM from here, freed at exit */
  new_handler_set(L);
  s->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!lua_isnoneornil(L, 1)) sl_options_apply(L, 1, s);
  sl_lua_refresh_present(L, s);
  server_box *box = lua_newuserdata(L, sizeof *box);
  box->s = s;
  luaL_getmetatable(L, SERVER_MT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

void sl_lua_open_server(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"on", sl_server_on},
      {"onAck", sl_server_on_ack},
      {"onAll", sl_server_on_all},
      {"onConnection", sl_server_on_connection},
      {"onDisconnect", sl_server_on_disconnect},
      {"onMessage", sl_server_on_message},
      {"onShutdown", sl_server_on_shutdown},
      {"onServerEvent", sl_server_on_server_event},
      {"serverSideEmit", sl_server_side_emit},
      {"use", sl_server_use},
      {"broadcast", sl_server_broadcast},
      {"broadcastBinary", sl_server_broadcast_binary},
      {"to", sl_server_to},
      {"toId", sl_server_to_id},
      {"getClients", sl_server_get_clients},
      {"getRoomMembers", sl_server_get_room_members},
      {"getRooms", sl_server_get_rooms},
      {"getStats", sl_server_get_stats},
      {"getPort", sl_server_get_port},
      {"getConfig", sl_server_get_config},
      {"updateConfig", sl_server_update_config},
      {"setEventRateLimit", sl_server_set_event_rate_limit},
      {"removeEventRateLimit", sl_server_remove_event_rate_limit},
      {"setClientRateLimit", sl_server_set_client_rate_limit},
      {"removeClientRateLimit", sl_server_remove_client_rate_limit},
      {"start", sl_server_start_lua},
      {"stop", sl_server_stop_lua},
      {NULL, NULL},
  };
  luaL_newmetatable(L, SERVER_MT);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sl_server_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  sl_lua_open_ctx(L);
  lua_pushcfunction(L, sl_server_new_lua);
  lua_setfield(L, -2, "server");
}
