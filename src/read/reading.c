/* A target's reading from the scratch of its read: pool usage, the open
 * ports to report, the destinations to report, the states. */
#include "read/collector_internal.h"

#include "count/open_ports.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

int reading_init(collector_t *c) {
  unsigned top = c->opts->top_destinations;
  if (top == 0)
    return 0;
  c->top = calloc(top, sizeof(*c->top));
  /* The top, then as many that dropped out of the last top. */
  c->destination_readings =
      calloc(2 * (size_t)top, sizeof(*c->destination_readings));
  return c->top != NULL && c->destination_readings != NULL ? 0 : -1;
}

void reading_free(collector_t *c) {
  free(c->top);
  free(c->destination_readings);
  c->top = NULL;
  c->destination_readings = NULL;
}

void target_forget(target_t *t) {
  for (size_t i = 0; i < 2; i++)
    port_memory_free(&t->previously_open[i]);
  reported_keys_free(&t->reported_destinations);
  reported_keys_free(&t->reported_nat);
  cgroup_part_forget(t);
}

static void mark_reported(uint16_t port, bool open, void *ctx) {
  (void)open;
  portset_add(ctx, port);
}

static void protocol_reading(collector_t *c, target_t *t, size_t index,
                             const snapshot_t *snap, protocol_reading_t *out) {
  port_memory_t *memory = &t->previously_open[index];
  portset_t *report = &c->report[index];
  port_memory_load(memory, &c->previously_open);
  portset_clear(report);
  open_ports_report(&c->opts->open_ports, &c->previously_open, &snap->open,
                    mark_reported, report);
  if (port_memory_save(memory, &snap->open) != 0)
    collector_log(c, LOG_WARNING,
                  "out of memory remembering open ports: a "
                  "port that closes may not be reported with 0");
  out->used = snapshot_used(snap);
  out->total = snap->total;
  out->report = report;
  out->open = &snap->open;
  out->cgroups = NULL;
  out->cgroups_count = c->opts->top_cgroups > 0
                           ? cgroup_part_reading(c, t, index, &out->cgroups)
                           : 0;
}

/* A destination's used adds the ports held exclusively (listeners,
 * bound-only sockets): no connect() can take those either. */
static size_t destination_readings(collector_t *c, target_t *t) {
  size_t n = top_report(&c->destinations, c->top, c->opts->top_destinations,
                        &t->reported_destinations, c->destination_readings);
  unsigned exclusive = snapshot_exclusive(&c->tcp);
  for (size_t i = 0; i < n; i++)
    c->destination_readings[i].count += exclusive;
  return n;
}

void reading_emit(collector_t *c, target_t *t, bool ok) {
  target_reading_t r = {.netns = t->name, .ok = ok};
  protocol_reading_t tcp, udp;
  unsigned states[TCP_STATE_NAMES];
  if (ok && c->opts->measure_tcp) {
    protocol_reading(c, t, 0, &c->tcp, &tcp);
    r.tcp = &tcp;
    if (c->opts->top_destinations > 0) {
      r.destinations = c->destination_readings;
      r.destinations_count = destination_readings(c, t);
    }
    if (c->opts->report_states) {
      tcp_states_fold(c->tcp.sockets_by_state, states);
      r.states = states;
    }
  }
  if (ok && c->opts->measure_udp) {
    protocol_reading(c, t, 1, &c->udp, &udp);
    r.udp = &udp;
  }
  nat_reading_t nat;
  if (c->opts->report_nat) {
    nat_part_reading(c, t, &nat);
    r.nat = &nat;
  }
  c->ops.reading(&r, c->ops.ctx);
}
