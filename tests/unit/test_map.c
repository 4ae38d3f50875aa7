/* Unit tests for the string hash map (map.c): open addressing with linear
 * probing and backward-shift deletion. Besides lookups, the tests check the
 * structural invariant deletion must keep: every entry is reachable from
 * its home slot without crossing an empty slot. */
#include <stdint.h>
#include <stdlib.h>

#include "map.h"
#include "unit.h"

/* The hash the map stores for a key, read from a one-entry map (the hash
 * function itself is private to map.c). */
static uint32_t hash_of(const char *key, size_t len) {
  sl_map scratch = {0};
  uint32_t h = 0;
  if (sl_map_put(&scratch, key, len, &scratch) == 0)
    for (size_t i = 0; i < scratch.cap; i++)
      if (scratch.slots[i].key) h = scratch.slots[i].hash;
  sl_map_free(&scratch);
  return h;
}

/* What breaks the probe-run invariant, or NULL: every entry's run from its
 * home slot is unbroken, the count matches, and the table is not overfull. */
static const char *structure_problem(const sl_map *m) {
  if (m->cap == 0) return m->count == 0 && m->slots == NULL ? NULL : "an unallocated map with entries";
  if (m->cap & (m->cap - 1)) return "capacity is not a power of two";
  size_t mask = m->cap - 1, occupied = 0;
  for (size_t j = 0; j < m->cap; j++) {
    if (!m->slots[j].key) continue;
    occupied++;
    for (size_t i = m->slots[j].hash & mask; i != j; i = (i + 1) & mask)
      if (!m->slots[i].key) return "an empty slot between an entry and its home";
  }
  if (occupied != m->count) return "count differs from the occupied slots";
  if (m->count * 4 > m->cap * 3) return "more than three quarters full";
  return NULL;
}

static bool structure_ok_at(const sl_map *m, const char *file, int line) {
  const char *problem = structure_problem(m);
  if (!CHECK_AT(problem == NULL, file, line)) fprintf(stderr, "  %s\n", problem);
  return problem == NULL;
}

#define STRUCTURE_OK(m) structure_ok_at((m), __FILE__, __LINE__)

static void test_empty_map(void) {
  sl_map m = {0};
  CHECK(sl_map_get(&m, LIT("x")) == NULL);
  CHECK(sl_map_remove(&m, LIT("x")) == NULL);
  STRUCTURE_OK(&m);
  sl_map_free(&m);
  sl_map_free(&m); /* freeing twice is harmless: the map is zeroed */
  CHECK(m.slots == NULL && m.cap == 0 && m.count == 0);
}

static void test_put_get_replace_remove(void) {
  sl_map m = {0};
  int first, second;
  CHECK_EQ_INT(sl_map_put(&m, LIT("alpha"), &first), 0);
  CHECK(sl_map_get(&m, LIT("alpha")) == &first);
  CHECK(sl_map_get(&m, LIT("beta")) == NULL);
  CHECK_EQ_INT(sl_map_put(&m, LIT("alpha"), &second), 0); /* replaces */
  CHECK_EQ_INT(m.count, 1);
  CHECK(sl_map_get(&m, LIT("alpha")) == &second);
  CHECK(sl_map_remove(&m, LIT("beta")) == NULL);
  CHECK(sl_map_remove(&m, LIT("alpha")) == &second);
  CHECK(sl_map_get(&m, LIT("alpha")) == NULL);
  CHECK(sl_map_remove(&m, LIT("alpha")) == NULL);
  CHECK_EQ_INT(m.count, 0);
  STRUCTURE_OK(&m);
  sl_map_free(&m);
}

/* Keys compare by bytes, not by pointer, and need no terminator. */
static void test_lookup_by_content(void) {
  sl_map m = {0};
  int v;
  char stored[] = "player-7", probe[] = "player-7 and more";
  sl_map_put(&m, stored, 8, &v);
  CHECK(sl_map_get(&m, probe, 8) == &v);
  CHECK(sl_map_get(&m, probe, 9) == NULL);
  CHECK(sl_map_remove(&m, probe, 8) == &v);
  sl_map_free(&m);
}

/* The empty key, prefixes, and keys differing after a NUL are all distinct. */
static void test_prefix_keys(void) {
  static const struct {
    const char *key;
    size_t len;
  } keys[] = {{"", 0}, {"a", 1}, {"ab", 2}, {"abc", 3}, {"a\0", 2}, {"a\0b", 3}, {"a\0c", 3}, {"b", 1}};
  enum { N = sizeof keys / sizeof *keys };
  int values[N];
  sl_map m = {0};
  for (int i = 0; i < N; i++) CHECK_EQ_INT(sl_map_put(&m, keys[i].key, keys[i].len, &values[i]), 0);
  CHECK_EQ_INT(m.count, N);
  for (int i = 0; i < N; i++) CHECK(sl_map_get(&m, keys[i].key, keys[i].len) == &values[i]);
  CHECK(sl_map_remove(&m, "ab", 2) == &values[2]);
  CHECK(sl_map_get(&m, "abc", 3) == &values[3]);
  CHECK(sl_map_get(&m, "a", 1) == &values[1]);
  CHECK(sl_map_remove(&m, "", 0) == &values[0]);
  CHECK(sl_map_get(&m, "a\0c", 3) == &values[6]);
  STRUCTURE_OK(&m);
  sl_map_free(&m);
}

/* Pairs with equal 32-bit FNV-1a hashes, found offline. */
static const char *const colliding[][2] = {
    {"collide-63438", "collide-318226"},
    {"collide-63439", "collide-318227"},
    {"collide-63436", "collide-318228"},
};

static void test_equal_hashes(void) {
  for (size_t p = 0; p < 3; p++) {
    const char *a = colliding[p][0], *b = colliding[p][1];
    if (!CHECK_EQ_INT(hash_of(a, strlen(a)), hash_of(b, strlen(b)))) continue; /* a precondition */
    sl_map m = {0};
    int va, vb;
    sl_map_put(&m, a, strlen(a), &va);
    sl_map_put(&m, b, strlen(b), &vb);
    CHECK(sl_map_get(&m, a, strlen(a)) == &va);
    CHECK(sl_map_get(&m, b, strlen(b)) == &vb);
    CHECK(sl_map_remove(&m, a, strlen(a)) == &va); /* b must shift back into a's slot */
    CHECK(sl_map_get(&m, b, strlen(b)) == &vb);
    CHECK(sl_map_get(&m, a, strlen(a)) == NULL);
    STRUCTURE_OK(&m);
    sl_map_put(&m, a, strlen(a), &va);
    CHECK(sl_map_remove(&m, b, strlen(b)) == &vb);
    CHECK(sl_map_get(&m, a, strlen(a)) == &va);
    sl_map_free(&m);
  }
}

/* ---- a probe run that wraps from the last slot to the first ---- */

#define WRAP_KEYS 7
static char wrap_keys[WRAP_KEYS][16];

/* Finds keys whose home slots in a 16-slot table are 14, 14, 15, 15, 0, 0, 1:
 * inserted in that order they fill slots 14, 15, 0, 1, 2, 3, 4, so the run
 * crosses the end of the table. */
static bool find_wrap_keys(void) {
  static const unsigned homes[WRAP_KEYS] = {14, 14, 15, 15, 0, 0, 1};
  bool taken[WRAP_KEYS] = {0};
  int found = 0;
  for (int n = 0; n < 100000 && found < WRAP_KEYS; n++) {
    char key[16];
    snprintf(key, sizeof key, "w%d", n);
    unsigned home = hash_of(key, strlen(key)) & 15;
    for (int i = 0; i < WRAP_KEYS; i++)
      if (!taken[i] && homes[i] == home) {
        memcpy(wrap_keys[i], key, sizeof key);
        taken[i] = true;
        found++;
        break;
      }
  }
  return found == WRAP_KEYS;
}

static void fill_wrap_map(sl_map *m, int values[WRAP_KEYS]) {
  for (int i = 0; i < WRAP_KEYS; i++) sl_map_put(m, wrap_keys[i], strlen(wrap_keys[i]), &values[i]);
}

static void test_wrap_around_removal(void) {
  if (!CHECK(find_wrap_keys())) return;
  int values[WRAP_KEYS];
  for (int gone = 0; gone < WRAP_KEYS; gone++) {
    sl_map m = {0};
    fill_wrap_map(&m, values);
    if (!CHECK_EQ_INT(m.cap, 16)) break; /* the layout assumes 16 slots */
    CHECK(m.slots[0].key == wrap_keys[2]); /* the run did wrap */
    CHECK(sl_map_remove(&m, wrap_keys[gone], strlen(wrap_keys[gone])) == &values[gone]);
    STRUCTURE_OK(&m);
    for (int i = 0; i < WRAP_KEYS; i++) {
      void *want = i == gone ? NULL : &values[i];
      if (!CHECK(sl_map_get(&m, wrap_keys[i], strlen(wrap_keys[i])) == want))
        fprintf(stderr, "  key %d after removing key %d\n", i, gone);
    }
    sl_map_free(&m);
  }
}

/* Removing every key in turn from the wrapped run, starting from each one. */
static void test_wrap_around_drain(void) {
  if (!find_wrap_keys()) return;
  int values[WRAP_KEYS];
  for (int start = 0; start < WRAP_KEYS; start++) {
    sl_map m = {0};
    fill_wrap_map(&m, values);
    for (int step = 0; step < WRAP_KEYS; step++) {
      int k = (start + step * 3) % WRAP_KEYS; /* 3 is coprime to 7: each key once */
      CHECK(sl_map_remove(&m, wrap_keys[k], strlen(wrap_keys[k])) == &values[k]);
      STRUCTURE_OK(&m);
    }
    CHECK_EQ_INT(m.count, 0);
    sl_map_free(&m);
  }
}

/* ---- many keys ---- */

#define MANY 10000
static char many_keys[MANY][16];
static int many_values[MANY];
static bool many_present[MANY];

/* Deterministic pseudo-random numbers (xorshift32). */
static uint32_t next_random(uint32_t below) {
  static uint32_t state = 88172645u;
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return state % below;
}

static void shuffle(int *order, int n) {
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)next_random((uint32_t)i + 1), t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

/* How many keys are not where many_present says they are. */
static int misplaced_keys(const sl_map *m) {
  int wrong = 0;
  for (int i = 0; i < MANY; i++) {
    void *want = many_present[i] ? &many_values[i] : NULL;
    wrong += sl_map_get(m, many_keys[i], strlen(many_keys[i])) != want;
  }
  return wrong;
}

static void put_all(sl_map *m) {
  for (int i = 0; i < MANY; i++) {
    sl_map_put(m, many_keys[i], strlen(many_keys[i]), &many_values[i]);
    many_present[i] = true;
  }
}

/* Removes the keys in order[0..n), checking the structure after each
 * removal and every key's reachability every few hundred. */
static void remove_in_order(sl_map *m, const int *order, int n) {
  const char *problem = NULL;
  int wrong_values = 0, misplaced = 0;
  for (int r = 0; r < n && !problem && !misplaced; r++) {
    int k = order[r];
    wrong_values += sl_map_remove(m, many_keys[k], strlen(many_keys[k])) != &many_values[k];
    many_present[k] = false;
    problem = structure_problem(m);
    if (r % 250 == 0 || r == n - 1) misplaced = misplaced_keys(m);
    if (problem || misplaced) fprintf(stderr, "  after removal %d (key %d)\n", r, k);
  }
  CHECK_EQ_INT(wrong_values, 0);
  if (!CHECK(problem == NULL)) fprintf(stderr, "  %s\n", problem);
  CHECK_EQ_INT(misplaced, 0);
}

static void test_many_keys_scattered_removal(void) {
  static int order[MANY];
  for (int i = 0; i < MANY; i++) snprintf(many_keys[i], sizeof many_keys[i], "key-%d", i);
  sl_map m = {0};
  put_all(&m);
  CHECK_EQ_INT(m.count, MANY);
  STRUCTURE_OK(&m);
  CHECK_EQ_INT(misplaced_keys(&m), 0);
  shuffle(order, MANY);
  remove_in_order(&m, order, MANY / 2); /* half, then put everything back */
  CHECK_EQ_INT(m.count, MANY - MANY / 2);
  put_all(&m);
  CHECK_EQ_INT(m.count, MANY);
  CHECK_EQ_INT(misplaced_keys(&m), 0);
  shuffle(order, MANY);
  remove_in_order(&m, order, MANY); /* and all of them */
  CHECK_EQ_INT(m.count, 0);
  sl_map_free(&m);
}

int main(void) {
  test_empty_map();
  test_put_get_replace_remove();
  test_lookup_by_content();
  test_prefix_keys();
  test_equal_hashes();
  test_wrap_around_removal();
  test_wrap_around_drain();
  test_many_keys_scattered_removal();
  return unit_summary("test_map");
}
