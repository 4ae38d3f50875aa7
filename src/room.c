#include "room.h"

#include <stdlib.h>
#include <string.h>

sl_room *sl_rooms_find(const sl_rooms *rooms, const char *name, size_t len) {
  return sl_map_get(&rooms->by_name, name, len);
}

static int grow(void **items, uint32_t *cap, size_t size) {
  uint32_t n = *cap ? *cap * 2 : 4;
  void *p = realloc(*items, n * size);
  if (!p) return -1;
  *items = p;
  *cap = n;
  return 0;
}

static sl_room *room_new(sl_rooms *rooms, const char *name, size_t len) {
  sl_room *room = calloc(1, sizeof *room);
  if (!room || !(room->name = malloc(len + 1))) goto fail;
  memcpy(room->name, name, len);
  room->name[len] = '\0';
  room->name_len = len;
  if (sl_map_put(&rooms->by_name, room->name, len, room) != 0) goto fail;
  return room;
fail:
  if (room) free(room->name);
  free(room);
  return NULL;
}

static void room_free(sl_rooms *rooms, sl_room *room) {
  sl_map_remove(&rooms->by_name, room->name, room->name_len);
  free(room->members);
  free(room->name);
  free(room);
}

static int set_find(const sl_room_set *set, const sl_room *room) {
  for (uint32_t i = 0; i < set->count; i++)
    if (set->items[i].room == room) return (int)i;
  return -1;
}

bool sl_room_set_has(const sl_room_set *set, const char *name, size_t len) {
  for (uint32_t i = 0; i < set->count; i++) {
    const sl_room *r = set->items[i].room;
    if (r->name_len == len && memcmp(r->name, name, len) == 0) return true;
  }
  return false;
}

sl_room_result sl_rooms_join(sl_rooms *rooms, sl_room_set *set, const char *name, size_t len) {
  sl_room *room = sl_rooms_find(rooms, name, len);
  if (room && set_find(set, room) >= 0) return SL_ROOM_ALREADY;
  if (set->count == set->cap && grow((void **)&set->items, &set->cap, sizeof *set->items))
    return SL_ROOM_NOMEM;
  int created = !room;
  if (created && !(room = room_new(rooms, name, len))) return SL_ROOM_NOMEM;
  if (room->count == room->cap && grow((void **)&room->members, &room->cap, sizeof *room->members)) {
    if (created) room_free(rooms, room);
    return SL_ROOM_NOMEM;
  }
  set->items[set->count++] = (sl_membership){room, room->count};
  room->members[room->count++] = set;
  return SL_ROOM_DONE;
}

/* Removes membership i of set; the room's last member takes the freed slot. */
static void leave_at(sl_rooms *rooms, sl_room_set *set, uint32_t i) {
  sl_room *room = set->items[i].room;
  uint32_t at = set->items[i].index;
  sl_room_set *moved = room->members[--room->count];
  if (moved != set) {
    room->members[at] = moved;
    moved->items[set_find(moved, room)].index = at;
  }
  set->items[i] = set->items[--set->count];
  if (room->count == 0) room_free(rooms, room);
}

sl_room_result sl_rooms_leave(sl_rooms *rooms, sl_room_set *set, const char *name, size_t len) {
  sl_room *room = sl_rooms_find(rooms, name, len);
  int i = room ? set_find(set, room) : -1;
  if (i < 0) return SL_ROOM_ALREADY;
  leave_at(rooms, set, (uint32_t)i);
  return SL_ROOM_DONE;
}

void sl_rooms_leave_all(sl_rooms *rooms, sl_room_set *set) {
  while (set->count) leave_at(rooms, set, set->count - 1);
  free(set->items);
  set->items = NULL;
  set->cap = 0;
}

void sl_rooms_free(sl_rooms *rooms) {
  sl_map *m = &rooms->by_name;
  while (m->count) {
    sl_room *room = NULL;
    for (size_t i = 0; !room; i++) room = m->slots[i].key ? m->slots[i].value : NULL;
    /* A room always has a member; it is freed as its last one leaves. */
    for (uint32_t left = room->count; left > 0; left--) {
      sl_room_set *s = room->members[left - 1];
      leave_at(rooms, s, (uint32_t)set_find(s, room));
    }
  }
  sl_map_free(m);
}
