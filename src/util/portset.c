#include "util/portset.h"

#include <string.h>

/* Bits lo..63 of a word (lo < 64). */
static uint64_t mask_from(unsigned lo) { return ~UINT64_C(0) << lo; }

/* Bits 0..hi of a word (hi < 64). */
static uint64_t mask_to(unsigned hi) {
  return hi == 63 ? ~UINT64_C(0) : (UINT64_C(1) << (hi + 1)) - 1;
}

void portset_clear(portset_t *set) {
  memset(set->words, 0, sizeof(set->words));
}

void portset_add_range(portset_t *set, uint16_t first, uint16_t last) {
  if (first > last)
    return;
  unsigned first_word = first >> 6;
  unsigned last_word = last >> 6;
  if (first_word == last_word) {
    set->words[first_word] |= mask_from(first & 63) & mask_to(last & 63);
    return;
  }
  set->words[first_word] |= mask_from(first & 63);
  for (unsigned w = first_word + 1; w < last_word; w++)
    set->words[w] = ~UINT64_C(0);
  set->words[last_word] |= mask_to(last & 63);
}

unsigned portset_count_range(const portset_t *set, uint16_t first,
                             uint16_t last) {
  if (first > last)
    return 0;
  unsigned first_word = first >> 6;
  unsigned last_word = last >> 6;
  if (first_word == last_word)
    return (unsigned)__builtin_popcountll(
        set->words[first_word] & mask_from(first & 63) & mask_to(last & 63));
  unsigned count = (unsigned)__builtin_popcountll(set->words[first_word] &
                                                  mask_from(first & 63));
  for (unsigned w = first_word + 1; w < last_word; w++)
    count += (unsigned)__builtin_popcountll(set->words[w]);
  count += (unsigned)__builtin_popcountll(set->words[last_word] &
                                          mask_to(last & 63));
  return count;
}

unsigned portset_count(const portset_t *set) {
  return portset_count_range(set, 0, PORTSET_PORTS - 1);
}

int portset_next(const portset_t *set, unsigned from) {
  if (from >= PORTSET_PORTS)
    return -1;
  unsigned w = from >> 6;
  uint64_t bits = set->words[w] & mask_from(from & 63);
  while (bits == 0) {
    if (++w == PORTSET_WORDS)
      return -1;
    bits = set->words[w];
  }
  return (int)(w * 64 + (unsigned)__builtin_ctzll(bits));
}
