#include "read/cgroup_part.h"

#include "kernel/cgroup_pseudo.h"
#include "log_record.h"
#include "run_suite.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static options_t opts;
static cgroup_memory_t memory;

static void setup(void) {
  logged[0] = '\0';
  options_init(&opts);
  memset(&memory, 0, sizeof(memory));
}

static void teardown(void) {
  cgroup_memory_forget(&memory);
  options_free(&opts);
}

/* The readings as "name:used," pairs. */
static const char *text_of(cgroup_readings_t readings) {
  static char text[512];
  text[0] = '\0';
  for (size_t i = 0; i < readings.count; i++) {
    size_t len = strlen(text);
    snprintf(text + len, sizeof(text) - len, "%s:%u,", readings.groups[i].name,
             readings.groups[i].used);
  }
  return text;
}

static void add(cgroup_usage_t *usage, uint64_t id, uint16_t port) {
  ck_assert_int_eq(cgroup_usage_add(usage, id, port), 0);
}

START_TEST(test_proc_names_no_owner) {
  cgroup_part_t *part = cgroup_part_new(&opts, SOURCE_PROC, &sink);
  ck_assert_ptr_nonnull(part);
  ck_assert_str_eq(logged, "6 cgroup: /proc/net does not say which cgroup "
                           "owns a socket: every pool port counts under "
                           "\"unknown\", a TIME_WAIT socket's under "
                           "\"time_wait\"\n");
  cgroup_part_begin_read(part);
  cgroup_usage_t *usage = cgroup_part_usage(part, 0);
  ck_assert_ptr_nonnull(usage);
  ck_assert_ptr_ne(usage, cgroup_part_usage(part, 1));
  add(usage, CGROUP_ID_UNKNOWN, 40001);
  add(usage, CGROUP_ID_UNKNOWN, 40010);
  add(usage, CGROUP_ID_TIME_WAIT, 40002);
  /* A real group cannot be named without cgroup2: it is folded. */
  add(usage, 1234, 40003);
  ck_assert_str_eq(text_of(cgroup_part_reading(part, &memory, 0)),
                   "unknown:3,time_wait:1,");
  cgroup_part_free(part);
}
END_TEST

START_TEST(test_drop_out_reported_once_with_zero) {
  opts.top_cgroups = 1;
  cgroup_part_t *part = cgroup_part_new(&opts, SOURCE_PROC, &sink);
  ck_assert_ptr_nonnull(part);
  cgroup_usage_t *usage = cgroup_part_usage(part, 1);
  add(usage, CGROUP_ID_TIME_WAIT, 40002);
  ck_assert_str_eq(text_of(cgroup_part_reading(part, &memory, 1)),
                   "time_wait:1,");
  cgroup_usage_clear(usage);
  add(usage, CGROUP_ID_UNKNOWN, 40001);
  ck_assert_str_eq(text_of(cgroup_part_reading(part, &memory, 1)),
                   "unknown:1,time_wait:0,");
  ck_assert_str_eq(text_of(cgroup_part_reading(part, &memory, 1)),
                   "unknown:1,");
  /* The other protocol's memory is its own. */
  ck_assert_uint_eq(memory.protocols[0].count, 0);
  cgroup_part_free(part);
}
END_TEST

START_TEST(test_off) {
  opts.top_cgroups = 0;
  cgroup_part_t *part = cgroup_part_new(&opts, SOURCE_PROC, &sink);
  ck_assert_ptr_nonnull(part);
  ck_assert_str_eq(logged, "");
  ck_assert_ptr_null(cgroup_part_usage(part, 0));
  ck_assert_ptr_null(cgroup_part_usage(part, 1));
  cgroup_part_begin_read(part);
  cgroup_readings_t readings = cgroup_part_reading(part, &memory, 0);
  ck_assert_ptr_null(readings.groups);
  ck_assert_uint_eq(readings.count, 0);
  cgroup_part_free(part);
}
END_TEST

START_TEST(test_no_cgroup2_mount) {
  snprintf(opts.proc_root, sizeof(opts.proc_root), "%s/proc/cgroup_v1_only",
           getenv("FIXTURES_DIR"));
  cgroup_part_t *part = cgroup_part_new(&opts, SOURCE_NETLINK, &sink);
  ck_assert_ptr_nonnull(part);
  char expected[PATH_MAX + 256];
  snprintf(expected, sizeof(expected),
           "6 cgroup: %s/self/mountinfo: no cgroup2 mount: every pool port "
           "counts under \"unknown\", a TIME_WAIT socket's under "
           "\"time_wait\"\n",
           opts.proc_root);
  ck_assert_str_eq(logged, expected);
  cgroup_part_free(part);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("cgroup_part");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_proc_names_no_owner);
  tcase_add_test(tc, test_drop_out_reported_once_with_zero);
  tcase_add_test(tc, test_off);
  tcase_add_test(tc, test_no_cgroup2_mount);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
