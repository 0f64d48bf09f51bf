/* One socket of the kernel's table, as every source reports it. */
#ifndef EPHEMERAL_PORTS_INET_SOCKET_H
#define EPHEMERAL_PORTS_INET_SOCKET_H

#include <stdint.h>

/* Kernel TCP states past TCP_CLOSING that libc's <netinet/tcp.h> lacks. */
#define INET_TCP_NEW_SYN_RECV 12
#define INET_TCP_BOUND_INACTIVE 13 /* bound-only sockets, Linux 6.x */

typedef struct {
  uint8_t family;   /* AF_INET or AF_INET6 */
  uint8_t protocol; /* IPPROTO_TCP or IPPROTO_UDP */
  uint8_t state;    /* kernel TCP state: TCP_ESTABLISHED (1) .. TCP_CLOSING */
  uint16_t local_port;     /* host byte order */
  uint16_t remote_port;    /* host byte order */
  uint8_t local_addr[16];  /* network byte order; IPv4 uses the first 4 */
  uint8_t remote_addr[16]; /* all zero when unconnected */
  uint64_t cgroup_id; /* owner's cgroup v2 id, 0 when the reply carried none */
} inet_socket_t;

/* Called once per socket; a non-zero return stops the walk and is passed
 * back to the caller of the source. */
typedef int (*inet_socket_visit_fn)(const inet_socket_t *sock, void *ctx);

#endif
