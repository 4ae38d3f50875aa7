/* libFuzzer target: what a WebSocket message meets after wslay.
 *
 * Every input goes through all three checks the message path makes:
 *   - sl_utf8_valid (text messages, 1007 when false), compared with a
 *     plain byte-by-byte decoder written from RFC 3629, at two alignments;
 *   - sl_envelope_parse (the JSON text envelope): on success the event is
 *     1-256 bytes without NUL, and the data and correlation spans lie inside
 *     the message and are each one well-formed JSON value;
 *   - sl_envelope_parse_decoding (what the server calls): the same status
 *     and spans, and exactly one value pushed on success, none otherwise;
 *   - sl_binary_parse (the [u32 length][{"event":..}] binary header): on
 *     success the payload is the tail of the message. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "envelope.h"
#include "jsontext.h"
#include "utf8.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) abort();                                                                          \
  } while (0)

/* RFC 3629 section 4, one code point at a time. */
static bool reference_utf8(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    uint32_t cp, min;
    size_t need;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F, need = 1, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F, need = 2, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07, need = 3, min = 0x10000;
    } else {
      return false;
    }
    if (n - i <= need) return false;
    for (size_t k = 1; k <= need; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += need + 1;
  }
  return true;
}

static bool inside(const void *span, size_t len, const uint8_t *data, size_t size) {
  const uint8_t *s = span;
  return s >= data && len <= size && s - data <= (ptrdiff_t)(size - len);
}

static void check_decoding_agrees(const uint8_t *data, size_t size, sl_env_status st, const sl_envelope *env) {
  static lua_State *L;
  if (!L) L = luaL_newstate();
  sl_envelope decoded;
  sl_env_status st2 = sl_envelope_parse_decoding(L, (const char *)data, size, &decoded);
  CHECK(st2 == st);
  CHECK(lua_gettop(L) == (st == SL_ENV_OK));
  if (st == SL_ENV_OK) {
    CHECK(strcmp(decoded.event, env->event) == 0 && strcmp(decoded.ack_name, env->ack_name) == 0);
    CHECK(decoded.data == env->data && decoded.data_len == env->data_len);
    CHECK(env->data || lua_isnil(L, -1));
  }
  lua_settop(L, 0);
}

static void check_envelope(const uint8_t *data, size_t size) {
  sl_envelope env;
  sl_env_status st = sl_envelope_parse((const char *)data, size, &env);
  CHECK(sl_env_status_text(st) != NULL);
  check_decoding_agrees(data, size, st, &env);
  if (st != SL_ENV_OK) return;
  size_t elen = strnlen(env.event, sizeof env.event);
  CHECK(elen >= 1 && elen <= SL_EVENT_NAME_MAX);
  CHECK(strnlen(env.ack_name, sizeof env.ack_name) <= SL_EVENT_NAME_MAX);
  if (env.data) {
    CHECK(inside(env.data, env.data_len, data, size));
    CHECK(sl_jt_valid(env.data, env.data_len));
  }
  if (env.correlation_id) {
    CHECK(inside(env.correlation_id, env.correlation_id_len, data, size));
    CHECK(sl_jt_valid(env.correlation_id, env.correlation_id_len));
  }
}

static void check_binary(const uint8_t *data, size_t size) {
  sl_binary_msg msg;
  sl_env_status st = sl_binary_parse(data, size, &msg);
  if (st != SL_ENV_OK) return;
  size_t elen = strnlen(msg.event, sizeof msg.event);
  CHECK(elen >= 1 && elen <= SL_EVENT_NAME_MAX);
  CHECK(inside(msg.payload, msg.payload_len, data, size));
  CHECK(msg.payload + msg.payload_len == data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly size bytes, so a read one past the message is caught
   * (libFuzzer's own buffer is exact too; this keeps it so if that changes). */
  uint8_t *msg = malloc(size ? size : 1);
  CHECK(msg);
  if (size) memcpy(msg, data, size);

  bool ref = reference_utf8(msg, size);
  CHECK(sl_utf8_valid((const char *)msg, size) == ref);
  if (size > 1) CHECK(sl_utf8_valid((const char *)msg + 1, size - 1) == reference_utf8(msg + 1, size - 1));

  /* The server checks UTF-8 before it parses a text message: parse the
   * valid ones as text (and the rest anyway: the parser must not rely on it). */
  check_envelope(msg, size);
  check_binary(msg, size);
  free(msg);
  return 0;
}
