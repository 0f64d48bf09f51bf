/* One source-translated flow of the conntrack table (SNAT or MASQUERADE),
 * as the conntrack source reports it: what nf_nat keeps unique, and so
 * what its translated source port is a share of. */
#ifndef EPHEMERAL_PORTS_NAT_FLOW_H
#define EPHEMERAL_PORTS_NAT_FLOW_H

#include <stdint.h>

/* The entry's reply tuple, seen from the translated side: nf_nat picks a
 * source port that makes the reply tuple (protocol, destination address and
 * port, translated source address and port) unique, so the destination is
 * the reply tuple's source: where packets really go, after any DNAT. */
typedef struct {
  uint8_t family;               /* AF_INET or AF_INET6 */
  uint8_t protocol;             /* IPPROTO_TCP or IPPROTO_UDP */
  uint16_t source_port;         /* translated source port; host byte order */
  uint16_t destination_port;    /* host byte order */
  uint8_t source_addr[16];      /* translated; network byte order, IPv4 in */
  uint8_t destination_addr[16]; /* the first 4 bytes, the rest zero */
} nat_flow_t;

/* Called once per flow; a non-zero return stops the walk and is passed
 * back to the caller of the source. */
typedef int (*nat_flow_visit_fn)(const nat_flow_t *flow, void *ctx);

#endif
