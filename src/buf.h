/* Byte buffers: a growable scratch buffer, and immutable reference-counted
 * bytes that a broadcast shares among every recipient's outbound queue. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Growable bytes. The owner calls sl_sbuf_free; data is NULL until used. */
typedef struct {
  char *data;
  size_t len, cap;
} sl_sbuf;

/* Makes room for n more bytes; returns a pointer to them (NULL on OOM). */
char *sl_sbuf_reserve(sl_sbuf *b, size_t n);
int sl_sbuf_append_slow(sl_sbuf *b, const void *p, size_t n);

/* Appends return 0, or -1 when out of memory. Inline, because encoders
 * call them for every few bytes; only growing leaves the fast path. */
static inline int sl_sbuf_append(sl_sbuf *b, const void *p, size_t n) {
  if (n > b->cap - b->len) return sl_sbuf_append_slow(b, p, n);
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}
static inline int sl_sbuf_putc(sl_sbuf *b, char c) {
  if (b->len == b->cap) return sl_sbuf_append_slow(b, &c, 1);
  b->data[b->len++] = c;
  return 0;
}
static inline int sl_sbuf_puts(sl_sbuf *b, const char *s) { return sl_sbuf_append(b, s, strlen(s)); }
static inline void sl_sbuf_reset(sl_sbuf *b) { b->len = 0; }
/* Gives back the spare capacity of bytes that are kept but will not grow. */
void sl_sbuf_fit(sl_sbuf *b);
void sl_sbuf_free(sl_sbuf *b);

/* Shared, immutable once built. Whoever holds a reference calls sl_buf_unref. */
typedef struct sl_buf {
  uint32_t refs;
  uint32_t len;
  char data[];
} sl_buf;

/* len may be lowered after sl_buf_new (never raised): the block's size
 * class follows the len it was made with. */
sl_buf *sl_buf_new(size_t len);
sl_buf *sl_buf_from(const void *p, size_t len);
static inline sl_buf *sl_buf_ref(sl_buf *b) {
  b->refs++;
  return b;
}
void sl_buf_unref(sl_buf *b);

#endif
