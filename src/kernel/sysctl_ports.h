/* The kernel's port-range sysctls: net.ipv4.ip_local_port_range and
 * net.ipv4.ip_local_reserved_ports, read from <proc_root>/sys/net/ipv4/. */
#ifndef EPHEMERAL_PORTS_SYSCTL_PORTS_H
#define EPHEMERAL_PORTS_SYSCTL_PORTS_H

#include "util/portset.h"

#include <stddef.h>

/* "LOW<blanks>HIGH" with optional trailing newline, 1 <= LOW <= HIGH <=
 * 65535. Returns 0, or -1 on anything else. */
int port_range_text_parse(const char *text, uint16_t *low, uint16_t *high);

/* Reads the two files. A missing reserved-ports file means none reserved.
 * Returns 0, or a negative errno (-EINVAL for malformed content), with a
 * message naming the file in err. */
int sysctl_read_port_range(const char *proc_root, uint16_t *low, uint16_t *high,
                           char *err, size_t err_size);
int sysctl_read_reserved_ports(const char *proc_root, portset_t *reserved,
                               char *err, size_t err_size);

#endif
