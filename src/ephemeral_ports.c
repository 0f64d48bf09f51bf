/* collectd glue: config items -> options, each read -> scan -> dispatch.
 * The only file that knows collectd. */
#include "collectd/core/daemon/plugin.h"
#include "collectd/core/daemon/utils_complain.h"

#include "metric_types.h"
#include "options.h"
#include "proc_net.h"
#include "snapshot.h"
#include "sock_diag.h"
#include "sysctl_ports.h"
#include "tcp_states.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PLUGIN_NAME "ephemeral_ports"
#define LOG_PREFIX PLUGIN_NAME " plugin: "
#define DUMP_ATTEMPTS 3

/* What one protocol's read keeps between reads. */
typedef struct {
  int protocol;
  const char *name; /* plugin_instance of its usage, type_instance of its
                       open ports: "" for TCP, "udp" for UDP */
  snapshot_t snapshot;
  portset_t previously_open;
} protocol_read_t;

static options_t options;
static source_kind_t active_source;
static sock_diag_t *diag;
static c_complain_t read_complaint = C_COMPLAIN_INIT_STATIC;
static bool protocol_configured;
static bool bound_only_probed;
static portset_t reserved;
/* Static: the port sets are too large for a read thread's stack to spare,
 * and reads of one plugin never overlap. Left zero here and named in
 * ep_init: an initialiser would put 41 KB of zeros each into the .so's
 * .data instead of .bss. */
static protocol_read_t tcp_read;
static protocol_read_t udp_read;
static destinations_t destinations;
static destination_t *top_destinations;  /* TopDestinations entries */
static destination_key_t *reported_keys; /* reported at the last read */
static size_t reported_count;

/* ---- configuration ---- */

static void format_config_value(const oconfig_value_t *value, char *buf,
                                size_t size) {
  switch (value->type) {
  case OCONFIG_TYPE_STRING:
    snprintf(buf, size, "\"%s\"", value->value.string);
    break;
  case OCONFIG_TYPE_NUMBER:
    snprintf(buf, size, "%g", value->value.number);
    break;
  default:
    snprintf(buf, size, "%s", value->value.boolean ? "true" : "false");
  }
}

static int config_error(const oconfig_item_t *item,
                        const oconfig_value_t *value, const char *expected) {
  char text[256] = "(none)";
  if (value != NULL)
    format_config_value(value, text, sizeof(text));
  ERROR(LOG_PREFIX "%s: invalid value %s (expected %s)", item->key, text,
        expected);
  return -1;
}

static const oconfig_value_t *single_value(const oconfig_item_t *item,
                                           int type) {
  if (item->values_num != 1 || item->values[0].type != type)
    return NULL;
  return &item->values[0];
}

static const oconfig_value_t *first_value(const oconfig_item_t *item) {
  return item->values_num > 0 ? &item->values[0] : NULL;
}

static int config_ports(const oconfig_item_t *item, portset_t *set) {
  if (item->values_num < 1)
    return config_error(item, NULL, "one or more ports 1..65535 or \"a-b\"");
  for (int i = 0; i < item->values_num; i++) {
    const oconfig_value_t *value = &item->values[i];
    int status = -1;
    if (value->type == OCONFIG_TYPE_NUMBER)
      status = port_option_add_number(set, value->value.number);
    else if (value->type == OCONFIG_TYPE_STRING)
      status = port_option_add_text(set, value->value.string);
    if (status != 0) {
      char text[256];
      format_config_value(value, text, sizeof(text));
      ERROR(LOG_PREFIX "%s: invalid port %s (expected 1..65535 or \"a-b\")",
            item->key, text);
      return -1;
    }
  }
  return 0;
}

static int config_protocols(const oconfig_item_t *item) {
  static const char expected[] = "\"tcp\" and/or \"udp\"";
  if (item->values_num < 1)
    return config_error(item, NULL, expected);
  /* The first Protocol line replaces the default; later ones add. */
  if (!protocol_configured)
    options.measure_tcp = options.measure_udp = false;
  protocol_configured = true;
  for (int i = 0; i < item->values_num; i++) {
    const oconfig_value_t *value = &item->values[i];
    int protocol;
    if (value->type != OCONFIG_TYPE_STRING ||
        protocol_parse(value->value.string, &protocol) != 0)
      return config_error(item, value, expected);
    if (protocol == IPPROTO_TCP)
      options.measure_tcp = true;
    else
      options.measure_udp = true;
  }
  return 0;
}

static int config_boolean(const oconfig_item_t *item, bool *flag) {
  const oconfig_value_t *value = single_value(item, OCONFIG_TYPE_BOOLEAN);
  if (value == NULL)
    return config_error(item, first_value(item), "true or false");
  *flag = value->value.boolean;
  return 0;
}

static int config_option(const oconfig_item_t *item) {
  const char *key = item->key;
  const oconfig_value_t *value;
  if (strcasecmp(key, "Source") == 0) {
    value = single_value(item, OCONFIG_TYPE_STRING);
    if (value == NULL ||
        source_kind_parse(value->value.string, &options.source) != 0)
      return config_error(item, first_value(item),
                          "\"netlink\", \"proc\" or \"auto\"");
    return 0;
  }
  if (strcasecmp(key, "ProcRoot") == 0) {
    value = single_value(item, OCONFIG_TYPE_STRING);
    if (value == NULL || value->value.string[0] == '\0' ||
        strlen(value->value.string) >= sizeof(options.proc_root))
      return config_error(item, first_value(item), "a directory path");
    snprintf(options.proc_root, sizeof(options.proc_root), "%s",
             value->value.string);
    return 0;
  }
  if (strcasecmp(key, "Protocol") == 0)
    return config_protocols(item);
  if (strcasecmp(key, "ReportOpenPorts") == 0)
    return config_boolean(item, &options.open_ports.report_open);
  if (strcasecmp(key, "WatchPort") == 0)
    return config_ports(item, &options.open_ports.watch);
  if (strcasecmp(key, "IgnorePort") == 0)
    return config_ports(item, &options.open_ports.ignore);
  if (strcasecmp(key, "TopDestinations") == 0) {
    value = single_value(item, OCONFIG_TYPE_NUMBER);
    if (value == NULL || top_destinations_parse(value->value.number,
                                                &options.top_destinations) != 0)
      return config_error(item, first_value(item), "a whole number 0..1000");
    return 0;
  }
  if (strcasecmp(key, "ReportStates") == 0)
    return config_boolean(item, &options.report_states);
  ERROR(LOG_PREFIX "unknown option \"%s\"", key);
  return -1;
}

static int ep_config(oconfig_item_t *ci) {
  for (int i = 0; i < ci->children_num; i++)
    if (config_option(&ci->children[i]) != 0)
      return -1;
  return 0;
}

/* ---- reading ---- */

#define BOUND_ONLY_BLIND_SPOT                                                  \
  LOG_PREFIX "TCP sockets that are bound but neither listening nor "           \
             "connected hold ports that are not counted: "

/* Says once when the kernel cannot dump bound-only sockets. The probe
 * needs a free pool port, so while the pool is exhausted it cannot tell,
 * and is tried again at the next read. */
static void probe_bound_only(void) {
  if (bound_only_probed || !options.measure_tcp)
    return;
  int dumps = sock_diag_dumps_bound_only(diag);
  if (dumps < 0)
    return;
  bound_only_probed = true;
  if (dumps == 0)
    INFO(BOUND_ONLY_BLIND_SPOT "this kernel does not dump them");
}

static int open_netlink(char *err, size_t err_size) {
  diag = sock_diag_open(err, err_size);
  if (diag == NULL)
    return -errno;
  probe_bound_only();
  return 0;
}

static int ep_init(void) {
  tcp_read.protocol = IPPROTO_TCP;
  tcp_read.name = "";
  udp_read.protocol = IPPROTO_UDP;
  udp_read.name = "udp";
  active_source = options.source;
  if (options.top_destinations > 0) {
    top_destinations =
        calloc(options.top_destinations, sizeof(*top_destinations));
    reported_keys = calloc(options.top_destinations, sizeof(*reported_keys));
    if (top_destinations == NULL || reported_keys == NULL) {
      ERROR(LOG_PREFIX "out of memory");
      return -1;
    }
  }
  destinations_init(&destinations);
  if (active_source != SOURCE_PROC) {
    char err[256];
    if (open_netlink(err, sizeof(err)) != 0 && active_source == SOURCE_AUTO) {
      WARNING(LOG_PREFIX "%s; reading %s/net instead", err, options.proc_root);
      active_source = SOURCE_PROC;
    }
    /* Source "netlink" keeps trying at each read: the failure shows as
     * scrape_success 0 until netlink works. */
  }
  if (active_source == SOURCE_PROC && options.measure_tcp)
    INFO(BOUND_ONLY_BLIND_SPOT "/proc/net/tcp does not list them");
  return 0;
}

static int dump_families(sock_diag_query_t query, inet_socket_visit_fn visit,
                         snapshot_t *snap, char *err, size_t err_size) {
  if (query.protocol == IPPROTO_TCP) {
    query.family = AF_UNSPEC; /* one kernel walk for IPv4 and IPv6 */
    return sock_diag_dump(diag, &query, visit, snap, err, err_size);
  }
  static const int families[] = {AF_INET, AF_INET6};
  for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
    query.family = families[i];
    int status = sock_diag_dump(diag, &query, visit, snap, err, err_size);
    if (status != 0)
      return status;
  }
  return 0;
}

/* Listeners first, from a LISTEN-only dump of every port (cost
 * O(listeners)): their accepted sockets share their port, which must be
 * known as exclusive before connected sockets are counted per destination.
 * Then everything else on pool ports in one dump that the kernel filters
 * to the range; bound-only sockets ride along, which costs the kernel far
 * less than a walk of its bind table of their own (see docs/BENCHMARKS.md).
 * UDP: unconnected sockets of every port, then connected ones in range. */
static int scan_netlink(protocol_read_t *read, uint16_t low, uint16_t high,
                        char *err, size_t err_size) {
  sock_diag_query_t unconnected = {0, read->protocol, 0, 0, 0};
  sock_diag_query_t rest = {0, read->protocol, 0, low, high};
  if (read->protocol == IPPROTO_TCP) {
    unconnected.states = 1u << TCP_LISTEN;
    /* TCP_ESTABLISHED .. TCP_NEW_SYN_RECV but LISTEN, TIME_WAIT included,
     * and bound-only sockets: a kernel that does not know that state has no
     * socket in it, so asking costs nothing there. */
    rest.states =
        (0x1ffeu & ~(1u << TCP_LISTEN)) | (1u << INET_TCP_BOUND_INACTIVE);
  } else {
    unconnected.states = 1u << TCP_CLOSE;
    rest.states = 1u << TCP_ESTABLISHED;
  }
  if (diag == NULL) {
    int status = open_netlink(err, err_size);
    if (status != 0)
      return status;
  } else if (read->protocol == IPPROTO_TCP) {
    probe_bound_only();
  }
  int status = dump_families(unconnected, snapshot_add_unconnected,
                             &read->snapshot, err, err_size);
  if (status == 0)
    status = dump_families(rest, snapshot_add_socket, &read->snapshot, err,
                           err_size);
  return status;
}

static int scan_proc(protocol_read_t *read, char *err, size_t err_size) {
  int status =
      proc_net_read(options.proc_root, read->protocol, snapshot_add_unconnected,
                    &read->snapshot, err, err_size);
  if (status == 0)
    status =
        proc_net_read(options.proc_root, read->protocol, snapshot_add_connected,
                      &read->snapshot, err, err_size);
  return status;
}

/* Fills the protocol's snapshot from the active source. A netlink dump
 * that the kernel interrupted (the table changed under it) is started
 * over, counting from scratch. */
static int scan_protocol(protocol_read_t *read, uint16_t low, uint16_t high,
                         char *err, size_t err_size) {
  destinations_t *table =
      read->protocol == IPPROTO_TCP && options.top_destinations > 0
          ? &destinations
          : NULL;
  int status = -EAGAIN;
  for (int attempt = 0; attempt < DUMP_ATTEMPTS && status == -EAGAIN;
       attempt++) {
    snapshot_begin(&read->snapshot, read->protocol, low, high, &reserved,
                   table);
    status = active_source == SOURCE_PROC
                 ? scan_proc(read, err, err_size)
                 : scan_netlink(read, low, high, err, err_size);
  }
  if (status == -ENOMEM)
    snprintf(err, err_size, "out of memory counting destinations");
  if (status != 0 && status != -ENOMEM && active_source == SOURCE_AUTO) {
    WARNING(LOG_PREFIX "%s; reading %s/net instead from now on", err,
            options.proc_root);
    active_source = SOURCE_PROC;
    return scan_protocol(read, low, high, err, err_size);
  }
  return status;
}

/* ---- dispatching ---- */

/* When the current read began: every value of a read carries it, so a
 * value's timestamp never postdates the socket tables it was taken from. */
static cdtime_t read_started;

static void dispatch(int metric, const char *plugin_instance,
                     const char *type_instance, const gauge_t *values) {
  const metric_type_t *type = &metric_types[metric];
  value_list_t vl = VALUE_LIST_INIT;
  vl.time = read_started;
  value_t converted[METRIC_TYPE_MAX_SOURCES];
  for (size_t i = 0; i < type->sources_num; i++)
    /* The analyzer cannot see metric_types[] (another file), so it assumes
     * a one-value call could meet a two-source type; callers pass exactly
     * sources_num values. */
    // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign)
    converted[i].gauge = values[i];
  vl.values = converted;
  vl.values_len = type->sources_num;
  snprintf(vl.plugin, sizeof(vl.plugin), "%s", type->name);
  snprintf(vl.type, sizeof(vl.type), "%s", type->name);
  snprintf(vl.plugin_instance, sizeof(vl.plugin_instance), "%s",
           plugin_instance);
  snprintf(vl.type_instance, sizeof(vl.type_instance), "%s", type_instance);
  plugin_dispatch_values(&vl);
}

static gauge_t ratio(unsigned used, unsigned total) {
  return total > 0 ? (gauge_t)used / total : NAN;
}

static void dispatch_open_port(uint16_t port, bool open, void *ctx) {
  const protocol_read_t *read = ctx;
  char port_text[8];
  snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
  dispatch(METRIC_INSTANCE_OPEN, port_text, read->name,
           (gauge_t[]){open ? 1 : 0});
}

static void dispatch_protocol(protocol_read_t *read) {
  const snapshot_t *snap = &read->snapshot;
  unsigned used = snapshot_used(snap);
  dispatch(METRIC_EPHEMERAL_PORTS, read->name, "",
           (gauge_t[]){used, snap->total, snap->total - used,
                       ratio(used, snap->total)});
  open_ports_report(&options.open_ports, &read->previously_open, &snap->open,
                    dispatch_open_port, read);
}

static void dispatch_destination(const destination_key_t *key, unsigned sockets,
                                 const snapshot_t *snap) {
  char remote[INET6_ADDRSTRLEN + 8], local[INET6_ADDRSTRLEN];
  if (destination_format_remote(key, remote, sizeof(remote)) != 0 ||
      destination_format_local(key, local, sizeof(local)) != 0)
    return;
  unsigned used = sockets + snapshot_exclusive(snap);
  dispatch(METRIC_DESTINATION, remote, local,
           (gauge_t[]){used, ratio(used, snap->total)});
}

/* The busiest destinations, then once more each destination that was
 * reported last time and is not among them now, with its current value, so
 * write_prometheus does not serve its old value until it goes stale. */
static void dispatch_destinations(const snapshot_t *snap) {
  size_t count = destinations_top(&destinations, top_destinations,
                                  options.top_destinations);
  for (size_t i = 0; i < count; i++)
    dispatch_destination(&top_destinations[i].key, top_destinations[i].sockets,
                         snap);
  for (size_t i = 0; i < reported_count; i++) {
    const destination_t *now =
        destinations_find(&destinations, &reported_keys[i]);
    if (now == NULL || !now->in_top)
      dispatch_destination(&reported_keys[i], now ? now->sockets : 0, snap);
  }
  for (size_t i = 0; i < count; i++)
    reported_keys[i] = top_destinations[i].key;
  reported_count = count;
}

static void dispatch_states(const snapshot_t *snap) {
  unsigned counts[TCP_STATE_NAMES];
  tcp_states_fold(snap->sockets_by_state, counts);
  for (unsigned i = 0; i < TCP_STATE_NAMES; i++)
    dispatch(METRIC_STATE, "", tcp_state_name(i), (gauge_t[]){counts[i]});
}

static int read_tables(char *err, size_t err_size) {
  uint16_t low, high;
  int status =
      sysctl_read_port_range(options.proc_root, &low, &high, err, err_size);
  if (status == 0)
    status =
        sysctl_read_reserved_ports(options.proc_root, &reserved, err, err_size);
  if (status == 0 && options.measure_tcp)
    status = scan_protocol(&tcp_read, low, high, err, err_size);
  if (status == 0 && options.measure_udp)
    status = scan_protocol(&udp_read, low, high, err, err_size);
  return status;
}

static int ep_read(void) {
  char err[512];
  read_started = cdtime();
  if (read_tables(err, sizeof(err)) != 0) {
    c_complain_once(LOG_ERR, &read_complaint, LOG_PREFIX "%s", err);
    dispatch(METRIC_EXPORTER, "", "", (gauge_t[]){0});
    return 0;
  }
  c_release(LOG_INFO, &read_complaint, LOG_PREFIX "reading recovered");

  if (options.measure_tcp) {
    dispatch_protocol(&tcp_read);
    if (options.top_destinations > 0)
      dispatch_destinations(&tcp_read.snapshot);
    if (options.report_states)
      dispatch_states(&tcp_read.snapshot);
  }
  if (options.measure_udp)
    dispatch_protocol(&udp_read);
  /* Last: collectd's write queue is FIFO, so a consumer that sees this
   * read's scrape_success knows the read's other values were queued. */
  dispatch(METRIC_EXPORTER, "", "", (gauge_t[]){1});
  return 0;
}

static int ep_shutdown(void) {
  sock_diag_close(diag);
  diag = NULL;
  destinations_free(&destinations);
  free(top_destinations);
  free(reported_keys);
  top_destinations = NULL;
  reported_keys = NULL;
  reported_count = 0;
  return 0;
}

/* ---- registration ---- */

static int register_data_sets(void) {
  for (size_t i = 0; i < METRIC_TYPES_NUM; i++) {
    const metric_type_t *type = &metric_types[i];
    data_source_t sources[METRIC_TYPE_MAX_SOURCES];
    memset(sources, 0, sizeof(sources));
    for (size_t j = 0; j < type->sources_num; j++) {
      snprintf(sources[j].name, sizeof(sources[j].name), "%s",
               type->sources[j]);
      sources[j].type = DS_TYPE_GAUGE;
      sources[j].min = 0;
      sources[j].max = NAN;
    }
    data_set_t set = {.ds_num = type->sources_num, .ds = sources};
    snprintf(set.type, sizeof(set.type), "%s", type->name);
    /* plugin_register_data_set copies the set. */
    if (plugin_register_data_set(&set) != 0)
      return -1;
  }
  return 0;
}

void module_register(void) {
  options_init(&options);
  if (register_data_sets() != 0)
    ERROR(LOG_PREFIX "registering the data sets failed");
  plugin_register_complex_config(PLUGIN_NAME, ep_config);
  plugin_register_init(PLUGIN_NAME, ep_init);
  plugin_register_read(PLUGIN_NAME, ep_read);
  plugin_register_shutdown(PLUGIN_NAME, ep_shutdown);
}
