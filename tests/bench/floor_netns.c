/* The floor's netns mode: the least a reader of many network namespaces can
 * do per read, namespace by namespace, the way the plugin must do it (it
 * holds nothing in a namespace between reads, see DESIGN.md):
 *
 *   open PATH, setns into it, open and bind a sock_diag netlink socket there,
 *   read ip_local_port_range and ip_local_reserved_ports, setns back; then,
 *   over that socket, a LISTEN-only dump of every port and one dump of every
 *   other state (bound-only sockets included) that the kernel filters to the
 *   namespace's port range, both TCPDIAG_GETSOCK (one walk for both
 *   families); close the socket.
 *
 * "." stands for the namespace floor runs in (collectd's own): no setns, and
 * its socket stays open across reads.
 *
 * Two CPU figures per read (all namespaces): the dumps alone (the kernel's
 * walks: the floor the plugin is held to), and everything above. Output, one
 * line: mode=netns namespaces=N repeat=R sockets=S listeners=L
 * cpu_ns_per_read=DUMPS cpu_ns_all_per_read=ALL */
#include "floor.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  double dumps_ns, all_ns;
  long sockets, listeners;
} totals_t;

static struct mnl_socket *open_diag(void) {
  struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
  if (nl == NULL)
    die("mnl_socket_open");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    die("mnl_socket_bind");
  return nl;
}

static void enter(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die(path);
  if (setns(fd, CLONE_NEWNET) != 0)
    die(path);
  close(fd);
}

/* The reserved ports are read as the plugin reads them; their contents
 * change nothing in the dumps (the plugin removes them from its counts). */
static void read_reserved(void) {
  char text[4096];
  int fd =
      open("/proc/sys/net/ipv4/ip_local_reserved_ports", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die("ip_local_reserved_ports");
  if (read(fd, text, sizeof(text)) < 0)
    die("ip_local_reserved_ports");
  close(fd);
}

/* One read of one namespace. own: the socket of floor's own namespace, or
 * NULL for another namespace (entered through PATH). */
static void read_namespace(const char *path, int home, struct mnl_socket *own,
                           uint32_t rest_states, char *buf, unsigned *seq,
                           totals_t *t) {
  double start = cpu_ns();
  struct mnl_socket *nl = own;
  query_t listen = {.states = 1u << STATE_LISTEN};
  query_t rest = {.states = rest_states, .filter = 1};
  if (own == NULL) {
    enter(path);
    nl = open_diag();
  }
  read_range(&rest.low, &rest.high);
  read_reserved();
  if (own == NULL && setns(home, CLONE_NEWNET) != 0)
    die("setns home");

  double dumps = cpu_ns();
  t->listeners += dump(nl, buf, AF_UNSPEC, &listen, (*seq)++);
  t->sockets += dump(nl, buf, AF_UNSPEC, &rest, (*seq)++);
  t->dumps_ns += cpu_ns() - dumps;

  if (own == NULL)
    mnl_socket_close(nl);
  t->all_ns += cpu_ns() - start;
}

static void read_all(char *const *paths, int count, int home,
                     struct mnl_socket *own, uint32_t rest_states, char *buf,
                     unsigned *seq, totals_t *t) {
  for (int i = 0; i < count; i++)
    read_namespace(paths[i], home, strcmp(paths[i], ".") == 0 ? own : NULL,
                   rest_states, buf, seq, t);
}

int floor_netns(char *const *paths, int count, long repeat,
                uint32_t rest_states) {
  static floor_buffer_t buf;
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0)
    die("/proc/self/ns/net");
  struct mnl_socket *own = open_diag();
  unsigned seq = 1;

  /* One untimed pass warms the caches and faults the buffer in. */
  totals_t t = {0};
  read_all(paths, count, home, own, rest_states, buf.bytes, &seq, &t);
  t = (totals_t){0};
  for (long i = 0; i < repeat; i++)
    read_all(paths, count, home, own, rest_states, buf.bytes, &seq, &t);

  mnl_socket_close(own);
  close(home);
  printf("mode=netns namespaces=%d repeat=%ld sockets=%ld listeners=%ld "
         "cpu_ns_per_read=%.0f cpu_ns_all_per_read=%.0f\n",
         count, repeat, t.sockets / repeat, t.listeners / repeat,
         t.dumps_ns / (double)repeat, t.all_ns / (double)repeat);
  return 0;
}
