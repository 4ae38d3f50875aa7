#include "lua_vm.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_stelar.h"
#include "lua_prelude.h"
#include "server.h"

#define POOL_MAX 256

static struct {
  lua_State *L;
  uv_loop_t *loop;
  bool check_only;
  int prelude_ref;
  lua_State *pool[POOL_MAX]; /* idle coroutines, anchored by pool_refs */
  int pool_refs[POOL_MAX];
  int npool;
  sl_task *current;
  unsigned generation;
  bool loading;
  sl_task *free_tasks;
  sl_server *servers, *last_server;
  size_t heap_bytes, heap_budget;
  int protected_depth; /* protected calls and resumes now running */
  lua_Alloc luajit_alloc; /* LuaJIT's own allocator, which budget_alloc wraps */
  void *luajit_alloc_ud;
} vm;

/* The Lua heap's budget. Script code (anything under a protected call or
 * resume) is refused memory past it and gets "not enough memory" as an
 * ordinary error. The core's own pushes between calls are never refused:
 * an error there would have no handler to land in, and they are small. */
static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  size_t old = ptr ? osize : 0;
  if (nsize > old && vm.protected_depth > 0 && vm.heap_budget &&
      vm.heap_bytes + (nsize - old) > vm.heap_budget)
    return NULL;
  void *p = vm.luajit_alloc(vm.luajit_alloc_ud, ptr, osize, nsize);
  if (p || nsize == 0) vm.heap_bytes = vm.heap_bytes - old + nsize;
  return p;
}

/* LuaJIT's allocator is faster than malloc for Lua's many small blocks:
 * keep it, counting what passes through. What the state holds already is
 * counted from the collector's own total. */
static void install_budget(lua_State *L) {
  vm.luajit_alloc = lua_getallocf(L, &vm.luajit_alloc_ud);
  vm.heap_bytes = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
  lua_setallocf(L, budget_alloc, NULL);
}

void sl_vm_set_memory_budget(size_t bytes) { vm.heap_budget = bytes; }

/* Garbage left by a handler that ran out is collected at once, so the next
 * handler does not meet the budget before the collector's next step.
 * (A dead coroutine holds its stack until it is unreferenced.) */
static void collect_after(int status) {
  if (status == LUA_ERRMEM) lua_gc(vm.L, LUA_GCCOLLECT, 0);
}

lua_State *sl_vm_state(void) { return vm.L; }
uv_loop_t *sl_vm_loop(void) { return vm.loop; }
bool sl_vm_check_only(void) { return vm.check_only; }

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

void sl_vm_push_prelude(lua_State *L, const char *name) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, vm.prelude_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* Modules next to the script come first on package.path. */
static void add_script_dir_to_path(lua_State *L, const char *script_path) {
  const char *slash = strrchr(script_path, '/');
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - script_path) : 1, slash ? script_path : ".");
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_settop(L, 0);
}

/* require() of the script's own modules goes through the prelude's
 * searcher, which records them for hot reload. */
static void install_searcher(lua_State *L, const char *script_path) {
  const char *slash = strrchr(script_path, '/');
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - script_path) : 1, slash ? script_path : ".");
  sl_vm_push_prelude(L, "install_searcher");
  lua_pushstring(L, dir);
  lua_call(L, 1, 0);
}

lua_State *sl_vm_open(uv_loop_t *loop, const char *script_path, bool check_only) {
  lua_State *L = luaL_newstate();
  if (!L) return NULL;
  install_budget(L);
  vm.L = L;
  vm.loop = loop;
  vm.check_only = check_only;
  luaL_openlibs(L);
  add_script_dir_to_path(L, script_path);

  if (luaL_loadbuffer(L, sl_lua_prelude, sizeof sl_lua_prelude, sl_lua_prelude_name) ||
      lua_pcall(L, 0, 1, 0)) {
    sl_error("prelude: %s", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  vm.prelude_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  sl_lua_open_stelar(L);
  install_searcher(L, script_path);
  return L;
}

void sl_vm_add_server(sl_server *s) {
  if (vm.last_server) vm.last_server->next_server = s;
  else vm.servers = s;
  vm.last_server = s;
}

sl_server *sl_vm_servers(void) { return vm.servers; }

void sl_vm_close(void) {
  if (!vm.L) return;
  lua_close(vm.L);
  for (sl_server *s = vm.servers, *next; s; s = next) {
    next = s->next_server;
    sl_server_free(s);
  }
  while (vm.free_tasks) {
    sl_task *t = vm.free_tasks;
    vm.free_tasks = t->next_free;
    free(t);
  }
  memset(&vm, 0, sizeof vm);
}

unsigned sl_vm_generation(void) { return vm.generation; }
void sl_vm_set_generation(unsigned g) { vm.generation = g; }
unsigned sl_vm_loading(void) { return vm.loading ? vm.generation : 0; }

int sl_vm_run_script(const char *path) {
  lua_State *L = vm.L;
  lua_pushcfunction(L, traceback);
  int r = luaL_loadfile(L, path);
  vm.generation++;
  vm.loading = true;
  if (r == 0) {
    vm.protected_depth++;
    r = lua_pcall(L, 0, 0, -2);
    vm.protected_depth--;
    collect_after(r);
  }
  vm.loading = false;
  if (r != 0) {
    sl_error("%s", lua_tostring(L, -1));
    lua_settop(L, 0);
    return -1;
  }
  lua_settop(L, 0);
  return 0;
}

int sl_vm_call(lua_State *L, const char *kind, const char *name, const char *client_id, int nargs, int nres) {
  int fn = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, fn);
  vm.protected_depth++;
  int r = lua_pcall(L, nargs, nres, fn);
  vm.protected_depth--;
  collect_after(r);
  if (r == 0) {
    lua_remove(L, fn);
    return 0;
  }
  sl_task where = {.kind = kind};
  snprintf(where.name, sizeof where.name, "%s", name ? name : "");
  snprintf(where.client_id, sizeof where.client_id, "%s", client_id ? client_id : "");
  sl_vm_log_error(&where, lua_tostring(L, -1), NULL);
  lua_settop(L, fn - 1);
  for (int i = 0; i < nres; i++) lua_pushnil(L);
  return -1;
}

/* ---- tasks ---- */

static lua_State *take_coroutine(int *ref) {
  lua_State *L = vm.L;
  if (vm.npool) {
    vm.npool--;
    *ref = vm.pool_refs[vm.npool];
    return vm.pool[vm.npool];
  }
  lua_State *co = lua_newthread(L);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return co;
}

/* A coroutine whose function returned can run another one. */
static void give_back_coroutine(lua_State *co, int ref) {
  lua_settop(co, 0);
  if (vm.npool < POOL_MAX) {
    vm.pool[vm.npool] = co;
    vm.pool_refs[vm.npool++] = ref;
  } else {
    luaL_unref(vm.L, LUA_REGISTRYINDEX, ref);
  }
}

static void copy_string(char *dst, size_t size, const char *src) {
  size_t n = src ? strnlen(src, size - 1) : 0;
  memcpy(dst, src ? src : "", n);
  dst[n] = '\0';
}

sl_task *sl_task_new(sl_server *s, const char *kind, const char *name, const char *client_id,
                     sl_task_done done) {
  sl_task *t = vm.free_tasks;
  if (t) vm.free_tasks = t->next_free;
  else if (!(t = malloc(sizeof *t))) return NULL;
  t->co = NULL;
  t->co_ref = LUA_NOREF;
  t->done = done;
  t->kind = kind;
  t->server = s;
  t->correlation_json = NULL;
  copy_string(t->name, sizeof t->name, name);
  copy_string(t->client_id, sizeof t->client_id, client_id);
  return t;
}

int sl_task_set_correlation(sl_task *t, const char *json, size_t len) {
  char *dst = len < sizeof t->correlation_inline ? t->correlation_inline : malloc(len + 1);
  if (!dst) return -1;
  memcpy(dst, json, len);
  dst[len] = '\0';
  t->correlation_json = dst;
  return 0;
}

static void task_free(sl_task *t) {
  if (t->correlation_json != t->correlation_inline) free(t->correlation_json);
  t->next_free = vm.free_tasks;
  vm.free_tasks = t;
}

void sl_task_drop(sl_task *t) { task_free(t); }

void sl_vm_log_error(const sl_task *t, const char *msg, const char *trace) {
  sl_error("handler error in %s%s%s client=%s: %s%s%s", t->kind, t->name[0] ? " " : "", t->name,
           t->client_id[0] ? t->client_id : "-", msg, trace ? "\n" : "", trace ? trace : "");
}

/* The handler's own words without its position prefix: what a client may see. */
static const char *strip_position(const char *msg) {
  const char *p = strstr(msg, ": ");
  if (!p) return msg;
  const char *colon = p;
  while (colon > msg && colon[-1] >= '0' && colon[-1] <= '9') colon--;
  return (colon < p && colon > msg && colon[-1] == ':') ? p + 2 : msg;
}

sl_task_status sl_task_resume(sl_task *t, int nargs) {
  sl_task *outer = vm.current;
  vm.current = t;
  vm.protected_depth++;
  int r = lua_resume(t->co, nargs);
  vm.protected_depth--;
  vm.current = outer;
  if (r == LUA_YIELD) return SL_TASK_WAITING;
  if (r == 0) {
    if (t->done) t->done(t, t->co, lua_gettop(t->co), NULL);
    give_back_coroutine(t->co, t->co_ref);
  } else {
    /* The coroutine is dead; take the message and traceback from it. */
    const char *msg = lua_tostring(t->co, -1);
    if (!msg) msg = "(error object is not a string)";
    luaL_traceback(vm.L, t->co, NULL, 0);
    sl_vm_log_error(t, msg, lua_tostring(vm.L, -1));
    if (t->done) t->done(t, t->co, 0, strip_position(msg));
    lua_pop(vm.L, 1);
    luaL_unref(vm.L, LUA_REGISTRYINDEX, t->co_ref);
    collect_after(r);
  }
  task_free(t);
  return SL_TASK_FINISHED;
}

sl_task_status sl_task_start(sl_task *t, int nargs) {
  t->co = take_coroutine(&t->co_ref);
  lua_xmove(vm.L, t->co, nargs + 1);
  return sl_task_resume(t, nargs);
}

sl_task *sl_task_current(lua_State *L) {
  return (vm.current && vm.current->co == L) ? vm.current : NULL;
}
