/* Whether the next connect() to a TIME_WAIT socket's 4-tuple takes its
 * port over instead of failing: the kernel's rule (tcp_twsk_unique in
 * net/ipv4/tcp_ipv4.c, Linux 5.x to 6.18; docs/metrics.md), applied to one
 * socket as sock_diag or /proc/net reports it. */
#ifndef EPHEMERAL_PORTS_TW_REUSE_H
#define EPHEMERAL_PORTS_TW_REUSE_H

#include "kernel/inet_socket.h"
#include "kernel/sysctl_tcp.h"

#include <stdbool.h>

/* TCP_TIMEWAIT_LEN: the timer a TIME_WAIT socket starts with. */
#define TW_LENGTH_MS 60000
/* The TIME_WAIT timer counts in jiffies, the delay in ms from the moment
 * the socket entered TIME_WAIT (tw_entry_stamp): one jiffy (10 ms at HZ
 * 100) of doubt, taken on the side of the port being held. */
#define TW_AGE_MARGIN_MS 10

typedef enum {
  TW_HELD,       /* connect() cannot take the port over (yet) */
  TW_TAKEN_OVER, /* it can */
  /* It can if the connection negotiated TCP timestamps: the peer is not
   * in this namespace, so the sysctl does not tell; the established
   * sockets to the same destination do (tcp_info). */
  TW_TAKEN_OVER_IF_TIMESTAMPS,
} tw_verdict_t;

/* The verdict for a socket in TIME_WAIT under the namespace's sysctls. */
tw_verdict_t tw_reuse_verdict(const tcp_reuse_sysctls_t *sysctls,
                              const inet_socket_t *tw);

/* Whether an established socket to the destination is evidence of its
 * peer's timestamps: the kernel settles them in the handshake, so any
 * state after it (not SYN_SENT, SYN_RECV, nor a request socket). */
bool tw_reuse_tells_timestamps(const inet_socket_t *sock);

/* Whether tcp_info is needed to decide: the rule leaves some TIME_WAIT
 * sockets to the peer's timestamps only under tcp_tw_reuse 1. */
bool tw_reuse_needs_tcp_info(const tcp_reuse_sysctls_t *sysctls);

#endif
