#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
bool sl_utf8_valid(const char *p, size_t n);
/* The length of the well-formed sequence of two to four bytes starting at
 * p (whose first byte is 0x80 or above) and ending by end; 0 when there is
 * none. */
size_t sl_utf8_seq_len(const char *p, const char *end);

/* UTF-8 checked as it arrives in pieces (a text message, frame by frame):
 * a sequence may be cut between pieces, and a fault is seen at the byte
 * where it is, not at the message's end. Zeroed means "at a boundary". */
typedef struct {
  uint8_t need;   /* continuation bytes still to come */
  uint8_t lo, hi; /* the range the next one must be in */
} sl_utf8_stream;

/* False at the first byte that no UTF-8 text can have there. */
bool sl_utf8_stream_feed(sl_utf8_stream *st, const char *p, size_t n);
/* True when the bytes fed so far end where a character ends. */
static inline bool sl_utf8_stream_complete(const sl_utf8_stream *st) { return st->need == 0; }

#endif
