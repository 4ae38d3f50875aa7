/* The load generator's codecs: pure functions over buffers, no sockets.
 * WebSocket frames (RFC 6455) both ways, the stelar binary TCP frame
 * (PROTOCOL.md §4), the HTTP upgrade, and the two scans the generator does
 * on a reply: its event name and the send timestamp it carries. */
#ifndef BENCH_WIRE_H
#define BENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2, WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA };

/* The longest header: 2 bytes, a 64-bit length, a 4-byte mask. */
#define WS_MAX_HEADER 14

typedef struct {
  bool fin;
  bool masked;
  uint8_t opcode;
  uint8_t mask[4];
  uint8_t *payload; /* still masked when `masked` */
  uint64_t payload_len;
  size_t frame_len; /* header + payload: how far to advance */
} ws_frame;

/* 1: a whole frame at p; 0: more bytes needed; -1: a length no frame may have. */
int ws_parse_frame(uint8_t *p, size_t n, ws_frame *f);
/* Unmasks a parsed frame's payload in place. */
void ws_unmask(ws_frame *f);
/* Writes a frame with FIN set; a client frame (masked) XORs the payload as
 * it copies it. dst needs WS_MAX_HEADER + len bytes. Returns bytes written. */
size_t ws_write_frame(uint8_t *dst, uint8_t opcode, const void *payload, size_t len, bool masked,
                      uint32_t mask);

#define TCP_HEADER 7
enum {
  TCP_JSON = 0x01,
  TCP_BINARY = 0x02,
  TCP_PING = 0x03,
  TCP_PONG = 0x04,
  TCP_ACK_REQ = 0x05,
  TCP_ACK_RES = 0x06,
  TCP_CONNECT = 0x07,
  TCP_DISCONNECT = 0x08,
  TCP_JOIN = 0x09,
  TCP_LEAVE = 0x0A,
  TCP_ERROR = 0x0B,
};

typedef struct {
  uint8_t type;
  const char *event;
  size_t event_len;
  uint8_t *payload;
  size_t payload_len;
  size_t frame_len;
} tcp_frame;

/* Same answers as ws_parse_frame; max_frame bounds the total length. */
int tcp_parse_frame(uint8_t *p, size_t n, size_t max_frame, tcp_frame *f);
/* dst needs TCP_HEADER + event_len + len bytes. Returns bytes written. */
size_t tcp_write_frame(uint8_t *dst, uint8_t type, const char *event, size_t event_len, const void *payload,
                       size_t len);

/* Offset just past the blank line that ends an HTTP head, or 0 while incomplete. */
size_t http_head_end(const uint8_t *p, size_t n);
bool http_is_switching(const uint8_t *p, size_t n);
/* The client's upgrade request with a base64 key made of key16. */
size_t ws_upgrade_request(char *dst, size_t cap, int port, const uint8_t key16[16]);

/* The envelope's "event" string (no unescaping: bench events are plain). */
bool envelope_event(const uint8_t *p, size_t n, const char **event, size_t *event_len);
/* The unsigned integer after key (e.g. "\"t\":"): at offset *hint when the
 * key is there (bodies of one kind share a layout, and a search per message
 * cost the generator 5-7% of its core), else after its first occurrence,
 * whose offset *hint then keeps. */
bool json_find_uint(const uint8_t *p, size_t n, const char *key, size_t key_len, size_t *hint, uint64_t *value);
/* Decimal digits of v at dst; returns their count (at most 20). */
size_t u64_to_dec(char *dst, uint64_t v);

#endif
