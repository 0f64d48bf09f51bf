/* What one read covers: collectd's own network namespace and, as
 * configured, others (targets); for each, its sources, their retries and
 * fallback, turned into a reading ready to dispatch. Knows no collectd:
 * the glue hands in the options and two callbacks. */
#ifndef EPHEMERAL_PORTS_COLLECTOR_H
#define EPHEMERAL_PORTS_COLLECTOR_H

#include "count/destinations.h"
#include "count/tcp_states.h"
#include "count/top_report.h"
#include "read/options.h"
#include "util/portset.h"

#include <stdbool.h>
#include <stddef.h>

/* A group that holds pool ports: its name as dispatched (the path under
 * the cgroup2 root with '/' as collectd escapes it, or a pseudo group). */
typedef struct {
  char name[128];
  unsigned used; /* distinct pool ports its sockets hold */
} cgroup_reading_t;

typedef struct {
  unsigned used;
  unsigned total;
  const portset_t *report; /* the instance_open ports to report */
  const portset_t *open;   /* which of them are open (1); the rest 0 */
  /* The busiest TopCgroups groups, then drop-outs (count 0 when off). */
  const cgroup_reading_t *cgroups;
  size_t cgroups_count;
} protocol_reading_t;

/* The NAT part of a reading (ReportNat). */
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

/* One target's reading; valid during the callback only. */
typedef struct {
  const char *netns; /* NULL: collectd's own namespace; else its name */
  bool ok;           /* false: scrape_success 0 and nothing else */
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

/* Severities as syslog's, which collectd's are too. */
typedef struct {
  void (*reading)(const target_reading_t *reading, void *ctx);
  void (*log)(int severity, const char *message, void *ctx);
  void *ctx;
  /* The longest namespace name the reading may carry (the glue puts it
   * after "<Hostname>:" in a 127-byte host). */
  size_t netns_name_max;
} collector_ops_t;

typedef struct collector collector_t;

/* Checks the options (each NetNamespace path must name a network
 * namespace now) and prepares the reads: opens the own namespace's
 * netlink socket, or says why it reads /proc instead. Returns NULL with a
 * message in err. */
collector_t *collector_new(const options_t *opts, const collector_ops_t *ops,
                           char *err, size_t err_size);

/* One read: a reading for each target, collectd's own namespace first. */
void collector_read(collector_t *collector);

void collector_free(collector_t *collector);

#endif
