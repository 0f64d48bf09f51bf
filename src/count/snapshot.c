#include "count/snapshot.h"

#include "count/tw_reuse.h"
#include "kernel/cgroup_pseudo.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>

void snapshot_begin(snapshot_t *snap, int protocol, uint16_t low, uint16_t high,
                    const portset_t *reserved, destinations_t *destinations,
                    cgroup_usage_t *cgroups) {
  snap->protocol = protocol;
  portset_clear(&snap->pool);
  portset_add_range(&snap->pool, low, high);
  for (unsigned i = 0; i < PORTSET_WORDS; i++)
    snap->pool.words[i] &= ~reserved->words[i];
  snap->total = portset_count(&snap->pool);
  portset_clear(&snap->used);
  portset_clear(&snap->exclusive);
  portset_clear(&snap->open);
  memset(snap->sockets_by_state, 0, sizeof(snap->sockets_by_state));
  snap->destinations = destinations;
  if (destinations != NULL)
    destinations_clear(destinations);
  snap->cgroups = cgroups;
  if (cgroups != NULL)
    cgroup_usage_clear(cgroups);
  snap->tw_reuse = (tcp_reuse_sysctls_t){0, TCP_TW_REUSE_DELAY_OLD_MS, false};
}

void snapshot_set_tw_reuse(snapshot_t *snap,
                           const tcp_reuse_sysctls_t *sysctls) {
  snap->tw_reuse = *sysctls;
}

/* What a connected socket tells its destination (DESTINATION_*). */
static unsigned destination_flags(const snapshot_t *snap,
                                  const inet_socket_t *sock) {
  if (sock->state == TCP_TIME_WAIT) {
    switch (tw_reuse_verdict(&snap->tw_reuse, sock)) {
    case TW_TAKEN_OVER:
      return DESTINATION_TIME_WAIT | DESTINATION_TAKEN_OVER;
    case TW_TAKEN_OVER_IF_TIMESTAMPS:
      return DESTINATION_TIME_WAIT | DESTINATION_TAKEN_OVER_IF_TIMESTAMPS;
    default:
      return DESTINATION_TIME_WAIT;
    }
  }
  if (!tw_reuse_tells_timestamps(sock))
    return 0;
  return sock->timestamps == INET_TIMESTAMPS_YES
             ? DESTINATION_WITH_TIMESTAMPS
             : DESTINATION_WITHOUT_TIMESTAMPS;
}

static bool is_unconnected(const inet_socket_t *sock) {
  return sock->state == TCP_LISTEN || sock->remote_port == 0;
}

/* Marks the port used and counts the socket's state and its owner's
 * group; returns 1 when the port is in the pool, 0 when not, or -ENOMEM
 * when the cgroup table cannot grow. */
static int hold_pool_port(snapshot_t *snap, const inet_socket_t *sock) {
  if (!portset_has(&snap->pool, sock->local_port))
    return 0;
  portset_add(&snap->used, sock->local_port);
  if (sock->state < SNAPSHOT_STATES)
    snap->sockets_by_state[sock->state]++;
  if (snap->cgroups != NULL) {
    uint64_t owner = cgroup_owner_of(sock);
    if (owner != CGROUP_ID_NONE &&
        cgroup_usage_add(snap->cgroups, owner, sock->local_port) != 0)
      return -ENOMEM;
  }
  return 1;
}

int snapshot_add_unconnected(const inet_socket_t *sock, void *ctx) {
  snapshot_t *snap = ctx;
  if (!is_unconnected(sock))
    return 0;
  int held = hold_pool_port(snap, sock);
  if (held < 0)
    return held;
  if (held)
    portset_add(&snap->exclusive, sock->local_port);
  bool open = snap->protocol != IPPROTO_TCP || sock->state == TCP_LISTEN;
  if (open && sock->local_port != 0)
    portset_add(&snap->open, sock->local_port);
  return 0;
}

int snapshot_add_connected(const inet_socket_t *sock, void *ctx) {
  snapshot_t *snap = ctx;
  if (is_unconnected(sock))
    return 0;
  int held = hold_pool_port(snap, sock);
  if (held <= 0)
    return held;
  if (snap->destinations == NULL ||
      portset_has(&snap->exclusive, sock->local_port))
    return 0;
  destination_key_t key;
  destination_key_of(sock, &key);
  return destinations_add(snap->destinations, &key,
                          destination_flags(snap, sock));
}

int snapshot_add_socket(const inet_socket_t *sock, void *ctx) {
  return is_unconnected(sock) ? snapshot_add_unconnected(sock, ctx)
                              : snapshot_add_connected(sock, ctx);
}

void snapshot_end(snapshot_t *snap) {
  if (snap->destinations != NULL)
    destinations_settle(snap->destinations);
}

unsigned snapshot_used(const snapshot_t *snap) {
  return portset_count(&snap->used);
}

unsigned snapshot_exclusive(const snapshot_t *snap) {
  return portset_count(&snap->exclusive);
}
