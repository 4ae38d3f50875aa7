#include "reload.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_options.h"
#include "lua_server.h"
#include "lua_vm.h"
#include "timer.h"

#define DEBOUNCE_MS 150
#define MAX_WATCHED_DIRS 64

typedef struct {
  uv_fs_event_t handle;
  char *dir;
} dir_watch;

static struct {
  char *script;
  bool running;          /* a reload is running the script */
  sl_server *next_claim; /* the next server stelar.server{} returns */
  uv_signal_t sighup;
  uv_timer_t debounce;
  dir_watch *dirs[MAX_WATCHED_DIRS];
  int ndirs;
  sl_sbuf changed; /* "a.lua, b.lua" since the last reload */
  bool open;
} rl;

bool sl_reload_active(void) { return rl.running; }

sl_server *sl_reload_claim_server(void) {
  sl_server *s = rl.next_claim;
  if (s) rl.next_claim = s->next_server;
  return s;
}

/* ---- the reload ---- */

static void commit(lua_State *L) {
  for (sl_server *s = sl_vm_servers(); s; s = s->next_server) {
    if (s->staged_ref == LUA_NOREF) continue;
    luaL_unref(L, LUA_REGISTRYINDEX, s->handlers_ref);
    s->handlers_ref = s->staged_ref;
    s->staged_ref = LUA_NOREF;
    if (s->staged_opts_ref != LUA_NOREF) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, s->staged_opts_ref);
      sl_options_apply(L, lua_gettop(L), s); /* validated when staged: cannot raise */
      lua_pop(L, 1);
      luaL_unref(L, LUA_REGISTRYINDEX, s->staged_opts_ref);
      s->staged_opts_ref = LUA_NOREF;
    }
    sl_lua_refresh_present(L, s);
  }
}

static void discard(lua_State *L) {
  for (sl_server *s = sl_vm_servers(); s; s = s->next_server) {
    luaL_unref(L, LUA_REGISTRYINDEX, s->staged_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->staged_opts_ref);
    s->staged_ref = s->staged_opts_ref = LUA_NOREF;
  }
}

static void watch_files(void);

int sl_reload_run(const char *why) {
  lua_State *L = sl_vm_state();
  uint64_t start = uv_hrtime();
  sl_vm_push_prelude(L, "unload_modules");
  lua_call(L, 0, 1);
  int saved = luaL_ref(L, LUA_REGISTRYINDEX);

  unsigned old_gen = sl_vm_generation();
  rl.running = true;
  rl.next_claim = sl_vm_servers();
  int r = sl_vm_run_script(rl.script);
  rl.running = false;
  double ms = (double)(uv_hrtime() - start) / 1e6;
  if (r == 0) {
    commit(L);
    sl_timers_cancel_generation(old_gen);
    sl_info("reloaded %s (%s) in %.1f ms", rl.script, why, ms);
  } else {
    discard(L);
    sl_timers_cancel_generation(sl_vm_generation());
    sl_vm_set_generation(old_gen);
    sl_vm_push_prelude(L, "restore_modules");
    lua_rawgeti(L, LUA_REGISTRYINDEX, saved);
    lua_call(L, 1, 0);
    sl_error("reload of %s (%s) failed after %.1f ms; the previous handlers keep serving", rl.script, why, ms);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, saved);
  watch_files(); /* the script may require new modules */
  return r;
}

/* ---- watching ---- */

static void on_debounced(uv_timer_t *t) {
  (void)t;
  sl_sbuf_putc(&rl.changed, '\0');
  char *why = strdup(rl.changed.data);
  sl_sbuf_reset(&rl.changed);
  sl_reload_run(why ? why : "changed");
  free(why);
}

/* Is dir/name the script or one of its modules? */
static bool watched(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (strcmp(path, rl.script) == 0) return true;
  lua_State *L = sl_vm_state();
  sl_vm_push_prelude(L, "modules");
  bool found = false;
  lua_pushnil(L);
  while (!found && lua_next(L, -2)) {
    found = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), path) == 0;
    lua_pop(L, 1);
  }
  lua_settop(L, lua_gettop(L) - (found ? 2 : 1));
  return found;
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status) {
  (void)events;
  dir_watch *w = h->data;
  if (status < 0 || !name || !watched(w->dir, name)) return;
  if (!strstr(rl.changed.data ? rl.changed.data : "", name)) {
    if (rl.changed.len) sl_sbuf_puts(&rl.changed, ", ");
    sl_sbuf_puts(&rl.changed, name);
    sl_sbuf_putc(&rl.changed, '\0');
    rl.changed.len--; /* keep it a C string for strstr */
  }
  uv_timer_start(&rl.debounce, on_debounced, DEBOUNCE_MS, 0);
}

static void free_watch(uv_handle_t *h) {
  dir_watch *w = h->data;
  free(w->dir);
  free(w);
}

/* Watches the folder of path (once): editors replace files by renaming, so a
 * watch on the file itself would go stale. */
static void watch_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 1;
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", (int)n, slash ? path : ".");
  for (int i = 0; i < rl.ndirs; i++)
    if (strcmp(rl.dirs[i]->dir, dir) == 0) return;
  if (rl.ndirs == MAX_WATCHED_DIRS) return;
  dir_watch *w = calloc(1, sizeof *w);
  if (!w || !(w->dir = strdup(dir))) return free(w);
  uv_fs_event_init(sl_vm_loop(), &w->handle);
  w->handle.data = w;
  if (uv_fs_event_start(&w->handle, on_fs_event, dir, 0) != 0) {
    sl_warn("cannot watch %s for changes", dir);
    uv_close((uv_handle_t *)&w->handle, free_watch);
    return;
  }
  uv_unref((uv_handle_t *)&w->handle); /* watching alone keeps nothing alive */
  rl.dirs[rl.ndirs++] = w;
}

static void watch_files(void) {
  lua_State *L = sl_vm_state();
  watch_dir_of(rl.script);
  sl_vm_push_prelude(L, "modules");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -1) == LUA_TSTRING) watch_dir_of(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  sl_reload_run("SIGHUP");
}

void sl_reload_init(const char *script_path) {
  rl.script = strdup(script_path);
  uv_timer_init(sl_vm_loop(), &rl.debounce);
  uv_unref((uv_handle_t *)&rl.debounce);
  uv_signal_init(sl_vm_loop(), &rl.sighup);
  uv_signal_start(&rl.sighup, on_sighup, SIGHUP);
  uv_unref((uv_handle_t *)&rl.sighup);
  rl.open = true;
  watch_files();
}

void sl_reload_close(void) {
  if (!rl.open) return;
  rl.open = false;
  uv_close((uv_handle_t *)&rl.debounce, NULL);
  uv_close((uv_handle_t *)&rl.sighup, NULL);
  for (int i = 0; i < rl.ndirs; i++) uv_close((uv_handle_t *)&rl.dirs[i]->handle, free_watch);
  rl.ndirs = 0;
  sl_sbuf_free(&rl.changed);
  free(rl.script);
  rl.script = NULL;
}
