#include "sock_diag.h"

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

/* What a walk over the datagrams of one dump has seen so far. */
typedef struct {
  uint32_t seq;
  uint32_t portid;
  int protocol;
  inet_socket_visit_fn visit;
  void *ctx;
  int stopped;      /* the visitor's non-zero return; no more visits */
  bool interrupted; /* a message carried NLM_F_DUMP_INTR */
  bool ended;       /* NLMSG_DONE or NLMSG_ERROR seen */
  int end_error;    /* the kernel's negative errno at the end, or 0 */
} dump_walk_t;

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

static int visit_socket(dump_walk_t *w, const struct nlmsghdr *nlh) {
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
  if (w->stopped != 0 || w->interrupted)
    return 0;

  inet_socket_t sock = {
      .family = msg->idiag_family,
      .protocol = (uint8_t)w->protocol,
      .state = msg->idiag_state,
      .local_port = ntohs(msg->id.idiag_sport),
      .remote_port = ntohs(msg->id.idiag_dport),
      .cgroup_id = cgroup_id,
  };
  memcpy(sock.local_addr, msg->id.idiag_src, addr_len);
  memcpy(sock.remote_addr, msg->id.idiag_dst, addr_len);
  w->stopped = w->visit(&sock, w->ctx);
  return 0;
}

/* The terminator's error: NLMSG_ERROR always carries one, NLMSG_DONE does
 * since Linux 4.x (an int, 0 or the dump's negative errno). */
static int end_error(const struct nlmsghdr *nlh) {
  size_t payload_len = nlh->nlmsg_len - NLMSG_HDRLEN;
  int error;
  if (payload_len < sizeof(error))
    return nlh->nlmsg_type == NLMSG_DONE ? 0 : -EBADMSG;
  memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
  if (error > 0 || error < -4095)
    return -EBADMSG;
  return error;
}

/* Walks one datagram, updating w. Returns 0, or -EBADMSG when the datagram
 * cannot be walked (the rest of the dump is then unreliable). Messages of
 * another sequence or port id (a stale dump, a notification) are skipped.
 * libmnl's mnl_nlmsg_ok is not used: it casts nlmsg_len to int, so a
 * length >= 2 GiB passes its check. */
static int walk_buffer(dump_walk_t *w, const void *buf, size_t len) {
  const char *pos = buf;
  while (len > 0 && !w->ended) {
    if (len < NLMSG_HDRLEN)
      return -EBADMSG;
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)pos;
    if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
      return -EBADMSG;

    if (nlh->nlmsg_seq == w->seq && nlh->nlmsg_pid == w->portid) {
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
        w->interrupted = true;
      if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR) {
        w->ended = true;
        w->end_error = end_error(nlh);
        if (w->end_error == -EBADMSG)
          return -EBADMSG;
      } else if (nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY ||
                 nlh->nlmsg_type == TCPDIAG_GETSOCK) {
        int rc = visit_socket(w, nlh);
        if (rc != 0)
          return rc;
      }
    }

    size_t step = ((size_t)nlh->nlmsg_len + NLMSG_ALIGNTO - 1) &
                  ~(size_t)(NLMSG_ALIGNTO - 1);
    if (step >= len)
      break;
    pos += step;
    len -= step;
  }
  return 0;
}

/* The outcome of a walk: the visitor's stop wins (the caller asked for
 * it), then the kernel's error, then an interruption. */
static int walk_result(const dump_walk_t *w) {
  if (w->stopped != 0)
    return w->stopped;
  if (w->ended && w->end_error != 0)
    return w->end_error;
  if (w->interrupted)
    return -EAGAIN;
  return w->ended ? 0 : 1;
}

int sock_diag_parse_buffer(const void *buf, size_t len, uint32_t seq,
                           uint32_t portid, int protocol,
                           inet_socket_visit_fn visit, void *ctx) {
  dump_walk_t w = {.seq = seq,
                   .portid = portid,
                   .protocol = protocol,
                   .visit = visit,
                   .ctx = ctx};
  int rc = walk_buffer(&w, buf, len);
  return rc != 0 ? rc : walk_result(&w);
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
static int receive_dump(sock_diag_t *diag, dump_walk_t *w, char *err,
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
    int rc = walk_buffer(w, diag->buf.bytes, (size_t)n);
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

  dump_walk_t w = {.seq = diag->seq,
                   .portid = diag->portid,
                   .protocol = protocol,
                   .visit = visit,
                   .ctx = ctx};
  rc = receive_dump(diag, &w, err, err_size);
  if (rc != 0) {
    diag_disconnect(diag);
    /* Reconnect now so the next dump starts clean; if this fails, the next
     * dump tries again. */
    diag_connect(diag, NULL, 0);
    return rc;
  }

  rc = walk_result(&w);
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
