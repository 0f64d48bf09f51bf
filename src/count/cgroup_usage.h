/* Pool usage per cgroup in one read: the distinct pool ports that each
 * group's sockets hold (a port held by several sockets of one group counts
 * once for it; a port held by two groups counts for each).
 *
 * A port is owned, in a 65,536-entry table, by the first group that adds
 * it in a read: a socket adds in O(1) with one probe of a small hash table
 * of groups (skipped for a run of one group's sockets) and one look at its
 * port's entry. A second group on a port (rare but real: connect() reuses
 * a port for other destinations) goes to a hash set of (group, port)
 * pairs. Like destinations_t, the tables grow, are reused across reads
 * and forget a read in O(1) by a generation number: no allocation per
 * socket, none per read once warm, and memory that grows with the groups
 * and the ports they share, not with the sockets (the port table is 64
 * KiB, and an 8 KiB bitmap says which of its entries this read has set;
 * 50,000 sockets over 1,000 groups made 3,286 pairs). One table can serve
 * several protocols or namespaces in turn, cleared between them. */
#ifndef EPHEMERAL_PORTS_CGROUP_USAGE_H
#define EPHEMERAL_PORTS_CGROUP_USAGE_H

#include "util/portset.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t id;    /* the cgroup's id, or a pseudo group's (cgroup_pseudo.h) */
  uint32_t ports; /* distinct pool ports its sockets hold */
  bool in_top;    /* chosen by the last cgroup_usage_top */
} cgroup_count_t;

/* The fields are the implementation's; use the functions. */
typedef struct {
  cgroup_count_t *groups; /* this read's groups in the order first added */
  bool *folded;           /* per group: cgroup_usage_fold moved its ports */
  size_t count;
  size_t groups_capacity;
  struct cgroup_usage_slot *slots; /* id -> index into groups */
  size_t slots_capacity;           /* a power of two, or 0 */
  struct cgroup_usage_pair *pairs; /* (group, port) beyond ports' owner */
  size_t pairs_capacity;           /* a power of two, or 0 */
  size_t pairs_count;
  uint8_t *owners;    /* per port: the group that first added it */
  portset_t *claimed; /* the ports whose owner entry is of this read */
  /* The group of the last add (when has_last): a dump's sockets of one
   * group often come in runs. */
  uint64_t last_id;
  size_t last_index;
  bool has_last;
  portset_t *held; /* cgroup_usage_fold's union */
  uint32_t generation;
} cgroup_usage_t;

void cgroup_usage_init(cgroup_usage_t *usage);
void cgroup_usage_free(cgroup_usage_t *usage);

/* Starts a read: forgets every group and port in O(1). */
void cgroup_usage_clear(cgroup_usage_t *usage);

/* Counts port for group id, once per (id, port) in a read. Returns 0, or
 * -ENOMEM when a table could not grow (nothing counted). */
int cgroup_usage_add(cgroup_usage_t *usage, uint64_t id, uint16_t port);

/* This read's groups, in the order they were first added: how many, and
 * the i-th (NULL from count on). */
size_t cgroup_usage_count(const cgroup_usage_t *usage);
const cgroup_count_t *cgroup_usage_at(const cgroup_usage_t *usage, size_t i);

/* The group id in this read, or NULL when it added no port. */
const cgroup_count_t *cgroup_usage_find(const cgroup_usage_t *usage,
                                        uint64_t id);

/* Moves the ports of the n groups ids into group into (created if need
 * be), which then counts the union of its own and theirs; they count 0.
 * For groups that turned out unresolvable, after a read's last add: ids
 * not in this read and into itself are skipped. O(65,536 + pairs) when a
 * group moves. Returns 0, or -ENOMEM (nothing moved). */
int cgroup_usage_fold(cgroup_usage_t *usage, const uint64_t *ids, size_t n,
                      uint64_t into);

/* Copies the n busiest groups into top, busiest first, ties by ascending
 * id, marks them in_top (and only them: an earlier call's marks go), and
 * returns how many there were (at most n).
 * Groups that count 0 ports (folded away) are never chosen. */
size_t cgroup_usage_top(cgroup_usage_t *usage, cgroup_count_t *top, size_t n);

#endif
