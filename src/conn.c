#include "conn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app.h"
#include "iobatch.h"
#include "log.h"
#include "reads.h"
#include "server.h"
#include "tls.h"

/* A batched send carries as many as a direct one. */
#define MAX_WRITE_BUFS SL_IOBATCH_MAX_BUFS

void sl_msg_release(sl_msg *m) {
  for (int i = 0; i < SL_WIRES; i++) {
    sl_buf_unref(m->wire[i]);
    m->wire[i] = NULL;
  }
}

sl_conn *sl_conn_new(sl_server *s) {
  sl_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->server = s;
  c->meta_ref = c->req_ref = c->ctx_ref = -2; /* LUA_NOREF */
  c->read_pending = -1;
  c->tcp.data = c;
  return c;
}

static void outq_release_ring(sl_outq *q) {
  if (q->items != &q->one) free(q->items);
}

static int outq_push(sl_outq *q, sl_buf *b) {
  if (q->cap == 0) {
    q->items = &q->one;
    q->cap = 1;
  }
  if (q->count == q->cap) {
    uint32_t cap = q->cap < 8 ? 8 : q->cap * 2;
    sl_buf **items = malloc(cap * sizeof *items);
    if (!items) return -1;
    for (uint32_t i = 0; i < q->count; i++) items[i] = q->items[(q->head + i) % q->cap];
    outq_release_ring(q);
    q->items = items;
    q->head = 0;
    q->cap = cap;
  }
  q->items[(q->head + q->count++) % q->cap] = b;
  q->bytes += b->len;
  return 0;
}

static void outq_pop(sl_outq *q) {
  sl_buf *b = q->items[q->head];
  q->bytes -= b->len - q->head_off;
  q->head_off = 0;
  q->head = (q->head + 1) % q->cap;
  q->count--;
  sl_buf_unref(b);
}

/* Marks n bytes as written from the front of the queue. */
static void outq_consume(sl_outq *q, size_t n) {
  while (n > 0) {
    size_t left = q->items[q->head]->len - q->head_off;
    if (n < left) {
      q->head_off += (uint32_t)n;
      q->bytes -= n;
      return;
    }
    n -= left;
    outq_pop(q);
  }
}

/* Drops everything after the first keep buffers. */
static void outq_truncate(sl_outq *q, uint32_t keep) {
  while (q->count > keep) {
    sl_buf *b = q->items[(q->head + q->count - 1) % q->cap];
    q->bytes -= b->len - (q->count == 1 ? q->head_off : 0);
    q->count--;
    sl_buf_unref(b);
  }
}

static void outq_free(sl_outq *q) {
  while (q->count) outq_pop(q);
  outq_release_ring(q);
  memset(q, 0, sizeof *q);
}

static uint32_t outq_bufs(const sl_outq *q, uv_buf_t *bufs, uint32_t max) {
  uint32_t n = q->count < max ? q->count : max;
  for (uint32_t i = 0; i < n; i++) {
    sl_buf *b = q->items[(q->head + i) % q->cap];
    uint32_t off = i == 0 ? q->head_off : 0;
    bufs[i] = uv_buf_init(b->data + off, b->len - off);
  }
  return n;
}

void sl_conn_enqueue(sl_conn *c, sl_buf *b) {
  if (c->tls && c->state != SL_CONN_CLOSED) return sl_tls_write(c, b);
  sl_conn_enqueue_wire(c, b);
}

void sl_conn_deliver(sl_conn *c, const char *p, size_t n) {
  if (c->state == SL_CONN_PENDING) sl_sbuf_append(&c->held_in, p, n);
  else if (c->state != SL_CONN_CLOSED) c->tp->on_read(c, p, n);
}

void sl_conn_enqueue_wire(sl_conn *c, sl_buf *b) {
  if (c->state == SL_CONN_CLOSED || outq_push(&c->q, b) != 0) {
    sl_buf_unref(b);
    return;
  }
  if (!c->dirty) {
    c->dirty = true;
    c->dirty_next = c->server->dirty;
    c->server->dirty = c;
  }
}

/* A client that stopped reading loses what it has not been sent (but the
 * frame being written, which must end whole) and is closed: the server's
 * memory does not follow a slow consumer. */
static void overflow(sl_conn *c) {
  sl_info("closing client %s: %zu bytes queued, over maxBufferedBytes", c->id, c->q.bytes);
  outq_truncate(&c->q, c->writing ? c->writing : (c->q.head_off ? 1 : 0));
  sl_conn_close(c, 1008, "Slow consumer");
}

int sl_conn_send(sl_conn *c, sl_msg *m) {
  if (!sl_conn_sending(c)) return -1;
  sl_buf *wire = m->wire[c->wire];
  if (!wire) {
    if (!(wire = m->wire[c->wire] = c->tp->encode(m, c->wire))) return -1;
    c->server->stats.frames_encoded++;
  }
  sl_conn_enqueue(c, sl_buf_ref(wire));
  c->msgs_out++;
  c->server->stats.messages_sent++;
  if (c->q.bytes > c->server->cfg.max_buffered_bytes) overflow(c);
  return 0;
}

/* A write request exists only while a write waits for a full socket, which
 * few connections do at any moment: they are pooled rather than part of
 * every connection (192 bytes each). */
#define WRITE_REQ_POOL 1024
static uv_write_t *free_reqs[WRITE_REQ_POOL];
static unsigned n_free_reqs;

static uv_write_t *take_write_req(void) {
  return n_free_reqs ? free_reqs[--n_free_reqs] : malloc(sizeof(uv_write_t));
}

static void give_write_req(uv_write_t *req) {
  if (n_free_reqs < WRITE_REQ_POOL) free_reqs[n_free_reqs++] = req;
  else free(req);
}

static void on_write(uv_write_t *req, int status);

static void start_write(sl_conn *c) {
  uv_buf_t bufs[MAX_WRITE_BUFS];
  uint32_t n = outq_bufs(&c->q, bufs, MAX_WRITE_BUFS);
  uv_write_t *req = take_write_req();
  if (!req) return sl_conn_abort(c);
  req->data = c;
  c->writing = n;
  if (uv_write(req, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
    give_write_req(req);
    c->writing = 0;
    sl_conn_abort(c);
  }
}

/* Accounts for a write that did not wait (r: bytes, or a libuv error).
 * Returns 1 when the socket is full, 0 when it took everything offered,
 * -1 when the connection is gone. */
static int took(sl_conn *c, ssize_t r) {
  if (r == UV_EAGAIN || r == UV_ENOSYS) return 1;
  if (r < 0) {
    sl_conn_abort(c);
    return -1;
  }
  outq_consume(&c->q, (size_t)r);
  return c->q.count && c->q.head_off;
}

/* After the writes that do not wait: the rest waits in a uv_write. */
static void finish_flush(sl_conn *c) {
  if (c->q.count)
    start_write(c);
  else if (c->tp->on_drained)
    c->tp->on_drained(c);
}

/* Writes what is queued without waiting, bufs (n of them) first, then the
 * rest in one uv_write that carries up to MAX_WRITE_BUFS buffers. */
static void flush_from(sl_conn *c, uv_buf_t *bufs, uint32_t n) {
  int full = 0;
  while (n && !full) {
    full = took(c, uv_try_write((uv_stream_t *)&c->tcp, bufs, n));
    n = full ? 0 : outq_bufs(&c->q, bufs, MAX_WRITE_BUFS);
  }
  if (full >= 0) finish_flush(c);
}

void sl_conn_flush(sl_conn *c) {
  if (c->writing || c->state == SL_CONN_CLOSED) return;
  uv_buf_t bufs[MAX_WRITE_BUFS];
  flush_from(c, bufs, outq_bufs(&c->q, bufs, MAX_WRITE_BUFS));
}

void sl_conn_flush_batched(sl_conn *c) {
  if (c->writing || c->state == SL_CONN_CLOSED) return;
  uv_os_fd_t fd;
  uv_buf_t bufs[MAX_WRITE_BUFS];
  uint32_t n = outq_bufs(&c->q, bufs, MAX_WRITE_BUFS);
  if (n && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && sl_iobatch_send(fd, bufs, n, sl_conn_batch_sent, c) >= 0)
    c->writing = n; /* as for a uv_write: nothing else writes, overflow keeps them */
  else
    flush_from(c, bufs, n);
}

void sl_conn_batch_sent(void *conn, ssize_t result) {
  sl_conn *c = conn;
  c->writing = 0;
  if (c->state == SL_CONN_CLOSED) return;
  if (took(c, result) >= 0) finish_flush(c); /* -errno is libuv's error code on Unix */
}

static void on_write(uv_write_t *req, int status) {
  sl_conn *c = req->data;
  give_write_req(req);
  uint32_t n = c->writing;
  c->writing = 0;
  if (status < 0) {
    if (c->state != SL_CONN_CLOSED) sl_conn_abort(c);
    return;
  }
  while (n--) outq_pop(&c->q);
  sl_conn_flush(c);
}

void sl_conn_close(sl_conn *c, uint16_t code, const char *reason) {
  if (c->state == SL_CONN_CLOSING || c->state == SL_CONN_CLOSED) return;
  c->tp->close(c, code, reason);
}

static void on_closed(uv_handle_t *h) {
  sl_conn *c = h->data;
  sl_server_forget(c->server, c);
  sl_app_client_gone(c);
  if (c->tp && c->tp->free) c->tp->free(c);
  sl_tls_free(c);
  outq_free(&c->q);
  sl_sbuf_free(&c->held_in);
  sl_sbuf_free(&c->req_text);
  sl_server *s = c->server;
  free(c);
  sl_server_conn_freed(s);
}

void sl_conn_abort(sl_conn *c) {
  if (c->state == SL_CONN_CLOSED) return;
  c->state = SL_CONN_CLOSED;
  sl_reads_forget(c); /* uv_close closes the socket at once */
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

#define LINGER_MS 2000

static void on_shutdown(uv_shutdown_t *req, int status) {
  sl_conn *c = req->data;
  free(req);
  if (status < 0 && c->state != SL_CONN_CLOSED) sl_conn_abort(c);
}

/* Shuts the write side now when nothing waits to be written: uv_shutdown
 * would first wait for the socket to be writable, an epoll change and a
 * loop turn each way, on every connection that closes. */
static int shut_now(sl_conn *c) {
  uv_os_fd_t fd;
  if (c->writing || c->q.count || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return 1;
  return shutdown(fd, SHUT_WR) == 0 ? 0 : -1;
}

void sl_conn_shutdown(sl_conn *c) {
  if (c->state == SL_CONN_CLOSED || c->shutting) return;
  c->shutting = true;
  c->state = SL_CONN_CLOSING;
  c->deadline = sl_now_ms() + LINGER_MS;
  int r = shut_now(c);
  if (r <= 0) {
    if (r < 0) sl_conn_abort(c);
    return;
  }
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req) return sl_conn_abort(c);
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    sl_conn_abort(c);
  }
}
