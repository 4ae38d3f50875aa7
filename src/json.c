#include "json.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"
#include "utf8.h"

static void push_array_mt(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, SL_JSON_ARRAY_MT); }

void sl_json_mark_array(lua_State *L) {
  push_array_mt(L);
  lua_setmetatable(L, -2);
}

/* ---- decoding: one pass from text to Lua values, no tree ---- */

typedef struct {
  lua_State *L;
  const char *end;
  sl_sbuf scratch; /* unescaped strings, long numbers */
} decoder;

static const char *decode_value(decoder *d, const char *p, int depth);

/* p is at the opening quote. */
static const char *decode_string(decoder *d, const char *p) {
  const char *run = sl_jt_plain_run(p + 1, d->end);
  if (run < d->end && *run == '"') { /* one scan: nothing to unescape, straight from the text */
    lua_pushlstring(d->L, p + 1, (size_t)(run - p - 1));
    return run + 1;
  }
  sl_sbuf_reset(&d->scratch);
  const char *end = sl_jt_string(p, d->end, &d->scratch);
  if (!end) return NULL;
  lua_pushlstring(d->L, d->scratch.data, d->scratch.len);
  return end;
}

static const char *decode_number(decoder *d, const char *p) {
  const char *end = sl_jt_number(p, d->end);
  if (!end) return NULL;
  size_t n = (size_t)(end - p);
  if (n <= 15 && !memchr(p, '.', n) && !memchr(p, 'e', n) && !memchr(p, 'E', n)) {
    long long v = 0;
    const char *q = p + (*p == '-');
    while (q < end) v = v * 10 + (*q++ - '0');
    lua_pushnumber(d->L, *p == '-' ? -(lua_Number)v : (lua_Number)v); /* -0 stays -0 */
    return end;
  }
  sl_sbuf_reset(&d->scratch);
  if (sl_sbuf_append(&d->scratch, p, n) || sl_sbuf_putc(&d->scratch, '\0')) return NULL;
  lua_pushnumber(d->L, strtod(d->scratch.data, NULL));
  return end;
}

static const char *decode_array(decoder *d, const char *p, int depth) {
  lua_State *L = d->L;
  lua_createtable(L, 0, 0);
  sl_json_mark_array(L);
  p = sl_jt_ws(p + 1, d->end);
  if (p < d->end && *p == ']') return p + 1;
  for (int i = 1;; i++) {
    if (!(p = decode_value(d, p, depth + 1))) return NULL;
    lua_rawseti(L, -2, i);
    p = sl_jt_ws(p, d->end);
    if (p >= d->end) return NULL;
    if (*p == ']') return p + 1;
    if (*p != ',') return NULL;
    p = sl_jt_ws(p + 1, d->end);
  }
}

static const char *decode_object(decoder *d, const char *p, int depth) {
  lua_State *L = d->L;
  lua_createtable(L, 0, 4);
  p = sl_jt_ws(p + 1, d->end);
  if (p < d->end && *p == '}') return p + 1;
  for (;;) {
    if (p >= d->end || *p != '"' || !(p = decode_string(d, p))) return NULL;
    p = sl_jt_ws(p, d->end);
    if (p >= d->end || *p != ':') return NULL;
    if (!(p = decode_value(d, sl_jt_ws(p + 1, d->end), depth + 1))) return NULL;
    lua_rawset(L, -3);
    p = sl_jt_ws(p, d->end);
    if (p >= d->end) return NULL;
    if (*p == '}') return p + 1;
    if (*p != ',') return NULL;
    p = sl_jt_ws(p + 1, d->end);
  }
}

static const char *decode_value(decoder *d, const char *p, int depth) {
  if (p >= d->end || depth >= SL_JSON_MAX_NESTING) return NULL;
  if (!lua_checkstack(d->L, 4)) return NULL;
  const char *q;
  switch (*p) {
  case '{': return decode_object(d, p, depth);
  case '[': return decode_array(d, p, depth);
  case '"': return decode_string(d, p);
  case 't':
    if ((q = d->end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL)) lua_pushboolean(d->L, 1);
    return q;
  case 'f':
    if ((q = d->end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL)) lua_pushboolean(d->L, 0);
    return q;
  case 'n':
    if ((q = d->end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL)) lua_pushlightuserdata(d->L, NULL);
    return q;
  default: return decode_number(d, p);
  }
}

static decoder the_decoder; /* its scratch buffer is reused across calls */

const char *sl_json_decode_value(lua_State *L, const char *p, const char *end, int depth) {
  decoder *d = &the_decoder;
  d->L = L;
  d->end = end;
  int top = lua_gettop(L);
  p = decode_value(d, p, depth);
  if (!p) lua_settop(L, top);
  if (d->scratch.cap > 65536) sl_sbuf_free(&d->scratch);
  return p;
}

int sl_json_decode(lua_State *L, const char *text, size_t len) {
  const char *end = text + len;
  const char *p = sl_json_decode_value(L, sl_jt_ws(text, end), end, 0);
  if (p && sl_jt_ws(p, end) == end) return 0;
  if (p) lua_pop(L, 1);
  return -1;
}

/* s as a JSON string: runs of plain bytes copied, the rest escaped. With
 * check_utf8, s is checked to be UTF-8 in the same pass (-2 when it is
 * not): the run also stops at bytes of 0x80 and up, and each such
 * sequence is checked and copied whole. -1 when out of memory. */
static int put_string(sl_sbuf *out, const char *s, size_t len, bool check_utf8) {
  static const char hex[] = "0123456789abcdef";
  /* Worst case every byte becomes \u00XX. */
  char *p = sl_sbuf_reserve(out, len * 6 + 2);
  if (!p) return -1;
  char *start = p;
  const char *end = s + len;
  *p++ = '"';
  while (s < end) {
    const char *run_end = check_utf8 ? sl_jt_plain_ascii_run(s, end) : sl_jt_plain_run(s, end);
    memcpy(p, s, (size_t)(run_end - s));
    p += run_end - s;
    if ((s = run_end) == end) break;
    unsigned char c = (unsigned char)*s;
    if (c >= 0x80) { /* only when checking: plain runs hold these otherwise */
      size_t n = sl_utf8_seq_len(s, end);
      if (!n) return -2;
      memcpy(p, s, n);
      p += n, s += n;
      continue;
    }
    s++;
    *p++ = '\\';
    switch (c) {
    case '"': *p++ = '"'; break;
    case '\\': *p++ = '\\'; break;
    case '\n': *p++ = 'n'; break;
    case '\r': *p++ = 'r'; break;
    case '\t': *p++ = 't'; break;
    case '\b': *p++ = 'b'; break;
    case '\f': *p++ = 'f'; break;
    default:
      *p++ = 'u', *p++ = '0', *p++ = '0';
      *p++ = hex[c >> 4], *p++ = hex[c & 15];
    }
  }
  *p++ = '"';
  out->len += (size_t)(p - start);
  return 0;
}

int sl_json_put_string(sl_sbuf *out, const char *s, size_t len) { return put_string(out, s, len, false); }

typedef struct {
  lua_State *L;
  sl_sbuf *out;
  char *err;
  size_t errlen;
} encoder;

static int fail(encoder *e, const char *fmt, const char *what) {
  snprintf(e->err, e->errlen, fmt, what);
  return -1;
}

static int encode_value(encoder *e, int idx, int depth);

/* Integers are most numbers on the wire: no printf for them. */
static int put_integer(sl_sbuf *out, long long v) {
  char tmp[24], *p = tmp + sizeof tmp;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return sl_sbuf_append(out, p, (size_t)(tmp + sizeof tmp - p));
}

static int encode_number(encoder *e, double d) {
  if (!isfinite(d)) return fail(e, "cannot encode %s number to JSON", isnan(d) ? "NaN" : "infinite");
  char tmp[32];
  int n;
  if (d == floor(d) && fabs(d) <= 9007199254740992.0)
    return put_integer(e->out, (long long)d);
  else if ((n = snprintf(tmp, sizeof tmp, "%.15g", d)) > 0 && strtod(tmp, NULL) != d)
    n = snprintf(tmp, sizeof tmp, "%.17g", d); /* the shortest form that reads back exactly */
  return sl_sbuf_append(e->out, tmp, (size_t)n);
}

static int put_checked_string(encoder *e, const char *s, size_t len) {
  int r = put_string(e->out, s, len, true);
  if (r == -2) return fail(e, "%s", "cannot encode a string that is not valid UTF-8 to JSON");
  return r;
}

static int encode_string(encoder *e, int idx) {
  size_t len;
  const char *s = lua_tolstring(e->L, idx, &len);
  return put_checked_string(e, s, len);
}

/* The key at the top but one, as a JSON string. A string key is read where
 * it is; a number key is converted on a copy, since lua_tolstring on the
 * key itself would change it under lua_next. */
static int encode_key(encoder *e, int kt) {
  lua_State *L = e->L;
  if (kt == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -2, &len);
    return put_checked_string(e, s, len);
  }
  lua_pushvalue(L, -2);
  int r = encode_string(e, lua_gettop(L));
  lua_pop(L, 1);
  return r;
}

/* A table is an array when it carries the array metatable, or when its
 * keys are exactly 1..n. Returns n, or -1 for an object. */
static int array_length(lua_State *L, int idx) {
  if (lua_getmetatable(L, idx)) {
    push_array_mt(L);
    int marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (marked) return (int)lua_objlen(L, idx);
  }
  int count = 0;
  lua_Number max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_Number k;
    if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) < 1 || k != floor(k)) {
      lua_pop(L, 1);
      return -1;
    }
    if (k > max) max = k;
    count++;
  }
  return (count > 0 && max == count) ? count : -1;
}

static int encode_table(encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  if (depth >= SL_JSON_MAX_DEPTH)
    return fail(e, "%s", "cannot encode to JSON: tables nested too deeply (a cycle?)");
  luaL_checkstack(L, 6, "JSON nested too deeply");
  int n = array_length(L, idx);
  if (n >= 0) {
    if (sl_sbuf_putc(e->out, '[')) return -1;
    for (int i = 1; i <= n; i++) {
      if (i > 1 && sl_sbuf_putc(e->out, ',')) return -1;
      lua_rawgeti(L, idx, i);
      int r = encode_value(e, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
      if (r) return -1;
    }
    return sl_sbuf_putc(e->out, ']');
  }
  if (sl_sbuf_putc(e->out, '{')) return -1;
  int first = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
      lua_pop(L, 2);
      return fail(e, "cannot encode a table key of type %s to JSON", lua_typename(L, kt));
    }
    if (!first && sl_sbuf_putc(e->out, ',')) goto oom;
    first = 0;
    if (encode_key(e, kt) || sl_sbuf_putc(e->out, ':')) goto err;
    if (encode_value(e, lua_gettop(L), depth + 1)) goto err;
    lua_pop(L, 1);
  }
  return sl_sbuf_putc(e->out, '}');
oom:
  fail(e, "%s", "out of memory encoding JSON");
err:
  lua_pop(L, 2);
  return -1;
}

static int encode_value(encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return sl_sbuf_puts(e->out, "null");
  case LUA_TBOOLEAN: return sl_sbuf_puts(e->out, lua_toboolean(L, idx) ? "true" : "false");
  case LUA_TNUMBER: return encode_number(e, lua_tonumber(L, idx));
  case LUA_TSTRING: return encode_string(e, idx);
  case LUA_TTABLE: return encode_table(e, idx, depth);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return sl_sbuf_puts(e->out, "null");
    /* fall through */
  default: return fail(e, "cannot encode a value of type %s to JSON", luaL_typename(L, idx));
  }
}

int sl_json_encode(lua_State *L, int idx, sl_sbuf *out, char *err, size_t errlen) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  encoder e = {L, out, err, errlen};
  err[0] = '\0';
  size_t mark = out->len;
  int top = lua_gettop(L);
  int r = encode_value(&e, idx, 0);
  lua_settop(L, top);
  if (r) {
    if (!err[0]) snprintf(err, errlen, "out of memory encoding JSON");
    out->len = mark;
  }
  return r;
}
