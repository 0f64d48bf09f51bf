/* The TCP sysctls that decide whether connect() may take over the port of
 * a TIME_WAIT socket: net.ipv4.tcp_tw_reuse, tcp_tw_reuse_delay (Linux
 * 6.13 and later) and tcp_timestamps, all per network namespace, read from
 * <proc_root>/sys/net/ipv4/. */
#ifndef EPHEMERAL_PORTS_SYSCTL_TCP_H
#define EPHEMERAL_PORTS_SYSCTL_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kernels before 6.13 have no tcp_tw_reuse_delay: tcp_twsk_unique lets
 * connect() reuse once ktime_get_seconds() has passed the second of the
 * TIME_WAIT socket's last timestamp, which one full second always does. */
#define TCP_TW_REUSE_DELAY_OLD_MS 1000

typedef struct {
  unsigned tw_reuse; /* 0 off, 1 on, 2 loopback only (the default) */
  uint32_t tw_reuse_delay_ms;
  bool timestamps; /* tcp_timestamps is not 0 */
} tcp_reuse_sysctls_t;

/* Reads the three files. A missing tcp_tw_reuse or tcp_timestamps (a
 * ProcRoot that lacks them) means off: every TIME_WAIT socket counts; a
 * missing tcp_tw_reuse_delay means a kernel before 6.13. Returns 0, or a
 * negative errno (-EINVAL for malformed content) with a message naming the
 * file in err. */
int sysctl_read_tcp_reuse(const char *proc_root, tcp_reuse_sysctls_t *out,
                          char *err, size_t err_size);

/* net.ipv4.tcp_ehash_entries (Linux 6.1 and later): the size of the
 * namespace's established-socket hash table, negative when the namespace
 * shares the kernel's global one (every sock_diag dump from it then walks
 * that whole table). Fixed when the namespace is created, from its
 * creator's tcp_child_ehash_entries. Returns 0, -ENOENT when the file is
 * missing (before 6.1 every namespace shares the global table), or another
 * negative errno (-EINVAL for malformed content) with a message in err. */
int sysctl_read_tcp_ehash_entries(const char *proc_root, long *entries,
                                  char *err, size_t err_size);

#endif
