/* A hash map from byte-string keys to pointers, open addressing with
 * linear probing and backward-shift deletion (no tombstones). The map does
 * not own keys: each key points into the value it maps to, which outlives
 * its entry. */
#ifndef SL_MAP_H
#define SL_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *key;
  size_t key_len;
  uint32_t hash;
  void *value;
} sl_map_entry;

typedef struct {
  sl_map_entry *slots;
  size_t cap; /* a power of two, or 0 before the first insert */
  size_t count;
} sl_map;

void *sl_map_get(const sl_map *m, const char *key, size_t len);
/* Inserts or replaces; returns 0, or -1 when memory runs out. */
int sl_map_put(sl_map *m, const char *key, size_t len, void *value);
/* Returns the removed value, or NULL if the key was absent. */
void *sl_map_remove(sl_map *m, const char *key, size_t len);
void sl_map_free(sl_map *m);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ...
 * The map must not change during the loop. */

#endif
