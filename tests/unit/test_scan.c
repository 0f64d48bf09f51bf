#include "read/scan.h"

#include "kernel/cgroup_pseudo.h"
#include "run_suite.h"

#include <check.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static options_t opts;
static scan_t *scan;
static char net_root[PATH_MAX];

static void use_fixture(char *root, size_t size, const char *name) {
  snprintf(root, size, "%s/proc/%s", getenv("FIXTURES_DIR"), name);
}

static void setup(void) {
  options_init(&opts);
  opts.source = SOURCE_PROC;
  use_fixture(opts.proc_root, sizeof(opts.proc_root), "collector_sample");
  use_fixture(net_root, sizeof(net_root), "collector_sample");
  scan = scan_new(&opts);
  ck_assert_ptr_nonnull(scan);
}

static void teardown(void) {
  scan_free(scan);
  options_free(&opts);
}

static int scan_fixture(cgroup_usage_t *const cgroups[2]) {
  char err[256] = "";
  ck_assert_int_eq(scan_read_pool(scan, err, sizeof(err)), 0);
  table_source_t source = {NULL, net_root};
  int rc = scan_tables(scan, &source, cgroups, err, sizeof(err));
  ck_assert_msg(rc == 0, "scan_tables: %s", err);
  return rc;
}

/* Pool 40000-40019 less the reserved 40005: 19 ports. Held: 40001 to
 * 127.0.0.1:9000, 40002 in TIME_WAIT to it, the listener's 40010
 * (exclusive); 40005 to it is reserved, 9000 listens outside the pool. */
START_TEST(test_tcp_from_proc) {
  cgroup_usage_t *const none[2] = {NULL, NULL};
  scan_fixture(none);
  const snapshot_t *tcp = scan_snapshot(scan, 0);
  ck_assert_uint_eq(tcp->total, 19);
  ck_assert_uint_eq(snapshot_used(tcp), 3);
  ck_assert_uint_eq(snapshot_exclusive(tcp), 1);
  ck_assert(portset_has(&tcp->open, 9000));
  ck_assert(portset_has(&tcp->open, 40010));
  ck_assert(!portset_has(&tcp->pool, 40005));
  destination_t top[2];
  ck_assert_uint_eq(destinations_top(scan_destinations(scan), top, 2), 1);
  char remote[64];
  destination_format_remote(&top[0].key, remote, sizeof(remote));
  ck_assert_str_eq(remote, "127.0.0.1:9000");
  ck_assert_uint_eq(top[0].held, 2);
}
END_TEST

START_TEST(test_cgroup_tables_filled) {
  cgroup_usage_t tcp;
  cgroup_usage_init(&tcp);
  cgroup_usage_t *const cgroups[2] = {&tcp, NULL};
  scan_fixture(cgroups);
  /* /proc names no owner: all unknown, but TIME_WAIT's. */
  ck_assert_uint_eq(cgroup_usage_find(&tcp, CGROUP_ID_UNKNOWN)->ports, 2);
  ck_assert_uint_eq(cgroup_usage_find(&tcp, CGROUP_ID_TIME_WAIT)->ports, 1);
  ck_assert_uint_eq(cgroup_usage_count(&tcp), 2);
  cgroup_usage_free(&tcp);
}
END_TEST

START_TEST(test_top_destinations_off) {
  opts.top_destinations = 0;
  cgroup_usage_t *const none[2] = {NULL, NULL};
  scan_fixture(none);
  destination_t top[1];
  ck_assert_uint_eq(destinations_top(scan_destinations(scan), top, 1), 0);
  ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 3);
}
END_TEST

START_TEST(test_pool_unreadable) {
  use_fixture(opts.proc_root, sizeof(opts.proc_root), "sysctl_no_range_file");
  char err[PATH_MAX + 128], expected[PATH_MAX + 128];
  ck_assert_int_lt(scan_read_pool(scan, err, sizeof(err)), 0);
  snprintf(expected, sizeof(expected),
           "%s/sys/net/ipv4/ip_local_port_range: cannot open: No such file "
           "or directory",
           opts.proc_root);
  ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(test_table_unreadable) {
  opts.measure_udp = true; /* the fixture has no udp file */
  char err[PATH_MAX + 128] = "";
  ck_assert_int_eq(scan_read_pool(scan, err, sizeof(err)), 0);
  table_source_t source = {NULL, net_root};
  cgroup_usage_t *const none[2] = {NULL, NULL};
  ck_assert_int_lt(scan_tables(scan, &source, none, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(strstr(err, "/net/udp"));
}
END_TEST

/* The table's sockets, but counts from a sockstat fixture: where the
 * counts say a table is empty it is not read (its snapshot empty though
 * net/tcp lists sockets: what a dump would have found at that moment). */
static void scan_with_counts(const char *counts) {
  char counts_root[PATH_MAX];
  snprintf(counts_root, sizeof(counts_root), "%s/sockstat/%s",
           getenv("FIXTURES_DIR"), counts);
  char err[256] = "";
  ck_assert_int_eq(scan_read_pool(scan, err, sizeof(err)), 0);
  scan_read_counts(scan, counts_root, false);
  table_source_t source = {NULL, net_root};
  cgroup_usage_t *const none[2] = {NULL, NULL};
  ck_assert_int_eq(scan_tables(scan, &source, none, err, sizeof(err)), 0);
}

START_TEST(test_empty_counts_spare_the_read) {
  scan_with_counts("empty");
  ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 0);
  ck_assert(!portset_has(&scan_snapshot(scan, 0)->open, 9000));
  ck_assert_uint_eq(scan_dumps_spared(scan), 1);
  /* The counts serve one scan: the next reads the table. */
  char err[256] = "";
  table_source_t source = {NULL, net_root};
  cgroup_usage_t *const none[2] = {NULL, NULL};
  ck_assert_int_eq(scan_tables(scan, &source, none, err, sizeof(err)), 0);
  ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 3);
  ck_assert_uint_eq(scan_dumps_spared(scan), 1);
}
END_TEST

/* A TIME_WAIT socket or a socket of the other family is a table. */
START_TEST(test_counts_not_empty) {
  static const char *const busy[] = {"real", "time_wait_only", "no_ipv6"};
  for (size_t i = 0; i < COUNT(busy); i++) {
    scan_with_counts(busy[i]);
    ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 3);
  }
  scan_with_counts("udp6_only"); /* TCP empty: spared */
  ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 0);
  ck_assert_uint_eq(scan_dumps_spared(scan), 1);
}
END_TEST

/* Counts that cannot be read spare nothing. */
START_TEST(test_unreadable_counts_spare_nothing) {
  scan_with_counts("malformed_no_tw");
  ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 3);
  scan_with_counts("missing");
  ck_assert_uint_eq(snapshot_used(scan_snapshot(scan, 0)), 3);
  ck_assert_uint_eq(scan_dumps_spared(scan), 0);
}
END_TEST

/* Linux 6.8+ dumps sockets that are only bound, which sockstat does not
 * count: over netlink (a live sock_diag socket here) the TCP table is read
 * whatever the counts say; over /proc, which never lists them, it is not. */
START_TEST(test_bound_only_kernel) {
  char counts_root[PATH_MAX], err[256] = "";
  snprintf(counts_root, sizeof(counts_root), "%s/sockstat/empty",
           getenv("FIXTURES_DIR"));
  sock_diag_t *diag = sock_diag_open(err, sizeof(err));
  ck_assert_msg(diag != NULL, "sock_diag_open: %s", err);
  table_source_t netlink = {diag, net_root}, proc = {NULL, net_root};
  cgroup_usage_t *const none[2] = {NULL, NULL};
  ck_assert_int_eq(scan_read_pool(scan, err, sizeof(err)), 0);
  const struct {
    bool dumps;
    const table_source_t *source;
    unsigned long spared;
  } cases[] = {{true, &netlink, 0}, {false, &netlink, 1}, {true, &proc, 1}};
  for (size_t i = 0; i < COUNT(cases); i++) {
    unsigned long before = scan_dumps_spared(scan);
    scan_set_dumps_bound_only(scan, cases[i].dumps);
    scan_read_counts(scan, counts_root, cases[i].source->diag != NULL);
    ck_assert_int_eq(scan_tables(scan, cases[i].source, none, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(scan_dumps_spared(scan) - before, cases[i].spared);
  }
  sock_diag_close(diag);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("scan");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_tcp_from_proc);
  tcase_add_test(tc, test_cgroup_tables_filled);
  tcase_add_test(tc, test_top_destinations_off);
  tcase_add_test(tc, test_pool_unreadable);
  tcase_add_test(tc, test_table_unreadable);
  tcase_add_test(tc, test_empty_counts_spare_the_read);
  tcase_add_test(tc, test_counts_not_empty);
  tcase_add_test(tc, test_unreadable_counts_spare_nothing);
  tcase_add_test(tc, test_bound_only_kernel);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
