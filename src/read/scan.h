/* A target's scan: its pool (the port range and reserved-port sysctls)
 * and its protocols' socket tables, into one snapshot per protocol and,
 * for TCP, the destination table. One scan serves every target in turn,
 * so nothing here grows with the number of namespaces. */
#ifndef EPHEMERAL_PORTS_SCAN_H
#define EPHEMERAL_PORTS_SCAN_H

#include "count/cgroup_usage.h"
#include "count/destinations.h"
#include "count/snapshot.h"
#include "read/options.h"
#include "read/table_scan.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct scan scan_t;

/* Returns NULL when memory runs out. */
scan_t *scan_new(const options_t *opts);
void scan_free(scan_t *scan);

/* Reads the pool's sysctls, and for TCP the TIME_WAIT reuse ones, under
 * the options' ProcRoot, in the calling thread's namespace. Returns 0 or a
 * negative errno with a message in err. */
int scan_read_pool(scan_t *scan, char *err, size_t err_size);

/* Reads the namespace's socket counts (sockstat) under net_root, in the
 * calling thread's namespace, when they could spare a dump of the next
 * scan_tables (over_netlink: whether that reads sock_diag): it dumps no
 * protocol whose table they show empty, where that is exact (README:
 * "Kernel facts"). Counts that cannot be read leave every dump as it was. */
void scan_read_counts(scan_t *scan, const char *net_root, bool over_netlink);

/* Whether sock_diag dumps TCP sockets that are only bound (Linux 6.8+):
 * sockstat does not count them, so then an empty count spares no TCP dump
 * over netlink. */
void scan_set_dumps_bound_only(scan_t *scan, bool dumps);

/* How many protocol dumps the empty counts spared, since scan_new. */
unsigned long scan_dumps_spared(const scan_t *scan);

/* Scans the measured protocols over the pool last read; cgroups holds the
 * TCP and UDP tables that count pool ports per owner (NULL: not counted).
 * Returns 0 or a negative errno with a message in err (-ENOMEM: a table
 * could not grow). */
int scan_tables(scan_t *scan, const table_source_t *source,
                cgroup_usage_t *const cgroups[2], char *err, size_t err_size);

/* The snapshot of protocol index (0 TCP, 1 UDP) of the last scan. */
const snapshot_t *scan_snapshot(const scan_t *scan, size_t index);

/* The last scan's TCP destinations (empty with TopDestinations 0). */
destinations_t *scan_destinations(scan_t *scan);

#endif
