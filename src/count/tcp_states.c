#include "count/tcp_states.h"

#include "kernel/inet_socket.h"

#include <netinet/tcp.h>

/* Reported state i is kernel state i + 1 (TCP_ESTABLISHED is 1). */
static const char *const names[TCP_STATE_NAMES] = {
    "established", "syn_sent",  "syn_recv", "fin_wait1",
    "fin_wait2",   "time_wait", "close",    "close_wait",
    "last_ack",    "listen",    "closing",
};

const char *tcp_state_name(unsigned i) { return names[i]; }

void tcp_states_fold(const unsigned by_state[SNAPSHOT_STATES],
                     unsigned reported[TCP_STATE_NAMES]) {
  for (unsigned i = 0; i < TCP_STATE_NAMES; i++)
    reported[i] = by_state[i + 1];
  reported[TCP_SYN_RECV - 1] += by_state[INET_TCP_NEW_SYN_RECV];
  reported[TCP_CLOSE - 1] += by_state[INET_TCP_BOUND_INACTIVE];
}
