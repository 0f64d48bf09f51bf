/* Where the read's parts send their log lines: the glue's callback, with
 * syslog's severities (collectd's are the same). One small type at the
 * bottom, so that no part needs the collector to log. */
#ifndef EPHEMERAL_PORTS_LOG_SINK_H
#define EPHEMERAL_PORTS_LOG_SINK_H

#include <limits.h>
#include <stdio.h>

typedef struct {
  void (*log)(int severity, const char *message, void *ctx);
  void *ctx;
} log_sink_t;

/* Formats a message and hands it to the sink. A macro, not a va_list
 * function: clang-tidy 14 misreads va_list use across files. */
#define log_sink_printf(sink, severity, ...)                                   \
  do {                                                                         \
    char log_sink_message_[2 * PATH_MAX + 1024];                               \
    snprintf(log_sink_message_, sizeof(log_sink_message_), __VA_ARGS__);       \
    (sink)->log((severity), log_sink_message_, (sink)->ctx);                   \
  } while (0)

#endif
