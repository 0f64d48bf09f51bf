#include "util/port_memory.h"

#include <errno.h>
#include <stdlib.h>

int port_memory_save(port_memory_t *memory, const portset_t *set) {
  size_t count = portset_count(set);
  if (count > memory->capacity) {
    uint16_t *grown = realloc(memory->ports, count * sizeof(*grown));
    if (grown == NULL)
      return -ENOMEM;
    memory->ports = grown;
    memory->capacity = count;
  }
  size_t i = 0;
  for (int port = portset_next(set, 0); port >= 0;
       port = portset_next(set, (unsigned)port + 1))
    memory->ports[i++] = (uint16_t)port;
  memory->count = i;
  return 0;
}

void port_memory_load(const port_memory_t *memory, portset_t *set) {
  portset_clear(set);
  for (size_t i = 0; i < memory->count; i++)
    portset_add(set, memory->ports[i]);
}

void port_memory_free(port_memory_t *memory) {
  free(memory->ports);
  memory->ports = NULL;
  memory->count = memory->capacity = 0;
}
