/* The server: its listener, its connections, its rooms and stats, and the
 * loop hooks that flush every connection written to during a loop turn in
 * one go. */
#ifndef SL_SERVER_H
#define SL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "accept.h"
#include "busypoll.h"
#include "cluster.h"
#include "conn.h"
#include "map.h"
#include "ratelimit.h"
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
  uint32_t busy_poll_us; /* busyPoll: 0 off, SL_BUSYPOLL_AUTO learnt (busypoll.h) */
  sl_rate rate_limit; /* max_points 0: off */
  bool graceful_shutdown, compression, trust_proxy;
  char *health_endpoint; /* NULL: disabled */
  char **allowed_origins; /* NULL: any origin */
  size_t n_allowed_origins;
  sl_cluster_config cluster;
  char *tls_files; /* "cert\nkey\nca" of the tls option, NULL without TLS */
} sl_config;

typedef struct {
  uint64_t total_connections;
  uint64_t messages_received, messages_sent;
  uint32_t active, ws, tcp;
  uint64_t tls_failures;
  uint64_t frames_encoded; /* wire forms built: once per message and form, not per recipient */
  uint64_t started_at; /* ms */
} sl_stats;

struct sl_server {
  uv_loop_t *loop;
  sl_config cfg;
  sl_listener listener;     /* HTTP and WebSocket */
  sl_listener tcp_listener; /* the binary TCP protocol, when tcp_port >= 0 */
  bool started, stopped;
  int bound_port, tcp_bound_port;

  sl_map clients;       /* id -> registered sl_conn */
  sl_rooms rooms;
  sl_conn *conns;       /* every connection, any state */
  sl_conn *closed;      /* closed connections, freed between loop phases */
  sl_conn *dirty;       /* connections with queued output */
  uv_prepare_t prepare; /* flush before the loop waits */
  uv_check_t check;     /* flush after the loop's I/O callbacks */
  uv_timer_t tick;      /* timeouts and heartbeats */
  sl_busypoll busy;     /* the loop awake after reads, when busyPoll is set */
  sl_turn_hook turn;    /* the check hook's work after the poller's own waits */
  uint64_t next_ping;
  sl_stats stats;
  struct sl_tls_ctx *tls; /* both listeners speak TLS when set */
  sl_cluster *cluster;    /* from start to stop, when cfg.cluster.redis_url is set */

  sl_map ip_counts;    /* address -> clients, for maxConnectionsPerIP */
  sl_map event_rates;  /* event -> its own rate limit */
  sl_map client_rates; /* client id -> its own rate limit */
  uint32_t rate_entries;

  /* Graceful shutdown: clients are closing; drained() runs once all are gone
   * or shutdownTimeout forced the rest. */
  bool draining;
  uv_timer_t drain_timer;
  void (*drained)(sl_server *s, bool forced);

  /* Lua side (lua_server.c): the handler set and the server's userdata. */
  int handlers_ref;
  int self_ref;
  int staged_ref, staged_opts_ref; /* a reload's new handler set and options */
  uint32_t present;                /* sl_slot bits of the live handler set */
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
/* Stops accepting and closes every client gracefully (close 1001, TCP
 * DISCONNECT); forces whoever is left after shutdownTimeout. Without
 * gracefulShutdown, closes them at once. Then calls drained(). */
void sl_server_drain(sl_server *s, void (*drained)(sl_server *s, bool forced));
/* Ends a drain now, closing whoever is left. */
void sl_server_force(sl_server *s);
/* A connection was freed (conn.c). */
void sl_server_conn_freed(sl_server *s);

/* A connection closed its socket (conn.c): it is freed when no caller can
 * still hold it, after the loop phase. */
void sl_server_closed(sl_server *s, sl_conn *c);
/* Unlinks a connection being freed (sl_conn_free). */
void sl_server_forget(sl_server *s, sl_conn *c);
void sl_server_flush(sl_server *s);
/* Runs the turn's io_uring batch (iobatch.h); says so if io_uring gave up. */
void sl_server_submit_batch(void);
bool sl_server_origin_allowed(const sl_server *s, const char *origin);

uint64_t sl_now_ms(void);

#endif
