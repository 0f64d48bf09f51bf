#include "options.h"

#include "port_list.h"

#include <stdio.h>
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

const char *source_kind_name(source_kind_t kind) { return source_names[kind]; }

int port_option_add_text(portset_t *set, const char *text) {
  uint16_t first, last;
  if (port_range_parse(text, 1, &first, &last) != 0)
    return -1;
  portset_add_range(set, first, last);
  return 0;
}

int port_option_add_number(portset_t *set, double number) {
  if (!(number >= 1 && number <= 65535) || number != (double)(long)number)
    return -1;
  portset_add(set, (uint16_t)number);
  return 0;
}
