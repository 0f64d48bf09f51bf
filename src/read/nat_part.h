/* The NAT part of a target's read (ReportNat): conntrack's
 * source-translated flows and its failure counters, over a ctnetlink
 * socket of the target's namespace, and the part's reading. */
#ifndef EPHEMERAL_PORTS_NAT_PART_H
#define EPHEMERAL_PORTS_NAT_PART_H

#include "count/top_report.h"
#include "kernel/conntrack.h"
#include "read/options.h"
#include "util/log_sink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  bool ok; /* false: scrape_success 0 for the part, nothing else */
  /* The busiest NAT keys (destination_key_t with its protocol set; see
   * nat_format_destination), then drop-outs; count: translated flows. */
  const top_entry_t *entries;
  size_t count;
  unsigned total; /* NatPortRange's size */
  uint64_t insert_failed;
  uint64_t drop;
} nat_reading_t;

/* What a target remembers between reads for this part. The part's own: a
 * target only holds it. */
typedef struct {
  reported_keys_t reported; /* the keys reported last */
  bool failing;             /* the part's ERROR is out */
} nat_memory_t;

/* Forgets the keys reported (the ERROR's state stays). */
void nat_memory_forget(nat_memory_t *memory);

typedef struct nat_part nat_part_t;

/* Returns NULL when memory runs out. */
nat_part_t *nat_part_new(const options_t *opts, const log_sink_t *log);
void nat_part_free(nat_part_t *part);

/* Starts a target: its part counts as not read (the namespace could not be
 * entered: its scrape_success says so, with no ERROR of its own) until
 * read or opened. */
void nat_part_begin_target(nat_part_t *part);

/* Opens a ctnetlink socket in the caller's namespace: NULL when it cannot
 * (the part has failed then) or when ReportNat is off. Also reads that
 * namespace's nf_conntrack_count: an empty table is not dumped (its
 * statistics are still read). */
conntrack_t *nat_part_open(nat_part_t *part);

/* Reads the part over ct (NULL: nothing, its outcome stays). */
void nat_part_read(nat_part_t *part, conntrack_t *ct);

/* collectd's own namespace, over a socket the part keeps across reads. */
void nat_part_read_own(nat_part_t *part);

/* One ERROR when the part starts failing, one INFO when it recovers;
 * netns: the target's name, NULL for collectd's own namespace. */
void nat_part_note(nat_part_t *part, nat_memory_t *memory, const char *netns);

void nat_part_reading(nat_part_t *part, nat_memory_t *memory,
                      nat_reading_t *out);

#endif
