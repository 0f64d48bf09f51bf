/* One read of the socket tables reduced to what the plugin reports: which
 * pool ports are held and which ports are listening. Knows no I/O and no
 * collectd; sources feed it through snapshot_add_socket. */
#ifndef EPHEMERAL_PORTS_SNAPSHOT_H
#define EPHEMERAL_PORTS_SNAPSHOT_H

#include "inet_socket.h"
#include "portset.h"

typedef struct {
  portset_t pool;      /* range minus reserved */
  portset_t used;      /* pool ports held by at least one socket */
  portset_t listening; /* any port with a TCP listener */
  unsigned total;      /* ports in pool */
} snapshot_t;

/* Starts a read over the range low..high with the reserved ports removed. */
void snapshot_begin(snapshot_t *snap, uint16_t low, uint16_t high,
                    const portset_t *reserved);

/* An inet_socket_visit_fn: ctx is the snapshot_t. Always returns 0. */
int snapshot_add_socket(const inet_socket_t *sock, void *ctx);

unsigned snapshot_used(const snapshot_t *snap);

#endif
