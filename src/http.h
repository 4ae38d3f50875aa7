/* The HTTP phase of a connection, through http-parser: the WebSocket
 * upgrade (and its refusals), /health, CORS preflight, and a banner for
 * anything else. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stddef.h>

#include "conn.h"

#define SL_HTTP_MAX_HEADER_BYTES 16384
#define SL_HTTP_MAX_HEADERS 100

/* A parsed request. Header names are lower-cased; headers is a sequence of
 * "name\0value\0" pairs. Owned by the connection until the upgrade. */
typedef struct sl_http_req sl_http_req;

/* Makes c speak HTTP until it upgrades; sets the handshake deadline. */
void sl_http_attach(sl_conn *c);

const char *sl_http_method(const sl_http_req *r);
const char *sl_http_url(const sl_http_req *r);
const char *sl_http_header(const sl_http_req *r, const char *lower_name);
/* Walks the headers: call with *pos = 0; returns 0 at the end. */
int sl_http_next_header(const sl_http_req *r, size_t *pos, const char **name, const char **value);
/* Appends "method\0url\0" and the "name\0value\0" headers to out: the
 * compact form a connection keeps until a script reads ctx.req. */
int sl_http_copy_request(const sl_http_req *r, sl_sbuf *out);

/* Sec-WebSocket-Accept: base64(SHA1(key ++ the RFC 6455 GUID)), NUL-terminated. */
int sl_ws_accept_key(const char *key, char out[29]);

#endif
