#include "iobatch.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RING_ENTRIES 1024
#define IOV_POOL (RING_ENTRIES * 8)
#define SUBMIT_TRIES 16

typedef struct {
  sl_iobatch_done done; /* NULL once cancelled */
  void *owner;
  struct io_uring_sqe *sqe;
  struct msghdr msg; /* a send's */
} slot;

/* The ring and what its queued operations point at, valid until the submit. */
static struct {
  bool on;
  bool reaping; /* done callbacks are running: no adds */
  struct io_uring ring;
  unsigned count;    /* operations added since the last submit, in slots[] */
  unsigned iov_used; /* of iov */
  slot slots[RING_ENTRIES];
  struct iovec iov[IOV_POOL];
} batch;

const char *sl_iobatch_open(void) {
  if (batch.on) return NULL;
  /* One thread submits, and every operation completes inside the submit:
   * the kernel never needs to interrupt us to post a completion. */
  int r = io_uring_queue_init(RING_ENTRIES, &batch.ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN);
  if (r == -EINVAL) r = io_uring_queue_init(RING_ENTRIES, &batch.ring, 0); /* kernels before 6.0 */
  if (r < 0) return strerror(-r);
  batch.on = true;
  return NULL;
}

void sl_iobatch_close(void) {
  if (!batch.on) return;
  io_uring_queue_exit(&batch.ring);
  batch.on = false;
}

bool sl_iobatch_full(void) {
  return batch.on && !batch.reaping &&
         (batch.count == RING_ENTRIES || batch.iov_used + SL_IOBATCH_MAX_BUFS > IOV_POOL);
}

/* The next slot and its SQE, or -1. */
static int take_slot(sl_iobatch_done done, void *owner) {
  if (!batch.on || batch.reaping || sl_iobatch_full()) return -1;
  struct io_uring_sqe *sqe = io_uring_get_sqe(&batch.ring);
  if (!sqe) return -1;
  int i = (int)batch.count++;
  batch.slots[i] = (slot){.done = done, .owner = owner, .sqe = sqe};
  return i;
}

int sl_iobatch_read(int fd, void *buf, size_t len, sl_iobatch_done done, void *owner) {
  int i = take_slot(done, owner);
  if (i < 0) return -1;
  io_uring_prep_recv(batch.slots[i].sqe, fd, buf, len, MSG_DONTWAIT);
  io_uring_sqe_set_data64(batch.slots[i].sqe, (uint64_t)i);
  return i;
}

int sl_iobatch_send(int fd, const uv_buf_t *bufs, unsigned n, sl_iobatch_done done, void *owner) {
  if (n == 0 || n > SL_IOBATCH_MAX_BUFS) return -1;
  int i = take_slot(done, owner);
  if (i < 0) return -1;
  struct iovec *iov = batch.iov + batch.iov_used;
  for (unsigned k = 0; k < n; k++) iov[k] = (struct iovec){.iov_base = bufs[k].base, .iov_len = bufs[k].len};
  batch.iov_used += n;
  slot *s = &batch.slots[i];
  s->msg = (struct msghdr){.msg_iov = iov, .msg_iovlen = n};
  io_uring_prep_sendmsg(s->sqe, fd, &s->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s->sqe, (uint64_t)i);
  return i;
}

void sl_iobatch_cancel(int ticket) {
  if (ticket < 0 || (unsigned)ticket >= batch.count || batch.reaping) return;
  slot *s = &batch.slots[ticket];
  s->done = NULL;
  io_uring_prep_nop(s->sqe); /* not yet submitted: the SQE is still ours */
  io_uring_sqe_set_data64(s->sqe, (uint64_t)ticket);
}

/* Hands the queued operations to the kernel; returns how many it took
 * (it takes them in order). */
static unsigned push_to_kernel(void) {
  for (int tries = 0; io_uring_sq_ready(&batch.ring) && tries < SUBMIT_TRIES; tries++) {
    int r = io_uring_submit(&batch.ring);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) break;
  }
  return batch.count - io_uring_sq_ready(&batch.ring);
}

static void report(unsigned i, ssize_t result) {
  slot *s = &batch.slots[i];
  if (s->done) s->done(s->owner, result);
}

static void reap(unsigned taken) {
  while (taken) {
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe(&batch.ring, &cqe);
    if (r == -EINTR) continue;
    if (r < 0) {
      /* An operation we cannot account for may still point at memory about to be reused. */
      fprintf(stderr, "io_uring: waiting for completions: %s\n", strerror(-r));
      abort();
    }
    unsigned i = (unsigned)io_uring_cqe_get_data64(cqe);
    ssize_t result = cqe->res;
    io_uring_cqe_seen(&batch.ring, cqe);
    report(i, result);
    taken--;
  }
}

int sl_iobatch_submit(void) {
  unsigned count = batch.count;
  if (!count) return 0;
  unsigned taken = push_to_kernel();
  batch.reaping = true;
  reap(taken);
  if (taken < count) {
    /* What the kernel would not take is reported as "try again", so that
     * its owner reads or writes without us; the ring is given up. */
    sl_iobatch_close();
    for (unsigned i = taken; i < count; i++) report(i, -EAGAIN);
  }
  batch.reaping = false;
  batch.count = batch.iov_used = 0;
  return taken < count ? -1 : 0;
}
