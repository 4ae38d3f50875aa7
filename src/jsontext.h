/* JSON text without a tree: skip a value (validating it), walk an object's
 * members as spans, unescape a string. Pure functions over buffers; the
 * envelope scanner and the JSON->Lua decoder are built on them. */
#ifndef SL_JSONTEXT_H
#define SL_JSONTEXT_H

#include <stddef.h>

#include "buf.h"

#define SL_JSON_MAX_NESTING 200

const char *sl_jt_ws_run(const char *p, const char *end);
/* p moved past any JSON whitespace. Inline with a one-byte test first:
 * the scanners ask before every token, and compact JSON has none. */
static inline const char *sl_jt_ws(const char *p, const char *end) {
  return p < end && (unsigned char)*p > ' ' ? p : sl_jt_ws_run(p, end);
}
/* The end of the well-formed value starting at p (no leading space), or
 * NULL when it is malformed or holds more than SL_JSON_MAX_NESTING levels
 * of arrays and objects (depth counts from 0 at the top). */
const char *sl_jt_skip(const char *p, const char *end, int depth);
/* The end of the string starting at p (at its quote); appends its
 * unescaped UTF-8 to out when out is not NULL. NULL when malformed. */
const char *sl_jt_string(const char *p, const char *end, sl_sbuf *out);
/* The end of the run at p of bytes that a JSON string holds as they are
 * (no quote, backslash or control character). */
const char *sl_jt_plain_run(const char *p, const char *end);
/* The same run, also ending at the first byte of 0x80 and up. */
const char *sl_jt_plain_ascii_run(const char *p, const char *end);
/* The end of the number at p; NULL when malformed. */
const char *sl_jt_number(const char *p, const char *end);

/* Calls fn for each member of the object text[0..n) (leading and trailing
 * space allowed): key is the raw text between its quotes, value the span of
 * its value. Returns 0; -1 when the text is not one well-formed object
 * (fn may have been called for members before the fault). */
typedef void (*sl_jt_member_fn)(void *ud, const char *key, size_t key_len, const char *value, size_t value_len);
int sl_jt_object(const char *text, size_t n, sl_jt_member_fn fn, void *ud);

/* The same walk with fn reading each value itself (value is where it starts,
 * end the text's end): fn returns where the value ends, or NULL when it is
 * malformed, which ends the walk with -1. */
typedef const char *(*sl_jt_value_fn)(void *ud, const char *key, size_t key_len, const char *value, const char *end);
int sl_jt_object_values(const char *text, size_t n, sl_jt_value_fn fn, void *ud);

/* True when text[0..n) is exactly one well-formed JSON value. */
int sl_jt_valid(const char *text, size_t n);

#endif
