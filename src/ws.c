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

/* wslay's frame layer parses what clients send (headers, lengths,
 * unmasking); the message layer is ours: fragments gathered without an
 * allocation of their own (a message that arrives in one piece is
 * dispatched where it lies), text checked as UTF-8 as it arrives with a
 * word-at-a-time scan, control frames answered, the closing handshake
 * followed. */
typedef struct {
  wslay_frame_context_ptr frames;
  const char *in; /* the read being processed */
  size_t in_len;
  /* the frame being received */
  bool in_frame;
  uint8_t frame_opcode;
  bool frame_fin;         /* that frame ends its message */
  uint64_t frame_len;     /* its payload length */
  uint64_t frame_got;     /* and how much of it has come */
  /* the data message being received */
  uint8_t msg_opcode;     /* SL_WS_TEXT or SL_WS_BINARY; 0 between messages */
  uint64_t msg_len;       /* so far, by its frames' declared lengths */
  sl_sbuf msg;            /* a message gathered over several chunks */
  const char *whole;      /* or the one chunk that is the whole message */
  size_t whole_len;
  sl_utf8_stream utf8;    /* an uncompressed text message's UTF-8 so far */
  bool compressed;        /* the message has RSV1 set */
  /* a control frame's payload (at most 125 bytes, RFC 6455 5.5) */
  uint8_t control[125];
  uint8_t control_len;
  /* the closing handshake; all false (calloc) while open */
  bool close_sent, close_received;
  bool read_shut;         /* a CLOSE came or a fault was answered: nothing more is read */
  bool deflate;           /* permessage-deflate was negotiated: pmd holds it */
  sl_pmd pmd;
  sl_inflater *inflater;  /* made on the first compressed message */
  /* Bytes handed to wslay that no frame header or payload chunk has
   * accounted for yet: while there are any, wslay holds part of a header,
   * so an idle connection may give its frame parser (~4 KiB) back only
   * when this is 0 between messages. */
  uint64_t unparsed;
} ws_state;

static const struct wslay_frame_callbacks frame_callbacks;

/* The connection's receiving state, made on first use: a client that only
 * listens never needs it (nor, after a quiet second, keeps it). */
static ws_state *state(sl_conn *c) {
  if (!c->proto) c->proto = calloc(1, sizeof(ws_state));
  return c->proto;
}

/* The connection's frame parser, made again if it was given back. */
static wslay_frame_context_ptr frames(sl_conn *c) {
  ws_state *st = state(c);
  if (!st) return NULL;
  if (!st->frames && wslay_frame_context_init(&st->frames, &frame_callbacks, c) != 0) return NULL;
  return st->frames;
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

/* ---- receiving ---- */

/* wslay's frame parser reads the bytes of the read being processed. */
static ssize_t on_recv(uint8_t *buf, size_t len, int flags, void *ud) {
  (void)flags;
  ws_state *st = ((sl_conn *)ud)->proto;
  size_t n = len < st->in_len ? len : st->in_len;
  memcpy(buf, st->in, n);
  st->in += n;
  st->in_len -= n;
  st->unparsed += n;
  return (ssize_t)n; /* 0: wslay says it wants more */
}

/* Frames the server sends are built here (sl_ws_frame), never by wslay. */
static const struct wslay_frame_callbacks frame_callbacks = {.recv_callback = on_recv};

/* A control frame of ours, queued in order with everything else. */
static void send_control(sl_conn *c, int opcode, const void *payload, size_t len) {
  sl_buf *b = sl_ws_frame(opcode, payload, len);
  if (!b) return sl_conn_abort(c); /* out of memory: the client could not be answered */
  sl_conn_enqueue(c, b);
}

/* Our CLOSE, once: the status code and reason (none when code is 0). */
static void send_close(sl_conn *c, ws_state *st, uint16_t code, const char *reason, size_t len) {
  if (st->close_sent) return;
  uint8_t payload[125];
  size_t n = 0;
  if (code) {
    if (len > sizeof payload - 2) len = sizeof payload - 2;
    payload[0] = (uint8_t)(code >> 8), payload[1] = (uint8_t)code;
    if (len) memcpy(payload + 2, reason, len);
    n = 2 + len;
  }
  st->close_sent = true;
  send_control(c, SL_WS_CLOSE, payload, n);
}

/* A fault of the client's: our CLOSE with its code, and nothing more is
 * read. Protocol faults carry no reason (the code says it all). */
static void refuse(sl_conn *c, ws_state *st, uint16_t code, const char *reason) {
  send_close(c, st, code, reason, reason ? strlen(reason) : 0);
  st->read_shut = true;
}

enum { CLOSE_PROTOCOL_ERROR = 1002, CLOSE_INVALID_PAYLOAD = 1007, CLOSE_MESSAGE_TOO_BIG = 1009 };

static void reset_message(ws_state *st) {
  st->msg_opcode = 0;
  st->whole = NULL;
  st->whole_len = 0;
  if (st->msg.cap > KEEP_MSG_BUF) sl_sbuf_free(&st->msg);
  else sl_sbuf_reset(&st->msg);
}

/* What a frame's header may say here (RFC 6455 5.2-5.5; RSV1 only on the
 * first frame of a data message, and only with permessage-deflate). */
static bool frame_allowed(const ws_state *st, const struct wslay_frame_iocb *f) {
  bool rsv1 = f->rsv & WSLAY_RSV1_BIT, control = f->opcode >= 8;
  if (!f->mask || (f->rsv & ~WSLAY_RSV1_BIT)) return false;
  if (rsv1 && (!st->deflate || control || f->opcode == SL_WS_CONTINUATION)) return false;
  if (control) return f->opcode == SL_WS_CLOSE || f->opcode == SL_WS_PING || f->opcode == SL_WS_PONG;
  if (f->opcode == SL_WS_CONTINUATION) return st->msg_opcode != 0;
  return (f->opcode == SL_WS_TEXT || f->opcode == SL_WS_BINARY) && st->msg_opcode == 0;
}

/* The size of the header wslay read for f (it refuses lengths not in
 * their shortest form, so the length says which form was used). */
static size_t header_size(const struct wslay_frame_iocb *f) {
  size_t extended = f->payload_length < 126 ? 0 : f->payload_length <= 0xFFFF ? 2 : 8;
  return 2 + extended + (f->mask ? 4 : 0);
}

/* A frame's header has come: checked, and its message begun or grown.
 * Limits are ours rather than wslay's so that they follow updateConfig and
 * fire the onPayloadTooLarge hook. False when the client was refused. */
static bool frame_start(sl_conn *c, ws_state *st, const struct wslay_frame_iocb *f) {
  const sl_config *cfg = &c->server->cfg;
  st->unparsed -= header_size(f);
  if (!frame_allowed(st, f)) {
    refuse(c, st, CLOSE_PROTOCOL_ERROR, NULL);
    return false;
  }
  if (f->payload_length > cfg->max_frame_size) {
    sl_info("closing client %s: frame of %llu bytes exceeds maxFrameSize", c->id,
            (unsigned long long)f->payload_length);
    refuse(c, st, CLOSE_MESSAGE_TOO_BIG, "Frame too big");
    return false;
  }
  st->in_frame = true;
  st->frame_opcode = f->opcode;
  st->frame_fin = f->fin;
  st->frame_len = f->payload_length;
  st->frame_got = 0;
  if (f->opcode >= 8) { /* control frames interleave with a message */
    st->control_len = 0;
    return true;
  }
  if (f->opcode != SL_WS_CONTINUATION) {
    st->msg_opcode = f->opcode;
    st->compressed = f->rsv & WSLAY_RSV1_BIT;
    st->msg_len = 0;
    st->utf8 = (sl_utf8_stream){0};
  }
  st->msg_len += f->payload_length;
  if (st->msg_len > cfg->max_payload_size) {
    sl_app_payload_too_large(c, NULL, st->msg_len);
    refuse(c, st, CLOSE_MESSAGE_TOO_BIG, "Message too big");
    return false;
  }
  return true;
}

/* Part of a data frame's payload. */
static void data_chunk(sl_conn *c, ws_state *st, const uint8_t *data, size_t len) {
  if (st->msg_opcode == SL_WS_TEXT && !st->compressed && !sl_utf8_stream_feed(&st->utf8, (const char *)data, len)) {
    sl_info("closing client %s: text message is not valid UTF-8", c->id);
    return refuse(c, st, CLOSE_INVALID_PAYLOAD, NULL);
  }
  if (len == 0) return;
  if (st->frame_fin && len == st->msg_len) { /* the whole message in one piece */
    st->whole = (const char *)data; /* valid until the next wslay_frame_recv */
    st->whole_len = len;
    return;
  }
  if (sl_sbuf_append(&st->msg, data, len)) sl_conn_abort(c);
}

static void deliver(sl_conn *c, int opcode, const char *msg, size_t len);
static void deliver_inflated(sl_conn *c, ws_state *st, int opcode, const char *msg, size_t len);

/* The last frame of a data message is in. */
static void message_end(sl_conn *c, ws_state *st) {
  if (st->msg_opcode == SL_WS_TEXT && !st->compressed && !sl_utf8_stream_complete(&st->utf8)) {
    sl_info("closing client %s: text message is not valid UTF-8", c->id);
    return refuse(c, st, CLOSE_INVALID_PAYLOAD, NULL);
  }
  const char *msg = st->whole ? st->whole : st->msg.data ? st->msg.data : "";
  size_t len = st->whole ? st->whole_len : st->msg.len;
  int opcode = st->msg_opcode;
  bool compressed = st->compressed;
  if (c->state == SL_CONN_OPEN) {
    if (compressed) deliver_inflated(c, st, opcode, msg, len);
    else deliver(c, opcode, msg, len);
  }
  if (c->state != SL_CONN_CLOSED) reset_message(st);
}

bool sl_ws_close_code_valid(long long code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* The client's CLOSE: answered with its status code and reason (or an
 * empty CLOSE for an empty one), unless ours went first. */
static void close_received(sl_conn *c, ws_state *st) {
  uint16_t code = 0;
  const char *reason = NULL;
  size_t reason_len = 0;
  if (st->control_len == 1) return refuse(c, st, CLOSE_PROTOCOL_ERROR, NULL); /* half a status code */
  if (st->control_len >= 2) {
    code = (uint16_t)(st->control[0] << 8 | st->control[1]);
    reason = (const char *)st->control + 2;
    reason_len = st->control_len - 2u;
    if (!sl_ws_close_code_valid(code)) return refuse(c, st, CLOSE_PROTOCOL_ERROR, NULL);
    if (!sl_utf8_valid(reason, reason_len)) return refuse(c, st, CLOSE_INVALID_PAYLOAD, NULL);
  }
  st->close_received = true;
  send_close(c, st, code, reason, reason_len);
  st->read_shut = true;
}

static void control_end(sl_conn *c, ws_state *st) {
  switch (st->frame_opcode) {
  case SL_WS_PING: /* the PONG goes now, ahead of whatever the rest of this read makes handlers send
                    * (RFC 6455 5.5.2; Autobahn 5.6, 5.19) */
    if (!st->close_sent) send_control(c, SL_WS_PONG, st->control, st->control_len);
    break;
  case SL_WS_CLOSE: close_received(c, st); break;
  default: break; /* a PONG: the read itself counted as liveness */
  }
}

/* One piece of a frame from wslay: the frame begun, its payload taken, and
 * at its end the message or control frame finished. */
static void take_chunk(sl_conn *c, ws_state *st, const struct wslay_frame_iocb *f) {
  if (!st->in_frame && !frame_start(c, st, f)) return;
  st->unparsed -= f->data_length;
  bool control = st->frame_opcode >= 8;
  if (control) {
    memcpy(st->control + st->control_len, f->data, f->data_length); /* wslay caps it at 125 */
    st->control_len = (uint8_t)(st->control_len + f->data_length);
  } else {
    data_chunk(c, st, f->data, f->data_length);
    if (st->read_shut || c->state == SL_CONN_CLOSED) return;
  }
  st->frame_got += f->data_length;
  if (st->frame_got < st->frame_len) return;
  st->in_frame = false;
  if (control) control_end(c, st);
  else if (st->frame_fin) message_end(c, st);
}

/* A compressed message: inflated within maxPayloadSize (a deflate bomb is
 * refused before it is allocated), then delivered like any other. */
static void deliver_inflated(sl_conn *c, ws_state *st, int opcode, const char *msg, size_t len) {
  static sl_sbuf inflated;
  size_t max = c->server->cfg.max_payload_size;
  sl_sbuf_reset(&inflated);
  if (!st->inflater && !(st->inflater = sl_inflater_new(st->pmd.client_max_window_bits))) return sl_conn_abort(c);
  sl_inflate_result r = sl_inflate_message(st->inflater, msg, len, max, st->pmd.client_no_context_takeover, &inflated);
  if (r == SL_INFLATE_TOO_BIG) {
    sl_app_payload_too_large(c, NULL, inflated.len);
    refuse(c, st, CLOSE_MESSAGE_TOO_BIG, "Message too big");
  } else if (r == SL_INFLATE_CORRUPT) {
    sl_info("closing client %s: corrupt compressed message", c->id);
    refuse(c, st, CLOSE_INVALID_PAYLOAD, "Invalid compressed data");
  } else if (opcode == SL_WS_TEXT && !sl_utf8_valid(inflated.data, inflated.len)) {
    sl_info("closing client %s: text message is not valid UTF-8", c->id);
    refuse(c, st, CLOSE_INVALID_PAYLOAD, "Invalid UTF-8");
  } else {
    deliver(c, opcode, inflated.data ? inflated.data : "", inflated.len);
  }
  if (inflated.cap > 65536) sl_sbuf_free(&inflated);
}

/* An uncompressed text message's UTF-8 was checked as it came; a
 * compressed one's after inflating (deliver_inflated). */
static void deliver(sl_conn *c, int opcode, const char *msg, size_t len) {
  if (opcode == SL_WS_TEXT) sl_app_text(c, msg, len);
  else sl_app_binary(c, msg, len);
}

/* After a CLOSE went or came: stop sending and dispatching, and wait for
 * the peer's CLOSE, bounded by a deadline. */
static void follow_close(sl_conn *c, ws_state *st) {
  if (!st->close_sent && !st->read_shut) return;
  if (c->state == SL_CONN_CLOSED) return;
  if (c->state != SL_CONN_CLOSING) {
    c->state = SL_CONN_CLOSING;
    c->deadline = sl_now_ms() + CLOSE_WAIT_MS;
  }
  if (!c->q.count) c->tp->on_drained(c);
}

static void ws_read(sl_conn *c, const char *p, size_t n) {
  wslay_frame_context_ptr fr = frames(c);
  if (!fr) return sl_conn_abort(c);
  ws_state *st = c->proto;
  if (st->read_shut) return; /* draining after a close */
  st->in = p;
  st->in_len = n;
  while (!st->read_shut && c->state != SL_CONN_CLOSED) {
    struct wslay_frame_iocb f;
    ssize_t r = wslay_frame_recv(fr, &f);
    if (r == WSLAY_ERR_WANT_READ) break;
    if (r == WSLAY_ERR_PROTO) {
      refuse(c, st, CLOSE_PROTOCOL_ERROR, NULL);
      break;
    }
    if (r < 0) return sl_conn_abort(c);
    take_chunk(c, st, &f);
  }
  st->in_len = 0;
  if (c->state == SL_CONN_CLOSED) return;
  follow_close(c, st);
}

static void ws_close(sl_conn *c, uint16_t code, const char *reason) {
  ws_state *st = state(c);
  if (!st) return sl_conn_abort(c);
  send_close(c, st, code, reason, reason ? strlen(reason) : 0);
  c->state = SL_CONN_CLOSING;
  c->deadline = sl_now_ms() + CLOSE_WAIT_MS;
  sl_conn_flush(c);
}

static void ws_drained(sl_conn *c) {
  ws_state *st = c->proto;
  if (c->state != SL_CONN_CLOSING || !st) return;
  /* Both CLOSE frames are through: the client sends nothing more, so the
   * socket closes now (the kernel sends what it holds, then FIN), the server
   * first as RFC 6455 7.1.1 asks, with no half-closed wait for the client's
   * FIN. After a fault of the client's, its unread input must not turn the
   * close into a reset: half-close and wait for its end. */
  if (st->close_received) sl_conn_abort(c);
  else if (st->read_shut) sl_conn_shutdown(c);
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
  wslay_frame_context_free(st->frames);
  sl_sbuf_free(&st->msg);
  sl_inflater_free(st->inflater);
  free(st);
  c->proto = NULL;
}

/* Quiet for a while and between messages: give the parser state back (all
 * of it, unless compression parameters must be remembered). */
static void ws_idle(sl_conn *c) {
  ws_state *st = c->proto;
  if (!st || c->state != SL_CONN_OPEN || st->unparsed || st->in_frame || st->msg_opcode) return;
  if (!st->deflate) return ws_free(c);
  wslay_frame_context_free(st->frames);
  st->frames = NULL;
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
  c->wire = (uint8_t)(SL_WIRE_WS_DEFLATE + params->server_max_window_bits - 9);
  return 0;
}
