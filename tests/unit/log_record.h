/* A log sink for unit tests: each line it is handed goes into logged as
 * "<severity> <message>\n"; a test empties logged in its setup. */
#ifndef EPHEMERAL_PORTS_LOG_RECORD_H
#define EPHEMERAL_PORTS_LOG_RECORD_H

#include "util/log_sink.h"

#include <stdio.h>
#include <string.h>

static char logged[1024];

static inline void record_log(int severity, const char *message, void *ctx) {
  (void)ctx;
  size_t len = strlen(logged);
  snprintf(logged + len, sizeof(logged) - len, "%d %s\n", severity, message);
}

static const log_sink_t sink = {record_log, NULL};

#endif
