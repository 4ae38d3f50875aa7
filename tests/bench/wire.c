#define _GNU_SOURCE /* memmem */
#include "wire.h"

#include <stdio.h>
#include <string.h>

static uint64_t load_be(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
  return v;
}

static void store_be(uint8_t *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

int ws_parse_frame(uint8_t *p, size_t n, ws_frame *f) {
  if (n < 2) return 0;
  f->fin = p[0] & 0x80;
  f->opcode = p[0] & 0x0F;
  f->masked = p[1] & 0x80;
  uint64_t len = p[1] & 0x7F;
  size_t head = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = load_be(p + 2, 2), head = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = load_be(p + 2, 8), head = 10;
    if (len >> 62) return -1; /* RFC 6455: the top bit is 0; nothing here is that big */
  }
  if (f->masked) {
    if (n < head + 4) return 0;
    memcpy(f->mask, p + head, 4);
    head += 4;
  }
  if (n - head < len) return 0;
  f->payload = p + head;
  f->payload_len = len;
  f->frame_len = head + (size_t)len;
  return 1;
}

/* XOR with the 4-byte key repeated, eight bytes at a time: the generator
 * masks every frame it sends, so this is on its hot path. */
static void xor_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4]) {
  uint64_t key8;
  uint8_t k[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  memcpy(&key8, k, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, src + i, 8);
    w ^= key8;
    memcpy(dst + i, &w, 8);
  }
  for (; i < len; i++) dst[i] = src[i] ^ key[i & 3];
}

void ws_unmask(ws_frame *f) {
  if (!f->masked) return;
  xor_copy(f->payload, f->payload, (size_t)f->payload_len, f->mask);
  f->masked = false;
}

size_t ws_write_frame(uint8_t *dst, uint8_t opcode, const void *payload, size_t len, bool masked,
                      uint32_t mask) {
  size_t head = 2;
  dst[0] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    dst[1] = (uint8_t)len;
  } else if (len <= 0xFFFF) {
    dst[1] = 126;
    store_be(dst + 2, len, 2);
    head = 4;
  } else {
    dst[1] = 127;
    store_be(dst + 2, len, 8);
    head = 10;
  }
  if (!masked) {
    memcpy(dst + head, payload, len);
    return head + len;
  }
  dst[1] |= 0x80;
  uint8_t key[4];
  memcpy(key, &mask, 4);
  memcpy(dst + head, key, 4);
  head += 4;
  xor_copy(dst + head, payload, len, key);
  return head + len;
}

int tcp_parse_frame(uint8_t *p, size_t n, size_t max_frame, tcp_frame *f) {
  if (n < 4) return 0;
  uint64_t total = load_be(p, 4);
  if (total < TCP_HEADER || total > max_frame) return -1;
  if (n < total) return 0;
  size_t event_len = (size_t)load_be(p + 5, 2);
  if (TCP_HEADER + event_len > total) return -1;
  f->type = p[4];
  f->event = (const char *)p + TCP_HEADER;
  f->event_len = event_len;
  f->payload = p + TCP_HEADER + event_len;
  f->payload_len = (size_t)total - TCP_HEADER - event_len;
  f->frame_len = (size_t)total;
  return 1;
}

size_t tcp_write_frame(uint8_t *dst, uint8_t type, const char *event, size_t event_len, const void *payload,
                       size_t len) {
  size_t total = TCP_HEADER + event_len + len;
  store_be(dst, total, 4);
  dst[4] = type;
  store_be(dst + 5, event_len, 2);
  if (event_len) memcpy(dst + TCP_HEADER, event, event_len);
  if (len) memcpy(dst + TCP_HEADER + event_len, payload, len);
  return total;
}

size_t http_head_end(const uint8_t *p, size_t n) {
  const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
  return end ? (size_t)(end - p) + 4 : 0;
}

bool http_is_switching(const uint8_t *p, size_t n) {
  return n >= 12 && (memcmp(p, "HTTP/1.1 101", 12) == 0 || memcmp(p, "HTTP/1.0 101", 12) == 0);
}

static void base64_16(const uint8_t in[16], char out[25]) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (int i = 0; i < 15; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = abc[v >> 18 & 63], out[o++] = abc[v >> 12 & 63];
    out[o++] = abc[v >> 6 & 63], out[o++] = abc[v & 63];
  }
  uint32_t v = (uint32_t)in[15] << 16;
  out[o++] = abc[v >> 18 & 63], out[o++] = abc[v >> 12 & 63];
  out[o++] = '=', out[o++] = '=';
  out[o] = '\0';
}

size_t ws_upgrade_request(char *dst, size_t cap, int port, const uint8_t key16[16]) {
  char key[25];
  base64_16(key16, key);
  int n = snprintf(dst, cap,
                   "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   port, key);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

bool envelope_event(const uint8_t *p, size_t n, const char **event, size_t *event_len) {
  static const char key[] = "\"event\":\"";
  const size_t key_len = sizeof key - 1;
  const uint8_t *start;
  /* The server writes "event" first; search only when it did not. */
  if (n > key_len + 1 && p[0] == '{' && memcmp(p + 1, key, key_len) == 0)
    start = p + 1 + key_len;
  else if ((start = memmem(p, n, key, key_len)) != NULL)
    start += key_len;
  else
    return false;
  const uint8_t *end = memchr(start, '"', n - (size_t)(start - p));
  if (!end) return false;
  *event = (const char *)start;
  *event_len = (size_t)(end - start);
  return true;
}

bool json_find_uint(const uint8_t *p, size_t n, const char *key, size_t key_len, size_t *hint, uint64_t *value) {
  const uint8_t *at = p + *hint;
  if (*hint + key_len > n || memcmp(at, key, key_len) != 0) {
    at = memmem(p, n, key, key_len);
    if (!at) return false;
    *hint = (size_t)(at - p);
  }
  const uint8_t *q = at + key_len, *end = p + n;
  if (q == end || *q < '0' || *q > '9') return false;
  uint64_t v = 0;
  for (; q < end && *q >= '0' && *q <= '9'; q++) v = v * 10 + (uint64_t)(*q - '0');
  *value = v;
  return true;
}

size_t u64_to_dec(char *dst, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  for (size_t i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
  return n;
}
