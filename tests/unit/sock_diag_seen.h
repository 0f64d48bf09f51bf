/* What the sock_diag suites share: a visitor that keeps the sockets a
 * dump hands it (those on the ports asked for, on a live host). */
#ifndef EPHEMERAL_PORTS_SOCK_DIAG_SEEN_H
#define EPHEMERAL_PORTS_SOCK_DIAG_SEEN_H

#include "kernel/sock_diag.h"

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_SEEN 4096
#define ALL_STATES 0xffffffffu

typedef struct {
  inet_socket_t socks[MAX_SEEN];
  size_t count;
  size_t stop_after; /* 0 = never stop */
  uint16_t keep[4];  /* when set, only sockets on these local ports */
} seen_t;

static inline int collect(const inet_socket_t *sock, void *ctx) {
  seen_t *seen = ctx;
  bool kept = seen->keep[0] == 0;
  for (size_t i = 0; i < 4 && !kept; i++)
    kept = seen->keep[i] != 0 && sock->local_port == seen->keep[i];
  if (!kept)
    return 0; /* a live host's other sockets */
  ck_assert_uint_lt(seen->count, MAX_SEEN);
  seen->socks[seen->count++] = *sock;
  if (seen->stop_after != 0 && seen->count >= seen->stop_after)
    return 42;
  return 0;
}

/* The live tests (test_sock_diag_live.c). */
TCase *sock_diag_live_tcase(void);

#endif
