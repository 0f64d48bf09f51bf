/* Which instance_open values one read reports, per DESIGN.md: open ports
 * with 1, watched ports always, a port that just closed once with 0, and
 * ignored ports never. */
#ifndef EPHEMERAL_PORTS_OPEN_PORTS_H
#define EPHEMERAL_PORTS_OPEN_PORTS_H

#include "util/portset.h"

#include <stdbool.h>

typedef struct {
  bool report_open; /* false: only watched ports are reported */
  portset_t watch;
  portset_t ignore;
} open_ports_config_t;

typedef void (*open_port_emit_fn)(uint16_t port, bool open, void *ctx);

/* Calls emit for each port to report, in ascending order. previously_open
 * holds the ports open at the last read (of the same protocol) and is
 * replaced by open. */
void open_ports_report(const open_ports_config_t *config,
                       portset_t *previously_open, const portset_t *open,
                       open_port_emit_fn emit, void *ctx);

#endif
