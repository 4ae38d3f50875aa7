/* permessage-deflate (RFC 7692): the offer negotiation, and bounded
 * inflate / shared deflate of whole messages. Pure, for tests and fuzzers. */
#ifndef SL_DEFLATE_H
#define SL_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

typedef struct sl_pmd {
  bool client_no_context_takeover; /* the client resets its compressor each message */
  int client_max_window_bits;      /* the window we inflate with (8-15) */
  int server_max_window_bits;      /* the window we deflate with (9-15) */
} sl_pmd;

/* Picks the first acceptable permessage-deflate offer of a
 * Sec-WebSocket-Extensions header. Returns true and fills params and the
 * response header's value ("permessage-deflate; ..."); we always answer
 * server_no_context_takeover, so one compressed frame serves every
 * recipient of a broadcast. */
bool sl_pmd_negotiate(const char *offers, sl_pmd *params, char *response, size_t size);

typedef struct sl_inflater sl_inflater;
sl_inflater *sl_inflater_new(int window_bits);
void sl_inflater_free(sl_inflater *z);

typedef enum { SL_INFLATE_OK = 0, SL_INFLATE_CORRUPT = -1, SL_INFLATE_TOO_BIG = -2 } sl_inflate_result;
/* Inflates one message (its trailing 00 00 ff ff added) into out; stops
 * without allocating past max bytes of output (a deflate bomb). With
 * reset, the next message starts a fresh context. */
sl_inflate_result sl_inflate_message(sl_inflater *z, const char *in, size_t n, size_t max, bool reset, sl_sbuf *out);

/* Deflates one message with no context takeover into out (the trailing
 * 00 00 ff ff removed). window_bits 9-15. Returns 0 or -1. */
int sl_deflate_message(int window_bits, const char *in, size_t n, sl_sbuf *out);

#endif
