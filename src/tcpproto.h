/* The stelar v3 binary TCP protocol (PROTOCOL.md §4): a streaming frame
 * decoder and encoder (pure functions over buffers, for tests and fuzzers),
 * and the transport that carries a connection over it.
 *
 *   [u32 total length][u8 type][u16 event length][event][payload]
 *   the total counts the whole frame, this 7-byte header included */
#ifndef SL_TCPPROTO_H
#define SL_TCPPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"

#define SL_TCP_HEADER 7

enum {
  SL_TCP_JSON = 0x01,
  SL_TCP_BINARY = 0x02,
  SL_TCP_PING = 0x03,
  SL_TCP_PONG = 0x04,
  SL_TCP_ACK_REQ = 0x05,
  SL_TCP_ACK_RES = 0x06,
  SL_TCP_CONNECT = 0x07,
  SL_TCP_DISCONNECT = 0x08,
  SL_TCP_JOIN = 0x09,
  SL_TCP_LEAVE = 0x0A,
  SL_TCP_ERROR = 0x0B,
};

typedef struct {
  uint8_t type;
  const char *event;
  size_t event_len;
  const uint8_t *payload;
  size_t payload_len;
} sl_tcp_frame;

typedef enum {
  SL_TCP_OK = 0,
  SL_TCP_STOPPED,        /* the callback asked to stop */
  SL_TCP_TOO_SHORT,      /* total length < 7 */
  SL_TCP_TOO_LONG,       /* total length > max_frame */
  SL_TCP_BAD_EVENT_LEN,  /* the event runs past the frame */
  SL_TCP_BAD_EVENT_NAME, /* empty where required, > 256 bytes, or outside [A-Za-z0-9-./:] */
  SL_TCP_BAD_TYPE,
  SL_TCP_NOMEM,
} sl_tcp_status;

/* Holds the part of a frame that has arrived so far. Complete frames in a
 * read are handed over where they lie; only a frame split across reads is
 * copied, once, into a buffer of its full size. */
typedef struct {
  uint8_t *buf;
  size_t len, cap;
  size_t max_frame;
} sl_tcp_decoder;

/* Returns non-zero to stop decoding (the connection is closing). */
typedef int (*sl_tcp_frame_fn)(void *ud, const sl_tcp_frame *f);

sl_tcp_status sl_tcp_decode(sl_tcp_decoder *d, const uint8_t *p, size_t n, sl_tcp_frame_fn fn, void *ud);
void sl_tcp_decoder_free(sl_tcp_decoder *d);
const char *sl_tcp_status_text(sl_tcp_status s);
/* Client-sent event names: 1-256 bytes of [A-Za-z0-9-./:]. */
bool sl_tcp_event_name_ok(const char *s, size_t n);

sl_buf *sl_tcp_frame_build(uint8_t type, const char *event, size_t event_len, const void *payload,
                           size_t payload_len);

/* Makes an accepted socket speak the TCP protocol: sends CONNECT with the
 * client's id, then hands the client to the application. */
void sl_tcp_attach(sl_conn *c);

#endif
