/* libFuzzer target: permessage-deflate (RFC 7692), the decoder that sees a
 * client's compressed messages and the parser of its offers.
 *
 * The first input byte picks the mode and its parameters:
 *   bit 0      0: inflate, 1: negotiate (the rest is a Sec-WebSocket-Extensions value)
 *   bits 1-3   the inflate window, 9-15 (0 reads as 15)
 *   bits 4-5   maxPayloadSize: 0, 100, 64 KiB, 1 MiB
 *   bit 6      client_no_context_takeover (reset after each message)
 * In inflate mode the second byte says where the rest is cut into two
 * messages, inflated one after the other with one inflater (context
 * takeover). Whatever inflates is deflated again (each server window size
 * in turn) and must inflate back to the same bytes; so must the raw input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) abort();                                                                          \
  } while (0)

/* Deflates in with the server's window bits and inflates it back. */
static void round_trip(const char *in, size_t n, int bits) {
  sl_sbuf z = {0}, back = {0};
  CHECK(sl_deflate_message(bits, in, n, &z) == 0);
  sl_inflater *inf = sl_inflater_new(15);
  CHECK(inf);
  CHECK(sl_inflate_message(inf, z.data ? z.data : "", z.len, n, true, &back) == SL_INFLATE_OK);
  CHECK(back.len == n && (n == 0 || memcmp(back.data, in, n) == 0));
  sl_inflater_free(inf);
  sl_sbuf_free(&z);
  sl_sbuf_free(&back);
}

static void negotiate(const uint8_t *data, size_t size) {
  char *offers = malloc(size + 1);
  CHECK(offers);
  memcpy(offers, data, size);
  offers[size] = '\0';
  sl_pmd pmd;
  char reply[160]; /* http.c's size */
  if (sl_pmd_negotiate(offers, &pmd, reply, sizeof reply)) {
    CHECK(memchr(reply, '\0', sizeof reply) != NULL);
    CHECK(strncmp(reply, "permessage-deflate", 18) == 0);
    CHECK(pmd.client_max_window_bits >= 9 && pmd.client_max_window_bits <= 15);
    CHECK(pmd.server_max_window_bits >= 9 && pmd.server_max_window_bits <= 15);
    sl_inflater *inf = sl_inflater_new(pmd.client_max_window_bits);
    CHECK(inf);
    sl_inflater_free(inf);
  }
  free(offers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t maxes[] = {0, 100, 65536, 1 << 20};
  if (size < 2) return 0;
  uint8_t mode = data[0];
  if (mode & 1) {
    negotiate(data + 1, size - 1);
    return 0;
  }
  int bits = (mode >> 1) & 7 ? 8 + ((mode >> 1) & 7) : 15;
  size_t max = maxes[(mode >> 4) & 3];
  bool reset = (mode >> 6) & 1;
  data += 2, size -= 2;
  size_t cut = size ? (size_t)data[-1] * size / 256 : 0;

  sl_inflater *inf = sl_inflater_new(bits);
  CHECK(inf);
  const uint8_t *msg[2] = {data, data + cut};
  size_t len[2] = {cut, size - cut};
  for (int m = 0; m < 2; m++) {
    char *in = malloc(len[m] ? len[m] : 1); /* exact size: a read past the message is caught */
    CHECK(in);
    if (len[m]) memcpy(in, msg[m], len[m]);
    sl_sbuf out = {0};
    sl_inflate_result r = sl_inflate_message(inf, in, len[m], max, reset, &out);
    CHECK(r == SL_INFLATE_OK || r == SL_INFLATE_CORRUPT || r == SL_INFLATE_TOO_BIG);
    CHECK(out.len <= max + 1);
    if (r == SL_INFLATE_OK) round_trip(out.data ? out.data : "", out.len, 9 + (int)(out.len % 7));
    sl_sbuf_free(&out);
    free(in);
    if (r != SL_INFLATE_OK) break; /* the server closes the connection */
  }
  sl_inflater_free(inf);
  round_trip((const char *)data, size, 9 + (int)(size % 7));
  return 0;
}
