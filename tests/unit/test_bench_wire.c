/* Unit tests for the load generator's reading of reply stamps (tests/bench/
 * wire.c): json_find_uint looks where the last reply had the key first and
 * searches only when the layout differs, so a stale place must never yield
 * a wrong number. */
#include <stdint.h>

#include "../bench/wire.h"
#include "unit.h"

static const char ws_reply[] = "{\"event\":\"shout\",\"data\":{\"t\":1234567,\"p\":\"xx\"}}";
static const char tcp_reply[] = "{\"t\":89,\"p\":\"xx\"}";

static bool find(const char *body, size_t *hint, uint64_t *value) {
  return json_find_uint((const uint8_t *)body, strlen(body), "\"t\":", 4, hint, value);
}

static void learns_where_the_key_is(void) {
  size_t hint = 0;
  uint64_t v = 0;
  CHECK(find(ws_reply, &hint, &v));
  CHECK_EQ_INT(v, 1234567);
  CHECK_EQ_INT(hint, 25); /* after {"event":"shout","data":{ */
  CHECK(find(ws_reply, &hint, &v)); /* found where the hint says */
  CHECK_EQ_INT(v, 1234567);
}

static void searches_again_when_the_layout_changes(void) {
  size_t hint = 25;
  uint64_t v = 0;
  CHECK(find(tcp_reply, &hint, &v)); /* the hint points past its key */
  CHECK_EQ_INT(v, 89);
  CHECK_EQ_INT(hint, 1);
  static const char shorter[] = "{\"t\"";
  CHECK(!find(shorter, &hint, &v)); /* a hint beyond the end reads nothing */
}

static void refuses_what_is_not_a_number(void) {
  size_t hint = 0;
  uint64_t v = 7;
  CHECK(!find("{\"p\":1}", &hint, &v));
  CHECK(!find("{\"t\":\"1\"}", &hint, &v));
  CHECK(!find("{\"t\":", &hint, &v));
  CHECK_EQ_INT(v, 7);
}

int main(void) {
  learns_where_the_key_is();
  searches_again_when_the_layout_changes();
  refuses_what_is_not_a_number();
  return unit_summary("test_bench_wire");
}
