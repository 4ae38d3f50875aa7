#include "busypoll.h"

#include <uv.h>

#include "poller.h"

void sl_busypoll_init(sl_busypoll *b) { *b = (sl_busypoll){0}; }

void sl_busypoll_turn(sl_busypoll *b, uint32_t window_us, uint64_t reads) {
  uint64_t window_ns = (uint64_t)window_us * 1000;
  if (window_ns != b->window_ns && !window_ns) sl_poller_spin_until(0); /* switched off: at once */
  b->window_ns = window_ns;
  if (reads == b->reads_seen) return;
  b->reads_seen = reads;
  if (window_ns) sl_poller_spin_until(uv_hrtime() + window_ns);
}

void sl_busypoll_close(sl_busypoll *b) {
  if (b->window_ns) sl_poller_spin_until(0);
}
