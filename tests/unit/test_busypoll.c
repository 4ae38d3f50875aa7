/* Unit tests for the busy-poll window (busypoll.c): how the "auto" window
 * follows the gaps between turns, and the fixed and off settings. */
#include "busypoll.h"
#include "unit.h"

#define US 1000u

/* The window after a run of turns that each came gap_ns after the last. */
static uint64_t after_gaps(uint64_t window_ns, uint32_t option_us, uint64_t gap_ns, int turns) {
  for (int i = 0; i < turns; i++) window_ns = sl_busypoll_window(window_ns, option_us, gap_ns);
  return window_ns;
}

/* A rapid exchange (a reply's next request 20 us after the last turn):
 * the window grows from nothing until it covers the gap, then holds. */
static void test_auto_grows_to_cover_short_gaps(void) {
  uint64_t w = sl_busypoll_window(0, SL_BUSYPOLL_AUTO, 20 * US);
  CHECK_EQ_INT(w, BUSYPOLL_START_NS);
  w = sl_busypoll_window(w, SL_BUSYPOLL_AUTO, 20 * US);
  CHECK_EQ_INT(w, 2 * BUSYPOLL_START_NS);
  CHECK_EQ_INT(after_gaps(w, SL_BUSYPOLL_AUTO, 20 * US, 10), 2 * BUSYPOLL_START_NS);
  CHECK_EQ_INT(after_gaps(0, SL_BUSYPOLL_AUTO, 1 * US, 3), BUSYPOLL_START_NS); /* caught: no growth */
}

/* However often a gap falls just short of the bound, the window stops there. */
static void test_auto_is_bounded(void) {
  CHECK_EQ_INT(after_gaps(0, SL_BUSYPOLL_AUTO, BUSYPOLL_MAX_NS, 20), BUSYPOLL_MAX_NS);
  CHECK_EQ_INT(after_gaps(0, SL_BUSYPOLL_AUTO, BUSYPOLL_MAX_NS - 1, 20), BUSYPOLL_MAX_NS);
}

/* Clients that pause: a gap past the bound halves the window, to nothing. */
static void test_auto_shrinks_on_pauses(void) {
  uint64_t w = sl_busypoll_window(BUSYPOLL_MAX_NS, SL_BUSYPOLL_AUTO, 1000 * US);
  CHECK_EQ_INT(w, BUSYPOLL_MAX_NS / 2);
  CHECK_EQ_INT(after_gaps(BUSYPOLL_MAX_NS, SL_BUSYPOLL_AUTO, 1000 * US, 3), 0);
  CHECK_EQ_INT(after_gaps(0, SL_BUSYPOLL_AUTO, BUSYPOLL_MAX_NS + 1, 5), 0); /* sparse traffic never polls */
}

/* One long pause among short gaps costs a halving, regained at once. */
static void test_auto_recovers_after_a_pause(void) {
  uint64_t w = after_gaps(0, SL_BUSYPOLL_AUTO, 30 * US, 5);
  CHECK_EQ_INT(w, 40 * US);
  w = sl_busypoll_window(w, SL_BUSYPOLL_AUTO, 5000 * US);
  CHECK_EQ_INT(w, 20 * US);
  CHECK_EQ_INT(sl_busypoll_window(w, SL_BUSYPOLL_AUTO, 30 * US), 40 * US);
}

static void test_fixed_and_off(void) {
  CHECK_EQ_INT(sl_busypoll_window(0, 1000, 5000 * US), 1000 * US);
  CHECK_EQ_INT(sl_busypoll_window(BUSYPOLL_MAX_NS, 1000, 1 * US), 1000 * US);
  CHECK_EQ_INT(after_gaps(BUSYPOLL_MAX_NS, 0, 20 * US, 3), 0);
}

int main(void) {
  test_auto_grows_to_cover_short_gaps();
  test_auto_is_bounded();
  test_auto_shrinks_on_pauses();
  test_auto_recovers_after_a_pause();
  test_fixed_and_off();
  return unit_summary("test_busypoll");
}
