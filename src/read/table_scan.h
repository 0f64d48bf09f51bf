/* One protocol's socket table of one namespace into a snapshot, from
 * sock_diag or from /proc/net files, a dump that the kernel interrupted
 * started over. Knows no collectd and no namespaces. */
#ifndef EPHEMERAL_PORTS_TABLE_SCAN_H
#define EPHEMERAL_PORTS_TABLE_SCAN_H

#include "count/snapshot.h"
#include "kernel/sock_diag.h"
#include "kernel/sysctl_tcp.h"

#include <stddef.h>

/* Attempts of one protocol's scan when the kernel keeps interrupting it. */
#define TABLE_SCAN_ATTEMPTS 3

/* Where the table is read: diag when not NULL, else the /proc/net files
 * under net_root ("<ProcRoot>", or "<ProcRoot>/thread-self" inside another
 * namespace: /proc/net follows the process's namespace, not the thread's). */
typedef struct {
  sock_diag_t *diag;
  const char *net_root;
} table_source_t;

/* What a namespace's sysctls say a scan covers: the pool (low..high minus
 * reserved) and which TIME_WAIT ports connect() takes over. */
typedef struct {
  uint16_t low, high;
  const portset_t *reserved;
  const tcp_reuse_sysctls_t *tw_reuse;
} table_pool_t;

/* Fills snap for protocol (IPPROTO_TCP or IPPROTO_UDP) over the pool;
 * destinations (TCP) and cgroups, each may be NULL, are filled too. With
 * destinations under tcp_tw_reuse 1 the dump asks for tcp_info, which
 * tells the peers' timestamps. Returns 0, or a negative errno with a
 * message in err (-ENOMEM: a table could not grow). */
int table_scan(const table_source_t *source, int protocol,
               const table_pool_t *pool, destinations_t *destinations,
               cgroup_usage_t *cgroups, snapshot_t *snap, char *err,
               size_t err_size);

/* What table_scan makes of a table with no socket, without reading it. */
void table_scan_empty(int protocol, const table_pool_t *pool,
                      destinations_t *destinations, cgroup_usage_t *cgroups,
                      snapshot_t *snap);

#endif
