/* A target's reading: what the glue dispatches for one namespace, made
 * from its scan and its parts' readings; and what a target remembers
 * between reads for it (the ports open last time, the destinations
 * reported). */
#ifndef EPHEMERAL_PORTS_READING_H
#define EPHEMERAL_PORTS_READING_H

#include "count/tcp_states.h"
#include "count/top_report.h"
#include "read/cgroup_part.h"
#include "read/nat_part.h"
#include "read/options.h"
#include "read/scan.h"
#include "util/log_sink.h"
#include "util/port_memory.h"
#include "util/portset.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  unsigned used;
  unsigned total;
  const portset_t *report; /* the instance_open ports to report */
  const portset_t *open;   /* which of them are open (1); the rest 0 */
  /* The busiest TopCgroups groups, then drop-outs (count 0 when off). */
  const cgroup_reading_t *cgroups;
  size_t cgroups_count;
} protocol_reading_t;

/* One target's reading; valid during the callback only. */
typedef struct {
  const char *netns; /* NULL: collectd's own namespace; else its name */
  /* The reads from one reading of this namespace to its next: its values
   * stand for that many read intervals (NetNamespaceInterval). */
  unsigned interval_reads;
  bool ok;                       /* false: scrape_success 0 and nothing else */
  const protocol_reading_t *tcp; /* NULL when not measured */
  const protocol_reading_t *udp;
  /* The busiest destinations (TCP), then those reported last time that
   * are no longer among them, with their current value. */
  const top_entry_t *destinations; /* count: ports that connect() to the
                                      destination cannot use */
  size_t destinations_count;
  const unsigned *states;   /* TCP_STATE_NAMES counts, or NULL */
  const nat_reading_t *nat; /* NULL without ReportNat */
} target_reading_t;

/* What a target remembers between reads for its reading. The reading's
 * own: a target only holds it. */
typedef struct {
  port_memory_t previously_open[2]; /* TCP, UDP */
  reported_keys_t destinations;
} reading_memory_t;

void reading_memory_forget(reading_memory_t *memory);

typedef struct reading reading_t;

/* Returns NULL when memory runs out. */
reading_t *reading_new(const options_t *opts, const log_sink_t *log);
void reading_free(reading_t *reading);

/* The reading of a target: from the last scan when ok, else scrape_success
 * 0 only; with the groups of each protocol (cgroup_part_reading) and the
 * NAT part (NULL without ReportNat). memory becomes this read's. Valid
 * until the next call. */
const target_reading_t *reading_make(reading_t *reading,
                                     reading_memory_t *memory, scan_t *scan,
                                     const char *netns, bool ok,
                                     const cgroup_readings_t cgroups[2],
                                     const nat_reading_t *nat);

#endif
