/* stelar.setTimeout / setInterval / clearTimer / sleep on libuv timers.
 * Callbacks run as tasks, so they may wait too. */
#ifndef SL_TIMER_H
#define SL_TIMER_H

#include <lua.h>
#include <stdint.h>

/* Adds the timer functions to the table on top of the stack. */
void sl_lua_open_timer(lua_State *L);
/* Closes every armed timer, abandons sleeping handlers, and refuses new
 * ones from here on (at exit). */
void sl_timers_close_all(void);
/* Cancels the timers set by the top level of that generation. */
void sl_timers_cancel_generation(unsigned generation);
/* Wall-clock milliseconds since the epoch. */
uint64_t sl_wall_ms(void);

#endif
