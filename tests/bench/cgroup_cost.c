/* What counting pool usage per cgroup adds to a read (issue #11), run by
 * hand: `make tests/bench/cgroup_cost && tests/bench/cgroup_cost`. Not a
 * test, and not part of `make bench`.
 *
 * It replays what a read with TopCgroups 10 does on top of one with
 * TopCgroups 0, for the load of `make bench` at 100,000 sockets: 50,000
 * sockets on pool ports (24,225 distinct ports, about two sockets each,
 * in the random order of a dump), spread over G groups (the two sockets
 * of a port in one group 9 times in 10). Per read: cgroup_usage_clear, one
 * cgroup_usage_add per socket, a cached cgroup_names_lookup per group (the
 * groups are directories of a temporary tree, resolved before timing),
 * cgroup_usage_top(10), and the 10 names; and apart, a cgroup_usage_fold
 * of a tenth of the groups (gone ones) into unknown. It also times the
 * sock_diag parse of such sockets with and without the attributes a 6.x kernel
 * sends (INET_DIAG_SHUTDOWN, INET_DIAG_CGROUP_ID, INET_DIAG_SOCKOPT): the
 * cost of reading the cgroup id, which every read pays. And what
 * resolving new groups costs, per directory walked or handle opened. All
 * figures are medians of CPU time (CLOCK_PROCESS_CPUTIME_ID). */
#include "count/cgroup_usage.h"
#include "kernel/cgroup_names.h"
#include "kernel/sock_diag.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SOCKETS 50000
#define PORT_LOW 10000
#define PORT_SPAN 55001
#define DISTINCT_PORTS 24225
#define TOP 10
#define READS 201

typedef struct {
  uint64_t id;
  uint16_t port;
} sock_t;

static sock_t socks[SOCKETS];
static uint64_t group_ids[1000];
static char base[] = "/tmp/cgroup_cost.XXXXXX";

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *values, size_t n) {
  qsort(values, n, sizeof(*values), compare_double);
  return values[n / 2];
}

/* G directories under base; their handles are the "cgroup ids". */
static cgroup_names_t *make_groups(size_t groups) {
  char path[256];
  for (size_t g = 0; g < groups; g++) {
    snprintf(path, sizeof(path), "%s/service-%04zu.service", base, g);
    if (mkdir(path, 0755) != 0 && access(path, F_OK) != 0)
      exit(1);
    int fd = open(base, O_RDONLY | O_DIRECTORY);
    int mount_id;
    union {
      struct file_handle handle;
      char bytes[sizeof(struct file_handle) + 8];
    } buf = {.handle.handle_bytes = 8};
    if (name_to_handle_at(fd, path + strlen(base) + 1, &buf.handle, &mount_id,
                          0) != 0 ||
        buf.handle.handle_bytes != 8) {
      fprintf(stderr, "%s: no 8-byte handles (tmpfs?)\n", base);
      exit(1);
    }
    memcpy(&group_ids[g], buf.handle.f_handle, 8);
    close(fd);
  }
  cgroup_names_config_t config = {.mount_path = base, .budget = 100000};
  cgroup_names_t *names = cgroup_names_new(&config);
  cgroup_names_begin_read(names);
  for (size_t g = 0; g < groups; g++)
    cgroup_names_lookup(names, group_ids[g], NULL);
  if (cgroup_names_resolve(names, NULL, 0) != 0)
    exit(1);
  return names;
}

static void make_sockets(size_t groups) {
  for (size_t i = 0; i < SOCKETS; i += 2) {
    uint16_t port = (uint16_t)(PORT_LOW + (i / 2) % DISTINCT_PORTS *
                                              (PORT_SPAN / DISTINCT_PORTS));
    uint64_t group = group_ids[next_random() % groups];
    socks[i] = (sock_t){group, port};
    if (next_random() % 10 == 0)
      group = group_ids[next_random() % groups];
    socks[i + 1] = (sock_t){group, port};
  }
  for (size_t i = SOCKETS - 1; i > 0; i--) { /* a dump's order */
    size_t j = next_random() % (i + 1);
    sock_t t = socks[i];
    socks[i] = socks[j];
    socks[j] = t;
  }
}

/* One read's cgroup work; returns the busiest group's ports. */
static uint32_t read_once(cgroup_usage_t *usage, cgroup_names_t *names) {
  static cgroup_count_t top[TOP];
  static char name[CGROUP_NAME_SIZE];
  cgroup_usage_clear(usage);
  cgroup_names_begin_read(names);
  for (size_t i = 0; i < SOCKETS; i++)
    if (cgroup_usage_add(usage, socks[i].id, socks[i].port) != 0)
      exit(1);
  for (size_t i = 0; i < cgroup_usage_count(usage); i++)
    if (cgroup_names_lookup(names, cgroup_usage_at(usage, i)->id, NULL) != 0)
      exit(1);
  size_t n = cgroup_usage_top(usage, top, TOP);
  for (size_t i = 0; i < n; i++)
    cgroup_names_lookup(names, top[i].id, name);
  return n > 0 ? top[0].ports : 0;
}

static void bench_usage(size_t groups) {
  cgroup_names_t *names = make_groups(groups);
  make_sockets(groups);
  cgroup_usage_t usage;
  cgroup_usage_init(&usage);
  static double times[READS], adds[READS];
  uint32_t busiest = read_once(&usage, names); /* warm: tables grown */
  for (size_t r = 0; r < READS; r++) {
    double t0 = now_ns();
    read_once(&usage, names);
    times[r] = now_ns() - t0;
    cgroup_usage_clear(&usage);
    t0 = now_ns();
    for (size_t i = 0; i < SOCKETS; i++)
      cgroup_usage_add(&usage, socks[i].id, socks[i].port);
    adds[r] = now_ns() - t0;
  }
  static double folds[READS];
  for (size_t r = 0; r < READS; r++) { /* a tenth of the groups gone */
    read_once(&usage, names);
    double t0 = now_ns();
    if (cgroup_usage_fold(&usage, group_ids, groups / 10 + 1, UINT64_MAX) != 0)
      exit(1);
    folds[r] = now_ns() - t0;
  }
  double read_ms = median(times, READS) / 1e6;
  printf("%6zu groups: %.3f ms per read (%.1f ns per socket; adds alone "
         "%.1f ns), busiest %u ports, pairs %zu; a fold %.3f ms\n",
         groups, read_ms, read_ms * 1e6 / SOCKETS,
         median(adds, READS) / SOCKETS, busiest, usage.pairs_count,
         median(folds, READS) / 1e6);
  cgroup_usage_free(&usage);
  cgroup_names_free(names);
}

/* Datagrams of SOCKETS owned sockets, as the kernel sends them. */
static size_t fill(char *buf, size_t size, bool attrs, size_t *sockets) {
  size_t len = 0;
  *sockets = 0;
  for (;;) {
    size_t need = NLMSG_SPACE(sizeof(struct inet_diag_msg)) + (attrs ? 32 : 0);
    if (len + need > size)
      return len;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + len);
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    nlh->nlmsg_flags = NLM_F_MULTI;
    nlh->nlmsg_seq = 1;
    nlh->nlmsg_pid = 42;
    struct inet_diag_msg *msg =
        mnl_nlmsg_put_extra_header(nlh, sizeof(struct inet_diag_msg));
    msg->idiag_family = AF_INET;
    msg->idiag_state = 1;
    msg->id.idiag_sport = htons((uint16_t)(PORT_LOW + *sockets));
    if (attrs) {
      uint8_t shutdown = 0;
      uint64_t id = 1234;
      uint16_t sockopt = 0;
      mnl_attr_put(nlh, INET_DIAG_SHUTDOWN, sizeof(shutdown), &shutdown);
      mnl_attr_put(nlh, INET_DIAG_CGROUP_ID, sizeof(id), &id);
      mnl_attr_put(nlh, INET_DIAG_SOCKOPT, sizeof(sockopt), &sockopt);
    }
    len += NLMSG_ALIGN(nlh->nlmsg_len);
    (*sockets)++;
  }
}

static int count_socket(const inet_socket_t *sock, void *ctx) {
  *(uint64_t *)ctx += sock->cgroup_id + sock->local_port;
  return 0;
}

static void bench_parse(bool attrs) {
  static union {
    struct nlmsghdr align;
    char bytes[32768];
  } buf;
  size_t per_buffer;
  size_t len = fill(buf.bytes, sizeof(buf.bytes), attrs, &per_buffer);
  size_t buffers = (SOCKETS + per_buffer - 1) / per_buffer;
  static double times[READS];
  uint64_t sink = 0;
  for (size_t r = 0; r < READS; r++) {
    double t0 = now_ns();
    for (size_t b = 0; b < buffers; b++)
      sock_diag_parse_buffer(buf.bytes, len, 1, 42, IPPROTO_TCP, count_socket,
                             &sink);
    times[r] = now_ns() - t0;
  }
  double ms = median(times, READS) / 1e6;
  printf("parse %s: %.3f ms per %zu sockets (%.1f ns per socket)%s\n",
         attrs ? "with the 6.x attributes" : "without attributes   ", ms,
         buffers * per_buffer, ms * 1e6 / (double)(buffers * per_buffer),
         sink == 0 ? "!" : "");
}

/* What resolving costs a read that meets new groups: all of the 1,000
 * directories' ids by walking and by handle, from an empty cache. */
static void bench_resolve(bool walk_only) {
  static double times[21];
  for (size_t r = 0; r < 21; r++) {
    cgroup_names_config_t config = {
        .mount_path = base, .budget = 100000, .walk_only = walk_only};
    cgroup_names_t *names = cgroup_names_new(&config);
    cgroup_names_begin_read(names);
    for (size_t g = 0; g < 1000; g++)
      cgroup_names_lookup(names, group_ids[g], NULL);
    double t0 = now_ns();
    if (cgroup_names_resolve(names, NULL, 0) != 0)
      exit(1);
    times[r] = now_ns() - t0;
    cgroup_names_free(names);
  }
  double us = median(times, 21) / 1e3 / 1000;
  printf("resolve 1,000 new groups %s: %.1f us each (budget 256: %.2f ms)\n",
         walk_only ? "by walking" : "by handle ", us, us * 256 / 1e3);
}

int main(void) {
  if (mkdtemp(base) == NULL)
    return 1;
  const size_t groups[] = {1, 10, 100, 1000};
  for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
    bench_usage(groups[i]);
  bench_parse(false);
  bench_parse(true);
  bench_resolve(true);
  bench_resolve(false);
  char path[256];
  for (size_t g = 0; g < 1000; g++) {
    snprintf(path, sizeof(path), "%s/service-%04zu.service", base, g);
    rmdir(path);
  }
  rmdir(base);
  return 0;
}
