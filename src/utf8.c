#include "utf8.h"

#include <stdint.h>

#include <string.h>

size_t sl_utf8_seq_len(const char *s, const char *end) {
  const uint8_t *p = (const uint8_t *)s;
  uint8_t c = p[0];
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;      /* overlong */
    else if (c == 0xED) hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;      /* overlong */
    else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0;
  }
  if ((size_t)(end - s) <= need) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i <= need; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return need + 1;
}

bool sl_utf8_valid(const char *s, size_t n) {
  const char *p = s, *end = s + n;
  while (p < end) {
    /* Most text is ASCII: skip it eight bytes at a time. */
    while (end - p >= 8) {
      uint64_t word;
      memcpy(&word, p, 8);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p == end) break;
    if ((unsigned char)*p < 0x80) {
      p++;
      continue;
    }
    size_t len = sl_utf8_seq_len(p, end);
    if (!len) return false;
    p += len;
  }
  return true;
}
