/* Rooms: named member sets, created on first join and destroyed when the
 * last member leaves. Join and leave are O(1) in the room's size: each side
 * remembers the other's index (a room holds its members in an array; a
 * member's room set holds {room, index} pairs). */
#ifndef SL_ROOM_H
#define SL_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map.h"

typedef struct sl_room sl_room;
typedef struct sl_room_set sl_room_set;

typedef struct {
  sl_room *room;
  uint32_t index; /* where this member sits in room->members */
} sl_membership;

/* The rooms one client is in; owner is the client (a connection). */
struct sl_room_set {
  void *owner;
  sl_membership *items;
  uint32_t count, cap;
};

struct sl_room {
  char *name;
  size_t name_len;
  sl_room_set **members;
  uint32_t count, cap;
};

typedef struct {
  sl_map by_name; /* name -> sl_room*, keys point at room->name */
} sl_rooms;

typedef enum { SL_ROOM_DONE = 0, SL_ROOM_ALREADY = 1, SL_ROOM_NOMEM = -1 } sl_room_result;

sl_room *sl_rooms_find(const sl_rooms *rooms, const char *name, size_t len);
sl_room_result sl_rooms_join(sl_rooms *rooms, sl_room_set *set, const char *name, size_t len);
/* SL_ROOM_ALREADY here means "was not a member". */
sl_room_result sl_rooms_leave(sl_rooms *rooms, sl_room_set *set, const char *name, size_t len);
void sl_rooms_leave_all(sl_rooms *rooms, sl_room_set *set);
bool sl_room_set_has(const sl_room_set *set, const char *name, size_t len);
static inline size_t sl_rooms_count(const sl_rooms *rooms) { return rooms->by_name.count; }
/* Frees every room; members' sets are left empty. */
void sl_rooms_free(sl_rooms *rooms);

#endif
