/* The namespace's socket counts in <net_root>/net/sockstat and sockstat6:
 * the kernel's per-namespace counters of hashed sockets, read in
 * microseconds where a dump walks the kernel's global tables. Counted
 * (measured on 6.18, see README): listening, connecting and connected TCP
 * sockets per family ("inuse"), TIME_WAIT ones of both families ("tw"),
 * bound UDP sockets per family. Not counted: TCP sockets that are bound
 * and neither listening nor connected. */
#ifndef EPHEMERAL_PORTS_SOCKSTAT_H
#define EPHEMERAL_PORTS_SOCKSTAT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  unsigned long tcp_inuse, tcp_tw, tcp6_inuse;
  unsigned long udp_inuse, udp6_inuse;
} sockstat_t;

/* Parses sockstat's text and sockstat6's (NULL: no IPv6, its counts 0).
 * Returns 0, or -1 when a line the counts come from is missing or
 * malformed. */
int sockstat_parse(const char *text, const char *text6, sockstat_t *out);

/* Reads and parses <net_root>/net/sockstat and sockstat6 (a missing
 * sockstat6 means IPv6 is off). Returns 0 or a negative errno (-EINVAL:
 * malformed) with a message naming the file in err. */
int sockstat_read(const char *net_root, sockstat_t *out, char *err,
                  size_t err_size);

/* Whether the namespace has no TCP socket that a dump would list but
 * bound-only ones; no UDP socket with a port. */
bool sockstat_tcp_empty(const sockstat_t *counts);
bool sockstat_udp_empty(const sockstat_t *counts);

#endif
