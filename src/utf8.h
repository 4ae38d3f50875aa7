#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
bool sl_utf8_valid(const char *p, size_t n);
/* The length of the well-formed sequence of two to four bytes starting at
 * p (whose first byte is 0x80 or above) and ending by end; 0 when there is
 * none. */
size_t sl_utf8_seq_len(const char *p, const char *end);

#endif
