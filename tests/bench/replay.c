/* Benchmark: the plugin's own work per socket, without the kernel's.
 *
 * Makes the plugin's filtered TCP dump of the namespace it runs in once
 * (every state but LISTEN, bound-only sockets included, local ports in
 * ip_local_port_range; one TCPDIAG_GETSOCK walk), keeps the datagrams the
 * kernel sent, and then hands them REPEAT times to the plugin's own code:
 *
 *   parse  sock_diag_parse_buffer with a visitor that only counts: the
 *          netlink walk and each socket's fields and attributes;
 *   count  the same into a snapshot as a read fills it with the default
 *          options (port sets, the destination table, the cgroup table,
 *          tcp_tw_reuse 2).
 *
 * With -e KIB, KIB KiB of other memory is written between two datagrams,
 * as the kernel's walk does between two of the plugin's receives: the
 * plugin's tables then meet the cache a read meets. Prints one line:
 *
 *   sockets=N datagrams=N repeat=N evict_kib=N parse_ns=X count_ns=Y
 *
 * X and Y are CPU nanoseconds per socket of the dump; left out are the
 * eviction's own writes and the copy of each datagram into the receive
 * buffer (the kernel's part of a read). Run it as root inside the benchmark's
 * namespace. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "floor.h"

#include "count/snapshot.h"
#include "kernel/sock_diag.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_DATAGRAMS 65536

typedef struct {
  char *bytes;
  size_t len;
} datagram_t;

typedef struct {
  datagram_t *datagrams;
  size_t count;
  unsigned seq;
  unsigned portid;
  long sockets;
} capture_t;

static int count_message(const struct nlmsghdr *nlh, void *data) {
  (void)nlh;
  (*(long *)data)++;
  return MNL_CB_OK;
}

/* The plugin's second TCP dump, each datagram kept. */
static void capture(capture_t *cap, uint16_t low, uint16_t high) {
  struct mnl_socket *nl = mnl_socket_open(NETLINK_SOCK_DIAG);
  if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    die("netlink");
  static floor_buffer_t buf;
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf.bytes);
  nlh->nlmsg_type = TCPDIAG_GETSOCK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = cap->seq = 1;
  struct inet_diag_req *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
  req->idiag_family = AF_INET;
  req->idiag_states = NETNS_REST_STATES;
  const struct inet_diag_bc_op ops[] = {
      {INET_DIAG_BC_S_GE, 8, 20},
      {0, 0, low},
      {INET_DIAG_BC_S_LE, 8, 12},
      {0, 0, high},
  };
  mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(ops), ops);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
    die("sendto");
  cap->portid = mnl_socket_get_portid(nl);
  cap->datagrams = calloc(MAX_DATAGRAMS, sizeof(*cap->datagrams));
  if (cap->datagrams == NULL)
    die("calloc");
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.bytes, sizeof(buf.bytes));
    if (n < 0)
      die("recvfrom");
    if (cap->count == MAX_DATAGRAMS) {
      errno = EFBIG;
      die("capture");
    }
    /* 4-byte aligned, as a receive buffer is. */
    datagram_t *d = &cap->datagrams[cap->count++];
    if ((d->bytes = aligned_alloc(8, ((size_t)n + 7) & ~(size_t)7)) == NULL)
      die("aligned_alloc");
    memcpy(d->bytes, buf.bytes, (size_t)n);
    d->len = (size_t)n;
    int rc = mnl_cb_run(buf.bytes, (size_t)n, cap->seq, cap->portid,
                        count_message, &cap->sockets);
    if (rc == MNL_CB_ERROR)
      die("dump");
    if (rc == MNL_CB_STOP)
      break;
  }
  mnl_socket_close(nl);
}

static int count_socket(const inet_socket_t *sock, void *ctx) {
  (void)sock;
  (*(long *)ctx)++;
  return 0;
}

typedef struct {
  char *bytes;
  size_t len;
  double spent_ns; /* CPU time of the eviction itself */
} evictor_t;

static void evict(evictor_t *ev) {
  if (ev->len == 0)
    return;
  double start = cpu_ns();
  for (size_t i = 0; i < ev->len; i += 64)
    ev->bytes[i]++;
  ev->spent_ns += cpu_ns() - start;
}

/* Replays the capture once, each datagram copied into one receive buffer
 * first, as recv() leaves it (fresh in the cache); visit NULL: the copies
 * alone. A parse error ends the benchmark. */
static void replay(const capture_t *cap, inet_socket_visit_fn visit, void *ctx,
                   evictor_t *ev) {
  static floor_buffer_t buf;
  for (size_t i = 0; i < cap->count; i++) {
    evict(ev);
    memcpy(buf.bytes, cap->datagrams[i].bytes, cap->datagrams[i].len);
    if (visit == NULL)
      continue;
    int rc = sock_diag_parse_buffer(buf.bytes, cap->datagrams[i].len, cap->seq,
                                    cap->portid, IPPROTO_TCP, visit, ctx);
    if (rc < 0) {
      errno = -rc;
      die("replay");
    }
  }
}

/* CPU time of REPEAT replays, the eviction's own writes left out. */
static double time_replays(const capture_t *cap, long repeat,
                           inet_socket_visit_fn visit, void *ctx,
                           evictor_t *ev) {
  ev->spent_ns = 0;
  double start = cpu_ns();
  for (long r = 0; r < repeat; r++)
    replay(cap, visit, ctx, ev);
  return cpu_ns() - start - ev->spent_ns;
}

int main(int argc, char **argv) {
  long repeat = 100;
  long evict_kib = 0;
  int opt;
  while ((opt = getopt(argc, argv, "n:e:")) != -1) {
    if (opt == 'n')
      repeat = strtol(optarg, NULL, 10);
    else if (opt == 'e')
      evict_kib = strtol(optarg, NULL, 10);
    else
      repeat = 0;
  }
  if (repeat < 1 || evict_kib < 0 || optind != argc) {
    fprintf(stderr, "usage: replay [-n REPEAT] [-e EVICT_KIB]\n");
    return 2;
  }
  uint16_t low, high;
  read_range(&low, &high);
  capture_t cap = {0};
  capture(&cap, low, high);
  if (cap.sockets == 0) {
    fprintf(stderr, "replay: the dump returned no socket\n");
    return 1;
  }
  evictor_t ev = {NULL, (size_t)evict_kib * 1024, 0};
  if (ev.len > 0 && (ev.bytes = calloc(1, ev.len)) == NULL)
    die("calloc");

  long visited = 0;
  replay(&cap, count_socket, &visited, &ev); /* warm-up */
  double copy_ns = time_replays(&cap, repeat, NULL, NULL, &ev);
  double parse_ns =
      time_replays(&cap, repeat, count_socket, &visited, &ev) - copy_ns;

  static portset_t reserved;
  static snapshot_t snap;
  destinations_t destinations;
  cgroup_usage_t cgroups;
  destinations_init(&destinations);
  cgroup_usage_init(&cgroups);
  const tcp_reuse_sysctls_t reuse = {2, TCP_TW_REUSE_DELAY_OLD_MS, true};
  double count_ns = 0;
  for (long r = -1; r < repeat; r++) { /* read -1 warms up */
    ev.spent_ns = 0;
    double start = cpu_ns();
    snapshot_begin(&snap, IPPROTO_TCP, low, high, &reserved, &destinations,
                   &cgroups);
    snapshot_set_tw_reuse(&snap, &reuse);
    replay(&cap, snapshot_add_socket, &snap, &ev);
    snapshot_end(&snap);
    if (r >= 0)
      count_ns += cpu_ns() - start - ev.spent_ns;
  }
  count_ns -= copy_ns;
  double per = (double)repeat * (double)cap.sockets;
  printf("sockets=%ld datagrams=%zu repeat=%ld evict_kib=%ld parse_ns=%.1f "
         "count_ns=%.1f used=%u\n",
         cap.sockets, cap.count, repeat, evict_kib, parse_ns / per,
         count_ns / per, snapshot_used(&snap));
  destinations_free(&destinations);
  cgroup_usage_free(&cgroups);
  return 0;
}
