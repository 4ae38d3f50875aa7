/* How a connection's bytes arrive. The poller says a socket is readable;
 * the read itself joins the loop turn's io_uring batch (iobatch.h), run in
 * the check phase just before the turn's writes, or, where io_uring is off
 * or the batch is full, happens at once, into one shared buffer. Either way
 * the bytes go to TLS or the transport as they come. */
#ifndef SL_READS_H
#define SL_READS_H

#include "conn.h"

/* (Re)starts or pauses reading c (the poller watches it for input or
 * not); 0 or -errno. */
int sl_reads_start(sl_conn *c);
/* Starts reading a new connection: its registration with the poller and
 * a first read join the turn's batch (clients speak first, and on loopback
 * the request is often there by the accept). 0 or -errno. */
int sl_reads_begin(sl_conn *c);
int sl_reads_stop(sl_conn *c);
/* c's socket is readable: it is read in this turn. */
void sl_reads_ready(sl_conn *c);
/* Before c's socket closes: a read of it waiting in the batch is taken back. */
void sl_reads_forget(sl_conn *c);
/* Reads that brought bytes since start, batched or not. */
uint64_t sl_reads_count(void);
/* Runs the turn's batch: its reads, each one's bytes handed on, and what
 * else joined it while the wait's events were handled (accepts, new
 * sockets' registrations). */
void sl_reads_run(void);
/* Called now and then: after a quiet half second the batch's read buffers (up
 * to 16 MiB, touched by bursts of many clients at once) give their pages
 * back, so a server at rest holds only what its clients need. */
void sl_reads_tick(uint64_t now_ms);

#endif
