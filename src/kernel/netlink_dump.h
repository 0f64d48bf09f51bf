/* Netlink dumps over libmnl, whatever the netlink family: one socket
 * reused for every dump, and the walk over the datagrams a dump answers
 * with (its terminator, the kernel's errors, interruptions, malformed
 * datagrams). What a message carries is the caller's. */
#ifndef EPHEMERAL_PORTS_NETLINK_DUMP_H
#define EPHEMERAL_PORTS_NETLINK_DUMP_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks one message of the dump's type and, when visit is true, passes
 * on what it carries. Returns 0, -EBADMSG when the message is malformed,
 * or the visitor's non-zero return (which must not be -EBADMSG): then no
 * further message is visited, though each is still checked. */
typedef int (*netlink_message_fn)(const struct nlmsghdr *nlh, bool visit,
                                  void *ctx);

/* As a dump's type: every message but the control ones (types below
 * NLMSG_MIN_TYPE), for replies of more than one type that the message
 * function tells apart (and skips those it does not know with 0). */
#define NETLINK_DUMP_ANY_TYPE 0

/* What a walk over the datagrams of one dump has seen so far. */
typedef struct {
  uint32_t seq;
  uint32_t portid;
  uint16_t type; /* the dump's messages, or NETLINK_DUMP_ANY_TYPE; other types
                    are skipped */
  netlink_message_fn message;
  void *ctx;
  int stopped;      /* the visitor's non-zero return; no more visits */
  bool interrupted; /* a message carried NLM_F_DUMP_INTR */
  bool ended;       /* NLMSG_DONE or NLMSG_ERROR seen */
  int end_error;    /* the kernel's negative errno at the end, or 0 */
} netlink_walk_t;

void netlink_walk_begin(netlink_walk_t *walk, uint32_t seq, uint32_t portid,
                        uint16_t type, netlink_message_fn message, void *ctx);

/* Walks one datagram (4-byte aligned, as a receive buffer is). Messages of
 * another sequence or port id (a stale dump, a notification) are skipped.
 * Returns 0, or -EBADMSG when the datagram cannot be walked. */
int netlink_walk_buffer(netlink_walk_t *walk, const void *buf, size_t len);

/* The outcome so far: 1 when more datagrams follow, 0 at the end, the
 * visitor's non-zero return, the kernel's error (NLMSG_ERROR, or an
 * NLMSG_DONE carrying one), or -EAGAIN when a message carried
 * NLM_F_DUMP_INTR; in that order of precedence. */
int netlink_walk_result(const netlink_walk_t *walk);

typedef struct netlink_dump netlink_dump_t;

/* Opens and binds one netlink socket of the bus (NETLINK_SOCK_DIAG,
 * NETLINK_NETFILTER, ...) in the caller's network namespace, close-on-exec,
 * with a large receive buffer and a receive timeout. name prefixes every
 * message in err ("conntrack: recv: ..."). Returns NULL with errno set and
 * a message in err when the bus is unavailable. */
netlink_dump_t *netlink_dump_open(int bus, const char *name, char *err,
                                  size_t err_size);
void netlink_dump_close(netlink_dump_t *dump);

/* Sends request (a dump request; its sequence number and port id are set
 * here) and walks every datagram of the answer with message for each
 * message of reply_type, to the dump's end, so the next dump starts clean.
 * Returns netlink_walk_result's 0, visitor's return, kernel's error or
 * -EAGAIN (the caller resets what it counted and retries, a bounded number
 * of times), or a receive error (-ENOBUFS, -ETIMEDOUT after 10 s of
 * silence), -EBADMSG for a malformed answer; after these two the socket is
 * replaced, since the kernel drops a dump with its socket. Every negative
 * return has a message in err naming what ("NAME: WHAT: reason"). */
int netlink_dump_run(netlink_dump_t *dump, struct nlmsghdr *request,
                     uint16_t reply_type, netlink_message_fn message, void *ctx,
                     const char *what, char *err, size_t err_size);

#endif
