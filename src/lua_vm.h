/* The Lua state, its prelude, and the one way handlers run: as tasks on
 * pooled coroutines under a traceback-taking protected resume. A task that
 * waits (stelar.sleep) yields its coroutine; whoever it waits on resumes it
 * from a loop callback. */
#ifndef SL_LUA_VM_H
#define SL_LUA_VM_H

#include <lua.h>
#include <stdbool.h>
#include <uv.h>

#include "conn.h"
#include "envelope.h"

typedef struct sl_task sl_task;

/* Called when a task's function returns (err == NULL, its nres results on
 * top of co) or raises (err is the message, already logged). */
typedef void (*sl_task_done)(sl_task *t, lua_State *co, int nres, const char *err);

struct sl_task {
  lua_State *co;
  int co_ref;
  sl_task_done done;
  const char *kind; /* the registration it runs: "on", "onAck", "use", ... */
  char name[SL_EVENT_NAME_MAX + 1];
  char client_id[SL_ID_MAX + 1];
  sl_server *server;
  char *correlation_json; /* ACK requests: correlation_inline, or malloc'd when longer */
  char correlation_inline[64];
  sl_task *next_free;
};

typedef enum { SL_TASK_FINISHED, SL_TASK_WAITING } sl_task_status;

/* Script code may hold at most this many bytes of Lua heap (0: no limit);
 * set before sl_vm_open. Past it, allocations raise "not enough memory"
 * in the handler that made them. */
void sl_vm_set_memory_budget(size_t bytes);

/* Creates the state, opens the libraries and `stelar`, runs the prelude. */
lua_State *sl_vm_open(uv_loop_t *loop, const char *script_path, bool check_only);
void sl_vm_close(void);
lua_State *sl_vm_state(void);
uv_loop_t *sl_vm_loop(void);
bool sl_vm_check_only(void);

/* Loads and runs the script under the traceback handler; logs and returns
 * -1 on error. */
int sl_vm_run_script(const char *path);

/* Each run of the script's top level has a generation: timers it sets are
 * tagged with it, so a reload can cancel the old top level's timers.
 * sl_vm_loading() is that generation while a top level runs, else 0. */
unsigned sl_vm_generation(void);
void sl_vm_set_generation(unsigned g);
unsigned sl_vm_loading(void);

/* Pushes the prelude's value `name` onto L. */
void sl_vm_push_prelude(lua_State *L, const char *name);

/* The servers the script created, in creation order. */
void sl_vm_add_server(sl_server *s);
sl_server *sl_vm_servers(void);

sl_task *sl_task_new(sl_server *s, const char *kind, const char *name, const char *client_id,
                     sl_task_done done);
/* Keeps an ACK request's correlation id (JSON text) with the task: in the
 * task itself when it is short, as most are. Returns 0, or -1 when out of
 * memory. */
int sl_task_set_correlation(sl_task *t, const char *json, size_t len);
/* Gives back a task that was never started. */
void sl_task_drop(sl_task *t);

/* Runs the function below nargs arguments on top of the main state's stack
 * as task t; both are popped. */
sl_task_status sl_task_start(sl_task *t, int nargs);
/* Continues a waiting task with nargs values on top of its coroutine. */
sl_task_status sl_task_resume(sl_task *t, int nargs);
/* The task whose coroutine is L, or NULL outside a handler. */
sl_task *sl_task_current(lua_State *L);

/* Calls the function below nargs arguments on the main state under the
 * traceback handler, for code that must answer at once (hooks, id
 * generators): it cannot wait. Returns 0 with nres results pushed, or -1
 * with the error logged and nres nils pushed. */
int sl_vm_call(lua_State *L, const char *kind, const char *name, const char *client_id, int nargs, int nres);

/* Logs a Lua error with its traceback: "<kind> <name> client=<id>: <msg>". */
void sl_vm_log_error(const sl_task *t, const char *msg, const char *traceback);

#endif
