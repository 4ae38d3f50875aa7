#include "jsontext.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

const char *sl_jt_ws_run(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static int put_utf8(sl_sbuf *out, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) b[0] = (char)cp, n = 1;
  else if (cp < 0x800) b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 63)), n = 2;
  else if (cp < 0x10000)
    b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 63)), b[2] = (char)(0x80 | (cp & 63)), n = 3;
  else
    b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 63)), b[2] = (char)(0x80 | (cp >> 6 & 63)),
    b[3] = (char)(0x80 | (cp & 63)), n = 4;
  return sl_sbuf_append(out, b, n);
}

/* \uXXXX, with a surrogate pair joined; a lone surrogate becomes U+FFFD
 * (as JSON.parse keeps it, but our strings must stay valid UTF-8). */
static const char *unicode_escape(const char *p, const char *end, sl_sbuf *out) {
  unsigned cp, lo;
  if (end - p < 4 || hex4(p, &cp)) return NULL;
  p += 4;
  if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' && !hex4(p + 2, &lo) &&
      lo >= 0xDC00 && lo <= 0xDFFF) {
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    p += 6;
  } else if (cp >= 0xD800 && cp <= 0xDFFF) {
    cp = 0xFFFD;
  }
  if (out && put_utf8(out, cp)) return NULL;
  return p;
}

/* Where the first byte that a JSON string cannot hold as it is lies (a
 * quote, backslash or control character; with stop_at_high, any byte of
 * 0x80 and up as well). Inlined into the two callers below with the flag a
 * constant, so each gets its own loop. */
static inline const char *run_until_special(const char *p, const char *end, int stop_at_high) {
#ifdef __SSE2__
  /* Sixteen bytes at a time: where the first special byte is, from one
   * compare mask; a byte's high bit is its own mask bit. */
  const __m128i quote16 = _mm_set1_epi8('"'), backslash16 = _mm_set1_epi8('\\'), c1f = _mm_set1_epi8(0x1f);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f); /* byte <= 0x1f */
    __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote16), _mm_cmpeq_epi8(v, backslash16)), control);
    int mask = _mm_movemask_epi8(special) | (stop_at_high ? _mm_movemask_epi8(v) : 0);
    if (mask) return p + __builtin_ctz((unsigned)mask);
    p += 16;
  }
#endif
  /* Eight bytes at a time (the usual word tricks: a byte is zero, a byte is
   * below n); the lowest flagged byte is exact, so it is where we stop. */
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t special = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((w - ones * 0x20) & ~w);
    if (stop_at_high) special |= w;
    special &= highs;
    if (special) return p + __builtin_ctzll(special) / 8; /* little-endian: byte 0 is lowest */
    p += 8;
  }
  while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 && !(stop_at_high && (unsigned char)*p >= 0x80))
    p++;
  return p;
}

const char *sl_jt_plain_run(const char *p, const char *end) { return run_until_special(p, end, 0); }

const char *sl_jt_plain_ascii_run(const char *p, const char *end) { return run_until_special(p, end, 1); }

const char *sl_jt_string(const char *p, const char *end, sl_sbuf *out) {
  if (p >= end || *p != '"') return NULL;
  p++;
  for (;;) {
    const char *run = p;
    p = sl_jt_plain_run(p, end);
    if (out && p > run && sl_sbuf_append(out, run, (size_t)(p - run))) return NULL;
    if (p >= end || (unsigned char)*p < 0x20) return NULL;
    if (*p == '"') return p + 1;
    if (++p >= end) return NULL; /* after the backslash */
    char e = *p++, c;
    switch (e) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u':
      if (!(p = unicode_escape(p, end, out))) return NULL;
      continue;
    default: return NULL;
    }
    if (out && sl_sbuf_putc(out, c)) return NULL;
  }
}

static const char *digits(const char *p, const char *end) {
  const char *start = p;
  while (p < end && *p >= '0' && *p <= '9') p++;
  return p > start ? p : NULL;
}

const char *sl_jt_number(const char *p, const char *end) {
  if (p < end && *p == '-') p++;
  if (p < end && *p == '0') p++;
  else if (!(p = digits(p, end))) return NULL;
  if (p < end && *p == '.' && !(p = digits(p + 1, end))) return NULL;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (!(p = digits(p, end))) return NULL;
  }
  return p;
}

static const char *literal(const char *p, const char *end, const char *word) {
  size_t n = strlen(word);
  return ((size_t)(end - p) >= n && memcmp(p, word, n) == 0) ? p + n : NULL;
}

/* The members or elements of a container whose opener is at p. */
static const char *container(const char *p, const char *end, int depth, char close) {
  p = sl_jt_ws(p + 1, end);
  if (p < end && *p == close) return p + 1;
  for (;;) {
    if (close == '}') {
      if (!(p = sl_jt_string(p, end, NULL))) return NULL;
      p = sl_jt_ws(p, end);
      if (p >= end || *p != ':') return NULL;
      p = sl_jt_ws(p + 1, end);
    }
    if (!(p = sl_jt_skip(p, end, depth + 1))) return NULL;
    p = sl_jt_ws(p, end);
    if (p >= end) return NULL;
    if (*p == close) return p + 1;
    if (*p != ',') return NULL;
    p = sl_jt_ws(p + 1, end);
  }
}

const char *sl_jt_skip(const char *p, const char *end, int depth) {
  if (p >= end || depth >= SL_JSON_MAX_NESTING) return NULL;
  switch (*p) {
  case '{': return container(p, end, depth, '}');
  case '[': return container(p, end, depth, ']');
  case '"': return sl_jt_string(p, end, NULL);
  case 't': return literal(p, end, "true");
  case 'f': return literal(p, end, "false");
  case 'n': return literal(p, end, "null");
  default: return sl_jt_number(p, end);
  }
}

int sl_jt_object_values(const char *text, size_t n, sl_jt_value_fn fn, void *ud) {
  const char *end = text + n, *p = sl_jt_ws(text, end);
  if (p >= end || *p != '{') return -1;
  p = sl_jt_ws(p + 1, end);
  if (p < end && *p == '}') return sl_jt_ws(p + 1, end) == end ? 0 : -1;
  for (;;) {
    const char *key = p;
    if (!(p = sl_jt_string(p, end, NULL))) return -1;
    size_t key_len = (size_t)(p - key) - 2;
    p = sl_jt_ws(p, end);
    if (p >= end || *p != ':') return -1;
    if (!(p = fn(ud, key + 1, key_len, sl_jt_ws(p + 1, end), end))) return -1;
    p = sl_jt_ws(p, end);
    if (p >= end) return -1;
    if (*p == '}') return sl_jt_ws(p + 1, end) == end ? 0 : -1;
    if (*p != ',') return -1;
    p = sl_jt_ws(p + 1, end);
  }
}

typedef struct {
  sl_jt_member_fn fn;
  void *ud;
} member_spans;

/* sl_jt_object's values: skipped (validated), then handed over as spans. */
static const char *member_span(void *ud, const char *key, size_t key_len, const char *value, const char *end) {
  const member_spans *m = ud;
  const char *p = sl_jt_skip(value, end, 1);
  if (p) m->fn(m->ud, key, key_len, value, (size_t)(p - value));
  return p;
}

int sl_jt_object(const char *text, size_t n, sl_jt_member_fn fn, void *ud) {
  member_spans m = {fn, ud};
  return sl_jt_object_values(text, n, member_span, &m);
}

int sl_jt_valid(const char *text, size_t n) {
  const char *end = text + n, *p = sl_jt_ws(text, end);
  p = sl_jt_skip(p, end, 0);
  return p && sl_jt_ws(p, end) == end;
}
