#include "ratelimit.h"

bool sl_bucket_take(sl_bucket *b, const sl_rate *r, uint64_t now_ms) {
  if (b->last_ms == 0) {
    b->tokens = r->max_points;
  } else if (now_ms > b->last_ms) {
    b->tokens += (double)(now_ms - b->last_ms) * r->max_points / r->window_ms;
    if (b->tokens > r->max_points) b->tokens = r->max_points;
  }
  b->last_ms = now_ms ? now_ms : 1;
  if (b->tokens < 1.0) return false;
  b->tokens -= 1.0;
  return true;
}
