/* Busy polling (the busyPoll option, microseconds; 0, the default, is off).
 * For that long after the last read, the loop polls without sleeping: a
 * message arriving meanwhile is taken at once instead of after the kernel
 * has woken the process (~8 us of a round trip on this VM). What it
 * buys in latency it pays with a core kept busy while traffic lasts; once
 * reads stop for the window, the loop sleeps in the kernel again. */
#ifndef SL_BUSYPOLL_H
#define SL_BUSYPOLL_H

#include <stdint.h>

typedef struct {
  uint64_t window_ns;  /* 0: off */
  uint64_t reads_seen; /* sl_reads_count() at the last turn that read */
} sl_busypoll;

void sl_busypoll_init(sl_busypoll *b);
/* Once a turn, after its reads: a turn that read keeps the loop awake for
 * window_us more (the option's value now, so a change applies at once). */
void sl_busypoll_turn(sl_busypoll *b, uint32_t window_us, uint64_t reads);
void sl_busypoll_close(sl_busypoll *b);

#endif
