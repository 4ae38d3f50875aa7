/* stelar-lua: arguments and start-up. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app.h"
#include "iobatch.h"
#include "log.h"
#include "lua_vm.h"
#include "poller.h"
#include "reload.h"
#include "server.h"
#include "timer.h"

/* A handler that allocates without end meets an error, not the kernel's
 * OOM killer; raise it for scripts that keep large state in Lua. */
#define DEFAULT_LUA_MEMORY_MIB 1024

static uv_signal_t sigint_h, sigterm_h;

static void usage(FILE *out) {
  fprintf(out,
          "usage: stelar-lua [options] app.lua\n"
          "  --check            load the script without binding ports; exit 0 or 1\n"
          "  --log-level LEVEL  debug, info, warn, error or off (default info)\n"
          "  --lua-memory MIB   most Lua heap the script may hold (default %d, 0: no limit)\n"
          "  --version          print the version\n",
          DEFAULT_LUA_MEMORY_MIB);
}

static void stop_everything(void) {
  sl_reload_close();
  for (sl_server *s = sl_vm_servers(); s; s = s->next_server) sl_server_stop(s);
  sl_timers_close_all();
  if (!uv_is_closing((uv_handle_t *)&sigint_h)) uv_close((uv_handle_t *)&sigint_h, NULL);
  if (!uv_is_closing((uv_handle_t *)&sigterm_h)) uv_close((uv_handle_t *)&sigterm_h, NULL);
}

static struct {
  const char *signal; /* the one that started the shutdown */
  int draining;       /* servers still draining */
  bool forced;
} stopping;

static void on_drained(sl_server *s, bool forced) {
  stopping.forced |= forced;
  sl_app_shutdown_callbacks(s, stopping.signal, forced);
  sl_server_stop(s);
  if (--stopping.draining == 0) stop_everything();
}

/* The first signal drains every server gracefully; a second one forces. */
static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (stopping.signal) {
    sl_warn("received %s again, closing every client now", name);
    for (sl_server *s = sl_vm_servers(); s; s = s->next_server) sl_server_force(s);
    return;
  }
  sl_info("received %s, shutting down", name);
  stopping.signal = name;
  for (sl_server *s = sl_vm_servers(); s; s = s->next_server)
    if (s->started && !s->stopped) stopping.draining++;
  if (stopping.draining == 0) return stop_everything();
  for (sl_server *s = sl_vm_servers(); s; s = s->next_server)
    if (s->started && !s->stopped) sl_server_drain(s, on_drained);
}

int main(int argc, char **argv) {
  const char *script = NULL;
  bool check = false;
  long lua_memory_mib = DEFAULT_LUA_MEMORY_MIB;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--check") == 0) {
      check = true;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("stelar-lua %s\n", SL_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
      int level = sl_log_parse_level(argv[++i]);
      if (level < 0) {
        fprintf(stderr, "stelar-lua: unknown log level '%s'\n", argv[i]);
        return 2;
      }
      sl_log_set_level((sl_log_level)level);
    } else if (strcmp(argv[i], "--lua-memory") == 0 && i + 1 < argc) {
      char *end;
      lua_memory_mib = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || lua_memory_mib < 0 || lua_memory_mib > (1L << 30)) {
        fprintf(stderr, "stelar-lua: --lua-memory wants a number of MiB, not '%s'\n", argv[i]);
        return 2;
      }
    } else if (argv[i][0] == '-' || script) {
      usage(stderr);
      return 2;
    } else {
      script = argv[i];
    }
  }
  if (!script) {
    usage(stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an error code, not a signal */
  /* SIGHUP means "reload" once the script is running (reload.c); before
   * that, while it starts, one must not end the process. */
  signal(SIGHUP, SIG_IGN);

  uv_loop_t *loop = uv_default_loop();
  sl_vm_set_memory_budget((size_t)lua_memory_mib << 20);
  if (!sl_vm_open(loop, script, check)) return 1;
  uv_signal_init(loop, &sigint_h);
  uv_signal_init(loop, &sigterm_h);
  uv_signal_start(&sigint_h, on_signal, SIGINT);
  uv_signal_start(&sigterm_h, on_signal, SIGTERM);
  /* Signals alone do not keep the process running. */
  uv_unref((uv_handle_t *)&sigint_h);
  uv_unref((uv_handle_t *)&sigterm_h);

  int status = sl_vm_run_script(script) == 0 ? 0 : 1;
  if (status == 0 && check) printf("%s: ok\n", script);
  if (status == 0 && !check) sl_reload_init(script);
  if (status != 0 || check) stop_everything();
  sl_poller_run(loop);
  if (!uv_is_closing((uv_handle_t *)&sigint_h)) stop_everything();
  uv_run(loop, UV_RUN_DEFAULT);
  sl_vm_close();
  sl_iobatch_close();
  uv_loop_close(loop);
  return status ? status : stopping.forced ? 1 : 0;
}
