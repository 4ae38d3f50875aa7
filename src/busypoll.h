/* Busy polling: after a turn that read, the loop may poll for a while
 * without sleeping, so that a message arriving meanwhile is taken at once
 * instead of after the kernel has woken the process (~8 us of a round trip
 * on this VM). The busyPoll option says for how long:
 * - "auto", the default: a window learnt from the gaps between turns, the
 *   rule of Linux's haltpoll governor for an idle vCPU. A turn that comes
 *   after the window but within BUSYPOLL_MAX_NS of the last one grows it
 *   (doubling from BUSYPOLL_START_NS up to that bound); a longer gap halves
 *   it (to nothing below the start). A client in a rapid exchange is
 *   answered without the wake-up, and a server whose clients pause sleeps
 *   as it would without: it pays at most one window per message, and the
 *   window halves with every pause;
 * - microseconds: that long after every turn that read, however long the
 *   gaps (a core kept busy while traffic lasts);
 * - 0 (or false): never. */
#ifndef SL_BUSYPOLL_H
#define SL_BUSYPOLL_H

#include <stdint.h>

#define SL_BUSYPOLL_AUTO UINT32_MAX /* the option's "auto" */
#define BUSYPOLL_START_NS 10000u
#define BUSYPOLL_MAX_NS 50000u

typedef struct {
  uint64_t window_ns;  /* the loop polls this long after a turn that read */
  uint64_t reads_seen; /* sl_reads_count() at the last turn that read */
  uint32_t option_us;  /* the option the window was learnt under */
} sl_busypoll;

void sl_busypoll_init(sl_busypoll *b, uint32_t option_us);
/* The window after a turn that read, from the one before it, the option
 * (microseconds or SL_BUSYPOLL_AUTO) and how long the loop had been idle
 * before the turn. */
uint64_t sl_busypoll_window(uint64_t window_ns, uint32_t option_us, uint64_t gap_ns);
/* Once a turn, after its reads (the option's value now, so that a change
 * applies at once). */
void sl_busypoll_turn(sl_busypoll *b, uint32_t option_us, uint64_t reads);
void sl_busypoll_close(sl_busypoll *b);

#endif
