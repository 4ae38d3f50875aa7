#include "lua_cluster.h"

#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "json.h"
#include "lua_vm.h"

#define UNAVAILABLE "cluster unavailable"

/* A query on its way to Redis: who gets the answer. */
typedef struct {
  sl_server *server;
  sl_task *waiting; /* the handler that waits for it, or NULL */
  int fn_ref;       /* the callback, or LUA_NOREF */
  bool members;     /* getRoomMembers, else getClients */
  char *room;
  size_t room_len;
} query;

static void push_reply_string(lua_State *L, const redisReply *r) {
  if (r->type == REDIS_REPLY_STRING) lua_pushlstring(L, r->str, r->len);
  else lua_pushliteral(L, "");
}

/* {id=..., node=..., rooms={...}} from [id, node, [rooms]]. */
static void push_client(lua_State *L, const redisReply *r) {
  lua_createtable(L, 0, 3);
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
  push_reply_string(L, r->element[0]);
  lua_setfield(L, -2, "id");
  push_reply_string(L, r->element[1]);
  lua_setfield(L, -2, "node");
  const redisReply *rooms = r->element[2];
  lua_createtable(L, (int)rooms->elements, 0);
  for (size_t i = 0; rooms->type == REDIS_REPLY_ARRAY && i < rooms->elements; i++) {
    push_reply_string(L, rooms->element[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  sl_json_mark_array(L);
  lua_setfield(L, -2, "rooms");
}

static void push_answer(lua_State *L, const query *q, const redisReply *r) {
  lua_createtable(L, (int)r->elements, 0);
  for (size_t i = 0; i < r->elements; i++) {
    if (q->members) push_reply_string(L, r->element[i]);
    else push_client(L, r->element[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  sl_json_mark_array(L);
}

/* What this node alone knows: the answer when Redis cannot give one. */
static void push_local(lua_State *L, sl_server *s, bool members, const char *room, size_t len) {
  if (members) return sl_lua_push_room_members(L, s, room, len);
  sl_app_push_clients(L, s, NULL, 0);
  const char *node = s->cluster ? sl_cluster_get_stats(s->cluster).node_id : "";
  for (int i = 1, n = (int)lua_objlen(L, -1); i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_pushstring(L, node);
    lua_setfield(L, -2, "node");
    lua_pop(L, 1);
  }
}

static void query_free(lua_State *L, query *q) {
  luaL_unref(L, LUA_REGISTRYINDEX, q->fn_ref);
  free(q->room);
  free(q);
}

static void on_answer(void *ud, const redisReply *reply) {
  query *q = ud;
  lua_State *L = sl_vm_state();
  bool ok = reply && reply->type == REDIS_REPLY_ARRAY;
  if (q->waiting) {
    lua_State *co = q->waiting->co;
    if (ok) push_answer(co, q, reply);
    else push_local(co, q->server, q->members, q->room, q->room_len);
    if (ok) lua_pushnil(co);
    else lua_pushliteral(co, UNAVAILABLE);
    sl_task *t = q->waiting;
    query_free(L, q);
    sl_task_resume(t, 2);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, q->fn_ref);
  if (ok) push_answer(L, q, reply);
  else push_local(L, q->server, q->members, q->room, q->room_len);
  if (ok) lua_pushnil(L);
  else lua_pushliteral(L, UNAVAILABLE);
  sl_task *t = sl_task_new(q->server, q->members ? "getRoomMembers" : "getClients", NULL, NULL, NULL);
  query_free(L, q);
  if (t) sl_task_start(t, 2);
  else lua_pop(L, 3);
}

/* Answers now, the way a query through Redis would: returned, or given to
 * the callback. err is NULL for a node without a cluster. */
static int answer_now(lua_State *L, sl_server *s, bool members, const char *room, size_t len, int fn_idx,
                      const char *err) {
  bool has_fn = !lua_isnoneornil(L, fn_idx);
  if (has_fn) lua_pushvalue(L, fn_idx);
  push_local(L, s, members, room, len);
  if (err) lua_pushstring(L, err);
  else lua_pushnil(L);
  if (!has_fn) return 2;
  lua_call(L, 2, 0);
  return 0;
}

int sl_lua_cluster_query(lua_State *L, sl_server *s, const char *room, size_t len, int fn_idx) {
  bool members = room != NULL;
  if (!lua_isnoneornil(L, fn_idx)) luaL_checktype(L, fn_idx, LUA_TFUNCTION);
  if (!s->cluster) return answer_now(L, s, members, room, len, fn_idx, NULL);
  sl_task *waiting = NULL;
  if (lua_isnoneornil(L, fn_idx) && !(waiting = sl_task_current(L)))
    return luaL_error(L, "a cluster query without a callback can only wait inside a handler");
  query *q = calloc(1, sizeof *q);
  if (!q || (room && !(q->room = malloc(len ? len : 1)))) {
    free(q);
    return luaL_error(L, "out of memory");
  }
  if (room) memcpy(q->room, room, len);
  q->server = s;
  q->waiting = waiting;
  q->members = members;
  q->room_len = len;
  q->fn_ref = LUA_NOREF;
  if (!waiting) {
    lua_pushvalue(L, fn_idx);
    q->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (sl_cluster_query(s->cluster, q->room, len, on_answer, q) != 0) {
    query_free(L, q);
    return answer_now(L, s, members, room, len, fn_idx, UNAVAILABLE);
  }
  return waiting ? lua_yield(L, 0) : 0;
}

int sl_lua_server_side_emit(lua_State *L, sl_server *s) {
  sl_msg m;
  sl_lua_check_msg(L, 2, 3, SL_MSG_EVENT, &m);
  bool sent = s->cluster && sl_cluster_publish(s->cluster, SL_TO_NODES, NULL, 0, &m, NULL);
  sl_msg_release(&m);
  lua_pushboolean(L, sent);
  return 1;
}

void sl_lua_push_cluster_stats(lua_State *L, const sl_server *s) {
  lua_createtable(L, 0, 6);
  lua_pushboolean(L, s->cluster != NULL);
  lua_setfield(L, -2, "enabled");
  if (!s->cluster) return;
  sl_cluster_stats st = sl_cluster_get_stats(s->cluster);
  lua_pushstring(L, st.node_id);
  lua_setfield(L, -2, "nodeId");
  lua_pushboolean(L, st.connected);
  lua_setfield(L, -2, "connected");
  lua_pushnumber(L, (lua_Number)st.published);
  lua_setfield(L, -2, "published");
  lua_pushnumber(L, (lua_Number)st.received);
  lua_setfield(L, -2, "received");
  lua_pushnumber(L, (lua_Number)st.dropped);
  lua_setfield(L, -2, "dropped");
}
