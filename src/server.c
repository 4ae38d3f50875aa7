#include "server.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "client_limits.h"
#include "log.h"
#include "iobatch.h"
#include "lua_ctx.h"
#include "lua_vm.h"
#include "reads.h"
#include "tcpproto.h"
#include "timer.h"
#include "tls.h"

#define TICK_MS 100
#define IDLE_MS 1000 /* a connection quiet this long gives back its parser state */

uint64_t sl_now_ms(void) { return uv_hrtime() / 1000000; }

void sl_config_defaults(sl_config *cfg) {
  *cfg = (sl_config){
      .host = strdup("0.0.0.0"),
      .port = 3000,
      .tcp_port = -1,
      .namespace_path = strdup("/"),
      .max_connections = 10000,
      .max_connections_per_ip = 50,
      .max_rooms = 10000,
      .max_rooms_per_client = 50,
      .max_payload_size = 10u << 20,
      .max_frame_size = 10u << 20,
      .max_buffered_bytes = 4u << 20,
      .rate_limit = {100, 1000},
      .cluster = {.node_timeout = 5000},
      .heartbeat_interval = 30000,
      .busy_poll_us = SL_BUSYPOLL_AUTO,
      .heartbeat_timeout = 60000,
      .connect_timeout = 10000,
      .shutdown_timeout = 10000,
      .graceful_shutdown = true,
      .health_endpoint = strdup("/health"),
  };
}

void sl_config_free(sl_config *cfg) {
  free(cfg->host);
  free(cfg->namespace_path);
  free(cfg->health_endpoint);
  for (size_t i = 0; i < cfg->n_allowed_origins; i++) free(cfg->allowed_origins[i]);
  free(cfg->allowed_origins);
  free(cfg->cluster.redis_url);
  free(cfg->cluster.prefix);
  free(cfg->cluster.node_id);
  free(cfg->tls_files);
  memset(cfg, 0, sizeof *cfg);
}

bool sl_server_origin_allowed(const sl_server *s, const char *origin) {
  if (!s->cfg.allowed_origins || !origin) return true;
  for (size_t i = 0; i < s->cfg.n_allowed_origins; i++) {
    const char *o = s->cfg.allowed_origins[i];
    if (strcmp(o, "*") == 0 || strcmp(o, origin) == 0) return true;
  }
  return false;
}

void sl_server_submit_batch(void) {
  if (sl_iobatch_submit() == 0) return;
  sl_warn("io_uring refused operations: one system call per read and write from now");
}

/* Every connection written to this turn sends in one batch (iobatch.h),
 * as many batches as it takes. */
void sl_server_flush(sl_server *s) {
  do { /* a batch also runs what else waits for it, whose reads may write */
    while (s->dirty && !sl_iobatch_full()) {
      sl_conn *c = s->dirty;
      s->dirty = c->dirty_next;
      c->dirty = false;
      sl_conn_flush_batched(c);
    }
    sl_server_submit_batch();
  } while (s->dirty);
}

void sl_server_closed(sl_server *s, sl_conn *c) {
  c->closed_next = s->closed;
  s->closed = c;
}

/* Frees the closed connections; their onDisconnect may close more. Only
 * where no connection can be held up the stack: a loop hook's top. */
static void bury(sl_server *s) {
  while (s->closed) {
    sl_conn *c = s->closed;
    s->closed = c->closed_next;
    sl_conn_free(c);
  }
}

static void on_prepare(uv_prepare_t *h) {
  bury(h->data);
  sl_server_flush(h->data);
}

/* After the poll: the turn's reads, what they set off, then the writes,
 * then the frees and what their onDisconnect handlers sent. */
static void end_turn(void *server) {
  sl_server *s = server;
  sl_reads_run();
  sl_accept_run();
  sl_server_flush(s);
  bury(s);
  sl_server_flush(s);
  sl_busypoll_turn(&s->busy, s->cfg.busy_poll_us, sl_reads_count());
}

static void on_check(uv_check_t *h) { end_turn(h->data); }

/* A quiet client gives back what can be made again on its next message:
 * its reusable ctx (a waiting handler keeps its own) and parser state. */
static void idle(sl_conn *c) {
  if (c->ctx) sl_ctx_unshare(sl_vm_state(), c);
  if (c->tp->idle) c->tp->idle(c);
}

/* Handshake and close deadlines, liveness, and the heartbeat PING. */
static void on_tick(uv_timer_t *t) {
  sl_server *s = t->data;
  uint64_t now = sl_now_ms();
  sl_reads_tick(now);
  sl_listener_resume(&s->listener);
  sl_listener_resume(&s->tcp_listener);
  bool ping = s->cfg.heartbeat_interval && now >= s->next_ping;
  if (ping) { /* keep the rhythm: a late tick does not push every later ping */
    s->next_ping += s->cfg.heartbeat_interval;
    if (s->next_ping <= now) s->next_ping = now + s->cfg.heartbeat_interval;
  }
  for (sl_conn *c = s->conns, *next; c; c = next) {
    next = c->next;
    if (c->state == SL_CONN_CLOSED) continue;
    if (c->deadline && now >= c->deadline) {
      sl_debug("closing client %s: %s timed out", c->id[0] ? c->id : c->remote,
               c->state == SL_CONN_HTTP ? "handshake" : "close");
      sl_conn_abort(c);
    } else if (c->state == SL_CONN_OPEN) {
      if (s->cfg.heartbeat_timeout && now - c->last_seen > s->cfg.heartbeat_timeout)
        sl_conn_close(c, 1001, "heartbeat timeout");
      else if (ping)
        c->tp->ping(c);
      if (now - c->last_seen > IDLE_MS && c->state == SL_CONN_OPEN) idle(c);
    }
  }
}

sl_server *sl_server_new(uv_loop_t *loop) {
  sl_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->loop = loop;
  sl_config_defaults(&s->cfg);
  s->handlers_ref = s->self_ref = s->staged_ref = s->staged_opts_ref = -2; /* LUA_NOREF */
  s->listener.watch.fd = s->tcp_listener.watch.fd = -1;
  return s;
}

static void peer_name(sl_conn *c, const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)ss, c->remote, sizeof c->remote);
  else
    uv_ip4_name((const struct sockaddr_in *)ss, c->remote, sizeof c->remote);
}

/* A new connection on the server's list, for the accepted socket fd. */
static sl_conn *add_conn(sl_server *s, int fd, const struct sockaddr_storage *peer) {
  sl_conn *c = sl_conn_new(s, fd);
  if (!c) {
    close(fd);
    return NULL;
  }
  peer_name(c, peer);
  c->last_seen = sl_now_ms();
  c->connected_at = sl_wall_ms(); /* clientInfo.connectedAt: epoch ms, like Date.now() */
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  return c;
}

static void start_tcp_protocol(sl_conn *c) { sl_tcp_attach(c); }

static void start_ws(sl_conn *c) {
  if (c->server->tls) sl_tls_attach(c, c->server->tls, sl_http_attach);
  else sl_http_attach(c);
  if (c->state != SL_CONN_CLOSED && sl_reads_begin(c) != 0) sl_conn_abort(c);
}

static void start_tcp(sl_conn *c) {
  if (c->server->tls) sl_tls_attach(c, c->server->tls, start_tcp_protocol);
  else sl_tcp_attach(c);
  /* A client whose middleware still decides is read once it is accepted. */
  if (c->state != SL_CONN_PENDING && c->state != SL_CONN_CLOSED && sl_reads_begin(c) != 0) sl_conn_abort(c);
}

void sl_server_accepted(sl_server *s, bool tcp, int fd, const struct sockaddr_storage *peer) {
  sl_conn *c = add_conn(s, fd, peer);
  if (!c) return;
  if (tcp) start_tcp(c);
  else start_ws(c);
}

void sl_server_forget(sl_server *s, sl_conn *c) {
  if (c->prev) c->prev->next = c->next;
  else if (s->conns == c) s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  if (c->dirty) {
    sl_conn **p = &s->dirty;
    while (*p != c) p = &(*p)->dirty_next;
    *p = c->dirty_next;
  }
}

/* Said once per process: how a turn's reads and writes happen.
 * STELAR_IO_URING=0 keeps a system call per connection (where io_uring
 * misbehaves, and to test that path). */
static void open_io_batch(void) {
  static bool said;
  const char *env = getenv("STELAR_IO_URING");
  const char *why_not = env && strcmp(env, "0") == 0 ? "turned off by STELAR_IO_URING=0" : sl_iobatch_open();
  if (said) return;
  said = true;
  if (why_not) sl_info("reads and writes: one system call per connection (io_uring: %s)", why_not);
  else sl_debug("reads and writes: one io_uring submission each per loop turn");
}

int sl_server_start(sl_server *s) {
  open_io_batch();
  int r = sl_poller_open(s->loop);
  if (r < 0) return r;
  r = sl_listener_open(&s->listener, s, s->cfg.host, s->cfg.port, false);
  if (r >= 0) s->bound_port = r;
  if (r >= 0 && s->cfg.tcp_port >= 0 && (r = sl_listener_open(&s->tcp_listener, s, s->cfg.host, s->cfg.tcp_port, true)) >= 0)
    s->tcp_bound_port = r;
  if (r < 0) {
    sl_listener_close(&s->listener);
    sl_poller_close();
    return r;
  }

  s->prepare.data = s->check.data = s->tick.data = s;
  uv_prepare_init(s->loop, &s->prepare);
  uv_prepare_start(&s->prepare, on_prepare);
  uv_check_init(s->loop, &s->check);
  uv_check_start(&s->check, on_check);
  uv_timer_init(s->loop, &s->tick);
  uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
  sl_busypoll_init(&s->busy, s->cfg.busy_poll_us);
  s->turn = (sl_turn_hook){.fn = end_turn, .arg = s};
  sl_poller_hook(&s->turn);
  s->next_ping = sl_now_ms() + s->cfg.heartbeat_interval;
  s->stats.started_at = sl_now_ms();
  s->started = true;
  if (s->cfg.cluster.redis_url && !(s->cluster = sl_cluster_new(s, &s->cfg.cluster)))
    sl_error("cluster: out of memory; this node runs alone");
  return 0;
}

static void finish_drain(sl_server *s, bool forced) {
  if (!s->draining) return;
  s->draining = false;
  uv_close((uv_handle_t *)&s->drain_timer, NULL);
  if (s->drained) s->drained(s, forced);
}

void sl_server_conn_freed(sl_server *s) {
  if (s->draining && !s->conns) finish_drain(s, false);
}

void sl_server_force(sl_server *s) {
  if (!s->draining) return;
  if (s->conns) sl_warn("shutdown timeout: closing %u remaining clients", s->stats.active);
  for (sl_conn *c = s->conns; c; c = c->next) sl_conn_abort(c);
  finish_drain(s, s->conns != NULL);
}

static void on_drain_timeout(uv_timer_t *t) { sl_server_force(t->data); }

void sl_server_drain(sl_server *s, void (*drained)(sl_server *s, bool forced)) {
  if (!s->started || s->stopped || s->draining) return;
  s->draining = true;
  s->drained = drained;
  sl_listener_close(&s->listener);
  sl_listener_close(&s->tcp_listener);
  uv_timer_init(s->loop, &s->drain_timer);
  s->drain_timer.data = s;
  uv_timer_start(&s->drain_timer, on_drain_timeout, s->cfg.graceful_shutdown ? s->cfg.shutdown_timeout : 0, 0);
  for (sl_conn *c = s->conns; c; c = c->next) {
    if (!s->cfg.graceful_shutdown || c->state == SL_CONN_HTTP) sl_conn_abort(c);
    else sl_conn_close(c, 1001, "Server shutting down");
  }
  if (!s->conns) finish_drain(s, false);
}

static void bury_at_close(uv_handle_t *h) { bury(h->data); }

void sl_server_stop(sl_server *s) {
  if (!s->started || s->stopped) return;
  s->stopped = true;
  if (s->cluster) sl_cluster_stop(s->cluster); /* it frees itself once closed */
  s->cluster = NULL;
  sl_listener_close(&s->listener);
  sl_listener_close(&s->tcp_listener);
  sl_server_force(s);
  uv_close((uv_handle_t *)&s->tick, NULL);
  sl_busypoll_close(&s->busy);
  for (sl_conn *c = s->conns; c; c = c->next) sl_conn_abort(c);
  sl_server_submit_batch(); /* their closes: no turn of this server comes to run them */
  sl_poller_unhook(&s->turn);
  sl_poller_close();
  /* The closed connections are freed once this call's callers are done. */
  uv_prepare_stop(&s->prepare);
  uv_check_stop(&s->check);
  uv_close((uv_handle_t *)&s->prepare, NULL);
  uv_close((uv_handle_t *)&s->check, bury_at_close);
}

void sl_server_free(sl_server *s) {
  sl_tls_ctx_free(s->tls);
  sl_limits_free(s);
  sl_rooms_free(&s->rooms);
  sl_map_free(&s->clients);
  sl_config_free(&s->cfg);
  free(s);
}
