#include "envelope.h"

#include <string.h>

#include <stdbool.h>

#include "json.h"
#include "jsontext.h"

const char *sl_env_status_text(sl_env_status s) {
  switch (s) {
  case SL_ENV_OK: return "ok";
  case SL_ENV_INVALID_JSON: return "invalid JSON";
  case SL_ENV_NOT_OBJECT: return "message is not a JSON object";
  case SL_ENV_NO_EVENT: return "message has no event";
  case SL_ENV_BAD_BINARY_HEADER: return "malformed binary header";
  }
  return "unknown";
}

static bool name_ok(const char *name, size_t len) {
  return len > 0 && len <= SL_EVENT_NAME_MAX && !memchr(name, '\0', len);
}

/* The JSON string span (already validated) as a name of 1-256 bytes in
 * out; false otherwise. Names without escapes, the usual case, are copied
 * straight; others are unescaped in a buffer kept for the purpose. */
static bool name_from(const char *value, size_t len, char out[SL_EVENT_NAME_MAX + 1]) {
  static sl_sbuf unescaped;
  if (len < 2 || value[0] != '"') return false;
  const char *name = value + 1;
  size_t n = len - 2;
  if (memchr(name, '\\', n)) {
    sl_sbuf_reset(&unescaped);
    if (sl_jt_string(value, value + len, &unescaped) != value + len) return false;
    name = unescaped.data;
    n = unescaped.len;
  }
  if (!name_ok(name, n)) return false;
  memcpy(out, name, n);
  out[n] = '\0';
  return true;
}

static bool key_is(const char *key, size_t len, const char *want) {
  return len == strlen(want) && memcmp(key, want, len) == 0;
}

/* Event names without escapes are copied straight; others go through the
 * unescaper. Later duplicate keys win, as in JSON.parse. */
static void take_member(void *ud, const char *key, size_t key_len, const char *value, size_t value_len) {
  sl_envelope *env = ud;
  if (key_is(key, key_len, "event")) {
    if (!name_from(value, value_len, env->event)) env->event[0] = '\0';
  } else if (key_is(key, key_len, "data")) {
    env->data = value;
    env->data_len = value_len;
  } else if (key_is(key, key_len, "_ackName")) {
    if (!name_from(value, value_len, env->ack_name)) env->ack_name[0] = '\0';
  } else if (key_is(key, key_len, "_correlationId")) {
    env->correlation_id = value;
    env->correlation_id_len = value_len;
  }
}

/* Empty names and no spans; not a memset: the two name arrays are half a
 * kilobyte, and only their first bytes say they are empty. */
static void envelope_clear(sl_envelope *env) {
  env->event[0] = env->ack_name[0] = '\0';
  env->data = env->correlation_id = NULL;
  env->data_len = env->correlation_id_len = 0;
}

/* The walk of sl_envelope_parse_decoding: "data" decoded onto L's stack
 * where it lies (a later duplicate replacing an earlier one), every other
 * member skipped and taken as a span. */
typedef struct {
  sl_envelope *env;
  lua_State *L;
  bool data_pushed;
} decoding_walk;

static const char *take_value(void *ud, const char *key, size_t key_len, const char *value, const char *end) {
  decoding_walk *w = ud;
  if (!w->L || !key_is(key, key_len, "data")) {
    const char *p = sl_jt_skip(value, end, 1);
    if (p) take_member(w->env, key, key_len, value, (size_t)(p - value));
    return p;
  }
  if (w->data_pushed) lua_pop(w->L, 1);
  w->data_pushed = false;
  const char *p = sl_json_decode_value(w->L, value, end, 1); /* depth 1: inside the envelope, as a skip counts */
  if (!p) return NULL;
  w->data_pushed = true;
  w->env->data = value;
  w->env->data_len = (size_t)(p - value);
  return p;
}

static sl_env_status parse(lua_State *L, const char *text, size_t len, sl_envelope *env) {
  envelope_clear(env);
  const char *p = sl_jt_ws(text, text + len);
  if (p == text + len || (*p != '{' && !sl_jt_valid(text, len))) return SL_ENV_INVALID_JSON;
  if (*p != '{') return SL_ENV_NOT_OBJECT;
  decoding_walk walk = {env, L, false};
  int top = L ? lua_gettop(L) : 0;
  sl_env_status st = SL_ENV_OK;
  if (sl_jt_object_values(text, len, take_value, &walk) != 0) st = SL_ENV_INVALID_JSON;
  if (st == SL_ENV_OK && !env->event[0]) strcpy(env->event, env->ack_name);
  if (st == SL_ENV_OK && !env->event[0]) st = SL_ENV_NO_EVENT;
  if (L && st != SL_ENV_OK) lua_settop(L, top);
  else if (L && !walk.data_pushed) lua_pushnil(L);
  return st;
}

sl_env_status sl_envelope_parse(const char *text, size_t len, sl_envelope *env) {
  return parse(NULL, text, len, env);
}

sl_env_status sl_envelope_parse_decoding(lua_State *L, const char *text, size_t len, sl_envelope *env) {
  return parse(L, text, len, env);
}

sl_env_status sl_binary_parse(const uint8_t *msg, size_t len, sl_binary_msg *out) {
  if (len < 4) return SL_ENV_BAD_BINARY_HEADER;
  uint32_t hlen = (uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 | (uint32_t)msg[2] << 8 | msg[3];
  if (hlen == 0 || hlen > len - 4) return SL_ENV_BAD_BINARY_HEADER;
  sl_envelope header;
  envelope_clear(&header);
  const char *text = (const char *)msg + 4;
  if (sl_jt_object(text, hlen, take_member, &header) != 0 || !header.event[0]) return SL_ENV_BAD_BINARY_HEADER;
  memcpy(out->event, header.event, sizeof out->event);
  out->payload = msg + 4 + hlen;
  out->payload_len = len - 4 - hlen;
  return SL_ENV_OK;
}

int sl_envelope_build(sl_sbuf *out, const char *event, size_t event_len, const char *data_json,
                      size_t data_len) {
  if (sl_sbuf_puts(out, "{\"event\":") || sl_json_put_string(out, event, event_len) ||
      sl_sbuf_puts(out, ",\"data\":") || sl_sbuf_append(out, data_json, data_len))
    return -1;
  return sl_sbuf_putc(out, '}');
}

int sl_ack_reply_build(sl_sbuf *out, const char *name, size_t name_len, const char *data_json,
                       size_t data_len, const char *correlation_json, const char *error_msg) {
  if (sl_sbuf_puts(out, "{\"event\":") || sl_json_put_string(out, name, name_len) ||
      sl_sbuf_puts(out, ",\"data\":"))
    return -1;
  if (error_msg) {
    size_t elen = strlen(error_msg);
    if (sl_sbuf_puts(out, "{\"error\":") || sl_json_put_string(out, error_msg, elen) ||
        sl_sbuf_putc(out, '}'))
      return -1;
  } else if (sl_sbuf_append(out, data_json, data_len)) {
    return -1;
  }
  if (sl_sbuf_puts(out, ",\"_isAck\":true")) return -1;
  if (correlation_json &&
      (sl_sbuf_puts(out, ",\"_correlationId\":") || sl_sbuf_puts(out, correlation_json)))
    return -1;
  if (error_msg &&
      (sl_sbuf_puts(out, ",\"error\":") || sl_json_put_string(out, error_msg, strlen(error_msg))))
    return -1;
  return sl_sbuf_putc(out, '}');
}

int sl_binary_build(sl_sbuf *out, const char *event, size_t event_len, const void *bytes,
                    size_t len) {
  size_t mark = out->len;
  if (sl_sbuf_append(out, "\0\0\0\0", 4) || sl_sbuf_puts(out, "{\"event\":") ||
      sl_json_put_string(out, event, event_len) || sl_sbuf_putc(out, '}'))
    return -1;
  uint32_t hlen = (uint32_t)(out->len - mark - 4);
  unsigned char *h = (unsigned char *)out->data + mark;
  h[0] = (unsigned char)(hlen >> 24), h[1] = (unsigned char)(hlen >> 16);
  h[2] = (unsigned char)(hlen >> 8), h[3] = (unsigned char)hlen;
  return sl_sbuf_append(out, bytes, len);
}
