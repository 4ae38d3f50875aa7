#include "redis_loop.h"

#include <stdlib.h>

/* Owned by the context (its ev.data); freed after hiredis's cleanup call
 * once libuv has closed the poll handle. */
typedef struct {
  redisAsyncContext *ac; /* NULL once hiredis has let go */
  uv_poll_t poll;
  int events;
} watcher;

static void on_poll(uv_poll_t *h, int status, int events) {
  watcher *w = h->data;
  /* On an error libuv reports no events: let hiredis find the error. */
  int ready = status < 0 ? w->events : events;
  if (w->ac && (ready & UV_READABLE)) redisAsyncHandleRead(w->ac);
  if (w->ac && (ready & UV_WRITABLE)) redisAsyncHandleWrite(w->ac);
}

static void update(watcher *w, int add, int remove) {
  w->events = (w->events | add) & ~remove;
  if (w->events) uv_poll_start(&w->poll, w->events, on_poll);
  else uv_poll_stop(&w->poll);
}

static void add_read(void *p) { update(p, UV_READABLE, 0); }
static void del_read(void *p) { update(p, 0, UV_READABLE); }
static void add_write(void *p) { update(p, UV_WRITABLE, 0); }
static void del_write(void *p) { update(p, 0, UV_WRITABLE); }

static void on_closed(uv_handle_t *h) { free(h->data); }

static void cleanup(void *p) {
  watcher *w = p;
  w->ac = NULL;
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

int sl_redis_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return REDIS_ERR;
  watcher *w = calloc(1, sizeof *w);
  if (!w) return REDIS_ERR;
  if (uv_poll_init(loop, &w->poll, ac->c.fd) != 0) {
    free(w);
    return REDIS_ERR;
  }
  w->ac = ac;
  w->poll.data = w;
  ac->ev.data = w;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return REDIS_OK;
}
