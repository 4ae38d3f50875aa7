/* Unit tests for JSON <-> Lua (json.c): sl_json_decode, sl_json_encode and
 * sl_json_put_string, on a plain LuaJIT state set up the way
 * sl_lua_open_stelar sets up the array metatable. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "json.h"
#include "jsontext.h" /* SL_JSON_MAX_NESTING, the decoder's limit */
#include "unit.h"

static lua_State *L;

/* Test-side Lua: array() and null as the stelar module gives them, and a
 * structural equality that also compares metatables, so an array must
 * come back marked and an object unmarked. */
static const char prelude[] =
    "local A = debug.getregistry()['stelar.array']\n"
    "function array(t) return setmetatable(t or {}, A) end\n"
    "function deep_equal(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
    "  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "function nest(levels) local t = {} for i = 2, levels do t = {t} end return t end\n"
    "function cycle() local t = {} t.self = t return t end\n";

static lua_State *new_state(void) {
  lua_State *s = luaL_newstate();
  luaL_openlibs(s);
  luaL_newmetatable(s, SL_JSON_ARRAY_MT); /* as src/lua_stelar.c does */
  lua_pushliteral(s, "array");
  lua_setfield(s, -2, "__jsontype");
  lua_pop(s, 1);
  lua_pushlightuserdata(s, NULL);
  lua_setglobal(s, "null");
  if (luaL_dostring(s, prelude) != 0) {
    fprintf(stderr, "prelude: %s\n", lua_tostring(s, -1));
    exit(2);
  }
  return s;
}

/* Pushes the value of a Lua expression; false (nothing pushed) when it fails. */
static bool push_expr_at(const char *expr, const char *file, int line) {
  lua_pushfstring(L, "return %s", expr);
  int failed = luaL_loadstring(L, lua_tostring(L, -1)) || lua_pcall(L, 0, 1, 0);
  lua_remove(L, -2);
  if (!CHECK_AT(!failed, file, line)) {
    fprintf(stderr, "  Lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return false;
  }
  return true;
}

/* ---- encoding ---- */

static sl_sbuf encoded;     /* the text of the last encode */
static char encode_err[256]; /* its message when it failed */

/* Encodes the value of expr into `encoded`; the stack must be as it was. */
static int encode_expr_at(const char *expr, const char *file, int line) {
  sl_sbuf_reset(&encoded);
  if (!push_expr_at(expr, file, line)) return -2;
  int top = lua_gettop(L);
  int rc = sl_json_encode(L, top, &encoded, encode_err, sizeof encode_err);
  CHECK_EQ_INT_AT(lua_gettop(L), top, file, line);
  lua_pop(L, 1);
  return rc;
}

static void encodes_to_at(const char *expr, const char *want, const char *file, int line) {
  int rc = encode_expr_at(expr, file, line);
  if (!CHECK_EQ_INT_AT(rc, 0, file, line)) fprintf(stderr, "  encoding %s: %s\n", expr, encode_err);
  else CHECK_MEM_AT(encoded.data, encoded.len, want, strlen(want), file, line);
}

/* The encode fails, says something containing `reason`, and leaves no text. */
static void encode_fails_at(const char *expr, const char *reason, const char *file, int line) {
  int rc = encode_expr_at(expr, file, line);
  if (!CHECK_EQ_INT_AT(rc, -1, file, line)) {
    fprintf(stderr, "  encoding %s gave %.*s\n", expr, (int)encoded.len, encoded.data);
    return;
  }
  if (!CHECK_AT(strstr(encode_err, reason) != NULL, file, line))
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", encode_err, reason);
  CHECK_EQ_INT_AT(encoded.len, 0, file, line);
}

#define ENCODES_TO(expr, want) encodes_to_at((expr), (want), __FILE__, __LINE__)
#define ENCODE_FAILS(expr, reason) encode_fails_at((expr), (reason), __FILE__, __LINE__)

/* ---- decoding ---- */

/* Decodes text; on success the value is pushed (one more slot), on failure
 * the stack is as it was. */
static int decode_at(const char *text, size_t len, const char *file, int line) {
  int top = lua_gettop(L);
  int rc = sl_json_decode(L, text, len);
  CHECK_EQ_INT_AT(lua_gettop(L), rc == 0 ? top + 1 : top, file, line);
  return rc;
}

/* Deep-compares the value on top (popped) with the value of expr. */
static bool top_equals_at(const char *expr, const char *file, int line) {
  lua_getglobal(L, "deep_equal");
  lua_insert(L, -2);
  if (!push_expr_at(expr, file, line)) {
    lua_pop(L, 2);
    return false;
  }
  lua_call(L, 2, 1);
  bool equal = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return CHECK_AT(equal, file, line);
}

static void decodes_as_at(const char *text, const char *expr, const char *file, int line) {
  if (!CHECK_EQ_INT_AT(decode_at(text, strlen(text), file, line), 0, file, line)) return;
  if (!top_equals_at(expr, file, line)) fprintf(stderr, "  %s did not decode as %s\n", text, expr);
}

static void decode_fails_at(const char *text, size_t len, const char *file, int line) {
  if (!CHECK_EQ_INT_AT(decode_at(text, len, file, line), -1, file, line)) {
    fprintf(stderr, "  accepted: %.*s%s\n", len > 60 ? 60 : (int)len, text, len > 60 ? "..." : "");
    lua_pop(L, 1);
  }
}

#define DECODES_AS(text, expr) decodes_as_at((text), (expr), __FILE__, __LINE__)
#define DECODE_FAILS(text) decode_fails_at((text), strlen(text), __FILE__, __LINE__)

/* ---- decode ---- */

static void test_decode_scalars(void) {
  DECODES_AS("\"hi\"", "'hi'");
  DECODES_AS("42", "42");
  DECODES_AS("-7", "-7");
  DECODES_AS("-1.5e2", "-150");
  DECODES_AS("0.1", "0.1");
  DECODES_AS("123456789012345678901234", "123456789012345678901234");
  DECODES_AS("true", "true");
  DECODES_AS("false", "false");
  DECODES_AS("  \t\r\n 5 \n", "5");
}

static void test_decode_null_is_null_lightuserdata(void) {
  if (!CHECK_EQ_INT(decode_at(LIT("null"), __FILE__, __LINE__), 0)) return;
  CHECK_EQ_INT(lua_type(L, -1), LUA_TLIGHTUSERDATA);
  CHECK(lua_touserdata(L, -1) == NULL);
  lua_pop(L, 1);
  DECODES_AS("{\"a\":null,\"b\":[null]}", "{a = null, b = array{null}}");
}

/* JSON.parse("-0") is -0, as "-0.0" and "-0e0" already decode here. */
static void test_decode_negative_zero(void) {
  static const char *const zeros[] = {"-0", "-0.0", "-0e0"};
  for (size_t i = 0; i < 3; i++) {
    if (!CHECK_EQ_INT(decode_at(zeros[i], strlen(zeros[i]), __FILE__, __LINE__), 0)) continue;
    double d = lua_tonumber(L, -1);
    if (!CHECK(d == 0 && signbit(d))) fprintf(stderr, "  %s decoded as %g\n", zeros[i], d);
    lua_pop(L, 1);
  }
}

static void test_decode_containers(void) {
  DECODES_AS("{}", "{}");
  DECODES_AS("[]", "array{}");
  DECODES_AS("[1,\"two\",true]", "array{1, 'two', true}");
  DECODES_AS("{\"a\":1,\"b\":{\"c\":[[],[{}]]}}", "{a = 1, b = {c = array{array{}, array{{}}}}}");
  DECODES_AS(" [ 1 , { \"k\" : [ ] } ] ", "array{1, {k = array{}}}");
  DECODES_AS("{\"a\":1,\"a\":2}", "{a = 2}"); /* the last duplicate wins, as in JSON.parse */
  DECODES_AS("{\"\":0}", "{[''] = 0}");
}

/* Arrays carry the metatable registered under SL_JSON_ARRAY_MT; objects none. */
static void test_decode_array_metatable(void) {
  if (!CHECK_EQ_INT(decode_at(LIT("[[1],{}]"), __FILE__, __LINE__), 0)) return;
  luaL_getmetatable(L, SL_JSON_ARRAY_MT);
  CHECK(lua_getmetatable(L, -2) && lua_rawequal(L, -1, -2));
  lua_settop(L, 1);
  lua_rawgeti(L, -1, 2);
  CHECK(!lua_getmetatable(L, -1));
  lua_settop(L, 0);
}

static void test_decode_strings(void) {
  DECODES_AS("\"a\\\"b\\\\c\\/d\\n\\r\\t\\b\\f\"", "'a\"b\\\\c/d\\n\\r\\t\\b\\f'");
  DECODES_AS("\"\\u00e9\\u20AC\"", "'\\195\\169\\226\\130\\172'");
  DECODES_AS("\"\\ud83d\\ude00\"", "'\\240\\159\\152\\128'"); /* a surrogate pair joins */
  DECODES_AS("\"\\ud800x\"", "'\\239\\191\\189x'");            /* a lone one becomes U+FFFD */
  DECODES_AS("\"\\u0000\"", "'\\0'");
  DECODES_AS("\"caf\xc3\xa9\"", "'caf\\195\\169'");
}

static void test_decode_invalid(void) {
  static const char *const broken[] = {
      "",       " ",      "[",      "]",        "[1,]",      "[1 2]",     "{\"a\"}",  "{\"a\":1,}",
      "{a:1}",  "{\"a\":1}}", "tru",  "nul",      "01",        "1.",        ".5",       "+1",
      "-",      "1e",     "NaN",    "Infinity", "\"abc",     "\"\\x\"",   "\"\\u12\"", "\"\x01\"",
      "[1]x",   "1 2",    "'a'",    "{\"a\" 1}", "[,1]",
  };
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) DECODE_FAILS(broken[i]);
  CHECK_EQ_INT(lua_gettop(L), 0);
}

/* json.h: "nesting deeper than SL_JSON_MAX_NESTING" is invalid. */
static char *nested_arrays(int levels) {
  char *text = malloc(2 * (size_t)levels + 1);
  for (int i = 0; i < levels; i++) text[i] = '[', text[2 * levels - 1 - i] = ']';
  text[2 * levels] = '\0';
  return text;
}

static void test_decode_nesting_limit(void) {
  char *text = nested_arrays(SL_JSON_MAX_NESTING);
  if (CHECK_EQ_INT(decode_at(text, strlen(text), __FILE__, __LINE__), 0)) lua_pop(L, 1);
  free(text);
  text = nested_arrays(SL_JSON_MAX_NESTING + 1);
  DECODE_FAILS(text);
  free(text);
  text = nested_arrays(100000); /* refused, not a C stack overflow */
  DECODE_FAILS(text);
  free(text);
}

/* ---- encode ---- */

static void test_encode_scalars(void) {
  ENCODES_TO("nil", "null");
  ENCODES_TO("null", "null");
  ENCODES_TO("true", "true");
  ENCODES_TO("false", "false");
  ENCODES_TO("'hi'", "\"hi\"");
  ENCODES_TO("''", "\"\"");
}

/* Integral values up to 2^53 print as integers, never with an exponent. */
static void test_encode_integers(void) {
  ENCODES_TO("0", "0");
  ENCODES_TO("-1", "-1");
  ENCODES_TO("42", "42");
  ENCODES_TO("2^31", "2147483648");
  ENCODES_TO("2^32 + 1", "4294967297");
  ENCODES_TO("1e15", "1000000000000000");
  ENCODES_TO("2^53 - 1", "9007199254740991");
  ENCODES_TO("2^53", "9007199254740992");
  ENCODES_TO("-2^53", "-9007199254740992");
  ENCODES_TO("-0", "0"); /* as JSON.stringify(-0) */
}

static void test_encode_fractions(void) {
  ENCODES_TO("0.5", "0.5");
  ENCODES_TO("0.1", "0.1");
  ENCODES_TO("-2.25", "-2.25");
  ENCODES_TO("1e21", "1e+21");
}

/* Each encoded number reads back as exactly the same double. */
static void test_encode_floats_round_trip(void) {
  static const double values[] = {0.1, 1.0 / 3, 2.0 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 123.456,
                                  -2.5e-10, 9007199254740994.0, 1152921504606846976.0, 3.141592653589793,
                                  0.30000000000000004, 1e-7, 4.35, 2.220446049250313e-16};
  for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
    sl_sbuf_reset(&encoded);
    lua_pushnumber(L, values[i]);
    CHECK_EQ_INT(sl_json_encode(L, -1, &encoded, encode_err, sizeof encode_err), 0);
    lua_pop(L, 1);
    sl_sbuf_putc(&encoded, '\0');
    double back = strtod(encoded.data, NULL);
    if (!CHECK(memcmp(&back, &values[i], sizeof back) == 0))
      fprintf(stderr, "  %.17g encoded as %s\n", values[i], encoded.data);
  }
}

static void test_encode_non_finite(void) {
  ENCODE_FAILS("0/0", "NaN");
  ENCODE_FAILS("math.huge", "infinite");
  ENCODE_FAILS("-math.huge", "infinite");
  ENCODE_FAILS("array{1, 0/0}", "NaN");
}

static void test_encode_string_escapes(void) {
  ENCODES_TO("'a\"b\\\\c/\\n\\r\\t\\b\\f\\1\\31\\127'", "\"a\\\"b\\\\c/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
  ENCODES_TO("'a\\0b'", "\"a\\u0000b\"");
  ENCODES_TO("'caf\\195\\169 \\240\\159\\152\\128'", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  /* Multi-byte sequences between escapes and long ASCII runs, copied whole. */
  ENCODES_TO("'\\226\\130\\172\"' .. string.rep('b', 20) .. '\\195\\169\\n'",
             "\"\xe2\x82\xac\\\"bbbbbbbbbbbbbbbbbbbb\xc3\xa9\\n\"");
}

static void test_encode_put_string(void) {
  sl_sbuf out = {0};
  CHECK_EQ_INT(sl_json_put_string(&out, LIT("\x01\"\\\n")), 0);
  CHECK_MEM(out.data, out.len, LIT("\"\\u0001\\\"\\\\\\n\""));
  sl_sbuf_reset(&out);
  CHECK_EQ_INT(sl_json_put_string(&out, "", 0), 0);
  CHECK_MEM(out.data, out.len, LIT("\"\""));
  sl_sbuf_free(&out);
}

static void test_encode_invalid_utf8(void) {
  ENCODE_FAILS("'\\255'", "UTF-8");
  ENCODE_FAILS("'ok \\237\\160\\128'", "UTF-8"); /* a surrogate */
  ENCODE_FAILS("{['\\192\\128'] = 1}", "UTF-8"); /* in a key */
  ENCODE_FAILS("array{'fine', {x = '\\128'}}", "UTF-8");
  /* The check shares the escaping scan: bad bytes past a 16-byte run, cut
   * short at the end, overlong, above U+10FFFF, after an escape. */
  ENCODE_FAILS("string.rep('a', 40) .. '\\195'", "UTF-8");
  ENCODE_FAILS("'\\226\\130'", "UTF-8");
  ENCODE_FAILS("'x\\224\\128\\128'", "UTF-8");
  ENCODE_FAILS("'\\244\\144\\128\\128'", "UTF-8");
  ENCODE_FAILS("'a\\nb\\193\\191'", "UTF-8");
}

static void test_encode_unencodable_types(void) {
  ENCODE_FAILS("print", "function");
  ENCODE_FAILS("newproxy()", "userdata");
  ENCODE_FAILS("coroutine.create(print)", "thread");
  ENCODE_FAILS("{f = function() end}", "function");
  ENCODE_FAILS("{[true] = 1}", "boolean");
  ENCODE_FAILS("{[{}] = 1}", "table");
}

/* Only the NULL light userdata is null. */
static void test_encode_other_lightuserdata(void) {
  static int somewhere;
  lua_pushlightuserdata(L, &somewhere);
  int top = lua_gettop(L);
  sl_sbuf_reset(&encoded);
  CHECK_EQ_INT(sl_json_encode(L, -1, &encoded, encode_err, sizeof encode_err), -1);
  CHECK(strstr(encode_err, "userdata") != NULL);
  CHECK_EQ_INT(lua_gettop(L), top);
  lua_pop(L, 1);
}

static void test_encode_cycles(void) {
  ENCODE_FAILS("cycle()", "cannot encode");
  ENCODE_FAILS("(function() local t = array{} t[1] = t return t end)()", "cannot encode");
  /* The same table twice without a cycle is fine. */
  ENCODES_TO("(function() local t = array{1} return array{t, t} end)()", "[[1],[1]]");
}

/* SL_JSON_MAX_DEPTH tables nested encode; one more does not. */
static void test_encode_depth_limit(void) {
  char expr[64];
  snprintf(expr, sizeof expr, "nest(%d)", SL_JSON_MAX_DEPTH);
  if (CHECK_EQ_INT(encode_expr_at(expr, __FILE__, __LINE__), 0))
    CHECK_EQ_INT(encoded.len, 2 * SL_JSON_MAX_DEPTH);
  snprintf(expr, sizeof expr, "nest(%d)", SL_JSON_MAX_DEPTH + 1);
  ENCODE_FAILS(expr, "nested too deeply");
  ENCODE_FAILS("nest(100000)", "nested too deeply");
}

static void test_encode_tables(void) {
  ENCODES_TO("{}", "{}");
  ENCODES_TO("array{}", "[]");
  ENCODES_TO("{1, 2, 3}", "[1,2,3]");
  ENCODES_TO("array{1, null, 3}", "[1,null,3]");
  ENCODES_TO("{x = null}", "{\"x\":null}");
  ENCODES_TO("{a = {b = array{}}}", "{\"a\":{\"b\":[]}}");
  ENCODES_TO("setmetatable({}, {})", "{}");
  ENCODES_TO("setmetatable({7}, {})", "[7]");
  ENCODES_TO("{[1.5] = 'x'}", "{\"1.5\":\"x\"}");
  ENCODES_TO("{[0] = 'z'}", "{\"0\":\"z\"}");
}

/* Encodes expr, checks the text opens an object, and decodes it back for a
 * comparison that does not depend on key order. */
static void encodes_as_object_at(const char *expr, const char *want, const char *file, int line) {
  if (!CHECK_EQ_INT_AT(encode_expr_at(expr, file, line), 0, file, line)) return;
  CHECK_AT(encoded.len > 0 && encoded.data[0] == '{', file, line);
  if (!CHECK_EQ_INT_AT(decode_at(encoded.data, encoded.len, file, line), 0, file, line)) return;
  if (!top_equals_at(want, file, line)) fprintf(stderr, "  %s encoded as %.*s\n", expr, (int)encoded.len, encoded.data);
}

#define ENCODES_AS_OBJECT(expr, want) encodes_as_object_at((expr), (want), __FILE__, __LINE__)

static void test_encode_sparse_and_mixed(void) {
  ENCODES_AS_OBJECT("{[1] = 1, [3] = 3}", "{['1'] = 1, ['3'] = 3}");
  ENCODES_AS_OBJECT("{[2] = 'b'}", "{['2'] = 'b'}");
  ENCODES_AS_OBJECT("{10, 20, x = 30}", "{['1'] = 10, ['2'] = 20, x = 30}");
  ENCODES_AS_OBJECT("{[-1] = true}", "{['-1'] = true}");
}

/* A failed encode leaves what the buffer held before; so does a good one,
 * which only appends. */
static void test_encode_keeps_buffer(void) {
  if (!push_expr_at("array{1, 2, 'three', print}", __FILE__, __LINE__)) return;
  sl_sbuf out = {0};
  char err[256];
  sl_sbuf_puts(&out, "keep");
  CHECK_EQ_INT(sl_json_encode(L, -1, &out, err, sizeof err), -1);
  CHECK_MEM(out.data, out.len, LIT("keep"));
  lua_pop(L, 1);
  lua_pushinteger(L, 5);
  CHECK_EQ_INT(sl_json_encode(L, -1, &out, err, sizeof err), 0);
  CHECK_MEM(out.data, out.len, LIT("keep5"));
  lua_pop(L, 1);
  sl_sbuf_free(&out);
}

static void test_encode_index_forms(void) {
  lua_pushinteger(L, 1);
  lua_pushliteral(L, "middle");
  lua_pushinteger(L, 3);
  sl_sbuf out = {0};
  char err[256];
  CHECK_EQ_INT(sl_json_encode(L, 2, &out, err, sizeof err), 0);
  CHECK_EQ_INT(sl_json_encode(L, -2, &out, err, sizeof err), 0);
  CHECK_MEM(out.data, out.len, LIT("\"middle\"\"middle\""));
  CHECK_EQ_INT(lua_gettop(L), 3);
  lua_settop(L, 0);
  sl_sbuf_free(&out);
}

/* A short error buffer gets a truncated, terminated message. */
static void test_encode_short_error_buffer(void) {
  char err[8];
  memset(err, 'x', sizeof err);
  sl_sbuf out = {0};
  lua_pushcfunction(L, luaopen_base);
  CHECK_EQ_INT(sl_json_encode(L, -1, &out, err, sizeof err), -1);
  CHECK_EQ_INT(strlen(err), sizeof err - 1);
  lua_pop(L, 1);
  sl_sbuf_free(&out);
}

/* ---- both ways ---- */

static const char complex_doc[] =
    "{\"user\":{\"id\":12345,\"name\":\"Zo\\u00eb \\\"Z\\\"\",\"tags\":[\"a\",\"b\",[]],\"score\":-0.125,"
    "\"big\":9007199254740992,\"tiny\":1e-300,\"ok\":true,\"gone\":null,\"nested\":{\"deeper\":{\"deepest\":[{},"
    "[null,false,\"\\ud83d\\ude00\"]]}}},\"list\":[1,2.5,\"three\",{\"four\":4}],\"empty\":{},\"none\":[]}";

static void test_round_trip_complex_document(void) {
  if (!CHECK_EQ_INT(decode_at(LIT(complex_doc), __FILE__, __LINE__), 0)) return;
  int first = lua_gettop(L);
  sl_sbuf text = {0};
  char err[256];
  if (CHECK_EQ_INT(sl_json_encode(L, first, &text, err, sizeof err), 0) &&
      CHECK_EQ_INT(decode_at(text.data, text.len, __FILE__, __LINE__), 0)) {
    lua_getglobal(L, "deep_equal");
    lua_pushvalue(L, first);
    lua_pushvalue(L, first + 1);
    lua_call(L, 2, 1);
    CHECK(lua_toboolean(L, -1));
  }
  lua_settop(L, 0);
  sl_sbuf_free(&text);
}

/* Built in Lua, encoded, decoded: the same structure (arrays marked). */
static void test_round_trip_from_lua(void) {
  static const char doc[] =
      "{room = 'lobby', members = array{'a', 'b'}, counts = {x = 1, y = 2.5}, flags = array{true, false, null},"
      " empty_list = array{}, empty_map = {}, text = 'line\\nnext \"q\" \\195\\169'}";
  if (!CHECK_EQ_INT(encode_expr_at(doc, __FILE__, __LINE__), 0)) return;
  if (!CHECK_EQ_INT(decode_at(encoded.data, encoded.len, __FILE__, __LINE__), 0)) return;
  top_equals_at(doc, __FILE__, __LINE__);
}

static void test_round_trip_exact_text(void) {
  static const char *const texts[] = {"[]", "{}", "[{}]", "[[],[[]]]", "{\"a\":[1,-2,0.5,\"x\",null,true]}",
                                      "\"\\u0001\\\"\"", "9007199254740992"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    if (!CHECK_EQ_INT(decode_at(texts[i], strlen(texts[i]), __FILE__, __LINE__), 0)) continue;
    sl_sbuf_reset(&encoded);
    CHECK_EQ_INT(sl_json_encode(L, -1, &encoded, encode_err, sizeof encode_err), 0);
    CHECK_MEM(encoded.data, encoded.len, texts[i], strlen(texts[i]));
    lua_pop(L, 1);
  }
}

typedef const char *(*run_fn)(const char *p, const char *end);

/* run stops exactly at the first of `stops` and never at `plain` bytes,
 * wherever the stop falls in the 16- and 8-byte steps: every stop byte at
 * every offset of runs of every length up to 40, at two alignments. */
static void check_run_stops(run_fn run, const unsigned char *stops, size_t nstops, const unsigned char *plain,
                            size_t nplain) {
  char buf[64];
  for (size_t align = 0; align < 2; align++) {
    for (size_t len = 0; len <= 40; len++) {
      char *s = buf + align;
      for (size_t i = 0; i < len; i++) s[i] = (char)plain[(i + len) % nplain];
      CHECK(run(s, s + len) == s + len);
      for (size_t at = 0; at < len; at++) {
        for (size_t k = 0; k < nstops; k++) {
          char kept = s[at];
          s[at] = (char)stops[k];
          if (!CHECK(run(s, s + len) == s + at)) fprintf(stderr, "len %zu at %zu byte %02x\n", len, at, stops[k]);
          s[at] = kept;
        }
      }
    }
  }
}

/* The string scanner stops at a quote, backslash or control byte; bytes of
 * 0x80 and up are plain to it. */
static void test_plain_run_stops_exactly(void) {
  static const unsigned char stops[] = {'"', '\\', 0x00, 0x01, 0x1f};
  static const unsigned char plain[] = {'a', ' ', 0x7f, 0x80, 0xff, 0x20, '/'};
  check_run_stops(sl_jt_plain_run, stops, sizeof stops, plain, sizeof plain);
}

/* The ASCII run stops at the same bytes and at any byte of 0x80 and up. */
static void test_plain_ascii_run_stops_exactly(void) {
  static const unsigned char stops[] = {'"', '\\', 0x00, 0x1f, 0x80, 0xc3, 0xff};
  static const unsigned char plain[] = {'a', ' ', 0x7f, 0x20, '/'};
  check_run_stops(sl_jt_plain_ascii_run, stops, sizeof stops, plain, sizeof plain);
}

int main(void) {
  L = new_state();
  test_plain_run_stops_exactly();
  test_plain_ascii_run_stops_exactly();
  test_decode_scalars();
  test_decode_null_is_null_lightuserdata();
  test_decode_negative_zero();
  test_decode_containers();
  test_decode_array_metatable();
  test_decode_strings();
  test_decode_invalid();
  test_decode_nesting_limit();
  test_encode_scalars();
  test_encode_integers();
  test_encode_fractions();
  test_encode_floats_round_trip();
  test_encode_non_finite();
  test_encode_string_escapes();
  test_encode_put_string();
  test_encode_invalid_utf8();
  test_encode_unencodable_types();
  test_encode_other_lightuserdata();
  test_encode_cycles();
  test_encode_depth_limit();
  test_encode_tables();
  test_encode_sparse_and_mixed();
  test_encode_keeps_buffer();
  test_encode_index_forms();
  test_encode_short_error_buffer();
  test_round_trip_complex_document();
  test_round_trip_from_lua();
  test_round_trip_exact_text();
  CHECK_EQ_INT(lua_gettop(L), 0);
  lua_close(L);
  sl_sbuf_free(&encoded);
  return unit_summary("test_json");
}
