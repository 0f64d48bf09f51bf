/* The data sets the plugin dispatches (collectd type = plugin name, all
 * GAUGE >= 0). The glue registers them at load; ephemeral_ports.types.db
 * carries the same lines for receivers, and a unit test keeps both equal. */
#ifndef EPHEMERAL_PORTS_METRIC_TYPES_H
#define EPHEMERAL_PORTS_METRIC_TYPES_H

#include <stddef.h>

#define METRIC_TYPE_MAX_SOURCES 4

typedef struct {
  const char *name;
  const char *sources[METRIC_TYPE_MAX_SOURCES];
  size_t sources_num;
} metric_type_t;

enum {
  METRIC_EPHEMERAL_PORTS,
  METRIC_EXPORTER,
  METRIC_INSTANCE_OPEN,
  METRIC_DESTINATION,
  METRIC_STATE,
  METRIC_TYPES_NUM
};

extern const metric_type_t metric_types[METRIC_TYPES_NUM];

#endif
