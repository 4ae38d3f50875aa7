/* libFuzzer target: JSON text to Lua values (sl_json_decode), and back to
 * text (sl_json_encode) whenever it decodes. Neither may crash, leak or
 * leave the Lua stack unbalanced; the two texts are not compared (numbers
 * and key order legitimately differ). The Lua state is the server's in
 * miniature: LuaJIT with the array metatable registered under
 * "stelar.array", as sl_lua_open_stelar does. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) abort();                                                                          \
  } while (0)

static lua_State *L;

static lua_State *state(void) {
  if (L) return L;
  L = luaL_newstate();
  CHECK(L);
  luaL_openlibs(L);
  luaL_newmetatable(L, SL_JSON_ARRAY_MT);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pop(L, 1);
  return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state();
  /* An exact-size copy: a read past the text is caught by ASan. */
  char *text = malloc(size ? size : 1);
  CHECK(text);
  if (size) memcpy(text, data, size);

  int top = lua_gettop(L);
  if (sl_json_decode(L, text, size) == 0) {
    CHECK(lua_gettop(L) == top + 1);
    sl_sbuf out = {0};
    char err[256];
    if (sl_json_encode(L, -1, &out, err, sizeof err) != 0) CHECK(err[0] != '\0');
    CHECK(lua_gettop(L) == top + 1);
    sl_sbuf_free(&out);
  } else {
    CHECK(lua_gettop(L) == top);
  }
  lua_settop(L, top);
  free(text);
  return 0;
}
