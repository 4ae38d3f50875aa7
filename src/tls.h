/* TLS for both listeners, over libuv with OpenSSL memory BIOs: no blocking
 * call and no extra thread. Ciphertext read from the socket goes into the
 * connection's SSL; plaintext it yields goes to the transport. What the
 * transport queues is encrypted as it is queued, so the outbound queue
 * always holds bytes for the wire. */
#ifndef SL_TLS_H
#define SL_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conn.h"

typedef struct sl_tls_ctx sl_tls_ctx;

/* Loads the certificate chain and key (and optional CA bundle): NULL with a
 * message naming the file in err when they cannot be read or do not match. */
sl_tls_ctx *sl_tls_ctx_new(const char *cert, const char *key, const char *ca, char *err, size_t errlen);
void sl_tls_ctx_free(sl_tls_ctx *t);

/* Starts the server side of a handshake on an accepted connection; once it
 * completes, ready(c) hands the connection to its protocol. A failed
 * handshake is logged, counted, and closes the socket. */
void sl_tls_attach(sl_conn *c, sl_tls_ctx *t, void (*ready)(sl_conn *c));
/* Ciphertext from the socket. */
void sl_tls_read(sl_conn *c, const char *p, size_t n);
/* Encrypts plaintext b (consuming the reference) into the wire queue. */
void sl_tls_write(sl_conn *c, sl_buf *b);
void sl_tls_free(sl_conn *c);

#endif
