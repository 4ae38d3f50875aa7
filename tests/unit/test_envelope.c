/* Unit tests for the v3 message envelope (envelope.c, PROTOCOL.md §3):
 * sl_envelope_parse, sl_envelope_parse_decoding, sl_binary_parse and the
 * three builders. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

#include "envelope.h"
#include "json.h"
#include "unit.h"

static lua_State *L;

/* The JSON of the value at the top of L's stack ("nil" for nil). */
static void encode_top(sl_sbuf *out) {
  char err[128];
  sl_sbuf_reset(out);
  if (lua_isnil(L, -1)) sl_sbuf_puts(out, "nil");
  else if (sl_json_encode(L, -1, out, err, sizeof err) != 0) sl_sbuf_puts(out, err);
}

/* Every text envelope is parsed both ways: sl_envelope_parse_decoding must
 * agree with sl_envelope_parse on the status and every field, push exactly
 * one value on success (nothing otherwise), and that value must be what a
 * separate decode of the data span gives (nil without data). */
static sl_env_status parse_at(const char *text, sl_envelope *env, const char *file, int line) {
  size_t len = strlen(text);
  sl_env_status st = sl_envelope_parse(text, len, env);
  sl_envelope decoded;
  int top = lua_gettop(L);
  sl_env_status st2 = sl_envelope_parse_decoding(L, text, len, &decoded);
  CHECK_EQ_INT_AT(st2, st, file, line);
  CHECK_EQ_INT_AT(lua_gettop(L), top + (st == SL_ENV_OK), file, line);
  if (st != SL_ENV_OK) return st;
  CHECK_EQ_STR_AT(decoded.event, env->event, file, line);
  CHECK_EQ_STR_AT(decoded.ack_name, env->ack_name, file, line);
  CHECK_AT(decoded.data == env->data && decoded.data_len == env->data_len, file, line);
  CHECK_AT(decoded.correlation_id == env->correlation_id && decoded.correlation_id_len == env->correlation_id_len,
           file, line);
  sl_sbuf got = {0}, want = {0};
  encode_top(&got);
  lua_settop(L, top);
  if (env->data && sl_json_decode(L, env->data, env->data_len) != 0) lua_pushliteral(L, "undecodable");
  else if (!env->data) lua_pushnil(L);
  encode_top(&want);
  lua_settop(L, top);
  CHECK_MEM_AT(got.data, got.len, want.data, want.len, file, line);
  sl_sbuf_free(&got);
  sl_sbuf_free(&want);
  return st;
}
#define parse(text, env) parse_at((text), (env), __FILE__, __LINE__)

/* A span of the message (data, correlation id) against the text it should hold. */
#define CHECK_SPAN(ptr, len, want) \
  CHECK_MEM_AT((ptr), (ptr) ? (len) : 0, (want), strlen(want), __FILE__, __LINE__)

/* ---- text envelopes ---- */

static void test_event_and_data(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"event\":\"chat\",\"data\":{\"text\":\"hi\",\"n\":[1,2]}}", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "chat");
  CHECK_EQ_STR(env.ack_name, "");
  CHECK_SPAN(env.data, env.data_len, "{\"text\":\"hi\",\"n\":[1,2]}");
  CHECK(env.correlation_id == NULL);
}

static void test_spacing_and_order(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse(" \n{ \"data\" : 42 ,\t\"event\" : \"tick\" }\r\n", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "tick");
  CHECK_SPAN(env.data, env.data_len, "42");
}

static void test_data_absent_or_null(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"event\":\"ping-me\"}", &env), SL_ENV_OK);
  CHECK(env.data == NULL);
  CHECK_EQ_INT(parse("{\"event\":\"e\",\"data\":null}", &env), SL_ENV_OK);
  CHECK_SPAN(env.data, env.data_len, "null");
  CHECK_EQ_INT(parse("{\"event\":\"e\",\"data\":\"s\"}", &env), SL_ENV_OK);
  CHECK_SPAN(env.data, env.data_len, "\"s\"");
}

static void test_missing_or_empty_event(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"data\":1}", &env), SL_ENV_NO_EVENT);
  CHECK_EQ_INT(parse("{}", &env), SL_ENV_NO_EVENT);
  CHECK_EQ_INT(parse("{\"event\":\"\"}", &env), SL_ENV_NO_EVENT);
  CHECK_EQ_INT(parse("{\"event\":null}", &env), SL_ENV_NO_EVENT);
  CHECK_EQ_INT(parse("{\"event\":17}", &env), SL_ENV_NO_EVENT);
  CHECK_EQ_INT(parse("{\"event\":[\"chat\"]}", &env), SL_ENV_NO_EVENT);
  CHECK_EQ_INT(parse("{\"Event\":\"chat\"}", &env), SL_ENV_NO_EVENT); /* keys are case-sensitive */
  /* A NUL cannot be part of a C-string event name. */
  CHECK_EQ_INT(parse("{\"event\":\"a\\u0000b\"}", &env), SL_ENV_NO_EVENT);
}

static void test_escaped_event_name(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"event\":\"say \\\"hi\\\"\\\\\\n\\u00e9\"}", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "say \"hi\"\\\n\xc3\xa9");
}

static void test_ack_request(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"event\":\"getUser\",\"data\":{\"id\":7},\"_ackName\":\"getUser\","
                     "\"_correlationId\":\"c-17\"}", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "getUser");
  CHECK_EQ_STR(env.ack_name, "getUser");
  CHECK_SPAN(env.data, env.data_len, "{\"id\":7}");
  CHECK_SPAN(env.correlation_id, env.correlation_id_len, "\"c-17\"");
}

/* PROTOCOL.md §3: _ackName alone suffices; the event is then the ACK name. */
static void test_ack_name_alone(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"_ackName\":\"getUser\",\"data\":1}", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "getUser");
  CHECK_EQ_STR(env.ack_name, "getUser");
  CHECK_EQ_INT(parse("{\"event\":\"\",\"_ackName\":\"sum\"}", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "sum");
  CHECK_EQ_INT(parse("{\"_ackName\":\"\"}", &env), SL_ENV_NO_EVENT);
  /* An event and a different ACK name stay apart. */
  CHECK_EQ_INT(parse("{\"event\":\"a\",\"_ackName\":\"b\"}", &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "a");
  CHECK_EQ_STR(env.ack_name, "b");
}

static void test_correlation_id_kinds(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"_ackName\":\"x\",\"_correlationId\":17}", &env), SL_ENV_OK);
  CHECK_SPAN(env.correlation_id, env.correlation_id_len, "17");
  CHECK_EQ_INT(parse("{\"_ackName\":\"x\",\"_correlationId\":\"a\\\"b\"}", &env), SL_ENV_OK);
  CHECK_SPAN(env.correlation_id, env.correlation_id_len, "\"a\\\"b\""); /* raw JSON, echoed as is */
}

static void test_not_an_object(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("[\"chat\",1]", &env), SL_ENV_NOT_OBJECT);
  CHECK_EQ_INT(parse("\"chat\"", &env), SL_ENV_NOT_OBJECT);
  CHECK_EQ_INT(parse("42", &env), SL_ENV_NOT_OBJECT);
  CHECK_EQ_INT(parse(" null ", &env), SL_ENV_NOT_OBJECT);
}

static void test_invalid_json(void) {
  static const char *const broken[] = {
      "",   "   ", "{",  "{\"event\":\"a\"", "{\"event\":}", "{\"event\" \"a\"}", "{\"event\":\"a\",}",
      "[1,", "chat", "{'event':'a'}", "{\"event\":\"a\"} x", "{\"event\":\"a\"}{}", "{\"event\":\"a\",\"data\":01}",
      "{\"event\":\"a\",\"data\":[1,2}",  "{\"event\":\"a\\x\"}",
  };
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
    sl_envelope env;
    if (!CHECK_EQ_INT(parse(broken[i], &env), SL_ENV_INVALID_JSON)) fprintf(stderr, "  for %s\n", broken[i]);
  }
}

/* Names are 1-256 bytes (SL_EVENT_NAME_MAX) after unescaping. */
static void test_event_name_length(void) {
  char text[SL_EVENT_NAME_MAX + 64], name[SL_EVENT_NAME_MAX + 2];
  sl_envelope env;
  memset(name, 'n', sizeof name);
  name[SL_EVENT_NAME_MAX] = '\0';
  snprintf(text, sizeof text, "{\"event\":\"%s\"}", name);
  CHECK_EQ_INT(parse(text, &env), SL_ENV_OK);
  CHECK_EQ_INT(strlen(env.event), SL_EVENT_NAME_MAX);
  name[SL_EVENT_NAME_MAX] = 'n', name[SL_EVENT_NAME_MAX + 1] = '\0';
  snprintf(text, sizeof text, "{\"event\":\"%s\"}", name);
  CHECK_EQ_INT(parse(text, &env), SL_ENV_NO_EVENT);
  snprintf(text, sizeof text, "{\"_ackName\":\"%s\"}", name);
  CHECK_EQ_INT(parse(text, &env), SL_ENV_NO_EVENT);
}

/* ---- binary messages: [u32 header length][header JSON][payload] ---- */

/* Builds a binary message by hand, with any declared header length. */
static size_t binary_msg(uint8_t *out, uint32_t declared, const char *header, const void *payload,
                         size_t payload_len) {
  size_t hlen = strlen(header);
  out[0] = (uint8_t)(declared >> 24), out[1] = (uint8_t)(declared >> 16);
  out[2] = (uint8_t)(declared >> 8), out[3] = (uint8_t)declared;
  memcpy(out + 4, header, hlen);
  memcpy(out + 4 + hlen, payload, payload_len);
  return 4 + hlen + payload_len;
}

static void test_binary_good(void) {
  uint8_t msg[128];
  const char *header = "{\"event\":\"upload\"}";
  size_t len = binary_msg(msg, (uint32_t)strlen(header), header, "\x00\x01\xff", 3);
  sl_binary_msg bin;
  CHECK_EQ_INT(sl_binary_parse(msg, len, &bin), SL_ENV_OK);
  CHECK_EQ_STR(bin.event, "upload");
  CHECK(bin.payload == msg + 4 + strlen(header));
  CHECK_MEM(bin.payload, bin.payload_len, "\x00\x01\xff", 3);
}

static void test_binary_empty_payload(void) {
  uint8_t msg[64];
  const char *header = "{\"event\":\"e\",\"_binary\":true}";
  size_t len = binary_msg(msg, (uint32_t)strlen(header), header, "", 0);
  sl_binary_msg bin;
  CHECK_EQ_INT(sl_binary_parse(msg, len, &bin), SL_ENV_OK);
  CHECK_EQ_STR(bin.event, "e");
  CHECK_EQ_INT(bin.payload_len, 0);
}

static sl_env_status binary_with_header(const char *header) {
  uint8_t msg[600];
  size_t len = binary_msg(msg, (uint32_t)strlen(header), header, "xyz", 3);
  sl_binary_msg bin;
  return sl_binary_parse(msg, len, &bin);
}

static void test_binary_bad_lengths(void) {
  uint8_t msg[64] = {0};
  sl_binary_msg bin;
  const char *header = "{\"event\":\"e\"}";
  size_t hlen = strlen(header);
  CHECK_EQ_INT(sl_binary_parse(msg, 0, &bin), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(sl_binary_parse((const uint8_t *)"\0\0\0", 3, &bin), SL_ENV_BAD_BINARY_HEADER);
  size_t len = binary_msg(msg, 0, header, "", 0);
  CHECK_EQ_INT(sl_binary_parse(msg, len, &bin), SL_ENV_BAD_BINARY_HEADER); /* length 0 */
  len = binary_msg(msg, (uint32_t)hlen + 1, header, "", 0);
  CHECK_EQ_INT(sl_binary_parse(msg, len, &bin), SL_ENV_BAD_BINARY_HEADER); /* one past the end */
  len = binary_msg(msg, 0xffffffffu, header, "pp", 2);
  CHECK_EQ_INT(sl_binary_parse(msg, len, &bin), SL_ENV_BAD_BINARY_HEADER);
  len = binary_msg(msg, (uint32_t)hlen - 1, header, "", 0); /* cuts the header short */
  CHECK_EQ_INT(sl_binary_parse(msg, len, &bin), SL_ENV_BAD_BINARY_HEADER);
}

static void test_binary_bad_headers(void) {
  CHECK_EQ_INT(binary_with_header("not json"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header("{\"event\":"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header("{\"data\":1}"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header("{\"event\":\"\"}"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header("{\"event\":5}"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header("[\"event\",\"e\"]"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header("\"e\""), SL_ENV_BAD_BINARY_HEADER);
  /* The declared span must be exactly one JSON object, as a text envelope
   * must (sl_envelope_parse rejects trailing bytes too). */
  CHECK_EQ_INT(binary_with_header("{\"event\":\"e\"}junk"), SL_ENV_BAD_BINARY_HEADER);
  CHECK_EQ_INT(binary_with_header(" {\"event\":\"e\"} "), SL_ENV_OK);
}

static void test_binary_event_name_length(void) {
  char header[SL_EVENT_NAME_MAX + 32], name[SL_EVENT_NAME_MAX + 2];
  memset(name, 'b', sizeof name);
  name[SL_EVENT_NAME_MAX] = '\0';
  snprintf(header, sizeof header, "{\"event\":\"%s\"}", name);
  CHECK_EQ_INT(binary_with_header(header), SL_ENV_OK);
  name[SL_EVENT_NAME_MAX] = 'b', name[SL_EVENT_NAME_MAX + 1] = '\0';
  snprintf(header, sizeof header, "{\"event\":\"%s\"}", name);
  CHECK_EQ_INT(binary_with_header(header), SL_ENV_BAD_BINARY_HEADER);
}

/* ---- builders ---- */

#define CHECK_BUILT(buf, want) CHECK_MEM((buf).data, (buf).len, LIT(want))

static void test_envelope_build(void) {
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_envelope_build(&out, LIT("chat"), LIT("{\"text\":\"hi\"}")), 0);
  CHECK_BUILT(out, "{\"event\":\"chat\",\"data\":{\"text\":\"hi\"}}");
  /* Builders append. */
  CHECK_EQ_INT(sl_envelope_build(&out, LIT("n"), LIT("null")), 0);
  CHECK_BUILT(out, "{\"event\":\"chat\",\"data\":{\"text\":\"hi\"}}{\"event\":\"n\",\"data\":null}");
  sl_sbuf_free(&out);
}

static void test_envelope_build_escapes_event(void) {
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_envelope_build(&out, LIT("q\"b\\c\n\t\x01\x1f/\xc3\xa9"), LIT("1")), 0);
  CHECK_BUILT(out, "{\"event\":\"q\\\"b\\\\c\\n\\t\\u0001\\u001f/\xc3\xa9\",\"data\":1}");
  /* What the builder writes, the parser reads back. */
  sl_envelope env;
  CHECK_EQ_INT(sl_envelope_parse(out.data, out.len, &env), SL_ENV_OK);
  CHECK_EQ_STR(env.event, "q\"b\\c\n\t\x01\x1f/\xc3\xa9");
  sl_sbuf_free(&out);
}

static void test_ack_reply_build(void) {
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_ack_reply_build(&out, LIT("getUser"), LIT("{\"id\":7}"), "\"c-17\"", NULL), 0);
  CHECK_BUILT(out, "{\"event\":\"getUser\",\"data\":{\"id\":7},\"_isAck\":true,\"_correlationId\":\"c-17\"}");
  sl_sbuf_reset(&out);
  CHECK_EQ_INT(sl_ack_reply_build(&out, LIT("sum"), LIT("3"), "42", NULL), 0);
  CHECK_BUILT(out, "{\"event\":\"sum\",\"data\":3,\"_isAck\":true,\"_correlationId\":42}");
  sl_sbuf_reset(&out);
  CHECK_EQ_INT(sl_ack_reply_build(&out, LIT("sum"), LIT("3"), NULL, NULL), 0);
  CHECK_BUILT(out, "{\"event\":\"sum\",\"data\":3,\"_isAck\":true}");
  sl_sbuf_free(&out);
}

/* Ours (PROTOCOL.md §3): a failed ACK handler answers at once. */
static void test_ack_error_reply_build(void) {
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_ack_reply_build(&out, LIT("x"), LIT("ignored"), "\"c\"", "m"), 0);
  CHECK_BUILT(out, "{\"event\":\"x\",\"data\":{\"error\":\"m\"},\"_isAck\":true,\"_correlationId\":\"c\",\"error\":\"m\"}");
  sl_sbuf_reset(&out);
  CHECK_EQ_INT(sl_ack_reply_build(&out, LIT("x"), NULL, 0, NULL, "bad \"input\"\n"), 0);
  CHECK_BUILT(out, "{\"event\":\"x\",\"data\":{\"error\":\"bad \\\"input\\\"\\n\"},\"_isAck\":true,"
                   "\"error\":\"bad \\\"input\\\"\\n\"}");
  sl_sbuf_free(&out);
}

static void test_binary_build(void) {
  sl_sbuf out = {0};
  sl_sbuf_puts(&out, "AB"); /* builders append: the length prefix goes at the mark */
  CHECK_EQ_INT(sl_binary_build(&out, LIT("img"), "\x00\xff\x10", 3), 0);
  static const char want[] = "AB\x00\x00\x00\x0f{\"event\":\"img\"}\x00\xff\x10";
  CHECK_MEM(out.data, out.len, want, sizeof want - 1);
  sl_sbuf_free(&out);
}

static void test_binary_build_round_trip(void) {
  static const char event[] = "pic \"1\"\\\x02";
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_binary_build(&out, LIT(event), "", 0), 0);
  sl_binary_msg bin;
  if (!CHECK_EQ_INT(sl_binary_parse((const uint8_t *)out.data, out.len, &bin), SL_ENV_OK)) goto done;
  CHECK_EQ_STR(bin.event, event);
  CHECK_EQ_INT(bin.payload_len, 0);
  uint32_t hlen = (uint32_t)(uint8_t)out.data[0] << 24 | (uint32_t)(uint8_t)out.data[1] << 16 |
                  (uint32_t)(uint8_t)out.data[2] << 8 | (uint8_t)out.data[3];
  CHECK_EQ_INT(hlen, out.len - 4);
done:
  sl_sbuf_free(&out);
}

/* A payload past 64 KiB: the header length stays the header's. */
static void test_binary_build_large_payload(void) {
  size_t n = 70000;
  char *payload = malloc(n);
  if (!CHECK(payload != NULL)) return;
  for (size_t i = 0; i < n; i++) payload[i] = (char)(i * 7);
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_binary_build(&out, LIT("big"), payload, n), 0);
  sl_binary_msg bin;
  CHECK_EQ_INT(sl_binary_parse((const uint8_t *)out.data, out.len, &bin), SL_ENV_OK);
  CHECK_MEM(bin.payload, bin.payload_len, payload, n);
  CHECK_MEM(out.data, 4, "\x00\x00\x00\x0f", 4);
  sl_sbuf_free(&out);
  free(payload);
}

static void test_status_text(void) {
  CHECK_EQ_STR(sl_env_status_text(SL_ENV_OK), "ok");
  CHECK(strlen(sl_env_status_text(SL_ENV_INVALID_JSON)) > 0);
  CHECK(strlen(sl_env_status_text(SL_ENV_BAD_BINARY_HEADER)) > 0);
}

/* A later "data" replaces an earlier one on the stack, as in JSON.parse;
 * bad data after good leaves nothing behind. */
static void test_decoding_duplicate_and_bad_data(void) {
  sl_envelope env;
  CHECK_EQ_INT(parse("{\"data\":[1],\"event\":\"e\",\"data\":{\"k\":2}}", &env), SL_ENV_OK);
  CHECK_SPAN(env.data, env.data_len, "{\"k\":2}");
  CHECK_EQ_INT(parse("{\"event\":\"e\",\"data\":{\"k\":2},\"data\":[1,}", &env), SL_ENV_INVALID_JSON);
  CHECK_EQ_INT(parse("{\"data\":{\"k\":[true,null]}}", &env), SL_ENV_NO_EVENT);
}

/* Nesting counts from the envelope, as the skip of the plain parse does. */
static void test_decoding_depth_limit(void) {
  sl_sbuf text = {0};
  for (int levels = SL_JSON_MAX_NESTING - 2; levels <= SL_JSON_MAX_NESTING; levels++) {
    sl_sbuf_reset(&text);
    sl_sbuf_puts(&text, "{\"event\":\"deep\",\"data\":");
    for (int i = 0; i < levels; i++) sl_sbuf_putc(&text, '[');
    for (int i = 0; i < levels; i++) sl_sbuf_putc(&text, ']');
    sl_sbuf_putc(&text, '}');
    sl_sbuf_putc(&text, '\0');
    sl_envelope env;
    CHECK_EQ_INT(parse(text.data, &env), levels < SL_JSON_MAX_NESTING ? SL_ENV_OK : SL_ENV_INVALID_JSON);
  }
  sl_sbuf_free(&text);
}

int main(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  test_decoding_duplicate_and_bad_data();
  test_decoding_depth_limit();
  test_event_and_data();
  test_spacing_and_order();
  test_data_absent_or_null();
  test_missing_or_empty_event();
  test_escaped_event_name();
  test_ack_request();
  test_ack_name_alone();
  test_correlation_id_kinds();
  test_not_an_object();
  test_invalid_json();
  test_event_name_length();
  test_binary_good();
  test_binary_empty_payload();
  test_binary_bad_lengths();
  test_binary_bad_headers();
  test_binary_event_name_length();
  test_envelope_build();
  test_envelope_build_escapes_event();
  test_ack_reply_build();
  test_ack_error_reply_build();
  test_binary_build();
  test_binary_build_round_trip();
  test_binary_build_large_payload();
  test_status_text();
  lua_close(L);
  return unit_summary("test_envelope");
}
