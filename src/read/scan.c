#include "read/scan.h"

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

int scan_tables(scan_t *scan, const table_source_t *source,
                cgroup_usage_t *const cgroups[2], char *err, size_t err_size) {
  table_pool_t pool = {scan->low, scan->high, &scan->reserved, &scan->tw_reuse};
  if (scan->opts->measure_tcp) {
    destinations_t *table =
        scan->opts->top_destinations > 0 ? &scan->destinations : NULL;
    int rc = table_scan(source, IPPROTO_TCP, &pool, table, cgroups[0],
                        &scan->snapshots[0], err, err_size);
    if (rc != 0)
      return rc;
  }
  if (scan->opts->measure_udp)
    return table_scan(source, IPPROTO_UDP, &pool, NULL, cgroups[1],
                      &scan->snapshots[1], err, err_size);
  return 0;
}

const snapshot_t *scan_snapshot(const scan_t *scan, size_t index) {
  return &scan->snapshots[index];
}

destinations_t *scan_destinations(scan_t *scan) { return &scan->destinations; }
