#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define PLAIN_CHUNK 16384

struct sl_tls_ctx {
  SSL_CTX *ctx;
};

/* Per connection. */
typedef struct sl_tls {
  SSL *ssl;
  BIO *in, *out; /* network -> SSL, SSL -> network */
  void (*ready)(sl_conn *c);
  bool established;
} sl_tls;

static const char *ssl_error_text(void) {
  static char buf[256];
  unsigned long e = ERR_get_error();
  if (!e) return "unknown error";
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

/* ALPN: speak http/1.1 when the client offers it, else carry on without. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl, (void)arg;
  static const unsigned char http11[] = "\x08http/1.1";
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, http11, sizeof http11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

sl_tls_ctx *sl_tls_ctx_new(const char *cert, const char *key, const char *ca, char *err, size_t errlen) {
  sl_tls_ctx *t = calloc(1, sizeof *t);
  if (!t || !(t->ctx = SSL_CTX_new(TLS_server_method()))) {
    snprintf(err, errlen, "TLS: cannot create a context: %s", ssl_error_text());
    free(t);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections keep no record buffers */
  SSL_CTX_set_alpn_select_cb(t->ctx, select_alpn, NULL);
  const char *failed = NULL;
  if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) failed = cert;
  else if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) failed = key;
  else if (SSL_CTX_check_private_key(t->ctx) != 1) failed = key;
  else if (ca && SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) failed = ca;
  if (failed) {
    snprintf(err, errlen, "TLS: cannot use %s: %s", failed, ssl_error_text());
    sl_tls_ctx_free(t);
    return NULL;
  }
  return t;
}

void sl_tls_ctx_free(sl_tls_ctx *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

/* Moves what SSL wrote into the wire queue. */
static void flush_out(sl_conn *c, sl_tls *tls) {
  size_t pending;
  while ((pending = BIO_ctrl_pending(tls->out)) > 0) {
    sl_buf *b = sl_buf_new(pending);
    if (!b) return sl_conn_abort(c);
    int n = BIO_read(tls->out, b->data, (int)pending);
    if (n <= 0) {
      sl_buf_unref(b);
      return;
    }
    b->len = (uint32_t)n;
    sl_conn_enqueue_wire(c, b);
  }
}

/* ---- while the handshake runs, the connection has no protocol yet ---- */

static void hs_close(sl_conn *c, uint16_t code, const char *reason) {
  (void)code, (void)reason;
  sl_conn_abort(c);
}
static void hs_nothing(sl_conn *c) { (void)c; }
static void hs_read(sl_conn *c, const char *p, size_t n) { (void)c, (void)p, (void)n; }
static sl_buf *hs_encode(const sl_msg *m, int wire) {
  (void)m, (void)wire;
  return NULL;
}

static const sl_transport handshake_transport = {
    .name = "tls",
    .encode = hs_encode,
    .on_read = hs_read,
    .close = hs_close,
    .ping = hs_nothing,
    .on_drained = hs_nothing,
    .free = hs_nothing,
};

/* The alert SSL queued goes out before the socket closes. */
static void handshake_failed(sl_conn *c) {
  c->server->stats.tls_failures++;
  sl_info("TLS handshake with %s failed: %s", c->remote, ssl_error_text());
  sl_conn_flush(c);
  sl_conn_shutdown(c);
}

void sl_tls_attach(sl_conn *c, sl_tls_ctx *t, void (*ready)(sl_conn *c)) {
  sl_tls *tls = calloc(1, sizeof *tls);
  if (!tls || !(tls->ssl = SSL_new(t->ctx))) {
    free(tls);
    return sl_conn_abort(c);
  }
  tls->in = BIO_new(BIO_s_mem());
  tls->out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(tls->in, -1); /* an empty input BIO means "wait", not EOF */
  SSL_set_bio(tls->ssl, tls->in, tls->out);
  SSL_set_accept_state(tls->ssl);
  tls->ready = ready;
  c->tls = tls;
  c->tp = &handshake_transport;
  c->state = SL_CONN_HTTP;
  c->deadline = sl_now_ms() + c->server->cfg.connect_timeout;
}

static bool handshake(sl_conn *c, sl_tls *tls) {
  if (c->state != SL_CONN_HTTP) return false; /* failed already: draining */
  int r = SSL_do_handshake(tls->ssl);
  flush_out(c, tls);
  if (r == 1) {
    tls->established = true;
    tls->ready(c);
    return c->state != SL_CONN_CLOSED;
  }
  int e = SSL_get_error(tls->ssl, r);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) handshake_failed(c);
  return false;
}

void sl_tls_read(sl_conn *c, const char *p, size_t n) {
  sl_tls *tls = c->tls;
  if (BIO_write(tls->in, p, (int)n) != (int)n) return sl_conn_abort(c);
  if (!tls->established && !handshake(c, tls)) return;
  static char plain[PLAIN_CHUNK];
  for (;;) {
    int r = SSL_read(tls->ssl, plain, sizeof plain);
    if (r > 0) {
      sl_conn_deliver(c, plain, (size_t)r);
      if (c->state == SL_CONN_CLOSED) return;
      continue;
    }
    int e = SSL_get_error(tls->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e != SSL_ERROR_ZERO_RETURN) sl_debug("TLS read from %s failed: %s", c->remote, ssl_error_text());
    return sl_conn_abort(c); /* close_notify or a broken record */
  }
  flush_out(c, tls);
}

void sl_tls_write(sl_conn *c, sl_buf *b) {
  sl_tls *tls = c->tls;
  int r = b->len ? SSL_write(tls->ssl, b->data, (int)b->len) : 1;
  sl_buf_unref(b);
  if (r <= 0) {
    sl_debug("TLS write to %s failed: %s", c->remote, ssl_error_text());
    return sl_conn_abort(c);
  }
  flush_out(c, tls);
}

void sl_tls_free(sl_conn *c) {
  sl_tls *tls = c->tls;
  if (!tls) return;
  SSL_free(tls->ssl); /* frees both BIOs */
  free(tls);
  c->tls = NULL;
}
