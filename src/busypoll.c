#include "busypoll.h"

/* Runs every turn while active: the loop does not sleep, so this is where
 * it learns that the window has passed. */
static void on_idle(uv_idle_t *h) {
  sl_busypoll *b = h->data;
  if (uv_hrtime() - b->last_read_ns >= b->window_ns) uv_idle_stop(h);
}

void sl_busypoll_init(sl_busypoll *b, uv_loop_t *loop) {
  *b = (sl_busypoll){0};
  uv_idle_init(loop, &b->idle);
  b->idle.data = b;
}

void sl_busypoll_turn(sl_busypoll *b, uint32_t window_us, uint64_t reads) {
  b->window_ns = (uint64_t)window_us * 1000;
  if (reads == b->reads_seen) return;
  b->reads_seen = reads;
  if (!window_us) return;
  b->last_read_ns = uv_hrtime();
  if (!uv_is_active((uv_handle_t *)&b->idle)) uv_idle_start(&b->idle, on_idle);
}

void sl_busypoll_close(sl_busypoll *b) { uv_close((uv_handle_t *)&b->idle, NULL); }
