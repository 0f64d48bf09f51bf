#include "kernel/netlink_dump.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

/* The kernel never builds a dump datagram larger than 32 KiB. */
#define NETLINK_DUMP_BUFFER_SIZE 32768
#define NETLINK_DUMP_RCVBUF (1 << 20)
/* A dump is produced inside our own recv calls, so a wait this long means
 * the kernel lost the dump; better an error than a stuck read thread. */
#define NETLINK_DUMP_RECV_TIMEOUT_S 10
#define NETLINK_DUMP_NAME_MAX 32

struct netlink_dump {
  struct mnl_socket *nl;
  int bus;
  uint32_t portid;
  uint32_t seq;
  char name[NETLINK_DUMP_NAME_MAX];
  union {
    struct nlmsghdr align;
    char bytes[NETLINK_DUMP_BUFFER_SIZE];
  } buf;
};

void netlink_walk_begin(netlink_walk_t *walk, uint32_t seq, uint32_t portid,
                        uint16_t type, netlink_message_fn message, void *ctx) {
  memset(walk, 0, sizeof(*walk));
  walk->seq = seq;
  walk->portid = portid;
  walk->type = type;
  walk->message = message;
  walk->ctx = ctx;
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

static int walk_message(netlink_walk_t *w, const struct nlmsghdr *nlh) {
  if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
    w->interrupted = true;
  if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR) {
    w->ended = true;
    w->end_error = end_error(nlh);
    return w->end_error == -EBADMSG ? -EBADMSG : 0;
  }
  if (w->type == NETLINK_DUMP_ANY_TYPE ? nlh->nlmsg_type < NLMSG_MIN_TYPE
                                       : nlh->nlmsg_type != w->type)
    return 0;
  bool visit = w->stopped == 0 && !w->interrupted;
  int rc = w->message(nlh, visit, w->ctx);
  if (rc == -EBADMSG)
    return -EBADMSG;
  if (visit && rc != 0)
    w->stopped = rc;
  return 0;
}

/* libmnl's mnl_nlmsg_ok is not used: it casts nlmsg_len to int, so a
 * length >= 2 GiB passes its check. */
int netlink_walk_buffer(netlink_walk_t *w, const void *buf, size_t len) {
  const char *pos = buf;
  while (len > 0 && !w->ended) {
    if (len < NLMSG_HDRLEN)
      return -EBADMSG;
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)pos;
    if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
      return -EBADMSG;
    if (nlh->nlmsg_seq == w->seq && nlh->nlmsg_pid == w->portid) {
      int rc = walk_message(w, nlh);
      if (rc != 0)
        return rc;
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

int netlink_walk_result(const netlink_walk_t *w) {
  if (w->stopped != 0)
    return w->stopped;
  if (w->ended && w->end_error != 0)
    return w->end_error;
  if (w->interrupted)
    return -EAGAIN;
  return w->ended ? 0 : 1;
}

static void set_err(const netlink_dump_t *dump, char *err, size_t err_size,
                    const char *what, const char *reason) {
  if (err != NULL && err_size > 0)
    snprintf(err, err_size, "%s: %s: %s", dump->name, what, reason);
}

/* errno as a negative return; a receive timeout must not read as the
 * -EAGAIN that means "interrupted, retry". */
static int negative_errno(void) {
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return -ETIMEDOUT;
  return errno > 0 ? -errno : -EIO;
}

static int dump_connect(netlink_dump_t *dump, char *err, size_t err_size) {
  struct mnl_socket *nl = mnl_socket_open2(dump->bus, SOCK_CLOEXEC);
  if (nl == NULL) {
    int rc = negative_errno();
    set_err(dump, err, err_size, "socket", strerror(-rc));
    return rc;
  }
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) != 0) {
    int rc = negative_errno();
    set_err(dump, err, err_size, "bind", strerror(-rc));
    mnl_socket_close(nl);
    return rc;
  }
  /* mnl_socket_setsockopt works at SOL_NETLINK; these are SOL_SOCKET. */
  int fd = mnl_socket_get_fd(nl);
  int size = NETLINK_DUMP_RCVBUF;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  struct timeval timeout = {.tv_sec = NETLINK_DUMP_RECV_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  dump->nl = nl;
  dump->portid = mnl_socket_get_portid(nl);
  return 0;
}

static void dump_disconnect(netlink_dump_t *dump) {
  if (dump->nl != NULL)
    mnl_socket_close(dump->nl);
  dump->nl = NULL;
}

netlink_dump_t *netlink_dump_open(int bus, const char *name, char *err,
                                  size_t err_size) {
  netlink_dump_t *dump = calloc(1, sizeof(*dump));
  if (dump == NULL) {
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "%s: open: %s", name, strerror(ENOMEM));
    errno = ENOMEM;
    return NULL;
  }
  dump->bus = bus;
  snprintf(dump->name, sizeof(dump->name), "%s", name);
  int rc = dump_connect(dump, err, err_size);
  if (rc != 0) {
    free(dump);
    errno = -rc;
    return NULL;
  }
  return dump;
}

void netlink_dump_close(netlink_dump_t *dump) {
  if (dump == NULL)
    return;
  dump_disconnect(dump);
  free(dump);
}

/* Receives until the dump's terminator, so the socket holds nothing of it
 * afterwards. */
static int receive_dump(netlink_dump_t *dump, netlink_walk_t *w, char *err,
                        size_t err_size) {
  while (!w->ended) {
    ssize_t n;
    do
      n = mnl_socket_recvfrom(dump->nl, dump->buf.bytes, sizeof(dump->buf));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      int rc = negative_errno();
      set_err(dump, err, err_size, "recv", strerror(-rc));
      return rc;
    }
    if (n == 0) {
      set_err(dump, err, err_size, "recv", strerror(EBADMSG));
      return -EBADMSG;
    }
    int rc = netlink_walk_buffer(w, dump->buf.bytes, (size_t)n);
    if (rc != 0) {
      set_err(dump, err, err_size, "malformed reply", strerror(-rc));
      return rc;
    }
  }
  return 0;
}

int netlink_dump_run(netlink_dump_t *dump, struct nlmsghdr *request,
                     uint16_t reply_type, netlink_message_fn message, void *ctx,
                     const char *what, char *err, size_t err_size) {
  if (dump->nl == NULL) {
    int rc = dump_connect(dump, err, err_size);
    if (rc != 0)
      return rc;
  }
  if (++dump->seq == 0)
    dump->seq = 1;
  request->nlmsg_seq = dump->seq;
  request->nlmsg_pid = 0;
  if (mnl_socket_sendto(dump->nl, request, request->nlmsg_len) < 0) {
    int rc = negative_errno();
    set_err(dump, err, err_size, "send", strerror(-rc));
    return rc;
  }

  netlink_walk_t w;
  netlink_walk_begin(&w, dump->seq, dump->portid, reply_type, message, ctx);
  int rc = receive_dump(dump, &w, err, err_size);
  if (rc != 0) {
    /* The dump's end is unknown: a new socket, so the next dump starts
     * clean; if this fails, the next dump tries again. */
    dump_disconnect(dump);
    dump_connect(dump, NULL, 0);
    return rc;
  }
  rc = netlink_walk_result(&w);
  if (rc == -EAGAIN)
    set_err(dump, err, err_size, what, "interrupted (table changed)");
  else if (rc < 0)
    set_err(dump, err, err_size, what, strerror(-rc));
  return rc;
}
