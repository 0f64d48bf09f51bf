/* The plugin's options as values, and the parsing of their texts; the
 * collectd glue maps config items onto these. */
#ifndef EPHEMERAL_PORTS_OPTIONS_H
#define EPHEMERAL_PORTS_OPTIONS_H

#include "count/nat_usage.h"
#include "count/open_ports.h"
#include "util/name_select.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { SOURCE_AUTO, SOURCE_NETLINK, SOURCE_PROC } source_kind_t;

/* Each reported destination is a series; more than this is a mistake. */
#define TOP_DESTINATIONS_MAX 1000

typedef struct {
  source_kind_t source;
  char proc_root[PATH_MAX];
  bool measure_tcp;
  bool measure_udp;
  open_ports_config_t open_ports;
  unsigned top_destinations;
  bool report_states;
  unsigned top_cgroups; /* TopCgroups */
  char **netns_paths;   /* NetNamespace, in config order */
  size_t netns_count;
  bool all_netns; /* AllNetNamespaces */
  /* NetNamespaceName and IgnoreSelected: which of the namespaces
   * AllNetNamespaces finds are read. */
  name_select_t netns_select;
  /* NetNamespaceInterval in seconds (0: every read), and what it comes to
   * once the read interval is known: another namespace is read at every
   * netns_every-th read. */
  double netns_interval;
  unsigned netns_every;
  double read_interval; /* seconds between reads; 0 until known */
  bool report_nat;      /* ReportNat */
  nat_port_range_t nat_range;
  unsigned top_nat; /* TopNatDestinations */
} options_t;

/* The defaults of DESIGN.md: auto, /proc, TCP, open ports, top 10
 * destinations and cgroups, NAT off with its range 1024-65535 and top 10. */
void options_init(options_t *opts);

/* Frees what the options allocated (the NetNamespace paths and names). */
void options_free(options_t *opts);

/* Adds a NetNamespace path. Returns 0 or -ENOMEM. */
int options_add_netns(options_t *opts, const char *path);

/* What the options say together, checked once all are parsed: 0, or -1
 * with the reason in err. */
int options_check(const options_t *opts, char *err, size_t err_size);

/* NetNamespaceInterval: a number of seconds, 0 or from 0.001 up to
 * NETNS_INTERVAL_MAX. Returns 0 or -1. */
#define NETNS_INTERVAL_MAX 86400
int netns_interval_parse(double number, double *seconds);

/* Sets read_interval and netns_every: NetNamespaceInterval rounded up to
 * a whole number of reads, at least one, at most NETNS_EVERY_MAX (the
 * targets keep a counter per read of the cycle). */
#define NETNS_EVERY_MAX 10000
void options_set_read_interval(options_t *opts, double read_interval);

/* "auto", "netlink" or "proc", case-insensitive. Returns 0 or -1. */
int source_kind_parse(const char *text, source_kind_t *kind);

/* "tcp" or "udp", case-insensitive, as IPPROTO_TCP or IPPROTO_UDP.
 * Returns 0 or -1. */
int protocol_parse(const char *text, int *protocol);

/* A whole number 0..TOP_DESTINATIONS_MAX. Returns 0 or -1. */
int top_destinations_parse(double number, unsigned *top);

/* Adds a port given as text ("22", "8000-8010") or as a config number
 * (a whole number); every port must lie within 1..65535. Returns 0 or -1
 * with set unchanged. */
int port_option_add_text(portset_t *set, const char *text);
int port_option_add_number(portset_t *set, double number);

#endif
