/* What a client may do: connection admission (maxConnections, and
 * maxConnectionsPerIP or a script's customIPTracker), and the message rate
 * limits (a per-client override, per-event limits, the global limit or a
 * script's customRateLimiter), each with the v3 hook that may soften it. */
#ifndef SL_CLIENT_LIMITS_H
#define SL_CLIENT_LIMITS_H

#include <stdbool.h>
#include <lua.h>
#include <stdint.h>

#include "conn.h"
#include "ratelimit.h"

/* Admits a new client, counting its address. Returns NULL, or the close
 * reason ("Server full", "Too many connections") when refused. */
const char *sl_limits_admit(sl_conn *c);
/* The client left: uncount its address and free its rate state. */
void sl_limits_release(sl_conn *c);

/* Charges one message. True when it may be dispatched; false when it is
 * dropped (the onRateLimitExceeded hook returned false) or the client was
 * closed for exceeding its limit. */
bool sl_limits_allow(sl_conn *c, const char *event);

/* Per-event and per-client limits (a rate with max_points 0 removes). */
int sl_limits_set_event_rate(sl_server *s, const char *event, sl_rate rate);
int sl_limits_set_client_rate(sl_server *s, const char *id, sl_rate rate);
void sl_limits_free_event_rates(sl_server *s);
void sl_limits_free(sl_server *s);
/* Buckets in use, for getStats().rateLimiterEntries. */
double sl_limits_entries(lua_State *L, sl_server *s);

#endif
