#include "lua_options.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_limits.h"
#include "log.h"
#include "tls.h"
#include "lua_server.h"

typedef enum {
  OPT_U32,        /* a non-negative integer */
  OPT_SIZE,
  OPT_PORT,       /* 0..65535 */
  OPT_PORT_OFF,   /* a port, or false */
  OPT_BOOL,
  OPT_PATH,       /* a string starting with "/" */
  OPT_PATH_OFF,   /* a path, or false */
  OPT_STRING,
  OPT_STRINGS,    /* an array of strings */
  OPT_LOGGER,     /* a level name, or false */
  OPT_TABLE,
  OPT_TABLE_OFF,
  OPT_FUNCTION,
  OPT_RATE,        /* {maxPoints, windowMs}, or false */
  OPT_EVENT_RATES, /* {event = {maxPoints, windowMs}} */
  OPT_TLS,         /* {cert = path, key = path [, ca = path]} */
  OPT_CLUSTER,     /* {redis = url [, prefix, nodeId, nodeTimeout]}, or false */
  OPT_BUSY_POLL,   /* "auto", microseconds, or false (0) */
} opt_type;

#define CFG(field) offsetof(sl_config, field)
#define LATER ((size_t)-1) /* accepted and kept for the issues that use it */

static const struct option {
  const char *name;
  opt_type type;
  size_t offset;
} options[] = {
    {"host", OPT_STRING, CFG(host)},
    {"port", OPT_PORT, CFG(port)},
    {"tcpPort", OPT_PORT_OFF, CFG(tcp_port)},
    {"namespace", OPT_PATH, CFG(namespace_path)},
    {"maxConnections", OPT_U32, CFG(max_connections)},
    {"maxConnectionsPerIP", OPT_U32, CFG(max_connections_per_ip)},
    {"maxRooms", OPT_U32, CFG(max_rooms)},
    {"maxRoomsPerClient", OPT_U32, CFG(max_rooms_per_client)},
    {"maxPayloadSize", OPT_SIZE, CFG(max_payload_size)},
    {"maxFrameSize", OPT_SIZE, CFG(max_frame_size)},
    {"maxBufferedBytes", OPT_SIZE, CFG(max_buffered_bytes)},
    {"heartbeatInterval", OPT_U32, CFG(heartbeat_interval)},
    {"heartbeatTimeout", OPT_U32, CFG(heartbeat_timeout)},
    {"connectTimeout", OPT_U32, CFG(connect_timeout)},
    {"shutdownTimeout", OPT_U32, CFG(shutdown_timeout)},
    {"busyPoll", OPT_BUSY_POLL, CFG(busy_poll_us)},
    {"gracefulShutdown", OPT_BOOL, CFG(graceful_shutdown)},
    {"compression", OPT_BOOL, CFG(compression)},
    {"healthEndpoint", OPT_PATH_OFF, CFG(health_endpoint)},
    {"allowedOrigins", OPT_STRINGS, CFG(allowed_origins)},
    {"logger", OPT_LOGGER, LATER},
    {"rateLimit", OPT_RATE, CFG(rate_limit)},
    {"eventRateLimits", OPT_EVENT_RATES, LATER},
    {"tls", OPT_TLS, LATER},
    {"hooks", OPT_TABLE, LATER},
    {"generateClientId", OPT_FUNCTION, LATER},
    {"customRateLimiter", OPT_TABLE, LATER},
    {"customIPTracker", OPT_TABLE, LATER},
    {"customHealthHandler", OPT_FUNCTION, LATER},
    {"trustProxy", OPT_BOOL, CFG(trust_proxy)},
    {"cluster", OPT_CLUSTER, CFG(cluster)},
};

#define NOPTIONS (sizeof options / sizeof *options)

static const struct option *find_option(const char *name) {
  for (size_t i = 0; i < NOPTIONS; i++)
    if (strcmp(options[i].name, name) == 0) return &options[i];
  return NULL;
}

static void bad_type(lua_State *L, const struct option *o, const char *want) {
  luaL_error(L, "stelar.server: option '%s' must be %s, got %s", o->name, want, luaL_typename(L, -1));
}

static double check_number(lua_State *L, const struct option *o, double max) {
  if (lua_type(L, -1) != LUA_TNUMBER) bad_type(L, o, "a number");
  double v = lua_tonumber(L, -1);
  if (v < 0 || v > max || v != (double)(long long)v)
    luaL_error(L, "stelar.server: option '%s' must be a whole number from 0 to %.0f", o->name, max);
  return v;
}

/* Up to an hour: SL_BUSYPOLL_AUTO, above it, stands for "auto". */
static uint32_t check_busy_poll(lua_State *L, const struct option *o, bool off) {
  if (off) return 0;
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "auto") == 0) return SL_BUSYPOLL_AUTO;
  if (lua_type(L, -1) != LUA_TNUMBER) bad_type(L, o, "\"auto\", microseconds or false");
  return (uint32_t)check_number(L, o, 3600e6);
}

static void set_string(lua_State *L, char **field, const struct option *o, bool path) {
  if (lua_type(L, -1) != LUA_TSTRING) bad_type(L, o, path ? "a path string" : "a string");
  const char *v = lua_tostring(L, -1);
  if (path && v[0] != '/') luaL_error(L, "stelar.server: option '%s' must start with '/'", o->name);
  free(*field);
  *field = strdup(v);
}

static void set_strings(lua_State *L, sl_config *cfg, const struct option *o) {
  if (!lua_istable(L, -1)) bad_type(L, o, "an array of strings");
  size_t n = lua_objlen(L, -1);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "stelar.server: option '%s' must hold only strings", o->name);
    lua_pop(L, 1);
  }
  for (size_t i = 0; i < cfg->n_allowed_origins; i++) free(cfg->allowed_origins[i]);
  free(cfg->allowed_origins);
  cfg->allowed_origins = calloc(n ? n : 1, sizeof(char *));
  cfg->n_allowed_origins = n;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (int)i + 1);
    cfg->allowed_origins[i] = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

sl_rate sl_options_check_rate(lua_State *L, int idx, const char *what) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  if (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx)) return (sl_rate){0, 0};
  if (!lua_istable(L, idx)) luaL_error(L, "%s must be {maxPoints = n, windowMs = n} or false", what);
  sl_rate r = {100, 1000}; /* v3's defaults for a missing field */
  lua_getfield(L, idx, "maxPoints");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 1) luaL_error(L, "%s.maxPoints must be a number >= 1", what);
    r.max_points = (uint32_t)lua_tonumber(L, -1);
  }
  lua_getfield(L, idx, "windowMs");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 1) luaL_error(L, "%s.windowMs must be a number >= 1", what);
    r.window_ms = (uint32_t)lua_tonumber(L, -1);
  }
  lua_pop(L, 2);
  return r;
}

/* eventRateLimits replaces every per-event limit, as in v3's updateConfig. */
static void set_event_rates(lua_State *L, sl_server *s) {
  if (!lua_istable(L, -1)) luaL_error(L, "stelar.server: option 'eventRateLimits' must be a table");
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "stelar.server: eventRateLimits keys must be event names");
    lua_pushfstring(L, "eventRateLimits.%s", lua_tostring(L, -2));
    sl_options_check_rate(L, -2, lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  sl_limits_free_event_rates(s);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    sl_limits_set_event_rate(s, lua_tostring(L, -2), sl_options_check_rate(L, -1, "eventRateLimits"));
    lua_pop(L, 1);
  }
}

static void check_kept(lua_State *L, const struct option *o) {
  int t = lua_type(L, -1);
  switch (o->type) {
  case OPT_LOGGER:
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      sl_log_set_level(SL_LOG_OFF);
    } else if (t == LUA_TSTRING) {
      int level = sl_log_parse_level(lua_tostring(L, -1));
      if (level < 0)
        luaL_error(L, "stelar.server: option 'logger' must be debug, info, warn, error or false");
      sl_log_set_level((sl_log_level)level);
    } else if (t != LUA_TBOOLEAN) {
      bad_type(L, o, "a level name or false");
    }
    break;
  case OPT_TABLE_OFF:
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) break;
    /* fall through */
  case OPT_TABLE:
    if (t != LUA_TTABLE) bad_type(L, o, "a table");
    break;
  case OPT_FUNCTION:
    if (t != LUA_TFUNCTION) bad_type(L, o, "a function");
    break;
  case OPT_BOOL:
    if (t != LUA_TBOOLEAN) bad_type(L, o, "a boolean");
    break;
  default: break;
  }
}

/* "cert\nkey\nca" of the tls table on top of the stack: how a reload tells
 * an unchanged tls option from a changed one. */
static void push_tls_files(lua_State *L) {
  static const char *const names[3] = {"cert", "key", "ca"};
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, -1 - i, names[i]);
    if (!lua_isstring(L, -1)) lua_pop(L, 1), lua_pushliteral(L, "");
  }
  lua_pushfstring(L, "%s\n%s\n%s", lua_tostring(L, -3), lua_tostring(L, -2), lua_tostring(L, -1));
  lua_replace(L, -4);
  lua_pop(L, 2);
}

/* The files are read now, so a bad certificate stops the start-up. */
static void set_tls(lua_State *L, sl_server *s) {
  if (!lua_istable(L, -1)) luaL_error(L, "stelar.server: option 'tls' must be {cert = path, key = path}");
  const char *paths[3];
  static const char *const names[3] = {"cert", "key", "ca"};
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, -1 - i, names[i]);
    paths[i] = lua_tostring(L, -1);
    if (i < 2 && lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "stelar.server: option 'tls.%s' must be a path", names[i]);
  }
  char err[512];
  sl_tls_ctx *t = sl_tls_ctx_new(paths[0], paths[1], paths[2], err, sizeof err);
  lua_pop(L, 3);
  if (!t) luaL_error(L, "stelar.server: %s", err);
  sl_tls_ctx_free(s->tls);
  s->tls = t;
  push_tls_files(L);
  free(s->cfg.tls_files);
  s->cfg.tls_files = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* The cluster table, checked whole before anything is kept. */
static sl_cluster_config check_cluster(lua_State *L) {
  sl_cluster_config c = {.node_timeout = 5000};
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return c;
  if (!lua_istable(L, -1)) luaL_error(L, "stelar.server: option 'cluster' must be {redis = url, ...} or false");
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "nodeTimeout") == 0) {
      double v = lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER || v < 300 || v > 86400000 || v != (double)(long long)v)
        luaL_error(L, "stelar.server: option 'cluster.nodeTimeout' must be whole ms from 300 to 86400000");
      c.node_timeout = (uint32_t)v;
      continue;
    }
    if (strcmp(k, "redis") != 0 && strcmp(k, "prefix") != 0 && strcmp(k, "nodeId") != 0)
      luaL_error(L, "stelar.server: unknown option 'cluster.%s'", k);
    size_t len;
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (!v || len == 0 || len > 64 || memchr(v, '\0', len))
      luaL_error(L, "stelar.server: option 'cluster.%s' must be a string of 1 to 64 bytes", k);
    const char *bad = k[0] == 'r' ? sl_cluster_check_url(v) : NULL;
    if (bad) luaL_error(L, "stelar.server: option 'cluster.redis' (%s): %s", v, bad);
  }
  lua_getfield(L, -1, "redis");
  if (lua_isnil(L, -1)) luaL_error(L, "stelar.server: option 'cluster' needs redis = \"redis://host:port\"");
  lua_pop(L, 1);
  static const char *const names[3] = {"redis", "prefix", "nodeId"};
  char **fields[3] = {&c.redis_url, &c.prefix, &c.node_id};
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, -1, names[i]);
    *fields[i] = lua_isnil(L, -1) ? NULL : strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return c;
}

static void free_cluster_config(sl_cluster_config *c) {
  free(c->redis_url);
  free(c->prefix);
  free(c->node_id);
}

static void set_cluster(lua_State *L, sl_config *cfg) {
  sl_cluster_config c = check_cluster(L);
  free_cluster_config(&cfg->cluster);
  cfg->cluster = c;
}

static bool same_string(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool cluster_unchanged(lua_State *L, const sl_config *cfg) {
  sl_cluster_config c = check_cluster(L);
  const sl_cluster_config *now = &cfg->cluster;
  bool same = same_string(c.redis_url, now->redis_url) && same_string(c.prefix, now->prefix) &&
              same_string(c.node_id, now->node_id) && c.node_timeout == now->node_timeout;
  free_cluster_config(&c);
  return same;
}

static void apply_one(lua_State *L, const struct option *o, sl_server *s) {
  sl_config *cfg = &s->cfg;
  if (o->type == OPT_EVENT_RATES) return set_event_rates(L, s);
  if (o->type == OPT_TLS) return set_tls(L, s);
  if (o->type == OPT_CLUSTER) return set_cluster(L, cfg);
  if (o->offset == LATER) return check_kept(L, o);
  char *field = (char *)cfg + o->offset;
  bool off = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
  switch (o->type) {
  case OPT_U32: *(uint32_t *)field = (uint32_t)check_number(L, o, 4294967295.0); break;
  case OPT_SIZE: *(size_t *)field = (size_t)check_number(L, o, 4294967295.0); break;
  case OPT_PORT: *(int *)field = (int)check_number(L, o, 65535); break;
  case OPT_PORT_OFF: *(int *)field = off ? -1 : (int)check_number(L, o, 65535); break;
  case OPT_BOOL:
    if (lua_type(L, -1) != LUA_TBOOLEAN) bad_type(L, o, "a boolean");
    *(bool *)field = lua_toboolean(L, -1);
    break;
  case OPT_PATH_OFF:
    if (off) {
      free(*(char **)field);
      *(char **)field = NULL;
      break;
    }
    /* fall through */
  case OPT_PATH: set_string(L, (char **)field, o, true); break;
  case OPT_STRING: set_string(L, (char **)field, o, false); break;
  case OPT_STRINGS: set_strings(L, cfg, o); break;
  case OPT_BUSY_POLL: *(uint32_t *)field = check_busy_poll(L, o, off); break;
  case OPT_RATE: {
    char what[64];
    snprintf(what, sizeof what, "stelar.server: option '%s'", o->name);
    *(sl_rate *)field = sl_options_check_rate(L, -1, what);
    break;
  }
  default: break;
  }
}

static bool known_hook(const char *name) {
  for (size_t i = 0; i < SL_HOOKS; i++)
    if (strcmp(sl_hook_names[i], name) == 0) return true;
  return false;
}

/* hooks: merged into the handler set's (on top), as v3's updateConfig does. */
static void merge_hooks(lua_State *L, int idx) {
  lua_getfield(L, idx, "hooks");
  if (!lua_istable(L, -1)) return lua_pop(L, 1);
  lua_getfield(L, -2, "hooks");
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isfunction(L, -1))
      luaL_error(L, "stelar.server: hooks must map hook names to functions");
    if (!known_hook(lua_tostring(L, -2))) luaL_error(L, "stelar.server: unknown hook '%s'", lua_tostring(L, -2));
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_settable(L, -4);
  }
  lua_pop(L, 2);
}

/* Listeners are bound once: these need a restart to change. */
static bool restart_only(const struct option *o) {
  return strcmp(o->name, "port") == 0 || strcmp(o->name, "tcpPort") == 0 || strcmp(o->name, "host") == 0 ||
         strcmp(o->name, "tls") == 0 || strcmp(o->name, "cluster") == 0;
}

/* Whether a restart-only option (value on top of the stack) says what the
 * running server has: a reloaded script repeats its options. */
static bool restart_option_unchanged(lua_State *L, const struct option *o, const sl_server *s) {
  switch (o->type) {
  case OPT_CLUSTER: return cluster_unchanged(L, &s->cfg);
  case OPT_STRING: /* host, the one string among them */
    return lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), s->cfg.host) == 0;
  case OPT_TLS: {
    if (!lua_istable(L, -1) || !s->cfg.tls_files) return false;
    push_tls_files(L);
    bool same = strcmp(lua_tostring(L, -1), s->cfg.tls_files) == 0;
    lua_pop(L, 1);
    return same;
  }
  default: {
    int now = o->type == OPT_PORT ? s->cfg.port : s->cfg.tcp_port;
    bool off = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    return (off ? -1 : lua_isnumber(L, -1) ? (int)lua_tonumber(L, -1) : -3) == now;
  }
  }
}

static void warn_restart(lua_State *L, const struct option *o, const sl_server *s) {
  if (!restart_option_unchanged(L, o, s)) sl_warn("option '%s' changed: it takes effect after a restart", o->name);
}

void sl_options_apply(lua_State *L, int idx, sl_server *s) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "stelar.server: option names must be strings");
    const char *name = lua_tostring(L, -2);
    const struct option *o = find_option(name);
    if (!o) luaL_error(L, "stelar.server: unknown option '%s'", name);
    if (s->started && restart_only(o)) warn_restart(L, o, s);
    else apply_one(L, o, s);
    lua_pop(L, 1);
  }
  if (s->cfg.heartbeat_timeout && s->cfg.heartbeat_timeout < s->cfg.heartbeat_interval)
    luaL_error(L, "stelar.server: heartbeatTimeout must not be shorter than heartbeatInterval");
  /* Hooks and Lua-valued options live with the handlers, so that a reload
   * replaces them together. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
  merge_hooks(L, idx);
  lua_getfield(L, -1, "options");
  static const char *const scripted[] = {"generateClientId", "customHealthHandler", "customRateLimiter",
                                         "customIPTracker"};
  for (size_t i = 0; i < sizeof scripted / sizeof *scripted; i++) {
    lua_getfield(L, idx, scripted[i]);
    if (!lua_isnil(L, -1)) lua_setfield(L, -2, scripted[i]); /* updateConfig keeps what it omits */
    else lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* Pushes the keys of m as an array. */
static void push_names(lua_State *L, const sl_map *m) {
  lua_createtable(L, (int)m->count, 0);
  int n = 0;
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->slots[i].key) continue;
    lua_pushlstring(L, m->slots[i].key, m->slots[i].key_len);
    lua_rawseti(L, -2, ++n);
  }
}

static int read_only(lua_State *L) { return luaL_error(L, "getConfig() returns a read-only snapshot"); }

void sl_options_push(lua_State *L, const sl_server *s) {
  const sl_config *c = &s->cfg;
  lua_newuserdata(L, 0); /* a proxy: reads go to the table, writes fail */
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, 24);
#define NUM(name, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, name))
#define BOOL(name, v) (lua_pushboolean(L, (v)), lua_setfield(L, -2, name))
  NUM("port", s->started ? s->bound_port : c->port);
  if (c->tcp_port >= 0) NUM("tcpPort", c->tcp_port);
  else BOOL("tcpPort", 0);
  lua_pushstring(L, c->host), lua_setfield(L, -2, "host");
  lua_pushstring(L, c->namespace_path), lua_setfield(L, -2, "namespace");
  NUM("maxConnections", c->max_connections);
  NUM("maxConnectionsPerIP", c->max_connections_per_ip);
  NUM("maxRooms", c->max_rooms);
  NUM("maxRoomsPerClient", c->max_rooms_per_client);
  NUM("maxPayloadSize", c->max_payload_size);
  NUM("maxFrameSize", c->max_frame_size);
  NUM("maxBufferedBytes", c->max_buffered_bytes);
  NUM("heartbeatInterval", c->heartbeat_interval);
  NUM("heartbeatTimeout", c->heartbeat_timeout);
  NUM("connectTimeout", c->connect_timeout);
  NUM("shutdownTimeout", c->shutdown_timeout);
  if (c->busy_poll_us == SL_BUSYPOLL_AUTO) lua_pushliteral(L, "auto"), lua_setfield(L, -2, "busyPoll");
  else NUM("busyPoll", c->busy_poll_us);
  BOOL("gracefulShutdown", c->graceful_shutdown);
  BOOL("compression", c->compression);
  if (c->health_endpoint) lua_pushstring(L, c->health_endpoint);
  else lua_pushboolean(L, 0);
  lua_setfield(L, -2, "healthEndpoint");
  lua_createtable(L, (int)c->n_allowed_origins, 0);
  for (size_t i = 0; i < c->n_allowed_origins; i++) {
    lua_pushstring(L, c->allowed_origins[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "allowedOrigins");
  BOOL("trustProxy", c->trust_proxy);
  BOOL("tls", s->tls != NULL);
  if (c->cluster.redis_url) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, c->cluster.redis_url), lua_setfield(L, -2, "redis");
    lua_pushstring(L, c->cluster.prefix ? c->cluster.prefix : "stelar"), lua_setfield(L, -2, "prefix");
    if (c->cluster.node_id) lua_pushstring(L, c->cluster.node_id), lua_setfield(L, -2, "nodeId");
    NUM("nodeTimeout", c->cluster.node_timeout);
  } else {
    lua_pushboolean(L, 0);
  }
  lua_setfield(L, -2, "cluster");
  if (sl_rate_enabled(&c->rate_limit)) {
    lua_createtable(L, 0, 2);
    NUM("maxPoints", c->rate_limit.max_points);
    NUM("windowMs", c->rate_limit.window_ms);
  } else {
    lua_pushboolean(L, 0);
  }
  lua_setfield(L, -2, "rateLimit");
  push_names(L, &s->event_rates);
  lua_setfield(L, -2, "eventRateLimits");
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handlers_ref);
  lua_getfield(L, -1, "options");
  static const struct { const char *option, *flag; } custom[] = {
      {"customRateLimiter", "hasCustomRateLimiter"},
      {"customIPTracker", "hasCustomIPTracker"},
      {"generateClientId", "hasCustomClientIdGenerator"},
      {"customHealthHandler", "hasCustomHealthHandler"},
  };
  for (size_t i = 0; i < sizeof custom / sizeof *custom; i++) {
    lua_getfield(L, -1, custom[i].option);
    bool has = !lua_isnil(L, -1);
    lua_pop(L, 1);
    lua_pushboolean(L, has);
    lua_setfield(L, -4, custom[i].flag);
  }
  lua_getfield(L, -2, "hooks");
  lua_newtable(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, ++n);
  }
  lua_setfield(L, -5, "hooks");
  lua_pop(L, 3);
#undef NUM
#undef BOOL
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, read_only);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
}
