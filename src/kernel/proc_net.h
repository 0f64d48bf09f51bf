/* The /proc/net/{tcp,tcp6,udp,udp6} socket tables: the fallback source. */
#ifndef EPHEMERAL_PORTS_PROC_NET_H
#define EPHEMERAL_PORTS_PROC_NET_H

#include "kernel/inet_socket.h"

#include <stddef.h>
#include <stdio.h>

/* Parses one table (header line, then one line per socket) of the given
 * family (AF_INET, AF_INET6) and protocol (IPPROTO_TCP, IPPROTO_UDP),
 * calling visit for each socket. Returns 0, the visitor's non-zero return,
 * or -EINVAL when the text is malformed (a bad header or line, a line
 * longer than 4 KiB, a truncated last line). */
int proc_net_parse(FILE *table, int family, int protocol,
                   inet_socket_visit_fn visit, void *ctx);

/* Reads <proc_root>/net/<proto> and <proto>6 (a missing ...6 file means
 * IPv6 is off). Returns 0, the visitor's return, or a negative errno with
 * a message naming the file in err. */
int proc_net_read(const char *proc_root, int protocol,
                  inet_socket_visit_fn visit, void *ctx, char *err,
                  size_t err_size);

#endif
