/* TCP state names as the plugin reports them (ephemeral_ports_state). */
#ifndef EPHEMERAL_PORTS_TCP_STATES_H
#define EPHEMERAL_PORTS_TCP_STATES_H

#include "count/snapshot.h"

/* The states reported, in the kernel's order: established .. closing. */
#define TCP_STATE_NAMES 11

/* The name of reported state i (0 <= i < TCP_STATE_NAMES). */
const char *tcp_state_name(unsigned i);

/* Sums counts per kernel state into the reported states: a request socket
 * (TCP_NEW_SYN_RECV) counts as syn_recv, a bound-only socket
 * (TCP_BOUND_INACTIVE) as close, as ss shows them. */
void tcp_states_fold(const unsigned by_state[SNAPSHOT_STATES],
                     unsigned reported[TCP_STATE_NAMES]);

#endif
