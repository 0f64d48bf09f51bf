#include "run_suite.h"
#include "util/portset.h"

#include <check.h>
#include <stdlib.h>

static portset_t set;

static void setup(void) { portset_clear(&set); }

START_TEST(test_clear_empties_every_port) {
  portset_add_range(&set, 0, 65535);
  portset_clear(&set);
  ck_assert_uint_eq(portset_count(&set), 0);
  ck_assert_int_eq(portset_next(&set, 0), -1);
}
END_TEST

START_TEST(test_add_and_has) {
  portset_add(&set, 0);
  portset_add(&set, 63);
  portset_add(&set, 64);
  portset_add(&set, 65535);
  ck_assert(portset_has(&set, 0));
  ck_assert(portset_has(&set, 63));
  ck_assert(portset_has(&set, 64));
  ck_assert(portset_has(&set, 65535));
  ck_assert(!portset_has(&set, 1));
  ck_assert(!portset_has(&set, 62));
  ck_assert(!portset_has(&set, 65));
  ck_assert(!portset_has(&set, 65534));
  ck_assert_uint_eq(portset_count(&set), 4);
}
END_TEST

START_TEST(test_add_twice_counts_once) {
  portset_add(&set, 443);
  portset_add(&set, 443);
  ck_assert_uint_eq(portset_count(&set), 1);
}
END_TEST

START_TEST(test_add_range_within_one_word) {
  portset_add_range(&set, 130, 140);
  ck_assert_uint_eq(portset_count(&set), 11);
  ck_assert(!portset_has(&set, 129));
  ck_assert(portset_has(&set, 130));
  ck_assert(portset_has(&set, 140));
  ck_assert(!portset_has(&set, 141));
}
END_TEST

START_TEST(test_add_range_across_words) {
  portset_add_range(&set, 60, 200);
  ck_assert_uint_eq(portset_count(&set), 141);
  ck_assert(!portset_has(&set, 59));
  ck_assert(portset_has(&set, 60));
  ck_assert(portset_has(&set, 127));
  ck_assert(portset_has(&set, 128));
  ck_assert(portset_has(&set, 200));
  ck_assert(!portset_has(&set, 201));
}
END_TEST

START_TEST(test_add_range_word_aligned) {
  portset_add_range(&set, 64, 127);
  ck_assert_uint_eq(portset_count(&set), 64);
  ck_assert(!portset_has(&set, 63));
  ck_assert(!portset_has(&set, 128));
}
END_TEST

START_TEST(test_add_range_single_port) {
  portset_add_range(&set, 8080, 8080);
  ck_assert_uint_eq(portset_count(&set), 1);
  ck_assert(portset_has(&set, 8080));
}
END_TEST

START_TEST(test_add_range_whole_space) {
  portset_add_range(&set, 0, 65535);
  ck_assert_uint_eq(portset_count(&set), 65536);
  ck_assert_uint_eq(portset_count_range(&set, 0, 65535), 65536);
}
END_TEST

START_TEST(test_add_range_reversed_adds_nothing) {
  portset_add_range(&set, 200, 100);
  ck_assert_uint_eq(portset_count(&set), 0);
}
END_TEST

START_TEST(test_count_range_default_ephemeral_range) {
  portset_add_range(&set, 32768, 60999);
  ck_assert_uint_eq(portset_count_range(&set, 32768, 60999), 28232);
  ck_assert_uint_eq(portset_count_range(&set, 1, 32767), 0);
  ck_assert_uint_eq(portset_count_range(&set, 61000, 65535), 0);
  ck_assert_uint_eq(portset_count_range(&set, 60000, 61999), 1000);
}
END_TEST

START_TEST(test_count_range_edges) {
  portset_add(&set, 0);
  portset_add(&set, 1000);
  portset_add(&set, 1001);
  portset_add(&set, 65535);
  ck_assert_uint_eq(portset_count_range(&set, 0, 0), 1);
  ck_assert_uint_eq(portset_count_range(&set, 1, 999), 0);
  ck_assert_uint_eq(portset_count_range(&set, 1000, 1000), 1);
  ck_assert_uint_eq(portset_count_range(&set, 1001, 65534), 1);
  ck_assert_uint_eq(portset_count_range(&set, 1000, 65535), 3);
  ck_assert_uint_eq(portset_count_range(&set, 65535, 65535), 1);
  ck_assert_uint_eq(portset_count_range(&set, 2000, 1000), 0);
}
END_TEST

START_TEST(test_next_walks_members_in_order) {
  portset_add(&set, 22);
  portset_add(&set, 443);
  portset_add(&set, 40000);
  portset_add(&set, 65535);
  ck_assert_int_eq(portset_next(&set, 0), 22);
  ck_assert_int_eq(portset_next(&set, 22), 22);
  ck_assert_int_eq(portset_next(&set, 23), 443);
  ck_assert_int_eq(portset_next(&set, 444), 40000);
  ck_assert_int_eq(portset_next(&set, 40001), 65535);
  ck_assert_int_eq(portset_next(&set, 65535), 65535);
}
END_TEST

START_TEST(test_next_past_the_end) {
  portset_add(&set, 100);
  ck_assert_int_eq(portset_next(&set, 101), -1);
  ck_assert_int_eq(portset_next(&set, 65536), -1);
  ck_assert_int_eq(portset_next(&set, 4000000000u), -1);
}
END_TEST

START_TEST(test_next_on_port_zero_and_word_edges) {
  portset_add(&set, 0);
  portset_add(&set, 64);
  portset_add(&set, 127);
  ck_assert_int_eq(portset_next(&set, 0), 0);
  ck_assert_int_eq(portset_next(&set, 1), 64);
  ck_assert_int_eq(portset_next(&set, 65), 127);
  ck_assert_int_eq(portset_next(&set, 128), -1);
}
END_TEST

START_TEST(test_next_visits_exactly_the_members) {
  unsigned expected = 0;
  for (unsigned port = 3; port < PORTSET_PORTS; port += 997) {
    portset_add(&set, (uint16_t)port);
    expected++;
  }
  unsigned visited = 0;
  int previous = -1;
  for (int port = portset_next(&set, 0); port >= 0;
       port = portset_next(&set, (unsigned)port + 1)) {
    ck_assert_int_eq((port - 3) % 997, 0);
    ck_assert_int_gt(port, previous);
    previous = port;
    visited++;
  }
  ck_assert_uint_eq(visited, expected);
  ck_assert_uint_eq(visited, 66);
}
END_TEST

static Suite *portset_suite(void) {
  Suite *suite = suite_create("portset");
  TCase *tc = tcase_create("portset");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_clear_empties_every_port);
  tcase_add_test(tc, test_add_and_has);
  tcase_add_test(tc, test_add_twice_counts_once);
  tcase_add_test(tc, test_add_range_within_one_word);
  tcase_add_test(tc, test_add_range_across_words);
  tcase_add_test(tc, test_add_range_word_aligned);
  tcase_add_test(tc, test_add_range_single_port);
  tcase_add_test(tc, test_add_range_whole_space);
  tcase_add_test(tc, test_add_range_reversed_adds_nothing);
  tcase_add_test(tc, test_count_range_default_ephemeral_range);
  tcase_add_test(tc, test_count_range_edges);
  tcase_add_test(tc, test_next_walks_members_in_order);
  tcase_add_test(tc, test_next_past_the_end);
  tcase_add_test(tc, test_next_on_port_zero_and_word_edges);
  tcase_add_test(tc, test_next_visits_exactly_the_members);
  suite_add_tcase(suite, tc);
  return suite;
}

int main(void) { return run_suite(portset_suite()); }
