/* permessage-deflate: offer negotiation, bounded inflate, deflate. */
#include <string.h>
#include <zlib.h>

#include "../../src/deflate.h"
#include "unit.h"

/* Raw DEFLATE of in, as a client would send it: sync-flushed with the
 * trailing 00 00 ff ff removed, or finished (BFINAL set) when final. */
static size_t client_deflate(const char *in, size_t n, bool final, unsigned char *out, size_t cap) {
  z_stream z = {0};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  deflate(&z, final ? Z_FINISH : Z_SYNC_FLUSH);
  size_t len = cap - z.avail_out;
  deflateEnd(&z);
  return final ? len : len - 4;
}

static void test_negotiation(void) {
  sl_pmd p;
  char reply[160];
  CHECK(sl_pmd_negotiate("permessage-deflate", &p, reply, sizeof reply));
  CHECK_EQ_STR(reply, "permessage-deflate; server_no_context_takeover");
  CHECK_EQ_INT(p.client_max_window_bits, 15);
  CHECK(sl_pmd_negotiate("permessage-deflate; client_no_context_takeover; server_max_window_bits=10", &p, reply,
                         sizeof reply));
  CHECK_EQ_STR(reply, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                      "server_max_window_bits=10");
  CHECK(p.client_no_context_takeover);
  CHECK_EQ_INT(p.server_max_window_bits, 10);
  CHECK(!sl_pmd_negotiate("permessage-deflate; server_max_window_bits=8", &p, reply, sizeof reply));
  CHECK(!sl_pmd_negotiate("permessage-deflate; bogus", &p, reply, sizeof reply));
  CHECK(!sl_pmd_negotiate("permessage-deflate; client_no_context_takeover; client_no_context_takeover", &p, reply,
                          sizeof reply));
  CHECK(sl_pmd_negotiate("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", &p, reply,
                         sizeof reply));
  CHECK(sl_pmd_negotiate("permessage-deflate; client_max_window_bits=\"12\"", &p, reply, sizeof reply));
  CHECK_EQ_INT(p.client_max_window_bits, 12);
}

/* RFC 7692 7.2.3.3: a message may end the DEFLATE stream itself. */
static void test_message_with_bfinal(void) {
  const char text[] = "{\"event\":\"chat\",\"data\":\"hello hello hello hello hello\"}";
  unsigned char wire[256];
  sl_inflater *z = sl_inflater_new(15);
  for (int round = 0; round < 2; round++) {
    size_t n = client_deflate(text, sizeof text - 1, true, wire, sizeof wire);
    sl_sbuf out = {0};
    CHECK_EQ_INT(sl_inflate_message(z, (const char *)wire, n, 1000, false, &out), SL_INFLATE_OK);
    CHECK_MEM(out.data, out.len, text, sizeof text - 1);
    sl_sbuf_free(&out);
  }
  sl_inflater_free(z);
}

static void test_context_takeover_and_limits(void) {
  sl_inflater *z = sl_inflater_new(15);
  z_stream c = {0}; /* a client that keeps its context across messages */
  deflateInit2(&c, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  const char *msgs[] = {"abcabcabcabcabcabc", "abcabcabcabcabcabc", "different text"};
  for (int i = 0; i < 3; i++) {
    unsigned char wire[128];
    c.next_in = (Bytef *)msgs[i];
    c.avail_in = (uInt)strlen(msgs[i]);
    c.next_out = wire;
    c.avail_out = sizeof wire;
    deflate(&c, Z_SYNC_FLUSH);
    size_t n = sizeof wire - c.avail_out - 4;
    sl_sbuf out = {0};
    CHECK_EQ_INT(sl_inflate_message(z, (const char *)wire, n, 1000, false, &out), SL_INFLATE_OK);
    CHECK_MEM(out.data, out.len, msgs[i], strlen(msgs[i]));
    sl_sbuf_free(&out);
  }
  deflateEnd(&c);

  /* a bomb stops one byte past the limit, without inflating the rest */
  static char zeros[1 << 20];
  static unsigned char bomb[1 << 16];
  size_t n = client_deflate(zeros, sizeof zeros, false, bomb, sizeof bomb);
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_inflate_message(z, (const char *)bomb, n, 4096, false, &out), SL_INFLATE_TOO_BIG);
  CHECK(out.len == 4097);
  CHECK(out.cap < 65536);
  sl_sbuf_free(&out);

  sl_inflater *fresh = sl_inflater_new(15);
  CHECK_EQ_INT(sl_inflate_message(fresh, "\xff\xfe\xfd\xfc", 4, 1000, false, &out), SL_INFLATE_CORRUPT);
  sl_sbuf_free(&out);
  sl_inflater_free(fresh);
  sl_inflater_free(z);
}

static void test_deflate_round_trip(void) {
  const char text[] = "a message that the server compresses, a message that the server compresses";
  sl_sbuf wire = {0}, out = {0};
  CHECK_EQ_INT(sl_deflate_message(15, text, sizeof text - 1, &wire), 0);
  CHECK(wire.len < sizeof text - 1);
  sl_inflater *z = sl_inflater_new(15);
  CHECK_EQ_INT(sl_inflate_message(z, wire.data, wire.len, 1000, true, &out), SL_INFLATE_OK);
  CHECK_MEM(out.data, out.len, text, sizeof text - 1);
  sl_inflater_free(z);
  sl_sbuf_free(&wire);
  sl_sbuf_free(&out);
}

int main(void) {
  test_negotiation();
  test_message_with_bfinal();
  test_context_takeover_and_limits();
  test_deflate_round_trip();
  return unit_summary("test_deflate");
}
