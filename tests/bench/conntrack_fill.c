/* Benchmark load: fills the conntrack table of the network namespace it
 * runs in with N entries over ctnetlink (IPCTNL_MSG_CT_NEW, as conntrackd
 * does), PERCENT of them translated by nf_nat (CTA_NAT_SRC: nf_nat sets the
 * entry up as an SNAT rule would, IPS_SRC_NAT included), the rest plain.
 * Clients are 10.x.y.z, each with one flow; destinations 203.0.113.1..D
 * port 443; translated flows leave from 198.51.100.2, each destination's
 * flows on ports 1024, 1025, ... The entries live TIMEOUT seconds, or
 * until the namespace goes. Needs CAP_NET_ADMIN.
 *
 * usage: conntrack_fill [-n ENTRIES] [-t PERCENT] [-d DESTINATIONS]
 *                       [-u PERCENT_UDP] [-T TIMEOUT]
 * Output, one line: entries=N translated=T destinations=D */
#include "ctnetlink_build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 64
#define MESSAGE_MAX 512

static void die(const char *what, const char *why) {
  fprintf(stderr, "conntrack_fill: %s: %s\n", what, why);
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: conntrack_fill [-n ENTRIES] [-t PERCENT] "
                  "[-d DESTINATIONS] [-u PERCENT_UDP] [-T TIMEOUT]\n");
  exit(2);
}

static long number(const char *text, long min, long max) {
  char *end;
  long value = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < min || value > max)
    usage();
  return value;
}

/* Reads acknowledgements until count have come; any error is fatal. */
static void read_acks(struct mnl_socket *nl, unsigned count) {
  static union {
    struct nlmsghdr align;
    char bytes[65536];
  } buf;
  while (count > 0) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.bytes, sizeof(buf));
    if (n < 0)
      die("recv", strerror(errno));
    const char *pos = buf.bytes;
    size_t left = (size_t)n;
    while (left >= NLMSG_HDRLEN && count > 0) {
      const struct nlmsghdr *nlh = (const struct nlmsghdr *)pos;
      if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > left)
        die("recv", "malformed acknowledgement");
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        int error;
        memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
        if (error != 0)
          die("IPCTNL_MSG_CT_NEW", strerror(-error));
        count--;
      }
      size_t step = NLMSG_ALIGN(nlh->nlmsg_len);
      if (step >= left)
        break;
      pos += step;
      left -= step;
    }
  }
}

int main(int argc, char **argv) {
  long entries = 100000, percent = 50, destinations = 20, udp_percent = 0;
  long timeout = 3600;
  int opt;
  while ((opt = getopt(argc, argv, "n:t:d:u:T:")) != -1) {
    switch (opt) {
    case 'n':
      entries = number(optarg, 1, 10000000);
      break;
    case 't':
      percent = number(optarg, 0, 100);
      break;
    case 'd':
      destinations = number(optarg, 1, 254);
      break;
    case 'u':
      udp_percent = number(optarg, 0, 100);
      break;
    case 'T':
      timeout = number(optarg, 1, 86400 * 7);
      break;
    default:
      usage();
    }
  }
  if (optind != argc)
    usage();
  /* Each destination's translated flows need ports of their own. */
  if (entries * percent / 100 > destinations * (65535 - 1024 + 1))
    die("usage", "too many translated entries for the destinations");

  struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
  if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    die("socket", strerror(errno));
  static union {
    struct nlmsghdr align;
    char bytes[BATCH * MESSAGE_MAX];
  } batch;
  size_t used = 0;
  unsigned pending = 0;
  long translated = 0;
  for (long i = 0; i < entries; i++) {
    char client[32], destination[32];
    snprintf(client, sizeof(client), "10.%ld.%ld.%ld", (i >> 16) & 0xff,
             (i >> 8) & 0xff, i & 0xff);
    /* Spread evenly: entry i is translated when the running share of
     * translated entries falls behind percent. */
    int translate = (translated + 1) * 100 <= (i + 1) * percent;
    long index = translate ? translated : i;
    snprintf(destination, sizeof(destination), "203.0.113.%ld",
             1 + index % destinations);
    ctb_tuple_t orig = {AF_INET,
                        (i * 100 / entries) % 100 < udp_percent ? IPPROTO_UDP
                                                                : IPPROTO_TCP,
                        client,
                        (uint16_t)(40000 + i % 20000),
                        destination,
                        443};
    struct nlmsghdr *nlh = ctb_put_new_entry(
        batch.bytes + used, (uint32_t)i + 1, &orig, (uint32_t)timeout);
    if (nlh == NULL)
      die("build", client);
    if (translate) {
      uint16_t port = (uint16_t)(1024 + index / destinations);
      if (ctb_put_nat(nlh, CTA_NAT_SRC, AF_INET, "198.51.100.2", port) != 0)
        die("build", "NAT address");
      translated++;
    }
    if (nlh->nlmsg_len > MESSAGE_MAX)
      die("build", "message too long");
    used += NLMSG_ALIGN(nlh->nlmsg_len);
    if (++pending == BATCH || i + 1 == entries) {
      if (mnl_socket_sendto(nl, batch.bytes, used) < 0)
        die("send", strerror(errno));
      read_acks(nl, pending);
      used = 0;
      pending = 0;
    }
  }
  mnl_socket_close(nl);
  printf("entries=%ld translated=%ld destinations=%ld\n", entries, translated,
         destinations);
  return 0;
}
