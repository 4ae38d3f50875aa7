#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

#define EVENTS_PER_WAIT 1024 /* as libuv takes */

typedef struct {
  uv_poll_t handle;
  int fd;
} epoll_set;

/* Shared by every server of the process; made by the first to start. */
static epoll_set *set;
static unsigned users;

static void take_events(uv_poll_t *h, int status, int events) {
  (void)events;
  epoll_set *es = h->data;
  if (status < 0) {
    sl_error("epoll set: %s", uv_strerror(status));
    return;
  }
  /* One batch per loop turn: the sockets it leaves out are still ready
   * next turn (level-triggered), and those it read are then read. Taking
   * more now would find the same sockets again, their reads not yet run. */
  struct epoll_event ev[EVENTS_PER_WAIT];
  int n = epoll_wait(es->fd, ev, EVENTS_PER_WAIT, 0);
  /* A callback may close other sockets of this batch: their owners
   * outlive the batch (connections are freed between loop phases,
   * listeners belong to the server) and ignore events once closed. */
  for (int i = 0; i < n; i++) {
    sl_watch *w = ev[i].data.ptr;
    w->cb(w, ev[i].events);
  }
}

int sl_poller_open(uv_loop_t *loop) {
  if (set) {
    users++;
    return 0;
  }
  epoll_set *es = malloc(sizeof *es);
  if (!es) return UV_ENOMEM;
  es->fd = epoll_create1(EPOLL_CLOEXEC);
  if (es->fd < 0) {
    int r = -errno;
    free(es);
    return r;
  }
  int r = uv_poll_init(loop, &es->handle, es->fd);
  if (r != 0) { /* before the handle joined the loop */
    close(es->fd);
    free(es);
    return r;
  }
  es->handle.data = es;
  uv_poll_start(&es->handle, UV_READABLE, take_events); /* refuses only unknown event bits */
  set = es;
  users = 1;
  return 0;
}

static void free_set(uv_handle_t *h) {
  epoll_set *es = h->data;
  close(es->fd);
  free(es);
}

void sl_poller_close(void) {
  if (!set || --users) return;
  uv_close((uv_handle_t *)&set->handle, free_set);
  set = NULL;
}

int sl_poller_watch(sl_watch *w, uint32_t events) {
  if (events == w->events) return 0;
  if (!set) return -EBADF;
  int op = !w->events ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  struct epoll_event ev = {.events = events, .data.ptr = w};
  if (epoll_ctl(set->fd, op, w->fd, &ev) != 0) return -errno;
  w->events = events;
  return 0;
}
