/* libFuzzer target: one datagram of a ctnetlink dump, as received. The
 * first byte picks the dump (low bit: 0 the table, 1 the per-CPU
 * statistics) and, in its high four, the flow at which the visitor fails
 * (0: none); the rest is the datagram. Messages must carry nlmsg_seq
 * FUZZ_SEQ and nlmsg_pid FUZZ_PORTID to count as the dump's (the seeds do).
 * Flows go into a NAT usage table as the plugin's do, whose busiest keys
 * are then formatted as labels; the flows' and the table's invariants are
 * checked, so a wrong flow is a finding too. A real dump runs the same
 * walk over each datagram until NLMSG_DONE; what carries over between
 * datagrams is three flags, so one datagram reaches all of the parsing. */
#include "count/nat_usage.h"
#include "kernel/conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define FUZZ_SEQ 1
#define FUZZ_PORTID 4242
#define FUZZ_TOP 10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  nat_usage_t usage;
  unsigned stop_after; /* the visitor fails at this flow; 0: never */
  unsigned seen;
} fuzz_flows_t;

static void check_flow(const nat_flow_t *flow) {
  static const uint8_t zero[12];
  if (flow->protocol != IPPROTO_TCP && flow->protocol != IPPROTO_UDP)
    abort();
  if (flow->family == AF_INET) {
    if (memcmp(flow->source_addr + 4, zero, 12) != 0 ||
        memcmp(flow->destination_addr + 4, zero, 12) != 0)
      abort(); /* an IPv4 address uses the first 4 bytes only */
  } else if (flow->family != AF_INET6) {
    abort();
  }
}

static int visit(const nat_flow_t *flow, void *ctx) {
  fuzz_flows_t *flows = ctx;
  if (flows->stop_after != 0 && flows->seen >= flows->stop_after)
    abort(); /* visited after the visitor said stop */
  check_flow(flow);
  if (flows->stop_after != 0 && ++flows->seen == flows->stop_after)
    return -ENOMEM;
  return nat_usage_visit(flow, &flows->usage);
}

/* The plugin's use of the table: the busiest keys, as labels. */
static void report(fuzz_flows_t *flows) {
  destination_t top[FUZZ_TOP];
  size_t count = nat_usage_top(&flows->usage, top, FUZZ_TOP);
  if (count > FUZZ_TOP || count > nat_usage_keys(&flows->usage))
    abort();
  unsigned pool = nat_port_range_size(&flows->usage.range);
  for (size_t i = 0; i < count; i++) {
    char destination[INET6_ADDRSTRLEN + 16], source[INET6_ADDRSTRLEN];
    if (nat_format_destination(&top[i].key, destination, sizeof(destination)) !=
            0 ||
        nat_format_source(&top[i].key, source, sizeof(source)) != 0)
      abort(); /* the plugin's label buffers are this size */
    if (top[i].held == 0 || (i > 0 && top[i].held > top[i - 1].held))
      abort();
    /* One datagram holds far fewer entries than a pool's ports. */
    if (top[i].held > pool)
      abort();
  }
}

static void fuzz_table(const void *buf, size_t len, unsigned stop_after) {
  fuzz_flows_t flows = {.stop_after = stop_after};
  nat_port_range_t range;
  nat_port_range_default(&range);
  nat_usage_init(&flows.usage, &range);
  uint64_t entries = 0;
  int rc = conntrack_parse_buffer(buf, len, FUZZ_SEQ, FUZZ_PORTID, visit,
                                  &flows, &entries);
  /* 1 (more follows), 0 (done), or a negative errno: the kernel's, the
   * visitor's -ENOMEM, -EBADMSG, -EAGAIN. */
  if (rc > 1 || rc < -4095)
    abort();
  /* Only a malformed datagram outranks the visitor's failure. */
  if (stop_after != 0 && flows.seen >= stop_after && rc != -ENOMEM &&
      rc != -EBADMSG)
    abort();
  /* Every flow is an entry; 16 bytes of header at least per entry. */
  if (nat_usage_keys(&flows.usage) > entries || entries > len / 16)
    abort();
  report(&flows);
  nat_usage_free(&flows.usage);
}

static void fuzz_stats(const void *buf, size_t len) {
  conntrack_stats_t stats = {0};
  int rc =
      conntrack_parse_stats_buffer(buf, len, FUZZ_SEQ, FUZZ_PORTID, &stats);
  if (rc > 1 || rc < -4095)
    abort();
  /* Each CPU adds at most 2^32 - 1 to each sum. */
  if (stats.insert_failed > (uint64_t)stats.cpus * UINT32_MAX ||
      stats.drop > (uint64_t)stats.cpus * UINT32_MAX || stats.cpus > len / 16)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  /* A receive buffer is aligned; malloc's is, and its exact size lets
   * ASan catch a read past the datagram. */
  size_t len = size - 1;
  void *buf = malloc(len > 0 ? len : 1);
  if (buf == NULL)
    return 0;
  memcpy(buf, data + 1, len);
  if (data[0] & 1)
    fuzz_stats(buf, len);
  else
    fuzz_table(buf, len, data[0] >> 4);
  free(buf);
  return 0;
}
