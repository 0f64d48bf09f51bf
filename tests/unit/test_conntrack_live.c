/* test_conntrack against the kernel: each test runs in a network namespace
 * of its own (check forks a process per test; the fixture unshares it),
 * whose conntrack table holds only the entries the test inserted over
 * ctnetlink, translated by nf_nat as conntrackd's are. Needs root. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kernel/conntrack.h"

#include "ctnetlink_build.h"

#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define V4 AF_INET
#define V6 AF_INET6
#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define MAX_SEEN 16
#define NO_NAT 0

typedef struct {
  ctb_tuple_t orig;
  uint16_t nat_type; /* CTA_NAT_SRC, CTA_NAT_DST or NO_NAT */
  const char *nat_addr;
  uint16_t nat_port;
} live_entry_t;

/* Three translated flows (TCP, UDP, IPv6), one untranslated, one DNAT. */
static const live_entry_t table[] = {
    {{V4, TCP, "10.0.0.2", 40000, "203.0.113.7", 443},
     CTA_NAT_SRC,
     "198.51.100.2",
     61000},
    {{V4, UDP, "10.0.0.2", 40001, "203.0.113.53", 53},
     CTA_NAT_SRC,
     "198.51.100.2",
     61001},
    {{V6, TCP, "2001:db8::2", 40002, "2001:db8::7", 443},
     CTA_NAT_SRC,
     "2001:db8::100",
     61002},
    {{V4, TCP, "10.0.0.3", 40003, "203.0.113.7", 443}, NO_NAT, NULL, 0},
    {{V4, TCP, "10.0.0.4", 40004, "203.0.113.80", 80},
     CTA_NAT_DST,
     "192.0.2.80",
     8080},
};
#define TABLE_ENTRIES (sizeof(table) / sizeof(table[0]))
#define TABLE_FLOWS 3

typedef struct {
  nat_flow_t flows[MAX_SEEN];
  size_t count;
  size_t stop_after;
} seen_t;

static conntrack_t *ct;
static char err[256];

static int collect(const nat_flow_t *flow, void *ctx) {
  seen_t *s = ctx;
  ck_assert_uint_lt(s->count, MAX_SEEN);
  s->flows[s->count++] = *flow;
  return s->stop_after != 0 && s->count >= s->stop_after ? 42 : 0;
}

/* Sends one request on nl and returns the kernel's acknowledgement. */
static int request(struct mnl_socket *nl, struct nlmsghdr *nlh) {
  static union {
    struct nlmsghdr align;
    char bytes[8192];
  } buf;
  ck_assert_int_ge(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len), 0);
  ssize_t n = mnl_socket_recvfrom(nl, buf.bytes, sizeof(buf));
  ck_assert_int_ge(n, (ssize_t)NLMSG_HDRLEN + (ssize_t)sizeof(int));
  ck_assert_uint_eq(buf.align.nlmsg_type, NLMSG_ERROR);
  int error;
  memcpy(&error, mnl_nlmsg_get_payload(&buf.align), sizeof(error));
  return error;
}

/* Inserts entry e, with a second translation when nat2 is given. */
static void insert(struct mnl_socket *nl, const live_entry_t *e,
                   const live_entry_t *nat2) {
  static union {
    struct nlmsghdr align;
    char bytes[1024];
  } buf;
  static uint32_t seq;
  memset(&buf, 0, sizeof(buf));
  struct nlmsghdr *nlh = ctb_put_new_entry(buf.bytes, ++seq, &e->orig, 600);
  ck_assert_ptr_nonnull(nlh);
  const live_entry_t *nats[] = {e, nat2};
  for (size_t i = 0; i < 2; i++)
    if (nats[i] != NULL && nats[i]->nat_type != NO_NAT)
      ck_assert_int_eq(ctb_put_nat(nlh, nats[i]->nat_type, e->orig.family,
                                   nats[i]->nat_addr, nats[i]->nat_port),
                       0);
  int rc = request(nl, nlh);
  ck_assert_msg(rc == 0, "IPCTNL_MSG_CT_NEW: %s", strerror(-rc));
}

static struct mnl_socket *open_ctnetlink(void) {
  struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
  ck_assert_ptr_nonnull(nl);
  ck_assert_int_eq(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
  return nl;
}

static void setup(void) {
  ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s",
                strerror(errno));
  struct mnl_socket *nl = open_ctnetlink();
  for (size_t i = 0; i < TABLE_ENTRIES; i++)
    insert(nl, &table[i], NULL);
  mnl_socket_close(nl);
  ct = conntrack_open(err, sizeof(err));
  ck_assert_msg(ct != NULL, "%s", err);
}

static void teardown(void) {
  conntrack_close(ct);
  ct = NULL;
}

/* The flow that table[i] became: translated source and destination. */
static void assert_seen(const seen_t *s, size_t i) {
  const live_entry_t *e = &table[i];
  uint8_t source[16] = {0}, destination[16] = {0};
  ck_assert_int_eq(inet_pton(e->orig.family, e->nat_addr, source), 1);
  ck_assert_int_eq(inet_pton(e->orig.family, e->orig.dst, destination), 1);
  size_t found = 0;
  for (size_t k = 0; k < s->count; k++) {
    const nat_flow_t *f = &s->flows[k];
    found += f->family == e->orig.family && f->protocol == e->orig.protocol &&
             f->source_port == e->nat_port &&
             f->destination_port == e->orig.dst_port &&
             memcmp(f->source_addr, source, 16) == 0 &&
             memcmp(f->destination_addr, destination, 16) == 0;
  }
  ck_assert_msg(found == 1, "flow of entry %zu seen %zu times", i, found);
}

static int dump(int family, bool every_entry, seen_t *s) {
  conntrack_query_t query = {family, every_entry};
  return conntrack_dump(ct, &query, collect, s, err, sizeof(err));
}

START_TEST(live_dump_filtered_in_kernel) {
  seen_t s = {0};
  int rc = dump(AF_UNSPEC, false, &s);
  ck_assert_msg(rc == 0, "%d %s", rc, err);
  ck_assert_uint_eq(s.count, TABLE_FLOWS);
  for (size_t i = 0; i < TABLE_FLOWS; i++)
    assert_seen(&s, i);
  /* Linux 5.15+ sends the IPS_SRC_NAT entries alone. */
  ck_assert_uint_eq(conntrack_last_entries(ct), TABLE_FLOWS);
}
END_TEST

START_TEST(live_dump_every_entry_filtered_here) {
  seen_t s = {0};
  int rc = dump(AF_UNSPEC, true, &s);
  ck_assert_msg(rc == 0, "%d %s", rc, err);
  ck_assert_uint_eq(conntrack_last_entries(ct), TABLE_ENTRIES);
  ck_assert_uint_eq(s.count, TABLE_FLOWS);
  for (size_t i = 0; i < TABLE_FLOWS; i++)
    assert_seen(&s, i);
}
END_TEST

START_TEST(live_dump_by_family) {
  seen_t v4 = {0}, v6 = {0};
  ck_assert_int_eq(dump(AF_INET, false, &v4), 0);
  ck_assert_uint_eq(v4.count, 2);
  assert_seen(&v4, 0);
  assert_seen(&v4, 1);
  ck_assert_int_eq(dump(AF_INET6, false, &v6), 0);
  ck_assert_uint_eq(v6.count, 1);
  assert_seen(&v6, 2);
  ck_assert_int_eq(dump(AF_UNIX, false, &v6), -EINVAL);
  ck_assert_str_eq(err, "conntrack: dump family 1: Invalid argument");
}
END_TEST

START_TEST(live_visitor_stops_then_dumps_again) {
  seen_t s = {.stop_after = 1};
  ck_assert_int_eq(dump(AF_UNSPEC, true, &s), 42);
  ck_assert_uint_eq(s.count, 1);
  /* The stopped dump was read to its end: the next one is whole. */
  memset(&s, 0, sizeof(s));
  ck_assert_int_eq(dump(AF_UNSPEC, false, &s), 0);
  ck_assert_uint_eq(s.count, TABLE_FLOWS);
}
END_TEST

START_TEST(live_dnat_and_snat_destination_is_the_backend) {
  /* 10.0.0.5 asks for 203.0.113.80:80, DNATed to 192.0.2.80:8080 and
   * SNATed to 198.51.100.2:61005. */
  const live_entry_t dnat = {{V4, TCP, "10.0.0.5", 40005, "203.0.113.80", 80},
                             CTA_NAT_DST,
                             "192.0.2.80",
                             8080};
  const live_entry_t snat = {{V4, TCP, "10.0.0.5", 40005, "203.0.113.80", 80},
                             CTA_NAT_SRC,
                             "198.51.100.2",
                             61005};
  struct mnl_socket *nl = open_ctnetlink();
  insert(nl, &dnat, &snat);
  mnl_socket_close(nl);
  seen_t s = {0};
  ck_assert_int_eq(dump(AF_INET, false, &s), 0);
  ck_assert_uint_eq(s.count, 3);
  size_t found = 0;
  uint8_t backend[16] = {0};
  ck_assert_int_eq(inet_pton(V4, "192.0.2.80", backend), 1);
  for (size_t k = 0; k < s.count; k++)
    found += s.flows[k].source_port == 61005 &&
             s.flows[k].destination_port == 8080 &&
             memcmp(s.flows[k].destination_addr, backend, 16) == 0;
  ck_assert_uint_eq(found, 1);
}
END_TEST

/* CPUs the kernel may bring up: one per-CPU message each. */
static unsigned possible_cpus(void) {
  FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
  ck_assert_ptr_nonnull(f);
  unsigned count = 0, first, last;
  int n;
  char sep;
  while ((n = fscanf(f, "%u%c", &first, &sep)) >= 1) {
    last = first;
    if (n == 2 && sep == '-') {
      ck_assert_int_ge(fscanf(f, "%u%c", &last, &sep), 1);
    }
    count += last - first + 1;
    if (n < 2 || sep != ',')
      break;
  }
  fclose(f);
  return count;
}

START_TEST(live_stats_of_a_new_namespace) {
  conntrack_stats_t stats = {.insert_failed = 99};
  int rc = conntrack_stats(ct, &stats, err, sizeof(err));
  ck_assert_msg(rc == 0, "%d %s", rc, err);
  ck_assert_uint_eq(stats.cpus, possible_cpus());
  ck_assert_uint_eq(stats.insert_failed, 0);
  ck_assert_uint_eq(stats.drop, 0);
  /* Twice on one socket. */
  ck_assert_int_eq(conntrack_stats(ct, &stats, err, sizeof(err)), 0);
  ck_assert_uint_eq(stats.cpus, possible_cpus());
}
END_TEST

START_TEST(live_without_cap_net_admin) {
  /* Root's user gone, its capabilities with it (the namespace stays). */
  ck_assert_int_eq(setresgid(65534, 65534, 65534), 0);
  ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
  seen_t s = {0};
  ck_assert_int_eq(dump(AF_UNSPEC, false, &s), -EPERM);
  ck_assert_str_eq(err, "conntrack: dump: Operation not permitted");
  ck_assert_uint_eq(s.count, 0);
  conntrack_stats_t stats;
  ck_assert_int_eq(conntrack_stats(ct, &stats, err, sizeof(err)), -EPERM);
  ck_assert_str_eq(err, "conntrack: statistics: Operation not permitted");
  /* A socket opened without the capability, too. */
  conntrack_t *unprivileged = conntrack_open(err, sizeof(err));
  ck_assert_ptr_nonnull(unprivileged);
  conntrack_query_t query = {AF_UNSPEC, false};
  ck_assert_int_eq(
      conntrack_dump(unprivileged, &query, collect, &s, err, sizeof(err)),
      -EPERM);
  conntrack_close(unprivileged);
}
END_TEST

TCase *conntrack_live_tcase(void);
TCase *conntrack_live_tcase(void) {
  TCase *live = tcase_create("live");
  tcase_add_checked_fixture(live, setup, teardown);
  tcase_add_test(live, live_dump_filtered_in_kernel);
  tcase_add_test(live, live_dump_every_entry_filtered_here);
  tcase_add_test(live, live_dump_by_family);
  tcase_add_test(live, live_visitor_stops_then_dumps_again);
  tcase_add_test(live, live_dnat_and_snat_destination_is_the_backend);
  tcase_add_test(live, live_stats_of_a_new_namespace);
  tcase_add_test(live, live_without_cap_net_admin);
  return live;
}
