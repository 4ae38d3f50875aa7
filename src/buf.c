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

int sl_sbuf_append(sl_sbuf *b, const void *p, size_t n) {
  char *dst = sl_sbuf_reserve(b, n);
  if (!dst) return -1;
  memcpy(dst, p, n);
  b->len += n;
  return 0;
}

int sl_sbuf_putc(sl_sbuf *b, char c) { return sl_sbuf_append(b, &c, 1); }

int sl_sbuf_puts(sl_sbuf *b, const char *s) { return sl_sbuf_append(b, s, strlen(s)); }

void sl_sbuf_reset(sl_sbuf *b) { b->len = 0; }

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

sl_buf *sl_buf_new(size_t len) {
  if (len > UINT32_MAX) return NULL;
  sl_buf *b = malloc(sizeof *b + len);
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
  if (b && --b->refs == 0) free(b);
}
