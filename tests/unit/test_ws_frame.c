/* Unit tests for the WebSocket pieces that are pure functions: the server
 * frame builder sl_ws_frame (ws.c, RFC 6455 §5.2) and the handshake's
 * Sec-WebSocket-Accept value sl_ws_accept_key (http.c, RFC 6455 §4.2.2). */
#include <stdint.h>
#include <stdlib.h>

#include "http.h"
#include "ws.h"
#include "unit.h"

/* A payload whose bytes depend on their position, so a shifted copy shows. */
static char *patterned(size_t len) {
  char *p = malloc(len ? len : 1);
  for (size_t i = 0; p && i < len; i++) p[i] = (char)(i * 31 + 7);
  return p;
}

/* Builds a frame and checks its header bytes, its size and its payload. */
static void frame_is_at(int opcode, size_t len, const uint8_t *want_header, size_t header_len,
                        const char *file, int line) {
  char *payload = patterned(len);
  sl_buf *frame = sl_ws_frame(opcode, payload, len);
  if (CHECK_AT(frame != NULL, file, line)) {
    CHECK_EQ_INT_AT(frame->len, header_len + len, file, line);
    CHECK_MEM_AT(frame->data, header_len, want_header, header_len, file, line);
    CHECK_MEM_AT(frame->data + header_len, len, payload, len, file, line);
    CHECK_AT((frame->data[0] & 0x80) != 0, file, line);   /* FIN: one frame per message */
    CHECK_AT((frame->data[0] & 0x70) == 0, file, line);   /* no RSV bits */
    CHECK_AT((frame->data[1] & 0x80) == 0, file, line);   /* servers never mask */
    CHECK_EQ_INT_AT(frame->data[0] & 0x0f, opcode, file, line);
    CHECK_EQ_INT_AT(frame->refs, 1, file, line);
    sl_buf_unref(frame);
  }
  free(payload);
}

#define FRAME_IS(opcode, len, ...)                                                      \
  do {                                                                                  \
    static const uint8_t want_[] = {__VA_ARGS__};                                       \
    frame_is_at((opcode), (len), want_, sizeof want_, __FILE__, __LINE__);              \
  } while (0)

static void test_seven_bit_lengths(void) {
  FRAME_IS(SL_WS_TEXT, 0, 0x81, 0x00);
  FRAME_IS(SL_WS_TEXT, 1, 0x81, 0x01);
  FRAME_IS(SL_WS_TEXT, 125, 0x81, 0x7d);
  FRAME_IS(SL_WS_BINARY, 125, 0x82, 0x7d);
}

static void test_sixteen_bit_lengths(void) {
  FRAME_IS(SL_WS_TEXT, 126, 0x81, 0x7e, 0x00, 0x7e);
  FRAME_IS(SL_WS_BINARY, 127, 0x82, 0x7e, 0x00, 0x7f);
  FRAME_IS(SL_WS_BINARY, 256, 0x82, 0x7e, 0x01, 0x00);
  FRAME_IS(SL_WS_TEXT, 65535, 0x81, 0x7e, 0xff, 0xff);
}

static void test_sixty_four_bit_lengths(void) {
  FRAME_IS(SL_WS_TEXT, 65536, 0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
  FRAME_IS(SL_WS_BINARY, 70000, 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70);
}

static void test_control_opcodes(void) {
  FRAME_IS(SL_WS_PING, 0, 0x89, 0x00);
  FRAME_IS(SL_WS_PONG, 4, 0x8a, 0x04);
  FRAME_IS(SL_WS_CLOSE, 2, 0x88, 0x02);
}

/* permessage-deflate marks a compressed message with RSV1. */
static void test_rsv1(void) {
  sl_buf *frame = sl_ws_frame_rsv1(SL_WS_TEXT, true, "abc", 3);
  if (CHECK(frame != NULL)) {
    CHECK_MEM(frame->data, frame->len, "\xc1\x03" "abc", 5);
    sl_buf_unref(frame);
  }
  frame = sl_ws_frame_rsv1(SL_WS_BINARY, false, "abc", 3);
  if (CHECK(frame != NULL)) {
    CHECK_MEM(frame->data, frame->len, "\x82\x03" "abc", 5);
    sl_buf_unref(frame);
  }
}

static void test_accept_key_rfc_sample(void) {
  char accept[29];
  memset(accept, 'x', sizeof accept);
  CHECK_EQ_INT(sl_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", accept), 0);
  CHECK_EQ_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
}

/* A key far longer than the 24 characters of a real one is refused, not
 * truncated into a wrong answer. */
static void test_accept_key_too_long(void) {
  char key[200], accept[29];
  memset(key, 'A', sizeof key - 1);
  key[sizeof key - 1] = '\0';
  CHECK_EQ_INT(sl_ws_accept_key(key, accept), -1);
}

int main(void) {
  test_seven_bit_lengths();
  test_sixteen_bit_lengths();
  test_sixty_four_bit_lengths();
  test_control_opcodes();
  test_rsv1();
  test_accept_key_rfc_sample();
  test_accept_key_too_long();
  return unit_summary("test_ws_frame");
}
