/* Unit tests for rooms (room.c): creation on first join, destruction on
 * last leave, and the two-sided index bookkeeping that makes join and leave
 * O(1), checked against a plain model after every operation. */
#include <stdint.h>
#include <stdlib.h>

#include "room.h"
#include "unit.h"

#define MEMBERS 100
#define ROOMS 10

/* Rooms, their would-be members, and the model of who is where. */
typedef struct {
  sl_rooms rooms;
  sl_room_set sets[MEMBERS];
  bool in[MEMBERS][ROOMS];
} fixture;

static fixture fx; /* large: static, reset by fresh_fixture() */

static void fresh_fixture(void) {
  memset(&fx, 0, sizeof fx);
  for (int m = 0; m < MEMBERS; m++) fx.sets[m].owner = &fx.sets[m];
}

static const char *room_name(int r) {
  static const char *const names[ROOMS] = {"room-0", "room-1", "room-2", "room-3", "room-4",
                                           "room-5", "room-6", "room-7", "room-8", "room-9"};
  return names[r];
}

static sl_room_result join(int m, int r) {
  const char *name = room_name(r);
  sl_room_result res = sl_rooms_join(&fx.rooms, &fx.sets[m], name, strlen(name));
  if (res == SL_ROOM_DONE) fx.in[m][r] = true;
  return res;
}

static sl_room_result leave(int m, int r) {
  const char *name = room_name(r);
  sl_room_result res = sl_rooms_leave(&fx.rooms, &fx.sets[m], name, strlen(name));
  if (res == SL_ROOM_DONE) fx.in[m][r] = false;
  return res;
}

/* Deterministic pseudo-random numbers (xorshift32). */
static uint32_t rng_state = 2463534242u;
static uint32_t next_random(uint32_t below) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state % below;
}

/* ---- the invariant ---- */

static int room_of(const sl_room *room) {
  for (int r = 0; r < ROOMS; r++)
    if (room->name_len == strlen(room_name(r)) && memcmp(room->name, room_name(r), room->name_len) == 0) return r;
  return -1;
}

/* Each membership of each set points at a slot of its room that holds the set. */
static const char *set_side_problem(int m) {
  const sl_room_set *set = &fx.sets[m];
  uint32_t expected = 0;
  for (int r = 0; r < ROOMS; r++) expected += fx.in[m][r];
  if (set->count != expected) return "a set holds the wrong number of memberships";
  for (uint32_t k = 0; k < set->count; k++) {
    const sl_membership *ms = &set->items[k];
    int r = room_of(ms->room);
    if (r < 0 || !fx.in[m][r]) return "a set holds a membership the model does not";
    if (ms->index >= ms->room->count) return "a membership index is past the room's end";
    if (ms->room->members[ms->index] != set) return "a membership index does not point back at its set";
  }
  return NULL;
}

/* Each room exists exactly while it has members, and each of its slots
 * holds a set whose membership names that slot. */
static const char *room_side_problem(int r) {
  const char *name = room_name(r);
  const sl_room *room = sl_rooms_find(&fx.rooms, name, strlen(name));
  uint32_t expected = 0;
  for (int m = 0; m < MEMBERS; m++) expected += fx.in[m][r];
  if (!room) return expected ? "a room with members is missing" : NULL;
  if (room->count != expected) return expected ? "a room holds the wrong number of members" : "an empty room lives on";
  for (uint32_t i = 0; i < room->count; i++) {
    const sl_room_set *set = room->members[i];
    uint32_t k = 0;
    while (k < set->count && set->items[k].room != room) k++;
    if (k == set->count) return "a room member does not know it is in the room";
    if (set->items[k].index != i) return "a room slot and its membership index disagree";
  }
  return NULL;
}

/* What is wrong with the bookkeeping, or NULL. */
static const char *bookkeeping_problem(void) {
  const char *problem = NULL;
  size_t live_rooms = 0;
  for (int m = 0; m < MEMBERS && !problem; m++) problem = set_side_problem(m);
  for (int r = 0; r < ROOMS && !problem; r++) {
    problem = room_side_problem(r);
    for (int m = 0; m < MEMBERS; m++)
      if (fx.in[m][r]) {
        live_rooms++;
        break;
      }
  }
  if (!problem && sl_rooms_count(&fx.rooms) != live_rooms) problem = "sl_rooms_count is wrong";
  return problem;
}

static bool bookkeeping_ok_at(const char *file, int line) {
  const char *problem = bookkeeping_problem();
  if (!CHECK_AT(problem == NULL, file, line)) fprintf(stderr, "  %s\n", problem);
  return problem == NULL;
}

#define BOOKKEEPING_OK() bookkeeping_ok_at(__FILE__, __LINE__)

static void release_sets(void) {
  for (int m = 0; m < MEMBERS; m++) sl_rooms_leave_all(&fx.rooms, &fx.sets[m]);
  sl_rooms_free(&fx.rooms);
}

/* ---- tests ---- */

static void test_join_creates_and_last_leave_destroys(void) {
  fresh_fixture();
  CHECK(sl_rooms_find(&fx.rooms, LIT("room-0")) == NULL);
  CHECK_EQ_INT(join(0, 0), SL_ROOM_DONE);
  sl_room *room = sl_rooms_find(&fx.rooms, LIT("room-0"));
  if (!CHECK(room != NULL)) return;
  CHECK_EQ_STR(room->name, "room-0");
  CHECK_EQ_INT(room->count, 1);
  CHECK_EQ_INT(sl_rooms_count(&fx.rooms), 1);
  CHECK(sl_room_set_has(&fx.sets[0], LIT("room-0")));
  CHECK_EQ_INT(join(1, 0), SL_ROOM_DONE);
  CHECK(sl_rooms_find(&fx.rooms, LIT("room-0")) == room); /* the same room, not a new one */
  CHECK_EQ_INT(leave(0, 0), SL_ROOM_DONE);
  CHECK(sl_rooms_find(&fx.rooms, LIT("room-0")) == room);
  CHECK_EQ_INT(leave(1, 0), SL_ROOM_DONE);
  CHECK(sl_rooms_find(&fx.rooms, LIT("room-0")) == NULL);
  CHECK_EQ_INT(sl_rooms_count(&fx.rooms), 0);
  CHECK(!sl_room_set_has(&fx.sets[1], LIT("room-0")));
  BOOKKEEPING_OK();
  release_sets();
}

static void test_join_twice_and_leave_twice(void) {
  fresh_fixture();
  CHECK_EQ_INT(join(3, 1), SL_ROOM_DONE);
  CHECK_EQ_INT(join(3, 1), SL_ROOM_ALREADY);
  CHECK_EQ_INT(sl_rooms_find(&fx.rooms, LIT("room-1"))->count, 1);
  CHECK_EQ_INT(fx.sets[3].count, 1);
  CHECK_EQ_INT(leave(4, 1), SL_ROOM_ALREADY); /* not a member of an existing room */
  CHECK_EQ_INT(leave(3, 2), SL_ROOM_ALREADY); /* a room that does not exist */
  CHECK_EQ_INT(leave(3, 1), SL_ROOM_DONE);
  CHECK_EQ_INT(leave(3, 1), SL_ROOM_ALREADY);
  BOOKKEEPING_OK();
  release_sets();
}

/* Names are bytes with a length: a prefix is another room, and the name
 * need not be NUL-terminated. */
static void test_names_are_exact(void) {
  fresh_fixture();
  sl_room_set *set = &fx.sets[0];
  CHECK_EQ_INT(sl_rooms_join(&fx.rooms, set, LIT("ab")), SL_ROOM_DONE);
  CHECK_EQ_INT(sl_rooms_join(&fx.rooms, set, LIT("a")), SL_ROOM_DONE);
  CHECK_EQ_INT(sl_rooms_join(&fx.rooms, set, "abc", 2), SL_ROOM_ALREADY); /* "ab" */
  CHECK_EQ_INT(sl_rooms_join(&fx.rooms, set, LIT("a\0b")), SL_ROOM_DONE);
  CHECK_EQ_INT(sl_rooms_count(&fx.rooms), 3);
  sl_room *ab = sl_rooms_find(&fx.rooms, LIT("ab"));
  if (CHECK(ab != NULL)) CHECK_MEM(ab->name, ab->name_len + 1, "ab", 3); /* kept with a terminator */
  CHECK(!sl_room_set_has(set, LIT("abc")));
  CHECK(sl_room_set_has(set, LIT("a\0b")));
  sl_rooms_leave_all(&fx.rooms, set);
  CHECK_EQ_INT(sl_rooms_count(&fx.rooms), 0);
  sl_rooms_free(&fx.rooms);
}

/* 100 members in one room leave in a scrambled order; each leave moves the
 * last member into the freed slot, and its index must follow. */
static void test_scrambled_leaves_from_one_room(void) {
  fresh_fixture();
  for (int m = 0; m < MEMBERS; m++) CHECK_EQ_INT(join(m, 0), SL_ROOM_DONE);
  int order[MEMBERS];
  for (int m = 0; m < MEMBERS; m++) order[m] = m;
  for (int i = MEMBERS - 1; i > 0; i--) {
    int j = (int)next_random((uint32_t)i + 1), t = order[i];
    order[i] = order[j], order[j] = t;
  }
  const char *problem = NULL;
  int wrong_results = 0;
  for (int i = 0; i < MEMBERS && !problem; i++) {
    wrong_results += leave(order[i], 0) != SL_ROOM_DONE;
    if ((problem = bookkeeping_problem())) fprintf(stderr, "  after member %d left (leave %d)\n", order[i], i);
  }
  CHECK_EQ_INT(wrong_results, 0);
  if (!CHECK(problem == NULL)) fprintf(stderr, "  %s\n", problem);
  CHECK(sl_rooms_find(&fx.rooms, LIT("room-0")) == NULL);
  release_sets();
}

/* Random joins and leaves over 100 members and 10 rooms, each checked
 * against the model, with the bookkeeping verified after every one. */
static void test_random_joins_and_leaves(void) {
  fresh_fixture();
  int wrong_results = 0, operations = 20000;
  const char *problem = NULL;
  for (int i = 0; i < operations; i++) {
    int m = (int)next_random(MEMBERS), r = (int)next_random(ROOMS);
    bool member = fx.in[m][r];
    sl_room_result res = (i & 1) ? join(m, r) : leave(m, r);
    sl_room_result want = (i & 1) ? (member ? SL_ROOM_ALREADY : SL_ROOM_DONE) : (member ? SL_ROOM_DONE : SL_ROOM_ALREADY);
    if (res != want) wrong_results++;
    if (sl_room_set_has(&fx.sets[m], room_name(r), strlen(room_name(r))) != fx.in[m][r]) wrong_results++;
    if ((problem = bookkeeping_problem())) {
      fprintf(stderr, "  after operation %d\n", i);
      break;
    }
  }
  CHECK_EQ_INT(wrong_results, 0);
  if (!CHECK(problem == NULL)) fprintf(stderr, "  %s\n", problem);
  CHECK(sl_rooms_count(&fx.rooms) > 0); /* the mix left rooms alive to free */
  release_sets();
}

static void test_leave_all(void) {
  fresh_fixture();
  for (int r = 0; r < 5; r++) join(0, r);
  join(1, 0);
  join(1, 2);
  join(2, 2);
  sl_rooms_leave_all(&fx.rooms, &fx.sets[0]);
  for (int r = 0; r < ROOMS; r++) fx.in[0][r] = false;
  CHECK_EQ_INT(fx.sets[0].count, 0);
  CHECK(fx.sets[0].items == NULL);
  CHECK_EQ_INT(fx.sets[0].cap, 0);
  CHECK_EQ_INT(sl_rooms_count(&fx.rooms), 2); /* room-0 and room-2 keep members */
  CHECK(sl_rooms_find(&fx.rooms, LIT("room-1")) == NULL);
  BOOKKEEPING_OK();
  sl_rooms_leave_all(&fx.rooms, &fx.sets[0]); /* again: nothing to do */
  CHECK_EQ_INT(fx.sets[0].count, 0);
  CHECK_EQ_INT(join(0, 1), SL_ROOM_DONE); /* the set is usable afterwards */
  BOOKKEEPING_OK();
  release_sets();
}

/* Freeing the rooms with members in them empties every set and the map;
 * the sets keep their (empty) arrays for their owners to free. */
static void test_free_with_members_left(void) {
  fresh_fixture();
  for (int i = 0; i < 600; i++) join((int)next_random(MEMBERS), (int)next_random(ROOMS));
  CHECK(sl_rooms_count(&fx.rooms) == ROOMS);
  sl_rooms_free(&fx.rooms);
  memset(fx.in, 0, sizeof fx.in);
  CHECK_EQ_INT(sl_rooms_count(&fx.rooms), 0);
  CHECK(fx.rooms.by_name.slots == NULL);
  int nonempty = 0;
  for (int m = 0; m < MEMBERS; m++) nonempty += fx.sets[m].count != 0;
  CHECK_EQ_INT(nonempty, 0);
  CHECK_EQ_INT(join(5, 5), SL_ROOM_DONE); /* the rooms can be used again */
  BOOKKEEPING_OK();
  release_sets();
}

int main(void) {
  test_join_creates_and_last_leave_destroys();
  test_join_twice_and_leave_twice();
  test_names_are_exact();
  test_scrambled_leaves_from_one_room();
  test_random_joins_and_leaves();
  test_leave_all();
  test_free_with_members_left();
  return unit_summary("test_room");
}
