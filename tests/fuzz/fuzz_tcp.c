/* libFuzzer target: the binary TCP frame decoder (sl_tcp_decode).
 *
 * The first input byte picks the decoder's max frame size and whether the
 * frame callback asks to stop; the second picks how the rest is cut into
 * reads of equal size (1 to 254 bytes, or all at once), so frames arrive
 * whole, split at any offset, and byte by byte.
 * Every delivered frame is checked against the wire rules, then rebuilt with
 * sl_tcp_frame_build and decoded again: it must come back identical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "tcpproto.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) abort();                                                                          \
  } while (0)

typedef struct {
  const sl_tcp_decoder *d;
  unsigned frames, stop_after;
} run;

static volatile uint8_t sink;

/* Reads every byte of a span, so ASan sees any that lies outside its buffer. */
static void touch(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) sink ^= b[i];
}

typedef struct {
  sl_tcp_frame f;
  unsigned n;
} copy;

static int take_copy(void *ud, const sl_tcp_frame *f) {
  copy *c = ud;
  c->f = *f;
  c->n++;
  return 0;
}

static void rebuild(const sl_tcp_frame *f) {
  sl_buf *b = sl_tcp_frame_build(f->type, f->event, f->event_len, f->payload, f->payload_len);
  CHECK(b);
  sl_tcp_decoder d = {.max_frame = SIZE_MAX};
  copy c = {0};
  CHECK(sl_tcp_decode(&d, (const uint8_t *)b->data, b->len, take_copy, &c) == SL_TCP_OK);
  CHECK(c.n == 1 && d.len == 0);
  CHECK(c.f.type == f->type && c.f.event_len == f->event_len && c.f.payload_len == f->payload_len);
  CHECK(memcmp(c.f.event, f->event, f->event_len) == 0);
  CHECK(f->payload_len == 0 || memcmp(c.f.payload, f->payload, f->payload_len) == 0);
  sl_tcp_decoder_free(&d);
  sl_buf_unref(b);
}

static int on_frame(void *ud, const sl_tcp_frame *f) {
  run *r = ud;
  CHECK(f->type >= SL_TCP_JSON && f->type <= SL_TCP_ERROR);
  CHECK(f->event_len <= SL_EVENT_NAME_MAX);
  CHECK(SL_TCP_HEADER + f->event_len + f->payload_len <= r->d->max_frame);
  if (f->event_len) CHECK(sl_tcp_event_name_ok(f->event, f->event_len));
  touch(f->event, f->event_len);
  touch(f->payload, f->payload_len);
  rebuild(f);
  return ++r->frames == r->stop_after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t max_frames[] = {SL_TCP_HEADER, 64, 4096, 1 << 20};
  if (size < 2) return 0;
  sl_tcp_decoder d = {.max_frame = max_frames[data[0] & 3]};
  run r = {.d = &d, .stop_after = (data[0] >> 2) & 7}; /* 0: never stop */
  size_t chunk = data[1] ? data[1] : 1; /* 255: whole reads in practice */
  if (data[1] == 255) chunk = SIZE_MAX;
  data += 2, size -= 2;
  while (size > 0) {
    size_t n = size < chunk ? size : chunk;
    /* Each read in its own allocation, so a frame read past its read is caught. */
    uint8_t *part = malloc(n);
    CHECK(part);
    memcpy(part, data, n);
    sl_tcp_status st = sl_tcp_decode(&d, part, n, on_frame, &r);
    free(part);
    CHECK(d.len <= d.cap);
    if (st != SL_TCP_OK) {
      CHECK(sl_tcp_status_text(st) != NULL);
      break; /* the server closes the connection on any other status */
    }
    data += n, size -= n;
  }
  sl_tcp_decoder_free(&d);
  return 0;
}
