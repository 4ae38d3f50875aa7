#include "conn.h"

#include <errno.h>
#include <stddef.h>
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

static void mark_dirty(sl_conn *c) {
  if (c->dirty) return;
  c->dirty = true;
  c->dirty_next = c->server->dirty;
  c->server->dirty = c;
}

/* The poller's word on c's socket. Events of a closed connection are old
 * news from the batch that closed it. */
static void socket_ready(sl_watch *w, uint32_t events) {
  sl_conn *c = (sl_conn *)((char *)w - offsetof(sl_conn, watch));
  if (c->state == SL_CONN_CLOSED) return;
  if (c->wants_out && events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    c->wants_out = false; /* the flush says again if the room runs out */
    if (c->q.count && !c->writing) mark_dirty(c);
  }
  if (c->reading && events & (EPOLLIN | EPOLLERR | EPOLLHUP)) sl_reads_ready(c);
  /* A hang-up is reported whatever the set asks; one nobody waits for
   * takes the socket out of the set until someone does. */
  if (sl_conn_watch(c) != 0) sl_conn_abort(c);
}

sl_conn *sl_conn_new(sl_server *s, int fd) {
  sl_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->watch = (sl_watch){.fd = fd, .cb = socket_ready};
  c->server = s;
  c->meta_ref = c->req_ref = c->ctx_ref = -2; /* LUA_NOREF */
  c->read_pending = -1;
  return c;
}

int sl_conn_watch(sl_conn *c) {
  if (c->state == SL_CONN_CLOSED) return 0;
  /* A socket not yet in the set joins it with the turn's batch. */
  return sl_poller_watch_soon(&c->watch, (c->reading ? EPOLLIN : 0) | (c->wants_out ? EPOLLOUT : 0));
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
  if (!c->wants_out) mark_dirty(c); /* else the room, when it comes */
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

/* Sends without waiting: bytes, or -errno. */
static ssize_t send_now(sl_conn *c, const uv_buf_t *bufs, uint32_t n) {
  /* uv_buf_t is struct iovec's layout on Unix (uv.h) */
  struct msghdr msg = {.msg_iov = (struct iovec *)bufs, .msg_iovlen = n};
  ssize_t r = sendmsg(c->watch.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  return r < 0 ? -errno : r;
}

/* Accounts for a send (bytes, or -errno). Returns 1 when the socket is
 * full (c then waits for room), 0 when it took everything offered, -1
 * when the connection is gone. */
static int took(sl_conn *c, ssize_t r) {
  if (r < 0 && r != -EAGAIN) {
    sl_conn_abort(c);
    return -1;
  }
  if (r > 0) outq_consume(&c->q, (size_t)r);
  if (r >= 0 && !(c->q.count && c->q.head_off)) return 0;
  c->wants_out = true;
  if (sl_conn_watch(c) != 0) {
    sl_conn_abort(c);
    return -1;
  }
  return 1;
}

/* The queue is out: a half-close that waited for it happens, and the
 * transport hears (it may close). */
static void drained(sl_conn *c) {
  if (c->shut_pending) {
    c->shut_pending = false;
    if (shutdown(c->watch.fd, SHUT_WR) != 0) return sl_conn_abort(c);
  }
  if (c->tp->on_drained) c->tp->on_drained(c);
}

/* Sends what is queued without waiting, bufs (n of them) first. */
static void flush_from(sl_conn *c, uv_buf_t *bufs, uint32_t n) {
  int full = 0;
  while (n && !full) {
    full = took(c, send_now(c, bufs, n));
    n = full ? 0 : outq_bufs(&c->q, bufs, MAX_WRITE_BUFS);
  }
  if (full == 0) drained(c);
}

void sl_conn_flush(sl_conn *c) {
  if (c->writing || c->wants_out || c->state == SL_CONN_CLOSED) return;
  uv_buf_t bufs[MAX_WRITE_BUFS];
  flush_from(c, bufs, outq_bufs(&c->q, bufs, MAX_WRITE_BUFS));
}

void sl_conn_flush_batched(sl_conn *c) {
  if (c->writing || c->wants_out || c->state == SL_CONN_CLOSED) return;
  uv_buf_t bufs[MAX_WRITE_BUFS];
  uint32_t n = outq_bufs(&c->q, bufs, MAX_WRITE_BUFS);
  if (n && sl_iobatch_send(c->watch.fd, bufs, n, sl_conn_batch_sent, c) >= 0)
    c->writing = n; /* nothing else sends meanwhile; overflow keeps these */
  else
    flush_from(c, bufs, n);
}

void sl_conn_batch_sent(void *conn, ssize_t result) {
  sl_conn *c = conn;
  c->writing = 0;
  if (c->state == SL_CONN_CLOSED || took(c, result) != 0) return;
  if (c->q.count) mark_dirty(c); /* more than one send carries: the next batch */
  else drained(c);
}

void sl_conn_close(sl_conn *c, uint16_t code, const char *reason) {
  if (c->state == SL_CONN_CLOSING || c->state == SL_CONN_CLOSED) return;
  c->tp->close(c, code, reason);
}

void sl_conn_free(sl_conn *c) {
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
  sl_reads_forget(c);
  sl_poller_forget(&c->watch);
  sl_iobatch_close_fd(c->watch.fd);
  sl_server_closed(c->server, c);
}

#define LINGER_MS 2000

void sl_conn_shutdown(sl_conn *c) {
  if (c->state == SL_CONN_CLOSED || c->shutting) return;
  c->shutting = true;
  c->state = SL_CONN_CLOSING;
  c->deadline = sl_now_ms() + LINGER_MS;
  if (c->writing || c->q.count) c->shut_pending = true;
  else if (shutdown(c->watch.fd, SHUT_WR) != 0) sl_conn_abort(c);
}
