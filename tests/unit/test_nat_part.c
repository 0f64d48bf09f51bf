#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "read/nat_part.h"

#include "log_record.h"
#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static options_t opts;
static nat_memory_t memory;

static void setup(void) {
  logged[0] = '\0';
  options_init(&opts);
  memset(&memory, 0, sizeof(memory));
}

static void teardown(void) {
  nat_memory_forget(&memory);
  options_free(&opts);
}

START_TEST(test_off) {
  nat_part_t *part = nat_part_new(&opts, &sink);
  ck_assert_ptr_nonnull(part);
  nat_part_begin_target(part);
  ck_assert_ptr_null(nat_part_open(part));
  nat_part_read_own(part);
  nat_part_note(part, &memory, NULL);
  ck_assert_str_eq(logged, "");
  nat_part_free(part);
}
END_TEST

/* A namespace that could not be entered: scrape_success 0 for the part,
 * and no ERROR of its own (the namespace's says it). */
START_TEST(test_not_read) {
  opts.report_nat = true;
  nat_part_t *part = nat_part_new(&opts, &sink);
  ck_assert_ptr_nonnull(part);
  nat_part_begin_target(part);
  nat_part_read(part, NULL);
  nat_part_note(part, &memory, "pod-a");
  nat_reading_t nat;
  nat_part_reading(part, &memory, &nat);
  ck_assert(!nat.ok);
  ck_assert_uint_eq(nat.count, 0);
  ck_assert_uint_eq(nat.total, 64512);
  ck_assert(!memory.failing);
  ck_assert_str_eq(logged, "");
  nat_part_free(part);
}
END_TEST

/* collectd's own namespace over ctnetlink, in a network namespace of the
 * test's own (check forks a process per test), whose conntrack table is
 * empty. Needs root, as test_conntrack_live does. After a failed read,
 * one INFO when it reads again. */
START_TEST(test_own_namespace) {
  ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s",
                strerror(errno));
  opts.report_nat = true;
  opts.nat_range = (nat_port_range_t){40000, 40009};
  nat_part_t *part = nat_part_new(&opts, &sink);
  ck_assert_ptr_nonnull(part);
  nat_part_begin_target(part);
  nat_part_read_own(part);
  nat_part_note(part, &memory, NULL);
  nat_reading_t nat;
  nat_part_reading(part, &memory, &nat);
  ck_assert_msg(nat.ok, "%s", logged);
  ck_assert_uint_eq(nat.total, 10);
  ck_assert_uint_eq(nat.count, 0);
  ck_assert_uint_eq(nat.insert_failed, 0);
  ck_assert_uint_eq(nat.drop, 0);
  ck_assert_str_eq(logged, "");
  memory.failing = true; /* as after a failed read */
  nat_part_begin_target(part);
  nat_part_read_own(part);
  nat_part_note(part, &memory, "pod-a");
  ck_assert_str_eq(logged, "6 network namespace \"pod-a\": NAT: reading "
                           "recovered\n");
  nat_part_free(part);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("nat_part");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_off);
  tcase_add_test(tc, test_not_read);
  tcase_add_test(tc, test_own_namespace);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
