#include "read/collector.h"

#include "run_suite.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* What the callbacks saw, as text: one line per reading or log message. */
static char seen[4096];
static options_t opts;

static void append(const char *format, const char *text) {
  size_t len = strlen(seen);
  snprintf(seen + len, sizeof(seen) - len, format, text);
}

static void record_reading(const target_reading_t *r, void *ctx) {
  (void)ctx;
  char line[512];
  int n = snprintf(line, sizeof(line), "reading %s ok=%d",
                   r->netns ? r->netns : "-", r->ok);
  if (r->tcp != NULL) {
    n += snprintf(line + n, sizeof(line) - (size_t)n,
                  " tcp=%u/%u open=", r->tcp->used, r->tcp->total);
    for (int p = portset_next(r->tcp->report, 0); p >= 0;
         p = portset_next(r->tcp->report, (unsigned)p + 1))
      n += snprintf(line + n, sizeof(line) - (size_t)n, "%d:%d,", p,
                    portset_has(r->tcp->open, (uint16_t)p));
  }
  if (r->tcp != NULL && r->tcp->cgroups_count > 0) {
    n += snprintf(line + n, sizeof(line) - (size_t)n, " cgroups=");
    for (size_t i = 0; i < r->tcp->cgroups_count; i++)
      n += snprintf(line + n, sizeof(line) - (size_t)n, "%s:%u,",
                    r->tcp->cgroups[i].name, r->tcp->cgroups[i].used);
  }
  for (size_t i = 0; i < r->destinations_count; i++) {
    char remote[64];
    destination_format_remote(&r->destinations[i].key, remote, sizeof(remote));
    n += snprintf(line + n, sizeof(line) - (size_t)n, " %s=%u", remote,
                  r->destinations[i].count);
  }
  append("%s\n", line);
}

static void record_log(int severity, const char *message, void *ctx) {
  (void)ctx;
  append(severity == LOG_ERR       ? "ERROR %s\n"
         : severity == LOG_WARNING ? "WARNING %s\n"
                                   : "INFO %s\n",
         message);
}

static const collector_ops_t ops = {
    .reading = record_reading, .log = record_log, .netns_name_max = 100};

static void use_fixture(const char *name) {
  snprintf(opts.proc_root, sizeof(opts.proc_root), "%s/proc/%s",
           getenv("FIXTURES_DIR"), name);
}

static void setup(void) {
  seen[0] = '\0';
  options_init(&opts);
  opts.source = SOURCE_PROC;
  use_fixture("collector_sample");
}

static void teardown(void) { options_free(&opts); }

#define BLIND_SPOT                                                             \
  "INFO TCP sockets that are bound but neither listening nor connected "       \
  "hold ports that are not counted: /proc/net/tcp does not list them\n"
#define NO_OWNERS                                                              \
  "INFO cgroup: /proc/net does not say which cgroup owns a socket: every "     \
  "pool port counts under \"unknown\", a TIME_WAIT socket's under "            \
  "\"time_wait\"\n"
/* From /proc every owner is unknown, but TIME_WAIT's (40002). */
#define OWNERS " cgroups=unknown:2,time_wait:1,"

START_TEST(test_own_namespace_reading) {
  char err[256];
  collector_t *c = collector_new(&opts, &ops, err, sizeof(err));
  ck_assert_ptr_nonnull(c);
  collector_read(c);
  /* Pool 40000-40019 less 40005: 19. Held: 40001, 40002 (TIME_WAIT) and
   * the listener's 40010, which every destination counts as well. */
  ck_assert_str_eq(seen, BLIND_SPOT NO_OWNERS "reading - ok=1 tcp=3/19 "
                                              "open=9000:1,40010:1," OWNERS
                                              " 127.0.0.1:9000=3\n");
  collector_free(c);
}
END_TEST

START_TEST(test_failure_logged_once_until_recovery) {
  char err[256];
  collector_t *c = collector_new(&opts, &ops, err, sizeof(err));
  ck_assert_ptr_nonnull(c);
  use_fixture("sysctl_no_range_file");
  seen[0] = '\0';
  collector_read(c);
  collector_read(c);
  char expected[PATH_MAX + 256];
  snprintf(
      expected, sizeof(expected),
      "ERROR %s/sys/net/ipv4/ip_local_port_range: cannot open: No such file or "
      "directory\nreading - ok=0\nreading - ok=0\n",
      opts.proc_root);
  ck_assert_str_eq(seen, expected);
  use_fixture("collector_sample");
  seen[0] = '\0';
  collector_read(c);
  /* The closed-port memory survived the failed reads: nothing closed. */
  ck_assert_str_eq(seen, "INFO reading recovered\nreading - ok=1 tcp=3/19 "
                         "open=9000:1,40010:1," OWNERS " 127.0.0.1:9000=3\n");
  collector_free(c);
}
END_TEST

START_TEST(test_own_namespace_named_is_measured_once) {
  ck_assert_int_eq(options_add_netns(&opts, "/proc/self/ns/net"), 0);
  char err[256];
  collector_t *c = collector_new(&opts, &ops, err, sizeof(err));
  ck_assert_ptr_nonnull(c);
  collector_read(c);
  ck_assert_str_eq(seen, "INFO NetNamespace \"/proc/self/ns/net\" is "
                         "collectd's own network namespace: measured once, "
                         "under the plain host\n" BLIND_SPOT NO_OWNERS
                         "reading - ok=1 tcp=3/19 "
                         "open=9000:1,40010:1," OWNERS " 127.0.0.1:9000=3\n");
  collector_free(c);
}
END_TEST

START_TEST(test_path_that_is_not_a_network_namespace) {
  ck_assert_int_eq(options_add_netns(&opts, "/proc/self/ns/uts"), 0);
  char err[256];
  ck_assert_ptr_null(collector_new(&opts, &ops, err, sizeof(err)));
  ck_assert_str_eq(err, "/proc/self/ns/uts: not a network namespace");
}
END_TEST

START_TEST(test_watch_and_top_off) {
  opts.top_destinations = 0;
  opts.top_cgroups = 0;
  opts.open_ports.report_open = false;
  portset_add(&opts.open_ports.watch, 22);
  char err[256];
  collector_t *c = collector_new(&opts, &ops, err, sizeof(err));
  ck_assert_ptr_nonnull(c);
  collector_read(c);
  ck_assert_str_eq(seen, BLIND_SPOT "reading - ok=1 tcp=3/19 open=22:0,\n");
  collector_free(c);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("collector");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_own_namespace_reading);
  tcase_add_test(tc, test_failure_logged_once_until_recovery);
  tcase_add_test(tc, test_own_namespace_named_is_measured_once);
  tcase_add_test(tc, test_path_that_is_not_a_network_namespace);
  tcase_add_test(tc, test_watch_and_top_off);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
