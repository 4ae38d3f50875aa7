/* Unit tests for the binary TCP codec (tcpproto.c, PROTOCOL.md §4):
 * sl_tcp_decode (streaming), sl_tcp_frame_build, sl_tcp_event_name_ok. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/tcpproto.h" /* not -I src: src/limits.h would shadow <limits.h> */

static int failures, checks;

#define CHECK(cond)                                                                                   \
  do {                                                                                                \
    checks++;                                                                                         \
    if (!(cond)) {                                                                                    \
      failures++;                                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                      \
    }                                                                                                 \
  } while (0)

#define CHECK_STATUS(got, want)                                                                       \
  do {                                                                                                \
    sl_tcp_status g_ = (got), w_ = (want);                                                            \
    checks++;                                                                                         \
    if (g_ != w_) {                                                                                   \
      failures++;                                                                                     \
      fprintf(stderr, "%s:%d: status %d (%s), expected %d (%s)\n", __FILE__, __LINE__, (int)g_,       \
              sl_tcp_status_text(g_), (int)w_, sl_tcp_status_text(w_));                               \
    }                                                                                                 \
  } while (0)

/* ---- a recorder for delivered frames (copies: the decoder's bytes are
 * only valid during the callback) ---- */

typedef struct {
  uint8_t type;
  char *event;
  size_t event_len;
  uint8_t *payload;
  size_t payload_len;
} rec_frame;

typedef struct {
  rec_frame *f;
  size_t n, cap;
  size_t stop_after; /* return non-zero from the callback on this frame (1-based); 0: never */
} recorder;

static int on_frame(void *ud, const sl_tcp_frame *f) {
  recorder *r = ud;
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->f = realloc(r->f, r->cap * sizeof *r->f);
    if (!r->f) abort();
  }
  rec_frame *o = &r->f[r->n++];
  o->type = f->type;
  o->event_len = f->event_len;
  o->event = malloc(f->event_len + 1);
  if (f->event_len) memcpy(o->event, f->event, f->event_len);
  o->event[f->event_len] = '\0';
  o->payload_len = f->payload_len;
  o->payload = malloc(f->payload_len ? f->payload_len : 1);
  if (f->payload_len) memcpy(o->payload, f->payload, f->payload_len);
  return r->stop_after && r->n == r->stop_after;
}

static void rec_reset(recorder *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->f[i].event);
    free(r->f[i].payload);
  }
  r->n = 0;
  r->stop_after = 0;
}

static void rec_free(recorder *r) {
  rec_reset(r);
  free(r->f);
  r->f = NULL;
  r->cap = 0;
}

static bool frame_is(const rec_frame *f, uint8_t type, const char *event, const void *payload, size_t payload_len) {
  size_t el = event ? strlen(event) : 0;
  return f->type == type && f->event_len == el && (el == 0 || memcmp(f->event, event, el) == 0) &&
         f->payload_len == payload_len && (payload_len == 0 || memcmp(f->payload, payload, payload_len) == 0);
}

/* ---- raw frame bytes, written by hand (not with sl_tcp_frame_build, so a
 * bug there cannot hide one in the decoder) ---- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* Appends a header with explicit fields (they may lie). */
static void put_header(bytes *b, uint32_t total, uint8_t type, uint16_t event_len) {
  uint8_t h[7] = {(uint8_t)(total >> 24), (uint8_t)(total >> 16), (uint8_t)(total >> 8), (uint8_t)total,
                  type, (uint8_t)(event_len >> 8), (uint8_t)event_len};
  put(b, h, 7);
}

static void put_frame(bytes *b, uint8_t type, const char *event, const void *payload, size_t payload_len) {
  size_t el = event ? strlen(event) : 0;
  put_header(b, (uint32_t)(7 + el + payload_len), type, (uint16_t)el);
  put(b, event, el);
  put(b, payload, payload_len);
}

static void bytes_free(bytes *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static sl_tcp_decoder new_decoder(size_t max_frame) {
  sl_tcp_decoder d;
  memset(&d, 0, sizeof d);
  d.max_frame = max_frame;
  return d;
}

/* Decodes a whole buffer in one call. */
static sl_tcp_status decode_all(size_t max_frame, const bytes *b, recorder *r) {
  sl_tcp_decoder d = new_decoder(max_frame);
  sl_tcp_status st = sl_tcp_decode(&d, b->p, b->len, on_frame, r);
  sl_tcp_decoder_free(&d);
  return st;
}

/* ---- tests ---- */

static void test_every_type(void) {
  recorder r = {0};
  struct {
    uint8_t type;
    const char *event;
    const char *payload;
  } cases[] = {
      {SL_TCP_JSON, "chat", "{\"text\":\"hi\"}"},
      {SL_TCP_BINARY, "file/upload", "\x00\x01\x02\xff"},
      {SL_TCP_PING, NULL, ""},
      {SL_TCP_PONG, NULL, ""},
      {SL_TCP_ACK_REQ, "getUser", "{\"data\":{\"id\":1},\"_correlationId\":\"c-1\"}"},
      {SL_TCP_ACK_RES, "getUser", "{\"data\":7,\"_correlationId\":\"c-1\"}"},
      {SL_TCP_CONNECT, "connect", "0123456789abcdef"},
      {SL_TCP_DISCONNECT, NULL, ""},
      {SL_TCP_JOIN, "join-room", "lobby"},
      {SL_TCP_LEAVE, "leave-room", "lobby"},
      {SL_TCP_ERROR, "error", "something broke"},
  };
  size_t ncases = sizeof cases / sizeof cases[0];
  size_t plens[16];
  CHECK(ncases == 11); /* types 0x01..0x0B */
  for (size_t i = 0; i < ncases; i++)
    plens[i] = cases[i].type == SL_TCP_BINARY ? 4 : strlen(cases[i].payload);
  for (size_t i = 0; i < ncases; i++) {
    bytes b = {0};
    put_frame(&b, cases[i].type, cases[i].event, cases[i].payload, plens[i]);
    rec_reset(&r);
    CHECK_STATUS(decode_all(1 << 20, &b, &r), SL_TCP_OK);
    CHECK(r.n == 1);
    if (r.n == 1) CHECK(frame_is(&r.f[0], cases[i].type, cases[i].event, cases[i].payload, plens[i]));
    bytes_free(&b);
  }
  /* the wire values of the table in PROTOCOL.md §4 */
  CHECK(SL_TCP_JSON == 1 && SL_TCP_BINARY == 2 && SL_TCP_PING == 3 && SL_TCP_PONG == 4);
  CHECK(SL_TCP_ACK_REQ == 5 && SL_TCP_ACK_RES == 6 && SL_TCP_CONNECT == 7 && SL_TCP_DISCONNECT == 8);
  CHECK(SL_TCP_JOIN == 9 && SL_TCP_LEAVE == 10 && SL_TCP_ERROR == 11);
  rec_free(&r);
}

/* One frame, fed byte by byte, and in two and three pieces at every offset. */
static void test_splits(void) {
  recorder r = {0};
  bytes b = {0};
  const char *payload = "{\"data\":{\"q\":\"splits\"},\"_correlationId\":\"c-42\"}";
  put_frame(&b, SL_TCP_ACK_REQ, "get:user/v1.x", payload, strlen(payload));

  /* byte by byte: nothing until the last byte */
  sl_tcp_decoder d = new_decoder(4096);
  bool early = false;
  for (size_t i = 0; i < b.len; i++) {
    CHECK_STATUS(sl_tcp_decode(&d, b.p + i, 1, on_frame, &r), SL_TCP_OK);
    if (i + 1 < b.len && r.n != 0) early = true;
  }
  CHECK(!early);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_ACK_REQ, "get:user/v1.x", payload, strlen(payload)));
  CHECK(d.len == 0);
  sl_tcp_decoder_free(&d);

  /* two pieces at every offset */
  for (size_t k = 1; k < b.len; k++) {
    rec_reset(&r);
    d = new_decoder(4096);
    CHECK_STATUS(sl_tcp_decode(&d, b.p, k, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 0);
    CHECK_STATUS(sl_tcp_decode(&d, b.p + k, b.len - k, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_ACK_REQ, "get:user/v1.x", payload, strlen(payload)));
    sl_tcp_decoder_free(&d);
  }

  /* three pieces at every pair of offsets */
  for (size_t i = 1; i < b.len; i++) {
    for (size_t j = i; j < b.len; j++) {
      rec_reset(&r);
      d = new_decoder(4096);
      CHECK_STATUS(sl_tcp_decode(&d, b.p, i, on_frame, &r), SL_TCP_OK);
      CHECK_STATUS(sl_tcp_decode(&d, b.p + i, j - i, on_frame, &r), SL_TCP_OK);
      CHECK_STATUS(sl_tcp_decode(&d, b.p + j, b.len - j, on_frame, &r), SL_TCP_OK);
      CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_ACK_REQ, "get:user/v1.x", payload, strlen(payload)));
      sl_tcp_decoder_free(&d);
    }
  }

  /* a zero-length read changes nothing */
  rec_reset(&r);
  d = new_decoder(4096);
  CHECK_STATUS(sl_tcp_decode(&d, b.p, 3, on_frame, &r), SL_TCP_OK);
  CHECK_STATUS(sl_tcp_decode(&d, b.p + 3, 0, on_frame, &r), SL_TCP_OK);
  CHECK_STATUS(sl_tcp_decode(&d, b.p + 3, b.len - 3, on_frame, &r), SL_TCP_OK);
  CHECK(r.n == 1);
  sl_tcp_decoder_free(&d);

  /* three frames back to back (the middle one empty), split at every offset
   * of the whole stream: the split may cut anywhere, and the frame that
   * completes a held one must be followed by the rest of the read */
  bytes s = {0};
  put_frame(&s, SL_TCP_JSON, "a", "1", 1);
  put_frame(&s, SL_TCP_PING, NULL, NULL, 0);
  put_frame(&s, SL_TCP_BINARY, "bin", "\x00\xff\x00", 3);
  for (size_t k = 0; k <= s.len; k++) {
    rec_reset(&r);
    d = new_decoder(4096);
    CHECK_STATUS(sl_tcp_decode(&d, s.p, k, on_frame, &r), SL_TCP_OK);
    CHECK_STATUS(sl_tcp_decode(&d, s.p + k, s.len - k, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 3);
    if (r.n == 3) {
      CHECK(frame_is(&r.f[0], SL_TCP_JSON, "a", "1", 1));
      CHECK(frame_is(&r.f[1], SL_TCP_PING, NULL, NULL, 0));
      CHECK(frame_is(&r.f[2], SL_TCP_BINARY, "bin", "\x00\xff\x00", 3));
    }
    CHECK(d.len == 0);
    sl_tcp_decoder_free(&d);
  }
  bytes_free(&s);
  bytes_free(&b);
  rec_free(&r);
}

static void test_many_frames(void) {
  recorder r = {0};
  bytes b = {0};
  enum { N = 500 };
  char ev[32], pl[64];
  for (int i = 0; i < N; i++) {
    snprintf(ev, sizeof ev, "ev-%d", i);
    int n = snprintf(pl, sizeof pl, "{\"i\":%d}", i);
    if (i % 5 == 4) put_frame(&b, SL_TCP_PING, NULL, NULL, 0);
    else put_frame(&b, i % 2 ? SL_TCP_BINARY : SL_TCP_JSON, ev, pl, (size_t)n);
  }
  /* all in one read */
  CHECK_STATUS(decode_all(65536, &b, &r), SL_TCP_OK);
  CHECK(r.n == N);
  bool ok = r.n == N;
  for (int i = 0; ok && i < N; i++) {
    snprintf(ev, sizeof ev, "ev-%d", i);
    int n = snprintf(pl, sizeof pl, "{\"i\":%d}", i);
    if (i % 5 == 4) ok = frame_is(&r.f[i], SL_TCP_PING, NULL, NULL, 0);
    else ok = frame_is(&r.f[i], i % 2 ? SL_TCP_BINARY : SL_TCP_JSON, ev, pl, (size_t)n);
  }
  CHECK(ok);

  /* the same stream in reads of pseudo-random sizes 1..40 */
  rec_reset(&r);
  sl_tcp_decoder d = new_decoder(65536);
  uint32_t seed = 12345;
  size_t off = 0;
  while (off < b.len) {
    seed = seed * 1103515245u + 12345u;
    size_t n = 1 + (seed >> 16) % 40;
    if (n > b.len - off) n = b.len - off;
    CHECK_STATUS(sl_tcp_decode(&d, b.p + off, n, on_frame, &r), SL_TCP_OK);
    off += n;
  }
  CHECK(r.n == N);
  ok = r.n == N;
  for (int i = 0; ok && i < N; i++) {
    snprintf(ev, sizeof ev, "ev-%d", i);
    int n = snprintf(pl, sizeof pl, "{\"i\":%d}", i);
    if (i % 5 == 4) ok = frame_is(&r.f[i], SL_TCP_PING, NULL, NULL, 0);
    else ok = frame_is(&r.f[i], i % 2 ? SL_TCP_BINARY : SL_TCP_JSON, ev, pl, (size_t)n);
  }
  CHECK(ok);
  sl_tcp_decoder_free(&d);
  bytes_free(&b);
  rec_free(&r);
}

static uint8_t *pattern(size_t n, uint32_t seed) {
  uint8_t *p = malloc(n);
  if (!p) abort();
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = (uint8_t)(seed >> 24);
  }
  return p;
}

/* A 1 MiB payload in three reads arrives intact, and the decoder serves
 * small and split frames afterwards (reuse after a large frame). */
static void test_large_and_reuse(void) {
  enum { MIB = 1 << 20 };
  recorder r = {0};
  uint8_t *big = pattern(MIB, 7);
  bytes b = {0};
  put_frame(&b, SL_TCP_BINARY, "blob", big, MIB);
  CHECK(b.len == 7 + 4 + MIB);

  size_t cuts[][2] = {{3, 500000}, {7, 11}, {11, MIB / 2}, {600000, b.len - 1}, {1, 2}};
  sl_tcp_decoder d = new_decoder(2 * MIB);
  for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
    rec_reset(&r);
    size_t a = cuts[c][0], z = cuts[c][1];
    CHECK_STATUS(sl_tcp_decode(&d, b.p, a, on_frame, &r), SL_TCP_OK);
    CHECK_STATUS(sl_tcp_decode(&d, b.p + a, z - a, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 0);
    CHECK_STATUS(sl_tcp_decode(&d, b.p + z, b.len - z, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_BINARY, "blob", big, MIB));
    CHECK(d.len == 0);
    CHECK(d.cap < MIB); /* a megabyte held for one frame is not kept for the next */

    /* the same decoder: a small frame whole, then one split in two */
    rec_reset(&r);
    bytes s = {0};
    put_frame(&s, SL_TCP_JSON, "after", "[1,2,3]", 7);
    CHECK_STATUS(sl_tcp_decode(&d, s.p, s.len, on_frame, &r), SL_TCP_OK);
    CHECK_STATUS(sl_tcp_decode(&d, s.p, 9, on_frame, &r), SL_TCP_OK);
    CHECK_STATUS(sl_tcp_decode(&d, s.p + 9, s.len - 9, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 2 && frame_is(&r.f[0], SL_TCP_JSON, "after", "[1,2,3]", 7) &&
          frame_is(&r.f[1], SL_TCP_JSON, "after", "[1,2,3]", 7));
    bytes_free(&s);
  }

  /* the large frame whole in one read, followed by a small one in the same read */
  rec_reset(&r);
  put_frame(&b, SL_TCP_PING, NULL, NULL, 0);
  CHECK_STATUS(sl_tcp_decode(&d, b.p, b.len, on_frame, &r), SL_TCP_OK);
  CHECK(r.n == 2 && frame_is(&r.f[0], SL_TCP_BINARY, "blob", big, MIB) &&
        frame_is(&r.f[1], SL_TCP_PING, NULL, NULL, 0));
  sl_tcp_decoder_free(&d);
  CHECK(d.buf == NULL && d.len == 0);
  bytes_free(&b);
  free(big);
  rec_free(&r);
}

/* A frame's buffer follows the bytes that arrived, not the length its
 * header declares: a header announcing 8 MiB and 100 bytes of it hold a
 * few KiB; the rest, in 64 KiB reads, still arrives whole. */
static void test_held_bytes_follow_arrival(void) {
  enum { DECLARED = 8 << 20 };
  recorder r = {0};
  uint8_t *big = pattern(DECLARED - 11, 3);
  bytes b = {0};
  put_frame(&b, SL_TCP_BINARY, "blob", big, DECLARED - 11);
  CHECK(b.len == DECLARED);
  sl_tcp_decoder d = new_decoder(DECLARED);
  CHECK_STATUS(sl_tcp_decode(&d, b.p, 100, on_frame, &r), SL_TCP_OK);
  CHECK(d.len == 100 && d.cap <= 4096);
  size_t at = 100;
  while (at < b.len) {
    size_t n = b.len - at < 65536 ? b.len - at : 65536;
    CHECK_STATUS(sl_tcp_decode(&d, b.p + at, n, on_frame, &r), SL_TCP_OK);
    at += n;
    if (at < b.len) CHECK(d.cap <= 2 * d.len + 65536);
  }
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_BINARY, "blob", big, DECLARED - 11));
  sl_tcp_decoder_free(&d);
  bytes_free(&b);
  free(big);
  rec_free(&r);
}

/* Feeds b whole, then split in two at every offset of the header, and
 * expects status `want` with no frame delivered. */
static void expect_error_everywhere(const bytes *b, size_t max_frame, sl_tcp_status want, int line) {
  recorder r = {0};
  int before = failures;
  CHECK_STATUS(decode_all(max_frame, b, &r), want);
  CHECK(r.n == 0);
  for (size_t k = 1; k < b->len && k <= 8; k++) {
    rec_reset(&r);
    sl_tcp_decoder d = new_decoder(max_frame);
    sl_tcp_status st = sl_tcp_decode(&d, b->p, k, on_frame, &r);
    if (st == SL_TCP_OK) st = sl_tcp_decode(&d, b->p + k, b->len - k, on_frame, &r);
    CHECK_STATUS(st, want);
    CHECK(r.n == 0);
    sl_tcp_decoder_free(&d);
  }
  /* byte by byte */
  rec_reset(&r);
  sl_tcp_decoder d = new_decoder(max_frame);
  sl_tcp_status st = SL_TCP_OK;
  for (size_t i = 0; i < b->len && st == SL_TCP_OK; i++) st = sl_tcp_decode(&d, b->p + i, 1, on_frame, &r);
  CHECK_STATUS(st, want);
  CHECK(r.n == 0);
  sl_tcp_decoder_free(&d);
  if (failures != before) fprintf(stderr, "  (from the case at line %d)\n", line);
  rec_free(&r);
}

static void test_lengths(void) {
  recorder r = {0};
  /* total below the header */
  for (uint32_t total = 0; total < 7; total++) {
    bytes b = {0};
    put_header(&b, total, SL_TCP_PING, 0);
    expect_error_everywhere(&b, 1024, SL_TCP_TOO_SHORT, __LINE__);
    bytes_free(&b);
  }
  /* exactly the header: an empty PING is fine */
  bytes h = {0};
  put_header(&h, 7, SL_TCP_PING, 0);
  CHECK_STATUS(decode_all(1024, &h, &r), SL_TCP_OK);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_PING, NULL, NULL, 0));
  bytes_free(&h);

  /* over max_frame: detected from the header alone, whole or split */
  bytes b = {0};
  put_header(&b, 1001, SL_TCP_BINARY, 1);
  put(&b, "x", 1);
  expect_error_everywhere(&b, 1000, SL_TCP_TOO_LONG, __LINE__);
  bytes_free(&b);
  put_header(&b, 0xFFFFFFFFu, SL_TCP_JSON, 4);
  expect_error_everywhere(&b, 10 << 20, SL_TCP_TOO_LONG, __LINE__);
  bytes_free(&b);
  put_header(&b, 0x80000000u, SL_TCP_JSON, 4); /* would be negative as int32 */
  expect_error_everywhere(&b, 10 << 20, SL_TCP_TOO_LONG, __LINE__);
  bytes_free(&b);

  /* exactly max_frame is fine */
  rec_reset(&r);
  uint8_t *pl = pattern(1000 - 8, 3);
  put_frame(&b, SL_TCP_BINARY, "x", pl, 1000 - 8);
  CHECK(b.len == 1000);
  CHECK_STATUS(decode_all(1000, &b, &r), SL_TCP_OK);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_BINARY, "x", pl, 1000 - 8));
  bytes_free(&b);
  free(pl);

  /* a good frame before a bad one is delivered; the bad one stops decoding */
  rec_reset(&r);
  put_frame(&b, SL_TCP_JSON, "ok", "1", 1);
  put_header(&b, 3, SL_TCP_JSON, 0);
  put_frame(&b, SL_TCP_JSON, "never", "2", 1);
  CHECK_STATUS(decode_all(1024, &b, &r), SL_TCP_TOO_SHORT);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_JSON, "ok", "1", 1));
  bytes_free(&b);
  rec_free(&r);
}

static void test_event_len(void) {
  recorder r = {0};
  bytes b = {0};
  /* event length 4, but only 3 bytes after the header */
  put_header(&b, 10, SL_TCP_JSON, 4);
  put(&b, "abc", 3);
  expect_error_everywhere(&b, 1024, SL_TCP_BAD_EVENT_LEN, __LINE__);
  bytes_free(&b);
  /* event length 0xFFFF in a small frame */
  put_header(&b, 12, SL_TCP_BINARY, 0xFFFF);
  put(&b, "abcde", 5);
  expect_error_everywhere(&b, 1024, SL_TCP_BAD_EVENT_LEN, __LINE__);
  bytes_free(&b);
  /* event exactly filling the frame, empty payload: fine */
  put_header(&b, 10, SL_TCP_BINARY, 3);
  put(&b, "abc", 3);
  CHECK_STATUS(decode_all(1024, &b, &r), SL_TCP_OK);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_BINARY, "abc", NULL, 0));
  bytes_free(&b);
  rec_free(&r);
}

static void test_event_names(void) {
  recorder r = {0};
  bytes b = {0};
  char name[300];

  /* 256 bytes: fine; 257 bytes: bad name */
  memset(name, 'a', sizeof name);
  name[256] = '\0';
  put_frame(&b, SL_TCP_JSON, name, "1", 1);
  CHECK_STATUS(decode_all(4096, &b, &r), SL_TCP_OK);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_JSON, name, "1", 1));
  bytes_free(&b);
  name[256] = 'a';
  name[257] = '\0';
  put_frame(&b, SL_TCP_JSON, name, "1", 1);
  expect_error_everywhere(&b, 4096, SL_TCP_BAD_EVENT_NAME, __LINE__);
  bytes_free(&b);

  /* forbidden characters, on every named type */
  const char *bad[] = {"a b", "chat!", "under_score", "caf\xc3\xa9", "tab\t", "q?x", "{x}", "nul\x01"};
  uint8_t named[] = {SL_TCP_JSON, SL_TCP_BINARY, SL_TCP_ACK_REQ};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (size_t t = 0; t < sizeof named; t++) {
      put_frame(&b, named[t], bad[i], "1", 1);
      expect_error_everywhere(&b, 4096, SL_TCP_BAD_EVENT_NAME, __LINE__);
      bytes_free(&b);
    }
  }
  /* a NUL byte inside the name (strlen would not see it) */
  put_header(&b, 7 + 3 + 1, SL_TCP_JSON, 3);
  put(&b, "a\0b", 3);
  put(&b, "1", 1);
  expect_error_everywhere(&b, 4096, SL_TCP_BAD_EVENT_NAME, __LINE__);
  bytes_free(&b);

  /* empty event: bad for JSON, BINARY and ACK_REQ; fine for PING */
  for (size_t t = 0; t < sizeof named; t++) {
    put_frame(&b, named[t], NULL, "1", 1);
    expect_error_everywhere(&b, 4096, SL_TCP_BAD_EVENT_NAME, __LINE__);
    bytes_free(&b);
  }
  rec_reset(&r);
  put_frame(&b, SL_TCP_PING, NULL, NULL, 0);
  put_frame(&b, SL_TCP_PONG, NULL, NULL, 0);
  put_frame(&b, SL_TCP_DISCONNECT, NULL, NULL, 0);
  CHECK_STATUS(decode_all(4096, &b, &r), SL_TCP_OK);
  CHECK(r.n == 3 && frame_is(&r.f[0], SL_TCP_PING, NULL, NULL, 0) && frame_is(&r.f[1], SL_TCP_PONG, NULL, NULL, 0) &&
        frame_is(&r.f[2], SL_TCP_DISCONNECT, NULL, NULL, 0));
  bytes_free(&b);

  /* every allowed character */
  rec_reset(&r);
  const char *all = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./:";
  put_frame(&b, SL_TCP_JSON, all, "null", 4);
  CHECK_STATUS(decode_all(4096, &b, &r), SL_TCP_OK);
  CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_JSON, all, "null", 4));
  bytes_free(&b);

  /* sl_tcp_event_name_ok directly */
  CHECK(sl_tcp_event_name_ok(all, strlen(all)));
  CHECK(sl_tcp_event_name_ok("a", 1));
  CHECK(!sl_tcp_event_name_ok("", 0));
  CHECK(!sl_tcp_event_name_ok("a b", 3));
  CHECK(!sl_tcp_event_name_ok("a_b", 3));
  CHECK(!sl_tcp_event_name_ok("a\0b", 3));
  CHECK(!sl_tcp_event_name_ok("\xff", 1));
  CHECK(sl_tcp_event_name_ok("abc xyz", 3)); /* only n bytes are looked at */
  memset(name, 'z', sizeof name);
  CHECK(sl_tcp_event_name_ok(name, 256));
  CHECK(!sl_tcp_event_name_ok(name, 257));
  for (int ch = 0; ch < 256; ch++) {
    char s[1] = {(char)ch};
    bool want = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                ch == '.' || ch == '/' || ch == ':';
    if (sl_tcp_event_name_ok(s, 1) != want) {
      fprintf(stderr, "  character 0x%02x: got %d, expected %d\n", ch, !want, want);
      CHECK(0);
    }
  }
  rec_free(&r);
}

static void test_bad_types(void) {
  uint8_t types[] = {0, 12, 13, 0x7F, 0x80, 0xFF};
  for (size_t i = 0; i < sizeof types; i++) {
    bytes b = {0};
    put_frame(&b, types[i], "chat", "{}", 2);
    expect_error_everywhere(&b, 4096, SL_TCP_BAD_TYPE, __LINE__);
    bytes_free(&b);
    put_frame(&b, types[i], NULL, NULL, 0);
    expect_error_everywhere(&b, 4096, SL_TCP_BAD_TYPE, __LINE__);
    bytes_free(&b);
  }
}

static void test_stop(void) {
  recorder r = {0};
  bytes b = {0};
  put_frame(&b, SL_TCP_JSON, "one", "1", 1);
  put_frame(&b, SL_TCP_JSON, "two", "2", 1);
  put_frame(&b, SL_TCP_JSON, "three", "3", 1);
  put_frame(&b, SL_TCP_JSON, "four", "4", 1);

  /* whole buffer: stop on the second frame */
  r.stop_after = 2;
  CHECK_STATUS(decode_all(4096, &b, &r), SL_TCP_STOPPED);
  CHECK(r.n == 2 && frame_is(&r.f[1], SL_TCP_JSON, "two", "2", 1));

  /* stop on a frame completed from held bytes (the split path), with more
   * frames in the same read */
  size_t first = 7 + 3 + 1;
  for (size_t k = 1; k < first; k++) {
    rec_reset(&r);
    r.stop_after = 1;
    sl_tcp_decoder d = new_decoder(4096);
    CHECK_STATUS(sl_tcp_decode(&d, b.p, k, on_frame, &r), SL_TCP_OK);
    CHECK_STATUS(sl_tcp_decode(&d, b.p + k, b.len - k, on_frame, &r), SL_TCP_STOPPED);
    CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_JSON, "one", "1", 1));
    sl_tcp_decoder_free(&d);
  }

  /* stop on the last frame of a read: STOPPED, not OK */
  rec_reset(&r);
  r.stop_after = 4;
  CHECK_STATUS(decode_all(4096, &b, &r), SL_TCP_STOPPED);
  CHECK(r.n == 4);
  bytes_free(&b);
  rec_free(&r);
}

static void test_build(void) {
  sl_buf *f = sl_tcp_frame_build(SL_TCP_JSON, "chat", 4, "{}", 2);
  const uint8_t want1[] = {0, 0, 0, 13, 0x01, 0, 4, 'c', 'h', 'a', 't', '{', '}'};
  CHECK(f && f->len == sizeof want1 && memcmp(f->data, want1, sizeof want1) == 0);
  CHECK(f && f->refs == 1);
  if (f) sl_buf_unref(f);

  f = sl_tcp_frame_build(SL_TCP_PING, NULL, 0, NULL, 0);
  const uint8_t want2[] = {0, 0, 0, 7, 0x03, 0, 0};
  CHECK(f && f->len == 7 && memcmp(f->data, want2, 7) == 0);
  if (f) sl_buf_unref(f);

  f = sl_tcp_frame_build(SL_TCP_CONNECT, "connect", 7, "0123456789abcdef", 16);
  const uint8_t want3[] = {0, 0, 0, 30, 0x07, 0, 7, 'c', 'o', 'n', 'n', 'e', 'c', 't', '0', '1', '2', '3', '4',
                           '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  CHECK(f && f->len == sizeof want3 && memcmp(f->data, want3, sizeof want3) == 0);
  if (f) sl_buf_unref(f);

  /* multi-byte lengths: event 300 (0x012C), payload 70000 → total 70307 (0x000112A3) */
  char ev[300];
  memset(ev, 'e', sizeof ev);
  uint8_t *pl = pattern(70000, 9);
  f = sl_tcp_frame_build(SL_TCP_BINARY, ev, 300, pl, 70000);
  CHECK(f && f->len == 70307);
  if (f) {
    const uint8_t *p = (const uint8_t *)f->data;
    CHECK(p[0] == 0x00 && p[1] == 0x01 && p[2] == 0x12 && p[3] == 0xA3);
    CHECK(p[4] == 0x02 && p[5] == 0x01 && p[6] == 0x2C);
    CHECK(memcmp(p + 7, ev, 300) == 0 && memcmp(p + 307, pl, 70000) == 0);
    sl_buf_unref(f);
  }
  free(pl);

  /* an event length that does not fit in u16 is refused */
  char *huge = malloc(0x10000);
  memset(huge, 'a', 0x10000);
  CHECK(sl_tcp_frame_build(SL_TCP_JSON, huge, 0x10000, "1", 1) == NULL);
  f = sl_tcp_frame_build(SL_TCP_JSON, huge, 0xFFFF, NULL, 0);
  CHECK(f && f->len == 7 + 0xFFFF);
  if (f) {
    const uint8_t *p = (const uint8_t *)f->data;
    CHECK(p[5] == 0xFF && p[6] == 0xFF);
    sl_buf_unref(f);
  }
  free(huge);

  /* round trip through the decoder */
  recorder r = {0};
  sl_tcp_decoder d = new_decoder(1024);
  const char *js = "{\"data\":{\"ok\":true},\"_correlationId\":\"c-9\"}";
  f = sl_tcp_frame_build(SL_TCP_ACK_RES, "getUser", 7, js, strlen(js));
  CHECK(f != NULL);
  if (f) {
    CHECK_STATUS(sl_tcp_decode(&d, (const uint8_t *)f->data, f->len, on_frame, &r), SL_TCP_OK);
    CHECK(r.n == 1 && frame_is(&r.f[0], SL_TCP_ACK_RES, "getUser", js, strlen(js)));
    sl_buf_unref(f);
  }
  sl_tcp_decoder_free(&d);
  rec_free(&r);
}

static void test_status_text(void) {
  sl_tcp_status all[] = {SL_TCP_OK, SL_TCP_STOPPED, SL_TCP_TOO_SHORT, SL_TCP_TOO_LONG, SL_TCP_BAD_EVENT_LEN,
                         SL_TCP_BAD_EVENT_NAME, SL_TCP_BAD_TYPE, SL_TCP_NOMEM};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *s = sl_tcp_status_text(all[i]);
    CHECK(s && s[0]);
    for (size_t j = 0; j < i; j++) CHECK(strcmp(s, sl_tcp_status_text(all[j])) != 0);
  }
}

int main(void) {
  test_every_type();
  test_splits();
  test_many_frames();
  test_large_and_reuse();
  test_held_bytes_follow_arrival();
  test_lengths();
  test_event_len();
  test_event_names();
  test_bad_types();
  test_stop();
  test_build();
  test_status_text();
  if (failures) {
    fprintf(stderr, "test_tcpproto: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_tcpproto: all %d checks passed\n", checks);
  return 0;
}
