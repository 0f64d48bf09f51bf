/* NAT read benchmark and check: reads the conntrack table of the network
 * namespace it runs in, REPEAT times, and prints the CPU time (this
 * process, user + system: the kernel builds a dump inside our own receive
 * calls) per read.
 *
 * Modes:
 *   plugin       what the plugin's NAT read does: conntrack_dump (the kernel
 *                sends IPS_SRC_NAT entries only) into a nat_usage table,
 *                its TOP busiest keys, and the per-CPU statistics
 *   every        the same with every entry asked for: what a kernel before
 *                Linux 5.15 sends, filtered in user space
 *   floor        the cheapest dump that yields the same answer: the same
 *                filtered request, its messages counted and not parsed
 *                (libmnl's callback walk), no statistics
 *   floor-every  the unfiltered dump, counted
 * -p (plugin modes) prints after the reads the keys with their counts,
 * "PROTO SOURCE DESTINATION USED", the flows "PROTO SOURCE:PORT
 * DESTINATION" and the statistics, for comparison with `conntrack -L` and
 * `conntrack -S` (the last read, printing its flows, is slower then).
 *
 * Output, one line: mode=M repeat=R entries=E flows=F keys=K
 * cpu_ns_per_read=N user_ns_per_read=U (of N, in user space: parsing and
 * counting; the rest is the kernel building the dump) heap_bytes=H (glibc's
 * heap in use after the reads, the tables not yet freed: flat in the entry
 * count) */
#include "count/nat_usage.h"
#include "kernel/conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_SIZE 32768
#define TOP_MAX 1000

typedef struct {
  nat_usage_t usage;
  uint64_t flows;
  bool print_flows;
} reader_t;

static void die(const char *what, const char *why) {
  fprintf(stderr, "nat_read: %s: %s\n", what, why);
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: nat_read [-n REPEAT] "
                  "[-m plugin|every|floor|floor-every] [-t TOP] [-p]\n");
  exit(2);
}

static double cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    die("clock_gettime", strerror(errno));
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* User-space CPU alone: what parsing and counting add to the kernel's. */
static double user_ns(void) {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0)
    die("getrusage", strerror(errno));
  return (double)usage.ru_utime.tv_sec * 1e9 +
         (double)usage.ru_utime.tv_usec * 1e3;
}

static const char *protocol_name(int protocol) {
  return protocol == IPPROTO_UDP ? "udp" : "tcp";
}

static int visit(const nat_flow_t *flow, void *ctx) {
  reader_t *r = ctx;
  r->flows++;
  if (r->print_flows) {
    char source[INET6_ADDRSTRLEN], destination[INET6_ADDRSTRLEN];
    inet_ntop(flow->family, flow->source_addr, source, sizeof(source));
    inet_ntop(flow->family, flow->destination_addr, destination,
              sizeof(destination));
    printf("flow %s %s %u %s %u\n", protocol_name(flow->protocol), source,
           flow->source_port, destination, flow->destination_port);
  }
  return nat_usage_visit(flow, &r->usage);
}

/* Counts every message of the dump; nothing else. */
static int count_message(const struct nlmsghdr *nlh, void *data) {
  (void)nlh;
  (*(uint64_t *)data)++;
  return MNL_CB_OK;
}

static uint64_t floor_dump(struct mnl_socket *nl, char *buf, bool filtered,
                           unsigned seq) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  if (filtered) {
    mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_SRC_NAT));
    mnl_attr_put_u32(nlh, CTA_STATUS_MASK, htonl(IPS_SRC_NAT));
  }
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
    die("sendto", strerror(errno));
  unsigned portid = mnl_socket_get_portid(nl);
  uint64_t entries = 0;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf, BUFFER_SIZE);
    if (n < 0)
      die("recvfrom", strerror(errno));
    int rc = mnl_cb_run(buf, (size_t)n, seq, portid, count_message, &entries);
    if (rc == MNL_CB_ERROR)
      die("dump", strerror(errno));
    if (rc == MNL_CB_STOP)
      return entries;
  }
}

static void print_keys(const destination_t *top, size_t count,
                       const conntrack_stats_t *stats) {
  for (size_t i = 0; i < count; i++) {
    char destination[INET6_ADDRSTRLEN + 16], source[INET6_ADDRSTRLEN];
    if (nat_format_destination(&top[i].key, destination, sizeof(destination)) !=
            0 ||
        nat_format_source(&top[i].key, source, sizeof(source)) != 0)
      die("format", "label too long");
    printf("key %s %s %s %u\n", protocol_name(top[i].key.protocol), source,
           destination, top[i].held);
  }
  printf("stats cpus=%u insert_failed=%llu drop=%llu\n", stats->cpus,
         (unsigned long long)stats->insert_failed,
         (unsigned long long)stats->drop);
}

int main(int argc, char **argv) {
  long repeat = 10, top_n = 10;
  const char *mode = "plugin";
  bool print = false;
  int opt;
  while ((opt = getopt(argc, argv, "n:m:t:p")) != -1) {
    switch (opt) {
    case 'n':
      repeat = strtol(optarg, NULL, 10);
      if (repeat < 1 || repeat > 1000000)
        usage();
      break;
    case 'm':
      mode = optarg;
      break;
    case 't':
      top_n = strtol(optarg, NULL, 10);
      if (top_n < 0 || top_n > TOP_MAX)
        usage();
      break;
    case 'p':
      print = true;
      break;
    default:
      usage();
    }
  }
  bool floor = strncmp(mode, "floor", 5) == 0;
  bool every = strcmp(mode, "every") == 0 || strcmp(mode, "floor-every") == 0;
  if (optind != argc || (!floor && !every && strcmp(mode, "plugin") != 0) ||
      (floor && !every && strcmp(mode, "floor") != 0) || (floor && print))
    usage();

  uint64_t entries = 0, flows = 0;
  size_t keys = 0, heap = 0;
  double start, start_user;
  if (floor) {
    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
      die("mnl_socket", strerror(errno));
    static union {
      struct nlmsghdr align;
      char bytes[BUFFER_SIZE];
    } buf;
    start = cpu_ns();
    start_user = user_ns();
    for (long i = 0; i < repeat; i++)
      entries = floor_dump(nl, buf.bytes, !every, (unsigned)i + 1);
    mnl_socket_close(nl);
  } else {
    char err[256];
    conntrack_t *ct = conntrack_open(err, sizeof(err));
    if (ct == NULL)
      die("open", err);
    static reader_t r;
    nat_port_range_t range;
    nat_port_range_default(&range);
    nat_usage_init(&r.usage, &range);
    static destination_t top[TOP_MAX];
    conntrack_stats_t stats;
    conntrack_query_t query = {AF_UNSPEC, every};
    size_t count = 0;
    start = cpu_ns();
    start_user = user_ns();
    for (long i = 0; i < repeat; i++) {
      nat_usage_clear(&r.usage);
      r.flows = 0;
      r.print_flows = print && i == repeat - 1;
      int rc = conntrack_dump(ct, &query, visit, &r, err, sizeof(err));
      if (rc == 0)
        rc = conntrack_stats(ct, &stats, err, sizeof(err));
      if (rc != 0)
        die("read", err);
      count = nat_usage_top(&r.usage, top, (size_t)top_n);
    }
    entries = conntrack_last_entries(ct);
    flows = r.flows;
    keys = nat_usage_keys(&r.usage);
    heap = mallinfo2().uordblks;
    if (print)
      print_keys(top, count, &stats);
    nat_usage_free(&r.usage);
    conntrack_close(ct);
  }
  double per_read = (cpu_ns() - start) / (double)repeat;
  double user_per_read = (user_ns() - start_user) / (double)repeat;
  printf("mode=%s repeat=%ld entries=%llu flows=%llu keys=%zu "
         "cpu_ns_per_read=%.0f user_ns_per_read=%.0f heap_bytes=%zu\n",
         mode, repeat, (unsigned long long)entries, (unsigned long long)flows,
         keys, per_read, user_per_read, heap);
  return 0;
}
