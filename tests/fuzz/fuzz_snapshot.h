/* What the proc_net and sock_diag targets share: the snapshot that a real
 * read feeds each parsed socket into, and the plugin's use of it afterwards
 * (the busiest destinations, formatted as labels), with the snapshot's
 * invariants checked so that a wrong count is a finding too. */
#ifndef EPHEMERAL_PORTS_FUZZ_SNAPSHOT_H
#define EPHEMERAL_PORTS_FUZZ_SNAPSHOT_H

#include "count/destinations.h"
#include "count/snapshot.h"
#include "util/portset.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

/* The kernel's default range, one reserved port inside it. */
#define FUZZ_PORT_LOW 32768
#define FUZZ_PORT_HIGH 60999
#define FUZZ_RESERVED_PORT 50000
#define FUZZ_TOP_DESTINATIONS 10

typedef struct {
  snapshot_t snapshot;
  destinations_t destinations;
  cgroup_usage_t cgroups;
  unsigned stop_after;      /* the visitor fails at this socket; 0: never */
  unsigned seen;            /* sockets visited in this walk */
  inet_socket_visit_fn add; /* the snapshot's visitor being fuzzed */
} fuzz_read_t;

/* Starts one walk of the text with the snapshot's visitor add. */
static void fuzz_walk_begin(fuzz_read_t *read, inet_socket_visit_fn add) {
  read->add = add;
  read->seen = 0;
}

static int fuzz_visitor_failed(const fuzz_read_t *read) {
  return read->stop_after != 0 && read->seen >= read->stop_after;
}

/* The snapshot's visitor, failing as it does when the destination table
 * cannot grow, at the socket the input picks: the parsers must then stop
 * visiting and return that failure. ctx is the fuzz_read_t. */
static int fuzz_visit(const inet_socket_t *sock, void *ctx) {
  fuzz_read_t *read = ctx;
  if (fuzz_visitor_failed(read))
    abort(); /* visited after the visitor said stop */
  if (read->stop_after != 0 && ++read->seen == read->stop_after)
    return -ENOMEM;
  return read->add(sock, &read->snapshot);
}

static void fuzz_read_begin(fuzz_read_t *read, int protocol,
                            unsigned stop_after) {
  read->stop_after = stop_after;
  static portset_t reserved;
  portset_clear(&reserved);
  portset_add(&reserved, FUZZ_RESERVED_PORT);
  destinations_init(&read->destinations);
  cgroup_usage_init(&read->cgroups);
  /* As the plugin: destinations are counted for TCP only. */
  snapshot_begin(
      &read->snapshot, protocol, FUZZ_PORT_LOW, FUZZ_PORT_HIGH, &reserved,
      protocol == IPPROTO_TCP ? &read->destinations : NULL, &read->cgroups);
}

static void fuzz_check_subset(const portset_t *part, const portset_t *whole) {
  for (unsigned i = 0; i < PORTSET_WORDS; i++)
    if (part->words[i] & ~whole->words[i])
      abort();
}

/* Checks the invariants, reports the top destinations as the plugin does,
 * and frees the read. */
static void fuzz_read_end(fuzz_read_t *read) {
  snapshot_end(&read->snapshot);
  const snapshot_t *snap = &read->snapshot;
  fuzz_check_subset(&snap->used, &snap->pool);
  fuzz_check_subset(&snap->exclusive, &snap->used);
  if (snap->total != FUZZ_PORT_HIGH - FUZZ_PORT_LOW + 1 - 1 ||
      snapshot_used(snap) > snap->total)
    abort();

  destination_t top[FUZZ_TOP_DESTINATIONS];
  size_t count =
      destinations_top(&read->destinations, top, FUZZ_TOP_DESTINATIONS);
  if (count > FUZZ_TOP_DESTINATIONS)
    abort();
  for (size_t i = 0; i < count; i++) {
    char remote[INET6_ADDRSTRLEN + 8], local[INET6_ADDRSTRLEN];
    if (destination_format_remote(&top[i].key, remote, sizeof(remote)) != 0 ||
        destination_format_local(&top[i].key, local, sizeof(local)) != 0)
      abort(); /* the plugin's label buffers are this size */
    if (top[i].held == 0 || (i > 0 && top[i].held > top[i - 1].held))
      abort();
  }
  destinations_free(&read->destinations);

  /* A group holds pool ports only, at most every one of them. */
  cgroup_count_t busiest[FUZZ_TOP_DESTINATIONS];
  size_t groups =
      cgroup_usage_top(&read->cgroups, busiest, FUZZ_TOP_DESTINATIONS);
  for (size_t i = 0; i < groups; i++)
    if (busiest[i].ports == 0 || busiest[i].ports > snapshot_used(snap))
      abort();
  cgroup_usage_free(&read->cgroups);
}

#endif
