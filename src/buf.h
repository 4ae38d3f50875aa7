/* Byte buffers: a growable scratch buffer, and immutable reference-counted
 * bytes that a broadcast shares among every recipient's outbound queue. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>

/* Growable bytes. The owner calls sl_sbuf_free; data is NULL until used. */
typedef struct {
  char *data;
  size_t len, cap;
} sl_sbuf;

/* Makes room for n more bytes; returns a pointer to them (NULL on OOM). */
char *sl_sbuf_reserve(sl_sbuf *b, size_t n);
int sl_sbuf_append(sl_sbuf *b, const void *p, size_t n);
int sl_sbuf_putc(sl_sbuf *b, char c);
int sl_sbuf_puts(sl_sbuf *b, const char *s);
void sl_sbuf_reset(sl_sbuf *b);
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
