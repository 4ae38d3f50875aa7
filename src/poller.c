#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iobatch.h"
#include "log.h"

#define EVENTS_PER_WAIT 1024 /* as libuv takes */

/* Shared by every server of the process; made by the first to start. */
static struct {
  int fd; /* the epoll set; -1 when none */
  unsigned users;
  sl_watch libuv; /* libuv's own epoll descriptor, a member of ours */
  bool libuv_ready;
  uint64_t spin_until_ns; /* busy polling until then (uv_hrtime); 0: sleep */
  uint64_t spin_for_ns;   /* asked for since the last wait: poll that long after the turn */
  uint64_t idle_since_ns; /* the end of the last turn that had events of ours */
  uint64_t idle_ns;       /* how long the set was idle before this turn's events */
  sl_turn_hook *hooks;
} set = {.fd = -1};

static void libuv_readable(sl_watch *w, uint32_t events) {
  (void)w, (void)events;
  set.libuv_ready = true;
}

int sl_poller_open(uv_loop_t *loop) {
  if (set.fd >= 0) {
    set.users++;
    return 0;
  }
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -errno;
  set.fd = fd;
  set.libuv = (sl_watch){.fd = uv_backend_fd(loop), .cb = libuv_readable};
  int r = sl_poller_watch(&set.libuv, EPOLLIN);
  if (r != 0) {
    close(fd);
    set.fd = -1;
    return r;
  }
  set.users = 1;
  return 0;
}

void sl_poller_close(void) {
  if (set.fd < 0 || --set.users) return;
  close(set.fd);
  set.fd = -1;
  sl_poller_spin_stop();
}

void sl_poller_forget(sl_watch *w) {
  if (w->batched) sl_iobatch_cancel(w->batched - 1);
  w->batched = 0;
  w->events = 0;
}

int sl_poller_watch(sl_watch *w, uint32_t events) {
  if (w->batched && events != w->events) sl_poller_forget(w); /* changed before the batch ran: now */
  if (events == w->events) return 0;
  if (set.fd < 0) return -EBADF;
  int op = !w->events ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  struct epoll_event ev = {.events = events, .data.ptr = w};
  if (epoll_ctl(set.fd, op, w->fd, &ev) != 0) return -errno;
  w->events = events;
  return 0;
}

static void added(void *watch, ssize_t result) {
  sl_watch *w = watch;
  w->batched = 0;
  if (result == 0) return;
  w->events = 0; /* not in the set; the owner tries again, or gives up */
  w->cb(w, EPOLLERR);
}

int sl_poller_watch_soon(sl_watch *w, uint32_t events) {
  if (w->events || !events || set.fd < 0) return sl_poller_watch(w, events);
  struct epoll_event ev = {.events = events, .data.ptr = w};
  int ticket = sl_iobatch_epoll_ctl(set.fd, EPOLL_CTL_ADD, w->fd, &ev, added, w);
  if (ticket < 0) return sl_poller_watch(w, events);
  w->batched = ticket + 1;
  w->events = events;
  return 0;
}

void sl_poller_hook(sl_turn_hook *h) {
  h->next = set.hooks;
  set.hooks = h;
}

void sl_poller_unhook(sl_turn_hook *h) {
  sl_turn_hook **p = &set.hooks;
  while (*p && *p != h) p = &(*p)->next;
  if (*p) *p = h->next;
}

void sl_poller_spin_for(uint64_t ns) {
  if (ns > set.spin_for_ns) set.spin_for_ns = ns; /* servers of one process: the longest */
}

void sl_poller_spin_stop(void) { set.spin_until_ns = set.spin_for_ns = 0; }

uint64_t sl_poller_idle_ns(void) { return set.idle_ns; }

/* One wait in the set (as long as libuv has nothing due, or not at all
 * while busy polling) and what it brought. */
static void take_events(uv_loop_t *loop) {
  uv_update_time(loop);
  int timeout = uv_backend_timeout(loop);
  if (set.spin_for_ns) set.spin_until_ns = set.idle_since_ns + set.spin_for_ns;
  set.spin_for_ns = 0;
  if (set.spin_until_ns && uv_hrtime() < set.spin_until_ns) timeout = 0;
  struct epoll_event ev[EVENTS_PER_WAIT];
  int n = epoll_wait(set.fd, ev, EVENTS_PER_WAIT, timeout);
  if (n < 0 && errno != EINTR) sl_error("epoll_wait: %s", strerror(errno));
  uv_update_time(loop); /* timers started by what comes count from now, as in libuv's own poll */
  uint64_t woke_ns = n > 0 ? uv_hrtime() : 0;
  set.libuv_ready = false;
  /* A callback may close other sockets of this batch: their owners
   * outlive the batch (connections are freed between loop phases,
   * listeners belong to the server) and ignore events once closed. */
  bool ours = false;
  for (int i = 0; i < n; i++) {
    sl_watch *w = ev[i].data.ptr;
    ours |= w != &set.libuv;
    w->cb(w, ev[i].events);
  }
  if (!ours) return;
  set.idle_ns = woke_ns - set.idle_since_ns;
  /* The turn's end, as the servers' check hooks would have run it. */
  for (sl_turn_hook *h = set.hooks; h; h = h->next) h->fn(h->arg);
  set.idle_since_ns = uv_hrtime();
}

void sl_poller_run(uv_loop_t *loop) {
  for (;;) {
    if (set.fd < 0) { /* no server runs: libuv waits, until one starts or all is done */
      if (!uv_run(loop, UV_RUN_ONCE)) return;
      continue;
    }
    take_events(loop);
    if (set.libuv_ready || uv_backend_timeout(loop) == 0) uv_run(loop, UV_RUN_NOWAIT);
  }
}
