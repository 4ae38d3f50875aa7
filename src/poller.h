/* Readiness of the server's own sockets: its listeners and connections.
 *
 * libuv's streams cost system calls a connection does not need here, where
 * io_uring does the reads and writes (iobatch.h): libuv accepts without the
 * peer's address (a getpeername follows), and removes each socket from its
 * epoll set with an epoll_ctl before closing it, which the close does
 * anyway. A handshake pays five calls through libuv, three here (accept4,
 * epoll_ctl, close).
 *
 * One epoll set of our own holds every such socket; libuv watches that
 * set's descriptor, and when it is readable the set's events are taken and
 * each watch's callback runs. Level-triggered, as libuv is: a socket is
 * watched for input while it is read, for output only while a send waits
 * for room, and left out of the set when neither. Closing a socket takes
 * it out of the set: its descriptor is close-on-exec and the process never
 * forks without an exec (popen and system suspend it until then), so no
 * other process holds it open. Single-threaded: the loop's thread. */
#ifndef SL_POLLER_H
#define SL_POLLER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <uv.h>

typedef struct sl_watch sl_watch;
/* events: the EPOLL* bits that came */
typedef void (*sl_watch_cb)(sl_watch *w, uint32_t events);

struct sl_watch {
  int fd;
  uint32_t events; /* what the set watches it for; 0: not in the set */
  sl_watch_cb cb;
};

/* Makes the set and has loop watch it; 0 or a libuv error. */
int sl_poller_open(uv_loop_t *loop);
/* Stops watching; sockets still in the set stay open (their owners close them). */
void sl_poller_close(void);
/* Watches w->fd for events (EPOLLIN, EPOLLOUT; 0: not at all), adding it
 * to the set, changing or removing it only when that differs from what it
 * was. 0 or -errno. A socket also leaves the set when it is closed: then
 * set w->events to 0 with it. */
int sl_poller_watch(sl_watch *w, uint32_t events);

#endif
