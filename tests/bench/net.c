/* Connections of the load generator: connect (from a chosen 127.0.0.x),
 * the WebSocket upgrade or the TCP CONNECT frame, parsing replies where
 * they were read, and the outbound buffer that leaves in one write per
 * loop turn. */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../src/iobatch.h"
#include "bench.h"
#include "wire.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* No bench frame comes near this; a larger one means a broken stream. */
#define MAX_INBOUND_FRAME (64u << 20)
#define ERRORS_SHOWN 10

static uint64_t errors_shown;

void bench_error(bench *b, const char *fmt, ...) {
  b->errors++;
  if (errors_shown++ >= ERRORS_SHOWN) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "stelar-bench: error: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, errors_shown == ERRORS_SHOWN ? " (further errors are only counted)\n" : "\n");
  va_end(ap);
}

uint32_t bench_random(bench *b) { /* xorshift32: masks and keys need variety, not secrecy */
  uint32_t x = b->rng;
  x ^= x << 13, x ^= x >> 17, x ^= x << 5;
  return b->rng = x;
}

void conn_init(bench *b, bconn *c, int index, int role, size_t in_cap, size_t out_cap) {
  memset(c, 0, sizeof *c);
  c->b = b;
  c->index = index;
  c->role = role;
  c->target = &b->target;
  c->in_cap = in_cap;
  c->out_cap = out_cap;
  c->read_ticket = -1;
  c->in = malloc(in_cap);
  c->out = malloc(out_cap);
  if (!c->in || !c->out) {
    fprintf(stderr, "stelar-bench: out of memory\n");
    exit(2);
  }
}

/* ---- outbound ---- */

static void mark_dirty(bconn *c) {
  if (c->dirty) return;
  c->dirty = true;
  c->next_dirty = c->b->dirty_head;
  c->b->dirty_head = c;
}

/* Room for n more bytes at the end of the outbound buffer, or NULL. */
static uint8_t *reserve(bconn *c, size_t n) {
  if (c->out_len + n > c->out_cap && !c->writing && c->out_head > 0) {
    memmove(c->out, c->out + c->out_head, c->out_len - c->out_head);
    c->out_len -= c->out_head;
    c->out_head = 0;
  }
  if (c->out_len + n > c->out_cap) {
    bench_error(c->b, "connection %d: outbound buffer full (%zu bytes)", c->index, c->out_cap);
    return NULL;
  }
  return c->out + c->out_len;
}

static void commit(bconn *c, size_t n) {
  c->out_len += n;
  mark_dirty(c);
}

bool conn_send_ws(bconn *c, uint8_t opcode, const void *payload, size_t len) {
  uint8_t *dst = reserve(c, WS_MAX_HEADER + len);
  if (!dst) return false;
  commit(c, ws_write_frame(dst, opcode, payload, len, true, bench_random(c->b)));
  return true;
}

bool conn_send_tcp(bconn *c, uint8_t type, const char *event, const void *payload, size_t len) {
  size_t event_len = event ? strlen(event) : 0;
  uint8_t *dst = reserve(c, TCP_HEADER + event_len + len);
  if (!dst) return false;
  commit(c, tcp_write_frame(dst, type, event, event_len, payload, len));
  return true;
}

/* The body is assembled in the bench's scratch buffer, then framed (and,
 * for WebSocket, masked) in one pass into the outbound buffer. */
bool conn_send_template(bconn *c, const msg_template *t, uint64_t stamp, uint64_t id) {
  uint8_t *s = c->b->scratch;
  size_t n = 0;
  memcpy(s, t->prefix, t->prefix_len), n += t->prefix_len;
  n += u64_to_dec((char *)s + n, stamp);
  memcpy(s + n, t->middle, t->middle_len), n += t->middle_len;
  if (t->with_id) {
    n += u64_to_dec((char *)s + n, id);
    memcpy(s + n, t->suffix, t->suffix_len), n += t->suffix_len;
  }
  if (c->b->opt.transport == TRANSPORT_WS) return conn_send_ws(c, WS_TEXT, s, n);
  return conn_send_tcp(c, t->tcp_type, t->event, s, n);
}

static void on_write(uv_write_t *req, int status) {
  bconn *c = req->data;
  c->writing = false;
  if (status < 0) {
    if (status != UV_ECANCELED && c->state != CONN_CLOSING && bench_running(c->b))
      bench_error(c->b, "connection %d: write: %s", c->index, uv_strerror(status));
    conn_close(c);
    return;
  }
  c->out_head = c->write_end;
  if (c->out_head == c->out_len) c->out_head = c->out_len = 0;
  else mark_dirty(c);
}

/* One uv_try_write of everything queued; a uv_write only for what the
 * socket did not take. */
static void flush(bconn *c) {
  if (c->writing || c->closing || c->out_head == c->out_len) return;
  if (c->state == CONN_IDLE || c->state == CONN_CONNECTING) return;
  uv_buf_t buf = uv_buf_init((char *)c->out + c->out_head, (unsigned)(c->out_len - c->out_head));
  int r = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (r < 0 && r != UV_EAGAIN) {
    if (c->state != CONN_CLOSING && bench_running(c->b))
      bench_error(c->b, "connection %d: write: %s", c->index, uv_strerror(r));
    conn_close(c);
    return;
  }
  if (r > 0) c->out_head += (size_t)r;
  if (c->out_head == c->out_len) {
    c->out_head = c->out_len = 0;
    return;
  }
  buf = uv_buf_init((char *)c->out + c->out_head, (unsigned)(c->out_len - c->out_head));
  c->write_end = c->out_len;
  c->writing = true;
  c->write_req.data = c;
  r = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (r < 0) {
    c->writing = false;
    bench_error(c->b, "connection %d: write: %s", c->index, uv_strerror(r));
    conn_close(c);
  }
}

/* A batched send's result (iobatch.h): as uv_try_write's, then the rest waits. */
static void batch_sent(void *conn, ssize_t r) {
  bconn *c = conn;
  c->writing = false;
  if (c->closing) return;
  if (r < 0 && r != UV_EAGAIN) {
    if (c->state != CONN_CLOSING && bench_running(c->b))
      bench_error(c->b, "connection %d: write: %s", c->index, uv_strerror((int)r));
    conn_close(c);
    return;
  }
  if (r > 0) c->out_head += (size_t)r;
  if (c->out_head == c->out_len) c->out_head = c->out_len = 0;
  else flush(c);
}

/* Into the turn's io_uring batch, or written at once where there is none. */
static void flush_batched(bconn *c) {
  uv_os_fd_t fd;
  bool ready = !c->writing && !c->closing && c->out_head < c->out_len && c->state != CONN_IDLE &&
               c->state != CONN_CONNECTING && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0;
  uv_buf_t buf = uv_buf_init((char *)c->out + c->out_head, (unsigned)(c->out_len - c->out_head));
  if (ready && sl_iobatch_send(fd, &buf, 1, batch_sent, c) >= 0) c->writing = true;
  else flush(c);
}

/* Runs after every poll: this turn's reads, then what they queued, every
 * connection's bytes in one system call each (as the server does). */
static void on_check(uv_check_t *h) {
  bench *b = h->data;
  b->now_ns = uv_hrtime();
  sl_iobatch_submit(); /* the turn's reads, which queue what answers them */
  while (b->dirty_head) {
    while (b->dirty_head && !sl_iobatch_full()) {
      bconn *c = b->dirty_head;
      b->dirty_head = c->next_dirty;
      c->dirty = false;
      flush_batched(c);
    }
    sl_iobatch_submit();
  }
}

void net_start(bench *b) {
  const char *why_not = sl_iobatch_open();
  if (why_not) fprintf(stderr, "stelar-bench: one read and one write per connection (io_uring: %s)\n", why_not);
  uv_check_init(b->loop, &b->flusher);
  b->flusher.data = b;
  uv_check_start(&b->flusher, on_check);
}

/* ---- closing ---- */

static void on_closed(uv_handle_t *h) {
  bconn *c = h->data;
  c->closing = false;
  c->writing = false;
  c->state = CONN_IDLE;
  c->b->ops->on_closed(c);
}

void conn_close(bconn *c) {
  if (c->closing || c->state == CONN_IDLE) return;
  c->closing = true;
  sl_iobatch_cancel(c->read_ticket); /* uv_close closes the socket at once */
  c->read_ticket = -1;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void conn_begin_close(bconn *c) {
  if (c->b->opt.transport == TRANSPORT_TCP) return conn_close(c);
  static const uint8_t normal_closure[2] = {0x03, 0xE8}; /* 1000 */
  conn_send_ws(c, WS_CLOSE, normal_closure, sizeof normal_closure);
  c->state = CONN_CLOSING;
}

/* ---- inbound ---- */

static void deliver(bconn *c, uint8_t tcp_type, const char *event, size_t event_len, const uint8_t *body,
                    size_t body_len) {
  message m = {tcp_type, event, event_len, body, body_len};
  c->b->ops->on_message(c, &m);
}

static void opened(bconn *c) {
  c->state = CONN_OPEN;
  c->b->ops->on_open(c);
}

static void server_closed(bconn *c, const ws_frame *f) {
  unsigned code = f->payload_len >= 2 ? (unsigned)f->payload[0] << 8 | f->payload[1] : 0;
  int reason_len = f->payload_len > 2 ? (int)f->payload_len - 2 : 0;
  if (bench_running(c->b))
    bench_error(c->b, "connection %d: server closed it: %u %.*s", c->index, code, reason_len,
                (const char *)f->payload + 2);
  conn_close(c);
}

static void ws_frame_arrived(bconn *c, ws_frame *f) {
  if (f->masked) return bench_error(c->b, "connection %d: masked server frame", c->index);
  switch (f->opcode) {
  case WS_TEXT: {
    if (!f->fin) return bench_error(c->b, "connection %d: fragmented message (unsupported)", c->index);
    const char *event;
    size_t event_len;
    if (!envelope_event(f->payload, (size_t)f->payload_len, &event, &event_len))
      return bench_error(c->b, "connection %d: message without an event: %.*s", c->index,
                         (int)(f->payload_len < 60 ? f->payload_len : 60), (const char *)f->payload);
    return deliver(c, 0, event, event_len, f->payload, (size_t)f->payload_len);
  }
  case WS_PING: conn_send_ws(c, WS_PONG, f->payload, (size_t)f->payload_len); return;
  case WS_PONG: return;
  case WS_CLOSE:
    if (c->state != CONN_CLOSING) server_closed(c, f);
    return; /* after our own close frame: wait for the server to hang up */
  default: bench_error(c->b, "connection %d: unexpected opcode %u", c->index, f->opcode);
  }
}

static void tcp_frame_arrived(bconn *c, tcp_frame *f) {
  switch (f->type) {
  case TCP_CONNECT:
    if (c->state == CONN_HANDSHAKE) opened(c);
    return;
  case TCP_PING: conn_send_tcp(c, TCP_PONG, NULL, NULL, 0); return;
  case TCP_PONG:
  case TCP_DISCONNECT: return;
  case TCP_ERROR:
    bench_error(c->b, "connection %d: server sent ERROR: %.*s", c->index, (int)f->payload_len,
                (const char *)f->payload);
    return;
  default: deliver(c, f->type, f->event, f->event_len, f->payload, f->payload_len);
  }
}

/* Parses one frame at p; returns the bytes used, 0 when incomplete, -1 on garbage. */
static long next_frame(bconn *c, uint8_t *p, size_t n) {
  if (c->b->opt.transport == TRANSPORT_WS) {
    ws_frame f;
    int r = ws_parse_frame(p, n, &f);
    if (r <= 0) return r;
    ws_frame_arrived(c, &f);
    return (long)f.frame_len;
  }
  tcp_frame f;
  int r = tcp_parse_frame(p, n, MAX_INBOUND_FRAME, &f);
  if (r <= 0) return r;
  tcp_frame_arrived(c, &f);
  return (long)f.frame_len;
}

/* The 101 (or a refusal) opens every WebSocket stream; returns where frames begin. */
static long upgrade_answer(bconn *c) {
  size_t end = http_head_end(c->in, c->in_len);
  if (end == 0) return 0;
  if (!http_is_switching(c->in, end)) {
    const uint8_t *eol = memchr(c->in, '\r', end);
    bench_error(c->b, "connection %d: upgrade refused: %.*s", c->index, (int)(eol - c->in), (const char *)c->in);
    conn_close(c);
    return -1;
  }
  opened(c);
  return (long)end;
}

static void process_input(bconn *c) {
  size_t pos = 0;
  if (c->state == CONN_HANDSHAKE && c->b->opt.transport == TRANSPORT_WS) {
    long used = upgrade_answer(c);
    if (used <= 0) return;
    pos = (size_t)used;
  }
  while (pos < c->in_len && !c->closing) {
    long used = next_frame(c, c->in + pos, c->in_len - pos);
    if (used == 0) break;
    if (used < 0) {
      bench_error(c->b, "connection %d: malformed frame from the server", c->index);
      conn_close(c);
      return;
    }
    pos += (size_t)used;
  }
  if (c->closing) return;
  memmove(c->in, c->in + pos, c->in_len - pos);
  c->in_len -= pos;
}

static void hung_up(bconn *c, ssize_t why) {
  if (c->state != CONN_CLOSING && bench_running(c->b))
    bench_error(c->b, "connection %d: %s by the server", c->index,
                why == UV_EOF ? "closed" : uv_strerror((int)why));
  conn_close(c);
}

/* Bytes read into c->in (n > 0), its end (0) or a failure (libuv's code). */
static void got(bconn *c, ssize_t n) {
  if (n <= 0) return hung_up(c, n == 0 ? UV_EOF : n);
  c->b->reads++;
  c->in_len += (size_t)n;
  process_input(c);
}

static void batch_read_done(void *conn, ssize_t n) {
  bconn *c = conn;
  c->read_ticket = -1;
  if (c->closing || n == -EAGAIN) return;
  got(c, n);
}

/* Reads land straight in the connection's buffer; it grows only for a
 * frame bigger than the whole buffer, which the bench's own never are.
 * The read joins the turn's batch (iobatch.h), as the server's do: an
 * empty buffer makes libuv skip its own (UV_ENOBUFS). Where it cannot,
 * libuv reads at once. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  bconn *c = h->data;
  *buf = uv_buf_init(NULL, 0);
  if (c->read_ticket >= 0) return; /* already in the batch */
  if (c->in_len == c->in_cap) {
    size_t cap = c->in_cap * 2;
    uint8_t *in = cap <= MAX_INBOUND_FRAME ? realloc(c->in, cap) : NULL;
    if (!in) return; /* on_read reports it */
    c->in = in, c->in_cap = cap;
  }
  uint8_t *dst = c->in + c->in_len;
  size_t room = c->in_cap - c->in_len;
  uv_os_fd_t fd;
  if (uv_fileno(h, &fd) == 0 && (c->read_ticket = sl_iobatch_read(fd, dst, room, batch_read_done, c)) >= 0) return;
  *buf = uv_buf_init((char *)dst, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  bconn *c = s->data;
  if (nread == 0 || c->closing) return;
  if (nread == UV_ENOBUFS && c->read_ticket >= 0) return; /* read in the turn's batch */
  c->b->now_ns = uv_hrtime();
  got(c, nread); /* UV_ENOBUFS here: a frame larger than we take */
}

/* ---- connecting ---- */

static void send_upgrade(bconn *c) {
  uint8_t key[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = bench_random(c->b);
    memcpy(key + i, &r, 4);
  }
  uint8_t *dst = reserve(c, 256);
  if (!dst) return;
  size_t n = ws_upgrade_request((char *)dst, 256, ntohs(c->target->sin_port), key);
  commit(c, n);
}

static void on_connect(uv_connect_t *req, int status) {
  bconn *c = req->data;
  if (status < 0) {
    if (status != UV_ECANCELED) bench_error(c->b, "connection %d: connect: %s", c->index, uv_strerror(status));
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  c->state = CONN_HANDSHAKE;
  if (c->b->opt.transport == TRANSPORT_WS) send_upgrade(c);
}

/* Spreads connections over 127.0.0.1 .. 127.0.0.<source_addrs>: each
 * source address has its own ephemeral port range. */
static int bind_source(bconn *c, uint64_t attempt) {
  int k = c->b->opt.source_addrs;
  if (k <= 1) return 0;
  struct sockaddr_in src;
  memset(&src, 0, sizeof src);
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7F000001u + (uint32_t)(attempt % (uint64_t)k));
  uv_os_fd_t fd;
  int one = 1;
  /* Choose the port at connect time, so a port is only taken per 4-tuple. */
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  return uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
}

void conn_start(bconn *c) {
  static uint64_t attempts;
  bench *b = c->b;
  c->state = CONN_CONNECTING;
  c->in_len = c->out_head = c->out_len = 0;
  c->in_flight = 0;
  c->next_id = 0;
  c->read_ticket = -1;
  c->started_ns = uv_hrtime();
  c->attempt++;
  int r = uv_tcp_init_ex(b->loop, &c->tcp, AF_INET);
  if (r < 0) {
    c->state = CONN_IDLE;
    fprintf(stderr, "stelar-bench: cannot create a socket: %s%s\n", uv_strerror(r),
            r == UV_EMFILE ? " (raise ulimit -n)" : "");
    bench_fail(b, r == UV_EMFILE ? "out_of_descriptors" : "socket");
    return;
  }
  c->tcp.data = c;
  c->connect_req.data = c;
  r = bind_source(c, attempts++);
  if (r == 0) r = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)c->target, on_connect);
  if (r < 0) {
    bench_error(b, "connection %d: connect: %s", c->index, uv_strerror(r));
    conn_close(c);
  }
}
