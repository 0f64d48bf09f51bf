/* The conntrack table over ctnetlink (NETLINK_NETFILTER, subsystem
 * CTNETLINK), via libmnl: the source-translated flows, which hold nf_nat's
 * ports, and the per-CPU statistics that count its failures. Every request
 * needs CAP_NET_ADMIN in the socket's network namespace. */
#ifndef EPHEMERAL_PORTS_CONNTRACK_H
#define EPHEMERAL_PORTS_CONNTRACK_H

#include "kernel/nat_flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct conntrack conntrack_t;

/* Which entries a dump asks for. Only the network namespace of the socket
 * is dumped, but the kernel walks its global hash table for every dump. */
typedef struct {
  int family; /* AF_UNSPEC: IPv4 and IPv6 in one walk; AF_INET, AF_INET6 */
  /* Ask for every entry, not only those with IPS_SRC_NAT set (a kernel
   * before 5.15 ignores that filter and sends every entry anyway): for
   * tests and benchmarks. Either way flows are checked here too. */
  bool every_entry;
} conntrack_query_t;

/* Linux's per-CPU statistics summed over the CPUs, as `conntrack -S`
 * shows them per CPU. Each CPU's counter is 32 bits wide and wraps. */
typedef struct {
  uint64_t insert_failed; /* no unique tuple found, or a clash at confirm */
  uint64_t drop;          /* packets dropped because of it */
  unsigned cpus;          /* the CPUs that answered */
} conntrack_stats_t;

/* Opens one netlink socket in the caller's network namespace, reused for
 * every request. Returns NULL with errno set and a message in err
 * (EPROTONOSUPPORT without nfnetlink). */
conntrack_t *conntrack_open(char *err, size_t err_size);
void conntrack_close(conntrack_t *ct);

/* Dumps the table and calls visit for each source-translated TCP or UDP
 * flow: an entry whose reply tuple's destination (address or port) differs
 * from its original source. DNAT-only and untranslated entries, and other
 * protocols (ICMP, SCTP, GRE, ...), are skipped. Whatever the outcome, the
 * dump is read to its end. Returns 0, the visitor's non-zero return (not
 * -EBADMSG; visiting stops), or a negative errno with a message in err:
 * the kernel's (-EPERM without CAP_NET_ADMIN, -EINVAL when ctnetlink,
 * nf_conntrack_netlink, is missing), a receive error, -EBADMSG for a
 * malformed reply, or -EAGAIN when the kernel marked the dump interrupted
 * (NLM_F_DUMP_INTR; Linux does not mark ctnetlink dumps today): the
 * visitor has then seen part of an inconsistent table, and the caller
 * resets what it counted and calls again, a bounded number of times (3
 * attempts in all).
 *
 * Cost: every dump walks the kernel's global conntrack hash table
 * (net.netfilter.nf_conntrack_buckets), locking each bucket, whichever
 * namespace asks: about 11 ms with 262,144 buckets on the benchmark
 * machine, before the entries, which cost about 3 us each to build. */
int conntrack_dump(conntrack_t *ct, const conntrack_query_t *query,
                   nat_flow_visit_fn visit, void *ctx, char *err,
                   size_t err_size);

/* The entries the last dump received, translated or not. */
uint64_t conntrack_last_entries(const conntrack_t *ct);

/* Reads the per-CPU statistics into stats. Returns 0 or a negative errno
 * with a message in err, as conntrack_dump. */
int conntrack_stats(conntrack_t *ct, conntrack_stats_t *stats, char *err,
                    size_t err_size);

/* Handle one buffer received from a dump (4-byte aligned, as a receive
 * buffer is): each entry or per-CPU message whose nlmsg_seq and nlmsg_pid
 * match is counted into *entries (may be NULL) and its flow passed to
 * visit, or added to *stats; other messages are skipped. Return 1 when more
 * buffers follow, 0 at NLMSG_DONE, the visitor's non-zero return, the
 * kernel's error for NLMSG_ERROR (or an NLMSG_DONE carrying one), -EAGAIN
 * when a message carries NLM_F_DUMP_INTR, or -EBADMSG for a malformed
 * buffer (a truncated message, an attribute past its parent's end, a
 * tuple without its addresses or ports). When several apply, -EBADMSG
 * wins, then the visitor's return, then the kernel's error, then -EAGAIN.
 * Exposed for unit tests and fuzzing. */
int conntrack_parse_buffer(const void *buf, size_t len, uint32_t seq,
                           uint32_t portid, nat_flow_visit_fn visit, void *ctx,
                           uint64_t *entries);
int conntrack_parse_stats_buffer(const void *buf, size_t len, uint32_t seq,
                                 uint32_t portid, conntrack_stats_t *stats);

#endif
