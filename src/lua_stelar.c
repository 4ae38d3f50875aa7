#include "lua_stelar.h"

#include <lauxlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "lua_server.h"
#include "server.h"
#include "timer.h"

static int sl_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)sl_wall_ms());
  return 1;
}

static int sl_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  else luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  sl_json_mark_array(L);
  return 1;
}

static int sl_json_encode_lua(lua_State *L) {
  luaL_checkany(L, 1);
  sl_sbuf out = {0};
  char err[256];
  if (sl_json_encode(L, 1, &out, err, sizeof err) != 0) {
    sl_sbuf_free(&out);
    return luaL_error(L, "%s", err);
  }
  lua_pushlstring(L, out.data, out.len);
  sl_sbuf_free(&out);
  return 1;
}

static int sl_json_decode_lua(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  if (sl_json_decode(L, text, len) != 0) return luaL_error(L, "invalid JSON");
  return 1;
}

/* stelar.log.<level>(message [, fields]): fields print as key=JSON. */
static int log_at(lua_State *L, sl_log_level level) {
  const char *msg = luaL_checkstring(L, 1);
  if (level < sl_log_get_level()) return 0;
  if (lua_isnoneornil(L, 2)) {
    sl_log(level, "%s", msg);
    return 0;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  sl_sbuf line = {0};
  char err[256];
  sl_sbuf_puts(&line, msg);
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    sl_sbuf_putc(&line, ' ');
    sl_sbuf_puts(&line, lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
    sl_sbuf_putc(&line, '=');
    if (sl_json_encode(L, -1, &line, err, sizeof err) != 0) sl_sbuf_puts(&line, "?");
    lua_pop(L, 1);
  }
  sl_log(level, "%.*s", (int)line.len, line.data);
  sl_sbuf_free(&line);
  return 0;
}

static int sl_log_debug(lua_State *L) { return log_at(L, SL_LOG_DEBUG); }
static int sl_log_info(lua_State *L) { return log_at(L, SL_LOG_INFO); }
static int sl_log_warn(lua_State *L) { return log_at(L, SL_LOG_WARN); }
static int sl_log_error(lua_State *L) { return log_at(L, SL_LOG_ERROR); }

static int open_module(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "stelar.module");
  return 1;
}

void sl_lua_open_stelar(lua_State *L) {
  luaL_newmetatable(L, SL_JSON_ARRAY_MT);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);

  lua_newtable(L);
  static const luaL_Reg fns[] = {{"now", sl_now}, {"array", sl_array}, {NULL, NULL}};
  luaL_register(L, NULL, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushliteral(L, SL_VERSION);
  lua_setfield(L, -2, "version");
  lua_newtable(L);
  lua_setfield(L, -2, "shared");

  static const luaL_Reg json[] = {{"encode", sl_json_encode_lua}, {"decode", sl_json_decode_lua}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, json);
  lua_setfield(L, -2, "json");
  static const luaL_Reg log[] = {{"debug", sl_log_debug}, {"info", sl_log_info}, {"warn", sl_log_warn},
                                 {"error", sl_log_error}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, log);
  lua_setfield(L, -2, "log");

  sl_lua_open_timer(L);
  sl_lua_open_server(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "stelar.module");

  /* require("stelar") finds it through package.preload. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open_module);
  lua_setfield(L, -2, "stelar");
  lua_pop(L, 2);
}
