#define _GNU_SOURCE /* accept4 */

#include "accept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "iobatch.h"
#include "log.h"

#define MAX_PORT_TRIES 20
#define BACKLOG 511
#define ACCEPTS_PER_EVENT 64 /* then the other sockets' events get their turn */
#define MIN_BATCHED 4

/* ---- accepting ---- */

/* An accept in the turn's batch and what it brought. */
typedef struct {
  sl_listener *l; /* NULL once its listener closed */
  int ticket;     /* -1 once run */
  int result;     /* a descriptor, or -errno */
  socklen_t len;
  struct sockaddr_storage peer;
} batched_accept;

static batched_accept batched[ACCEPTS_PER_EVENT];
static unsigned n_batched;
static bool batch_refuses; /* a kernel before 6.10: accepting in the batch would wait */

static int spare_fd = -1;

static void keep_spare(void) {
  if (spare_fd < 0) spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void out_of_descriptors(sl_listener *l, int err) {
  sl_warn("accept failed: %s", strerror(err));
  if (spare_fd >= 0) {
    close(spare_fd);
    spare_fd = -1;
    for (int i = 0, fd; i < ACCEPTS_PER_EVENT && (fd = accept4(l->watch.fd, NULL, NULL, SOCK_CLOEXEC)) >= 0; i++)
      close(fd);
    keep_spare();
    if (spare_fd >= 0) return;
  }
  if (sl_poller_watch(&l->watch, 0) == 0) l->paused = true;
}

/* What one accept gave: false when the listener has nothing more now. */
static bool take(sl_listener *l, int result, const struct sockaddr_storage *peer) {
  if (result >= 0) {
    sl_server_accepted(l->server, l->tcp, result, peer);
    return true;
  }
  if (result == -EMFILE || result == -ENFILE || result == -ENOBUFS || result == -ENOMEM) {
    out_of_descriptors(l, -result);
    return false;
  }
  /* -EAGAIN: none waits; else that client gave up (ECONNABORTED, EPROTO...) */
  return result != -EAGAIN;
}

static void accept_now(sl_listener *l) {
  for (int i = 0; i < ACCEPTS_PER_EVENT && l->watch.fd >= 0; i++) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(l->watch.fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (!take(l, fd < 0 ? -errno : fd, &peer)) return;
  }
}

static void batched_done(void *owner, ssize_t result) {
  batched_accept *a = owner;
  a->ticket = -1;
  a->result = (int)result;
}

/* Adds l's accepts to the turn's batch; false when it takes none. */
static bool accept_in_batch(sl_listener *l) {
  unsigned want = l->expect < MIN_BATCHED ? MIN_BATCHED : l->expect, added = 0;
  l->took = 0;
  while (added < want && n_batched < ACCEPTS_PER_EVENT) {
    batched_accept *a = &batched[n_batched];
    *a = (batched_accept){.l = l, .result = -EAGAIN, .len = sizeof a->peer};
    a->ticket = sl_iobatch_accept(l->watch.fd, (struct sockaddr *)&a->peer, &a->len, batched_done, a);
    if (a->ticket < 0) break;
    n_batched++;
    added++;
  }
  return added > 0;
}

static void on_listener_ready(sl_watch *w, uint32_t events) {
  (void)events;
  sl_listener *l = (sl_listener *)w;
  if (l->watch.fd < 0) return; /* closed by an earlier event of the same wait */
  if (batch_refuses || !accept_in_batch(l)) accept_now(l);
}

void sl_accept_run(void) {
  for (unsigned i = 0; i < n_batched; i++) {
    batched_accept *a = &batched[i];
    sl_listener *l = a->l; /* a handler run by take() may close it, clearing a->l */
    if (!l) continue;
    if (a->result == -EINVAL && !batch_refuses) {
      batch_refuses = true; /* the listener stays readable: accept4 takes it next turn */
      sl_debug("accepts: one system call each (this kernel's io_uring would wait for a connection)");
    }
    if (take(l, a->result, &a->peer) && a->result >= 0) l->took++;
  }
  for (unsigned i = 0; i < n_batched; i++) {
    sl_listener *l = batched[i].l;
    if (l) l->expect = 2 * l->took > ACCEPTS_PER_EVENT ? ACCEPTS_PER_EVENT : 2 * l->took;
  }
  n_batched = 0;
}

/* ---- listeners ---- */

/* A listening socket on host:port; the descriptor, or -errno. */
static int open_socket(const char *host, int port) {
  struct sockaddr_storage addr;
  int r = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                            : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (r != 0) return r;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  /* A restarted server binds while its old connections sit in TIME_WAIT.
   * Accepted sockets inherit TCP_NODELAY from the listener (Linux): a
   * small reply is not held back behind an unacknowledged one, waiting for
   * the client's delayed ACK (~40 ms), and no connection pays a setsockopt. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, BACKLOG) != 0) {
    r = -errno;
    close(fd);
    return r;
  }
  return fd;
}

void sl_listener_close(sl_listener *l) {
  if (l->watch.fd < 0) return;
  for (unsigned i = 0; i < n_batched; i++) {
    batched_accept *a = &batched[i];
    if (a->l != l) continue;
    if (a->ticket >= 0) sl_iobatch_cancel(a->ticket); /* not yet run: it must not meet a reused number */
    else if (a->result >= 0) close(a->result);         /* run, not yet started: turned away */
    a->l = NULL;
  }
  sl_poller_forget(&l->watch);
  close(l->watch.fd);
  l->watch.fd = -1; /* its callback stays: an event of the same wait may still come */
  l->paused = false;
}

int sl_listener_open(sl_listener *l, sl_server *s, const char *host, int port, bool tcp) {
  keep_spare();
  for (int tries = 0;; tries++) {
    int fd = open_socket(host, port);
    if (fd >= 0) {
      *l = (sl_listener){.watch = {.fd = fd, .cb = on_listener_ready}, .server = s, .tcp = tcp};
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      int r = getsockname(fd, (struct sockaddr *)&ss, &len) == 0 ? sl_poller_watch(&l->watch, EPOLLIN) : -errno;
      if (r != 0) {
        sl_listener_close(l);
        return r;
      }
      return ntohs(((struct sockaddr_in *)&ss)->sin_port); /* where sin6_port is too */
    }
    if (fd != -EADDRINUSE || port == 0 || tries == MAX_PORT_TRIES) return fd;
    sl_warn("port %d is in use, trying %d", port, port + 1);
    port++;
  }
}

void sl_listener_resume(sl_listener *l) {
  if (!l->paused || l->watch.fd < 0) return;
  keep_spare();
  if (sl_poller_watch(&l->watch, EPOLLIN) == 0) l->paused = false;
}
