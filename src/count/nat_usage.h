/* nf_nat's source ports in use, per NAT key: (protocol, family, translated
 * source address, destination address, destination port). nf_nat gives a
 * new flow a source port that keeps its reply tuple unique, so a key runs
 * out when every port of the rule's range is held by a flow with that key.
 *
 * used counts the key's entries whose translated port lies in the NAT port
 * range. That equals the key's distinct translated ports: the kernel keeps
 * reply tuples unique (within a conntrack zone), and a key's entries differ
 * in nothing else of their reply tuple than that port. So no port set per
 * key is needed, and memory grows with keys, not with entries. (Entries of
 * several conntrack zones are counted together; a dump that overlaps the
 * end of a flow and the start of another on the same port counts both.)
 *
 * The table is the destination table (destinations.h), reused: a key is a
 * destination_key_t whose local address is the translated source and whose
 * protocol is set, and destination_t.held counts its entries. */
#ifndef EPHEMERAL_PORTS_NAT_USAGE_H
#define EPHEMERAL_PORTS_NAT_USAGE_H

#include "count/destinations.h"
#include "kernel/nat_flow.h"

#include <stddef.h>
#include <stdint.h>

/* nf_nat's source ports for an original port of 1024 and up when the rule
 * names no range (below 512: 1-511; 512-1023: 600-1023). */
#define NAT_PORT_RANGE_DEFAULT_LOW 1024
#define NAT_PORT_RANGE_DEFAULT_HIGH 65535

typedef struct {
  uint16_t low;
  uint16_t high;
} nat_port_range_t;

typedef struct {
  destinations_t table;
  nat_port_range_t range;
} nat_usage_t;

/* "LOW-HIGH" (or one port "N"), 1 <= LOW <= HIGH <= 65535, no blanks.
 * Returns 0, or -1 with range unchanged. */
int nat_port_range_parse(const char *text, nat_port_range_t *range);
void nat_port_range_default(nat_port_range_t *range);
/* The pool: the ports in the range, 1..65535. */
unsigned nat_port_range_size(const nat_port_range_t *range);

/* Flows are counted when their translated port lies in range. */
void nat_usage_init(nat_usage_t *usage, const nat_port_range_t *range);
void nat_usage_free(nat_usage_t *usage);

/* Starts a read: forgets every count in O(1). */
void nat_usage_clear(nat_usage_t *usage);

void nat_key_of(const nat_flow_t *flow, destination_key_t *key);

/* Counts the flow for its key when its port is in the range. Returns 0, or
 * -ENOMEM when the table could not grow. */
int nat_usage_add(nat_usage_t *usage, const nat_flow_t *flow);

/* nat_usage_add as a nat_flow_visit_fn, ctx being the nat_usage_t. */
int nat_usage_visit(const nat_flow_t *flow, void *ctx);

/* The keys counted in this read. */
size_t nat_usage_keys(const nat_usage_t *usage);

/* The entry of key in this read, or NULL when no flow had that key. */
const destination_t *nat_usage_find(const nat_usage_t *usage,
                                    const destination_key_t *key);

/* Copies the n busiest keys into top, busiest first, ties in key order,
 * marks them in_top, and returns how many there were (at most n). TCP and
 * UDP keys compete in one list: each uses the same range. */
size_t nat_usage_top(nat_usage_t *usage, destination_t *top, size_t n);

/* The plugin_instance: the destination, "203.0.113.7:443" or
 * "[2001:db8::7]:443" for TCP, with "udp:" before it for UDP
 * ("udp:203.0.113.7:53"); and the type_instance: the translated source
 * address, "198.51.100.2". Return 0, or -1 when buf is too small. */
int nat_format_destination(const destination_key_t *key, char *buf,
                           size_t size);
int nat_format_source(const destination_key_t *key, char *buf, size_t size);

#endif
