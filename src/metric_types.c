#include "metric_types.h"

const metric_type_t metric_types[METRIC_TYPES_NUM] = {
    [METRIC_EPHEMERAL_PORTS] = {"ephemeral_ports",
                                {"used", "total", "available", "usage_ratio"},
                                4},
    [METRIC_EXPORTER] = {"ephemeral_port_exporter", {"scrape_success"}, 1},
    [METRIC_INSTANCE_OPEN] = {"instance_open", {"ports"}, 1},
    [METRIC_DESTINATION] = {"ephemeral_ports_destination",
                            {"used", "usage_ratio"},
                            2},
    [METRIC_STATE] = {"ephemeral_ports_state", {"sockets"}, 1},
    [METRIC_NAT] = {"ephemeral_ports_nat", {"used", "total", "usage_ratio"}, 3},
    [METRIC_CONNTRACK] = {"ephemeral_ports_conntrack",
                          {"insert_failed", "drop"},
                          2,
                          true},
};
