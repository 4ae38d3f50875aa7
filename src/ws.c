#include "ws.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "app.h"
#include "deflate.h"
#include "envelope.h"
#include "log.h"
#include "server.h"
#include "utf8.h"

#define CLOSE_WAIT_MS 2000

#define KEEP_MSG_BUF 4096 /* a larger message buffer is freed after use */

/* wslay runs without buffering data messages: we gather them ourselves, so
 * that a message costs no allocation of its own, and one that arrives in a
 * single chunk is dispatched where it lies. */
typedef struct {
  wslay_event_context_ptr ws;
  const char *in; /* the read being processed */
  size_t in_len;
  uint64_t msg_len;       /* the data message being received, so far */
  uint64_t frame_len;     /* payload length of the frame being received */
  bool in_control;        /* that frame is a control frame (wslay keeps it) */
  bool frame_fin;         /* that frame ends its message */
  sl_sbuf msg;            /* a message gathered over several chunks */
  const char *whole;      /* or the one chunk that is the whole message */
  size_t whole_len;
  bool compressed;        /* the message being received has RSV1 set */
  bool deflate;           /* permessage-deflate was negotiated: pmd holds it */
  sl_pmd pmd;
  sl_inflater *inflater;  /* made on the first compressed message */
  /* Where the input stands between frames, tracked beside wslay so that an
   * idle connection can give its wslay context (~9 KiB) back and make a new
   * one when it speaks again. */
  uint8_t hdr[14];
  uint8_t hdr_have;
  uint64_t payload_left;
  bool mid_message; /* a fragmented data message is not finished */
} ws_state;

static const struct wslay_event_callbacks callbacks;

/* The connection's receiving state, made on first use: a client that only
 * listens never needs it (nor, after a quiet second, keeps it). */
static ws_state *state(sl_conn *c) {
  if (!c->proto) c->proto = calloc(1, sizeof(ws_state));
  return c->proto;
}

/* The connection's wslay context, made again if it was given back. */
static wslay_event_context_ptr wsl(sl_conn *c) {
  ws_state *st = state(c);
  if (!st) return NULL;
  if (st->ws) return st->ws;
  if (wslay_event_context_server_init(&st->ws, &callbacks, c) != 0) return NULL;
  wslay_event_config_set_max_recv_msg_length(st->ws, UINT64_MAX >> 1); /* see on_frame_start */
  wslay_event_config_set_no_buffering(st->ws, 1);
  if (st->deflate) wslay_event_config_set_allowed_rsv_bits(st->ws, WSLAY_RSV1_BIT);
  return st->ws;
}

/* Follows frame boundaries in the bytes wslay is about to read. */
static void track_frames(ws_state *st, const uint8_t *p, size_t n) {
  while (n > 0) {
    if (st->payload_left > 0) {
      size_t take = n < st->payload_left ? n : (size_t)st->payload_left;
      st->payload_left -= take, p += take, n -= take;
      continue;
    }
    st->hdr[st->hdr_have++] = *p++, n--;
    if (st->hdr_have < 2) continue;
    uint8_t code = st->hdr[1] & 127;
    size_t need = 2 + (code == 126 ? 2 : code == 127 ? 8 : 0) + ((st->hdr[1] & 0x80) ? 4 : 0);
    if (st->hdr_have < need) continue;
    uint64_t len = code;
    if (code == 126) len = (uint64_t)st->hdr[2] << 8 | st->hdr[3];
    if (code == 127) {
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | st->hdr[2 + i];
    }
    uint8_t opcode = st->hdr[0] & 15;
    if (opcode < 8) st->mid_message = !(st->hdr[0] & 0x80);
    st->payload_left = len;
    st->hdr_have = 0;
  }
}

static sl_sbuf scratch; /* payloads are assembled here, then framed */

sl_buf *sl_ws_frame(int opcode, const void *payload, size_t len) { return sl_ws_frame_rsv1(opcode, false, payload, len); }

sl_buf *sl_ws_frame_rsv1(int opcode, bool rsv1, const void *payload, size_t len) {
  uint8_t h[10];
  size_t hl = 2;
  h[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | opcode);
  if (len < 126) {
    h[1] = (uint8_t)len;
  } else if (len <= 0xFFFF) {
    h[1] = 126, h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
    hl = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    hl = 10;
  }
  sl_buf *b = sl_buf_new(hl + len);
  if (!b) return NULL;
  memcpy(b->data, h, hl);
  if (len) memcpy(b->data + hl, payload, len);
  return b;
}

#define COMPRESS_MIN 64 /* smaller messages go uncompressed: RSV1 is per message */

/* A compressed frame of payload, when the wire is a deflate one and the
 * payload is worth it; else a plain frame. */
static sl_buf *frame_for(int wire, int opcode, const char *payload, size_t len) {
  static sl_sbuf deflated;
  if (wire < SL_WIRE_WS_DEFLATE || len < COMPRESS_MIN) return sl_ws_frame(opcode, payload, len);
  sl_sbuf_reset(&deflated);
  if (sl_deflate_message(wire - SL_WIRE_WS_DEFLATE + 9, payload, len, &deflated) != 0) return NULL;
  sl_buf *b = sl_ws_frame_rsv1(opcode, true, deflated.data, deflated.len);
  if (deflated.cap > 65536) sl_sbuf_free(&deflated);
  return b;
}

static sl_buf *ws_encode(const sl_msg *m, int wire) {
  sl_sbuf_reset(&scratch);
  int r = 0, opcode = SL_WS_TEXT;
  switch (m->type) {
  case SL_MSG_EVENT:
    r = sl_envelope_build(&scratch, m->event, m->event_len, m->data, m->data_len);
    break;
  case SL_MSG_ACK:
    r = sl_ack_reply_build(&scratch, m->event, m->event_len, m->data, m->data_len,
                           m->correlation_json, m->error);
    break;
  case SL_MSG_BINARY:
    opcode = SL_WS_BINARY;
    r = sl_binary_build(&scratch, m->event, m->event_len, m->data, m->data_len);
    break;
  case SL_MSG_RAW_BINARY: opcode = SL_WS_BINARY; /* fall through */
  case SL_MSG_RAW_TEXT: return frame_for(wire, opcode, m->data, m->data_len);
  }
  return r ? NULL : frame_for(wire, opcode, scratch.data, scratch.len);
}

/* ---- wslay callbacks ---- */

static ssize_t on_recv(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags, void *ud) {
  (void)flags;
  ws_state *st = ((sl_conn *)ud)->proto;
  if (st->in_len == 0) {
    wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < st->in_len ? len : st->in_len;
  memcpy(buf, st->in, n);
  st->in += n;
  st->in_len -= n;
  return (ssize_t)n;
}

/* Control frames wslay answers (PONG, CLOSE) join the same ordered queue. */
static ssize_t on_send(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  (void)ws, (void)flags;
  sl_conn_enqueue(ud, sl_buf_from(data, len));
  return (ssize_t)len;
}

static void too_big(wslay_event_context_ptr ws, const char *why) {
  wslay_event_queue_close(ws, WSLAY_CODE_MESSAGE_TOO_BIG, (const uint8_t *)why, strlen(why));
  wslay_event_shutdown_read(ws);
}

/* Limits are ours rather than wslay's so that they follow updateConfig and
 * fire the onPayloadTooLarge hook; wslay still buffers at most one frame
 * (bounded by maxFrameSize) of a message refused here. */
static void on_frame_start(wslay_event_context_ptr ws,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *ud) {
  sl_conn *c = ud;
  ws_state *st = c->proto;
  const sl_config *cfg = &c->server->cfg;
  if (arg->payload_length > cfg->max_frame_size) {
    sl_info("closing client %s: frame of %llu bytes exceeds maxFrameSize", c->id,
            (unsigned long long)arg->payload_length);
    return too_big(ws, "Frame too big");
  }
  st->frame_len = arg->payload_length;
  st->frame_fin = arg->fin;
  st->in_control = arg->opcode >= 8;
  if (st->in_control) return; /* control frames interleave with a message */
  if (arg->opcode != WSLAY_CONTINUATION_FRAME) st->compressed = wslay_get_rsv1(arg->rsv);
  st->msg_len = (arg->opcode == WSLAY_CONTINUATION_FRAME ? st->msg_len : 0) + arg->payload_length;
  if (st->msg_len > cfg->max_payload_size) {
    sl_app_payload_too_large(c, NULL, st->msg_len);
    too_big(ws, "Message too big");
  }
}

static void deliver(sl_conn *c, int opcode, const char *msg, size_t len);
static void deliver_inflated(sl_conn *c, wslay_event_context_ptr ws, int opcode, const char *msg, size_t len);
static void too_big(wslay_event_context_ptr ws, const char *why);

static void on_chunk(wslay_event_context_ptr ws, const struct wslay_event_on_frame_recv_chunk_arg *arg,
                     void *ud) {
  (void)ws;
  ws_state *st = ((sl_conn *)ud)->proto;
  if (st->in_control || arg->data_length == 0) return;
  bool first_and_last = st->frame_fin && st->msg_len == st->frame_len;
  if (first_and_last && st->msg.len == 0 && !st->whole && arg->data_length == st->frame_len) {
    st->whole = (const char *)arg->data; /* valid until on_msg returns */
    st->whole_len = arg->data_length;
    return;
  }
  sl_sbuf_append(&st->msg, arg->data, arg->data_length);
}

static void reset_message(ws_state *st) {
  st->whole = NULL;
  st->whole_len = 0;
  if (st->msg.cap > KEEP_MSG_BUF) sl_sbuf_free(&st->msg);
  else sl_sbuf_reset(&st->msg);
}

static void on_msg(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud) {
  sl_conn *c = ud;
  ws_state *st = c->proto;
  /* wslay has just queued the PONG: it goes now, ahead of whatever the rest
   * of this read makes handlers send (RFC 6455 5.5.2; Autobahn 5.6, 5.19). */
  if (arg->opcode == WSLAY_PING) wslay_event_send(ws);
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME) return;
  const char *msg = st->whole ? st->whole : st->msg.data ? st->msg.data : "";
  size_t len = st->whole ? st->whole_len : st->msg.len;
  /* A message refused mid-way (too big, bad UTF-8) still completes inside
   * wslay's loop: reading was shut then, and it is not dispatched. */
  if (c->state == SL_CONN_OPEN && wslay_event_get_read_enabled(ws)) {
    if (st->compressed) deliver_inflated(c, ws, arg->opcode, msg, len);
    else deliver(c, arg->opcode, msg, len);
  }
  reset_message(st);
}

/* A compressed message: inflated within maxPayloadSize (a deflate bomb is
 * refused before it is allocated), then delivered like any other. */
static void deliver_inflated(sl_conn *c, wslay_event_context_ptr ws, int opcode, const char *msg, size_t len) {
  static sl_sbuf inflated;
  ws_state *st = c->proto;
  size_t max = c->server->cfg.max_payload_size;
  sl_sbuf_reset(&inflated);
  if (!st->inflater && !(st->inflater = sl_inflater_new(st->pmd.client_max_window_bits))) return sl_conn_abort(c);
  sl_inflate_result r = sl_inflate_message(st->inflater, msg, len, max, st->pmd.client_no_context_takeover, &inflated);
  if (r == SL_INFLATE_TOO_BIG) {
    sl_app_payload_too_large(c, NULL, inflated.len);
    too_big(ws, "Message too big");
  } else if (r == SL_INFLATE_CORRUPT) {
    sl_info("closing client %s: corrupt compressed message", c->id);
    wslay_event_queue_close(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, (const uint8_t *)"Invalid compressed data", 23);
    wslay_event_shutdown_read(ws);
  } else if (opcode == WSLAY_TEXT_FRAME && !sl_utf8_valid(inflated.data, inflated.len)) {
    sl_info("closing client %s: text message is not valid UTF-8", c->id);
    wslay_event_queue_close(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, (const uint8_t *)"Invalid UTF-8", 13);
    wslay_event_shutdown_read(ws);
  } else {
    deliver(c, opcode, inflated.data ? inflated.data : "", inflated.len);
  }
  if (inflated.cap > 65536) sl_sbuf_free(&inflated);
}

/* wslay has checked the UTF-8 of an uncompressed text message (and closed
 * with 1007); it cannot see inside a compressed one: deliver_inflated does. */
static void deliver(sl_conn *c, int opcode, const char *msg, size_t len) {
  if (opcode == WSLAY_TEXT_FRAME) sl_app_text(c, msg, len);
  else sl_app_binary(c, msg, len);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_chunk,
    .on_msg_recv_callback = on_msg,
};

/* After wslay sent or received a CLOSE: stop sending and dispatching, and
 * wait for the peer's CLOSE, bounded by a deadline. */
static void follow_close(sl_conn *c, ws_state *st) {
  if (!st->ws) return;
  if (!wslay_event_get_close_sent(st->ws) && wslay_event_get_read_enabled(st->ws)) return;
  if (c->state == SL_CONN_CLOSED) return;
  if (c->state != SL_CONN_CLOSING) {
    c->state = SL_CONN_CLOSING;
    c->deadline = sl_now_ms() + CLOSE_WAIT_MS;
  }
  if (!c->q.count) c->tp->on_drained(c);
}

static void ws_read(sl_conn *c, const char *p, size_t n) {
  wslay_event_context_ptr ws = wsl(c);
  if (!ws) return sl_conn_abort(c);
  ws_state *st = c->proto;
  if (!wslay_event_get_read_enabled(ws)) return; /* draining after a close */
  track_frames(st, (const uint8_t *)p, n);
  st->in = p;
  st->in_len = n;
  int r = wslay_event_recv(ws);
  st->in_len = 0;
  if (c->state == SL_CONN_CLOSED) return;
  if (r == 0) r = wslay_event_send(ws);
  if (r != 0 && r != WSLAY_ERR_CALLBACK_FAILURE) {
    sl_conn_abort(c);
    return;
  }
  follow_close(c, st);
}

static void ws_close(sl_conn *c, uint16_t code, const char *reason) {
  wslay_event_context_ptr ws = wsl(c);
  if (!ws) return sl_conn_abort(c);
  size_t rlen = reason ? strlen(reason) : 0;
  if (rlen > 123) rlen = 123;
  wslay_event_queue_close(ws, code, (const uint8_t *)reason, rlen);
  wslay_event_send(ws);
  c->state = SL_CONN_CLOSING;
  c->deadline = sl_now_ms() + CLOSE_WAIT_MS;
  sl_conn_flush(c);
}

static void ws_drained(sl_conn *c) {
  ws_state *st = c->proto;
  if (c->state != SL_CONN_CLOSING || !st || !st->ws) return;
  /* Both CLOSE frames are through: the TCP side may go. */
  if (wslay_event_get_close_received(st->ws) || !wslay_event_get_read_enabled(st->ws))
    sl_conn_shutdown(c);
}

static void ws_ping(sl_conn *c) {
  static sl_buf *ping;
  if (!ping && !(ping = sl_ws_frame(SL_WS_PING, NULL, 0))) return;
  sl_conn_enqueue(c, sl_buf_ref(ping));
}

/* Quiet for a while and between messages: give the parser state back. */
static void ws_free(sl_conn *c) {
  ws_state *st = c->proto;
  if (!st) return;
  wslay_event_context_free(st->ws);
  sl_sbuf_free(&st->msg);
  sl_inflater_free(st->inflater);
  free(st);
  c->proto = NULL;
}

/* Quiet for a while and between messages: give the parser state back (all
 * of it, unless compression parameters must be remembered). */
static void ws_idle(sl_conn *c) {
  ws_state *st = c->proto;
  if (!st || c->state != SL_CONN_OPEN || st->hdr_have || st->payload_left || st->mid_message) return;
  if (!st->deflate) return ws_free(c);
  wslay_event_context_free(st->ws);
  st->ws = NULL;
  sl_sbuf_free(&st->msg);
  if (st->pmd.client_no_context_takeover) { /* nothing to remember between messages */
    sl_inflater_free(st->inflater);
    st->inflater = NULL;
  }
}

static const sl_transport ws_transport = {
    .name = "ws",
    .encode = ws_encode,
    .on_read = ws_read,
    .close = ws_close,
    .ping = ws_ping,
    .on_drained = ws_drained,
    .idle = ws_idle,
    .free = ws_free,
};

void sl_ws_attach(sl_conn *c) {
  c->proto = NULL; /* made on first use */
  c->tp = &ws_transport;
  c->wire = SL_WIRE_WS;
}

int sl_ws_enable_deflate(sl_conn *c, const sl_pmd *params) {
  ws_state *st = state(c);
  if (!st) return -1;
  st->pmd = *params;
  st->deflate = true;
  if (st->ws) wslay_event_config_set_allowed_rsv_bits(st->ws, WSLAY_RSV1_BIT);
  c->wire = (uint8_t)(SL_WIRE_WS_DEFLATE + params->server_max_window_bits - 9);
  return 0;
}
