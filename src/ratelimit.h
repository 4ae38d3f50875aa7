/* Token buckets: capacity max_points, refilled at max_points per window_ms;
 * one message costs one point. O(1) state per bucket. */
#ifndef SL_RATELIMIT_H
#define SL_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  uint32_t max_points;
  uint32_t window_ms;
} sl_rate;

typedef struct {
  double tokens;
  uint64_t last_ms; /* 0: never used, starts full */
} sl_bucket;

/* Refills for the time since the last call, then takes one point if there
 * is one. Returns false when the bucket is empty. */
bool sl_bucket_take(sl_bucket *b, const sl_rate *r, uint64_t now_ms);

static inline bool sl_rate_enabled(const sl_rate *r) { return r->max_points > 0 && r->window_ms > 0; }

#endif
