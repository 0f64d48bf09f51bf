/* Benchmark floor: the least a reader of the TCP socket table can do.
 * Sends one inet_diag dump request per address family (AF_INET, then
 * AF_INET6; or one for both with -1) over a libmnl socket, counts the sockets
 * in the replies and does nothing else with them; repeats that REPEAT times and
 * prints the CPU time (this process, user + system: the kernel builds a dump
 * inside our own send and receive calls) per pair of dumps.
 *
 * Modes:
 *   filtered  every state, local port within the ephemeral range (the kernel
 *             filters with inet_diag bytecode): the smallest dump from which
 *             pool usage can be counted
 *   all       every state, no filter: every TCP socket is copied out
 *   listen    LISTEN and bound-only sockets (the query the plugin uses for
 *             open ports and exclusively held ports)
 *   listen-only  LISTEN alone
 *   netns     one read of each network namespace named on the command line
 *             (see floor_netns.c); "." is the namespace floor runs in
 * -s MASK replaces the mode's state mask (1 << state for each state).
 * -1 makes one TCPDIAG_GETSOCK request instead of the two by family: the
 *    kernel answers it with both families from one walk of its tables.
 * -i asks for tcp_info (INET_DIAG_INFO) of every socket, as the plugin does
 *    in a namespace whose tcp_tw_reuse is 1.
 * -p MS pauses MS milliseconds between reads, as collectd's interval does
 *    between the plugin's: the kernel's tables and the caches are then as
 *    cold as a paced read finds them (back to back they stay warm). The
 *    pauses take no CPU time.
 *
 * Output, one line: mode=M repeat=R sockets=S cpu_ns_per_read=N (netns:
 * see floor_netns.c) */
#include "floor.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ALL_STATES 0x3ffeu /* 1 (ESTABLISHED) .. 13 (BOUND_INACTIVE) */

static void usage(void) {
  fprintf(stderr, "usage: floor [-n REPEAT] "
                  "[-m filtered|all|listen|listen-only] [-r LOW-HIGH] "
                  "[-s STATE_MASK] [-1] [-i] [-p PAUSE_MS]\n"
                  "       floor -m netns [-n REPEAT] [-s STATE_MASK] "
                  "NETNS_PATH|. ...\n");
  exit(2);
}

int main(int argc, char **argv) {
  long repeat = 10;
  const char *mode = "filtered";
  const char *range = NULL;
  long mask = -1;
  int one_pass = 0;
  int tcp_info = 0;
  long pause_ms = 0;
  int opt;
  while ((opt = getopt(argc, argv, "n:m:r:s:1ip:")) != -1) {
    switch (opt) {
    case 'n':
      repeat = strtol(optarg, NULL, 10);
      if (repeat < 1 || repeat > 1000000)
        usage();
      break;
    case 'm':
      mode = optarg;
      break;
    case 'r':
      range = optarg;
      break;
    case '1':
      one_pass = 1;
      break;
    case 'i':
      tcp_info = 1;
      break;
    case 'p':
      pause_ms = strtol(optarg, NULL, 10);
      if (pause_ms < 0 || pause_ms > 60000)
        usage();
      break;
    case 's':
      mask = strtol(optarg, NULL, 0);
      if (mask < 1 || mask > 0xffff)
        usage();
      break;
    default:
      usage();
    }
  }
  if (strcmp(mode, "netns") == 0) {
    if (optind == argc)
      usage();
    return floor_netns(argv + optind, argc - optind, repeat,
                       mask > 0 ? (uint32_t)mask : NETNS_REST_STATES);
  }
  if (optind != argc)
    usage();

  query_t q = {.states = ALL_STATES, .tcp_info = tcp_info};
  if (strcmp(mode, "filtered") == 0) {
    q.filter = 1;
    if (range != NULL) {
      unsigned a, b;
      if (sscanf(range, "%u-%u", &a, &b) != 2 || a > b || b > 65535)
        usage();
      q.low = (uint16_t)a;
      q.high = (uint16_t)b;
    } else {
      read_range(&q.low, &q.high);
    }
  } else if (strcmp(mode, "listen") == 0) {
    q.states = 1u << STATE_LISTEN | 1u << STATE_BOUND_INACTIVE;
  } else if (strcmp(mode, "listen-only") == 0) {
    q.states = 1u << STATE_LISTEN;
  } else if (strcmp(mode, "all") != 0) {
    usage();
  }

  if (mask > 0)
    q.states = (uint32_t)mask;

  struct mnl_socket *nl = mnl_socket_open(NETLINK_SOCK_DIAG);
  if (nl == NULL)
    die("mnl_socket_open");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    die("mnl_socket_bind");
  static floor_buffer_t buf;

  unsigned seq = 1;
  long sockets = 0;
  /* One untimed pass warms the caches and faults the buffer in. */
  const int one[] = {AF_UNSPEC}, both[] = {AF_INET, AF_INET6};
  const int *families = one_pass ? one : both;
  size_t passes = one_pass ? 1 : 2;
  for (size_t f = 0; f < passes; f++)
    dump(nl, buf.bytes, families[f], &q, seq++);
  double start = cpu_ns();
  const struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000};
  for (long i = 0; i < repeat; i++) {
    if (pause_ms > 0)
      nanosleep(&pause, NULL);
    sockets = 0;
    for (size_t f = 0; f < passes; f++)
      sockets += dump(nl, buf.bytes, families[f], &q, seq++);
  }
  double elapsed = cpu_ns() - start;
  mnl_socket_close(nl);
  printf("mode=%s%s%s repeat=%ld sockets=%ld cpu_ns_per_read=%.0f\n", mode,
         one_pass ? "-one-pass" : "", pause_ms > 0 ? "-paced" : "", repeat,
         sockets, elapsed / (double)repeat);
  return 0;
}
