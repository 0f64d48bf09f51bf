/* What the floor's modes share: one counted inet_diag dump, the process's
 * CPU clock, the port range of the current network namespace. */
#ifndef FLOOR_H
#define FLOOR_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>

#define BUFFER_SIZE 32768
#define STATE_LISTEN 10
#define STATE_BOUND_INACTIVE 13
/* The plugin's second TCP dump: every state but LISTEN (TCP_ESTABLISHED ..
 * TCP_NEW_SYN_RECV), bound-only sockets included. */
#define NETNS_REST_STATES                                                      \
  ((0x1ffeu & ~(1u << STATE_LISTEN)) | (1u << STATE_BOUND_INACTIVE))

typedef struct {
  uint32_t states;
  int filter;
  uint16_t low, high;
  int tcp_info; /* ask for INET_DIAG_INFO, as the plugin does under
                   tcp_tw_reuse 1 */
} query_t;

typedef union {
  struct nlmsghdr align;
  char bytes[BUFFER_SIZE];
} floor_buffer_t;

/* Prints "floor: WHAT: strerror(errno)" and exits 1. */
void die(const char *what);

/* One dump (family AF_UNSPEC: one TCPDIAG_GETSOCK walk for both families);
 * returns the number of sockets in the reply. Dies on any error. */
long dump(struct mnl_socket *nl, char *buf, int family, const query_t *q,
          unsigned seq);

/* Each datagram of a dump as received, before it is counted. */
typedef void (*datagram_fn)(const char *buf, size_t len, void *ctx);

/* dump, handing every datagram to keep (NULL: none) on the way. */
long dump_each(struct mnl_socket *nl, char *buf, int family, const query_t *q,
               unsigned seq, datagram_fn keep, void *ctx);

/* CPU time of this process (user + system), in nanoseconds. */
double cpu_ns(void);

/* ip_local_port_range of the network namespace this thread is in. */
void read_range(uint16_t *low, uint16_t *high);

/* The netns mode (floor_netns.c): REPEAT reads of every namespace in PATHS
 * ("." = the one floor runs in), as the plugin reads them; REST_STATES is
 * the state mask of the second dump. Prints one line; returns the exit
 * status. */
int floor_netns(char *const *paths, int count, long repeat,
                uint32_t rest_states);

#endif
