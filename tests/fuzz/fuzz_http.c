/* libFuzzer target: the HTTP request path (http-parser with http.c's
 * callbacks and request accessors).
 *
 * http.c keeps its parser state and callbacks static and exports only
 * sl_http_attach, which needs a live connection; so, as h2o's unit tests
 * do, this file includes the .c under test to reach its statics. It then
 * does what http_read does, minus the socket: feed the request in reads of
 * a size the first input byte picks, stop on an error or past
 * SL_HTTP_MAX_HEADER_BYTES, and once the request is in (complete, or an
 * upgrade), ask it every question answer() and answer_upgrade() ask:
 * method, URL, each header, the Connection tokens, the key and its
 * Sec-WebSocket-Accept, the namespace and health paths, and where the bytes
 * after an upgrade begin. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.c"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) abort();                                                                          \
  } while (0)

static volatile char sink;

static void check_request(const sl_http_req *r, const char *rest, size_t rest_len) {
  CHECK(sl_http_method(r) != NULL);
  const char *url = sl_http_url(r);
  CHECK(strlen(url) == (r->url.len ? r->url.len : 1));

  size_t pos = 0, last = 0;
  const char *name, *value;
  unsigned seen = 0;
  while (sl_http_next_header(r, &pos, &name, &value)) {
    CHECK(pos > last && pos <= r->headers.len);
    CHECK(name >= r->headers.data && value + strlen(value) < r->headers.data + r->headers.len);
    for (const char *n = name; *n; n++) CHECK(!(*n >= 'A' && *n <= 'Z'));
    last = pos;
    seen++;
  }
  CHECK(seen == r->nheaders);

  const char *upgrade = sl_http_header(r, "upgrade");
  const char *connection = sl_http_header(r, "connection");
  const char *key = sl_http_header(r, "sec-websocket-key");
  const char *version = sl_http_header(r, "sec-websocket-version");
  const char *origin = sl_http_header(r, "origin");
  sink ^= (char)(upgrade && strcasecmp(upgrade, "websocket") == 0);
  sink ^= (char)has_token(connection, "upgrade");
  sink ^= (char)(version && strcmp(version, "13") == 0);
  sink ^= (char)(origin ? origin[0] : 0);
  sink ^= (char)path_is(url, "/health");
  sink ^= (char)path_is(url, "/chat");
  if (valid_key(key)) {
    char accept[29];
    CHECK(sl_ws_accept_key(key, accept) == 0);
    CHECK(strlen(accept) == 28);
  }
  for (size_t i = 0; i < rest_len; i++) sink ^= rest[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t chunk = data[0] ? data[0] : SIZE_MAX; /* 0: the whole request in one read */
  data++, size--;

  sl_http_req *r = calloc(1, sizeof *r);
  CHECK(r);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  while (size > 0) {
    size_t n = size < chunk ? size : chunk;
    char *part = malloc(n); /* each read in its own exact allocation */
    CHECK(part);
    memcpy(part, data, n);
    size_t used = http_parser_execute(&r->parser, &parser_settings, part, n);
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    CHECK(used <= n);
    if (r->complete || (r->parser.upgrade && err == HPE_OK)) {
      check_request(r, part + used, n - used);
      free(part);
      break;
    }
    free(part);
    if (err != HPE_OK) {
      CHECK(http_errno_description(err) != NULL);
      break; /* refused: 400, or 431 past SL_HTTP_MAX_HEADERS */
    }
    if (r->headers.len + r->url.len > SL_HTTP_MAX_HEADER_BYTES) break; /* refused: 431 */
    data += n, size -= n;
  }
  sl_sbuf_free(&r->url);
  sl_sbuf_free(&r->headers);
  free(r);
  return 0;
}
