/* A set of TCP/UDP port numbers as a 65,536-bit bitmap (8 KiB): adding is
 * O(1), counting is a popcount over a range, memory never grows. */
#ifndef EPHEMERAL_PORTS_PORTSET_H
#define EPHEMERAL_PORTS_PORTSET_H

#include <stdbool.h>
#include <stdint.h>

#define PORTSET_PORTS 65536
#define PORTSET_WORDS (PORTSET_PORTS / 64)

typedef struct {
  uint64_t words[PORTSET_WORDS];
} portset_t;

void portset_clear(portset_t *set);
void portset_add_range(portset_t *set, uint16_t first, uint16_t last);

/* Inline: a read adds and tests ports once or more per socket. */
static inline void portset_add(portset_t *set, uint16_t port) {
  set->words[port >> 6] |= UINT64_C(1) << (port & 63);
}

static inline bool portset_has(const portset_t *set, uint16_t port) {
  return (set->words[port >> 6] >> (port & 63)) & 1;
}

/* Number of ports of set within first..last (inclusive). */
unsigned portset_count_range(const portset_t *set, uint16_t first,
                             uint16_t last);
unsigned portset_count(const portset_t *set);

/* The smallest port >= from that is in set, or -1 when there is none. */
int portset_next(const portset_t *set, unsigned from);

#endif
