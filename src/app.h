/* The application: what a client's arrival, messages and departure mean —
 * the envelope dispatch to Lua handlers, ACK replies, reserved events,
 * rooms, middleware, and the stats that /health and getStats report. */
#ifndef SL_APP_H
#define SL_APP_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cluster.h"
#include "conn.h"
#include "http.h"
#include "lua_server.h"

/* A WebSocket upgrade was answered 101: register the client and run the
 * middleware chain, then onConnection. req is valid during the call only. */
void sl_app_client_opened(sl_conn *c, const sl_http_req *req);
/* Pushes ctx.req (nil for TCP clients), made on first use. */
void sl_app_push_req(lua_State *L, sl_conn *c);
/* Bytes for the transport that arrived with the upgrade. */
void sl_app_feed(sl_conn *c, const char *p, size_t n);

/* A WebSocket message: the envelope (or raw mode's onMessage). */
void sl_app_text(sl_conn *c, const char *text, size_t len);
void sl_app_binary(sl_conn *c, const char *msg, size_t len);

/* Transport-neutral entry points, after a transport has decoded a message.
 * sl_app_received counts one message and charges its rate limit (event
 * may be NULL); dispatch it only when this returns true. */
bool sl_app_received(sl_conn *c, const char *event);
/* An event; data is its JSON text, or NULL when absent, decoded first (so
 * data that is not JSON is refused whatever the name). Reserved names
 * (join-room, pong, ping, ...) are handled here. */
void sl_app_event(sl_conn *c, const char *event, const char *data, size_t len);
/* An ACK request; without an onAck handler for name it is an ordinary
 * event under the name event. */
void sl_app_ack_request(sl_conn *c, const char *name, const char *event, const char *data, size_t len,
                        const char *correlation_id, size_t correlation_len);
void sl_app_binary_event(sl_conn *c, const char *event, const char *bytes, size_t len);
/* A message that cannot be dispatched: logged, and the onInvalidMessage
 * hook runs; the connection stays. */
void sl_app_invalid(sl_conn *c, const char *why);

sl_conn *sl_app_find_client(sl_server *s, const char *id);
/* A message over maxPayloadSize: logged and the onPayloadTooLarge hook
 * runs; the transport drops it (TCP) or closes with 1009 (WebSocket). */
void sl_app_payload_too_large(sl_conn *c, const char *event, size_t size);
const char *sl_app_protocol(const sl_conn *c);

/* Hooks take one info table, as in v3: push the hook and a fresh table
 * (false when the script has no such hook), fill the table, then call. */
typedef enum { SL_HOOK_OK, SL_HOOK_VETO, SL_HOOK_FAILED } sl_hook_result;
bool sl_app_push_hook(lua_State *L, sl_server *s, sl_hook hook);
void sl_app_info_string(lua_State *L, const char *key, const char *value);
void sl_app_info_number(lua_State *L, const char *key, double value);
/* SL_HOOK_VETO when the hook returned false; errors are logged. */
sl_hook_result sl_app_call_hook(lua_State *L, sl_hook hook, const char *client_id);

/* When the connection is freed: rooms, client table, onDisconnect. */
void sl_app_client_gone(sl_conn *c);

/* Joins or leaves a room on the client's behalf; replies as v3 does when
 * reply is set. Returns 0, or -1 when refused. */
int sl_app_join(lua_State *L, sl_conn *c, const char *room, size_t len, int reply);
int sl_app_leave(lua_State *L, sl_conn *c, const char *room, size_t len, int reply);

/* Sends to every open client (but exclude_id, which may be NULL), or every
 * member of room, on this node and, in a cluster, on every other. */
void sl_app_broadcast(sl_server *s, sl_msg *m, const char *exclude_id);
void sl_app_to_room(sl_server *s, const char *room, size_t len, sl_msg *m, const char *exclude_id);
/* Sends to one client: here, or published for the node that has it. False
 * when it is not here and cannot be published. */
bool sl_app_to_id(sl_server *s, const char *id, size_t len, sl_msg *m);
/* A message another node published: delivered to this node's clients only
 * (SL_TO_NODES: the onServerEvent handler runs with data and from_node). */
void sl_app_from_cluster(sl_server *s, sl_to to, const char *name, size_t len, sl_msg *m, const char *exclude_id,
                         const char *from_node);

/* Runs the onShutdown callbacks with (signal, forced). */
void sl_app_shutdown_callbacks(sl_server *s, const char *signal, bool forced);

/* Pushes the getStats() table. */
void sl_app_push_stats(lua_State *L, sl_server *s);
int sl_app_health_json(sl_server *s, sl_sbuf *out);

/* customHealthHandler(req, stats) -> status, headers, body: true when the
 * script has one; fills the answer (headers as "Name: value\r\n" lines, a
 * table body as JSON). A handler error answers 500. */
bool sl_app_has_custom_health(sl_server *s);
bool sl_app_custom_health(sl_server *s, const sl_http_req *r, int *status, sl_sbuf *headers, sl_sbuf *body,
                          sl_sbuf *content_type);

/* Pushes {id=..., rooms={...}} for every client, or a room's members. */
void sl_app_push_clients(lua_State *L, sl_server *s, const char *room, size_t len);

#endif
