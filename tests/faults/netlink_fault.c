/* An LD_PRELOAD shim that breaks NETLINK_SOCK_DIAG (and ctnetlink's
 * NETLINK_NETFILTER) for the fault tests. Only those sockets are touched:
 * glibc's getaddrinfo (used by write_prometheus) opens NETLINK_ROUTE
 * sockets, which must keep working.
 *
 * The mode is the first word of the file named by EP_FAULT_CONTROL, read
 * at every call (so a test switches modes while collectd runs), or of
 * EP_FAULT when that file is absent:
 *   off               nothing
 *   socket            socket(AF_NETLINK, ..., NETLINK_SOCK_DIAG) fails EACCES
 *   bind              bind() of a sock_diag socket fails EACCES
 *   dump_intr_once    the next datagram received on a sock_diag socket gets
 *                     NLM_F_DUMP_INTR; the control file then says "off"
 *   dump_intr_always  every such datagram gets NLM_F_DUMP_INTR
 *   ct_socket         socket(AF_NETLINK, ..., NETLINK_NETFILTER) fails EACCES
 * EP_FAULT_LOG, if set, gets one line "<event> <unix time>" per injected
 * fault (the fault's name) and per dump request sent on a sock_diag socket
 * ("request", then "request_udp" when it asks for UDP sockets), whatever
 * the mode: a test groups requests into reads; and
 * per ctnetlink request, a table dump ("ct_dump") or the statistics
 * ("ct_stats"), so that a test sees which reads walked the conntrack table.
 * EP_BIND_LOG, if set, gets one line "<port>" per bind() of an AF_INET or
 * AF_INET6 socket: a test proves that the plugin takes no port.
 * libmnl 1.0.4 uses socket, bind, sendto and recvmsg (nm -D libmnl.so.0). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef enum {
  FAULT_OFF,
  FAULT_SOCKET,
  FAULT_BIND,
  FAULT_DUMP_INTR_ONCE,
  FAULT_DUMP_INTR_ALWAYS,
  FAULT_CT_SOCKET
} fault_t;

static fault_t fault_parse(const char *text) {
  static const struct {
    const char *name;
    fault_t fault;
  } names[] = {{"socket", FAULT_SOCKET},
               {"bind", FAULT_BIND},
               {"dump_intr_once", FAULT_DUMP_INTR_ONCE},
               {"dump_intr_always", FAULT_DUMP_INTR_ALWAYS},
               {"ct_socket", FAULT_CT_SOCKET}};
  size_t length = strcspn(text, " \t\n");
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strlen(names[i].name) == length &&
        strncmp(text, names[i].name, length) == 0)
      return names[i].fault;
  return FAULT_OFF;
}

/* Plain read/write syscalls: no stdio state to share with the host. */
static fault_t current_fault(void) {
  const char *control = getenv("EP_FAULT_CONTROL");
  if (control != NULL) {
    int fd = open(control, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char text[64];
      ssize_t got = read(fd, text, sizeof(text) - 1);
      close(fd);
      text[got > 0 ? got : 0] = '\0';
      return fault_parse(text);
    }
  }
  const char *fault = getenv("EP_FAULT");
  return fault != NULL ? fault_parse(fault) : FAULT_OFF;
}

static void write_file(const char *path, const char *text, int flags) {
  if (path == NULL)
    return;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
  if (fd < 0)
    return;
  ssize_t written = write(fd, text, strlen(text));
  (void)written;
  close(fd);
}

static void note_event(const char *name) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char line[96];
  snprintf(line, sizeof(line), "%s %lld.%06ld\n", name, (long long)now.tv_sec,
           now.tv_nsec / 1000);
  write_file(getenv("EP_FAULT_LOG"), line, O_APPEND);
}

/* The netlink protocol of fd, or -1 when it is no netlink socket. */
static int netlink_protocol(int fd) {
  int domain, protocol;
  socklen_t length = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0 ||
      domain != AF_NETLINK)
    return -1;
  length = sizeof(protocol);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) == 0
             ? protocol
             : -1;
}

static int is_sock_diag(int fd) {
  return netlink_protocol(fd) == NETLINK_SOCK_DIAG;
}

static void note_ctnetlink_request(const void *buf, size_t length) {
  struct nlmsghdr nlh;
  if (length < sizeof(nlh))
    return;
  memcpy(&nlh, buf, sizeof(nlh));
  if (nlh.nlmsg_type == ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET) &&
      (nlh.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP)
    note_event("ct_dump");
  else if (nlh.nlmsg_type ==
           ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU))
    note_event("ct_stats");
}

/* A sock_diag request: nlmsghdr, then inet_diag_req_v2's family and
 * protocol bytes. */
static int asks_udp(const void *buf, size_t length) {
  const unsigned char *bytes = buf;
  return length >= NLMSG_HDRLEN + 2 && bytes[NLMSG_HDRLEN + 1] == IPPROTO_UDP;
}

static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

int socket(int domain, int type, int protocol) {
  int (*real)(int, int, int) = (int (*)(int, int, int))next("socket");
  if (domain == AF_NETLINK && protocol == NETLINK_SOCK_DIAG &&
      current_fault() == FAULT_SOCKET) {
    note_event("socket");
    errno = EACCES;
    return -1;
  }
  if (domain == AF_NETLINK && protocol == NETLINK_NETFILTER &&
      current_fault() == FAULT_CT_SOCKET) {
    note_event("ct_socket");
    errno = EACCES;
    return -1;
  }
  return real(domain, type, protocol);
}

static void note_inet_bind(const struct sockaddr *addr, socklen_t length) {
  unsigned port;
  if (addr->sa_family == AF_INET && length >= sizeof(struct sockaddr_in))
    port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
  else if (addr->sa_family == AF_INET6 && length >= sizeof(struct sockaddr_in6))
    port = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
  else
    return;
  char line[16];
  snprintf(line, sizeof(line), "%u\n", port);
  write_file(getenv("EP_BIND_LOG"), line, O_APPEND);
}

int bind(int fd, const struct sockaddr *addr, socklen_t length) {
  int (*real)(int, const struct sockaddr *, socklen_t) =
      (int (*)(int, const struct sockaddr *, socklen_t))next("bind");
  if (addr != NULL)
    note_inet_bind(addr, length);
  if (is_sock_diag(fd) && current_fault() == FAULT_BIND) {
    note_event("bind");
    errno = EACCES;
    return -1;
  }
  return real(fd, addr, length);
}

ssize_t sendto(int fd, const void *buf, size_t length, int flags,
               const struct sockaddr *addr, socklen_t addr_length) {
  ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *,
                  socklen_t) =
      (ssize_t(*)(int, const void *, size_t, int, const struct sockaddr *,
                  socklen_t))next("sendto");
  int protocol = netlink_protocol(fd);
  if (protocol == NETLINK_SOCK_DIAG) {
    note_event("request");
    if (asks_udp(buf, length))
      note_event("request_udp");
  } else if (protocol == NETLINK_NETFILTER)
    note_ctnetlink_request(buf, length);
  return real(fd, buf, length, flags, addr, addr_length);
}

static void mark_interrupted(struct msghdr *msg, size_t length) {
  if (msg->msg_iovlen < 1 || length < sizeof(struct nlmsghdr))
    return;
  struct nlmsghdr *nlh = msg->msg_iov[0].iov_base;
  size_t room =
      msg->msg_iov[0].iov_len < length ? msg->msg_iov[0].iov_len : length;
  for (; NLMSG_OK(nlh, room); nlh = NLMSG_NEXT(nlh, room))
    nlh->nlmsg_flags |= NLM_F_DUMP_INTR;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  ssize_t (*real)(int, struct msghdr *, int) =
      (ssize_t(*)(int, struct msghdr *, int))next("recvmsg");
  ssize_t got = real(fd, msg, flags);
  if (got <= 0 || !is_sock_diag(fd))
    return got;
  fault_t fault = current_fault();
  if (fault != FAULT_DUMP_INTR_ONCE && fault != FAULT_DUMP_INTR_ALWAYS)
    return got;
  mark_interrupted(msg, (size_t)got);
  note_event(fault == FAULT_DUMP_INTR_ONCE ? "dump_intr_once"
                                           : "dump_intr_always");
  if (fault == FAULT_DUMP_INTR_ONCE)
    write_file(getenv("EP_FAULT_CONTROL"), "off\n", O_TRUNC);
  return got;
}
