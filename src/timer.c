#include "timer.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <sys/time.h>
#include <uv.h>

#include "lua_vm.h"

#define TIMER_MT "stelar.timer"

uint64_t sl_wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* A timer lives in C; Lua holds a box pointing at it. While the timer is
 * armed it anchors its box and callback; both are released when it stops. */
typedef struct sl_timer sl_timer;
typedef struct {
  sl_timer *timer; /* NULL once stopped */
} timer_box;

/* Also the wait of a sleeping handler (sleeper set, no box or callback). */
struct sl_timer {
  uv_timer_t handle;
  sl_timer *prev, *next; /* every armed timer, so that exit can close them */
  int fn_ref, box_ref;
  timer_box *box;
  sl_task *sleeper;
  unsigned generation; /* of the top level that set it; 0 from a handler */
  bool repeat;
};

static sl_timer *armed;
static bool refusing; /* the process is stopping: no new timers */

static sl_timer *timer_new(void) {
  sl_timer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->fn_ref = t->box_ref = LUA_NOREF;
  t->handle.data = t;
  uv_timer_init(sl_vm_loop(), &t->handle);
  t->next = armed;
  if (armed) armed->prev = t;
  armed = t;
  return t;
}

static void free_handle(uv_handle_t *h) { free(h->data); }

static void timer_stop(sl_timer *t) {
  lua_State *L = sl_vm_state();
  if (t->box) t->box->timer = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, t->box_ref);
  if (t->prev) t->prev->next = t->next;
  else armed = t->next;
  if (t->next) t->next->prev = t->prev;
  uv_close((uv_handle_t *)&t->handle, free_handle);
}

void sl_timers_cancel_generation(unsigned generation) {
  for (sl_timer *t = armed, *next; t; t = next) {
    next = t->next;
    if (t->generation == generation && !t->sleeper) timer_stop(t);
  }
}

void sl_timers_close_all(void) {
  refusing = true;
  while (armed) timer_stop(armed);
}

static void on_timer(uv_timer_t *h) {
  sl_timer *t = h->data;
  lua_State *L = sl_vm_state();
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
  if (!t->repeat) timer_stop(t); /* before the call: it may set a new timer */
  sl_task *task = sl_task_new(NULL, "timer", NULL, NULL, NULL);
  if (task) sl_task_start(task, 0);
  else lua_pop(L, 1);
}

static int start_timer(lua_State *L, bool repeat) {
  lua_Number ms = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_argcheck(L, ms >= 0, 1, "delay must not be negative");
  if (refusing) return luaL_error(L, "the server is stopping: no new timers");
  sl_timer *t = timer_new();
  if (!t) return luaL_error(L, "out of memory");
  t->repeat = repeat;
  t->generation = sl_vm_loading();
  lua_pushvalue(L, 2);
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->box = lua_newuserdata(L, sizeof *t->box);
  t->box->timer = t;
  luaL_getmetatable(L, TIMER_MT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  t->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uint64_t delay = (uint64_t)ms;
  uv_timer_start(&t->handle, on_timer, delay, repeat ? (delay ? delay : 1) : 0);
  return 1;
}

static int sl_set_timeout(lua_State *L) { return start_timer(L, false); }
static int sl_set_interval(lua_State *L) { return start_timer(L, true); }

static int sl_clear_timer(lua_State *L) {
  timer_box *box = luaL_checkudata(L, 1, TIMER_MT);
  if (box->timer) timer_stop(box->timer);
  return 0;
}

static void on_wake(uv_timer_t *h) {
  sl_timer *t = h->data;
  sl_task *task = t->sleeper;
  timer_stop(t);
  sl_task_resume(task, 0);
}

/* stelar.sleep(ms): yields the handler's coroutine until the timer fires. */
static int sl_sleep(lua_State *L) {
  lua_Number ms = luaL_checknumber(L, 1);
  luaL_argcheck(L, ms >= 0, 1, "delay must not be negative");
  sl_task *task = sl_task_current(L);
  if (!task) return luaL_error(L, "stelar.sleep can only wait inside a handler");
  if (refusing) return luaL_error(L, "the server is stopping: no waiting");
  sl_timer *t = timer_new();
  if (!t) return luaL_error(L, "out of memory");
  t->sleeper = task;
  uv_timer_start(&t->handle, on_wake, (uint64_t)ms, 0);
  return lua_yield(L, 0);
}

void sl_lua_open_timer(lua_State *L) {
  luaL_newmetatable(L, TIMER_MT);
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"setTimeout", sl_set_timeout}, {"setInterval", sl_set_interval},
                                 {"clearTimer", sl_clear_timer}, {"sleep", sl_sleep}, {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
