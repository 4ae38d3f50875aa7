#include "map.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *p, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

static size_t find_slot(const sl_map *m, const char *key, size_t len, uint32_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const sl_map_entry *e = &m->slots[i];
    if (!e->key) return i;
    if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) return i;
  }
}

void *sl_map_get(const sl_map *m, const char *key, size_t len) {
  if (!m->count) return NULL;
  const sl_map_entry *e = &m->slots[find_slot(m, key, len, hash_bytes(key, len))];
  return e->key ? e->value : NULL;
}

static int grow(sl_map *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  sl_map_entry *slots = calloc(cap, sizeof *slots);
  if (!slots) return -1;
  sl_map old = *m;
  m->slots = slots;
  m->cap = cap;
  for (size_t i = 0; i < old.cap; i++) {
    sl_map_entry *e = &old.slots[i];
    if (e->key) m->slots[find_slot(m, e->key, e->key_len, e->hash)] = *e;
  }
  free(old.slots);
  return 0;
}

int sl_map_put(sl_map *m, const char *key, size_t len, void *value) {
  if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0) return -1;
  uint32_t h = hash_bytes(key, len);
  sl_map_entry *e = &m->slots[find_slot(m, key, len, h)];
  if (!e->key) m->count++;
  *e = (sl_map_entry){key, len, h, value};
  return 0;
}

void *sl_map_remove(sl_map *m, const char *key, size_t len) {
  if (!m->count) return NULL;
  size_t mask = m->cap - 1;
  size_t i = find_slot(m, key, len, hash_bytes(key, len));
  if (!m->slots[i].key) return NULL;
  void *value = m->slots[i].value;
  /* Shift later members of the probe run back so lookups never stop early. */
  for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
    size_t home = m->slots[j].hash & mask;
    int between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
    if (!between) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i].key = NULL;
  m->count--;
  return value;
}

void sl_map_free(sl_map *m) {
  free(m->slots);
  *m = (sl_map){0};
}
