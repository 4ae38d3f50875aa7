/* Readiness of the server's own sockets: its listeners and connections.
 *
 * libuv's streams cost system calls a connection does not need here, where
 * io_uring does the reads and writes (iobatch.h): libuv accepts without the
 * peer's address (a getpeername follows), and removes each socket from its
 * epoll set with an epoll_ctl before closing it, which the close does
 * anyway. A handshake pays five calls through libuv; here the accept
 * (accept.c) and the registration join the turn's batch, and the close is
 * the one call left.
 *
 * One epoll set of our own holds every such socket, and libuv's own epoll
 * descriptor besides: the process waits in this set (sl_poller_run), and
 * lets libuv run a turn only when its descriptor is readable or a timer
 * or other work of its is due, so a wake-up for a socket costs one
 * epoll_wait, not libuv's and then ours. Level-triggered, as libuv is: a
 * socket is watched for input while it is read, for output only while a
 * send waits for room, and left out of the set when neither. Closing a
 * socket takes it out of the set: its descriptor is close-on-exec and the
 * process never forks without an exec (popen and system suspend it until
 * then), so no other process holds it open. Single-threaded: the loop's
 * thread. */
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
  int batched;     /* its addition waits in the turn's io_uring batch: ticket + 1; 0: none */
  sl_watch_cb cb;
};

/* Runs after the events of a wait have been handled: the end of a loop
 * turn (a server's batched reads, flush and frees), as its check hook does
 * in the turns libuv runs. */
typedef struct sl_turn_hook {
  void (*fn)(void *arg);
  void *arg;
  struct sl_turn_hook *next;
} sl_turn_hook;

/* Makes the set (the first server) or counts another user; 0 or -errno. */
int sl_poller_open(uv_loop_t *loop);
/* The last user gone, the set is closed; sockets still in it stay open
 * (their owners close them). */
void sl_poller_close(void);
/* Watches w->fd for events (EPOLLIN, EPOLLOUT; 0: not at all), adding it
 * to the set, changing or removing it only when that differs from what it
 * was. 0 or -errno. A socket also leaves the set when it is closed: then
 * set w->events to 0 with it. */
int sl_poller_watch(sl_watch *w, uint32_t events);
/* The same for a socket not yet in the set, whose addition may wait for
 * the turn's io_uring batch (iobatch.h; run at the turn's end, a system
 * call less per connection). Should it fail there, w's callback gets
 * EPOLLERR with w out of the set. */
int sl_poller_watch_soon(sl_watch *w, uint32_t events);
/* Before w's socket is closed (which takes it out of the set): an addition
 * still waiting in the batch is taken back, and w is marked out of the set. */
void sl_poller_forget(sl_watch *w);
void sl_poller_hook(sl_turn_hook *h);
void sl_poller_unhook(sl_turn_hook *h);
/* Busy polling (busypoll.h): no sleeping in the set for ns after the end of
 * this turn (the longest asked for wins); stop: sleep as usual from now. */
void sl_poller_spin_for(uint64_t ns);
void sl_poller_spin_stop(void);
/* How long the set had been idle (sleeping or polling) between the end of
 * the last turn with events of ours and this turn's events. */
uint64_t sl_poller_idle_ns(void);
/* Runs loop until nothing keeps it alive: in the set while a server runs,
 * in libuv alone otherwise. */
void sl_poller_run(uv_loop_t *loop);

#endif
