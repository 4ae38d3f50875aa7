/* The self-test's server: a forked process that answers the handshake
 * (101, or the TCP CONNECT frame) and sends every frame straight back -
 * no JSON, no Lua, one io_uring batch of reads and one of writes per turn. A generator
 * figure measured against it is the generator's own ceiling.
 *
 * For fanout it keeps one room: a join (WebSocket "join-room", TCP JOIN) is
 * answered "joined-room", and a "shout" goes as it came to every member
 * but the sender, who gets "sent" - what bench_server.lua does, told apart
 * by the event name's bytes instead of a JSON parse. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../../src/iobatch.h"
#include "bench.h"
#include "wire.h"

/* Small enough that malloc serves it from the heap rather than a fresh mmap
 * per connection (which made the mirror slower at accepting than the
 * generator is at connecting). */
#define MIRROR_BUF (16 * 1024)

typedef struct mconn {
  uv_tcp_t tcp;
  uv_write_t write_req;
  bool ws, upgraded, writing, dirty, closing, close_after_write;
  struct mconn *next_dirty;
  uint8_t in[MIRROR_BUF], out[MIRROR_BUF];
  size_t in_len, out_head, out_len, write_end;
  int read_ticket; /* its read in the turn's io_uring batch, or -1 */
  int member;      /* its place in room[], or -1 */
} mconn;

static uv_loop_t mirror_loop, *loop = &mirror_loop;
static uv_tcp_t ws_listener, tcp_listener;
static uv_check_t flusher;
static mconn *dirty_head;
static mconn **room;
static int room_len, room_cap;

static bool room_join(mconn *m) {
  if (m->member >= 0) return true;
  if (room_len == room_cap) {
    int cap = room_cap ? room_cap * 2 : 64;
    mconn **grown = realloc(room, (size_t)cap * sizeof *grown);
    if (!grown) return false;
    room = grown, room_cap = cap;
  }
  m->member = room_len;
  room[room_len++] = m;
  return true;
}

static void room_leave(mconn *m) {
  if (m->member < 0) return;
  room[m->member] = room[--room_len];
  room[m->member]->member = m->member;
  m->member = -1;
}

static void mirror_closed(uv_handle_t *h) { free(h->data); }

static void mirror_close(mconn *m) {
  if (m->closing) return;
  m->closing = true;
  room_leave(m);
  sl_iobatch_cancel(m->read_ticket); /* uv_close closes the socket at once */
  m->read_ticket = -1;
  uv_close((uv_handle_t *)&m->tcp, mirror_closed);
}

/* Room for n bytes, or NULL when a client outruns the buffer (then it is closed). */
static uint8_t *mirror_reserve(mconn *m, size_t n) {
  if (m->out_len + n > MIRROR_BUF && !m->writing && m->out_head) {
    memmove(m->out, m->out + m->out_head, m->out_len - m->out_head);
    m->out_len -= m->out_head, m->out_head = 0;
  }
  if (m->out_len + n > MIRROR_BUF) return NULL;
  if (!m->dirty) m->dirty = true, m->next_dirty = dirty_head, dirty_head = m;
  return m->out + m->out_len;
}

static void mirror_put(mconn *m, const void *p, size_t n) {
  uint8_t *dst = mirror_reserve(m, n);
  if (!dst) return mirror_close(m);
  memcpy(dst, p, n);
  m->out_len += n;
}

static void mirror_ws_frame(mconn *m, uint8_t opcode, const void *payload, size_t len) {
  uint8_t *dst = mirror_reserve(m, WS_MAX_HEADER + len);
  if (!dst) return mirror_close(m);
  m->out_len += ws_write_frame(dst, opcode, payload, len, false, 0);
}

static void mirror_tcp_frame(mconn *m, uint8_t type, const char *event, size_t event_len, const void *p, size_t n) {
  uint8_t *dst = mirror_reserve(m, TCP_HEADER + event_len + n);
  if (!dst) return mirror_close(m);
  m->out_len += tcp_write_frame(dst, type, event, event_len, p, n);
}

static bool text_starts(const uint8_t *p, size_t n, const char *prefix) {
  size_t len = strlen(prefix);
  return n >= len && memcmp(p, prefix, len) == 0;
}

/* The generator writes "event" first in every envelope. */
static bool ws_room_event(mconn *m, const ws_frame *f) {
  static const char joined[] = "{\"event\":\"joined-room\",\"data\":\"bench\"}";
  static const char sent[] = "{\"event\":\"sent\",\"data\":true}";
  const uint8_t *p = f->payload;
  size_t n = (size_t)f->payload_len;
  if (f->opcode != WS_TEXT) return false;
  if (text_starts(p, n, "{\"event\":\"join-room\"")) {
    if (room_join(m)) mirror_ws_frame(m, WS_TEXT, joined, sizeof joined - 1);
    else mirror_close(m); /* the generator then fails its setup, as it should */
    return true;
  }
  if (!text_starts(p, n, "{\"event\":\"shout\"")) return false;
  for (int i = 0; i < room_len; i++)
    if (room[i] != m) mirror_ws_frame(room[i], WS_TEXT, p, n);
  mirror_ws_frame(m, WS_TEXT, sent, sizeof sent - 1);
  return true;
}

static bool tcp_room_event(mconn *m, const tcp_frame *f) {
  if (f->type == TCP_JOIN) {
    if (room_join(m)) mirror_tcp_frame(m, TCP_JSON, "joined-room", 11, "\"bench\"", 7);
    else mirror_close(m);
    return true;
  }
  if (f->type != TCP_JSON || f->event_len != 5 || memcmp(f->event, "shout", 5) != 0) return false;
  for (int i = 0; i < room_len; i++)
    if (room[i] != m) mirror_tcp_frame(room[i], TCP_JSON, "shout", 5, f->payload, f->payload_len);
  mirror_tcp_frame(m, TCP_JSON, "sent", 4, "true", 4);
  return true;
}

static long mirror_ws_input(mconn *m, uint8_t *p, size_t n) {
  ws_frame f;
  int r = ws_parse_frame(p, n, &f);
  if (r <= 0) return r;
  ws_unmask(&f);
  if (ws_room_event(m, &f)) return (long)f.frame_len;
  if (f.opcode != WS_PONG)
    mirror_ws_frame(m, f.opcode == WS_PING ? WS_PONG : f.opcode, f.payload, (size_t)f.payload_len);
  if (f.opcode == WS_CLOSE) m->close_after_write = true;
  return (long)f.frame_len;
}

static long mirror_tcp_input(mconn *m, uint8_t *p, size_t n) {
  tcp_frame f;
  int r = tcp_parse_frame(p, n, MIRROR_BUF, &f);
  if (r <= 0) return r;
  if (tcp_room_event(m, &f)) return (long)f.frame_len;
  uint8_t type = f.type == TCP_ACK_REQ ? TCP_ACK_RES : f.type == TCP_PING ? TCP_PONG : f.type;
  mirror_tcp_frame(m, type, f.event, f.event_len, f.payload, f.payload_len);
  return (long)f.frame_len;
}

static size_t mirror_upgrade(mconn *m) {
  size_t end = http_head_end(m->in, m->in_len);
  if (!end) return 0;
  static const char answer[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Accept: unchecked\r\n\r\n";
  mirror_put(m, answer, sizeof answer - 1);
  m->upgraded = true;
  return end;
}

static void mirror_input(mconn *m) {
  size_t pos = 0;
  if (m->ws && !m->upgraded && (pos = mirror_upgrade(m)) == 0) return;
  while (pos < m->in_len && !m->closing) {
    long used = m->ws ? mirror_ws_input(m, m->in + pos, m->in_len - pos)
                      : mirror_tcp_input(m, m->in + pos, m->in_len - pos);
    if (used < 0) return mirror_close(m);
    if (used == 0) break;
    pos += (size_t)used;
  }
  memmove(m->in, m->in + pos, m->in_len - pos);
  m->in_len -= pos;
}

static void mirror_got(mconn *m, ssize_t n) {
  if (n <= 0) return mirror_close(m); /* a hang-up, or a frame bigger than the buffer */
  m->in_len += (size_t)n;
  mirror_input(m);
}

static void mirror_batch_read(void *conn, ssize_t n) {
  mconn *m = conn;
  m->read_ticket = -1;
  if (!m->closing && n != -EAGAIN) mirror_got(m, n);
}

/* The read joins the turn's batch (as the server's): an empty buffer makes
 * libuv skip its own. Where it cannot, libuv reads at once. */
static void mirror_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  mconn *m = h->data;
  *buf = uv_buf_init(NULL, 0);
  if (m->read_ticket >= 0 || m->in_len == MIRROR_BUF) return; /* in the batch, or a frame too big */
  uint8_t *dst = m->in + m->in_len;
  size_t room = MIRROR_BUF - m->in_len;
  uv_os_fd_t fd;
  if (uv_fileno(h, &fd) == 0 && (m->read_ticket = sl_iobatch_read(fd, dst, room, mirror_batch_read, m)) >= 0) return;
  *buf = uv_buf_init((char *)dst, (unsigned)room);
}

static void mirror_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  mconn *m = s->data;
  if (nread == UV_ENOBUFS && m->read_ticket >= 0) return; /* read in the turn's batch */
  if (nread != 0) mirror_got(m, nread);
}

static void mirror_written(uv_write_t *req, int status) {
  mconn *m = req->data;
  m->writing = false;
  if (status < 0) return mirror_close(m);
  m->out_head = m->write_end;
  if (m->out_head == m->out_len) m->out_head = m->out_len = 0;
  if (m->close_after_write && m->out_len == 0) mirror_close(m);
  else if (!m->dirty) m->dirty = true, m->next_dirty = dirty_head, dirty_head = m;
}

static void mirror_flush(mconn *m) {
  if (m->closing || m->writing) return;
  if (m->out_head == m->out_len) {
    m->out_head = m->out_len = 0;
    if (m->close_after_write) mirror_close(m);
    return;
  }
  uv_buf_t buf = uv_buf_init((char *)m->out + m->out_head, (unsigned)(m->out_len - m->out_head));
  int r = uv_try_write((uv_stream_t *)&m->tcp, &buf, 1);
  if (r < 0 && r != UV_EAGAIN) return mirror_close(m);
  if (r > 0) m->out_head += (size_t)r;
  if (m->out_head == m->out_len) {
    m->out_head = m->out_len = 0;
    if (m->close_after_write) mirror_close(m);
    return;
  }
  buf = uv_buf_init((char *)m->out + m->out_head, (unsigned)(m->out_len - m->out_head));
  m->write_end = m->out_len;
  m->writing = true;
  m->write_req.data = m;
  if (uv_write(&m->write_req, (uv_stream_t *)&m->tcp, &buf, 1, mirror_written) < 0) mirror_close(m);
}

static void mirror_batch_sent(void *conn, ssize_t r) {
  mconn *m = conn;
  m->writing = false;
  if (m->closing) return;
  if (r < 0 && r != UV_EAGAIN) return mirror_close(m);
  if (r > 0) m->out_head += (size_t)r;
  mirror_flush(m); /* the rest, if any, waits in a uv_write */
}

/* Every connection's echo of the turn in one io_uring batch, as the server sends. */
static void mirror_flush_batched(mconn *m) {
  uv_os_fd_t fd;
  uv_buf_t buf = uv_buf_init((char *)m->out + m->out_head, (unsigned)(m->out_len - m->out_head));
  bool ready = !m->closing && !m->writing && m->out_head < m->out_len && uv_fileno((uv_handle_t *)&m->tcp, &fd) == 0;
  if (ready && sl_iobatch_send(fd, &buf, 1, mirror_batch_sent, m) >= 0) m->writing = true;
  else mirror_flush(m);
}

static void mirror_check(uv_check_t *h) {
  (void)h;
  sl_iobatch_submit(); /* the turn's reads, which queue their echoes */
  while (dirty_head) {
    while (dirty_head && !sl_iobatch_full()) {
      mconn *m = dirty_head;
      dirty_head = m->next_dirty;
      m->dirty = false;
      mirror_flush_batched(m);
    }
    sl_iobatch_submit();
  }
}

static void mirror_accept(uv_stream_t *listener, int status) {
  if (status < 0) return;
  mconn *m = calloc(1, sizeof *m);
  if (!m) return;
  m->read_ticket = -1;
  m->member = -1;
  uv_tcp_init(loop, &m->tcp);
  m->tcp.data = m;
  if (uv_accept(listener, (uv_stream_t *)&m->tcp) != 0) return mirror_close(m);
  uv_tcp_nodelay(&m->tcp, 1);
  m->ws = listener == (uv_stream_t *)&ws_listener;
  if (!m->ws) mirror_tcp_frame(m, TCP_CONNECT, "connect", 7, "mirror", 6);
  uv_read_start((uv_stream_t *)&m->tcp, mirror_alloc, mirror_read);
}

static int mirror_listen(uv_tcp_t *l) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(loop, l);
  if (uv_tcp_bind(l, (const struct sockaddr *)&addr, 0) || uv_listen((uv_stream_t *)l, 4096, mirror_accept) ||
      uv_tcp_getsockname(l, (struct sockaddr *)&bound, &len))
    return -1;
  return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

/* The other core from the generator's when there are two. */
static void pin_to_cpu0(void) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof set, &set);
}

static void mirror_main(int report_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  pin_to_cpu0();
  uv_loop_init(loop);
  int ports[2] = {mirror_listen(&ws_listener), mirror_listen(&tcp_listener)};
  ssize_t w = write(report_fd, ports, sizeof ports);
  close(report_fd);
  if (w != sizeof ports || ports[0] < 0 || ports[1] < 0) _exit(1);
  sl_iobatch_open(); /* without it, a read and a write per connection */
  uv_check_init(loop, &flusher);
  uv_check_start(&flusher, mirror_check);
  uv_run(loop, UV_RUN_DEFAULT);
  _exit(0);
}

int mirror_spawn(int *ws_port, int *tcp_port, int *pid) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    close(fds[0]);
    mirror_main(fds[1]);
  }
  close(fds[1]);
  int ports[2];
  ssize_t r = read(fds[0], ports, sizeof ports);
  close(fds[0]);
  if (r != sizeof ports || ports[0] <= 0 || ports[1] <= 0) return -1;
  *ws_port = ports[0], *tcp_port = ports[1], *pid = child;
  return 0;
}
