/* collectd glue: config items -> options, each read -> scan -> dispatch.
 * The only file that knows collectd. */
#include "collectd/core/daemon/plugin.h"
#include "collectd/core/daemon/utils_complain.h"

#include "metric_types.h"
#include "open_ports.h"
#include "options.h"
#include "proc_net.h"
#include "snapshot.h"
#include "sock_diag.h"
#include "sysctl_ports.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PLUGIN_NAME "ephemeral_ports"
#define LOG_PREFIX PLUGIN_NAME " plugin: "

/* Every TCP state a socket can hold a port in (TCP_ESTABLISHED ..
 * TCP_NEW_SYN_RECV). Bound-only sockets (TCP_BOUND_INACTIVE on recent
 * kernels) are left out, as `ss -tan` leaves them out. */
#define TCP_STATES_HOLDING_PORTS 0x1ffeU
#define DUMP_ATTEMPTS 3

static options_t options;
static open_ports_t open_ports = {.report_open = true};
static source_kind_t active_source;
static sock_diag_t *diag;
static c_complain_t read_complaint = C_COMPLAIN_INIT_STATIC;
/* Static: three 8 KiB port sets are too large for a read thread's stack
 * to spare, and reads of one plugin never overlap. */
static snapshot_t snapshot;
static portset_t reserved;

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

static int config_error(const oconfig_item_t *item, const char *expected) {
  char value[256] = "(none)";
  if (item->values_num > 0)
    format_config_value(&item->values[0], value, sizeof(value));
  ERROR(LOG_PREFIX "%s: invalid value %s (expected %s)", item->key, value,
        expected);
  return -1;
}

static int config_single_string(const oconfig_item_t *item, const char **text) {
  if (item->values_num != 1 || item->values[0].type != OCONFIG_TYPE_STRING)
    return -1;
  *text = item->values[0].value.string;
  return 0;
}

static int config_ports(const oconfig_item_t *item, portset_t *set) {
  if (item->values_num < 1)
    return config_error(item, "one or more ports 1..65535 or \"a-b\"");
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

static int config_option(const oconfig_item_t *item) {
  const char *text;
  if (strcasecmp(item->key, "Source") == 0) {
    if (config_single_string(item, &text) != 0 ||
        source_kind_parse(text, &options.source) != 0)
      return config_error(item, "\"netlink\", \"proc\" or \"auto\"");
    return 0;
  }
  if (strcasecmp(item->key, "ProcRoot") == 0) {
    if (config_single_string(item, &text) != 0 || text[0] == '\0' ||
        strlen(text) >= sizeof(options.proc_root))
      return config_error(item, "a directory path");
    snprintf(options.proc_root, sizeof(options.proc_root), "%s", text);
    return 0;
  }
  if (strcasecmp(item->key, "ReportOpenPorts") == 0) {
    if (item->values_num != 1 || item->values[0].type != OCONFIG_TYPE_BOOLEAN)
      return config_error(item, "true or false");
    open_ports.report_open = item->values[0].value.boolean;
    return 0;
  }
  if (strcasecmp(item->key, "WatchPort") == 0)
    return config_ports(item, &open_ports.watch);
  if (strcasecmp(item->key, "IgnorePort") == 0)
    return config_ports(item, &open_ports.ignore);
  ERROR(LOG_PREFIX "unknown option \"%s\"", item->key);
  return -1;
}

static int ep_config(oconfig_item_t *ci) {
  for (int i = 0; i < ci->children_num; i++)
    if (config_option(&ci->children[i]) != 0)
      return -1;
  return 0;
}

static int ep_init(void) {
  active_source = options.source;
  if (active_source == SOURCE_PROC)
    return 0;
  char err[256];
  diag = sock_diag_open(err, sizeof(err));
  if (diag == NULL && active_source == SOURCE_AUTO) {
    WARNING(LOG_PREFIX "%s; reading %s/net instead", err, options.proc_root);
    active_source = SOURCE_PROC;
  }
  /* Source "netlink" keeps trying at each read: the failure shows as
   * scrape_success 0 until netlink works. */
  return 0;
}

static int scan_netlink(snapshot_t *snap, char *err, size_t err_size) {
  if (diag == NULL && (diag = sock_diag_open(err, err_size)) == NULL)
    return -1;
  static const int families[] = {AF_INET, AF_INET6};
  for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
    sock_diag_query_t query = {families[i], IPPROTO_TCP,
                               TCP_STATES_HOLDING_PORTS, 0, 0};
    int status = sock_diag_dump(diag, &query, snapshot_add_socket, snap, err,
                                err_size);
    if (status != 0)
      return status;
  }
  return 0;
}

/* Fills the snapshot from the active source. A netlink dump that the
 * kernel interrupted (the table changed under it) is started over. */
static int scan_sockets(uint16_t low, uint16_t high, char *err,
                        size_t err_size) {
  if (active_source == SOURCE_PROC) {
    snapshot_begin(&snapshot, low, high, &reserved);
    return proc_net_read(options.proc_root, IPPROTO_TCP, snapshot_add_socket,
                         &snapshot, err, err_size);
  }
  int status = -EAGAIN;
  for (int attempt = 0; attempt < DUMP_ATTEMPTS && status == -EAGAIN;
       attempt++) {
    snapshot_begin(&snapshot, low, high, &reserved);
    status = scan_netlink(&snapshot, err, err_size);
  }
  if (status != 0 && active_source == SOURCE_AUTO) {
    WARNING(LOG_PREFIX "%s; reading %s/net instead from now on", err,
            options.proc_root);
    active_source = SOURCE_PROC;
    return scan_sockets(low, high, err, err_size);
  }
  return status;
}

static void dispatch(int metric, const char *plugin_instance,
                     const char *type_instance, gauge_t *values) {
  const metric_type_t *type = &metric_types[metric];
  value_list_t vl = VALUE_LIST_INIT;
  value_t converted[METRIC_TYPE_MAX_SOURCES];
  for (size_t i = 0; i < type->sources_num; i++)
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

static void dispatch_open_port(uint16_t port, bool open,
                               void *ctx __attribute__((unused))) {
  char port_text[8];
  snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
  dispatch(METRIC_INSTANCE_OPEN, port_text, "", (gauge_t[]){open ? 1 : 0});
}

static void dispatch_usage(const snapshot_t *snap) {
  unsigned used = snapshot_used(snap);
  gauge_t ratio = snap->total > 0 ? (gauge_t)used / snap->total : NAN;
  dispatch(METRIC_EPHEMERAL_PORTS, "", "",
           (gauge_t[]){used, snap->total, snap->total - used, ratio});
}

static int ep_read(void) {
  char err[512];
  uint16_t low, high;
  int status =
      sysctl_read_port_range(options.proc_root, &low, &high, err, sizeof(err));
  if (status == 0)
    status = sysctl_read_reserved_ports(options.proc_root, &reserved, err,
                                        sizeof(err));
  if (status == 0)
    status = scan_sockets(low, high, err, sizeof(err));
  if (status != 0) {
    c_complain_once(LOG_ERR, &read_complaint, LOG_PREFIX "%s", err);
    dispatch(METRIC_EXPORTER, "", "", (gauge_t[]){0});
    return 0;
  }
  c_release(LOG_INFO, &read_complaint, LOG_PREFIX "reading recovered");

  dispatch(METRIC_EXPORTER, "", "", (gauge_t[]){1});
  dispatch_usage(&snapshot);
  open_ports_report(&open_ports, &snapshot.listening, dispatch_open_port, NULL);
  return 0;
}

static int ep_shutdown(void) {
  sock_diag_close(diag);
  diag = NULL;
  return 0;
}

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
  register_data_sets();
  plugin_register_complex_config(PLUGIN_NAME, ep_config);
  plugin_register_init(PLUGIN_NAME, ep_init);
  plugin_register_read(PLUGIN_NAME, ep_read);
  plugin_register_shutdown(PLUGIN_NAME, ep_shutdown);
}
