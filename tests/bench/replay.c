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

/* Keeps a datagram, 4-byte aligned as a receive buffer is. */
static void keep_datagram(const char *buf, size_t len, void *ctx) {
  capture_t *cap = ctx;
  if (cap->count == MAX_DATAGRAMS) {
    errno = EFBIG;
    die("capture");
  }
  datagram_t *d = &cap->datagrams[cap->count++];
  if ((d->bytes = aligned_alloc(8, (len + 7) & ~(size_t)7)) == NULL)
    die("aligned_alloc");
  memcpy(d->bytes, buf, len);
  d->len = len;
}

/* The plugin's second TCP dump, each datagram kept. */
static void capture(capture_t *cap, uint16_t low, uint16_t high) {
  struct mnl_socket *nl = mnl_socket_open(NETLINK_SOCK_DIAG);
  if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    die("netlink");
  cap->datagrams = calloc(MAX_DATAGRAMS, sizeof(*cap->datagrams));
  if (cap->datagrams == NULL)
    die("calloc");
  static floor_buffer_t buf;
  const query_t rest = {NETNS_REST_STATES, 1, low, high, 0};
  cap->seq = 1;
  cap->portid = mnl_socket_get_portid(nl);
  cap->sockets =
      dump_each(nl, buf.bytes, AF_UNSPEC, &rest, cap->seq, keep_datagram, cap);
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
