/* A loop turn's socket reads (and new sockets' epoll registrations), and
 * then its writes, each in one system call.
 *
 * On the VMs this server is measured on a system call costs microseconds
 * before it does anything, and a turn under load reads from and writes to
 * tens or hundreds of sockets. io_uring takes every read of the turn in one
 * io_uring_enter and every write in another. Each is non-blocking
 * (MSG_DONTWAIT), so the kernel does them inline: an empty socket answers
 * -EAGAIN, a full one -EAGAIN or a short count, as recv and writev would,
 * and the caller goes on as after those. A batch of one is the plain
 * system call, which costs less than the ring for a single operation.
 *
 * The poller (poller.h) says which sockets are ready; new sockets' accepts
 * and epoll registrations may join the batch too.
 *
 * Where io_uring is missing (an old kernel, a seccomp filter, the sysctl
 * kernel.io_uring_disabled) or was never opened, the adds say no and the
 * caller reads or writes on its own. Single-threaded: the loop's thread. */
#ifndef SL_IOBATCH_H
#define SL_IOBATCH_H

#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

/* The most buffers one send may carry. */
#define SL_IOBATCH_MAX_BUFS 64

/* Runs once per read or send when its batch has run: the bytes, or -errno
 * (a read of 0: the peer closed). */
typedef void (*sl_iobatch_done)(void *owner, ssize_t result);

/* Sets up the ring; returns NULL when batching is on, or why it is off. */
const char *sl_iobatch_open(void);
void sl_iobatch_close(void);

/* True when one more operation (a send of SL_IOBATCH_MAX_BUFS) may not
 * fit until the batch is submitted. */
bool sl_iobatch_full(void);
/* Adds a read of up to len bytes from fd into buf, which must stay valid
 * until done runs. Returns a ticket for sl_iobatch_cancel, or -1 when it
 * cannot be batched: read it yourself. */
int sl_iobatch_read(int fd, void *buf, size_t len, sl_iobatch_done done, void *owner);
/* Adds a send of bufs (the list is copied; the bytes must stay valid until
 * done runs). Returns a ticket, or -1: send it yourself. */
int sl_iobatch_send(int fd, const uv_buf_t *bufs, unsigned n, sl_iobatch_done done, void *owner);
/* Adds an epoll_ctl (op on fd in the set epfd; *ev is copied). Returns a
 * ticket, or -1: do it yourself. Refused by the kernel it reports -EAGAIN
 * like the rest: then too. */
int sl_iobatch_epoll_ctl(int epfd, int op, int fd, const struct epoll_event *ev, sl_iobatch_done done, void *owner);
/* Adds an accept (non-blocking, close-on-exec) on the listening socket fd,
 * the peer's address into addr and *len, which must stay valid until done
 * runs: the new descriptor, -EAGAIN when no connection waits, or -EINVAL
 * from kernels before 6.10, which cannot accept without waiting here.
 * Returns a ticket, or -1: accept yourself. */
int sl_iobatch_accept(int fd, struct sockaddr *addr, socklen_t *len, sl_iobatch_done done, void *owner);
/* Closes fd with the next submit (one system call fewer per connection),
 * after the batch's other operations; the slot is kept from then on, so
 * the batch fills one operation sooner. Without a ring, or with the batch
 * already full, it closes now and drops the batch's operations on fd. May
 * be called while a batch runs. The socket
 * stays open, and in any epoll set, until then: its owner must ignore its
 * events until freed, and a submit must follow the free before the next
 * wait (the server flushes after it frees closed connections, and
 * server:stop() submits, since no turn of its own follows). */
void sl_iobatch_close_fd(int fd);
/* Takes back an operation not yet submitted (its socket is closing, and
 * its number could be reused before the submit): it never runs or reports. */
void sl_iobatch_cancel(int ticket);
/* Runs everything added; each done runs once, in no set order, and may not
 * add to the batch (adds say no meanwhile). Returns -1 when the kernel
 * refused operations, which are then reported as -EAGAIN, and batching is
 * off from now on; else 0. Called from a done callback, does nothing: that
 * batch is running. */
int sl_iobatch_submit(void);

#endif
