#include "kernel/conntrack.h"

#include "kernel/netlink_dump.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CTNETLINK_TYPE(msg) ((uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | (msg)))
/* A dump answers with one IPCTNL_MSG_CT_NEW message per entry. */
#define ENTRY_TYPE CTNETLINK_TYPE(IPCTNL_MSG_CT_NEW)
#define STATS_TYPE CTNETLINK_TYPE(IPCTNL_MSG_CT_GET_STATS_CPU)

struct conntrack {
  netlink_dump_t *nl;
  uint64_t last_entries;
};

/* ---- attributes ---- */

/* The attributes in data[0..len): an entry's, or a nested attribute's. */
typedef struct {
  const uint8_t *pos;
  size_t left;
} attr_walk_t;

typedef struct {
  uint16_t type; /* without the NLA_F_NESTED and byte-order flags */
  const uint8_t *data;
  size_t len;
} attr_t;

/* Returns 1 with the next attribute in a, 0 at the end, or -EBADMSG when
 * the next attribute's header or length runs past the end. libmnl's
 * attribute walk is not used: this one is inlined into a loop that runs
 * a dozen times per entry. */
static int next_attr(attr_walk_t *walk, attr_t *a) {
  if (walk->left == 0)
    return 0;
  struct nlattr nla;
  if (walk->left < sizeof(nla))
    return -EBADMSG;
  memcpy(&nla, walk->pos, sizeof(nla));
  if (nla.nla_len < sizeof(nla) || nla.nla_len > walk->left)
    return -EBADMSG;
  a->type = nla.nla_type & NLA_TYPE_MASK;
  a->data = walk->pos + sizeof(nla);
  a->len = nla.nla_len - sizeof(nla);
  size_t step = NLA_ALIGN((size_t)nla.nla_len);
  if (step > walk->left)
    step = walk->left; /* the last attribute's padding may be left out */
  walk->pos += step;
  walk->left -= step;
  return 1;
}

static attr_walk_t nested(const attr_t *a) {
  return (attr_walk_t){a->data, a->len};
}

static uint16_t be16_value(const attr_t *a) {
  uint16_t value;
  memcpy(&value, a->data, sizeof(value));
  return ntohs(value);
}

static uint32_t be32_value(const attr_t *a) {
  uint32_t value;
  memcpy(&value, a->data, sizeof(value));
  return ntohl(value);
}

/* ---- entries ---- */

enum {
  HAS_SRC = 1,
  HAS_DST = 2,
  HAS_PROTOCOL = 4,
  HAS_SRC_PORT = 8,
  HAS_DST_PORT = 16,
  HAS_ALL = 31,
};

/* One direction of an entry, as CTA_TUPLE_ORIG or CTA_TUPLE_REPLY carry
 * it: CTA_TUPLE_IP {addresses}, CTA_TUPLE_PROTO {number, ports}. */
typedef struct {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t protocol;
  unsigned has; /* HAS_* */
} tuple_t;

/* Addresses of the entry's family; those of another family are ignored. */
static int parse_tuple_ip(const attr_t *ip, int family, tuple_t *t) {
  uint16_t src_type = family == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC;
  uint16_t dst_type = family == AF_INET ? CTA_IP_V4_DST : CTA_IP_V6_DST;
  size_t addr_len = family == AF_INET ? 4 : 16;
  attr_walk_t walk = nested(ip);
  attr_t a;
  int rc;
  while ((rc = next_attr(&walk, &a)) > 0) {
    if (a.type != src_type && a.type != dst_type)
      continue;
    if (a.len != addr_len)
      return -EBADMSG;
    memcpy(a.type == src_type ? t->src : t->dst, a.data, addr_len);
    t->has |= a.type == src_type ? HAS_SRC : HAS_DST;
  }
  return rc;
}

static int parse_tuple_proto(const attr_t *proto, tuple_t *t) {
  attr_walk_t walk = nested(proto);
  attr_t a;
  int rc;
  while ((rc = next_attr(&walk, &a)) > 0) {
    if (a.type == CTA_PROTO_NUM) {
      if (a.len != 1)
        return -EBADMSG;
      t->protocol = a.data[0];
      t->has |= HAS_PROTOCOL;
    } else if (a.type == CTA_PROTO_SRC_PORT || a.type == CTA_PROTO_DST_PORT) {
      if (a.len != 2)
        return -EBADMSG;
      bool src = a.type == CTA_PROTO_SRC_PORT;
      *(src ? &t->src_port : &t->dst_port) = be16_value(&a);
      t->has |= src ? HAS_SRC_PORT : HAS_DST_PORT;
    }
  }
  return rc;
}

static int parse_tuple(const attr_t *tuple, int family, tuple_t *t) {
  attr_walk_t walk = nested(tuple);
  attr_t a;
  int rc;
  while ((rc = next_attr(&walk, &a)) > 0) {
    if (a.type == CTA_TUPLE_IP && (family == AF_INET || family == AF_INET6))
      rc = parse_tuple_ip(&a, family, t);
    else if (a.type == CTA_TUPLE_PROTO)
      rc = parse_tuple_proto(&a, t);
    if (rc < 0)
      return rc;
  }
  return rc;
}

/* Parses one entry message. Returns 0 with *translated telling whether
 * flow was filled (a source-translated TCP or UDP flow), or -EBADMSG. */
static int parse_entry(const struct nlmsghdr *nlh, nat_flow_t *flow,
                       bool *translated) {
  size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;
  if (len < sizeof(struct nfgenmsg))
    return -EBADMSG;
  const uint8_t *payload = mnl_nlmsg_get_payload(nlh);
  int family = payload[0]; /* nfgen_family: the entry's l3 protocol */
  tuple_t orig = {0}, reply = {0};
  bool has_orig = false, has_reply = false;
  attr_walk_t walk = {payload + sizeof(struct nfgenmsg),
                      len - sizeof(struct nfgenmsg)};
  attr_t a;
  int rc;
  while ((rc = next_attr(&walk, &a)) > 0) {
    if (a.type == CTA_TUPLE_ORIG) {
      rc = parse_tuple(&a, family, &orig);
      has_orig = true;
    } else if (a.type == CTA_TUPLE_REPLY) {
      rc = parse_tuple(&a, family, &reply);
      has_reply = true;
    }
    if (rc < 0)
      return rc;
  }
  if (rc < 0)
    return rc;
  /* The kernel sends both tuples with the protocol in each. */
  if (!has_orig || !has_reply || !(orig.has & HAS_PROTOCOL) ||
      !(reply.has & HAS_PROTOCOL))
    return -EBADMSG;

  *translated = false;
  if ((family != AF_INET && family != AF_INET6) ||
      (orig.protocol != IPPROTO_TCP && orig.protocol != IPPROTO_UDP))
    return 0;
  if (orig.has != HAS_ALL || reply.has != HAS_ALL)
    return -EBADMSG;
  size_t addr_len = family == AF_INET ? 4 : 16;
  /* SNAT and MASQUERADE rewrite the source, so replies go to another
   * address or port than the original source; DNAT alone rewrites only
   * the destination. */
  if (memcmp(reply.dst, orig.src, addr_len) == 0 &&
      reply.dst_port == orig.src_port)
    return 0;

  memset(flow, 0, sizeof(*flow));
  flow->family = (uint8_t)family;
  flow->protocol = orig.protocol;
  flow->source_port = reply.dst_port;
  flow->destination_port = reply.src_port;
  memcpy(flow->source_addr, reply.dst, addr_len);
  memcpy(flow->destination_addr, reply.src, addr_len);
  *translated = true;
  return 0;
}

typedef struct {
  nat_flow_visit_fn visit;
  void *ctx;
  uint64_t *entries;
} entry_walk_t;

static int entry_message(const struct nlmsghdr *nlh, bool visit, void *ctx) {
  entry_walk_t *ew = ctx;
  nat_flow_t flow;
  bool translated;
  int rc = parse_entry(nlh, &flow, &translated);
  if (rc != 0)
    return rc;
  if (ew->entries != NULL)
    (*ew->entries)++;
  return visit && translated ? ew->visit(&flow, ew->ctx) : 0;
}

int conntrack_parse_buffer(const void *buf, size_t len, uint32_t seq,
                           uint32_t portid, nat_flow_visit_fn visit, void *ctx,
                           uint64_t *entries) {
  entry_walk_t ew = {visit, ctx, entries};
  netlink_walk_t w;
  netlink_walk_begin(&w, seq, portid, ENTRY_TYPE, entry_message, &ew);
  int rc = netlink_walk_buffer(&w, buf, len);
  return rc != 0 ? rc : netlink_walk_result(&w);
}

/* ---- statistics ---- */

/* One CPU's counters: CTA_STATS_* attributes, each a be32. */
static int stats_message(const struct nlmsghdr *nlh, bool visit, void *ctx) {
  size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;
  if (len < sizeof(struct nfgenmsg))
    return -EBADMSG;
  const uint8_t *payload = mnl_nlmsg_get_payload(nlh);
  attr_walk_t walk = {payload + sizeof(struct nfgenmsg),
                      len - sizeof(struct nfgenmsg)};
  uint32_t insert_failed = 0, drop = 0;
  unsigned has = 0;
  attr_t a;
  int rc;
  while ((rc = next_attr(&walk, &a)) > 0) {
    if (a.type != CTA_STATS_INSERT_FAILED && a.type != CTA_STATS_DROP)
      continue;
    if (a.len != 4)
      return -EBADMSG;
    bool failed = a.type == CTA_STATS_INSERT_FAILED;
    *(failed ? &insert_failed : &drop) = be32_value(&a);
    has |= failed ? 1 : 2;
  }
  if (rc < 0 || has != 3)
    return -EBADMSG;
  if (visit) {
    conntrack_stats_t *stats = ctx;
    stats->insert_failed += insert_failed;
    stats->drop += drop;
    stats->cpus++;
  }
  return 0;
}

int conntrack_parse_stats_buffer(const void *buf, size_t len, uint32_t seq,
                                 uint32_t portid, conntrack_stats_t *stats) {
  netlink_walk_t w;
  netlink_walk_begin(&w, seq, portid, STATS_TYPE, stats_message, stats);
  int rc = netlink_walk_buffer(&w, buf, len);
  return rc != 0 ? rc : netlink_walk_result(&w);
}

/* ---- requests ---- */

conntrack_t *conntrack_open(char *err, size_t err_size) {
  conntrack_t *ct = calloc(1, sizeof(*ct));
  if (ct == NULL) {
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "conntrack: open: %s", strerror(ENOMEM));
    errno = ENOMEM;
    return NULL;
  }
  ct->nl = netlink_dump_open(NETLINK_NETFILTER, "conntrack", err, err_size);
  if (ct->nl == NULL) {
    int saved = errno;
    free(ct);
    errno = saved;
    return NULL;
  }
  return ct;
}

void conntrack_close(conntrack_t *ct) {
  if (ct == NULL)
    return;
  netlink_dump_close(ct->nl);
  free(ct);
}

typedef union {
  struct nlmsghdr align;
  char bytes[NLMSG_SPACE(sizeof(struct nfgenmsg)) + 2 * MNL_ATTR_HDRLEN +
             2 * sizeof(uint32_t)];
} request_t;

static struct nlmsghdr *put_request(request_t *req, uint8_t msg, int family) {
  memset(req, 0, sizeof(*req));
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(req->bytes);
  nlh->nlmsg_type = CTNETLINK_TYPE(msg);
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
  nfg->nfgen_family = (uint8_t)family;
  nfg->version = NFNETLINK_V0;
  return nlh;
}

int conntrack_dump(conntrack_t *ct, const conntrack_query_t *query,
                   nat_flow_visit_fn visit, void *ctx, char *err,
                   size_t err_size) {
  int family = query->family;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "conntrack: dump family %d: %s", family,
               strerror(EINVAL));
    return -EINVAL;
  }
  request_t req;
  struct nlmsghdr *nlh = put_request(&req, IPCTNL_MSG_CT_GET, family);
  if (!query->every_entry) {
    /* Linux 5.15+: only entries with (status & mask) == value are copied
     * out. Older kernels ignore both attributes and send every entry. */
    mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_SRC_NAT));
    mnl_attr_put_u32(nlh, CTA_STATUS_MASK, htonl(IPS_SRC_NAT));
  }
  ct->last_entries = 0;
  entry_walk_t ew = {visit, ctx, &ct->last_entries};
  return netlink_dump_run(ct->nl, nlh, ENTRY_TYPE, entry_message, &ew, "dump",
                          err, err_size);
}

uint64_t conntrack_last_entries(const conntrack_t *ct) {
  return ct->last_entries;
}

int conntrack_stats(conntrack_t *ct, conntrack_stats_t *stats, char *err,
                    size_t err_size) {
  request_t req;
  struct nlmsghdr *nlh =
      put_request(&req, IPCTNL_MSG_CT_GET_STATS_CPU, AF_UNSPEC);
  conntrack_stats_t sum = {0};
  int rc = netlink_dump_run(ct->nl, nlh, STATS_TYPE, stats_message, &sum,
                            "statistics", err, err_size);
  *stats = rc == 0 ? sum : (conntrack_stats_t){0};
  return rc;
}
