#include "count/destinations.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define INITIAL_CAPACITY 64

_Static_assert(sizeof(destination_key_t) == 36, "destination_key_t is padded");

void destinations_init(destinations_t *table) {
  memset(table, 0, sizeof(*table));
  table->generation = 1;
}

void destinations_free(destinations_t *table) {
  free(table->slots);
  destinations_init(table);
}

void destinations_clear(destinations_t *table) {
  table->count = 0;
  if (++table->generation == 0) {
    /* After 2^32 reads an old entry could look current again. */
    if (table->slots != NULL)
      memset(table->slots, 0, table->capacity * sizeof(*table->slots));
    table->generation = 1;
  }
}

static bool is_v4_mapped(const uint8_t addr[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(addr, prefix, sizeof(prefix)) == 0;
}

/* The fields before the addresses, written as one word: hash_key reads
 * them as one, and a read of several smaller writes still in the store
 * buffer waits for them to reach the cache. */
typedef struct {
  uint16_t remote_port;
  uint8_t family;
  uint8_t protocol;
} key_head_t;

_Static_assert(offsetof(destination_key_t, local_addr) == sizeof(key_head_t),
               "key_head_t is destination_key_t's head");

/* An IPv6 socket to ::ffff:a.b.c.d shares the kernel's IPv4 4-tuple space,
 * so it is keyed as the IPv4 destination it is. */
void destination_key_of(const inet_socket_t *sock, destination_key_t *key) {
  memset(key, 0, sizeof(*key));
  const uint8_t *local = sock->local_addr;
  const uint8_t *remote = sock->remote_addr;
  key_head_t head = {sock->remote_port, sock->family, 0};
  if (sock->family == AF_INET6 && is_v4_mapped(remote) && is_v4_mapped(local)) {
    head.family = AF_INET;
    local += 12;
    remote += 12;
  }
  memcpy(key, &head, sizeof(head));
  /* Constant sizes: a copy of a variable length is a loop. */
  if (head.family == AF_INET) {
    memcpy(key->local_addr, local, 4);
    memcpy(key->remote_addr, remote, 4);
  } else {
    memcpy(key->local_addr, local, 16);
    memcpy(key->remote_addr, remote, 16);
  }
}

/* The key's 32-bit words: it was just written in pieces of 32 bits and
 * less, and a wider read of pieces still in the store buffer waits for
 * them to reach the cache. */
static uint64_t word_at(const destination_key_t *key, size_t i) {
  uint32_t word;
  memcpy(&word, (const unsigned char *)key + 4 * i, sizeof(word));
  return word;
}

/* Each word times a constant of its own, summed, then mixed: a read
 * hashes one key per connected socket, and independent multiplies cost a
 * fraction of the chain of dependent ones used before (measured with
 * tests/bench/replay: 35 -> 30 ns per socket for the whole count). */
static size_t hash_key(const destination_key_t *key) {
  /* Words 0, 1 and 5: the head and the first four bytes of each address. */
  uint64_t hash = word_at(key, 0) * 0x9e3779b97f4a7c15ULL +
                  word_at(key, 1) * 0xff51afd7ed558ccdULL +
                  word_at(key, 5) * 0x52dce729da3ed0b5ULL;
  /* The rest of an IPv4 key is zero (destination_key_of, nat_key_of): it
   * would add nothing. */
  if (key->family != AF_INET)
    hash += word_at(key, 2) * 0xc4ceb9fe1a85ec53ULL +
            word_at(key, 3) * 0x87c37b91114253d5ULL +
            word_at(key, 4) * 0x4cf5ad432745937fULL +
            word_at(key, 6) * 0x2545f4914f6cdd1dULL +
            word_at(key, 7) * 0xd6e8feb86659fd93ULL +
            word_at(key, 8) * 0xa0761d6478bd642fULL;
  hash ^= hash >> 32;
  hash *= 0xff51afd7ed558ccdULL;
  return (size_t)(hash ^ (hash >> 29));
}

static destination_t *find_slot(destination_t *slots, size_t capacity,
                                uint32_t generation,
                                const destination_key_t *key) {
  size_t mask = capacity - 1;
  for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
    destination_t *slot = &slots[i];
    if (slot->generation != generation ||
        memcmp(&slot->key, key, sizeof(*key)) == 0)
      return slot;
  }
}

static int grow(destinations_t *table) {
  size_t capacity = table->capacity ? table->capacity * 2 : INITIAL_CAPACITY;
  destination_t *slots = calloc(capacity, sizeof(*slots));
  if (slots == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < table->capacity; i++) {
    const destination_t *old = &table->slots[i];
    if (old->generation == table->generation)
      *find_slot(slots, capacity, table->generation, &old->key) = *old;
  }
  free(table->slots);
  table->slots = slots;
  table->capacity = capacity;
  return 0;
}

int destinations_add(destinations_t *table, const destination_key_t *key,
                     unsigned flags) {
  /* Load factor at most 1/2 keeps probe runs short. */
  if ((table->count + 1) * 2 > table->capacity && grow(table) != 0)
    return -ENOMEM;
  destination_t *slot =
      find_slot(table->slots, table->capacity, table->generation, key);
  if (slot->generation != table->generation) {
    *slot = (destination_t){.key = *key, .generation = table->generation};
    table->count++;
  }
  slot->held++;
  slot->time_wait += (flags & DESTINATION_TIME_WAIT) != 0;
  slot->taken_over += (flags & DESTINATION_TAKEN_OVER) != 0;
  slot->taken_over_if_timestamps +=
      (flags & DESTINATION_TAKEN_OVER_IF_TIMESTAMPS) != 0;
  slot->timestamps |=
      flags & (DESTINATION_WITH_TIMESTAMPS | DESTINATION_WITHOUT_TIMESTAMPS);
  return 0;
}

void destinations_settle(destinations_t *table) {
  for (size_t i = 0; i < table->capacity; i++) {
    destination_t *entry = &table->slots[i];
    if (entry->generation != table->generation)
      continue;
    uint32_t taken = entry->taken_over;
    if (entry->timestamps == DESTINATION_WITH_TIMESTAMPS)
      taken += entry->taken_over_if_timestamps;
    entry->held -= taken;
  }
}

static destination_t *lookup(const destinations_t *table,
                             const destination_key_t *key) {
  if (table->capacity == 0)
    return NULL;
  destination_t *slot =
      find_slot(table->slots, table->capacity, table->generation, key);
  return slot->generation == table->generation ? slot : NULL;
}

const destination_t *destinations_find(const destinations_t *table,
                                       const destination_key_t *key) {
  return lookup(table, key);
}

static bool busier(const destination_t *a, const destination_t *b) {
  if (a->held != b->held)
    return a->held > b->held;
  return memcmp(&a->key, &b->key, sizeof(a->key)) < 0;
}

/* Insertion into a sorted array of n: O(destinations x log-ish n) for the
 * small n (TopDestinations) this is used with. */
size_t destinations_top(destinations_t *table, destination_t *top, size_t n) {
  size_t found = 0;
  if (n == 0)
    return 0;
  for (size_t i = 0; i < table->capacity; i++) {
    const destination_t *entry = &table->slots[i];
    if (entry->generation != table->generation)
      continue;
    if (found == n && !busier(entry, &top[n - 1]))
      continue;
    size_t at = found < n ? found++ : n - 1;
    while (at > 0 && busier(entry, &top[at - 1])) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = *entry;
  }
  for (size_t i = 0; i < found; i++) {
    lookup(table, &top[i].key)->in_top = true;
    top[i].in_top = true;
  }
  return found;
}

static int format_address(const destination_key_t *key, const uint8_t *addr,
                          char *buf, size_t size) {
  int family = key->family == AF_INET ? AF_INET : AF_INET6;
  return inet_ntop(family, addr, buf, (socklen_t)size) != NULL ? 0 : -1;
}

int destination_format_local(const destination_key_t *key, char *buf,
                             size_t size) {
  return format_address(key, key->local_addr, buf, size);
}

int destination_format_remote(const destination_key_t *key, char *buf,
                              size_t size) {
  char addr[INET6_ADDRSTRLEN];
  if (format_address(key, key->remote_addr, addr, sizeof(addr)) != 0)
    return -1;
  const char *format = key->family == AF_INET ? "%s:%u" : "[%s]:%u";
  int len = snprintf(buf, size, format, addr, (unsigned)key->remote_port);
  return len >= 0 && (size_t)len < size ? 0 : -1;
}
