/* A port set kept between reads as a sorted list: a target remembers the
 * ports open at its last read in two bytes a port instead of the 8 KiB of
 * a portset_t, so a namespace costs bytes, not kilobytes. */
#ifndef EPHEMERAL_PORTS_PORT_MEMORY_H
#define EPHEMERAL_PORTS_PORT_MEMORY_H

#include "util/portset.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint16_t *ports;
  size_t count;
  size_t capacity;
} port_memory_t;

/* Replaces the list with the ports of set. Returns 0, or -ENOMEM with the
 * list unchanged. */
int port_memory_save(port_memory_t *memory, const portset_t *set);

/* Sets set to the ports of the list. */
void port_memory_load(const port_memory_t *memory, portset_t *set);

void port_memory_free(port_memory_t *memory);

#endif
