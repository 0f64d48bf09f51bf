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
  uint32_t sockets;
  uint32_t generation; /* the entry belongs to the read of this number */
  bool in_top;         /* chosen by the last destinations_top */
} destination_t;

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

/* Counts one more socket to key. Returns 0, or -ENOMEM when the table
 * could not grow. */
int destinations_add(destinations_t *table, const destination_key_t *key);

/* The entry of key in this read, or NULL when no socket went to it. */
const destination_t *destinations_find(const destinations_t *table,
                                       const destination_key_t *key);

/* Copies the n busiest destinations into top, busiest first, ties in key
 * order, marks them in_top, and returns how many there were (at most n). */
size_t destinations_top(destinations_t *table, destination_t *top, size_t n);

/* "203.0.113.7:443" or "[2001:db8::7]:443", and the local address alone.
 * Return 0, or -1 when buf is too small. */
int destination_format_remote(const destination_key_t *key, char *buf,
                              size_t size);
int destination_format_local(const destination_key_t *key, char *buf,
                             size_t size);

#endif
