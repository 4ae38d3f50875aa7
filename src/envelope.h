/* The stelar v3 message envelope (PROTOCOL.md §3): functions over buffers
 * (one also decoding "data" onto a Lua stack), so unit tests and fuzzers
 * reach them without a socket.
 *
 *   {"event": "chat", "data": <any>}                       an event
 *   {..., "_ackName": "getUser", "_correlationId": "c-17"} an ACK request
 *   {..., "_isAck": true, "_correlationId": "c-17"}        an ACK reply
 *   [u32 header length][{"event":"name"}][raw bytes]       a binary event */
#ifndef SL_ENVELOPE_H
#define SL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "buf.h"

#define SL_EVENT_NAME_MAX 256

typedef enum {
  SL_ENV_OK = 0,
  SL_ENV_INVALID_JSON,
  SL_ENV_NOT_OBJECT,
  SL_ENV_NO_EVENT, /* no "event" string and no "_ackName" */
  SL_ENV_BAD_BINARY_HEADER,
} sl_env_status;

/* A parsed text envelope. Spans point into the message text. */
typedef struct {
  char event[SL_EVENT_NAME_MAX + 1];    /* the event, or the ACK name when only that is given */
  char ack_name[SL_EVENT_NAME_MAX + 1]; /* empty when not an ACK request */
  const char *data;                     /* the JSON text of "data"; NULL when absent */
  size_t data_len;
  const char *correlation_id;           /* the JSON text of "_correlationId"; NULL when absent */
  size_t correlation_id_len;
} sl_envelope;

sl_env_status sl_envelope_parse(const char *text, size_t len, sl_envelope *env);
/* The same, with "data" decoded onto L's stack as it is met instead of
 * checked now and scanned again by a later decode: on SL_ENV_OK one value
 * more is on the stack (nil when there is no "data"), otherwise none. */
sl_env_status sl_envelope_parse_decoding(lua_State *L, const char *text, size_t len, sl_envelope *env);
const char *sl_env_status_text(sl_env_status s);

/* A binary event; event and payload point into the message. */
typedef struct {
  char event[SL_EVENT_NAME_MAX + 1];
  const uint8_t *payload;
  size_t payload_len;
} sl_binary_msg;

sl_env_status sl_binary_parse(const uint8_t *msg, size_t len, sl_binary_msg *out);

/* Builders append to out. data_json is already-encoded JSON text. */
int sl_envelope_build(sl_sbuf *out, const char *event, size_t event_len, const char *data_json,
                      size_t data_len);
/* An ACK reply; correlation_json is JSON text or NULL; error_msg, when not
 * NULL, makes it the error reply of our extension (data_json is ignored). */
int sl_ack_reply_build(sl_sbuf *out, const char *name, size_t name_len, const char *data_json,
                       size_t data_len, const char *correlation_json, const char *error_msg);
int sl_binary_build(sl_sbuf *out, const char *event, size_t event_len, const void *bytes,
                    size_t len);

#endif
