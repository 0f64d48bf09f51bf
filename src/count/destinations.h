/* Sockets per destination, the key being (local address, remote address,
 * remote port): connect() to a destination fails when every pool port is
 * held by a socket with the same key or held exclusively. An open-addressed
 * hash table that grows with the number of destinations and is reused
 * across reads: no allocation per socket, none per read once warm. */
#ifndef EPHEMERAL_PORTS_DESTINATIONS_H
#define EPHEMERAL_PORTS_DESTINATIONS_H

#include "kernel/inet_socket.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Laid out without padding: keys are hashed and compared as bytes. */
typedef struct {
  uint16_t remote_port;
  uint8_t family;   /* AF_INET (IPv4-mapped IPv6 folded in) or AF_INET6 */
  uint8_t protocol; /* 0 for sockets (a table per protocol); NAT flows:
                       IPPROTO_TCP or IPPROTO_UDP */
  uint8_t local_addr[16];
  uint8_t remote_addr[16];
} destination_key_t;

typedef struct {
  destination_key_t key;
  /* Sockets to the key, each on a port of its own (the 4-tuple is
   * unique); after destinations_settle, less the TIME_WAIT ones whose port
   * the next connect() to the key takes over: the ports it cannot use. */
  uint32_t held;
  uint32_t time_wait;                /* the key's sockets in TIME_WAIT */
  uint32_t taken_over;               /* TIME_WAIT ports connect() takes over */
  uint32_t taken_over_if_timestamps; /* ... if the peer does timestamps */
  uint32_t generation; /* the entry belongs to the read of this number */
  uint8_t timestamps;  /* DESTINATION_WITH(OUT)_TIMESTAMPS seen */
  bool in_top;         /* chosen by the last destinations_top */
} destination_t;

/* What a socket adds to its key besides itself (destinations_add). */
#define DESTINATION_TIME_WAIT 0x01u
#define DESTINATION_TAKEN_OVER 0x02u
#define DESTINATION_TAKEN_OVER_IF_TIMESTAMPS 0x04u
/* An established socket whose connection did, or did not, negotiate
 * timestamps: what the key's peer does. */
#define DESTINATION_WITH_TIMESTAMPS 0x08u
#define DESTINATION_WITHOUT_TIMESTAMPS 0x10u

typedef struct {
  destination_t *slots;
  size_t capacity; /* a power of two, or 0 */
  size_t count;
  uint32_t generation;
} destinations_t;

void destinations_init(destinations_t *table);
void destinations_free(destinations_t *table);

/* Starts a read: forgets every count in O(1). */
void destinations_clear(destinations_t *table);

void destination_key_of(const inet_socket_t *sock, destination_key_t *key);

/* Counts one more socket to key, with what flags (DESTINATION_*) say of
 * it. Returns 0, or -ENOMEM when the table could not grow. */
int destinations_add(destinations_t *table, const destination_key_t *key,
                     unsigned flags);

/* Ends a read of sockets: takes from each key's held the TIME_WAIT ports
 * connect() takes over, those that wait on timestamps only when every
 * established socket that told them to the key had them (and one did).
 * Call once per read, before destinations_top. */
void destinations_settle(destinations_t *table);

/* The entry of key in this read, or NULL when no socket went to it. */
const destination_t *destinations_find(const destinations_t *table,
                                       const destination_key_t *key);

/* Copies the n busiest destinations (most held) into top, busiest first,
 * ties in key order, marks them in_top, and returns how many there were
 * (at most n). */
size_t destinations_top(destinations_t *table, destination_t *top, size_t n);

/* "203.0.113.7:443" or "[2001:db8::7]:443", and the local address alone.
 * Return 0, or -1 when buf is too small. */
int destination_format_remote(const destination_key_t *key, char *buf,
                              size_t size);
int destination_format_local(const destination_key_t *key, char *buf,
                             size_t size);

#endif
