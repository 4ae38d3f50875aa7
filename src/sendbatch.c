#include "sendbatch.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RING_ENTRIES 256
#define IOV_POOL (RING_ENTRIES * 8)
#define SUBMIT_TRIES 16

/* The ring and what its queued sends point at, valid until the submit. */
static struct {
  bool on;
  struct io_uring ring;
  unsigned count;    /* sends added since the last submit */
  unsigned iov_used; /* of iov */
  struct msghdr msgs[RING_ENTRIES];
  void *owners[RING_ENTRIES]; /* in the order added, which is the order the kernel takes them */
  struct iovec iov[IOV_POOL];
} batch;

const char *sl_sendbatch_open(void) {
  if (batch.on) return NULL;
  /* One thread submits, and every send completes inside the submit: the
   * kernel never needs to interrupt us to post a completion. */
  int r = io_uring_queue_init(RING_ENTRIES, &batch.ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN);
  if (r == -EINVAL) r = io_uring_queue_init(RING_ENTRIES, &batch.ring, 0); /* kernels before 6.0 */
  if (r < 0) return strerror(-r);
  batch.on = true;
  return NULL;
}

bool sl_sendbatch_full(void) {
  return batch.on && (batch.count == RING_ENTRIES || batch.iov_used + SL_SENDBATCH_MAX_BUFS > IOV_POOL);
}

bool sl_sendbatch_add(int fd, const uv_buf_t *bufs, unsigned n, void *owner) {
  if (!batch.on || n > SL_SENDBATCH_MAX_BUFS || sl_sendbatch_full()) return false;
  struct io_uring_sqe *sqe = io_uring_get_sqe(&batch.ring);
  if (!sqe) return false;
  struct iovec *iov = batch.iov + batch.iov_used;
  for (unsigned i = 0; i < n; i++) iov[i] = (struct iovec){.iov_base = bufs[i].base, .iov_len = bufs[i].len};
  batch.iov_used += n;
  batch.owners[batch.count] = owner;
  struct msghdr *m = &batch.msgs[batch.count++];
  *m = (struct msghdr){.msg_iov = iov, .msg_iovlen = n};
  io_uring_prep_sendmsg(sqe, fd, m, MSG_DONTWAIT | MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, owner);
  return true;
}

/* Hands the queued sends to the kernel; returns how many it took. */
static unsigned push_to_kernel(void) {
  for (int tries = 0; io_uring_sq_ready(&batch.ring) && tries < SUBMIT_TRIES; tries++) {
    int r = io_uring_submit(&batch.ring);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) break;
  }
  return batch.count - io_uring_sq_ready(&batch.ring);
}

static void reap(unsigned taken, sl_sendbatch_done done) {
  while (taken) {
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe(&batch.ring, &cqe);
    if (r == -EINTR) continue;
    if (r < 0) {
      /* A send we cannot account for may still point at memory about to be reused. */
      fprintf(stderr, "io_uring: waiting for sends: %s\n", strerror(-r));
      abort();
    }
    done(io_uring_cqe_get_data(cqe), cqe->res);
    io_uring_cqe_seen(&batch.ring, cqe);
    taken--;
  }
}

int sl_sendbatch_submit(sl_sendbatch_done done) {
  unsigned count = batch.count;
  if (!count) return 0;
  unsigned taken = push_to_kernel();
  reap(taken, done);
  batch.count = batch.iov_used = 0;
  if (taken == count) return 0;
  /* What the kernel would not take is reported as a full socket, so that
   * its owner waits in a uv_write; the ring (and those sends) is given up. */
  sl_sendbatch_close();
  for (unsigned i = taken; i < count; i++) done(batch.owners[i], -EAGAIN);
  return -1;
}

void sl_sendbatch_close(void) {
  if (!batch.on) return;
  io_uring_queue_exit(&batch.ring);
  batch.on = false;
}
