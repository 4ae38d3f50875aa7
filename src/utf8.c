#include "utf8.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The lead byte's sequence: how many continuation bytes follow, and the
 * range of the first of them (which rules out overlongs, surrogates and
 * code points above U+10FFFF). False for a byte that cannot lead. */
static bool lead(uint8_t c, sl_utf8_stream *st) {
  st->lo = 0x80, st->hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    st->need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    st->need = 2;
    if (c == 0xE0) st->lo = 0xA0;
    else if (c == 0xED) st->hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    st->need = 3;
    if (c == 0xF0) st->lo = 0x90;
    else if (c == 0xF4) st->hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

size_t sl_utf8_seq_len(const char *s, const char *end) {
  const uint8_t *p = (const uint8_t *)s;
  sl_utf8_stream st;
  if (!lead(p[0], &st) || (size_t)(end - s) <= st.need) return 0;
  if (p[1] < st.lo || p[1] > st.hi) return 0;
  for (size_t i = 2; i <= st.need; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return st.need + 1u;
}

bool sl_utf8_stream_feed(sl_utf8_stream *st, const char *s, size_t n) {
  const uint8_t *p = (const uint8_t *)s, *end = p + n;
  while (p < end) {
    if (st->need) {
      if (*p < st->lo || *p > st->hi) return false;
      st->lo = 0x80, st->hi = 0xBF;
      st->need--, p++;
      continue;
    }
#ifdef __SSE2__
    while (end - p >= 16) { /* between characters: ASCII sixteen bytes at a time */
      int high = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)p));
      if (high) {
        p += __builtin_ctz((unsigned)high); /* to the first byte of 0x80 and up */
        break;
      }
      p += 16;
    }
#endif
    while (end - p >= 8) { /* then eight at a time */
      uint64_t word;
      memcpy(&word, p, 8);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    while (p < end && *p < 0x80) p++; /* the last few ASCII bytes */
    if (p == end) break;
    if (!lead(*p++, st)) return false;
  }
  return true;
}

bool sl_utf8_valid(const char *s, size_t n) {
  sl_utf8_stream st = {0};
  return sl_utf8_stream_feed(&st, s, n) && sl_utf8_stream_complete(&st);
}
