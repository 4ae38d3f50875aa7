#include "client_limits.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "lua_server.h"
#include "lua_vm.h"
#include "server.h"

/* A named rate: the key of the server's per-event and per-client maps. */
typedef struct {
  sl_rate rate;
  size_t len;
  char name[];
} named_rate;

typedef struct {
  uint32_t count;
  char ip[48];
} ip_count;

/* A client's bucket for one event with its own limit. */
typedef struct {
  sl_bucket bucket;
  char event[];
} event_bucket;

/* ---- connection admission ---- */

/* customIPTracker:<method>(ip) when the script gives a tracker. Pushes the
 * result; false when there is no tracker. */
static bool call_tracker(sl_server *s, const char *method, const char *ip) {
  if (!sl_lua_has(s, SL_SLOT_IP_TRACKER)) return false;
  lua_State *L = sl_vm_state();
  sl_lua_push_handler(L, s, "options", "customIPTracker");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  lua_getfield(L, -1, method);
  lua_insert(L, -2); /* tracker as self */
  lua_pushstring(L, ip);
  sl_vm_call(L, "customIPTracker", method, NULL, 2, 1);
  return true;
}

static bool ip_admit(sl_conn *c) {
  sl_server *s = c->server;
  lua_State *L = sl_vm_state();
  if (call_tracker(s, "check", c->remote)) {
    bool ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ok && call_tracker(s, "add", c->remote)) lua_pop(L, 1);
    return ok;
  }
  size_t len = strlen(c->remote);
  ip_count *n = sl_map_get(&s->ip_counts, c->remote, len);
  if (n && n->count >= s->cfg.max_connections_per_ip) return false;
  if (!n) {
    if (!(n = calloc(1, sizeof *n))) return false;
    memcpy(n->ip, c->remote, len + 1);
    if (sl_map_put(&s->ip_counts, n->ip, len, n) != 0) {
      free(n);
      return false;
    }
  }
  n->count++;
  return true;
}

const char *sl_limits_admit(sl_conn *c) {
  sl_server *s = c->server;
  lua_State *L = sl_vm_state();
  if (s->stats.active >= s->cfg.max_connections) {
    sl_warn("refused %s: maxConnections (%u) reached", c->remote, s->cfg.max_connections);
    if (sl_app_push_hook(L, s, SL_HOOK_MAX_CONNECTIONS_REACHED)) {
      sl_app_info_number(L, "activeConnections", s->stats.active);
      sl_app_info_number(L, "max", s->cfg.max_connections);
      sl_app_info_string(L, "ip", c->remote);
      sl_app_call_hook(L, SL_HOOK_MAX_CONNECTIONS_REACHED, NULL);
    }
    return "Server full";
  }
  if (!ip_admit(c)) {
    sl_warn("refused %s: maxConnectionsPerIP reached", c->remote);
    return "Too many connections";
  }
  c->ip_counted = true;
  return NULL;
}

static void free_event_buckets(sl_conn *c) {
  if (!c->event_buckets) return;
  sl_map *m = c->event_buckets;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key) free(m->slots[i].value);
  c->server->rate_entries -= m->count;
  sl_map_free(m);
  free(m);
  c->event_buckets = NULL;
}

void sl_limits_release(sl_conn *c) {
  sl_server *s = c->server;
  if (c->ip_counted) {
    c->ip_counted = false;
    if (call_tracker(s, "remove", c->remote)) {
      lua_pop(sl_vm_state(), 1);
    } else {
      size_t len = strlen(c->remote);
      ip_count *n = sl_map_get(&s->ip_counts, c->remote, len);
      if (n && --n->count == 0) free(sl_map_remove(&s->ip_counts, n->ip, len));
    }
  }
  if (c->bucket.last_ms) s->rate_entries--;
  c->bucket.last_ms = 0;
  free_event_buckets(c);
  free(sl_map_remove(&s->client_rates, c->id, c->id_len));
  if (!sl_lua_has(s, SL_SLOT_RATE_LIMITER)) return;
  lua_State *L = sl_vm_state();
  sl_lua_push_handler(L, s, "options", "customRateLimiter");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "reset");
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, -2);
      lua_pushstring(L, c->id);
      sl_vm_call(L, "customRateLimiter", "reset", c->id, 2, 0);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* ---- message rates ---- */

static bool take(sl_server *s, sl_bucket *b, const sl_rate *r) {
  if (!b->last_ms) s->rate_entries++;
  return sl_bucket_take(b, r, sl_now_ms());
}

static bool take_event(sl_conn *c, const char *event, const sl_rate *r) {
  size_t len = strlen(event);
  if (!c->event_buckets && !(c->event_buckets = calloc(1, sizeof *c->event_buckets))) return true;
  event_bucket *eb = sl_map_get(c->event_buckets, event, len);
  if (!eb) {
    if (!(eb = calloc(1, sizeof *eb + len + 1))) return true;
    memcpy(eb->event, event, len + 1);
    if (sl_map_put(c->event_buckets, eb->event, len, eb) != 0) {
      free(eb);
      return true;
    }
    c->server->rate_entries++;
  }
  return sl_bucket_take(&eb->bucket, r, sl_now_ms());
}

/* customRateLimiter:check(id, 1); a limiter that fails lets messages through. */
static bool take_custom(sl_conn *c, bool *used) {
  *used = false;
  if (!sl_lua_has(c->server, SL_SLOT_RATE_LIMITER)) return true;
  lua_State *L = sl_vm_state();
  sl_lua_push_handler(L, c->server, "options", "customRateLimiter");
  *used = lua_istable(L, -1);
  if (!*used) {
    lua_pop(L, 1);
    return true;
  }
  lua_getfield(L, -1, "check");
  lua_insert(L, -2);
  lua_pushstring(L, c->id);
  lua_pushinteger(L, 1);
  if (sl_vm_call(L, "customRateLimiter", "check", c->id, 3, 1) != 0) {
    lua_pop(L, 1);
    return true;
  }
  bool ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* Priority: the client's own limit, else the event's, else the custom
 * limiter, else the global one: the first that applies decides. */
static bool within_rate(sl_conn *c, const char *event) {
  sl_server *s = c->server;
  named_rate *own = sl_map_get(&s->client_rates, c->id, c->id_len);
  if (own) return take(s, &c->bucket, &own->rate);
  named_rate *ev = event ? sl_map_get(&s->event_rates, event, strlen(event)) : NULL;
  if (ev) return take_event(c, event, &ev->rate);
  bool custom;
  bool ok = take_custom(c, &custom);
  if (custom) return ok;
  if (!sl_rate_enabled(&s->cfg.rate_limit)) return true;
  return take(s, &c->bucket, &s->cfg.rate_limit);
}

bool sl_limits_allow(sl_conn *c, const char *event) {
  if (within_rate(c, event)) return true;
  lua_State *L = sl_vm_state();
  if (sl_app_push_hook(L, c->server, SL_HOOK_RATE_LIMIT_EXCEEDED)) {
    sl_app_info_string(L, "clientId", c->id);
    if (event) sl_app_info_string(L, "event", event);
    sl_app_info_string(L, "protocol", sl_app_protocol(c));
    if (sl_app_call_hook(L, SL_HOOK_RATE_LIMIT_EXCEEDED, c->id) == SL_HOOK_VETO) return false;
  }
  sl_info("closing client %s: rate limit exceeded%s%s", c->id, event ? " on " : "", event ? event : "");
  sl_conn_close(c, 1008, "Rate limit exceeded");
  return false;
}

static int set_rate(sl_map *m, const char *name, sl_rate rate) {
  size_t len = strlen(name);
  named_rate *old = sl_map_remove(m, name, len);
  free(old);
  if (!sl_rate_enabled(&rate)) return 0;
  named_rate *n = malloc(sizeof *n + len + 1);
  if (!n) return -1;
  n->rate = rate;
  n->len = len;
  memcpy(n->name, name, len + 1);
  if (sl_map_put(m, n->name, len, n) != 0) {
    free(n);
    return -1;
  }
  return 0;
}

int sl_limits_set_event_rate(sl_server *s, const char *event, sl_rate rate) {
  return set_rate(&s->event_rates, event, rate);
}

int sl_limits_set_client_rate(sl_server *s, const char *id, sl_rate rate) {
  sl_conn *c = sl_app_find_client(s, id);
  if (c) c->bucket = (sl_bucket){0}; /* the new limit starts full */
  return set_rate(&s->client_rates, id, rate);
}

static void free_values(sl_map *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key) free(m->slots[i].value);
  sl_map_free(m);
}

void sl_limits_free_event_rates(sl_server *s) { free_values(&s->event_rates); }

void sl_limits_free(sl_server *s) {
  free_values(&s->ip_counts);
  free_values(&s->event_rates);
  free_values(&s->client_rates);
}

double sl_limits_entries(lua_State *L, sl_server *s) {
  sl_lua_push_handler(L, s, "options", "customRateLimiter");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "size");
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, -2);
      if (sl_vm_call(L, "customRateLimiter", "size", NULL, 1, 1) == 0 && lua_isnumber(L, -1)) {
        double n = lua_tonumber(L, -1);
        lua_pop(L, 2);
        return n;
      }
      lua_pop(L, 1);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return s->rate_entries;
}
