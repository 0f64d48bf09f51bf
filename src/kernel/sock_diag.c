#include "kernel/sock_diag.h"

#include "kernel/netlink_dump.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct sock_diag {
  netlink_dump_t *nl;
};

/* Where a dump's sockets go. */
typedef struct {
  int protocol; /* the request's: inet_diag_msg does not carry it */
  inet_socket_visit_fn visit;
  void *ctx;
} socket_walk_t;

static void set_err(char *err, size_t err_size, const char *what, int error) {
  if (err != NULL && err_size > 0)
    snprintf(err, err_size, "sock_diag: %s: %s", what, strerror(error));
}

/* What the attributes after an inet_diag_msg tell of a socket. */
typedef struct {
  uint64_t cgroup_id;
  uint8_t timestamps;
} socket_attributes_t;

/* tcp_info's tcpi_options, the sixth byte of every version of the struct. */
#define TCP_INFO_OPTIONS_OFFSET 5

/* Walks the attributes that follow the inet_diag_msg: INET_DIAG_CGROUP_ID
 * (sent for full sockets since Linux 5.8 with no extension bit; TIME_WAIT
 * and NEW_SYN_RECV sockets have none, and it may follow an INET_DIAG_PAD
 * that aligns it) and INET_DIAG_INFO (tcp_info, when the dump asked for
 * it). Returns 0, or -EBADMSG when the attributes cannot be walked (a
 * header cut short, a length below the header or past the message), the
 * cgroup id is not 8 bytes or tcp_info too short to hold its options. */
static int parse_attributes(const struct nlmsghdr *nlh,
                            socket_attributes_t *attrs) {
  const char *payload = NLMSG_DATA(nlh);
  size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;
  size_t pos = NLMSG_ALIGN(sizeof(struct inet_diag_msg));
  while (pos < len) {
    struct nlattr attr;
    if (len - pos < sizeof(attr))
      return -EBADMSG;
    memcpy(&attr, payload + pos, sizeof(attr));
    if (attr.nla_len < sizeof(attr) || attr.nla_len > len - pos)
      return -EBADMSG;
    const char *data = payload + pos + NLA_HDRLEN;
    switch (attr.nla_type & NLA_TYPE_MASK) {
    case INET_DIAG_CGROUP_ID:
      if (attr.nla_len != NLA_HDRLEN + sizeof(attrs->cgroup_id))
        return -EBADMSG;
      memcpy(&attrs->cgroup_id, data, sizeof(attrs->cgroup_id));
      break;
    case INET_DIAG_INFO:
      if (attr.nla_len <= NLA_HDRLEN + TCP_INFO_OPTIONS_OFFSET)
        return -EBADMSG;
      attrs->timestamps = (data[TCP_INFO_OPTIONS_OFFSET] & TCPI_OPT_TIMESTAMPS)
                              ? INET_TIMESTAMPS_YES
                              : INET_TIMESTAMPS_NO;
      break;
    }
    pos += NLA_ALIGN(attr.nla_len);
  }
  return 0;
}

/* One message of a dump: a socket, as SOCK_DIAG_BY_FAMILY or, for the
 * older TCP-only request, TCPDIAG_GETSOCK; other types are skipped. A
 * visitor's -EBADMSG would read as a malformed message; none returns it. */
static int socket_message(const struct nlmsghdr *nlh, bool visit, void *ctx) {
  if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY &&
      nlh->nlmsg_type != TCPDIAG_GETSOCK)
    return 0;
  if (nlh->nlmsg_len - NLMSG_HDRLEN < sizeof(struct inet_diag_msg))
    return -EBADMSG;
  /* NLMSG_DATA, not libmnl's function: a call per socket. */
  const struct inet_diag_msg *msg = NLMSG_DATA(nlh);
  size_t addr_len;
  if (msg->idiag_family == AF_INET)
    addr_len = 4;
  else if (msg->idiag_family == AF_INET6)
    addr_len = 16;
  else
    return -EBADMSG;
  socket_attributes_t attrs = {0, INET_TIMESTAMPS_UNKNOWN};
  if (parse_attributes(nlh, &attrs) != 0)
    return -EBADMSG;
  if (!visit)
    return 0;

  const socket_walk_t *sw = ctx;
  inet_socket_t sock = {
      .family = msg->idiag_family,
      .protocol = (uint8_t)sw->protocol,
      .state = msg->idiag_state,
      .local_port = ntohs(msg->id.idiag_sport),
      .remote_port = ntohs(msg->id.idiag_dport),
      .cgroup_id = attrs.cgroup_id,
      .expires_ms = msg->idiag_expires,
      .bound_if = msg->id.idiag_if,
      .timestamps = attrs.timestamps,
  };
  /* Constant sizes: a copy of a variable length is a loop. */
  if (addr_len == 4) {
    memcpy(sock.local_addr, msg->id.idiag_src, 4);
    memcpy(sock.remote_addr, msg->id.idiag_dst, 4);
  } else {
    memcpy(sock.local_addr, msg->id.idiag_src, 16);
    memcpy(sock.remote_addr, msg->id.idiag_dst, 16);
  }
  return sw->visit(&sock, sw->ctx);
}

int sock_diag_parse_buffer(const void *buf, size_t len, uint32_t seq,
                           uint32_t portid, int protocol,
                           inet_socket_visit_fn visit, void *ctx) {
  socket_walk_t sw = {protocol, visit, ctx};
  netlink_walk_t w;
  netlink_walk_begin(&w, seq, portid, NETLINK_DUMP_ANY_TYPE, socket_message,
                     &sw);
  int rc = netlink_walk_buffer(&w, buf, len);
  return rc != 0 ? rc : netlink_walk_result(&w);
}

sock_diag_t *sock_diag_open(char *err, size_t err_size) {
  sock_diag_t *diag = calloc(1, sizeof(*diag));
  if (diag == NULL) {
    set_err(err, err_size, "open", ENOMEM);
    errno = ENOMEM;
    return NULL;
  }
  diag->nl = netlink_dump_open(NETLINK_SOCK_DIAG, "sock_diag", err, err_size);
  if (diag->nl == NULL) {
    int saved = errno;
    free(diag);
    errno = saved;
    return NULL;
  }
  return diag;
}

void sock_diag_close(sock_diag_t *diag) {
  if (diag == NULL)
    return;
  netlink_dump_close(diag->nl);
  free(diag);
}

/* inet_diag bytecode for "port_low <= local port <= port_high". Each op
 * jumps by "yes" bytes when its test holds and by "no" when not; a jump to
 * the end accepts the socket, one 4 bytes past it rejects it. */
static void put_port_filter(struct nlmsghdr *nlh, uint16_t low, uint16_t high) {
  const struct inet_diag_bc_op ops[] = {
      {INET_DIAG_BC_S_GE, 8, 20},
      {0, 0, low},
      {INET_DIAG_BC_S_LE, 8, 12},
      {0, 0, high},
  };
  mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(ops), ops);
}

typedef union {
  struct nlmsghdr align;
  char bytes[NLMSG_SPACE(sizeof(struct inet_diag_req)) + MNL_ATTR_HDRLEN +
             4 * sizeof(struct inet_diag_bc_op)];
} request_t;

static struct nlmsghdr *put_request(request_t *req,
                                    const sock_diag_query_t *query) {
  memset(req, 0, sizeof(*req));
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(req->bytes);
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  uint8_t ext = query->tcp_info ? 1u << (INET_DIAG_INFO - 1) : 0;
  if (query->family == AF_UNSPEC) {
    /* The older TCP-only request: the kernel walks its tables once for
     * both families, where SOCK_DIAG_BY_FAMILY walks them once per family
     * (the walk, not the copying, is most of a dump's cost). */
    nlh->nlmsg_type = TCPDIAG_GETSOCK;
    struct inet_diag_req *r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
    r->idiag_family = AF_INET;
    r->idiag_states = query->states;
    r->idiag_ext = ext;
  } else {
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    struct inet_diag_req_v2 *r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
    r->sdiag_family = (uint8_t)query->family;
    r->sdiag_protocol = (uint8_t)query->protocol;
    r->idiag_states = query->states;
    r->idiag_ext = ext;
  }
  if (query->port_low != 0 || query->port_high != 0)
    put_port_filter(nlh, query->port_low, query->port_high);
  return nlh;
}

/* What errors call the dump: "dump tcp6", or by numbers for another
 * protocol. */
static const char *dump_name(const sock_diag_query_t *query, char *buf,
                             size_t size) {
  bool v6 = query->family == AF_INET6;
  if (query->protocol == IPPROTO_TCP)
    return v6 ? "dump tcp6" : "dump tcp";
  if (query->protocol == IPPROTO_UDP)
    return v6 ? "dump udp6" : "dump udp";
  snprintf(buf, size, "dump protocol %d family %d", query->protocol,
           query->family);
  return buf;
}

int sock_diag_dump(sock_diag_t *diag, const sock_diag_query_t *query,
                   inet_socket_visit_fn visit, void *ctx, char *err,
                   size_t err_size) {
  if (query->family == AF_UNSPEC && query->protocol != IPPROTO_TCP) {
    set_err(err, err_size, "both families at once", EINVAL);
    return -EINVAL;
  }
  request_t req;
  struct nlmsghdr *nlh = put_request(&req, query);
  char buf[sizeof("dump ") + 31]; /* the numbers cut at 31 characters */
  const char *what = dump_name(query, buf, sizeof(buf));
  socket_walk_t sw = {query->protocol, visit, ctx};
  return netlink_dump_run(diag->nl, nlh, NETLINK_DUMP_ANY_TYPE, socket_message,
                          &sw, what, err, err_size);
}
