#include "reads.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "iobatch.h"
#include "server.h"
#include "tls.h"

#define DIRECT_READ_SIZE 65536
/* Per batched read: messages under load are small, and a socket with more
 * left stays readable for the next turn. 1024 x 16 KiB of address space;
 * only the pages reads reach become resident. */
#define BATCH_READS 1024
#define BATCH_READ_SIZE 16384
#define QUIET_MS 500 /* no batched read this long: the buffers' pages go back */

typedef struct {
  sl_conn *conn; /* NULL once its connection closed */
  int ticket;
} pending_read;

static unsigned n_pending; /* reads in this turn's batch */
static pending_read pending[BATCH_READS];
static char batch_bufs[BATCH_READS][BATCH_READ_SIZE] __attribute__((aligned(4096)));
static bool bufs_touched;   /* since their pages last went back */
static uint64_t last_batch; /* ms */
static uint64_t n_arrived;
/* A read done at once is handed on before the next one: one buffer serves all. */
static char direct_buf[DIRECT_READ_SIZE];

/* Bytes from c's socket (n > 0), its end (0) or a failure (-errno). */
static void arrived(sl_conn *c, const char *p, ssize_t n) {
  if (n <= 0) {
    sl_conn_abort(c); /* an error, or the peer's EOF */
    return;
  }
  if (c->state == SL_CONN_CLOSED) return;
  c->last_seen = sl_now_ms();
  n_arrived++;
  if (c->tls) sl_tls_read(c, p, (size_t)n);
  else sl_conn_deliver(c, p, (size_t)n);
}

static void batch_read_done(void *owner, ssize_t n) {
  pending_read *r = owner;
  sl_conn *c = r->conn;
  r->conn = NULL;
  if (!c) return;
  c->read_pending = -1;
  if (n == -EAGAIN) return; /* nothing after all; the poller will say when */
  arrived(c, batch_bufs[r - pending], n);
}

/* c's read joins the turn's batch; false when it cannot (no io_uring, or
 * the batch is full): it is read now instead. */
static bool join_batch(sl_conn *c) {
  if (n_pending == BATCH_READS) return false;
  pending_read *r = &pending[n_pending];
  r->ticket = sl_iobatch_read(c->watch.fd, batch_bufs[n_pending], BATCH_READ_SIZE, batch_read_done, r);
  if (r->ticket < 0) return false;
  r->conn = c;
  c->read_pending = (int16_t)n_pending++;
  return true;
}

static void read_now(sl_conn *c) {
  ssize_t n = recv(c->watch.fd, direct_buf, sizeof direct_buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return; /* the poller will say again */
  arrived(c, direct_buf, n < 0 ? -errno : n);
}

void sl_reads_ready(sl_conn *c) {
  if (c->read_pending < 0 && !join_batch(c)) read_now(c);
}

int sl_reads_start(sl_conn *c) {
  c->reading = true;
  return sl_conn_watch(c);
}

int sl_reads_begin(sl_conn *c) {
  int r = sl_reads_start(c);
  if (r == 0 && c->read_pending < 0) join_batch(c); /* only where it costs no call of its own */
  return r;
}

int sl_reads_stop(sl_conn *c) {
  c->reading = false;
  return sl_conn_watch(c);
}

void sl_reads_forget(sl_conn *c) {
  if (c->read_pending < 0) return;
  pending_read *r = &pending[c->read_pending];
  sl_iobatch_cancel(r->ticket);
  r->conn = NULL;
  c->read_pending = -1;
}

uint64_t sl_reads_count(void) { return n_arrived; }

void sl_reads_run(void) {
  if (n_pending) {
    bufs_touched = true;
    last_batch = sl_now_ms();
  }
  sl_server_submit_batch();
  n_pending = 0;
}

void sl_reads_tick(uint64_t now) {
  if (!bufs_touched || now - last_batch < QUIET_MS) return;
  madvise(batch_bufs, sizeof batch_bufs, MADV_DONTNEED); /* zero pages again, until touched */
  bufs_touched = false;
}
