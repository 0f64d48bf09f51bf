/* The kernel's socket tables over NETLINK_SOCK_DIAG (inet_diag), via
 * libmnl: the primary source. */
#ifndef EPHEMERAL_PORTS_SOCK_DIAG_H
#define EPHEMERAL_PORTS_SOCK_DIAG_H

#include "kernel/inet_socket.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sock_diag sock_diag_t;

/* Which sockets a dump returns; the kernel filters, so sockets outside
 * the query are never copied to user space. */
typedef struct {
  int family;        /* AF_INET, AF_INET6, or for TCP AF_UNSPEC: both at once */
  int protocol;      /* IPPROTO_TCP or IPPROTO_UDP */
  uint32_t states;   /* 1 << state for each kernel TCP state wanted */
  uint16_t port_low; /* local port within port_low..port_high; */
  uint16_t port_high; /* both 0: any local port */
  bool tcp_info;      /* ask for tcp_info (INET_DIAG_INFO), to learn each
                         established socket's timestamps option; it costs
                         the kernel about a third more per socket */
} sock_diag_query_t;

/* Opens and binds one netlink socket, reused for every dump. Returns NULL
 * with errno set (and a message in err) when netlink is unavailable. */
sock_diag_t *sock_diag_open(char *err, size_t err_size);
void sock_diag_close(sock_diag_t *diag);

/* Dumps every socket that matches query and calls visit for each. Whatever the
 * outcome, the dump is read to its end (or the socket replaced) before
 * returning, so the next dump starts clean. Returns 0, the visitor's non-zero
 * return (visiting stops, the rest of the dump is drained unseen), or a
 * negative errno with a message in err: the kernel's error (-ENOENT when the
 * protocol's diag module is missing), a receive error (-ENOBUFS,
 * -ETIMEDOUT after 10 s of silence), -EBADMSG for a malformed reply, or
 * -EAGAIN when the kernel marked the dump interrupted (NLM_F_DUMP_INTR: the
 * table changed during the dump). On -EAGAIN the visitor has already seen
 * part of an inconsistent table: the caller resets what it counted and
 * calls again, a bounded number of times (3 attempts in all). */
int sock_diag_dump(sock_diag_t *diag, const sock_diag_query_t *query,
                   inet_socket_visit_fn visit, void *ctx, char *err,
                   size_t err_size);

/* Handles one buffer received from a dump (4-byte aligned, as a receive
 * buffer is): each inet_diag_msg whose nlmsg_seq and nlmsg_pid match goes
 * to visit; other messages (a stale dump, a notification) are skipped.
 * Returns 1 when more buffers follow, 0 at NLMSG_DONE, the visitor's
 * non-zero return, the kernel's error for NLMSG_ERROR (or an NLMSG_DONE
 * carrying one), -EAGAIN when a message carries NLM_F_DUMP_INTR, or
 * -EBADMSG for a malformed buffer. When several apply, -EBADMSG wins, then
 * the visitor's return, then the kernel's error, then -EAGAIN. Exposed for
 * unit tests and fuzzing. */
int sock_diag_parse_buffer(const void *buf, size_t len, uint32_t seq,
                           uint32_t portid, int protocol,
                           inet_socket_visit_fn visit, void *ctx);

#endif
