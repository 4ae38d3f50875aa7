#include "app.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "envelope.h"
#include "json.h"
#include "jsontext.h"
#include "client_limits.h"
#include "log.h"
#include "reads.h"
#include "lua_cluster.h"
#include "lua_ctx.h"
#include "lua_server.h"
#include "lua_vm.h"
#include "server.h"

/* ---- client ids: 16 hex digits, unique (a bijection of a counter) ---- */

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static void own_id(sl_conn *c) {
  static uint64_t seed, counter;
  if (!seed) seed = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^ (uint64_t)(uintptr_t)&seed;
  c->id_len = (uint8_t)snprintf(c->id, sizeof c->id, "%016llx", (unsigned long long)splitmix64(seed + counter++));
}

/* generateClientId() when the script gives one: its result must be a
 * string of 1-64 bytes that no connected client has, else ours is used. */
static void assign_id(sl_conn *c) {
  lua_State *L = sl_vm_state();
  if (!sl_lua_has(c->server, SL_SLOT_GENERATE_ID)) return own_id(c);
  sl_lua_push_handler(L, c->server, "options", "generateClientId");
  if (!lua_isfunction(L, -1) || sl_vm_call(L, "generateClientId", NULL, NULL, 0, 1) != 0) {
    lua_pop(L, 1);
    return own_id(c);
  }
  size_t len = 0;
  const char *id = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  if (!id || len == 0 || len > SL_ID_MAX || sl_map_get(&c->server->clients, id, len)) {
    sl_error("generateClientId must return a unique string of 1 to %d bytes; using a generated id", SL_ID_MAX);
    own_id(c);
  } else {
    memcpy(c->id, id, len);
    c->id[len] = '\0';
    c->id_len = (uint8_t)len;
  }
  lua_pop(L, 1);
}

sl_conn *sl_app_find_client(sl_server *s, const char *id) { return sl_map_get(&s->clients, id, strlen(id)); }

void sl_app_payload_too_large(sl_conn *c, const char *event, size_t size) {
  lua_State *L = sl_vm_state();
  sl_info("client %s sent %zu bytes, over maxPayloadSize", c->id, size);
  if (!sl_app_push_hook(L, c->server, SL_HOOK_PAYLOAD_TOO_LARGE)) return;
  sl_app_info_string(L, "clientId", c->id);
  if (event) sl_app_info_string(L, "event", event);
  sl_app_info_number(L, "size", (double)size);
  sl_app_info_number(L, "max", (double)c->server->cfg.max_payload_size);
  sl_app_call_hook(L, SL_HOOK_PAYLOAD_TOO_LARGE, c->id);
}

/* ---- hooks: hooks.<name>(info) ---- */

const char *sl_app_protocol(const sl_conn *c) { return c->is_tcp ? "tcp" : "ws"; }

bool sl_app_push_hook(lua_State *L, sl_server *s, sl_hook hook) {
  if (!sl_lua_has_hook(s, hook)) return false;
  sl_lua_push_handler(L, s, "hooks", sl_hook_names[hook]);
  if (lua_isfunction(L, -1)) {
    lua_createtable(L, 0, 4);
    return true;
  }
  lua_pop(L, 1);
  return false;
}

sl_hook_result sl_app_call_hook(lua_State *L, sl_hook hook, const char *client_id) {
  if (sl_vm_call(L, "hook", sl_hook_names[hook], client_id, 1, 1) != 0) {
    lua_pop(L, 1);
    return SL_HOOK_FAILED;
  }
  sl_hook_result r = (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) ? SL_HOOK_VETO : SL_HOOK_OK;
  lua_pop(L, 1);
  return r;
}

void sl_app_info_string(lua_State *L, const char *key, const char *value) {
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

void sl_app_info_number(lua_State *L, const char *key, double value) {
  lua_pushnumber(L, value);
  lua_setfield(L, -2, key);
}

/* ---- ctx.req ---- */

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Pushes the URL-decoded form of s[0..n). */
static void push_decoded(lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      luaL_addchar(&b, ' ');
    } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      luaL_addchar(&b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
      i += 2;
    } else {
      luaL_addchar(&b, s[i]);
    }
  }
  luaL_pushresult(&b);
}

static void push_query(lua_State *L, const char *q) {
  lua_newtable(L);
  while (q && *q) {
    size_t n = strcspn(q, "&#");
    const char *eq = memchr(q, '=', n);
    size_t klen = eq ? (size_t)(eq - q) : n;
    if (klen) {
      push_decoded(L, q, klen);
      if (eq) push_decoded(L, eq + 1, n - klen - 1);
      else lua_pushliteral(L, "");
      lua_settable(L, -3);
    }
    if (q[n] != '&') break;
    q += n + 1;
  }
}

/* Pushes ctx.req, {method, url, path, query, headers} (lower-case names),
 * from the text sl_http_copy_request made. */
static void push_req(lua_State *L, const char *text, size_t len) {
  const char *end = text + len, *method = text;
  const char *url = method + strlen(method) + 1;
  const char *p = url + strlen(url) + 1;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  lua_pushlstring(L, url, strcspn(url, "?#"));
  lua_setfield(L, -2, "path");
  const char *q = strchr(url, '?');
  push_query(L, q ? q + 1 : NULL);
  lua_setfield(L, -2, "query");
  lua_newtable(L);
  while (p < end) { /* name\0value\0 pairs */
    const char *name = p, *value = name + strlen(name) + 1;
    if (value >= end) break;
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
    p = value + strlen(value) + 1;
  }
  lua_setfield(L, -2, "headers");
}

/* The Lua table is made when a script first reads ctx.req: most never do,
 * and the text is a third of the table's size. */
void sl_app_push_req(lua_State *L, sl_conn *c) {
  if (c->req_ref == LUA_NOREF && c->req_text.len) {
    push_req(L, c->req_text.data, c->req_text.len);
    c->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sl_sbuf_free(&c->req_text);
  }
  if (c->req_ref == LUA_NOREF) lua_pushnil(L);
  else lua_rawgeti(L, LUA_REGISTRYINDEX, c->req_ref);
}

/* Pushes the names of the client's rooms as a JSON array. */
static void push_room_names(lua_State *L, const sl_conn *c) {
  lua_createtable(L, (int)c->rooms.count, 0);
  for (uint32_t i = 0; i < c->rooms.count; i++) {
    lua_pushlstring(L, c->rooms.items[i].room->name, c->rooms.items[i].room->name_len);
    lua_rawseti(L, -2, (int)i + 1);
  }
  sl_json_mark_array(L);
}

/* ---- running handlers ---- */

/* Runs the handler on top of the stack with ctx (and the extra args above
 * it) as a task; a task that waits keeps its ctx from being reused. */
static void run(sl_conn *c, const char *kind, const char *name, int nargs, sl_task_done done,
                const char *correlation, size_t correlation_len) {
  lua_State *L = sl_vm_state();
  sl_task *t = sl_task_new(c->server, kind, name, c->id, done);
  if (t && correlation && sl_task_set_correlation(t, correlation, correlation_len) != 0) {
    sl_task_drop(t);
    t = NULL;
  }
  if (!t) {
    lua_pop(L, nargs + 1);
    return;
  }
  if (sl_task_start(t, nargs) == SL_TASK_WAITING) sl_ctx_unshare(L, c);
}

/* Pushes the handler in group[name] (or group); false when there is none. */
static bool push_fn(lua_State *L, sl_server *s, const char *group, const char *name) {
  sl_lua_push_handler(L, s, group, name);
  if (lua_isfunction(L, -1)) return true;
  lua_pop(L, 1);
  return false;
}

void sl_app_invalid(sl_conn *c, const char *why) {
  lua_State *L = sl_vm_state();
  sl_debug("ignored a message from %s: %s", c->id, why);
  if (!sl_app_push_hook(L, c->server, SL_HOOK_INVALID_MESSAGE)) return;
  sl_app_info_string(L, "clientId", c->id);
  sl_app_info_string(L, "reason", why);
  sl_app_info_string(L, "protocol", sl_app_protocol(c));
  sl_app_call_hook(L, SL_HOOK_INVALID_MESSAGE, c->id);
}

static void accept_client(sl_conn *c);

static void middleware_done(sl_task *t, lua_State *co, int nres, const char *err) {
  sl_conn *c = sl_app_find_client(t->server, t->client_id);
  if (!c) return;
  if (c->state == SL_CONN_PENDING && !err && nres >= 1 && lua_toboolean(co, -1)) return accept_client(c);
  sl_conn_close(c, 1008, err ? "Rejected: middleware error" : "Rejected"); /* unless rejected already */
  sl_reads_start(c); /* reads were paused: see the client's close reply or EOF */
}

static void accept_client(sl_conn *c) {
  lua_State *L = sl_vm_state();
  c->state = SL_CONN_OPEN;
  c->accepted = true;
  if (push_fn(L, c->server, "connection", NULL)) {
    lua_pushnil(L);
    sl_ctx_push_event(L, c, "connection", false);
    run(c, "onConnection", NULL, 1, NULL, NULL, 0);
  }
  if (c->state != SL_CONN_OPEN) return;
  if (c->held_in.len) {
    sl_sbuf held = c->held_in;
    c->held_in = (sl_sbuf){0};
    c->tp->on_read(c, held.data, held.len);
    sl_sbuf_free(&held);
  }
  if (c->state == SL_CONN_OPEN) sl_reads_start(c);
}

/* With trustProxy, the first X-Forwarded-For address stands for the peer. */
static void take_forwarded_address(sl_conn *c, const sl_http_req *req) {
  const char *fwd = req ? sl_http_header(req, "x-forwarded-for") : NULL;
  if (!c->server->cfg.trust_proxy || !fwd) return;
  while (*fwd == ' ') fwd++;
  size_t n = strcspn(fwd, ", ");
  if (n == 0 || n >= sizeof c->remote) return;
  memcpy(c->remote, fwd, n);
  c->remote[n] = '\0';
}

static void client_connect_hook(sl_conn *c) {
  lua_State *L = sl_vm_state();
  if (!sl_app_push_hook(L, c->server, SL_HOOK_CLIENT_CONNECT)) return;
  sl_app_info_string(L, "clientId", c->id);
  sl_app_info_string(L, "ip", c->remote);
  sl_app_info_string(L, "protocol", sl_app_protocol(c));
  sl_ctx_push_meta(L, c);
  lua_setfield(L, -2, "metadata");
  sl_app_call_hook(L, SL_HOOK_CLIENT_CONNECT, c->id);
}

void sl_app_client_opened(sl_conn *c, const sl_http_req *req) {
  sl_server *s = c->server;
  lua_State *L = sl_vm_state();
  c->state = SL_CONN_PENDING; /* able to send its refusal */
  take_forwarded_address(c, req);
  const char *refusal = sl_limits_admit(c);
  if (refusal) return sl_conn_close(c, 1008, refusal);
  assign_id(c);
  c->rooms.owner = c;
  if (sl_map_put(&s->clients, c->id, c->id_len, c) != 0) return sl_conn_abort(c);
  c->registered = true;
  if (s->cluster) sl_cluster_client_added(s->cluster, c->id);
  s->stats.total_connections++;
  s->stats.active++;
  if (c->is_tcp) s->stats.tcp++;
  else s->stats.ws++;
  if (c->tp->greet) c->tp->greet(c);
  if (req && sl_http_copy_request(req, &c->req_text) == 0) sl_sbuf_fit(&c->req_text); /* kept until read, if ever */
  client_connect_hook(c);
  if (c->state != SL_CONN_PENDING) return;

  sl_lua_push_handler(L, s, "use", NULL);
  if (lua_objlen(L, -1) == 0) {
    lua_pop(L, 1);
    return accept_client(c);
  }
  sl_vm_push_prelude(L, "run_middleware");
  lua_insert(L, -2);
  lua_pushnil(L);
  sl_ctx_push_event(L, c, "connection", false);
  sl_task *t = sl_task_new(s, "use", NULL, c->id, middleware_done);
  if (!t) {
    lua_pop(L, 3);
    return sl_conn_abort(c);
  }
  if (sl_task_start(t, 2) == SL_TASK_WAITING && c->state == SL_CONN_PENDING) {
    sl_ctx_unshare(L, c);
    sl_reads_stop(c); /* nothing is dispatched before acceptance */
  }
}

void sl_app_feed(sl_conn *c, const char *p, size_t n) {
  if (c->state == SL_CONN_OPEN) c->tp->on_read(c, p, n);
  else if (c->state == SL_CONN_PENDING) sl_sbuf_append(&c->held_in, p, n);
}

/* ---- messages ---- */

/* Runs on[event], then onAll, for the data on top of the stack (popped). */
static void dispatch_event(sl_conn *c, const char *event, bool binary) {
  lua_State *L = sl_vm_state();
  sl_server *s = c->server;
  int base = lua_gettop(L); /* the data */
  lua_pushstring(L, event); /* made a Lua string once: the handler's key and ctx.event */
  int name = base + 1;
  bool has_on = sl_lua_push_on_handler(L, s, name);
  bool has_all = sl_lua_has(s, SL_SLOT_ALL) && push_fn(L, s, "all", NULL);
  if (has_on || has_all) {
    lua_pushvalue(L, base);
    sl_ctx_push_event_at(L, c, name, binary);
    int ctx = lua_gettop(L);
    if (has_on) {
      lua_pushvalue(L, name + 1);
      lua_pushvalue(L, ctx);
      run(c, "on", event, 1, NULL, NULL, 0);
    }
    if (has_all && c->state == SL_CONN_OPEN) {
      lua_pushvalue(L, name + 1 + has_on);
      lua_pushvalue(L, name);
      lua_pushvalue(L, ctx);
      run(c, "onAll", event, 2, NULL, NULL, 0);
    }
  }
  lua_settop(L, base - 1);
}

static void send_ack(sl_conn *c, const sl_task *t, const char *data, size_t len, const char *error) {
  sl_msg m = {.type = SL_MSG_ACK,
              .event = t->name,
              .event_len = strlen(t->name),
              .data = data,
              .data_len = len,
              .correlation_json = t->correlation_json,
              .error = error};
  sl_conn_send(c, &m);
  sl_msg_release(&m);
}

static void ack_done(sl_task *t, lua_State *co, int nres, const char *err) {
  sl_conn *c = sl_app_find_client(t->server, t->client_id);
  if (!c || !sl_conn_sending(c)) return;
  if (err) return send_ack(c, t, NULL, 0, err);
  if (nres == 0 || lua_isnil(co, -nres)) return; /* nothing to say, as in v3 */
  sl_sbuf out = {0};
  char msg[256];
  if (sl_json_encode(co, -nres, &out, msg, sizeof msg) == 0) {
    send_ack(c, t, out.data, out.len, NULL);
  } else {
    sl_vm_log_error(t, msg, NULL);
    send_ack(c, t, NULL, 0, msg);
  }
  sl_sbuf_free(&out);
}

typedef enum { NOT_RESERVED, RESERVED_JOIN, RESERVED_LEAVE, RESERVED_PONG, RESERVED_FORBIDDEN } reserved_kind;

/* Which reserved client event the name is: one compare at most, chosen by
 * the first byte, since every message asks. */
static reserved_kind reserved_kind_of(const char *e) {
  switch (e[0]) {
  case 'j': return strcmp(e, "join-room") == 0 ? RESERVED_JOIN : NOT_RESERVED;
  case 'l': return strcmp(e, "leave-room") == 0 ? RESERVED_LEAVE : NOT_RESERVED;
  case 'p':
    if (strcmp(e, "pong") == 0) return RESERVED_PONG;
    return strcmp(e, "ping") == 0 ? RESERVED_FORBIDDEN : NOT_RESERVED;
  case 'c': return strcmp(e, "connect") == 0 ? RESERVED_FORBIDDEN : NOT_RESERVED;
  case 'd': return strcmp(e, "disconnect") == 0 ? RESERVED_FORBIDDEN : NOT_RESERVED;
  case 'e': return strcmp(e, "error") == 0 ? RESERVED_FORBIDDEN : NOT_RESERVED;
  default: return NOT_RESERVED;
  }
}

/* Reserved client events are handled here and never reach handlers. */
static bool reserved(sl_conn *c, const char *e, const char *data, size_t len) {
  reserved_kind kind = reserved_kind_of(e);
  if (kind == RESERVED_JOIN || kind == RESERVED_LEAVE) {
    sl_sbuf room = {0};
    if (!data || data[0] != '"' || !sl_jt_string(data, data + len, &room) || room.len == 0)
      sl_app_invalid(c, "room name must be a non-empty string");
    else
      (kind == RESERVED_JOIN ? sl_app_join : sl_app_leave)(sl_vm_state(), c, room.data, room.len, 1);
    sl_sbuf_free(&room);
    return true;
  }
  if (kind == RESERVED_FORBIDDEN) sl_app_invalid(c, "reserved event name");
  return kind != NOT_RESERVED; /* a pong: liveness, the read itself counted */
}

/* Pushes the Lua form of the JSON text (nil when absent); false when it
 * is not JSON after all. */
static bool push_data(lua_State *L, const char *data, size_t len) {
  if (!data) lua_pushnil(L);
  else if (sl_json_decode(L, data, len) != 0) return false;
  return true;
}

/* An event whose data is on top of the stack (decoded, or nil); data and
 * len are its JSON text, which the reserved room events read. Both
 * transports arrive here: WebSocket with the data decoded during the
 * envelope walk, TCP through sl_app_event. */
static void event_with_data(sl_conn *c, const char *event, const char *data, size_t len) {
  lua_State *L = sl_vm_state();
  int data_at = lua_gettop(L);
  if (reserved(c, event, data, len)) return lua_settop(L, data_at - 1);
  dispatch_event(c, event, false);
}

/* An ACK request whose data is on top of the stack. */
static void ack_with_data(sl_conn *c, const char *name, const char *event, const char *data, size_t len,
                          const char *correlation_id, size_t correlation_len) {
  lua_State *L = sl_vm_state();
  if (!push_fn(L, c->server, "ack", name)) return event_with_data(c, event, data, len);
  lua_insert(L, -2); /* the handler under its data */
  sl_ctx_push_event(L, c, name, false);
  run(c, "onAck", name, 1, ack_done, correlation_id, correlation_len);
}

void sl_app_event(sl_conn *c, const char *event, const char *data, size_t len) {
  if (!push_data(sl_vm_state(), data, len)) return sl_app_invalid(c, "invalid JSON");
  event_with_data(c, event, data, len);
}

void sl_app_ack_request(sl_conn *c, const char *name, const char *event, const char *data, size_t len,
                        const char *correlation_id, size_t correlation_len) {
  if (!push_data(sl_vm_state(), data, len)) return sl_app_invalid(c, "invalid JSON");
  ack_with_data(c, name, event, data, len, correlation_id, correlation_len);
}

void sl_app_binary_event(sl_conn *c, const char *event, const char *bytes, size_t len) {
  lua_pushlstring(sl_vm_state(), bytes, len);
  dispatch_event(c, event, true);
}

static void raw_message(sl_conn *c, const char *msg, size_t len, bool binary) {
  lua_State *L = sl_vm_state();
  lua_pushlstring(L, msg, len);
  sl_ctx_push_event(L, c, "message", binary);
  lua_pushlstring(L, msg, len);
  lua_pushboolean(L, binary);
  run(c, "onMessage", NULL, 3, NULL, NULL, 0);
}

bool sl_app_received(sl_conn *c, const char *event) {
  c->msgs_in++;
  c->server->stats.messages_received++;
  return sl_limits_allow(c, event);
}

void sl_app_text(sl_conn *c, const char *text, size_t len) {
  lua_State *L = sl_vm_state();
  if (sl_lua_has(c->server, SL_SLOT_MESSAGE) && push_fn(L, c->server, "message", NULL)) {
    if (sl_app_received(c, NULL)) return raw_message(c, text, len, false);
    return lua_pop(L, 1);
  }
  sl_envelope env;
  sl_env_status st = sl_envelope_parse_decoding(L, text, len, &env); /* the data decoded on the way */
  if (!sl_app_received(c, st == SL_ENV_OK ? env.event : NULL)) { /* dropped, or closed */
    if (st == SL_ENV_OK) lua_pop(L, 1);
    return;
  }
  if (st != SL_ENV_OK) return sl_app_invalid(c, sl_env_status_text(st));
  if (env.ack_name[0])
    ack_with_data(c, env.ack_name, env.event, env.data, env.data_len, env.correlation_id, env.correlation_id_len);
  else
    event_with_data(c, env.event, env.data, env.data_len);
}

void sl_app_binary(sl_conn *c, const char *msg, size_t len) {
  lua_State *L = sl_vm_state();
  if (sl_lua_has(c->server, SL_SLOT_MESSAGE) && push_fn(L, c->server, "message", NULL)) {
    if (sl_app_received(c, NULL)) return raw_message(c, msg, len, true);
    return lua_pop(L, 1);
  }
  sl_binary_msg bin;
  sl_env_status st = sl_binary_parse((const uint8_t *)msg, len, &bin);
  if (!sl_app_received(c, st == SL_ENV_OK ? bin.event : NULL)) return;
  if (st != SL_ENV_OK) return sl_app_invalid(c, sl_env_status_text(st));
  sl_app_binary_event(c, bin.event, (const char *)bin.payload, bin.payload_len);
}

/* ---- rooms ---- */

static void reply(sl_conn *c, const char *event, const char *room, size_t len) {
  sl_sbuf json = {0};
  if (sl_json_put_string(&json, room, len) == 0) {
    sl_msg m = {.type = SL_MSG_EVENT, .event = event, .event_len = strlen(event), .data = json.data,
                .data_len = json.len};
    sl_conn_send(c, &m);
    sl_msg_release(&m);
  }
  sl_sbuf_free(&json);
}

/* A hook about a room: {clientId, room} and, for `extra`, one more number. */
static sl_hook_result room_hook(lua_State *L, sl_conn *c, sl_hook hook, const char *room, size_t len, const char *extra,
                                double extra_value, double max) {
  if (!sl_app_push_hook(L, c->server, hook)) return SL_HOOK_OK;
  sl_app_info_string(L, "clientId", c->id);
  lua_pushlstring(L, room, len);
  lua_setfield(L, -2, "room");
  if (extra) {
    sl_app_info_number(L, extra, extra_value);
    sl_app_info_number(L, "max", max);
  } else if (hook == SL_HOOK_CLIENT_JOIN_ROOM) {
    sl_ctx_push_meta(L, c);
    lua_setfield(L, -2, "metadata");
  }
  return sl_app_call_hook(L, hook, c->id);
}

int sl_app_join(lua_State *L, sl_conn *c, const char *room, size_t len, int want_reply) {
  sl_server *s = c->server;
  if (len == 0 || len > SL_EVENT_NAME_MAX) return -1;
  bool member = sl_room_set_has(&c->rooms, room, len);
  if (room_hook(L, c, SL_HOOK_CLIENT_JOIN_ROOM, room, len, NULL, 0, 0) == SL_HOOK_VETO) {
    sl_info("client %s may not join %.*s: refused by onClientJoinRoom", c->id, (int)len, room);
    return -1;
  }
  if (!member && c->rooms.count >= s->cfg.max_rooms_per_client) {
    sl_info("client %s may not join %.*s: maxRoomsPerClient reached", c->id, (int)len, room);
    room_hook(L, c, SL_HOOK_MAX_ROOMS_PER_CLIENT_REACHED, room, len, "currentRooms", c->rooms.count,
              s->cfg.max_rooms_per_client);
    return -1;
  }
  if (!member && !sl_rooms_find(&s->rooms, room, len) && sl_rooms_count(&s->rooms) >= s->cfg.max_rooms) {
    sl_info("client %s may not create room %.*s: maxRooms reached", c->id, (int)len, room);
    room_hook(L, c, SL_HOOK_MAX_ROOMS_REACHED, room, len, "totalRooms", (double)sl_rooms_count(&s->rooms),
              s->cfg.max_rooms);
    return -1;
  }
  sl_room_result r = sl_rooms_join(&s->rooms, &c->rooms, room, len);
  if (r == SL_ROOM_NOMEM) return -1;
  if (r == SL_ROOM_DONE && s->cluster)
    sl_cluster_joined(s->cluster, c->id, room, len, sl_rooms_find(&s->rooms, room, len)->count == 1);
  if (want_reply) reply(c, "joined-room", room, len);
  return 0;
}

int sl_app_leave(lua_State *L, sl_conn *c, const char *room, size_t len, int want_reply) {
  if (room_hook(L, c, SL_HOOK_CLIENT_LEAVE_ROOM, room, len, NULL, 0, 0) == SL_HOOK_VETO) {
    sl_info("client %s may not leave %.*s: refused by onClientLeaveRoom", c->id, (int)len, room);
    return -1;
  }
  sl_server *s = c->server;
  if (sl_rooms_leave(&s->rooms, &c->rooms, room, len) == SL_ROOM_DONE && s->cluster)
    sl_cluster_left(s->cluster, c->id, room, len, !sl_rooms_find(&s->rooms, room, len));
  if (want_reply) reply(c, "left-room", room, len);
  return 0;
}

/* ---- delivery: this node's clients, then the other nodes' ---- */

static const sl_conn *find_excluded(sl_server *s, const char *id) {
  return id ? sl_map_get(&s->clients, id, strlen(id)) : NULL;
}

static void local_broadcast(sl_server *s, sl_msg *m, const sl_conn *exclude) {
  for (sl_conn *c = s->conns; c; c = c->next)
    if (c != exclude && c->accepted && c->state == SL_CONN_OPEN) sl_conn_send(c, m);
}

static void local_room(sl_server *s, const char *name, size_t len, sl_msg *m, const sl_conn *exclude) {
  sl_room *room = sl_rooms_find(&s->rooms, name, len);
  for (uint32_t i = 0; room && i < room->count; i++) {
    sl_conn *c = room->members[i]->owner;
    if (c != exclude) sl_conn_send(c, m);
  }
}

void sl_app_broadcast(sl_server *s, sl_msg *m, const char *exclude_id) {
  local_broadcast(s, m, find_excluded(s, exclude_id));
  if (s->cluster) sl_cluster_publish(s->cluster, SL_TO_ALL, NULL, 0, m, exclude_id);
}

void sl_app_to_room(sl_server *s, const char *name, size_t len, sl_msg *m, const char *exclude_id) {
  local_room(s, name, len, m, find_excluded(s, exclude_id));
  if (s->cluster) sl_cluster_publish(s->cluster, SL_TO_ROOM, name, len, m, exclude_id);
}

bool sl_app_to_id(sl_server *s, const char *id, size_t len, sl_msg *m) {
  sl_conn *c = sl_map_get(&s->clients, id, len);
  if (c) return sl_conn_send(c, m) == 0;
  return s->cluster && sl_cluster_publish(s->cluster, SL_TO_CLIENT, id, len, m, NULL);
}

static void server_event(sl_server *s, const sl_msg *m, const char *from_node) {
  lua_State *L = sl_vm_state();
  char name[SL_EVENT_NAME_MAX + 1];
  snprintf(name, sizeof name, "%.*s", (int)m->event_len, m->event);
  if (!push_fn(L, s, "server", name)) return;
  if (sl_json_decode(L, m->data, m->data_len) != 0) {
    lua_pop(L, 1);
    return sl_warn("cluster: server event %s from node %s carries invalid JSON", name, from_node);
  }
  lua_pushstring(L, from_node);
  sl_task *t = sl_task_new(s, "onServerEvent", name, NULL, NULL);
  if (t) sl_task_start(t, 2);
  else lua_pop(L, 3);
}

void sl_app_from_cluster(sl_server *s, sl_to to, const char *name, size_t len, sl_msg *m, const char *exclude_id,
                         const char *from_node) {
  const sl_conn *exclude = find_excluded(s, exclude_id);
  switch (to) {
  case SL_TO_ALL: local_broadcast(s, m, exclude); break;
  case SL_TO_ROOM: local_room(s, name, len, m, exclude); break;
  case SL_TO_CLIENT: {
    sl_conn *c = sl_map_get(&s->clients, name, len);
    if (c) sl_conn_send(c, m);
    break;
  }
  case SL_TO_NODES: server_event(s, m, from_node); break;
  }
}

/* ---- departure ---- */

static void client_disconnect_hook(sl_conn *c) {
  lua_State *L = sl_vm_state();
  if (!sl_app_push_hook(L, c->server, SL_HOOK_CLIENT_DISCONNECT)) return;
  sl_app_info_string(L, "clientId", c->id);
  sl_app_info_string(L, "ip", c->remote);
  sl_app_info_string(L, "protocol", sl_app_protocol(c));
  push_room_names(L, c);
  lua_setfield(L, -2, "rooms");
  sl_app_call_hook(L, SL_HOOK_CLIENT_DISCONNECT, c->id);
}

static void leave_cluster(sl_cluster *cl, const sl_conn *c) {
  for (uint32_t i = 0; i < c->rooms.count; i++) {
    const sl_room *r = c->rooms.items[i].room;
    sl_cluster_left(cl, c->id, r->name, r->name_len, r->count == 1);
  }
  sl_cluster_client_removed(cl, c->id);
}

void sl_app_client_gone(sl_conn *c) {
  sl_server *s = c->server;
  lua_State *L = sl_vm_state();
  if (c->registered) client_disconnect_hook(c);
  sl_limits_release(c);
  if (c->registered) {
    if (s->cluster) leave_cluster(s->cluster, c);
    sl_rooms_leave_all(&s->rooms, &c->rooms);
    sl_map_remove(&s->clients, c->id, c->id_len);
    s->stats.active--;
    if (c->is_tcp) s->stats.tcp--;
    else s->stats.ws--;
    c->registered = false;
  }
  if (c->accepted && push_fn(L, s, "disconnect", NULL)) {
    lua_pushnil(L);
    sl_ctx_push_event(L, c, "disconnect", false);
    run(c, "onDisconnect", NULL, 1, NULL, NULL, 0);
  }
  sl_ctx_detach_all(L, c);
  luaL_unref(L, LUA_REGISTRYINDEX, c->meta_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->req_ref);
  c->meta_ref = c->req_ref = LUA_NOREF;
}

void sl_app_shutdown_callbacks(sl_server *s, const char *signal, bool forced) {
  lua_State *L = sl_vm_state();
  sl_lua_push_handler(L, s, "shutdown", NULL);
  int n = (int)lua_objlen(L, -1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_pushstring(L, signal);
    lua_pushboolean(L, forced);
    sl_vm_call(L, "onShutdown", NULL, NULL, 2, 0);
  }
  lua_pop(L, 1);
}

/* ---- queries ---- */

static void push_client(lua_State *L, const sl_conn *c) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, c->id);
  lua_setfield(L, -2, "id");
  push_room_names(L, c);
  lua_setfield(L, -2, "rooms");
}

void sl_app_push_clients(lua_State *L, sl_server *s, const char *room_name, size_t len) {
  lua_newtable(L);
  int n = 0;
  if (room_name) {
    sl_room *room = sl_rooms_find(&s->rooms, room_name, len);
    for (uint32_t i = 0; room && i < room->count; i++) {
      push_client(L, room->members[i]->owner);
      lua_rawseti(L, -2, ++n);
    }
  } else {
    for (sl_conn *c = s->conns; c; c = c->next) {
      if (!c->registered) continue;
      push_client(L, c);
      lua_rawseti(L, -2, ++n);
    }
  }
  sl_json_mark_array(L);
}

void sl_app_push_stats(lua_State *L, sl_server *s) {
  const sl_stats *st = &s->stats;
  size_t rss = 0;
  uv_resident_set_memory(&rss);
  lua_createtable(L, 0, 12);
#define NUM(name, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, name))
  NUM("totalConnections", st->total_connections);
  NUM("activeConnections", st->active);
  NUM("totalMessagesReceived", st->messages_received);
  NUM("totalMessagesSent", st->messages_sent);
  NUM("totalRooms", sl_rooms_count(&s->rooms));
  NUM("uptime", s->started ? sl_now_ms() - st->started_at : 0);
  NUM("wsConnections", st->ws);
  NUM("tcpConnections", st->tcp);
  NUM("rateLimiterEntries", sl_limits_entries(L, s));
  NUM("tlsHandshakeFailures", st->tls_failures);
  NUM("framesEncoded", st->frames_encoded);
  lua_createtable(L, 0, 2);
  NUM("rss", rss);
  NUM("luaHeap", lua_gc(L, LUA_GCCOUNT, 0) * 1024.0 + lua_gc(L, LUA_GCCOUNTB, 0));
  lua_setfield(L, -2, "memoryUsage");
  sl_lua_push_cluster_stats(L, s);
  lua_setfield(L, -2, "cluster");
#undef NUM
}

static bool safe_header_text(const char *s) { return !strpbrk(s, "\r\n"); }

bool sl_app_has_custom_health(sl_server *s) { return sl_lua_has(s, SL_SLOT_HEALTH); }

bool sl_app_custom_health(sl_server *s, const sl_http_req *r, int *status, sl_sbuf *headers, sl_sbuf *body,
                          sl_sbuf *content_type) {
  lua_State *L = sl_vm_state();
  sl_lua_push_handler(L, s, "options", "customHealthHandler");
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  sl_sbuf text = {0};
  sl_http_copy_request(r, &text);
  push_req(L, text.data, text.len);
  sl_sbuf_free(&text);
  sl_app_push_stats(L, s);
  *status = 500;
  sl_sbuf_puts(content_type, "text/plain");
  if (sl_vm_call(L, "customHealthHandler", NULL, NULL, 2, 3) != 0) {
    sl_sbuf_puts(body, "health handler failed\n");
    lua_pop(L, 3);
    return true;
  }
  int st = lua_gettop(L) - 2;
  *status = lua_isnumber(L, st) ? (int)lua_tonumber(L, st) : 200;
  if (*status < 100 || *status > 599) *status = 500;
  if (lua_istable(L, st + 1)) {
    lua_pushnil(L);
    while (lua_next(L, st + 1)) {
      const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
      if (lua_type(L, -2) == LUA_TSTRING && v && safe_header_text(k) && safe_header_text(v)) {
        if (strcasecmp(k, "content-type") == 0) {
          sl_sbuf_reset(content_type);
          sl_sbuf_puts(content_type, v);
        } else {
          sl_sbuf_puts(headers, k), sl_sbuf_puts(headers, ": "), sl_sbuf_puts(headers, v), sl_sbuf_puts(headers, "\r\n");
        }
      }
      lua_pop(L, 1);
    }
  }
  char err[128];
  if (lua_type(L, st + 2) == LUA_TSTRING) {
    size_t len;
    const char *b = lua_tolstring(L, st + 2, &len);
    sl_sbuf_append(body, b, len);
  } else if (lua_istable(L, st + 2) && sl_json_encode(L, st + 2, body, err, sizeof err) == 0) {
    sl_sbuf_reset(content_type);
    sl_sbuf_puts(content_type, "application/json");
  }
  lua_settop(L, st - 1);
  return true;
}

int sl_app_health_json(sl_server *s, sl_sbuf *out) {
  lua_State *L = sl_vm_state();
  sl_app_push_stats(L, s);
  lua_pushliteral(L, "ok");
  lua_setfield(L, -2, "status");
  lua_pushnumber(L, (lua_Number)((s->started ? sl_now_ms() - s->stats.started_at : 0) / 1000));
  lua_setfield(L, -2, "uptimeSeconds");
  lua_getfield(L, -1, "memoryUsage");
  lua_getfield(L, -1, "rss");
  lua_Number mb = lua_tonumber(L, -1) / (1024.0 * 1024.0);
  lua_pop(L, 2);
  lua_pushnumber(L, (lua_Number)(long long)(mb * 100) / 100);
  lua_setfield(L, -2, "memoryMB");
  char err[128];
  int r = sl_json_encode(L, -1, out, err, sizeof err);
  lua_pop(L, 1);
  return r;
}
