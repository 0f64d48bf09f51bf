#include "read/reading.h"

#include "log_record.h"
#include "run_suite.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static options_t opts;
static scan_t *scan;
static reading_t *reading;
static reading_memory_t memory;

static const cgroup_readings_t no_groups[2] = {{NULL, 0}, {NULL, 0}};

static void setup(void) {
  logged[0] = '\0';
  options_init(&opts);
  opts.source = SOURCE_PROC;
  snprintf(opts.proc_root, sizeof(opts.proc_root), "%s/proc/collector_sample",
           getenv("FIXTURES_DIR"));
  scan = scan_new(&opts);
  reading = reading_new(&opts, &sink);
  ck_assert_ptr_nonnull(scan);
  ck_assert_ptr_nonnull(reading);
  memset(&memory, 0, sizeof(memory));
}

static void teardown(void) {
  reading_memory_forget(&memory);
  reading_free(reading);
  scan_free(scan);
  options_free(&opts);
}

/* Scans the pool of collector_sample with the socket table of fixture. */
static void scan_table_of(const char *fixture) {
  char err[PATH_MAX + 128] = "", net_root[PATH_MAX];
  snprintf(net_root, sizeof(net_root), "%s/proc/%s", getenv("FIXTURES_DIR"),
           fixture);
  ck_assert_int_eq(scan_read_pool(scan, err, sizeof(err)), 0);
  table_source_t source = {NULL, net_root};
  cgroup_usage_t *const none[2] = {NULL, NULL};
  ck_assert_int_eq(scan_tables(scan, &source, none, err, sizeof(err)), 0);
}

/* The instance_open ports to report, as "port:open," pairs. */
static const char *reported(const protocol_reading_t *p) {
  static char text[256];
  text[0] = '\0';
  for (int port = portset_next(p->report, 0); port >= 0;
       port = portset_next(p->report, (unsigned)port + 1)) {
    size_t len = strlen(text);
    snprintf(text + len, sizeof(text) - len, "%d:%d,", port,
             portset_has(p->open, (uint16_t)port));
  }
  return text;
}

START_TEST(test_pool_open_ports_destinations) {
  scan_table_of("collector_sample");
  const target_reading_t *r =
      reading_make(reading, &memory, scan, NULL, true, no_groups, NULL);
  ck_assert(r->ok);
  ck_assert_ptr_null(r->netns);
  ck_assert_ptr_nonnull(r->tcp);
  ck_assert_ptr_null(r->udp);
  ck_assert_ptr_null(r->states);
  ck_assert_ptr_null(r->nat);
  ck_assert_uint_eq(r->tcp->used, 3);
  ck_assert_uint_eq(r->tcp->total, 19);
  ck_assert_str_eq(reported(r->tcp), "9000:1,40010:1,");
  /* 40001 and 40002 to it, and the listener's 40010 that no connect()
   * can take either. */
  ck_assert_uint_eq(r->destinations_count, 1);
  ck_assert_uint_eq(r->destinations[0].count, 3);
  ck_assert_str_eq(logged, "");
}
END_TEST

START_TEST(test_closed_ports_and_drop_outs_reported_once) {
  scan_table_of("collector_sample");
  reading_make(reading, &memory, scan, NULL, true, no_groups, NULL);
  scan_table_of("header_only");
  const target_reading_t *r =
      reading_make(reading, &memory, scan, NULL, true, no_groups, NULL);
  ck_assert_uint_eq(r->tcp->used, 0);
  ck_assert_str_eq(reported(r->tcp), "9000:0,40010:0,");
  /* The destination reported last time, once more with its count now:
   * none of its own, the exclusive ports (none now) added. */
  ck_assert_uint_eq(r->destinations_count, 1);
  ck_assert_uint_eq(r->destinations[0].count, 0);
  r = reading_make(reading, &memory, scan, NULL, true, no_groups, NULL);
  ck_assert_str_eq(reported(r->tcp), "");
  ck_assert_uint_eq(r->destinations_count, 0);
}
END_TEST

START_TEST(test_failed_read_carries_nat_only) {
  nat_reading_t nat = {.ok = false, .total = 64512};
  const target_reading_t *r =
      reading_make(reading, &memory, scan, "pod-a", false, no_groups, &nat);
  ck_assert(!r->ok);
  ck_assert_str_eq(r->netns, "pod-a");
  ck_assert_ptr_null(r->tcp);
  ck_assert_ptr_null(r->udp);
  ck_assert_uint_eq(r->destinations_count, 0);
  ck_assert_ptr_eq(r->nat, &nat);
}
END_TEST

START_TEST(test_states_and_groups) {
  opts.report_states = true;
  scan_table_of("collector_sample");
  const cgroup_reading_t groups[] = {{"unknown", 2}, {"time_wait", 1}};
  const cgroup_readings_t cgroups[2] = {{groups, 2}, {NULL, 0}};
  const target_reading_t *r =
      reading_make(reading, &memory, scan, NULL, true, cgroups, NULL);
  ck_assert_ptr_eq(r->tcp->cgroups, groups);
  ck_assert_uint_eq(r->tcp->cgroups_count, 2);
  ck_assert_ptr_nonnull(r->states);
  /* established (40001; 40005 is reserved), time_wait, listen */
  unsigned established = 0, time_wait = 0, listen = 0;
  for (unsigned i = 0; i < TCP_STATE_NAMES; i++) {
    if (strcmp(tcp_state_name(i), "established") == 0)
      established = r->states[i];
    if (strcmp(tcp_state_name(i), "time_wait") == 0)
      time_wait = r->states[i];
    if (strcmp(tcp_state_name(i), "listen") == 0)
      listen = r->states[i];
  }
  ck_assert_uint_eq(established, 1);
  ck_assert_uint_eq(time_wait, 1);
  ck_assert_uint_eq(listen, 1);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("reading");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pool_open_ports_destinations);
  tcase_add_test(tc, test_closed_ports_and_drop_outs_reported_once);
  tcase_add_test(tc, test_failed_read_carries_nat_only);
  tcase_add_test(tc, test_states_and_groups);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
