/* collectd glue: config items -> options, readings -> dispatch.
 * The only file that knows collectd. */
#include "collectd/core/daemon/plugin.h"

#include "count/nat_usage.h"
#include "glue/metric_types.h"
#include "kernel/netns.h"
#include "read/collector.h"
#include "read/options.h"

#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PLUGIN_NAME "ephemeral_ports"
#define LOG_PREFIX PLUGIN_NAME " plugin: "

static options_t options;
static bool protocol_configured;
static collector_t *collector;

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

/* The path must name a network namespace now; it is opened again at each
 * read, so nothing of it is held. */
static int config_netns(const oconfig_item_t *item) {
  const oconfig_value_t *value = single_value(item, OCONFIG_TYPE_STRING);
  if (value == NULL)
    return config_error(item, first_value(item), "a network namespace path");
  char why[512];
  netns_id_t id;
  int fd = netns_open(value->value.string, &id, why, sizeof(why));
  if (fd < 0) {
    ERROR(LOG_PREFIX "%s: invalid value \"%s\" (expected a network "
                     "namespace: %s)",
          item->key, value->value.string, why);
    return -1;
  }
  close(fd);
  if (options_add_netns(&options, value->value.string) != 0) {
    ERROR(LOG_PREFIX "out of memory");
    return -1;
  }
  return 0;
}

/* NetNamespaceName: one or more names or "/regex/"s, repeatable. */
static int config_netns_names(const oconfig_item_t *item) {
  static const char expected[] = "a namespace name or \"/regex/\"";
  if (item->values_num < 1)
    return config_error(item, NULL, expected);
  for (int i = 0; i < item->values_num; i++) {
    const oconfig_value_t *value = &item->values[i];
    if (value->type != OCONFIG_TYPE_STRING)
      return config_error(item, value, expected);
    char why[256];
    if (name_select_add(&options.netns_select, value->value.string, why,
                        sizeof(why)) != 0) {
      ERROR(LOG_PREFIX "%s: invalid value \"%s\" (expected %s: %s)", item->key,
            value->value.string, expected, why);
      return -1;
    }
  }
  return 0;
}

#define TEXT_OF_(x) #x
#define TEXT_OF(x) TEXT_OF_(x)
#define NETNS_INTERVAL_MAX_TEXT TEXT_OF(NETNS_INTERVAL_MAX)

static int config_netns_interval(const oconfig_item_t *item) {
  const oconfig_value_t *value = single_value(item, OCONFIG_TYPE_NUMBER);
  if (value == NULL ||
      netns_interval_parse(value->value.number, &options.netns_interval) != 0)
    return config_error(item, first_value(item),
                        "seconds, 0 or 0.001.." NETNS_INTERVAL_MAX_TEXT);
  return 0;
}

/* TopDestinations, TopCgroups, TopNatDestinations: how many series. */
static int config_top(const oconfig_item_t *item, unsigned *top) {
  const oconfig_value_t *value = single_value(item, OCONFIG_TYPE_NUMBER);
  if (value == NULL || top_destinations_parse(value->value.number, top) != 0)
    return config_error(item, first_value(item), "a whole number 0..1000");
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
  if (strcasecmp(key, "TopDestinations") == 0)
    return config_top(item, &options.top_destinations);
  if (strcasecmp(key, "TopCgroups") == 0)
    return config_top(item, &options.top_cgroups);
  if (strcasecmp(key, "ReportStates") == 0)
    return config_boolean(item, &options.report_states);
  if (strcasecmp(key, "ReportNat") == 0)
    return config_boolean(item, &options.report_nat);
  if (strcasecmp(key, "NatPortRange") == 0) {
    value = single_value(item, OCONFIG_TYPE_STRING);
    if (value == NULL ||
        nat_port_range_parse(value->value.string, &options.nat_range) != 0)
      return config_error(item, first_value(item),
                          "\"LOW-HIGH\" within 1..65535");
    return 0;
  }
  if (strcasecmp(key, "TopNatDestinations") == 0)
    return config_top(item, &options.top_nat);
  if (strcasecmp(key, "NetNamespace") == 0)
    return config_netns(item);
  if (strcasecmp(key, "AllNetNamespaces") == 0)
    return config_boolean(item, &options.all_netns);
  if (strcasecmp(key, "NetNamespaceName") == 0)
    return config_netns_names(item);
  if (strcasecmp(key, "NetNamespaceInterval") == 0)
    return config_netns_interval(item);
  if (strcasecmp(key, "IgnoreSelected") == 0)
    return config_boolean(item, &options.netns_select.ignore_selected);
  ERROR(LOG_PREFIX "unknown option \"%s\"", key);
  return -1;
}

static int ep_config(oconfig_item_t *ci) {
  for (int i = 0; i < ci->children_num; i++)
    if (config_option(&ci->children[i]) != 0)
      return -1;
  char err[256];
  if (options_check(&options, err, sizeof(err)) != 0) {
    ERROR(LOG_PREFIX "%s", err);
    return -1;
  }
  return 0;
}

/* ---- dispatching ---- */

/* When the current read began: every value of a read carries it, so a
 * value's timestamp never postdates the socket tables it was taken from. */
static cdtime_t read_started;
/* The host of the reading being dispatched, and the interval its values
 * stand for (0: the plugin's). */
static char reading_host[DATA_MAX_NAME_LEN];
static cdtime_t reading_interval;

/* A name into a value list's field, cut to fit as snprintf would: five
 * per value: 150 ns with snprintf("%s"), 80 ns this way. */
static void copy_name(char *dst, size_t size, const char *src) {
  size_t len = strnlen(src, size - 1);
  memcpy(dst, src, len);
  dst[len] = '\0';
}

/* values: exactly the type's sources_num of them, gauges or, for a DERIVE
 * type, counters. */
static void dispatch_values(int metric, const char *plugin_instance,
                            const char *type_instance, value_t *values) {
  const metric_type_t *type = &metric_types[metric];
  value_list_t vl = VALUE_LIST_INIT;
  vl.time = read_started;
  vl.interval = reading_interval;
  vl.values = values;
  vl.values_len = type->sources_num;
  copy_name(vl.host, sizeof(vl.host), reading_host);
  copy_name(vl.plugin, sizeof(vl.plugin), type->name);
  copy_name(vl.type, sizeof(vl.type), type->name);
  copy_name(vl.plugin_instance, sizeof(vl.plugin_instance), plugin_instance);
  copy_name(vl.type_instance, sizeof(vl.type_instance), type_instance);
  plugin_dispatch_values(&vl);
}

/* The analyzer cannot see metric_types[] (another file), so it assumes a
 * one-value call could meet a two-source type; callers pass exactly
 * sources_num values. */
static void dispatch(int metric, const char *plugin_instance,
                     const char *type_instance, const gauge_t *gauges) {
  value_t values[METRIC_TYPE_MAX_SOURCES];
  for (size_t i = 0; i < metric_types[metric].sources_num; i++)
    // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign)
    values[i].gauge = gauges[i];
  dispatch_values(metric, plugin_instance, type_instance, values);
}

static void dispatch_counters(int metric, const derive_t *counters) {
  value_t values[METRIC_TYPE_MAX_SOURCES];
  for (size_t i = 0; i < metric_types[metric].sources_num; i++)
    // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign)
    values[i].derive = counters[i];
  dispatch_values(metric, "", "", values);
}

static gauge_t ratio(unsigned used, unsigned total) {
  return total > 0 ? (gauge_t)used / total : NAN;
}

/* Usage under plugin_instance name ("" for TCP, "udp"), open ports with
 * type_instance name. */
static void dispatch_protocol(const protocol_reading_t *reading,
                              const char *name) {
  unsigned used = reading->used, total = reading->total;
  dispatch(METRIC_EPHEMERAL_PORTS, name, "",
           (gauge_t[]){used, total, total - used, ratio(used, total)});
  for (int port = portset_next(reading->report, 0); port >= 0;
       port = portset_next(reading->report, (unsigned)port + 1)) {
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)(uint16_t)port);
    bool open = portset_has(reading->open, (uint16_t)port);
    dispatch(METRIC_INSTANCE_OPEN, port_text, name, (gauge_t[]){open ? 1 : 0});
  }
  for (size_t i = 0; i < reading->cgroups_count; i++)
    dispatch(METRIC_CGROUP, reading->cgroups[i].name, name,
             (gauge_t[]){reading->cgroups[i].used});
}

static void dispatch_destination(const top_entry_t *destination,
                                 unsigned total) {
  char remote[INET6_ADDRSTRLEN + 8], local[INET6_ADDRSTRLEN];
  if (destination_format_remote(&destination->key, remote, sizeof(remote)) !=
          0 ||
      destination_format_local(&destination->key, local, sizeof(local)) != 0)
    return;
  dispatch(METRIC_DESTINATION, remote, local,
           (gauge_t[]){destination->count, ratio(destination->count, total),
                       destination->time_wait});
}

/* NAT destinations, the conntrack counters, then the part's own
 * scrape_success (plugin_instance "nat"). */
static void dispatch_nat(const nat_reading_t *nat) {
  if (nat->ok) {
    for (size_t i = 0; i < nat->count; i++) {
      const top_entry_t *entry = &nat->entries[i];
      char destination[INET6_ADDRSTRLEN + 16], source[INET6_ADDRSTRLEN];
      if (nat_format_destination(&entry->key, destination,
                                 sizeof(destination)) != 0 ||
          nat_format_source(&entry->key, source, sizeof(source)) != 0)
        continue;
      dispatch(METRIC_NAT, destination, source,
               (gauge_t[]){entry->count, nat->total,
                           ratio(entry->count, nat->total)});
    }
    dispatch_counters(
        METRIC_CONNTRACK,
        (derive_t[]){(derive_t)nat->insert_failed, (derive_t)nat->drop});
  }
  dispatch(METRIC_EXPORTER, "nat", "", (gauge_t[]){nat->ok ? 1 : 0});
}

static void dispatch_reading(const target_reading_t *reading, void *ctx) {
  (void)ctx;
  /* A namespace read every n-th read stands for n intervals: collectd's
   * cache and write_prometheus keep its values that long. */
  reading_interval = reading->interval_reads > 1
                         ? reading->interval_reads * plugin_get_interval()
                         : 0;
  if (reading->netns == NULL)
    snprintf(reading_host, sizeof(reading_host), "%s", hostname_g);
  else
    snprintf(reading_host, sizeof(reading_host), "%s:%s", hostname_g,
             reading->netns);
  if (reading->tcp != NULL) {
    dispatch_protocol(reading->tcp, "");
    for (size_t i = 0; i < reading->destinations_count; i++)
      dispatch_destination(&reading->destinations[i], reading->tcp->total);
    if (reading->states != NULL)
      for (unsigned i = 0; i < TCP_STATE_NAMES; i++)
        dispatch(METRIC_STATE, "", tcp_state_name(i),
                 (gauge_t[]){reading->states[i]});
  }
  if (reading->udp != NULL)
    dispatch_protocol(reading->udp, "udp");
  if (reading->nat != NULL)
    dispatch_nat(reading->nat);
  /* Last: collectd's write queue is FIFO, so a consumer that sees this
   * read's scrape_success knows the read's other values were queued. */
  dispatch(METRIC_EXPORTER, "", "", (gauge_t[]){reading->ok ? 1 : 0});
}

/* The whole read's cost, under the plain host. */
static void dispatch_cost(const read_cost_t *cost, void *ctx) {
  (void)ctx;
  snprintf(reading_host, sizeof(reading_host), "%s", hostname_g);
  reading_interval = 0;
  dispatch(METRIC_READ, "", "", (gauge_t[]){cost->seconds, cost->cpu_seconds});
}

static void log_message(int severity, const char *message, void *ctx) {
  (void)ctx;
  plugin_log(severity, LOG_PREFIX "%s", message);
}

/* ---- reading ---- */

/* Other namespaces are read at every netns_every-th read: said once, as
 * the interval that really applies. */
static void settle_netns_interval(void) {
  options_set_read_interval(&options,
                            CDTIME_T_TO_DOUBLE(plugin_get_interval()));
  if (options.netns_interval == 0)
    return;
  double applied = options.netns_every * options.read_interval;
  if (options.netns_interval < options.read_interval)
    WARNING(LOG_PREFIX "NetNamespaceInterval %g is shorter than the read "
                       "interval (%g s): other network namespaces are read at "
                       "every read",
            options.netns_interval, options.read_interval);
  else if (options.netns_every == NETNS_EVERY_MAX)
    WARNING(LOG_PREFIX "NetNamespaceInterval %g: other network namespaces are "
                       "read every %u reads (the most), every %g s",
            options.netns_interval, options.netns_every, applied);
  else if (applied - options.netns_interval > 1e-6 * applied)
    INFO(LOG_PREFIX "NetNamespaceInterval %g: other network namespaces are "
                    "read every %u reads, every %g s",
         options.netns_interval, options.netns_every, applied);
}

static int ep_init(void) {
  char err[512];
  settle_netns_interval();
  collector_ops_t ops = {
      .reading = dispatch_reading,
      .log = log_message,
      .cost = dispatch_cost,
      /* host is "<Hostname>:<name>" in collectd's 128-byte field. */
      .netns_name_max = DATA_MAX_NAME_LEN - 2 - strlen(hostname_g),
  };
  collector = collector_new(&options, &ops, err, sizeof(err));
  if (collector == NULL) {
    ERROR(LOG_PREFIX "%s", err);
    return -1;
  }
  return 0;
}

static int ep_read(void) {
  read_started = cdtime();
  collector_read(collector);
  return 0;
}

static int ep_shutdown(void) {
  collector_free(collector);
  collector = NULL;
  options_free(&options);
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
      sources[j].type = type->derive ? DS_TYPE_DERIVE : DS_TYPE_GAUGE;
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
