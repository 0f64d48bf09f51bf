#include "sock_diag.h"

#include "netlink_dump.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The kernel never builds a dump datagram larger than 32 KiB. */
#define SOCK_DIAG_BUFFER_SIZE 32768
#define SOCK_DIAG_RCVBUF (1 << 20)
/* A dump is produced inside our own recv calls, so a wait this long means
 * the kernel lost the dump; better an error than a stuck read thread. */
#define SOCK_DIAG_RECV_TIMEOUT_S 10

struct sock_diag {
  struct mnl_socket *nl;
  uint32_t portid;
  uint32_t seq;
  union {
    struct nlmsghdr align;
    char bytes[SOCK_DIAG_BUFFER_SIZE];
  } buf;
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

/* errno as a negative return; a receive timeout must not read as the
 * -EAGAIN that means "interrupted, retry". */
static int negative_errno(void) {
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return -ETIMEDOUT;
  return errno > 0 ? -errno : -EIO;
}

/* Finds INET_DIAG_CGROUP_ID among the attributes that follow the
 * inet_diag_msg (the kernel sends it for full sockets since Linux 5.8, with
 * no extension bit; TIME_WAIT and NEW_SYN_RECV sockets have none, and it may
 * follow an INET_DIAG_PAD that aligns it). Leaves *cgroup_id alone when the
 * message has none. Returns 0, or -EBADMSG when the attributes cannot be
 * walked (a header cut short, a length below the header or past the
 * message) or the cgroup id is not 8 bytes. */
static int parse_cgroup_id(const struct nlmsghdr *nlh, uint64_t *cgroup_id) {
  const char *payload = mnl_nlmsg_get_payload(nlh);
  size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;
  size_t pos = NLMSG_ALIGN(sizeof(struct inet_diag_msg));
  while (pos < len) {
    struct nlattr attr;
    if (len - pos < sizeof(attr))
      return -EBADMSG;
    memcpy(&attr, payload + pos, sizeof(attr));
    if (attr.nla_len < sizeof(attr) || attr.nla_len > len - pos)
      return -EBADMSG;
    if ((attr.nla_type & NLA_TYPE_MASK) == INET_DIAG_CGROUP_ID) {
      if (attr.nla_len != NLA_HDRLEN + sizeof(*cgroup_id))
        return -EBADMSG;
      memcpy(cgroup_id, payload + pos + NLA_HDRLEN, sizeof(*cgroup_id));
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
  const struct inet_diag_msg *msg = mnl_nlmsg_get_payload(nlh);
  size_t addr_len;
  if (msg->idiag_family == AF_INET)
    addr_len = 4;
  else if (msg->idiag_family == AF_INET6)
    addr_len = 16;
  else
    return -EBADMSG;
  uint64_t cgroup_id = 0;
  if (parse_cgroup_id(nlh, &cgroup_id) != 0)
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
      .cgroup_id = cgroup_id,
  };
  memcpy(sock.local_addr, msg->id.idiag_src, addr_len);
  memcpy(sock.remote_addr, msg->id.idiag_dst, addr_len);
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

static int diag_connect(sock_diag_t *diag, char *err, size_t err_size) {
  struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
  if (nl == NULL) {
    int rc = negative_errno();
    set_err(err, err_size, "socket", -rc);
    return rc;
  }
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) != 0) {
    int rc = negative_errno();
    set_err(err, err_size, "bind", -rc);
    mnl_socket_close(nl);
    return rc;
  }
  /* mnl_socket_setsockopt works at SOL_NETLINK; these are SOL_SOCKET. */
  int fd = mnl_socket_get_fd(nl);
  int size = SOCK_DIAG_RCVBUF;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  struct timeval timeout = {.tv_sec = SOCK_DIAG_RECV_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  diag->nl = nl;
  diag->portid = mnl_socket_get_portid(nl);
  return 0;
}

static void diag_disconnect(sock_diag_t *diag) {
  if (diag->nl != NULL)
    mnl_socket_close(diag->nl);
  diag->nl = NULL;
}

sock_diag_t *sock_diag_open(char *err, size_t err_size) {
  sock_diag_t *diag = calloc(1, sizeof(*diag));
  if (diag == NULL) {
    set_err(err, err_size, "open", ENOMEM);
    errno = ENOMEM;
    return NULL;
  }
  int rc = diag_connect(diag, err, err_size);
  if (rc != 0) {
    free(diag);
    errno = -rc;
    return NULL;
  }
  return diag;
}

void sock_diag_close(sock_diag_t *diag) {
  if (diag == NULL)
    return;
  diag_disconnect(diag);
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

static int send_request(sock_diag_t *diag, const sock_diag_query_t *query) {
  union {
    struct nlmsghdr align;
    char bytes[NLMSG_SPACE(sizeof(struct inet_diag_req)) + MNL_ATTR_HDRLEN +
               4 * sizeof(struct inet_diag_bc_op)];
  } req = {0};
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(req.bytes);
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = diag->seq;
  if (query->family == AF_UNSPEC) {
    /* The older TCP-only request: the kernel walks its tables once for
     * both families, where SOCK_DIAG_BY_FAMILY walks them once per family
     * (the walk, not the copying, is most of a dump's cost). */
    nlh->nlmsg_type = TCPDIAG_GETSOCK;
    struct inet_diag_req *r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
    r->idiag_family = AF_INET;
    r->idiag_states = query->states;
  } else {
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    struct inet_diag_req_v2 *r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
    r->sdiag_family = (uint8_t)query->family;
    r->sdiag_protocol = (uint8_t)query->protocol;
    r->idiag_states = query->states;
  }
  if (query->port_low != 0 || query->port_high != 0)
    put_port_filter(nlh, query->port_low, query->port_high);

  if (mnl_socket_sendto(diag->nl, nlh, nlh->nlmsg_len) < 0)
    return negative_errno();
  return 0;
}

/* Receives until the dump's terminator, so the socket holds nothing of it
 * afterwards. On a failure that leaves the dump's end unknown, the socket
 * is replaced: the kernel drops a dump with its socket. */
static int receive_dump(sock_diag_t *diag, netlink_walk_t *w, char *err,
                        size_t err_size) {
  while (!w->ended) {
    ssize_t n;
    do
      n = mnl_socket_recvfrom(diag->nl, diag->buf.bytes, sizeof(diag->buf));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      int rc = negative_errno();
      set_err(err, err_size, "recv", -rc);
      return rc;
    }
    if (n == 0) {
      set_err(err, err_size, "recv", EBADMSG);
      return -EBADMSG;
    }
    int rc = netlink_walk_buffer(w, diag->buf.bytes, (size_t)n);
    if (rc != 0) {
      set_err(err, err_size, "malformed reply", -rc);
      return rc;
    }
  }
  return 0;
}

int sock_diag_dump(sock_diag_t *diag, const sock_diag_query_t *query,
                   inet_socket_visit_fn visit, void *ctx, char *err,
                   size_t err_size) {
  int family = query->family;
  int protocol = query->protocol;
  if (family == AF_UNSPEC && protocol != IPPROTO_TCP) {
    set_err(err, err_size, "both families at once", EINVAL);
    return -EINVAL;
  }
  if (diag->nl == NULL) {
    int rc = diag_connect(diag, err, err_size);
    if (rc != 0)
      return rc;
  }
  if (++diag->seq == 0)
    diag->seq = 1;

  int rc = send_request(diag, query);
  if (rc != 0) {
    set_err(err, err_size, "send", -rc);
    return rc;
  }

  socket_walk_t sw = {protocol, visit, ctx};
  netlink_walk_t w;
  netlink_walk_begin(&w, diag->seq, diag->portid, NETLINK_DUMP_ANY_TYPE,
                     socket_message, &sw);
  rc = receive_dump(diag, &w, err, err_size);
  if (rc != 0) {
    diag_disconnect(diag);
    /* Reconnect now so the next dump starts clean; if this fails, the next
     * dump tries again. */
    diag_connect(diag, NULL, 0);
    return rc;
  }

  rc = netlink_walk_result(&w);
  if (rc < 0 && err != NULL && err_size > 0) {
    char name[32];
    if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP)
      snprintf(name, sizeof(name), "%s%s",
               protocol == IPPROTO_TCP ? "tcp" : "udp",
               family == AF_INET6 ? "6" : "");
    else
      snprintf(name, sizeof(name), "protocol %d family %d", protocol, family);
    if (rc == -EAGAIN)
      snprintf(err, err_size, "sock_diag: dump %s: interrupted (table changed)",
               name);
    else
      snprintf(err, err_size, "sock_diag: dump %s: %s", name, strerror(-rc));
  }
  return rc;
}
