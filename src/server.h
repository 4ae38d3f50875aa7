/* The server: its listener, its connections, its rooms and stats, and the
 * loop hooks that flush every connection written to during a loop turn in
 * one go. */
#ifndef SL_SERVER_H
#define SL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "map.h"
#include "room.h"

typedef struct {
  char *host;
  int port;
  int tcp_port; /* -1: off */
  char *namespace_path;
  uint32_t max_connections, max_connections_per_ip;
  uint32_t max_rooms, max_rooms_per_client;
  size_t max_payload_size, max_frame_size, max_buffered_bytes;
  uint32_t heartbeat_interval, heartbeat_timeout, connect_timeout;
  uint32_t shutdown_timeout;
  bool graceful_shutdown, compression;
  char *health_endpoint; /* NULL: disabled */
  char **allowed_origins; /* NULL: any origin */
  size_t n_allowed_origins;
} sl_config;

typedef struct {
  uint64_t total_connections;
  uint64_t messages_received, messages_sent;
  uint32_t active, ws, tcp;
  uint64_t started_at; /* ms */
} sl_stats;

struct sl_server {
  uv_loop_t *loop;
  sl_config cfg;
  uv_tcp_t listener;     /* HTTP and WebSocket */
  uv_tcp_t tcp_listener; /* the binary TCP protocol, when tcp_port >= 0 */
  bool started, stopped, tcp_listening;
  int bound_port, tcp_bound_port;

  sl_map clients;       /* id -> registered sl_conn */
  sl_rooms rooms;
  sl_conn *conns;       /* every connection, any state */
  sl_conn *dirty;       /* connections with queued output */
  uv_prepare_t prepare; /* flush before the loop waits */
  uv_check_t check;     /* flush after the loop's I/O callbacks */
  uv_timer_t tick;      /* timeouts and heartbeats */
  uint64_t next_ping;
  sl_stats stats;

  /* Lua side (lua_server.c): the handler set and the server's userdata. */
  int handlers_ref;
  int self_ref;
  sl_server *next_server;
};

void sl_config_defaults(sl_config *cfg);
void sl_config_free(sl_config *cfg);

sl_server *sl_server_new(uv_loop_t *loop);
/* Binds and listens; returns 0 or a libuv error. Sets bound_port. */
int sl_server_start(sl_server *s);
/* Closes the listener and every connection at once. */
void sl_server_stop(sl_server *s);
void sl_server_free(sl_server *s);

/* Unlinks a connection being freed (conn.c's close callback). */
void sl_server_forget(sl_server *s, sl_conn *c);
void sl_server_flush(sl_server *s);
/* Starts (or restarts) reading a connection's socket. */
int sl_server_resume_reading(sl_conn *c);
bool sl_server_origin_allowed(const sl_server *s, const char *origin);

uint64_t sl_now_ms(void);

#endif
