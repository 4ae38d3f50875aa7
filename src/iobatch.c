#define _GNU_SOURCE /* accept4 */

#include "iobatch.h"

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_ENTRIES 1024
#define IOV_POOL (RING_ENTRIES * 8)
#define SUBMIT_TRIES 16

typedef enum { OP_READ, OP_SEND, OP_EPOLL_CTL, OP_ACCEPT, OP_CLOSE } op_kind;

/* Not in liburing 2.3's header: an accept that answers -EAGAIN at once
 * when no connection waits, instead of waiting for one (Linux 6.10). */
#ifndef IORING_ACCEPT_DONTWAIT
#define IORING_ACCEPT_DONTWAIT (1U << 1)
#endif

typedef struct {
  sl_iobatch_done done; /* NULL once cancelled */
  void *owner;
  int fd;
  op_kind op;
  union { /* what the operation needs besides fd, set by its add */
    struct {
      void *buf;
      size_t len;
    } read;
    struct msghdr send;
    struct {
      struct sockaddr *addr;
      socklen_t *len;
    } accept;
    struct {
      int epfd, op;
      struct epoll_event ev;
    } epoll;
  } u;
} slot;

/* The operations of this turn, prepared as SQEs only at the submit. */
static struct {
  bool on;
  bool reaping; /* done callbacks are running: no adds */
  struct io_uring ring;
  unsigned count;    /* operations added since the last submit, in slots[] */
  unsigned iov_used; /* of iov */
  slot slots[RING_ENTRIES];
  struct iovec iov[IOV_POOL];
  unsigned n_closes; /* sockets to close with the next submit, in closes[] */
  int closes[RING_ENTRIES];
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
  for (unsigned i = 0; i < batch.n_closes; i++) close(batch.closes[i]);
  batch.n_closes = 0;
  if (!batch.on) return;
  io_uring_queue_exit(&batch.ring);
  batch.on = false;
}

/* The closes waiting in closes[] have their slots kept: a close that
 * found none would have to run before the batch's sends to its socket. */
static bool slots_left(void) { return batch.count + batch.n_closes < RING_ENTRIES; }

bool sl_iobatch_full(void) {
  return batch.on && !batch.reaping && (!slots_left() || batch.iov_used + SL_IOBATCH_MAX_BUFS > IOV_POOL);
}

/* The next slot, for an operation op on fd (its add sets the rest), or NULL. */
static slot *take_slot(op_kind op, int fd, sl_iobatch_done done, void *owner, int *ticket) {
  if (!batch.on || batch.reaping || !slots_left()) return NULL;
  *ticket = (int)batch.count;
  slot *s = &batch.slots[batch.count++];
  s->done = done;
  s->owner = owner;
  s->fd = fd;
  s->op = op;
  return s;
}

int sl_iobatch_read(int fd, void *buf, size_t len, sl_iobatch_done done, void *owner) {
  int ticket;
  slot *s = take_slot(OP_READ, fd, done, owner, &ticket);
  if (!s) return -1;
  s->u.read.buf = buf;
  s->u.read.len = len;
  return ticket;
}

int sl_iobatch_send(int fd, const uv_buf_t *bufs, unsigned n, sl_iobatch_done done, void *owner) {
  if (n == 0 || n > SL_IOBATCH_MAX_BUFS || batch.iov_used + n > IOV_POOL) return -1;
  int ticket;
  slot *s = take_slot(OP_SEND, fd, done, owner, &ticket);
  if (!s) return -1;
  struct iovec *iov = batch.iov + batch.iov_used;
  for (unsigned k = 0; k < n; k++) iov[k] = (struct iovec){.iov_base = bufs[k].base, .iov_len = bufs[k].len};
  batch.iov_used += n;
  s->u.send = (struct msghdr){.msg_iov = iov, .msg_iovlen = n};
  return ticket;
}

int sl_iobatch_epoll_ctl(int epfd, int op, int fd, const struct epoll_event *ev, sl_iobatch_done done, void *owner) {
  int ticket;
  slot *s = take_slot(OP_EPOLL_CTL, fd, done, owner, &ticket);
  if (!s) return -1;
  s->u.epoll.epfd = epfd;
  s->u.epoll.op = op;
  s->u.epoll.ev = *ev;
  return ticket;
}

int sl_iobatch_accept(int fd, struct sockaddr *addr, socklen_t *len, sl_iobatch_done done, void *owner) {
  int ticket;
  slot *s = take_slot(OP_ACCEPT, fd, done, owner, &ticket);
  if (!s) return -1;
  s->u.accept.addr = addr;
  s->u.accept.len = len;
  return ticket;
}

/* Closes fd at once. Its operations still waiting for the submit are
 * dropped first: closed, its number may go to a socket that an accept
 * earlier in the batch creates, and they would run on that one. While a
 * batch runs, every operation in it already holds its socket. */
static void close_now(int fd) {
  for (unsigned i = 0; i < batch.count && !batch.reaping; i++)
    if (batch.slots[i].fd == fd) batch.slots[i].done = NULL;
  close(fd);
}

void sl_iobatch_close_fd(int fd) {
  bool room = batch.reaping ? batch.n_closes < RING_ENTRIES : slots_left();
  if (batch.on && room) batch.closes[batch.n_closes++] = fd;
  else close_now(fd);
}

/* A close the kernel would not take is done here. */
static void close_done(void *fd, ssize_t result) {
  if (result == -EAGAIN) close((int)(intptr_t)fd);
}

/* The closes asked for since the last submit join this one, after its other
 * operations (a send to the socket goes first), in the slots kept for them. */
static void add_closes(void) {
  unsigned n = batch.n_closes;
  batch.n_closes = 0;
  for (unsigned i = 0; i < n; i++) {
    int fd = batch.closes[i], ticket;
    if (!take_slot(OP_CLOSE, fd, close_done, (void *)(intptr_t)fd, &ticket)) close_now(fd);
  }
}

void sl_iobatch_cancel(int ticket) {
  if (ticket >= 0 && (unsigned)ticket < batch.count && !batch.reaping) batch.slots[ticket].done = NULL;
}

static void report(slot *s, ssize_t result) {
  if (s->done) s->done(s->owner, result);
}

/* A batch of one costs less as the plain system call (~0.5 us here). */
static ssize_t run_directly(slot *s) {
  ssize_t r = -1;
  switch (s->op) {
  case OP_READ: r = recv(s->fd, s->u.read.buf, s->u.read.len, MSG_DONTWAIT); break;
  case OP_SEND: r = sendmsg(s->fd, &s->u.send, MSG_DONTWAIT | MSG_NOSIGNAL); break;
  case OP_ACCEPT: r = accept4(s->fd, s->u.accept.addr, s->u.accept.len, SOCK_NONBLOCK | SOCK_CLOEXEC); break;
  case OP_EPOLL_CTL: r = epoll_ctl(s->u.epoll.epfd, s->u.epoll.op, s->fd, &s->u.epoll.ev); break;
  case OP_CLOSE: r = close(s->fd); break;
  }
  return r < 0 ? -errno : r;
}

static void prepare_sqe(struct io_uring_sqe *sqe, slot *s) {
  switch (s->op) {
  case OP_READ: io_uring_prep_recv(sqe, s->fd, s->u.read.buf, s->u.read.len, MSG_DONTWAIT); break;
  case OP_SEND: io_uring_prep_sendmsg(sqe, s->fd, &s->u.send, MSG_DONTWAIT | MSG_NOSIGNAL); break;
  case OP_ACCEPT:
    io_uring_prep_accept(sqe, s->fd, s->u.accept.addr, s->u.accept.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    sqe->ioprio |= IORING_ACCEPT_DONTWAIT;
    break;
  case OP_EPOLL_CTL: io_uring_prep_epoll_ctl(sqe, s->u.epoll.epfd, s->fd, s->u.epoll.op, &s->u.epoll.ev); break;
  case OP_CLOSE: io_uring_prep_close(sqe, s->fd); break;
  }
  io_uring_sqe_set_data(sqe, s);
}

/* Prepares an SQE for every live operation, in order; returns how many
 * it prepared and, in *live, how many there are. */
static unsigned prepare(unsigned *live) {
  unsigned n = 0;
  *live = 0;
  for (unsigned i = 0; i < batch.count; i++) {
    slot *s = &batch.slots[i];
    if (!s->done) continue;
    ++*live;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&batch.ring); /* the ring has a place for every slot */
    if (!sqe) continue; /* reported as refused */
    prepare_sqe(sqe, s);
    n++;
  }
  return n;
}

/* Hands the prepared SQEs to the kernel; returns how many it took (it
 * takes them in order). */
static unsigned push_to_kernel(unsigned prepared) {
  for (int tries = 0; io_uring_sq_ready(&batch.ring) && tries < SUBMIT_TRIES; tries++) {
    int r = io_uring_submit(&batch.ring);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) break;
  }
  return prepared - io_uring_sq_ready(&batch.ring);
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
    slot *s = io_uring_cqe_get_data(cqe);
    ssize_t result = cqe->res;
    io_uring_cqe_seen(&batch.ring, cqe);
    report(s, result);
    taken--;
  }
}

/* Reports what the kernel would not take as "try again", so that each
 * owner reads or writes without us. The SQEs after the first refused one
 * were refused too; those before it ran. */
static void refuse_after(unsigned taken) {
  unsigned live = 0;
  for (unsigned i = 0; i < batch.count; i++) {
    slot *s = &batch.slots[i];
    if (s->done && live++ >= taken) report(s, -EAGAIN);
  }
}

int sl_iobatch_submit(void) {
  if (batch.reaping) return 0; /* from a done callback: that batch is running */
  if (batch.n_closes) add_closes();
  if (!batch.count) return 0;
  batch.reaping = true;
  int status = 0;
  if (batch.count == 1) {
    if (batch.slots[0].done) report(&batch.slots[0], run_directly(&batch.slots[0]));
  } else {
    unsigned live, prepared = prepare(&live);
    unsigned taken = push_to_kernel(prepared);
    reap(taken);
    if (taken < live) {
      sl_iobatch_close(); /* the ring is given up */
      refuse_after(taken);
      status = -1;
    }
  }
  batch.reaping = false;
  batch.count = batch.iov_used = 0;
  return status;
}
