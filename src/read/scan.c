#include "read/scan.h"

#include "kernel/sockstat.h"
#include "kernel/sysctl_ports.h"
#include "kernel/sysctl_tcp.h"

#include <netinet/in.h>
#include <stdlib.h>

struct scan {
  const options_t *opts;
  uint16_t low, high;
  portset_t reserved;
  tcp_reuse_sysctls_t tw_reuse;
  snapshot_t snapshots[2]; /* TCP, UDP */
  destinations_t destinations;
  sockstat_t counts;
  bool counts_known; /* read for the scan to come */
  bool dumps_bound_only;
  unsigned long spared;
};

scan_t *scan_new(const options_t *opts) {
  scan_t *scan = calloc(1, sizeof(*scan));
  if (scan == NULL)
    return NULL;
  scan->opts = opts;
  destinations_init(&scan->destinations);
  return scan;
}

void scan_free(scan_t *scan) {
  if (scan == NULL)
    return;
  destinations_free(&scan->destinations);
  free(scan);
}

int scan_read_pool(scan_t *scan, char *err, size_t err_size) {
  const char *proc_root = scan->opts->proc_root;
  int rc =
      sysctl_read_port_range(proc_root, &scan->low, &scan->high, err, err_size);
  if (rc == 0)
    rc = sysctl_read_reserved_ports(proc_root, &scan->reserved, err, err_size);
  if (rc == 0 && scan->opts->measure_tcp)
    rc = sysctl_read_tcp_reuse(proc_root, &scan->tw_reuse, err, err_size);
  return rc;
}

/* Whether empty counts could spare any dump of this scan: UDP's always,
 * TCP's only where the dump would not list bound-only sockets. Where
 * none could, the counts are not read at all (the default: TCP alone, over
 * netlink, on Linux 6.8+). */
static bool counts_can_spare(const scan_t *scan, bool over_netlink) {
  return scan->opts->measure_udp ||
         (scan->opts->measure_tcp &&
          (!over_netlink || !scan->dumps_bound_only));
}

void scan_read_counts(scan_t *scan, const char *net_root, bool over_netlink) {
  char err[256];
  scan->counts_known =
      counts_can_spare(scan, over_netlink) &&
      sockstat_read(net_root, &scan->counts, err, sizeof(err)) == 0;
}

void scan_set_dumps_bound_only(scan_t *scan, bool dumps) {
  scan->dumps_bound_only = dumps;
}

unsigned long scan_dumps_spared(const scan_t *scan) { return scan->spared; }

/* An empty count means an empty dump, but for TCP sockets that are only
 * bound: uncounted, and dumped over netlink from Linux 6.8. */
static bool is_empty(const scan_t *scan, const table_source_t *source,
                     int protocol) {
  if (!scan->counts_known)
    return false;
  if (protocol == IPPROTO_UDP)
    return sockstat_udp_empty(&scan->counts);
  return sockstat_tcp_empty(&scan->counts) &&
         (source->diag == NULL || !scan->dumps_bound_only);
}

static int scan_protocol(scan_t *scan, const table_source_t *source,
                         int protocol, const table_pool_t *pool,
                         destinations_t *destinations, cgroup_usage_t *cgroups,
                         char *err, size_t err_size) {
  snapshot_t *snap = &scan->snapshots[protocol == IPPROTO_TCP ? 0 : 1];
  if (is_empty(scan, source, protocol)) {
    table_scan_empty(protocol, pool, destinations, cgroups, snap);
    scan->spared++;
    return 0;
  }
  return table_scan(source, protocol, pool, destinations, cgroups, snap, err,
                    err_size);
}

int scan_tables(scan_t *scan, const table_source_t *source,
                cgroup_usage_t *const cgroups[2], char *err, size_t err_size) {
  table_pool_t pool = {scan->low, scan->high, &scan->reserved, &scan->tw_reuse};
  int rc = 0;
  if (scan->opts->measure_tcp) {
    destinations_t *table =
        scan->opts->top_destinations > 0 ? &scan->destinations : NULL;
    rc = scan_protocol(scan, source, IPPROTO_TCP, &pool, table, cgroups[0], err,
                       err_size);
  }
  if (rc == 0 && scan->opts->measure_udp)
    rc = scan_protocol(scan, source, IPPROTO_UDP, &pool, NULL, cgroups[1], err,
                       err_size);
  /* The counts were this namespace's, at this moment. */
  scan->counts_known = false;
  return rc;
}

const snapshot_t *scan_snapshot(const scan_t *scan, size_t index) {
  return &scan->snapshots[index];
}

destinations_t *scan_destinations(scan_t *scan) { return &scan->destinations; }
