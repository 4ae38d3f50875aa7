/* JSON <-> Lua, both ways in one pass over the text: decoding builds Lua
 * values as it reads (no intermediate tree); encoding writes text straight
 * from Lua values into a byte buffer.
 *
 *   object <-> table with string keys     array <-> sequence (marked)
 *   null   <-> stelar.null (NULL lightuserdata)
 *   number <-> number (integral values up to 2^53 print without exponent) */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <lua.h>

#include "buf.h"

#include "jsontext.h"

/* The most levels of nesting read or written, the same both ways so that
 * whatever a client may send can be sent back. */
#define SL_JSON_MAX_DEPTH SL_JSON_MAX_NESTING

/* Lua registry key of the metatable that marks a table as a JSON array. */
#define SL_JSON_ARRAY_MT "stelar.array"
/* Marks the table on top of the stack as a JSON array (so that an empty
 * one encodes as []). */
void sl_json_mark_array(lua_State *L);

/* Parses text and pushes its Lua form; on invalid JSON (or more than
 * SL_JSON_MAX_DEPTH levels of nesting) pushes nothing and returns -1. Arrays get the
 * array metatable so that an empty one encodes back as []. */
int sl_json_decode(lua_State *L, const char *text, size_t len);
/* Decodes the one value that starts at p (no leading space) inside a
 * larger text ending at end, at nesting depth `depth` of that text, and
 * pushes it; returns where the value ends, or NULL (nothing pushed) when it
 * is malformed. */
const char *sl_json_decode_value(lua_State *L, const char *p, const char *end, int depth);

/* Appends the JSON text of the value at idx to out. Returns 0, or -1 with a
 * message in err (a cycle, a function, invalid UTF-8, NaN, out of memory);
 * the caller raises it once its own buffers are released. */
int sl_json_encode(lua_State *L, int idx, sl_sbuf *out, char *err, size_t errlen);

/* Appends s as a quoted, escaped JSON string. */
int sl_json_put_string(sl_sbuf *out, const char *s, size_t len);

#endif
