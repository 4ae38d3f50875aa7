/* The writes of one loop turn, many sockets in one system call.
 *
 * On the VMs this server is measured on a system call costs a microsecond
 * or more before it does anything, and a turn under load writes to tens or
 * hundreds of sockets: io_uring takes every connection's send of the turn
 * in one io_uring_enter. Each send is non-blocking (MSG_DONTWAIT), so the
 * kernel does them inline and a full socket answers -EAGAIN at once, as
 * writev would; the caller then falls back to a waiting uv_write.
 *
 * Where io_uring is missing (an old kernel, a seccomp filter, the sysctl
 * kernel.io_uring_disabled) or was never opened, sl_sendbatch_add always
 * says no and every connection writes on its own. */
#ifndef SL_SENDBATCH_H
#define SL_SENDBATCH_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

/* Called once per send after the batch ran: the bytes written, or -errno. */
typedef void (*sl_sendbatch_done)(void *owner, ssize_t result);

/* The most buffers one send may carry. */
#define SL_SENDBATCH_MAX_BUFS 64

/* Sets up the ring; returns NULL when batching is on, or why it is off. */
const char *sl_sendbatch_open(void);
/* True when one more send of SL_SENDBATCH_MAX_BUFS may not fit: submit first. */
bool sl_sendbatch_full(void);
/* Adds a send of bufs (copied: they need not outlive the call) to fd.
 * False when batching is off or the batch is full: send it yourself, or
 * submit and add again. fd must stay open until the submit. */
bool sl_sendbatch_add(int fd, const uv_buf_t *bufs, unsigned n, void *owner);
/* Sends everything added; done runs once per send, in no set order.
 * Returns -1 when the kernel refused sends (they are reported as -EAGAIN)
 * and batching is off from now on, else 0. */
int sl_sendbatch_submit(sl_sendbatch_done done);
void sl_sendbatch_close(void);

#endif
