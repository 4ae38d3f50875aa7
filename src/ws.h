/* WebSocket on a connection: wslay's frame layer parses the frames clients
 * send (headers, lengths, unmasking); fragmentation, UTF-8, control frames
 * and the closing handshake are handled here; frames the server sends are
 * built here once and shared through the outbound queue. */
#ifndef SL_WS_H
#define SL_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"

enum { SL_WS_CONTINUATION = 0, SL_WS_TEXT = 1, SL_WS_BINARY = 2, SL_WS_CLOSE = 8, SL_WS_PING = 9, SL_WS_PONG = 10 };

/* Switches an upgraded connection to WebSocket (its state is made when it
 * first speaks). */
void sl_ws_attach(sl_conn *c);

/* A complete unmasked server frame. Pure, for tests. */
sl_buf *sl_ws_frame(int opcode, const void *payload, size_t len);
/* The same with RSV1 set: a permessage-deflate compressed message. */
sl_buf *sl_ws_frame_rsv1(int opcode, bool rsv1, const void *payload, size_t len);

/* A close code either side may put on the wire (RFC 6455 7.4 and the IANA
 * registry): 1000-1003, 1007-1014, 3000-4999. 1004-1006 and 1015 mean
 * "none" or "abnormal" and are never sent; the rest is unassigned. The one
 * rule for a client's CLOSE and for ctx:close. */
bool sl_ws_close_code_valid(long long code);

/* Makes c's WebSocket inflate and deflate messages as negotiated; -1 when
 * out of memory. */
struct sl_pmd;
int sl_ws_enable_deflate(sl_conn *c, const struct sl_pmd *params);

#endif
