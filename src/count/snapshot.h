/* One read of one protocol's socket table reduced to what the plugin
 * reports: which pool ports are held, which exclusively, which ports are
 * open, sockets by state, and (TCP) sockets per destination. Knows no I/O
 * and no collectd; sources feed it one socket at a time. */
#ifndef EPHEMERAL_PORTS_SNAPSHOT_H
#define EPHEMERAL_PORTS_SNAPSHOT_H

#include "count/cgroup_usage.h"
#include "count/destinations.h"
#include "kernel/inet_socket.h"
#include "kernel/sysctl_tcp.h"
#include "util/portset.h"

/* Kernel TCP states are 1..13 (TCP_ESTABLISHED .. TCP_BOUND_INACTIVE). */
#define SNAPSHOT_STATES 14

typedef struct {
  int protocol;        /* IPPROTO_TCP or IPPROTO_UDP */
  portset_t pool;      /* range minus reserved */
  portset_t used;      /* pool ports held by at least one socket */
  portset_t exclusive; /* pool ports held by unconnected sockets */
  portset_t open;      /* TCP: listening; UDP: bound with no peer */
  unsigned total;      /* ports in pool */
  unsigned sockets_by_state[SNAPSHOT_STATES]; /* sockets on pool ports */
  destinations_t *destinations;               /* NULL: not counted */
  cgroup_usage_t *cgroups;                    /* NULL: not counted */
  tcp_reuse_sysctls_t tw_reuse; /* which TIME_WAIT ports connect() takes */
} snapshot_t;

/* Starts a read over the range low..high with the reserved ports removed.
 * destinations (TCP only) and cgroups (pool ports per owner's group), each
 * may be NULL, are cleared and filled by the read. */
void snapshot_begin(snapshot_t *snap, int protocol, uint16_t low, uint16_t high,
                    const portset_t *reserved, destinations_t *destinations,
                    cgroup_usage_t *cgroups);

/* The namespace's TIME_WAIT reuse sysctls, for the per-destination counts
 * (snapshot_begin sets reuse off: every TIME_WAIT socket holds its port). */
void snapshot_set_tw_reuse(snapshot_t *snap,
                           const tcp_reuse_sysctls_t *sysctls);

/* A read visits every socket twice or its sockets in two groups:
 * unconnected ones first (listeners, bound-only, unconnected UDP: they
 * hold their port against every connect()), then connected ones, so that
 * the per-destination counts leave out ports that are held exclusively.
 * Each is an inet_socket_visit_fn taking the snapshot_t as ctx and ignores
 * sockets of the other group; both return 0, or -ENOMEM when the
 * destination or cgroup table cannot grow. */
int snapshot_add_unconnected(const inet_socket_t *sock, void *ctx);
int snapshot_add_connected(const inet_socket_t *sock, void *ctx);

/* Either of the two above, as the socket is, for one dump of both kinds:
 * bound-only TCP sockets among the connected ones, once the listeners are
 * in. (A connected socket that shares a bound-only socket's port, which
 * takes SO_REUSEADDR, may then count for its destination too.) */
int snapshot_add_socket(const inet_socket_t *sock, void *ctx);

/* Ends a read whose visits all succeeded: settles the per-destination
 * counts (destinations_settle). */
void snapshot_end(snapshot_t *snap);

unsigned snapshot_used(const snapshot_t *snap);
unsigned snapshot_exclusive(const snapshot_t *snap);

#endif
