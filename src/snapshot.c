#include "snapshot.h"

#include <netinet/tcp.h>

void snapshot_begin(snapshot_t *snap, uint16_t low, uint16_t high,
                    const portset_t *reserved) {
  portset_clear(&snap->pool);
  portset_add_range(&snap->pool, low, high);
  for (unsigned i = 0; i < PORTSET_WORDS; i++)
    snap->pool.words[i] &= ~reserved->words[i];
  snap->total = portset_count(&snap->pool);
  portset_clear(&snap->used);
  portset_clear(&snap->listening);
}

int snapshot_add_socket(const inet_socket_t *sock, void *ctx) {
  snapshot_t *snap = ctx;
  if (portset_has(&snap->pool, sock->local_port))
    portset_add(&snap->used, sock->local_port);
  if (sock->state == TCP_LISTEN && sock->local_port != 0)
    portset_add(&snap->listening, sock->local_port);
  return 0;
}

unsigned snapshot_used(const snapshot_t *snap) {
  return portset_count(&snap->used);
}
