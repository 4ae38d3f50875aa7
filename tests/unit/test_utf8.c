/* Unit tests for sl_utf8_valid and the piecewise sl_utf8_stream (utf8.c): RFC 3629 UTF-8, as WebSocket text
 * frames must be (RFC 6455 §8.1, Autobahn section 6). */
#include <stdint.h>
#include <stdlib.h>

#include "utf8.h"
#include "unit.h"

/* The text fed to a stream in two pieces, cut at every place, and byte by
 * byte: the verdict must be the whole text's. */
static bool stream_agrees(const char *s, size_t n, bool valid) {
  bool ok = true;
  for (size_t cut = 0; cut <= n; cut++) {
    sl_utf8_stream st = {0};
    bool fine = sl_utf8_stream_feed(&st, s, cut) && sl_utf8_stream_feed(&st, s + cut, n - cut) &&
                sl_utf8_stream_complete(&st);
    ok = ok && fine == valid;
  }
  sl_utf8_stream st = {0};
  bool fine = true;
  for (size_t i = 0; i < n && fine; i++) fine = sl_utf8_stream_feed(&st, s + i, 1);
  return ok && (fine && sl_utf8_stream_complete(&st)) == valid;
}

#define VALID(s) (CHECK(sl_utf8_valid(LIT(s))), CHECK(stream_agrees(LIT(s), true)))
#define INVALID(s) (CHECK(!sl_utf8_valid(LIT(s))), CHECK(stream_agrees(LIT(s), false)))

static void test_empty_and_ascii(void) {
  CHECK(sl_utf8_valid("", 0));
  VALID("a");
  VALID("hello, world");
  VALID("\x00\x01\x7f");
  VALID("a longer line of plain ASCII text, long enough for the word-at-a-time path");
}

static void test_multibyte(void) {
  VALID("\xc3\xa9");             /* é, 2 bytes */
  VALID("\xe2\x82\xac");         /* €, 3 bytes */
  VALID("\xf0\x9f\x98\x80");     /* 😀, 4 bytes */
  VALID("a\xc3\xa9" "b\xe2\x82\xac" "c\xf0\x9f\x98\x80" "d");
  VALID("\xc2\x80");             /* U+0080, the lowest 2-byte */
  VALID("\xdf\xbf");             /* U+07FF */
  VALID("\xe0\xa0\x80");         /* U+0800, the lowest 3-byte */
  VALID("\xef\xbf\xbf");         /* U+FFFF */
  VALID("\xf0\x90\x80\x80");     /* U+10000, the lowest 4-byte */
  VALID("\xf4\x8f\xbf\xbf");     /* U+10FFFF, the highest */
}

static void test_overlongs(void) {
  INVALID("\xc0\x80");             /* NUL in 2 bytes */
  INVALID("\xc1\xbf");             /* the highest 2-byte overlong */
  INVALID("\xe0\x80\x80");         /* NUL in 3 bytes */
  INVALID("\xe0\x9f\xbf");         /* the highest 3-byte overlong */
  INVALID("\xf0\x80\x80\x80");     /* NUL in 4 bytes */
  INVALID("\xf0\x8f\xbf\xbf");     /* the highest 4-byte overlong */
}

static void test_surrogates_and_range(void) {
  INVALID("\xed\xa0\x80");                 /* U+D800 */
  INVALID("\xed\xbf\xbf");                 /* U+DFFF */
  INVALID("\xed\xa0\x80\xed\xb0\x80");     /* a CESU-8 pair */
  VALID("\xed\x9f\xbf");                   /* U+D7FF, just below */
  VALID("\xee\x80\x80");                   /* U+E000, just above */
  INVALID("\xf4\x90\x80\x80");             /* U+110000 */
  INVALID("\xf5\x80\x80\x80");
  INVALID("\xf7\xbf\xbf\xbf");
  for (int b = 0xf5; b <= 0xff; b++) {
    char lead[4] = {(char)b, '\x80', '\x80', '\x80'};
    CHECK(!sl_utf8_valid(lead, 4));
    CHECK(!sl_utf8_valid(lead, 1));
  }
}

static void test_truncated_at_end(void) {
  INVALID("\xc3");
  INVALID("\xe2\x82");
  INVALID("\xe2");
  INVALID("\xf0\x9f\x98");
  INVALID("\xf0\x9f");
  INVALID("\xf0");
  INVALID("abc\xc3");
  INVALID("0123456789abcdef\xf0\x9f\x98");
  /* The length is the end even when more bytes follow in memory. */
  const char e_acute[] = "abc\xc3\xa9";
  CHECK(!sl_utf8_valid(e_acute, 4));
  CHECK(sl_utf8_valid(e_acute, 5));
  const char after_end[] = "abcdefgh\xff";
  CHECK(sl_utf8_valid(after_end, 8));
}

static void test_lone_continuations(void) {
  INVALID("\x80");
  INVALID("\xbf");
  INVALID("a\x80" "b");
  INVALID("\xc3\xa9\xa9");         /* one continuation too many */
  INVALID("\xe2\x82\xac\x80");
  INVALID("\xc3\x41");             /* a lead followed by ASCII */
  INVALID("\xe2\x28\xa1");
  INVALID("\xe2\x82\x28");
  INVALID("\xf0\x9f\x28\x80");
  INVALID("\xf0\x9f\x98\x28");
}

/* A bad byte at every offset of a long ASCII run: the word-at-a-time skip
 * must stop on it wherever it falls in the eight-byte word. */
static void test_bad_byte_at_every_offset(void) {
  char text[40];
  int missed = 0;
  for (size_t at = 0; at < sizeof text; at++) {
    memset(text, 'x', sizeof text);
    text[at] = '\x80';
    if (sl_utf8_valid(text, sizeof text)) missed++;
    memset(text, 'x', sizeof text);
    if (at + 2 <= sizeof text) {
      memcpy(text + at, "\xc3\xa9", 2); /* a good pair straddling any boundary */
      if (!sl_utf8_valid(text, sizeof text)) missed++;
    }
  }
  CHECK_EQ_INT(missed, 0);
}

/* Autobahn TestSuite section 6 (UTF-8 handling), representative cases. */
static void test_autobahn_6(void) {
  /* 6.2-6.5: "κόσμε" valid; with a surrogate or U+110000 in the middle not. */
  VALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
  INVALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64");
  INVALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64");
  /* 6.7-6.9: first and last sequences of each length. */
  VALID("\x7f");
  VALID("\xf4\x8f\xbf\xbf");
  /* 6.8, 6.10: 5- and 6-byte forms are gone from UTF-8. */
  INVALID("\xf8\x88\x80\x80\x80");
  INVALID("\xfc\x84\x80\x80\x80\x80");
  INVALID("\xfb\xbf\xbf\xbf\xbf");
  INVALID("\xfd\xbf\xbf\xbf\xbf\xbf");
  /* 6.12: unexpected continuation bytes. */
  INVALID("\x80\xbf");
  INVALID("\x80\xbf\x80\xbf");
  /* 6.13: lonely start characters followed by a space. */
  INVALID("\xc0\x20\xc1\x20");
  INVALID("\xe0\x20\xef\x20");
  INVALID("\xf0\x20\xf4\x20");
  /* 6.14-6.15: sequences with the last continuation byte missing, alone and concatenated. */
  INVALID("\xdf");
  INVALID("\xef\xbf");
  INVALID("\xf7\xbf\xbf");
  INVALID("\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf");
  /* 6.16: impossible bytes. */
  INVALID("\xfe");
  INVALID("\xff");
  INVALID("\xfe\xfe\xff\xff");
  /* 6.17: overlong '/'. */
  INVALID("\xc0\xaf");
  INVALID("\xe0\x80\xaf");
  INVALID("\xf0\x80\x80\xaf");
  /* 6.19-6.20: single and paired UTF-16 surrogates. */
  INVALID("\xed\xad\xbf");
  INVALID("\xed\xae\x80");
  INVALID("\xed\xb0\x80");
  INVALID("\xed\xaf\xbf\xed\xbf\xbf");
  /* 6.21-6.23: noncharacters and U+FFFD are well-formed. */
  VALID("\xef\xbf\xbe");
  VALID("\xef\xbf\xbf");
  VALID("\xf0\x9f\xbf\xbe");
  VALID("\xf4\x8f\xbf\xbe");
  VALID("\xef\xbf\xbd");
}

/* 6.6: "κόσμε" fed byte by byte; a prefix is valid exactly when it ends on a
 * character boundary. */
static void test_autobahn_6_6_prefixes(void) {
  static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
  static const bool boundary[] = {1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1};
  for (size_t n = 0; n < sizeof kosme; n++)
    if (!CHECK(sl_utf8_valid(kosme, n) == boundary[n])) fprintf(stderr, "  at prefix length %zu\n", n);
}

/* ---- exhaustive comparison against a textbook decoder ---- */

/* Decodes one sequence the long way: the lead byte gives the length, the
 * value must need that length, and must be a scalar value. */
static size_t reference_sequence(const uint8_t *p, size_t n) {
  size_t len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 0x6 ? 2 : (p[0] >> 4) == 0xe ? 3 : (p[0] >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || len > n) return 0;
  uint32_t cp = len == 1 ? p[0] : p[0] & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

static bool reference_valid(const uint8_t *p, size_t n) {
  while (n) {
    size_t len = reference_sequence(p, n);
    if (!len) return false;
    p += len, n -= len;
  }
  return true;
}

/* Every string of 1 to 3 bytes, and every 4-byte string whose first byte
 * is a 4-byte lead: 100 million comparisons, a fraction of a second. */
static void test_exhaustive_against_reference(void) {
  long mismatches = 0;
  uint8_t s[4];
  for (size_t n = 1; n <= 4; n++) {
    uint32_t first = n == 4 ? 0xf0 : 0, total = n == 4 ? 0x05000000 : 1u << (8 * n);
    for (uint32_t v = 0; v < total; v++) {
      uint32_t x = n == 4 ? v + (first << 24) : v;
      for (size_t i = 0; i < n; i++) s[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
      if (sl_utf8_valid((const char *)s, n) != reference_valid(s, n) && mismatches++ < 5) {
        fprintf(stderr, "  mismatch on %zu bytes:", n);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %02x", s[i]);
        fprintf(stderr, " (sl_utf8_valid says %d)\n", sl_utf8_valid((const char *)s, n));
      }
    }
  }
  CHECK_EQ_INT(mismatches, 0);
}

/* Every scalar value, encoded, is valid; every surrogate, encoded, is not. */
static size_t encode_utf8(uint32_t cp, uint8_t out[4]) {
  if (cp < 0x80) return out[0] = (uint8_t)cp, 1;
  if (cp < 0x800) return out[0] = (uint8_t)(0xc0 | cp >> 6), out[1] = (uint8_t)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xe0 | cp >> 12), out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (uint8_t)(0xf0 | cp >> 18), out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
  out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f)), out[3] = (uint8_t)(0x80 | (cp & 0x3f));
  return 4;
}

static void test_every_code_point(void) {
  long wrong = 0;
  uint8_t s[4];
  for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
    bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    size_t n = encode_utf8(cp, s);
    if (sl_utf8_valid((const char *)s, n) == surrogate && wrong++ < 5)
      fprintf(stderr, "  U+%04X judged wrongly\n", (unsigned)cp);
  }
  CHECK_EQ_INT(wrong, 0);
}

/* A stream fails at the faulty byte, before the rest arrives (Autobahn
 * 6.4: fail fast), and a cut sequence is pending, not wrong. */
static void test_stream_fails_fast(void) {
  sl_utf8_stream st = {0};
  CHECK(!sl_utf8_stream_feed(&st, LIT("text then \xc3\x28")));
  st = (sl_utf8_stream){0};
  CHECK(!sl_utf8_stream_feed(&st, LIT("\xf4\x90"))); /* already above U+10FFFF */
  st = (sl_utf8_stream){0};
  CHECK(!sl_utf8_stream_feed(&st, LIT("\xed\xa0"))); /* already a surrogate */
  st = (sl_utf8_stream){0};
  CHECK(sl_utf8_stream_feed(&st, LIT("ok \xf0\x9f")));
  CHECK(!sl_utf8_stream_complete(&st));
  CHECK(sl_utf8_stream_feed(&st, LIT("\x98\x80 and on")));
  CHECK(sl_utf8_stream_complete(&st));
}

int main(void) {
  test_stream_fails_fast();
  test_empty_and_ascii();
  test_multibyte();
  test_overlongs();
  test_surrogates_and_range();
  test_truncated_at_end();
  test_lone_continuations();
  test_bad_byte_at_every_offset();
  test_autobahn_6();
  test_autobahn_6_6_prefixes();
  test_exhaustive_against_reference();
  test_every_code_point();
  return unit_summary("test_utf8");
}
