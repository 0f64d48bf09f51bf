#include "read/options.h"

#include "util/port_list.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const source_names[] = {
    [SOURCE_AUTO] = "auto",
    [SOURCE_NETLINK] = "netlink",
    [SOURCE_PROC] = "proc",
};

void options_init(options_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->source = SOURCE_AUTO;
  snprintf(opts->proc_root, sizeof(opts->proc_root), "/proc");
  opts->measure_tcp = true;
  opts->open_ports.report_open = true;
  opts->top_destinations = 10;
  opts->top_cgroups = 10;
  nat_port_range_default(&opts->nat_range);
  opts->top_nat = 10;
  opts->netns_every = 1;
}

void options_free(options_t *opts) {
  for (size_t i = 0; i < opts->netns_count; i++)
    free(opts->netns_paths[i]);
  free(opts->netns_paths);
  opts->netns_paths = NULL;
  opts->netns_count = 0;
  name_select_free(&opts->netns_select);
}

int options_add_netns(options_t *opts, const char *path) {
  char **grown =
      realloc(opts->netns_paths, (opts->netns_count + 1) * sizeof(*grown));
  if (grown == NULL)
    return -ENOMEM;
  opts->netns_paths = grown;
  grown[opts->netns_count] = strdup(path);
  if (grown[opts->netns_count] == NULL)
    return -ENOMEM;
  opts->netns_count++;
  return 0;
}

int options_check(const options_t *opts, char *err, size_t err_size) {
  if (opts->netns_interval > 0 && !opts->all_netns && opts->netns_count == 0) {
    snprintf(err, err_size,
             "NetNamespaceInterval applies to other network namespaces, and "
             "neither NetNamespace nor AllNetNamespaces true names any");
    return -1;
  }
  if (!name_select_is_empty(&opts->netns_select) && !opts->all_netns) {
    snprintf(err, err_size,
             "NetNamespaceName selects among the namespaces that "
             "AllNetNamespaces finds, and AllNetNamespaces is not true");
    return -1;
  }
  return 0;
}

int source_kind_parse(const char *text, source_kind_t *kind) {
  for (unsigned i = 0; i < sizeof(source_names) / sizeof(source_names[0]);
       i++) {
    if (strcasecmp(text, source_names[i]) == 0) {
      *kind = (source_kind_t)i;
      return 0;
    }
  }
  return -1;
}

int protocol_parse(const char *text, int *protocol) {
  if (strcasecmp(text, "tcp") == 0)
    *protocol = IPPROTO_TCP;
  else if (strcasecmp(text, "udp") == 0)
    *protocol = IPPROTO_UDP;
  else
    return -1;
  return 0;
}

static bool is_whole_number_within(double number, double min, double max) {
  return number >= min && number <= max && number == (double)(long)number;
}

int top_destinations_parse(double number, unsigned *top) {
  if (!is_whole_number_within(number, 0, TOP_DESTINATIONS_MAX))
    return -1;
  *top = (unsigned)number;
  return 0;
}

int netns_interval_parse(double number, double *seconds) {
  if (!(number == 0 || (number >= 0.001 && number <= NETNS_INTERVAL_MAX)))
    return -1;
  *seconds = number;
  return 0;
}

void options_set_read_interval(options_t *opts, double read_interval) {
  opts->read_interval = read_interval;
  opts->netns_every = 1;
  if (read_interval <= 0 || opts->netns_interval <= read_interval)
    return;
  double reads = opts->netns_interval / read_interval;
  if (reads >= NETNS_EVERY_MAX) {
    opts->netns_every = NETNS_EVERY_MAX;
    return;
  }
  opts->netns_every = (unsigned)reads;
  /* Rounded up, but 60 / 0.1 is 600 reads, not 601. */
  if (reads - opts->netns_every > 1e-6)
    opts->netns_every++;
}

int port_option_add_text(portset_t *set, const char *text) {
  uint16_t first, last;
  if (port_range_parse(text, 1, &first, &last) != 0)
    return -1;
  portset_add_range(set, first, last);
  return 0;
}

int port_option_add_number(portset_t *set, double number) {
  if (!is_whole_number_within(number, 1, 65535))
    return -1;
  portset_add(set, (uint16_t)number);
  return 0;
}
