/* The plugin's options as values, and the parsing of their texts; the
 * collectd glue maps config items onto these. */
#ifndef EPHEMERAL_PORTS_OPTIONS_H
#define EPHEMERAL_PORTS_OPTIONS_H

#include "portset.h"

#include <limits.h>

typedef enum { SOURCE_AUTO, SOURCE_NETLINK, SOURCE_PROC } source_kind_t;

typedef struct {
  source_kind_t source;
  char proc_root[PATH_MAX];
} options_t;

void options_init(options_t *opts);

/* "auto", "netlink" or "proc", case-insensitive. Returns 0 or -1. */
int source_kind_parse(const char *text, source_kind_t *kind);
const char *source_kind_name(source_kind_t kind);

/* Adds a port given as text ("22", "8000-8010") or as a config number
 * (a whole number); every port must lie within 1..65535. Returns 0 or -1
 * with set unchanged. */
int port_option_add_text(portset_t *set, const char *text);
int port_option_add_number(portset_t *set, double number);

#endif
