/* Pseudo groups: what a socket's pool port counts under when its owner's
 * cgroup is not known. Each has an id no cgroup has (the kernel numbers
 * cgroups from 1, the root, upwards), so it is counted like a group, and a
 * name no cgroup path has (paths start with "/", cut ones with "...").
 *
 * - unknown: the owner cannot be known. The reply carried no cgroup id
 *   (Source "proc", a kernel before 5.8 or without CONFIG_SOCK_CGROUP_DATA,
 *   a FIN_WAIT2 socket the kernel keeps as a time-wait mini socket), or the
 *   id names no group that can be found (the group was removed while its
 *   sockets live on, it is outside the cgroup2 mount, there is no cgroup2
 *   mount, or its path is still being looked for).
 * - time_wait: TIME_WAIT sockets. The kernel keeps no owner for them, and
 *   they are often most of a client's pool, so they are a group of their own
 *   rather than part of unknown.
 * NEW_SYN_RECV sockets (connection requests) count under no group: their
 * port is their listener's, which its own group already holds. */
#ifndef EPHEMERAL_PORTS_CGROUP_PSEUDO_H
#define EPHEMERAL_PORTS_CGROUP_PSEUDO_H

#include "kernel/inet_socket.h"

#include <netinet/tcp.h>
#include <stdint.h>

#define CGROUP_ID_UNKNOWN UINT64_MAX
#define CGROUP_NAME_UNKNOWN "unknown"
#define CGROUP_ID_TIME_WAIT (UINT64_MAX - 1)
#define CGROUP_NAME_TIME_WAIT "time_wait"
/* Not a group: the socket's port counts under none. */
#define CGROUP_ID_NONE 0

/* The group sock's port counts under: its owner's id, or a pseudo group's,
 * or CGROUP_ID_NONE. */
static inline uint64_t cgroup_owner_of(const inet_socket_t *sock) {
  if (sock->state == TCP_TIME_WAIT)
    return CGROUP_ID_TIME_WAIT;
  if (sock->state == INET_TCP_NEW_SYN_RECV)
    return CGROUP_ID_NONE;
  return sock->cgroup_id != 0 ? sock->cgroup_id : CGROUP_ID_UNKNOWN;
}

#endif
