/* Benchmark heap driver: the plugin's collector without collectd, so that
 * its heap can be counted exactly (collectd's own allocations, its write
 * queue above all, would drown a few KiB per namespace in VmRSS).
 *
 * Reads like the plugin with its default options plus AllNetNamespaces true
 * (or, given paths, a NetNamespace for each); --report-nat first adds
 * ReportNat true; --own reads like the plugin with its default options
 * alone (its own namespace only). Each line "read N" on stdin
 * makes N reads, then one line on stdout:
 *
 *   inuse=B mmapped=B arena=B rss_kib=N fds=N targets=N failed=N logged=N
 *   cpu_ns=N
 *
 * inuse: bytes in use on the heap (mallinfo2: uordblks + hblkhd), after the
 * last read; mmapped: hblkhd of it; arena: bytes of malloc's arenas, in
 * use or free, the mmapped chunks left out (mallinfo2: arena); rss_kib: the
 * process's VmRSS; fds: descriptors open between reads
 * (stdin, stdout and stderr included); targets, failed: readings of the last
 * read and how many of them were not ok; logged: WARNINGs and ERRORs of the
 * N reads (the first few go to stderr); cpu_ns: CPU time (user + system)
 * per read, the collector's work without collectd's. Ends at end of input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "read/collector.h"
#include "read/options.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define LOGGED_SHOWN 3

typedef struct {
  unsigned targets;
  unsigned failed;
  unsigned logged; /* since the last "read N" */
} read_count_t;

static void on_reading(const target_reading_t *reading, void *ctx) {
  read_count_t *count = ctx;
  count->targets++;
  if (!reading->ok)
    count->failed++;
}

static void on_log(int severity, const char *message, void *ctx) {
  read_count_t *count = ctx;
  if (severity > LOG_WARNING)
    return;
  if (count->logged++ < LOGGED_SHOWN)
    fprintf(stderr, "heap_driver: %s\n", message);
}

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Open descriptors, the directory stream's own left out. */
static long open_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL)
    return -1;
  long count = 0;
  for (const struct dirent *e = readdir(dir); e != NULL; e = readdir(dir))
    if (e->d_name[0] != '.')
      count++;
  closedir(dir);
  return count - 1;
}

static long vm_rss_kib(void) {
  FILE *status = fopen("/proc/self/status", "r");
  if (status == NULL)
    return -1;
  char line[128];
  long kib = -1;
  while (fgets(line, sizeof(line), status) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(status);
  return kib;
}

int main(int argc, char **argv) {
  options_t opts;
  options_init(&opts);
  int first = 1;
  bool own_only = false;
  if (argc > 1 && strcmp(argv[1], "--report-nat") == 0) {
    opts.report_nat = true;
    first = 2;
  } else if (argc == 2 && strcmp(argv[1], "--own") == 0) {
    own_only = true;
    first = 2;
  }
  if (argc == first && !own_only)
    opts.all_netns = true;
  for (int i = first; i < argc; i++)
    if (options_add_netns(&opts, argv[i]) != 0) {
      fprintf(stderr, "heap_driver: out of memory\n");
      return 1;
    }

  read_count_t count = {0};
  collector_ops_t ops = {.reading = on_reading,
                         .log = on_log,
                         .ctx = &count,
                         .netns_name_max = 100};
  char err[256];
  collector_t *collector = collector_new(&opts, &ops, err, sizeof(err));
  if (collector == NULL) {
    fprintf(stderr, "heap_driver: %s\n", err);
    return 1;
  }

  char line[64];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    char *end = NULL;
    long reads =
        strncmp(line, "read ", 5) == 0 ? strtol(line + 5, &end, 10) : 0;
    if (reads < 1 || end == NULL || (*end != '\n' && *end != '\0')) {
      fprintf(stderr, "heap_driver: expected \"read N\"\n");
      break;
    }
    count.logged = 0;
    double start = cpu_ns();
    for (long i = 0; i < reads; i++) {
      count.targets = count.failed = 0;
      collector_read(collector);
    }
    double per_read = (cpu_ns() - start) / (double)reads;
    struct mallinfo2 heap = mallinfo2();
    long fds = open_fds();
    printf("inuse=%zu mmapped=%zu arena=%zu rss_kib=%ld fds=%ld targets=%u "
           "failed=%u logged=%u cpu_ns=%.0f\n",
           heap.uordblks + heap.hblkhd, heap.hblkhd, heap.arena, vm_rss_kib(),
           fds, count.targets, count.failed, count.logged, per_read);
    fflush(stdout);
  }
  collector_free(collector);
  options_free(&opts);
  return 0;
}
