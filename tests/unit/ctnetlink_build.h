/* ctnetlink messages built by hand, as the kernel sends them in a dump
 * (the unit tests' buffers) and as user space asks for a new entry
 * (IPCTNL_MSG_CT_NEW: the live tests, the benchmark's table filler): the
 * tuple attributes are the same in both. Header-only, for test programs. */
#ifndef EPHEMERAL_PORTS_CTNETLINK_BUILD_H
#define EPHEMERAL_PORTS_CTNETLINK_BUILD_H

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CTB_TYPE(msg) ((uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | (msg)))
/* TCP_CONNTRACK_ESTABLISHED of the kernel's enum tcp_conntrack. */
#define CTB_TCP_ESTABLISHED 3

/* One direction: protocol, source and destination address and port. */
typedef struct {
  int family;
  uint8_t protocol;
  const char *src;
  uint16_t src_port;
  const char *dst;
  uint16_t dst_port;
} ctb_tuple_t;

/* A nest flagged NLA_F_NESTED, as the kernel's nla_nest_start makes. */
static inline struct nlattr *ctb_nest(struct nlmsghdr *nlh, uint16_t type) {
  struct nlattr *nest = mnl_attr_nest_start(nlh, type);
  nest->nla_type |= NLA_F_NESTED;
  return nest;
}

/* Returns 0, or -1 when an address does not parse in the family. */
static inline int ctb_put_address(struct nlmsghdr *nlh, uint16_t type,
                                  int family, const char *text) {
  uint8_t addr[16];
  if (inet_pton(family, text, addr) != 1)
    return -1;
  mnl_attr_put(nlh, type, family == AF_INET ? 4 : 16, addr);
  return 0;
}

/* CTA_TUPLE_ORIG or CTA_TUPLE_REPLY {IP {src, dst}, PROTO {num, ports}}.
 * ICMP tuples carry no ports. Returns 0 or -1. */
static inline int ctb_put_tuple(struct nlmsghdr *nlh, uint16_t type,
                                const ctb_tuple_t *t) {
  struct nlattr *tuple = ctb_nest(nlh, type);
  struct nlattr *ip = ctb_nest(nlh, CTA_TUPLE_IP);
  int v4 = t->family == AF_INET;
  if (ctb_put_address(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, t->family,
                      t->src) != 0 ||
      ctb_put_address(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, t->family,
                      t->dst) != 0)
    return -1;
  mnl_attr_nest_end(nlh, ip);
  struct nlattr *proto = ctb_nest(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->protocol);
  if (t->protocol != IPPROTO_ICMP && t->protocol != IPPROTO_ICMPV6) {
    mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->src_port));
    mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dst_port));
  }
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
  return 0;
}

/* The reply tuple of an untranslated flow. */
static inline ctb_tuple_t ctb_inverse(const ctb_tuple_t *t) {
  ctb_tuple_t inverse = {t->family,   t->protocol, t->dst,
                         t->dst_port, t->src,      t->src_port};
  return inverse;
}

/* A message header and its nfgenmsg at buf. */
static inline struct nlmsghdr *ctb_put_header(void *buf, uint16_t type,
                                              uint16_t flags, uint32_t seq,
                                              uint32_t portid, int family) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  nlh->nlmsg_pid = portid;
  struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
  nfg->nfgen_family = (uint8_t)family;
  nfg->version = NFNETLINK_V0;
  return nlh;
}

/* The attributes a dump sends after the tuples, trimmed: status, timeout,
 * TCP protocol info, use count, id. */
static inline void ctb_put_entry_info(struct nlmsghdr *nlh, uint8_t protocol,
                                      uint32_t status) {
  mnl_attr_put_u32(nlh, CTA_STATUS, htonl(status));
  mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(431999));
  if (protocol == IPPROTO_TCP) {
    struct nlattr *info = ctb_nest(nlh, CTA_PROTOINFO);
    struct nlattr *tcp = ctb_nest(nlh, CTA_PROTOINFO_TCP);
    mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, CTB_TCP_ESTABLISHED);
    mnl_attr_nest_end(nlh, tcp);
    mnl_attr_nest_end(nlh, info);
  }
  mnl_attr_put_u32(nlh, CTA_USE, htonl(1));
  mnl_attr_put_u32(nlh, CTA_ID, htonl(0x12345678));
}

/* CTA_NAT_SRC (or CTA_NAT_DST) {MINIP, MAXIP, PROTO {PORT_MIN, PORT_MAX}}
 * for one address and one port: what nf_nat then sets up for the entry.
 * Returns 0 or -1. */
static inline int ctb_put_nat(struct nlmsghdr *nlh, uint16_t type, int family,
                              const char *addr, uint16_t port) {
  struct nlattr *nat = ctb_nest(nlh, type);
  int v4 = family == AF_INET;
  if (ctb_put_address(nlh, v4 ? CTA_NAT_V4_MINIP : CTA_NAT_V6_MINIP, family,
                      addr) != 0 ||
      ctb_put_address(nlh, v4 ? CTA_NAT_V4_MAXIP : CTA_NAT_V6_MAXIP, family,
                      addr) != 0)
    return -1;
  struct nlattr *proto = ctb_nest(nlh, CTA_NAT_PROTO);
  mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MIN, htons(port));
  mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MAX, htons(port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, nat);
  return 0;
}

/* An IPCTNL_MSG_CT_NEW request at buf for the flow orig, not translated
 * (ctb_put_nat after it: translated), living timeout seconds. Returns the
 * message, or NULL when an address does not parse. */
static inline struct nlmsghdr *ctb_put_new_entry(void *buf, uint32_t seq,
                                                 const ctb_tuple_t *orig,
                                                 uint32_t timeout) {
  struct nlmsghdr *nlh =
      ctb_put_header(buf, CTB_TYPE(IPCTNL_MSG_CT_NEW),
                     NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, seq,
                     0, orig->family);
  ctb_tuple_t reply = ctb_inverse(orig);
  if (ctb_put_tuple(nlh, CTA_TUPLE_ORIG, orig) != 0 ||
      ctb_put_tuple(nlh, CTA_TUPLE_REPLY, &reply) != 0)
    return NULL;
  mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(timeout));
  if (orig->protocol == IPPROTO_TCP) {
    struct nlattr *info = ctb_nest(nlh, CTA_PROTOINFO);
    struct nlattr *tcp = ctb_nest(nlh, CTA_PROTOINFO_TCP);
    mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, CTB_TCP_ESTABLISHED);
    mnl_attr_nest_end(nlh, tcp);
    mnl_attr_nest_end(nlh, info);
  }
  return nlh;
}

#endif
