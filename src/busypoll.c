#include "busypoll.h"

#include "poller.h"

void sl_busypoll_init(sl_busypoll *b, uint32_t option_us) { *b = (sl_busypoll){.option_us = option_us}; }

static uint64_t learnt(uint64_t window_ns, uint64_t gap_ns) {
  if (gap_ns <= window_ns) return window_ns; /* polling caught it */
  if (gap_ns <= BUSYPOLL_MAX_NS) {           /* a longer window would have */
    uint64_t grown = window_ns * 2 < BUSYPOLL_START_NS ? BUSYPOLL_START_NS : window_ns * 2;
    return grown < BUSYPOLL_MAX_NS ? grown : BUSYPOLL_MAX_NS;
  }
  uint64_t shrunk = window_ns / 2; /* a pause: sleeping costs nothing there */
  return shrunk < BUSYPOLL_START_NS ? 0 : shrunk;
}

uint64_t sl_busypoll_window(uint64_t window_ns, uint32_t option_us, uint64_t gap_ns) {
  if (option_us == SL_BUSYPOLL_AUTO) return learnt(window_ns, gap_ns);
  return (uint64_t)option_us * 1000;
}

void sl_busypoll_turn(sl_busypoll *b, uint32_t option_us, uint64_t reads) {
  if (option_us != b->option_us) { /* changed (updateConfig): from nothing, at once */
    b->option_us = option_us;
    b->window_ns = 0;
    sl_poller_spin_stop();
  }
  if (reads == b->reads_seen) return;
  b->reads_seen = reads;
  b->window_ns = sl_busypoll_window(b->window_ns, option_us, sl_poller_idle_ns());
  sl_poller_spin_for(b->window_ns);
}

void sl_busypoll_close(sl_busypoll *b) {
  if (b->window_ns) sl_poller_spin_stop();
}
