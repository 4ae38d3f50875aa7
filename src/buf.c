#include "buf.h"

#include <stdlib.h>
#include <string.h>

char *sl_sbuf_reserve(sl_sbuf *b, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return NULL;
    b->data = p;
    b->cap = cap;
  }
  return b->data + b->len;
}

int sl_sbuf_append_slow(sl_sbuf *b, const void *p, size_t n) {
  char *dst = sl_sbuf_reserve(b, n);
  if (!dst) return -1;
  memcpy(dst, p, n);
  b->len += n;
  return 0;
}

void sl_sbuf_fit(sl_sbuf *b) {
  if (b->cap == b->len || !b->len) return;
  char *p = realloc(b->data, b->len);
  if (!p) return; /* keeping the larger block is no harm */
  b->data = p;
  b->cap = b->len;
}

void sl_sbuf_free(sl_sbuf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Most frames are small and live for one loop turn: blocks for them are
 * kept on a free list (bounded) instead of going back to malloc, which a
 * burst of hundreds in flight would otherwise push off its fast path. */
#define SMALL_BLOCK 256
#define SMALL_DATA (SMALL_BLOCK - sizeof(sl_buf))
#define SMALL_KEPT 4096
/* Under AddressSanitizer every block goes back to free(), so that a use
 * after the last unref is still caught. */
#ifdef __SANITIZE_ADDRESS__
#define POOLING 0
#else
#define POOLING 1
#endif

static sl_buf *small_free[SMALL_KEPT];
static unsigned n_small_free;

sl_buf *sl_buf_new(size_t len) {
  if (len > UINT32_MAX) return NULL;
  sl_buf *b;
  if (len <= SMALL_DATA) b = n_small_free ? small_free[--n_small_free] : malloc(SMALL_BLOCK);
  else b = malloc(sizeof *b + len);
  if (!b) return NULL;
  b->refs = 1;
  b->len = (uint32_t)len;
  return b;
}

sl_buf *sl_buf_from(const void *p, size_t len) {
  sl_buf *b = sl_buf_new(len);
  if (b && len) memcpy(b->data, p, len);
  return b;
}

void sl_buf_unref(sl_buf *b) {
  if (!b || --b->refs > 0) return;
  if (POOLING && b->len <= SMALL_DATA && n_small_free < SMALL_KEPT) small_free[n_small_free++] = b;
  else free(b);
}
