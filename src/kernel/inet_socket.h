/* One socket of the kernel's table, as every source reports it. */
#ifndef EPHEMERAL_PORTS_INET_SOCKET_H
#define EPHEMERAL_PORTS_INET_SOCKET_H

#include <stdint.h>

/* Kernel TCP states past TCP_CLOSING that libc's <netinet/tcp.h> lacks. */
#define INET_TCP_NEW_SYN_RECV 12
#define INET_TCP_BOUND_INACTIVE 13 /* bound-only sockets, Linux 6.x */

/* What a source tells of a socket's TCP timestamps option: sock_diag with
 * tcp_info (established sockets) tells it; TIME_WAIT sockets, /proc/net
 * and dumps without tcp_info do not. */
#define INET_TIMESTAMPS_UNKNOWN 0
#define INET_TIMESTAMPS_NO 1
#define INET_TIMESTAMPS_YES 2

typedef struct {
  uint8_t family;   /* AF_INET or AF_INET6 */
  uint8_t protocol; /* IPPROTO_TCP or IPPROTO_UDP */
  uint8_t state;    /* kernel TCP state: TCP_ESTABLISHED (1) .. TCP_CLOSING */
  uint16_t local_port;     /* host byte order */
  uint16_t remote_port;    /* host byte order */
  uint8_t local_addr[16];  /* network byte order; IPv4 uses the first 4 */
  uint8_t remote_addr[16]; /* all zero when unconnected */
  uint64_t cgroup_id;  /* owner's cgroup v2 id, 0 when the reply carried none */
  uint32_t expires_ms; /* TIME_WAIT: what its timer has left, in ms */
  uint32_t bound_if;   /* SO_BINDTODEVICE's ifindex, 0 none or unknown */
  uint8_t timestamps;  /* INET_TIMESTAMPS_*: did the connection negotiate
                          TCP timestamps */
} inet_socket_t;

/* Called once per socket; a non-zero return stops the walk and is passed
 * back to the caller of the source. */
typedef int (*inet_socket_visit_fn)(const inet_socket_t *sock, void *ctx);

#endif
