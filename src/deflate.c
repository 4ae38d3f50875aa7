#include "deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define OUT_CHUNK 16384

/* ---- negotiation ---- */

/* Reads one parameter's value: a token or a quoted token; "" when none. */
static int window_value(const char *v, size_t n) {
  if (n >= 2 && v[0] == '"' && v[n - 1] == '"') v++, n -= 2;
  if (n == 0 || n > 2) return -1;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    bits = bits * 10 + (v[i] - '0');
  }
  return (bits >= 8 && bits <= 15) ? bits : -1;
}

static void trim(const char **p, size_t *n) {
  while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
  while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) (*n)--;
}

/* One offer: "permessage-deflate; a; b=1". */
static bool accept_offer(const char *offer, size_t len, sl_pmd *pmd, char *response, size_t size) {
  const char *p = offer, *end = offer + len;
  const char *semi = memchr(p, ';', len);
  const char *name = p;
  size_t name_len = (size_t)((semi ? semi : end) - p);
  trim(&name, &name_len);
  if (name_len != 18 || strncasecmp(name, "permessage-deflate", 18) != 0) return false;
  *pmd = (sl_pmd){false, 15, 15};
  bool seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
  int cmwb_echo = 0;
  for (p = semi; p && p < end;) {
    p++;
    const char *next = memchr(p, ';', (size_t)(end - p));
    const char *param = p, *eq;
    size_t n = (size_t)((next ? next : end) - p);
    trim(&param, &n);
    eq = memchr(param, '=', n);
    size_t key_len = eq ? (size_t)(eq - param) : n;
    const char *val = eq ? eq + 1 : NULL;
    size_t val_len = eq ? n - key_len - 1 : 0;
    while (key_len && (param[key_len - 1] == ' ' || param[key_len - 1] == '\t')) key_len--;
    if (val) trim(&val, &val_len);
#define IS(word) (key_len == strlen(word) && strncasecmp(param, word, key_len) == 0)
    if (IS("server_no_context_takeover") && !val && !seen_snct) {
      seen_snct = true;
    } else if (IS("client_no_context_takeover") && !val && !seen_cnct) {
      seen_cnct = pmd->client_no_context_takeover = true;
    } else if (IS("server_max_window_bits") && val && !seen_smwb) {
      seen_smwb = true;
      /* zlib cannot make a raw deflate stream with an 8-bit window */
      if ((pmd->server_max_window_bits = window_value(val, val_len)) < 9) return false;
    } else if (IS("client_max_window_bits") && !seen_cmwb) {
      seen_cmwb = true;
      if (val && (cmwb_echo = pmd->client_max_window_bits = window_value(val, val_len)) < 0) return false;
      if (pmd->client_max_window_bits == 8) pmd->client_max_window_bits = 9; /* zlib reads 8 as 9 */
    } else {
      return false; /* unknown, repeated or malformed: decline this offer */
    }
#undef IS
    p = next;
  }
  int n = snprintf(response, size, "permessage-deflate; server_no_context_takeover");
  if (seen_cnct) n += snprintf(response + n, size - (size_t)n, "; client_no_context_takeover");
  if (seen_smwb) n += snprintf(response + n, size - (size_t)n, "; server_max_window_bits=%d", pmd->server_max_window_bits);
  if (cmwb_echo) snprintf(response + n, size - (size_t)n, "; client_max_window_bits=%d", cmwb_echo);
  return true;
}

bool sl_pmd_negotiate(const char *offers, sl_pmd *params, char *response, size_t size) {
  for (const char *p = offers; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (accept_offer(p, len, params, response, size)) return true;
    p = comma ? comma + 1 : NULL;
  }
  return false;
}

/* ---- inflate ---- */

struct sl_inflater {
  z_stream z;
  bool ended; /* the stream ended inside the message */
};

sl_inflater *sl_inflater_new(int window_bits) {
  sl_inflater *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  if (inflateInit2(&z->z, -window_bits) != Z_OK) {
    free(z);
    return NULL;
  }
  return z;
}

void sl_inflater_free(sl_inflater *z) {
  if (!z) return;
  inflateEnd(&z->z);
  free(z);
}

static sl_inflate_result inflate_some(sl_inflater *z, const char *in, size_t n, size_t max, sl_sbuf *out) {
  z->z.next_in = (Bytef *)in;
  z->z.avail_in = (uInt)n;
  while (z->z.avail_in > 0) {
    if (z->ended) return SL_INFLATE_CORRUPT; /* bytes after the end of the stream */
    size_t room = max - out->len + 1; /* one byte more shows the message is too big */
    if (room > OUT_CHUNK) room = OUT_CHUNK;
    char *dst = sl_sbuf_reserve(out, room);
    if (!dst) return SL_INFLATE_TOO_BIG;
    z->z.next_out = (Bytef *)dst;
    z->z.avail_out = (uInt)room;
    int r = inflate(&z->z, Z_SYNC_FLUSH);
    out->len += room - z->z.avail_out;
    if (out->len > max) return SL_INFLATE_TOO_BIG;
    if (r == Z_STREAM_END) {
      z->ended = true;
      return z->z.avail_in ? SL_INFLATE_CORRUPT : SL_INFLATE_OK;
    }
    if (r == Z_BUF_ERROR && z->z.avail_out > 0) return SL_INFLATE_CORRUPT; /* no progress */
    if (r != Z_OK && r != Z_BUF_ERROR) return SL_INFLATE_CORRUPT;
  }
  return SL_INFLATE_OK;
}

sl_inflate_result sl_inflate_message(sl_inflater *z, const char *in, size_t n, size_t max, bool reset, sl_sbuf *out) {
  static const char tail[4] = {0, 0, (char)0xff, (char)0xff};
  sl_inflate_result r = inflate_some(z, in, n, max, out);
  /* A message may end its DEFLATE stream itself (BFINAL, RFC 7692
   * 7.2.3.3): then there is no tail to add, and the next message starts a
   * new stream. */
  bool ended = z->ended;
  if (r == SL_INFLATE_OK && !ended) r = inflate_some(z, tail, sizeof tail, max, out);
  if (r != SL_INFLATE_OK || reset || ended) inflateReset(&z->z);
  z->ended = false;
  return r;
}

/* ---- deflate ---- */

int sl_deflate_message(int window_bits, const char *in, size_t n, sl_sbuf *out) {
  static z_stream streams[16]; /* one per window size, reset for every message */
  static bool ready[16];
  z_stream *z = &streams[window_bits];
  if (!ready[window_bits]) {
    if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    ready[window_bits] = true;
  } else {
    deflateReset(z);
  }
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)n;
  size_t start = out->len;
  do {
    char *dst = sl_sbuf_reserve(out, deflateBound(z, (uLong)n) + 16);
    if (!dst) return -1;
    size_t room = out->cap - out->len;
    z->next_out = (Bytef *)dst;
    z->avail_out = (uInt)room;
    if (deflate(z, Z_SYNC_FLUSH) == Z_STREAM_ERROR) return -1;
    out->len += room - z->avail_out;
  } while (z->avail_out == 0);
  if (out->len - start >= 4) out->len -= 4; /* the 00 00 ff ff of the sync flush */
  return 0;
}
