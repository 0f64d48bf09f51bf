#include "count/tw_reuse.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

/* LOOPBACK_IFINDEX: lo is interface 1 in every network namespace. */
#define LOOPBACK_IFINDEX 1

static bool is_loopback_v4(const uint8_t addr[4]) { return addr[0] == 127; }

/* ::1, or a v4-mapped 127/8 (ipv6_addr_loopback, *_v4mapped_loopback). */
static bool is_loopback_v6(const uint8_t addr[16]) {
  static const uint8_t loopback[16] = {[15] = 1};
  static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
  return memcmp(addr, loopback, 16) == 0 ||
         (memcmp(addr, mapped, 12) == 0 && is_loopback_v4(addr + 12));
}

static bool is_loopback(const inet_socket_t *sock, const uint8_t *addr) {
  return sock->family == AF_INET ? is_loopback_v4(addr) : is_loopback_v6(addr);
}

/* tcp_tw_reuse 2's test, which also says the peer is in this namespace. */
static bool goes_over_loopback(const inet_socket_t *tw) {
  return tw->bound_if == LOOPBACK_IFINDEX || is_loopback(tw, tw->local_addr) ||
         is_loopback(tw, tw->remote_addr);
}

tw_verdict_t tw_reuse_verdict(const tcp_reuse_sysctls_t *sysctls,
                              const inet_socket_t *tw) {
  if (sysctls->tw_reuse == 0 || !sysctls->timestamps)
    return TW_HELD;
  bool loopback = goes_over_loopback(tw);
  if (sysctls->tw_reuse == 2 && !loopback)
    return TW_HELD;
  /* A timer re-armed by a retransmitted FIN reads younger: held longer. */
  uint32_t age =
      tw->expires_ms < TW_LENGTH_MS ? TW_LENGTH_MS - tw->expires_ms : 0;
  if ((uint64_t)age <= (uint64_t)sysctls->tw_reuse_delay_ms + TW_AGE_MARGIN_MS)
    return TW_HELD;
  /* Both ends in this namespace: its tcp_timestamps decided for both. */
  return loopback ? TW_TAKEN_OVER : TW_TAKEN_OVER_IF_TIMESTAMPS;
}

bool tw_reuse_tells_timestamps(const inet_socket_t *sock) {
  switch (sock->state) {
  case TCP_ESTABLISHED:
  case TCP_FIN_WAIT1:
  case TCP_FIN_WAIT2:
  case TCP_CLOSE_WAIT:
  case TCP_LAST_ACK:
  case TCP_CLOSING:
    return sock->timestamps != INET_TIMESTAMPS_UNKNOWN;
  default:
    return false;
  }
}

bool tw_reuse_needs_tcp_info(const tcp_reuse_sysctls_t *sysctls) {
  return sysctls->tw_reuse == 1 && sysctls->timestamps;
}
