/* Listening sockets, and how new connections are taken from them.
 *
 * A listener is a socket in the poller's set (level-triggered). When it is
 * readable, accepts join the turn's io_uring batch (iobatch.h: no system
 * call of their own, Linux 6.10 and later), as many as the last turn took
 * twice over (4 to 64), and the connections they bring are started once
 * the batch has run (sl_accept_run); where the batch cannot take them,
 * accept4 takes up to 64 at once. Either way the kernel hands over the
 * peer's address with the socket, already non-blocking.
 *
 * Out of descriptors, a spare one kept for this turns waiting clients away
 * at once (accepted and closed) rather than leaving them in the backlog;
 * without a spare the listener rests until the next tick. */
#ifndef SL_ACCEPT_H
#define SL_ACCEPT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "poller.h"

typedef struct sl_server sl_server;

/* A listening socket; watch.fd is -1 when there is none. */
typedef struct {
  sl_watch watch;
  sl_server *server;
  bool tcp;        /* the binary TCP protocol, else HTTP and WebSocket */
  bool paused;     /* out of descriptors: accepting again on the next tick */
  unsigned expect; /* accepts to batch when it is next readable */
  unsigned took;   /* connections the batch brought this turn */
} sl_listener;

/* Listens on host:port, or (like v3) the next free port after it; returns
 * the bound port, or -errno. */
int sl_listener_open(sl_listener *l, sl_server *s, const char *host, int port, bool tcp);
void sl_listener_close(sl_listener *l);
/* Once a tick: a listener that rested for want of descriptors listens again. */
void sl_listener_resume(sl_listener *l);
/* After the turn's batch: starts the connections its accepts brought. */
void sl_accept_run(void);

/* Provided by the server: a new connection on the accepted socket fd. */
void sl_server_accepted(sl_server *s, bool tcp, int fd, const struct sockaddr_storage *peer);

#endif
