/* Which keys of a count table (destinations_t: destinations, NAT keys) a
 * top-N series reports at a read: the busiest N, then once more each key
 * reported last time that is no longer among them, with its current count
 * (0 when gone), so write_prometheus does not serve its old value until
 * it goes stale. */
#ifndef EPHEMERAL_PORTS_TOP_REPORT_H
#define EPHEMERAL_PORTS_TOP_REPORT_H

#include "count/destinations.h"

#include <stddef.h>

/* The keys a target reported at its last read, for one series. */
typedef struct {
  destination_key_t *keys; /* room for the series' N, allocated at need */
  size_t count;
} reported_keys_t;

typedef struct {
  destination_key_t key;
  unsigned count;     /* the entry's held */
  unsigned time_wait; /* its TIME_WAIT sockets */
} top_entry_t;

/* Fills out (room for 2 n) and returns how many entries it holds; top is
 * scratch of n entries. reported becomes this read's top. When memory for
 * it runs out, nothing is remembered: drop-outs go unreported once. */
size_t top_report(destinations_t *table, destination_t *top, size_t n,
                  reported_keys_t *reported, top_entry_t *out);

void reported_keys_free(reported_keys_t *reported);

#endif
