#include "read/table_scan.h"

#include "count/tw_reuse.h"
#include "kernel/proc_net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

static int dump_families(sock_diag_t *diag, sock_diag_query_t query,
                         inet_socket_visit_fn visit, snapshot_t *snap,
                         char *err, size_t err_size) {
  if (query.protocol == IPPROTO_TCP) {
    query.family = AF_UNSPEC; /* one kernel walk for IPv4 and IPv6 */
    return sock_diag_dump(diag, &query, visit, snap, err, err_size);
  }
  static const int families[] = {AF_INET, AF_INET6};
  for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
    query.family = families[i];
    int status = sock_diag_dump(diag, &query, visit, snap, err, err_size);
    if (status != 0)
      return status;
  }
  return 0;
}

/* Listeners first, from a LISTEN-only dump of every port (cost
 * O(listeners)): their accepted sockets share their port, which must be
 * known as exclusive before connected sockets are counted per destination.
 * Then everything else on pool ports in one dump that the kernel filters
 * to the range; bound-only sockets ride along, which costs the kernel far
 * less than a walk of its bind table of their own (see docs/BENCHMARKS.md).
 * UDP: unconnected sockets of every port, then connected ones in range. */
static int scan_netlink(sock_diag_t *diag, snapshot_t *snap, uint16_t low,
                        uint16_t high, bool tcp_info, char *err,
                        size_t err_size) {
  sock_diag_query_t unconnected = {0, snap->protocol, 0, 0, 0, false};
  sock_diag_query_t rest = {0, snap->protocol, 0, low, high, tcp_info};
  if (snap->protocol == IPPROTO_TCP) {
    unconnected.states = 1u << TCP_LISTEN;
    /* TCP_ESTABLISHED .. TCP_NEW_SYN_RECV but LISTEN, TIME_WAIT included,
     * and bound-only sockets: a kernel that does not know that state has no
     * socket in it, so asking costs nothing there. */
    rest.states =
        (0x1ffeu & ~(1u << TCP_LISTEN)) | (1u << INET_TCP_BOUND_INACTIVE);
  } else {
    unconnected.states = 1u << TCP_CLOSE;
    rest.states = 1u << TCP_ESTABLISHED;
  }
  int status = dump_families(diag, unconnected, snapshot_add_unconnected, snap,
                             err, err_size);
  if (status == 0)
    status =
        dump_families(diag, rest, snapshot_add_socket, snap, err, err_size);
  return status;
}

static int scan_proc(const char *net_root, snapshot_t *snap, char *err,
                     size_t err_size) {
  int status = proc_net_read(net_root, snap->protocol, snapshot_add_unconnected,
                             snap, err, err_size);
  if (status == 0)
    status = proc_net_read(net_root, snap->protocol, snapshot_add_connected,
                           snap, err, err_size);
  return status;
}

static void begin(int protocol, const table_pool_t *pool,
                  destinations_t *destinations, cgroup_usage_t *cgroups,
                  snapshot_t *snap) {
  snapshot_begin(snap, protocol, pool->low, pool->high, pool->reserved,
                 destinations, cgroups);
  if (pool->tw_reuse != NULL)
    snapshot_set_tw_reuse(snap, pool->tw_reuse);
}

void table_scan_empty(int protocol, const table_pool_t *pool,
                      destinations_t *destinations, cgroup_usage_t *cgroups,
                      snapshot_t *snap) {
  begin(protocol, pool, destinations, cgroups, snap);
  snapshot_end(snap);
}

int table_scan(const table_source_t *source, int protocol,
               const table_pool_t *pool, destinations_t *destinations,
               cgroup_usage_t *cgroups, snapshot_t *snap, char *err,
               size_t err_size) {
  bool tcp_info = destinations != NULL && pool->tw_reuse != NULL &&
                  tw_reuse_needs_tcp_info(pool->tw_reuse);
  int status = -EAGAIN;
  for (int attempt = 0; attempt < TABLE_SCAN_ATTEMPTS && status == -EAGAIN;
       attempt++) {
    begin(protocol, pool, destinations, cgroups, snap);
    status = source->diag != NULL
                 ? scan_netlink(source->diag, snap, pool->low, pool->high,
                                tcp_info, err, err_size)
                 : scan_proc(source->net_root, snap, err, err_size);
  }
  if (status == 0)
    snapshot_end(snap);
  if (status == -ENOMEM)
    snprintf(err, err_size, "out of memory counting destinations or cgroups");
  return status;
}
