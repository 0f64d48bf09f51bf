/* What one read covers: collectd's own network namespace and, as
 * configured, others (targets); for each, its scan with its sources,
 * retries and fallback, then its parts, turned into a reading ready to
 * dispatch. Knows no collectd: the glue hands in the options and two
 * callbacks. */
#ifndef EPHEMERAL_PORTS_COLLECTOR_H
#define EPHEMERAL_PORTS_COLLECTOR_H

#include "read/cost_tally.h"
#include "read/options.h"
#include "read/reading.h"

#include <stddef.h>

/* Severities as syslog's, which collectd's are too. cost may be NULL. */
typedef struct {
  void (*reading)(const target_reading_t *reading, void *ctx);
  void (*log)(int severity, const char *message, void *ctx);
  void (*cost)(const read_cost_t *cost, void *ctx);
  void *ctx;
  /* The longest namespace name the reading may carry (the glue puts it
   * after "<Hostname>:" in a 127-byte host). */
  size_t netns_name_max;
} collector_ops_t;

typedef struct collector collector_t;

/* Checks the options (each NetNamespace path must name a network
 * namespace now) and prepares the reads: opens the own namespace's
 * netlink socket, or says why it reads /proc instead. Returns NULL with a
 * message in err. */
collector_t *collector_new(const options_t *opts, const collector_ops_t *ops,
                           char *err, size_t err_size);

/* One read: a reading for each target it covers, collectd's own namespace
 * first (the others at NetNamespaceInterval's pace), then its cost. When
 * it took more than a tenth of the read interval, one INFO says what the
 * namespaces cost and what would save it, until a read is cheap again. */
void collector_read(collector_t *collector);

void collector_free(collector_t *collector);

#endif
