#include "http.h"

#include <ctype.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "deflate.h"
#include "log.h"
#include "server.h"
#include "ws.h"

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
#define WS_KEY_MAX 64 /* a real Sec-WebSocket-Key has 24 characters */

struct sl_http_req {
  http_parser parser;
  sl_sbuf url;
  sl_sbuf headers; /* "name\0value\0" ... */
  unsigned nheaders;
  bool in_value;   /* the last callback was a header value */
  bool complete;
  bool headers_done; /* what comes after (a chunked body's trailers) is ignored */
  bool too_big;    /* the request line and headers passed SL_HTTP_MAX_HEADER_BYTES */
};

/* OpenSSL 3 looks SHA-1 up by name on every EVP_sha1() digest, under a
 * lock: the algorithm and a context are fetched once and reused (a third
 * of the cost of each accept key). They live as long as the process. */
static EVP_MD_CTX *sha1_ctx(void) {
  static EVP_MD *md;
  static EVP_MD_CTX *ctx;
  if (!md && !(md = EVP_MD_fetch(NULL, "SHA1", NULL))) return NULL;
  if (!ctx && !(ctx = EVP_MD_CTX_new())) return NULL;
  return EVP_DigestInit_ex2(ctx, md, NULL) ? ctx : NULL;
}

int sl_ws_accept_key(const char *key, char out[29]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  size_t key_len = strlen(key);
  if (key_len > WS_KEY_MAX) return -1;
  EVP_MD_CTX *ctx = sha1_ctx();
  if (!ctx || !EVP_DigestUpdate(ctx, key, key_len) || !EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) ||
      !EVP_DigestFinal_ex(ctx, digest, &dlen))
    return -1;
  EVP_EncodeBlock((unsigned char *)out, digest, (int)dlen);
  return 0;
}

const char *sl_http_method(const sl_http_req *r) {
  return http_method_str((enum http_method)r->parser.method);
}

const char *sl_http_url(const sl_http_req *r) { return r->url.len ? r->url.data : "/"; }

int sl_http_next_header(const sl_http_req *r, size_t *pos, const char **name, const char **value) {
  if (*pos >= r->headers.len) return 0; /* also when there are none (data is NULL) */
  const char *end = r->headers.data + r->headers.len;
  *name = r->headers.data + *pos;
  const char *name_end = memchr(*name, '\0', (size_t)(end - *name));
  if (!name_end || name_end + 1 >= end) return 0;
  *value = name_end + 1;
  const char *value_end = memchr(*value, '\0', (size_t)(end - *value));
  if (!value_end) return 0;
  *pos = (size_t)(value_end + 1 - r->headers.data);
  return 1;
}

int sl_http_copy_request(const sl_http_req *r, sl_sbuf *out) {
  const char *method = sl_http_method(r), *url = sl_http_url(r);
  if (sl_sbuf_append(out, method, strlen(method) + 1) || sl_sbuf_append(out, url, strlen(url) + 1)) return -1;
  return r->headers.len ? sl_sbuf_append(out, r->headers.data, r->headers.len) : 0;
}

const char *sl_http_header(const sl_http_req *r, const char *lower_name) {
  size_t pos = 0;
  const char *name, *value;
  while (sl_http_next_header(r, &pos, &name, &value))
    if (strcmp(name, lower_name) == 0) return value;
  return NULL;
}

/* ---- http-parser callbacks: collect the URL and the headers ---- */

/* Stops the parser before a request grows past the header limit. */
static bool over_limit(sl_http_req *r, size_t more) {
  if (r->url.len + r->headers.len + more <= SL_HTTP_MAX_HEADER_BYTES) return false;
  r->too_big = true;
  return true;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  sl_http_req *r = p->data;
  if (over_limit(r, len)) return -1;
  return sl_sbuf_append(&r->url, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  sl_http_req *r = p->data;
  if (r->headers_done) return 0;
  if (over_limit(r, len + 1)) return -1;
  if (r->in_value || r->nheaders == 0) {
    /* A new header: close the previous value. */
    if (r->nheaders && sl_sbuf_putc(&r->headers, '\0')) return -1;
    if (++r->nheaders > SL_HTTP_MAX_HEADERS) return -1;
    r->in_value = false;
  } else {
    r->headers.len--; /* drop the name's terminator: this is its continuation */
  }
  char *dst = sl_sbuf_reserve(&r->headers, len + 1);
  if (!dst) return -1;
  for (size_t i = 0; i < len; i++) dst[i] = (char)tolower((unsigned char)at[i]);
  dst[len] = '\0';
  r->headers.len += len + 1;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  sl_http_req *r = p->data;
  if (r->headers_done) return 0;
  r->in_value = true;
  if (over_limit(r, len)) return -1;
  /* http-parser lets a NUL open a value: it would split our "name\0value\0"
   * list and send the walk past its end (found by fuzzing). */
  if (memchr(at, '\0', len)) return -1;
  return sl_sbuf_append(&r->headers, at, len);
}

static int on_headers_complete(http_parser *p) {
  sl_http_req *r = p->data;
  r->headers_done = true;
  if (r->nheaders && sl_sbuf_putc(&r->headers, '\0')) return -1;
  if (sl_sbuf_putc(&r->url, '\0')) return -1;
  r->url.len--; /* keep it a C string without counting the NUL */
  return 0;
}

static int on_message_complete(http_parser *p) {
  ((sl_http_req *)p->data)->complete = true;
  http_parser_pause(p, 1); /* answer one request, then stop reading */
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* ---- responses ---- */

static const char *status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 426: return "Upgrade Required";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return status < 400 ? "OK" : "Error";
  }
}

/* Queues a whole response and closes once it is written. */
static void respond(sl_conn *c, int status, const char *content_type, const char *extra_headers,
                    const char *body, size_t body_len) {
  char line[160];
  snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n", status,
           status_text(status), body_len);
  sl_sbuf out = {0};
  sl_sbuf_puts(&out, line);
  sl_sbuf_puts(&out, "Content-Type: "), sl_sbuf_puts(&out, content_type), sl_sbuf_puts(&out, "\r\n");
  if (extra_headers) sl_sbuf_puts(&out, extra_headers);
  sl_sbuf_puts(&out, "\r\n");
  if (body_len) sl_sbuf_append(&out, body, body_len);
  if (out.data) sl_conn_enqueue(c, sl_buf_from(out.data, out.len));
  sl_sbuf_free(&out);
  c->state = SL_CONN_CLOSING;
  c->deadline = sl_now_ms() + 5000;
  sl_conn_flush(c);
}

static void refuse(sl_conn *c, int status, const char *reason, const char *extra_headers) {
  sl_info("refused %s: %d %s", c->remote, status, reason);
  char body[256];
  int n = snprintf(body, sizeof body, "%s\n", reason);
  respond(c, status, "text/plain", extra_headers, body, (size_t)n);
}

static bool has_token(const char *list, const char *token) {
  size_t tlen = strlen(token);
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',' || *p == '\t') p++;
    const char *end = p;
    while (*end && *end != ',') end++;
    const char *e = end;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if ((size_t)(e - p) == tlen && strncasecmp(p, token, tlen) == 0) return true;
    p = end;
  }
  return false;
}

static bool valid_key(const char *key) {
  unsigned char raw[32];
  if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=') return false;
  return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

/* The path without its query string, compared to want. */
static bool path_is(const char *url, const char *want) {
  size_t n = strcspn(url, "?#");
  return strlen(want) == n && strncmp(url, want, n) == 0;
}

static void cors_headers(const sl_server *s, const char *origin, char *out, size_t size) {
  out[0] = '\0';
  if (!origin || !sl_server_origin_allowed(s, origin)) return;
  snprintf(out, size,
           "Access-Control-Allow-Origin: %s\r\nAccess-Control-Allow-Methods: GET, OPTIONS\r\n"
           "Access-Control-Max-Age: 86400\r\n",
           origin);
}

static void answer_custom_health(sl_conn *c, sl_http_req *r, const char *cors) {
  sl_sbuf headers = {0}, body = {0}, type = {0};
  int status;
  sl_app_custom_health(c->server, r, &status, &headers, &body, &type);
  sl_sbuf_puts(&headers, cors);
  sl_sbuf_putc(&headers, '\0');
  sl_sbuf_putc(&type, '\0');
  respond(c, status, type.data, headers.data, body.data, body.len);
  sl_sbuf_free(&headers);
  sl_sbuf_free(&body);
  sl_sbuf_free(&type);
}

static void answer_health(sl_conn *c, sl_http_req *r) {
  char cors[512];
  cors_headers(c->server, sl_http_header(r, "origin"), cors, sizeof cors);
  if (sl_app_has_custom_health(c->server)) return answer_custom_health(c, r, cors);
  sl_sbuf body = {0};
  if (sl_app_health_json(c->server, &body) == 0)
    respond(c, 200, "application/json", cors, body.data, body.len);
  else
    refuse(c, 500, "health unavailable", NULL);
  sl_sbuf_free(&body);
}

static void answer_upgrade(sl_conn *c, sl_http_req *r, const char *rest, size_t rest_len) {
  sl_server *s = c->server;
  const char *key = sl_http_header(r, "sec-websocket-key");
  const char *version = sl_http_header(r, "sec-websocket-version");
  const char *origin = sl_http_header(r, "origin");
  if (r->parser.method != HTTP_GET || !has_token(sl_http_header(r, "connection"), "upgrade"))
    return refuse(c, 400, "not a WebSocket upgrade", NULL);
  if (!valid_key(key)) return refuse(c, 400, "missing or invalid Sec-WebSocket-Key", NULL);
  if (!version || strcmp(version, "13") != 0)
    return refuse(c, 426, "unsupported WebSocket version", "Sec-WebSocket-Version: 13\r\n");
  if (strcmp(s->cfg.namespace_path, "/") != 0 && !path_is(sl_http_url(r), s->cfg.namespace_path))
    return refuse(c, 404, "unknown namespace", NULL);
  if (!sl_server_origin_allowed(s, origin)) return refuse(c, 403, "origin not allowed", NULL);

  char accept[29], head[1024], pmd_reply[160];
  sl_pmd pmd;
  const char *offers = sl_http_header(r, "sec-websocket-extensions");
  bool deflate = s->cfg.compression && offers && sl_pmd_negotiate(offers, &pmd, pmd_reply, sizeof pmd_reply);
  if (sl_ws_accept_key(key, accept) != 0) return refuse(c, 500, "cannot compute Sec-WebSocket-Accept", NULL);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                   accept);
  if (origin && s->cfg.allowed_origins)
    n += snprintf(head + n, sizeof head - (size_t)n, "Access-Control-Allow-Origin: %.300s\r\n", origin);
  if (deflate) n += snprintf(head + n, sizeof head - (size_t)n, "Sec-WebSocket-Extensions: %s\r\n", pmd_reply);
  n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
  sl_conn_enqueue(c, sl_buf_from(head, (size_t)n));
  sl_ws_attach(c);
  if (deflate && sl_ws_enable_deflate(c, &pmd) != 0) return sl_conn_abort(c);
  c->deadline = 0;
  sl_app_client_opened(c, r);
  if (rest_len) sl_app_feed(c, rest, rest_len);
}

static void answer(sl_conn *c, sl_http_req *r, const char *rest, size_t rest_len) {
  const sl_server *s = c->server;
  const char *url = sl_http_url(r);
  /* A WebSocket attempt is answered as one even when it lacks
   * "Connection: Upgrade" (a 400 then), not with the banner. */
  const char *upgrade = sl_http_header(r, "upgrade");
  if (upgrade && strcasecmp(upgrade, "websocket") == 0) return answer_upgrade(c, r, rest, rest_len);
  if (r->parser.method == HTTP_OPTIONS) {
    char cors[512];
    cors_headers(s, sl_http_header(r, "origin"), cors, sizeof cors);
    return respond(c, 204, "text/plain", cors, NULL, 0);
  }
  if (s->cfg.health_endpoint && path_is(url, s->cfg.health_endpoint) &&
      (r->parser.method == HTTP_GET || r->parser.method == HTTP_HEAD))
    return answer_health(c, r);
  static const char banner[] = "stelar-lua " SL_VERSION ": a stelar v3 real-time server\n";
  respond(c, 200, "text/plain", NULL, banner, sizeof banner - 1);
}

static void http_free(sl_conn *c) {
  sl_http_req *r = c->proto;
  if (!r) return;
  sl_sbuf_free(&r->url);
  sl_sbuf_free(&r->headers);
  free(r);
  c->proto = NULL;
}

static void http_read(sl_conn *c, const char *p, size_t n) {
  sl_http_req *r = c->proto;
  if (c->state != SL_CONN_HTTP) return; /* a response is on its way */
  size_t used = http_parser_execute(&r->parser, &parser_settings, p, n);
  enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
  if (r->complete || (r->parser.upgrade && err == HPE_OK)) {
    /* The request is in; whatever follows belongs to the WebSocket. */
    c->proto = NULL;
    answer(c, r, p + used, n - used);
    sl_sbuf_free(&r->url);
    sl_sbuf_free(&r->headers);
    free(r);
    return;
  }
  if (r->too_big || r->nheaders > SL_HTTP_MAX_HEADERS)
    refuse(c, 431, "request headers too large", NULL);
  else if (err != HPE_OK)
    refuse(c, 400, http_errno_description(err), NULL);
}

static void http_close(sl_conn *c, uint16_t code, const char *reason) {
  (void)code, (void)reason;
  sl_conn_abort(c);
}

static void http_drained(sl_conn *c) {
  if (c->state == SL_CONN_CLOSING) sl_conn_shutdown(c);
}

static void http_ping(sl_conn *c) { (void)c; }

static sl_buf *http_encode(const sl_msg *m, int wire) {
  (void)m, (void)wire;
  return NULL;
}

static const sl_transport http_transport = {
    .name = "http",
    .encode = http_encode,
    .on_read = http_read,
    .close = http_close,
    .ping = http_ping,
    .on_drained = http_drained,
    .free = http_free,
};

void sl_http_attach(sl_conn *c) {
  sl_http_req *r = calloc(1, sizeof *r);
  if (!r) return sl_conn_abort(c);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  c->proto = r;
  c->tp = &http_transport;
  c->state = SL_CONN_HTTP;
  c->deadline = sl_now_ms() + c->server->cfg.connect_timeout;
}
