/* What floor and replay share: how they fail, their clock and the range. */
#include "floor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
          strerror(errno));
  exit(1);
}

double cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    die("clock_gettime");
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

void read_range(uint16_t *low, uint16_t *high) {
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  unsigned a, b;
  if (f == NULL)
    die("ip_local_port_range");
  if (fscanf(f, "%u %u", &a, &b) != 2 || a > b || b > 65535) {
    fprintf(stderr, "%s: cannot parse ip_local_port_range\n",
            program_invocation_short_name);
    exit(1);
  }
  fclose(f);
  *low = (uint16_t)a;
  *high = (uint16_t)b;
}
