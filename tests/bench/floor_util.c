/* What floor and replay share: the dump, how they fail, their clock and
 * the range. */
#include "floor.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
          strerror(errno));
  exit(1);
}

double cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    die("clock_gettime");
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

void read_range(uint16_t *low, uint16_t *high) {
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  unsigned a, b;
  if (f == NULL)
    die("ip_local_port_range");
  if (fscanf(f, "%u %u", &a, &b) != 2 || a > b || b > 65535) {
    fprintf(stderr, "%s: cannot parse ip_local_port_range\n",
            program_invocation_short_name);
    exit(1);
  }
  fclose(f);
  *low = (uint16_t)a;
  *high = (uint16_t)b;
}

static int count_socket(const struct nlmsghdr *nlh, void *data) {
  (void)nlh;
  (*(long *)data)++;
  return MNL_CB_OK;
}

/* family AF_UNSPEC: the old TCPDIAG_GETSOCK request, which the kernel
 * answers with IPv4 and IPv6 sockets from one walk of its tables. */
long dump_each(struct mnl_socket *nl, char *buf, int family, const query_t *q,
               unsigned seq, datagram_fn keep, void *ctx) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  if (family == AF_UNSPEC) {
    nlh->nlmsg_type = TCPDIAG_GETSOCK;
    struct inet_diag_req *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
    req->idiag_family = AF_INET; /* ignored: both families are dumped */
    req->idiag_states = q->states;
    req->idiag_ext = q->tcp_info ? 1u << (INET_DIAG_INFO - 1) : 0;
  } else {
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    struct inet_diag_req_v2 *req =
        mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
    req->sdiag_family = (uint8_t)family;
    req->sdiag_protocol = IPPROTO_TCP;
    req->idiag_states = q->states;
    req->idiag_ext = q->tcp_info ? 1u << (INET_DIAG_INFO - 1) : 0;
  }
  if (q->filter) {
    /* Accept when low <= local port <= high: each op jumps "yes" bytes when
     * its test holds, "no" bytes when not; landing 4 bytes past the end
     * rejects. */
    const struct inet_diag_bc_op ops[] = {
        {INET_DIAG_BC_S_GE, 8, 20},
        {0, 0, q->low},
        {INET_DIAG_BC_S_LE, 8, 12},
        {0, 0, q->high},
    };
    mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(ops), ops);
  }
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
    die("sendto");

  unsigned portid = mnl_socket_get_portid(nl);
  long sockets = 0;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf, BUFFER_SIZE);
    if (n < 0)
      die("recvfrom");
    if (keep != NULL)
      keep(buf, (size_t)n, ctx);
    int rc = mnl_cb_run(buf, (size_t)n, seq, portid, count_socket, &sockets);
    if (rc == MNL_CB_ERROR)
      die("dump");
    if (rc == MNL_CB_STOP)
      return sockets;
  }
}

long dump(struct mnl_socket *nl, char *buf, int family, const query_t *q,
          unsigned seq) {
  return dump_each(nl, buf, family, q, seq, NULL, NULL);
}
