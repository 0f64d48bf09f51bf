#include "read/reading.h"

#include "count/open_ports.h"

#include <stdlib.h>
#include <syslog.h>

struct reading {
  const options_t *opts;
  const log_sink_t *log;
  portset_t previously_open;
  portset_t report[2];
  destination_t *top;
  top_entry_t *destinations; /* the top, then as many drop-outs */
  protocol_reading_t protocols[2];
  unsigned states[TCP_STATE_NAMES];
  target_reading_t target;
};

reading_t *reading_new(const options_t *opts, const log_sink_t *log) {
  reading_t *reading = calloc(1, sizeof(*reading));
  if (reading == NULL)
    return NULL;
  reading->opts = opts;
  reading->log = log;
  unsigned top = opts->top_destinations;
  if (top == 0)
    return reading;
  reading->top = calloc(top, sizeof(*reading->top));
  reading->destinations =
      calloc(2 * (size_t)top, sizeof(*reading->destinations));
  if (reading->top == NULL || reading->destinations == NULL) {
    reading_free(reading);
    return NULL;
  }
  return reading;
}

void reading_free(reading_t *reading) {
  if (reading == NULL)
    return;
  free(reading->top);
  free(reading->destinations);
  free(reading);
}

void reading_memory_forget(reading_memory_t *memory) {
  for (size_t i = 0; i < 2; i++)
    port_memory_free(&memory->previously_open[i]);
  reported_keys_free(&memory->destinations);
}

static void mark_reported(uint16_t port, bool open, void *ctx) {
  (void)open;
  portset_add(ctx, port);
}

static const protocol_reading_t *
protocol_reading(reading_t *reading, reading_memory_t *memory, size_t index,
                 const snapshot_t *snap, const cgroup_readings_t *cgroups) {
  port_memory_t *remembered = &memory->previously_open[index];
  portset_t *report = &reading->report[index];
  port_memory_load(remembered, &reading->previously_open);
  portset_clear(report);
  open_ports_report(&reading->opts->open_ports, &reading->previously_open,
                    &snap->open, mark_reported, report);
  if (port_memory_save(remembered, &snap->open) != 0)
    log_sink_printf(reading->log, LOG_WARNING,
                    "out of memory remembering open ports: a "
                    "port that closes may not be reported with 0");
  protocol_reading_t *out = &reading->protocols[index];
  out->used = snapshot_used(snap);
  out->total = snap->total;
  out->report = report;
  out->open = &snap->open;
  out->cgroups = cgroups->groups;
  out->cgroups_count = cgroups->count;
  return out;
}

/* A destination's used adds the ports held exclusively (listeners,
 * bound-only sockets): no connect() can take those either. */
static size_t destination_readings(reading_t *reading, reading_memory_t *memory,
                                   scan_t *scan) {
  size_t n = top_report(scan_destinations(scan), reading->top,
                        reading->opts->top_destinations, &memory->destinations,
                        reading->destinations);
  unsigned exclusive = snapshot_exclusive(scan_snapshot(scan, 0));
  for (size_t i = 0; i < n; i++)
    reading->destinations[i].count += exclusive;
  return n;
}

const target_reading_t *reading_make(reading_t *reading,
                                     reading_memory_t *memory, scan_t *scan,
                                     const char *netns, bool ok,
                                     const cgroup_readings_t cgroups[2],
                                     const nat_reading_t *nat) {
  const options_t *opts = reading->opts;
  target_reading_t *r = &reading->target;
  *r = (target_reading_t){.netns = netns,
                          .interval_reads =
                              netns == NULL ? 1 : opts->netns_every,
                          .ok = ok,
                          .nat = nat};
  if (ok && opts->measure_tcp) {
    r->tcp = protocol_reading(reading, memory, 0, scan_snapshot(scan, 0),
                              &cgroups[0]);
    if (opts->top_destinations > 0) {
      r->destinations = reading->destinations;
      r->destinations_count = destination_readings(reading, memory, scan);
    }
    if (opts->report_states) {
      tcp_states_fold(scan_snapshot(scan, 0)->sockets_by_state,
                      reading->states);
      r->states = reading->states;
    }
  }
  if (ok && opts->measure_udp)
    r->udp = protocol_reading(reading, memory, 1, scan_snapshot(scan, 1),
                              &cgroups[1]);
  return r;
}
