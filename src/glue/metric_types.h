/* The data sets the plugin dispatches (collectd type = plugin name, every
 * source >= 0: GAUGE, or DERIVE for the kernel's counters). The glue registers
 * them at load; ephemeral_ports.types.db carries the same lines for receivers,
 * and a unit test keeps both equal. */
#ifndef EPHEMERAL_PORTS_METRIC_TYPES_H
#define EPHEMERAL_PORTS_METRIC_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#define METRIC_TYPE_MAX_SOURCES 4

typedef struct {
  const char *name;
  const char *sources[METRIC_TYPE_MAX_SOURCES];
  size_t sources_num;
  bool derive; /* DERIVE sources (counters), else GAUGE */
} metric_type_t;

enum {
  METRIC_EPHEMERAL_PORTS,
  METRIC_EXPORTER,
  METRIC_INSTANCE_OPEN,
  METRIC_DESTINATION,
  METRIC_STATE,
  METRIC_CGROUP,
  METRIC_NAT,
  METRIC_CONNTRACK,
  METRIC_READ,
  METRIC_TYPES_NUM
};

extern const metric_type_t metric_types[METRIC_TYPES_NUM];

#endif
