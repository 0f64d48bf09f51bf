/* Who holds the ports: the per-cgroup part of a target's reading. The
 * scan counts pool ports per owner's cgroup id into the part's tables;
 * the part names the ids (one cache for every namespace: the names are
 * the host's), folds those that cannot be named into "unknown", and makes
 * the busiest TopCgroups groups, then the drop-outs, the reading. */
#ifndef EPHEMERAL_PORTS_CGROUP_PART_H
#define EPHEMERAL_PORTS_CGROUP_PART_H

#include "count/cgroup_usage.h"
#include "kernel/cgroup_names.h"
#include "read/options.h"
#include "util/log_sink.h"

#include <stddef.h>
#include <stdint.h>

/* A group that holds pool ports: its name as dispatched (the path under
 * the cgroup2 root with '/' as collectd escapes it, or a pseudo group). */
typedef struct {
  char name[CGROUP_NAME_SIZE];
  unsigned used; /* distinct pool ports its sockets hold */
} cgroup_reading_t;

/* A protocol's groups: the busiest, then the drop-outs (count 0 when the
 * part is off). */
typedef struct {
  const cgroup_reading_t *groups;
  size_t count;
} cgroup_readings_t;

/* What a target remembers between reads for this part: the groups it
 * reported last, under the names they had, per protocol. The part's own:
 * a target only holds it. */
typedef struct {
  uint64_t id;
  char name[CGROUP_NAME_SIZE];
} reported_cgroup_t;

typedef struct {
  reported_cgroup_t *groups; /* room for TopCgroups, allocated at need */
  size_t count;
} reported_cgroups_t;

typedef struct {
  reported_cgroups_t protocols[2]; /* TCP, UDP */
} cgroup_memory_t;

void cgroup_memory_forget(cgroup_memory_t *memory);

typedef struct cgroup_part cgroup_part_t;

/* With TopCgroups 0 the part is off. Reading through source (what the read
 * uses after any fallback), it says once at INFO when owners cannot be
 * known. Returns NULL when memory runs out. */
cgroup_part_t *cgroup_part_new(const options_t *opts, source_kind_t source,
                               const log_sink_t *log);
void cgroup_part_free(cgroup_part_t *part);

/* The table a protocol's scan counts into (0 TCP, 1 UDP), NULL when off. */
cgroup_usage_t *cgroup_part_usage(cgroup_part_t *part, size_t index);

/* Once per read, before the first target's scan. */
void cgroup_part_begin_read(cgroup_part_t *part);

/* Names the protocol's groups of the last scan and returns the busiest,
 * then the drop-outs against memory, which becomes this read's. */
cgroup_readings_t cgroup_part_reading(cgroup_part_t *part,
                                      cgroup_memory_t *memory, size_t index);

#endif
