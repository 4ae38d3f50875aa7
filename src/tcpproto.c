#include "tcpproto.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "envelope.h"
#include "json.h"
#include "jsontext.h"
#include "utf8.h"
#include "log.h"
#include "lua_vm.h"
#include "server.h"

#define KEEP_BUF_MAX 65536 /* a larger partial-frame buffer is freed after use */

const char *sl_tcp_status_text(sl_tcp_status s) {
  switch (s) {
  case SL_TCP_OK: return "ok";
  case SL_TCP_STOPPED: return "stopped";
  case SL_TCP_TOO_SHORT: return "frame length below the 7-byte header";
  case SL_TCP_TOO_LONG: return "frame exceeds maxFrameSize";
  case SL_TCP_BAD_EVENT_LEN: return "event length runs past the frame";
  case SL_TCP_BAD_EVENT_NAME: return "invalid event name";
  case SL_TCP_BAD_TYPE: return "unknown frame type";
  case SL_TCP_NOMEM: return "out of memory";
  }
  return "unknown";
}

bool sl_tcp_event_name_ok(const char *s, size_t n) {
  if (n == 0 || n > SL_EVENT_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '/' || ch == ':';
    if (!ok) return false;
  }
  return true;
}

static uint32_t read_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static sl_tcp_status check_length(const sl_tcp_decoder *d, uint32_t total) {
  if (total < SL_TCP_HEADER) return SL_TCP_TOO_SHORT;
  if (total > d->max_frame) return SL_TCP_TOO_LONG;
  return SL_TCP_OK;
}

/* Validates a complete frame of total bytes at p and hands it over. */
static sl_tcp_status deliver(const uint8_t *p, uint32_t total, sl_tcp_frame_fn fn, void *ud) {
  sl_tcp_frame f = {.type = p[4]};
  f.event_len = (size_t)p[5] << 8 | p[6];
  if (SL_TCP_HEADER + f.event_len > total) return SL_TCP_BAD_EVENT_LEN;
  if (f.type < SL_TCP_JSON || f.type > SL_TCP_ERROR) return SL_TCP_BAD_TYPE;
  f.event = (const char *)p + SL_TCP_HEADER;
  f.payload = p + SL_TCP_HEADER + f.event_len;
  f.payload_len = total - SL_TCP_HEADER - f.event_len;
  bool named = f.type == SL_TCP_JSON || f.type == SL_TCP_BINARY || f.type == SL_TCP_ACK_REQ;
  if ((named || f.event_len) && !sl_tcp_event_name_ok(f.event, f.event_len)) return SL_TCP_BAD_EVENT_NAME;
  return fn(ud, &f) ? SL_TCP_STOPPED : SL_TCP_OK;
}

/* Keeps n more bytes of a frame of total bytes. The buffer grows with what
 * has arrived (doubling, up to total), not with what the header declares: a
 * client that announces frames of maxFrameSize and sends a few bytes of
 * each holds only those few bytes of our memory. */
static int hold(sl_tcp_decoder *d, const uint8_t *p, size_t n, size_t total) {
  size_t need = d->len + n;
  if (d->cap < need) {
    size_t cap = d->cap ? d->cap * 2 : 4096;
    if (cap > total) cap = total;
    if (cap < need) cap = need;
    uint8_t *b = realloc(d->buf, cap);
    if (!b) return -1;
    d->buf = b;
    d->cap = cap;
  }
  memcpy(d->buf + d->len, p, n);
  d->len += n;
  return 0;
}

static void release_held(sl_tcp_decoder *d) {
  d->len = 0;
  if (d->cap > KEEP_BUF_MAX) {
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
  }
}

/* Continues a frame that began in an earlier read; returns the bytes used. */
static sl_tcp_status resume(sl_tcp_decoder *d, const uint8_t **p, size_t *n, sl_tcp_frame_fn fn, void *ud) {
  if (d->len < SL_TCP_HEADER) {
    size_t take = SL_TCP_HEADER - d->len < *n ? SL_TCP_HEADER - d->len : *n;
    if (hold(d, *p, take, SL_TCP_HEADER)) return SL_TCP_NOMEM;
    *p += take, *n -= take;
    if (d->len < SL_TCP_HEADER) return SL_TCP_OK;
  }
  uint32_t total = read_u32(d->buf);
  sl_tcp_status st = check_length(d, total);
  if (st != SL_TCP_OK) return st;
  size_t take = total - d->len < *n ? total - d->len : *n;
  if (hold(d, *p, take, total)) return SL_TCP_NOMEM;
  *p += take, *n -= take;
  if (d->len < total) return SL_TCP_OK;
  st = deliver(d->buf, total, fn, ud);
  release_held(d);
  return st;
}

sl_tcp_status sl_tcp_decode(sl_tcp_decoder *d, const uint8_t *p, size_t n, sl_tcp_frame_fn fn, void *ud) {
  while (n > 0) {
    if (d->len > 0) {
      sl_tcp_status st = resume(d, &p, &n, fn, ud);
      if (st != SL_TCP_OK || d->len > 0) return st;
      continue;
    }
    if (n < SL_TCP_HEADER) return hold(d, p, n, SL_TCP_HEADER) ? SL_TCP_NOMEM : SL_TCP_OK;
    uint32_t total = read_u32(p);
    sl_tcp_status st = check_length(d, total);
    if (st != SL_TCP_OK) return st;
    if (n < total) return hold(d, p, n, total) ? SL_TCP_NOMEM : SL_TCP_OK;
    if ((st = deliver(p, total, fn, ud)) != SL_TCP_OK) return st;
    p += total, n -= total;
  }
  return SL_TCP_OK;
}

void sl_tcp_decoder_free(sl_tcp_decoder *d) {
  free(d->buf);
  d->buf = NULL;
  d->len = d->cap = 0;
}

sl_buf *sl_tcp_frame_build(uint8_t type, const char *event, size_t event_len, const void *payload,
                           size_t payload_len) {
  size_t total = SL_TCP_HEADER + event_len + payload_len;
  if (event_len > 0xFFFF || total > UINT32_MAX) return NULL;
  sl_buf *b = sl_buf_new(total);
  if (!b) return NULL;
  uint8_t *h = (uint8_t *)b->data;
  h[0] = (uint8_t)(total >> 24), h[1] = (uint8_t)(total >> 16), h[2] = (uint8_t)(total >> 8);
  h[3] = (uint8_t)total, h[4] = type, h[5] = (uint8_t)(event_len >> 8), h[6] = (uint8_t)event_len;
  if (event_len) memcpy(h + SL_TCP_HEADER, event, event_len);
  if (payload_len) memcpy(h + SL_TCP_HEADER + event_len, payload, payload_len);
  return b;
}

/* ---- the transport ---- */

static sl_sbuf scratch;

/* ACK_RES payload: {"data":..,"_correlationId":..} when the request had an
 * id, else the bare result; an error adds "error" (our extension). */
static int ack_payload(sl_sbuf *out, const sl_msg *m) {
  if (!m->correlation_json && !m->error) return sl_sbuf_append(out, m->data, m->data_len);
  if (m->error && !m->correlation_json)
    return sl_sbuf_puts(out, "{\"error\":") || sl_json_put_string(out, m->error, strlen(m->error)) ||
           sl_sbuf_putc(out, '}');
  if (sl_sbuf_puts(out, "{\"data\":")) return -1;
  if (m->error) {
    if (sl_sbuf_puts(out, "{\"error\":") || sl_json_put_string(out, m->error, strlen(m->error)) ||
        sl_sbuf_putc(out, '}'))
      return -1;
  } else if (sl_sbuf_append(out, m->data, m->data_len)) {
    return -1;
  }
  if (sl_sbuf_puts(out, ",\"_correlationId\":") || sl_sbuf_puts(out, m->correlation_json)) return -1;
  if (m->error && (sl_sbuf_puts(out, ",\"error\":") || sl_json_put_string(out, m->error, strlen(m->error))))
    return -1;
  return sl_sbuf_putc(out, '}');
}

static sl_buf *tcp_encode(const sl_msg *m, int wire) {
  (void)wire;
  switch (m->type) {
  case SL_MSG_EVENT: return sl_tcp_frame_build(SL_TCP_JSON, m->event, m->event_len, m->data, m->data_len);
  case SL_MSG_BINARY: return sl_tcp_frame_build(SL_TCP_BINARY, m->event, m->event_len, m->data, m->data_len);
  case SL_MSG_ACK:
    sl_sbuf_reset(&scratch);
    if (ack_payload(&scratch, m)) return NULL;
    return sl_tcp_frame_build(SL_TCP_ACK_RES, m->event, m->event_len, scratch.data, scratch.len);
  default: return NULL; /* raw WebSocket messages have no TCP form */
  }
}

static void send_frame(sl_conn *c, uint8_t type, const char *event, const void *payload, size_t len) {
  sl_buf *b = sl_tcp_frame_build(type, event, event ? strlen(event) : 0, payload, len);
  if (b) sl_conn_enqueue(c, b);
}

/* An ERROR frame with the reason, then close once it is written. */
static void fail(sl_conn *c, const char *why) {
  sl_info("closing tcp client %s: %s", c->id, why);
  send_frame(c, SL_TCP_ERROR, "error", why, strlen(why));
  c->state = SL_CONN_CLOSING;
  c->deadline = sl_now_ms() + 2000;
  sl_conn_flush(c);
}

typedef struct {
  bool wrapped;
  const char *data, *corr;
  size_t data_len, corr_len;
} ack_payload_parts;

static void take_ack_member(void *ud, const char *key, size_t key_len, const char *value, size_t value_len) {
  ack_payload_parts *a = ud;
  if (key_len == 4 && memcmp(key, "data", 4) == 0) {
    a->wrapped = true, a->data = value, a->data_len = value_len;
  } else if (key_len == 14 && memcmp(key, "_correlationId", 14) == 0) {
    a->wrapped = true, a->corr = value, a->corr_len = value_len;
  }
}

/* Payload JSON must be UTF-8 like any JSON text on the wire; its syntax is
 * checked as it is decoded. */
static bool json_payload_ok(const sl_tcp_frame *f) {
  return sl_utf8_valid((const char *)f->payload, f->payload_len);
}

/* ACK_REQ payload: {"data":..,"_correlationId":..}, or a bare value. */
static void ack_request(sl_conn *c, const sl_tcp_frame *f, const char *name) {
  const char *text = (const char *)f->payload;
  if (!json_payload_ok(f)) return sl_app_invalid(c, "invalid JSON");
  ack_payload_parts a = {0};
  if (sl_jt_object(text, f->payload_len, take_ack_member, &a) != 0 || !a.wrapped)
    return sl_app_ack_request(c, name, name, text, f->payload_len, NULL, 0);
  sl_app_ack_request(c, name, name, a.data, a.data_len, a.corr, a.corr_len);
}

static void json_event(sl_conn *c, const sl_tcp_frame *f, const char *name) {
  if (!json_payload_ok(f)) return sl_app_invalid(c, "invalid JSON");
  sl_app_event(c, name, (const char *)f->payload, f->payload_len);
}

static void room_frame(sl_conn *c, const sl_tcp_frame *f, bool join) {
  const char *room = (const char *)f->payload;
  if (f->payload_len == 0) return sl_app_invalid(c, "room name must not be empty");
  (join ? sl_app_join : sl_app_leave)(sl_vm_state(), c, room, f->payload_len, 1);
}

static int on_frame(void *ud, const sl_tcp_frame *f) {
  sl_conn *c = ud;
  if (c->state != SL_CONN_OPEN) return 1;
  char name[SL_EVENT_NAME_MAX + 1];
  memcpy(name, f->event, f->event_len);
  name[f->event_len] = '\0';
  bool message = f->type == SL_TCP_JSON || f->type == SL_TCP_BINARY || f->type == SL_TCP_ACK_REQ;
  /* JOIN and LEAVE are join-room and leave-room events, limits included. */
  const char *charged = message ? name
                        : f->type == SL_TCP_JOIN  ? "join-room"
                        : f->type == SL_TCP_LEAVE ? "leave-room"
                                                  : NULL;
  if (charged && !sl_app_received(c, charged)) return c->state != SL_CONN_OPEN;
  if (message && f->payload_len > c->server->cfg.max_payload_size) {
    sl_app_payload_too_large(c, name, f->payload_len);
    return c->state != SL_CONN_OPEN;
  }
  switch (f->type) {
  case SL_TCP_JSON: json_event(c, f, name); break;
  case SL_TCP_BINARY: sl_app_binary_event(c, name, (const char *)f->payload, f->payload_len); break;
  case SL_TCP_ACK_REQ: ack_request(c, f, name); break;
  case SL_TCP_PING: send_frame(c, SL_TCP_PONG, NULL, NULL, 0); break;
  case SL_TCP_PONG: break; /* liveness: the read itself counted */
  case SL_TCP_JOIN: room_frame(c, f, true); break;
  case SL_TCP_LEAVE: room_frame(c, f, false); break;
  case SL_TCP_DISCONNECT: sl_conn_close(c, 1000, NULL); break;
  default: sl_app_invalid(c, "frame type not sent by clients"); break;
  }
  return c->state != SL_CONN_OPEN;
}

static void tcp_read(sl_conn *c, const char *p, size_t n) {
  if (c->state != SL_CONN_OPEN) return;
  ((sl_tcp_decoder *)c->proto)->max_frame = c->server->cfg.max_frame_size; /* updateConfig */
  sl_tcp_status st = sl_tcp_decode(c->proto, (const uint8_t *)p, n, on_frame, c);
  if (st != SL_TCP_OK && st != SL_TCP_STOPPED) fail(c, sl_tcp_status_text(st));
}

/* v3 clients know DISCONNECT (a normal end) and ERROR (with a reason). */
static void tcp_close(sl_conn *c, uint16_t code, const char *reason) {
  if (code == 1000 || code == 1001 || !reason || !reason[0]) {
    send_frame(c, SL_TCP_DISCONNECT, NULL, NULL, 0);
    c->state = SL_CONN_CLOSING;
    c->deadline = sl_now_ms() + 2000;
    sl_conn_flush(c);
  } else {
    fail(c, reason);
  }
}

static void tcp_drained(sl_conn *c) {
  if (c->state == SL_CONN_CLOSING) sl_conn_shutdown(c);
}

static void tcp_ping(sl_conn *c) {
  static sl_buf *ping;
  if (!ping && !(ping = sl_tcp_frame_build(SL_TCP_PING, NULL, 0, NULL, 0))) return;
  sl_conn_enqueue(c, sl_buf_ref(ping));
}

static void tcp_free(sl_conn *c) {
  sl_tcp_decoder *d = c->proto;
  if (!d) return;
  sl_tcp_decoder_free(d);
  free(d);
  c->proto = NULL;
}

/* CONNECT tells the client its id before anything else. */
static void tcp_greet(sl_conn *c) { send_frame(c, SL_TCP_CONNECT, "connect", c->id, strlen(c->id)); }

static const sl_transport tcp_transport = {
    .name = "tcp",
    .encode = tcp_encode,
    .on_read = tcp_read,
    .greet = tcp_greet,
    .close = tcp_close,
    .ping = tcp_ping,
    .on_drained = tcp_drained,
    .free = tcp_free,
};

void sl_tcp_attach(sl_conn *c) {
  sl_tcp_decoder *d = calloc(1, sizeof *d);
  if (!d) return sl_conn_abort(c);
  d->max_frame = c->server->cfg.max_frame_size;
  c->proto = d;
  c->tp = &tcp_transport;
  c->wire = SL_WIRE_TCP;
  c->is_tcp = true;
  sl_app_client_opened(c, NULL);
}
