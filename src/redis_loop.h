/* hiredis's asynchronous contexts on our libuv loop. Debian's hiredis 0.14
 * ships an adapter (hiredis/adapters/libuv.h) that drops poll errors: a
 * refused connection then hangs forever instead of failing. This one hands
 * an error to hiredis as a readiness event, so hiredis sees the socket
 * error and reports it (as later hiredis releases do). */
#ifndef SL_REDIS_LOOP_H
#define SL_REDIS_LOOP_H

#include <hiredis/async.h>
#include <uv.h>

/* Returns REDIS_OK, or REDIS_ERR (the caller frees ac). */
int sl_redis_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
