#include "kernel/conntrack.h"

#include "ctnetlink_build.h"
#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEQ 77
#define PORTID 1234
#define MAX_SEEN 64
#define V4 AF_INET
#define V6 AF_INET6
#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define SNAT_STATUS (IPS_CONFIRMED | IPS_SRC_NAT | IPS_SRC_NAT_DONE)

/* A hand-built receive buffer. */
typedef struct {
  union {
    struct nlmsghdr align;
    char bytes[16384];
  } u;
  size_t len;
} msgbuf_t;

typedef struct {
  nat_flow_t flows[MAX_SEEN];
  size_t count;
  size_t stop_after; /* 0 = never stop */
} seen_t;

/* Against the kernel: test_conntrack_live.c. */
TCase *conntrack_live_tcase(void);

static msgbuf_t mb;
static seen_t seen;
static uint64_t entries;

static void reset(void) {
  memset(&mb, 0, sizeof(mb));
  memset(&seen, 0, sizeof(seen));
  entries = 0;
}

static int collect(const nat_flow_t *flow, void *ctx) {
  seen_t *s = ctx;
  ck_assert_uint_lt(s->count, MAX_SEEN);
  s->flows[s->count++] = *flow;
  return s->stop_after != 0 && s->count >= s->stop_after ? 42 : 0;
}

static struct nlmsghdr *begin_msg(uint16_t type, uint16_t flags, uint32_t seq,
                                  int family) {
  return ctb_put_header(mb.u.bytes + mb.len, type, NLM_F_MULTI | flags, seq,
                        PORTID, family);
}

static struct nlmsghdr *end_msg(struct nlmsghdr *nlh) {
  mb.len += NLMSG_ALIGN(nlh->nlmsg_len);
  ck_assert_uint_le(mb.len, sizeof(mb.u.bytes));
  return nlh;
}

/* One entry of a dump: the original and reply tuples and the usual rest. */
static struct nlmsghdr *add_entry_at(uint16_t flags, uint32_t seq,
                                     const ctb_tuple_t *orig,
                                     const ctb_tuple_t *reply,
                                     uint32_t status) {
  struct nlmsghdr *nlh =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_NEW), flags, seq, orig->family);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_ORIG, orig), 0);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_REPLY, reply), 0);
  ctb_put_entry_info(nlh, orig->protocol, status);
  return end_msg(nlh);
}

static struct nlmsghdr *add_entry(const ctb_tuple_t *orig,
                                  const ctb_tuple_t *reply, uint32_t status) {
  return add_entry_at(0, SEQ, orig, reply, status);
}

static void add_end(uint16_t type, int error) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(mb.u.bytes + mb.len);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_MULTI;
  nlh->nlmsg_seq = SEQ;
  nlh->nlmsg_pid = PORTID;
  size_t len = type == NLMSG_ERROR ? sizeof(struct nlmsgerr) : sizeof(int);
  memcpy(mnl_nlmsg_put_extra_header(nlh, len), &error, sizeof(error));
  end_msg(nlh);
}

static int parse(void) {
  return conntrack_parse_buffer(mb.u.bytes, mb.len, SEQ, PORTID, collect, &seen,
                                &entries);
}

static void assert_addr(const uint8_t addr[16], int family, const char *text) {
  uint8_t want[16] = {0};
  ck_assert_int_eq(inet_pton(family, text, want), 1);
  ck_assert_mem_eq(addr, want, 16);
}

static void assert_flow(const nat_flow_t *flow, int family, int protocol,
                        const char *source, uint16_t source_port,
                        const char *destination, uint16_t destination_port) {
  ck_assert_uint_eq(flow->family, family);
  ck_assert_uint_eq(flow->protocol, protocol);
  assert_addr(flow->source_addr, family, source);
  ck_assert_uint_eq(flow->source_port, source_port);
  assert_addr(flow->destination_addr, family, destination);
  ck_assert_uint_eq(flow->destination_port, destination_port);
}

/* A client behind the NAT, 10.0.0.2:40000, to 203.0.113.7:443. */
static const ctb_tuple_t client = {V4,    TCP,           "10.0.0.2",
                                   40000, "203.0.113.7", 443};
/* SNAT to 198.51.100.2:61000: replies come back to the translated source. */
static const ctb_tuple_t snat_reply = {
    V4, TCP, "203.0.113.7", 443, "198.51.100.2", 61000};

START_TEST(snat_entry) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(entries, 1);
  ck_assert_uint_eq(seen.count, 1);
  assert_flow(&seen.flows[0], V4, TCP, "198.51.100.2", 61000, "203.0.113.7",
              443);
}
END_TEST

START_TEST(masquerade_keeping_the_port) {
  /* nf_nat keeps the original port when the tuple stays unique. */
  reset();
  ctb_tuple_t reply = {V4, TCP, "203.0.113.7", 443, "198.51.100.2", 40000};
  add_entry(&client, &reply, SNAT_STATUS);
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(parse(), 0);
  ck_assert_uint_eq(seen.count, 1);
  assert_flow(&seen.flows[0], V4, TCP, "198.51.100.2", 40000, "203.0.113.7",
              443);
}
END_TEST

START_TEST(port_translated_alone) {
  /* The address kept, the port changed (a clash resolved by nf_nat's
   * implicit source port remapping): translated too. */
  reset();
  ctb_tuple_t reply = {V4, TCP, "203.0.113.7", 443, "10.0.0.2", 1025};
  add_entry(&client, &reply, SNAT_STATUS);
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(seen.count, 1);
  assert_flow(&seen.flows[0], V4, TCP, "10.0.0.2", 1025, "203.0.113.7", 443);
}
END_TEST

START_TEST(ipv6_snat) {
  reset();
  ctb_tuple_t orig = {V6, TCP, "2001:db8::2", 40000, "2001:db8::7", 8443};
  ctb_tuple_t reply = {V6, TCP, "2001:db8::7", 8443, "2001:db8::100", 50001};
  add_entry(&orig, &reply, SNAT_STATUS);
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(seen.count, 1);
  assert_flow(&seen.flows[0], V6, TCP, "2001:db8::100", 50001, "2001:db8::7",
              8443);
}
END_TEST

START_TEST(udp_snat) {
  reset();
  ctb_tuple_t orig = {V4, UDP, "10.0.0.2", 40000, "203.0.113.53", 53};
  ctb_tuple_t reply = {V4, UDP, "203.0.113.53", 53, "198.51.100.2", 1024};
  add_entry(&orig, &reply, SNAT_STATUS);
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(seen.count, 1);
  assert_flow(&seen.flows[0], V4, UDP, "198.51.100.2", 1024, "203.0.113.53",
              53);
}
END_TEST

START_TEST(dnat_only_not_counted) {
  /* Port forwarding: 203.0.113.80:80 to 192.0.2.80:8080; the source kept. */
  reset();
  ctb_tuple_t orig = {V4, TCP, "10.0.0.2", 40000, "203.0.113.80", 80};
  ctb_tuple_t reply = {V4, TCP, "192.0.2.80", 8080, "10.0.0.2", 40000};
  add_entry(&orig, &reply, IPS_CONFIRMED | IPS_DST_NAT | IPS_DST_NAT_DONE);
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(parse(), 0);
  ck_assert_uint_eq(entries, 1);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(dnat_and_snat_keyed_by_real_destination) {
  /* A service address DNATed to a backend, then masqueraded: nf_nat keeps
   * the reply tuple unique, whose source is the backend, not the service
   * address the client asked for. */
  reset();
  ctb_tuple_t orig = {V4, TCP, "10.0.0.2", 40000, "203.0.113.80", 80};
  ctb_tuple_t reply = {V4, TCP, "192.0.2.80", 8080, "198.51.100.2", 61000};
  add_entry(&orig, &reply, SNAT_STATUS | IPS_DST_NAT | IPS_DST_NAT_DONE);
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(seen.count, 1);
  assert_flow(&seen.flows[0], V4, TCP, "198.51.100.2", 61000, "192.0.2.80",
              8080);
}
END_TEST

START_TEST(untranslated_not_counted) {
  reset();
  ctb_tuple_t reply = ctb_inverse(&client);
  add_entry(&client, &reply, IPS_CONFIRMED);
  ctb_tuple_t orig6 = {V6, UDP, "2001:db8::2", 5353, "2001:db8::7", 53};
  ctb_tuple_t reply6 = ctb_inverse(&orig6);
  add_entry(&orig6, &reply6, IPS_CONFIRMED);
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(parse(), 0);
  ck_assert_uint_eq(entries, 2);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(other_protocols_skipped) {
  /* ICMP is translated too (its id), but holds no port; SCTP's ports are
   * not counted either. Both still are entries. */
  reset();
  ctb_tuple_t ping = {V4, IPPROTO_ICMP, "10.0.0.2", 0, "203.0.113.7", 0};
  ctb_tuple_t pong = {V4, IPPROTO_ICMP, "203.0.113.7", 0, "198.51.100.2", 0};
  add_entry(&ping, &pong, SNAT_STATUS);
  ctb_tuple_t sctp = {V4,    IPPROTO_SCTP,  "10.0.0.2",
                      40000, "203.0.113.7", 38412};
  ctb_tuple_t sctp_reply = {V4,    IPPROTO_SCTP,   "203.0.113.7",
                            38412, "198.51.100.2", 61000};
  add_entry(&sctp, &sctp_reply, SNAT_STATUS);
  add_entry(&client, &snat_reply, SNAT_STATUS);
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(entries, 3);
  ck_assert_uint_eq(seen.count, 1);
  ck_assert_uint_eq(seen.flows[0].protocol, TCP);
}
END_TEST

START_TEST(unknown_family_skipped) {
  reset();
  struct nlmsghdr *nlh = add_entry(&client, &snat_reply, SNAT_STATUS);
  struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
  nfg->nfgen_family = AF_BRIDGE;
  ck_assert_int_eq(parse(), 1);
  ck_assert_uint_eq(entries, 1);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(several_entries_in_order) {
  reset();
  for (uint16_t i = 0; i < 20; i++) {
    ctb_tuple_t orig = client;
    orig.src_port = (uint16_t)(40000 + i);
    ctb_tuple_t reply = snat_reply;
    reply.dst_port = (uint16_t)(61000 + i);
    add_entry(&orig, &reply, SNAT_STATUS);
  }
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(parse(), 0);
  ck_assert_uint_eq(seen.count, 20);
  for (size_t i = 0; i < 20; i++)
    ck_assert_uint_eq(seen.flows[i].source_port, 61000 + i);
}
END_TEST

START_TEST(error_message) {
  reset();
  add_end(NLMSG_ERROR, -EPERM); /* no CAP_NET_ADMIN */
  ck_assert_int_eq(parse(), -EPERM);
}
END_TEST

START_TEST(error_after_entries) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_end(NLMSG_ERROR, -EOPNOTSUPP);
  ck_assert_int_eq(parse(), -EOPNOTSUPP);
  ck_assert_uint_eq(seen.count, 1);
}
END_TEST

START_TEST(error_message_too_short) {
  reset();
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(mb.u.bytes);
  nlh->nlmsg_type = NLMSG_ERROR;
  nlh->nlmsg_seq = SEQ;
  nlh->nlmsg_pid = PORTID;
  end_msg(nlh);
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(done_carrying_error) {
  reset();
  add_end(NLMSG_DONE, -ENOBUFS);
  ck_assert_int_eq(parse(), -ENOBUFS);
}
END_TEST

START_TEST(dump_interrupted) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_entry_at(NLM_F_DUMP_INTR, SEQ, &client, &snat_reply, SNAT_STATUS);
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(parse(), -EAGAIN);
  ck_assert_uint_eq(seen.count, 1); /* visits stop at the interruption */
}
END_TEST

START_TEST(visitor_stops_then_malformed) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_end(NLMSG_DONE, 0);
  seen.stop_after = 1;
  ck_assert_int_eq(parse(), 42);
  ck_assert_uint_eq(seen.count, 1);
  ck_assert_uint_eq(entries, 2); /* still read and checked */

  /* A malformed message after the stop outranks it. */
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  struct nlmsghdr *bad = add_entry(&client, &snat_reply, SNAT_STATUS);
  bad->nlmsg_len = sizeof(struct nlmsghdr) + 2;
  seen.stop_after = 1;
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(stale_and_foreign_messages_skipped) {
  reset();
  add_entry_at(0, SEQ - 1, &client, &snat_reply, SNAT_STATUS);
  struct nlmsghdr *other = add_entry(&client, &snat_reply, SNAT_STATUS);
  other->nlmsg_pid = PORTID + 1;
  struct nlmsghdr *stats =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_GET_STATS_CPU), 0, SEQ, AF_UNSPEC);
  end_msg(stats);
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(parse(), 0);
  ck_assert_uint_eq(entries, 1);
  ck_assert_uint_eq(seen.count, 1);
}
END_TEST

START_TEST(truncated_messages) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  size_t whole = mb.len;
  /* The datagram cut inside the message, and inside its header. */
  ck_assert_int_eq(conntrack_parse_buffer(mb.u.bytes, whole - 4, SEQ, PORTID,
                                          collect, &seen, &entries),
                   -EBADMSG);
  ck_assert_int_eq(conntrack_parse_buffer(mb.u.bytes, 10, SEQ, PORTID, collect,
                                          &seen, &entries),
                   -EBADMSG);
  /* A message cut inside an attribute: its length says less than the
   * attributes need. */
  mb.u.align.nlmsg_len -= 4;
  ck_assert_int_eq(parse(), -EBADMSG);
  mb.u.align.nlmsg_len = 0x80000000u; /* mnl_nlmsg_ok would take it */
  ck_assert_int_eq(parse(), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(payload_shorter_than_nfgenmsg) {
  reset();
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(mb.u.bytes);
  nlh->nlmsg_type = CTB_TYPE(IPCTNL_MSG_CT_NEW);
  nlh->nlmsg_seq = SEQ;
  nlh->nlmsg_pid = PORTID;
  mnl_nlmsg_put_extra_header(nlh, 2);
  end_msg(nlh);
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

/* The attribute at offset into the first message. */
static struct nlattr *attr_at(size_t offset) {
  return (struct nlattr *)(mb.u.bytes + offset);
}

#define FIRST_ATTR (NLMSG_HDRLEN + sizeof(struct nfgenmsg))

/* The offset of the attribute that the path of types leads to in the first
 * message, each type a child of the one before it. */
static size_t attr_path(size_t depth, const uint16_t *path) {
  size_t start = FIRST_ATTR, end = mb.u.align.nlmsg_len;
  for (size_t level = 0;; level++) {
    size_t off = start;
    while (off + NLA_HDRLEN <= end &&
           (attr_at(off)->nla_type & NLA_TYPE_MASK) != path[level])
      off += NLA_ALIGN(attr_at(off)->nla_len);
    ck_assert_msg(off + NLA_HDRLEN <= end, "attribute %u not found",
                  path[level]);
    if (level + 1 == depth)
      return off;
    start = off + NLA_HDRLEN;
    end = off + attr_at(off)->nla_len;
  }
}
#define ATTR(...)                                                              \
  attr_path(COUNT(((const uint16_t[]){__VA_ARGS__})),                          \
            (const uint16_t[]){__VA_ARGS__})

START_TEST(nested_attribute_past_its_parent) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  add_end(NLMSG_DONE, 0);
  /* CTA_TUPLE_IP inside CTA_TUPLE_ORIG claims 4 bytes more than its
   * parent holds (the bytes after it are still inside the message). */
  size_t orig = FIRST_ATTR;
  ck_assert_uint_eq(attr_at(orig)->nla_type & NLA_TYPE_MASK, CTA_TUPLE_ORIG);
  size_t ip = orig + NLA_HDRLEN;
  attr_at(ip)->nla_len = (uint16_t)(attr_at(orig)->nla_len - NLA_HDRLEN + 4);
  ck_assert_int_eq(parse(), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(top_attribute_past_the_message) {
  reset();
  struct nlmsghdr *nlh = add_entry(&client, &snat_reply, SNAT_STATUS);
  add_end(NLMSG_DONE, 0);
  size_t id = ATTR(CTA_ID);
  attr_at(id)->nla_len = 12; /* the message ends 8 bytes after it starts */
  ck_assert_uint_eq(id + 8, nlh->nlmsg_len);
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(attribute_shorter_than_its_header) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  size_t status = ATTR(CTA_STATUS);
  attr_at(status)->nla_len = 3;
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(bytes_after_the_last_attribute) {
  reset();
  struct nlmsghdr *nlh = add_entry(&client, &snat_reply, SNAT_STATUS);
  nlh->nlmsg_len += 2; /* a partial attribute header */
  mb.len += 4;
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(missing_reply_tuple) {
  reset();
  struct nlmsghdr *nlh =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_NEW), 0, SEQ, client.family);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_ORIG, &client), 0);
  ctb_put_entry_info(nlh, TCP, SNAT_STATUS);
  end_msg(nlh);
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(tcp_tuple_without_ports) {
  reset();
  ctb_tuple_t icmp_shaped = snat_reply;
  icmp_shaped.protocol = IPPROTO_ICMP; /* built without ports */
  struct nlmsghdr *nlh =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_NEW), 0, SEQ, client.family);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_ORIG, &client), 0);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_REPLY, &icmp_shaped), 0);
  end_msg(nlh);
  /* The reply's protocol number then reads ICMP; make it TCP again. */
  size_t num = ATTR(CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_NUM);
  *((uint8_t *)attr_at(num) + NLA_HDRLEN) = TCP;
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(address_of_wrong_length) {
  reset();
  ctb_tuple_t v6_reply = {V6, TCP, "2001:db8::7", 443, "2001:db8::100", 61000};
  struct nlmsghdr *nlh =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_NEW), 0, SEQ, client.family);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_ORIG, &client), 0);
  ck_assert_int_eq(ctb_put_tuple(nlh, CTA_TUPLE_REPLY, &v6_reply), 0);
  end_msg(nlh);
  /* The IPv6 attributes of an IPv4 entry are not its addresses. */
  ck_assert_int_eq(parse(), -EBADMSG);
  /* 16-byte addresses under the IPv4 types are malformed. */
  attr_at(ATTR(CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V6_SRC))->nla_type =
      CTA_IP_V4_SRC;
  attr_at(ATTR(CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V6_DST))->nla_type =
      CTA_IP_V4_DST;
  ck_assert_int_eq(parse(), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(protocol_number_of_wrong_length) {
  reset();
  add_entry(&client, &snat_reply, SNAT_STATUS);
  size_t num = ATTR(CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_NUM);
  attr_at(num)->nla_len = NLA_HDRLEN + 2;
  ck_assert_int_eq(parse(), -EBADMSG);
}
END_TEST

START_TEST(empty_buffer) {
  reset();
  ck_assert_int_eq(parse(), 1);
}
END_TEST

/* ---- statistics ---- */

static void add_cpu(uint16_t cpu, uint32_t insert_failed, uint32_t drop) {
  struct nlmsghdr *nlh =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_GET_STATS_CPU), 0, SEQ, AF_UNSPEC);
  ((struct nfgenmsg *)mnl_nlmsg_get_payload(nlh))->res_id = htons(cpu);
  mnl_attr_put_u32(nlh, CTA_STATS_FOUND, htonl(7));
  mnl_attr_put_u32(nlh, CTA_STATS_INVALID, htonl(9));
  mnl_attr_put_u32(nlh, CTA_STATS_INSERT, htonl(1000));
  mnl_attr_put_u32(nlh, CTA_STATS_INSERT_FAILED, htonl(insert_failed));
  mnl_attr_put_u32(nlh, CTA_STATS_DROP, htonl(drop));
  mnl_attr_put_u32(nlh, CTA_STATS_EARLY_DROP, htonl(5));
  mnl_attr_put_u32(nlh, CTA_STATS_ERROR, htonl(6));
  mnl_attr_put_u32(nlh, CTA_STATS_SEARCH_RESTART, htonl(8));
  mnl_attr_put_u32(nlh, CTA_STATS_CLASH_RESOLVE, htonl(3));
  mnl_attr_put_u32(nlh, CTA_STATS_CHAIN_TOOLONG, htonl(0));
  end_msg(nlh);
}

static int parse_stats(conntrack_stats_t *stats) {
  memset(stats, 0, sizeof(*stats));
  return conntrack_parse_stats_buffer(mb.u.bytes, mb.len, SEQ, PORTID, stats);
}

START_TEST(stats_summed_over_cpus) {
  reset();
  add_cpu(0, 3, 1);
  add_cpu(1, 4, 2);
  add_cpu(3, 0xffffffffu, 0xfffffffeu); /* 32-bit counters, 64-bit sums */
  add_end(NLMSG_DONE, 0);
  conntrack_stats_t stats;
  ck_assert_int_eq(parse_stats(&stats), 0);
  ck_assert_uint_eq(stats.cpus, 3);
  ck_assert_uint_eq(stats.insert_failed, 7 + 0xffffffffull);
  ck_assert_uint_eq(stats.drop, 3 + 0xfffffffeull);
}
END_TEST

START_TEST(stats_over_two_buffers) {
  reset();
  add_cpu(0, 3, 1);
  conntrack_stats_t stats;
  ck_assert_int_eq(parse_stats(&stats), 1);
  reset();
  add_cpu(1, 4, 2);
  add_end(NLMSG_DONE, 0);
  ck_assert_int_eq(
      conntrack_parse_stats_buffer(mb.u.bytes, mb.len, SEQ, PORTID, &stats), 0);
  ck_assert_uint_eq(stats.cpus, 2);
  ck_assert_uint_eq(stats.insert_failed, 7);
  ck_assert_uint_eq(stats.drop, 3);
}
END_TEST

START_TEST(stats_counter_missing_or_short) {
  reset();
  struct nlmsghdr *nlh =
      begin_msg(CTB_TYPE(IPCTNL_MSG_CT_GET_STATS_CPU), 0, SEQ, AF_UNSPEC);
  mnl_attr_put_u32(nlh, CTA_STATS_INSERT_FAILED, htonl(1));
  end_msg(nlh);
  conntrack_stats_t stats;
  ck_assert_int_eq(parse_stats(&stats), -EBADMSG); /* no CTA_STATS_DROP */

  reset();
  add_cpu(0, 3, 1);
  size_t drop = ATTR(CTA_STATS_DROP);
  attr_at(drop)->nla_len = NLA_HDRLEN + 2;
  ck_assert_int_eq(parse_stats(&stats), -EBADMSG);
}
END_TEST

START_TEST(stats_interrupted_and_error) {
  reset();
  add_cpu(0, 3, 1);
  mb.u.align.nlmsg_flags |= NLM_F_DUMP_INTR;
  conntrack_stats_t stats;
  ck_assert_int_eq(parse_stats(&stats), -EAGAIN);
  ck_assert_uint_eq(stats.cpus, 0);
  reset();
  add_end(NLMSG_ERROR, -EPERM);
  ck_assert_int_eq(parse_stats(&stats), -EPERM);
}
END_TEST

int main(void) {
  Suite *s = suite_create("conntrack");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, snat_entry);
  tcase_add_test(tc, masquerade_keeping_the_port);
  tcase_add_test(tc, port_translated_alone);
  tcase_add_test(tc, ipv6_snat);
  tcase_add_test(tc, udp_snat);
  tcase_add_test(tc, dnat_only_not_counted);
  tcase_add_test(tc, dnat_and_snat_keyed_by_real_destination);
  tcase_add_test(tc, untranslated_not_counted);
  tcase_add_test(tc, other_protocols_skipped);
  tcase_add_test(tc, unknown_family_skipped);
  tcase_add_test(tc, several_entries_in_order);
  tcase_add_test(tc, error_message);
  tcase_add_test(tc, error_after_entries);
  tcase_add_test(tc, error_message_too_short);
  tcase_add_test(tc, done_carrying_error);
  tcase_add_test(tc, dump_interrupted);
  tcase_add_test(tc, visitor_stops_then_malformed);
  tcase_add_test(tc, stale_and_foreign_messages_skipped);
  tcase_add_test(tc, truncated_messages);
  tcase_add_test(tc, payload_shorter_than_nfgenmsg);
  tcase_add_test(tc, nested_attribute_past_its_parent);
  tcase_add_test(tc, top_attribute_past_the_message);
  tcase_add_test(tc, attribute_shorter_than_its_header);
  tcase_add_test(tc, bytes_after_the_last_attribute);
  tcase_add_test(tc, missing_reply_tuple);
  tcase_add_test(tc, tcp_tuple_without_ports);
  tcase_add_test(tc, address_of_wrong_length);
  tcase_add_test(tc, protocol_number_of_wrong_length);
  tcase_add_test(tc, empty_buffer);
  suite_add_tcase(s, tc);

  TCase *stats = tcase_create("stats");
  tcase_add_test(stats, stats_summed_over_cpus);
  tcase_add_test(stats, stats_over_two_buffers);
  tcase_add_test(stats, stats_counter_missing_or_short);
  tcase_add_test(stats, stats_interrupted_and_error);
  suite_add_tcase(s, stats);

  /* Against the kernel, in network namespaces of the tests' own: that
   * takes root. Without it the rest runs and the program says SKIP. */
  bool root = geteuid() == 0;
  if (root)
    suite_add_tcase(s, conntrack_live_tcase());
  int rc = run_suite(s);
  return rc == EXIT_SUCCESS && !root ? 77 : rc;
}
