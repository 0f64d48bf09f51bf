#include "run_suite.h"
#include "util/port_list.h"

#include <check.h>
#include <stdlib.h>

static portset_t set;

static void setup(void) { portset_clear(&set); }

/* Parses text with min_port 1 and checks the exact range it yields. */
static void assert_range(const char *text, unsigned first, unsigned last) {
  uint16_t got_first = 0, got_last = 0;
  ck_assert_msg(port_range_parse(text, 1, &got_first, &got_last) == 0,
                "\"%s\" was rejected", text);
  ck_assert_uint_eq(got_first, first);
  ck_assert_uint_eq(got_last, last);
}

static void assert_range_rejected(const char *text, unsigned min_port) {
  uint16_t first = 7, last = 7;
  ck_assert_msg(port_range_parse(text, min_port, &first, &last) == -1,
                "\"%s\" was accepted", text);
  ck_assert_uint_eq(first, 7);
  ck_assert_uint_eq(last, 7);
}

START_TEST(test_range_single_port) { assert_range("22", 22, 22); }
END_TEST

START_TEST(test_range_span) { assert_range("8000-8010", 8000, 8010); }
END_TEST

START_TEST(test_range_extremes) {
  assert_range("1", 1, 1);
  assert_range("65535", 65535, 65535);
  assert_range("1-65535", 1, 65535);
  assert_range("443-443", 443, 443);
  assert_range("08080", 8080, 8080);
}
END_TEST

START_TEST(test_range_min_port_zero_allows_zero) {
  uint16_t first = 7, last = 7;
  ck_assert_int_eq(port_range_parse("0", 0, &first, &last), 0);
  ck_assert_uint_eq(first, 0);
  ck_assert_uint_eq(last, 0);
  ck_assert_int_eq(port_range_parse("0-5", 0, &first, &last), 0);
  ck_assert_uint_eq(first, 0);
  ck_assert_uint_eq(last, 5);
}
END_TEST

START_TEST(test_range_rejects_malformed) {
  assert_range_rejected("", 1);
  assert_range_rejected("0", 1);
  assert_range_rejected("0-10", 1);
  assert_range_rejected("1023", 1024);
  assert_range_rejected("65536", 1);
  assert_range_rejected("70000", 1);
  assert_range_rejected("99999999999999999999", 1);
  assert_range_rejected("1-", 1);
  assert_range_rejected("-5", 1);
  assert_range_rejected("5-3", 1);
  assert_range_rejected("5-4", 1);
  assert_range_rejected("1-65536", 1);
  assert_range_rejected("1--2", 1);
  assert_range_rejected("1-2-3", 1);
  assert_range_rejected(" 22", 1);
  assert_range_rejected("22 ", 1);
  assert_range_rejected("22\n", 1);
  assert_range_rejected("+22", 1);
  assert_range_rejected("0x16", 1);
  assert_range_rejected("ssh", 1);
  assert_range_rejected("22,23", 1);
}
END_TEST

START_TEST(test_list_kernel_format) {
  ck_assert_int_eq(port_list_parse("8080,9000-9010\n", 1, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 12);
  ck_assert(portset_has(&set, 8080));
  ck_assert_uint_eq(portset_count_range(&set, 9000, 9010), 11);
  ck_assert_int_eq(portset_next(&set, 0), 8080);
  ck_assert_int_eq(portset_next(&set, 8081), 9000);
  ck_assert_int_eq(portset_next(&set, 9011), -1);
}
END_TEST

START_TEST(test_list_single_item) {
  ck_assert_int_eq(port_list_parse("22", 1, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 1);
  ck_assert(portset_has(&set, 22));
}
END_TEST

START_TEST(test_list_blanks_around_items) {
  ck_assert_int_eq(port_list_parse(" 22 ,\t443-444\t, 8080 \n", 1, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 4);
  ck_assert(portset_has(&set, 22));
  ck_assert(portset_has(&set, 443));
  ck_assert(portset_has(&set, 444));
  ck_assert(portset_has(&set, 8080));
}
END_TEST

START_TEST(test_list_overlapping_items) {
  ck_assert_int_eq(port_list_parse("100-200,150-250,200", 1, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 151);
  ck_assert_int_eq(portset_next(&set, 0), 100);
  ck_assert(portset_has(&set, 250));
  ck_assert(!portset_has(&set, 251));
}
END_TEST

START_TEST(test_list_empty_adds_nothing) {
  ck_assert_int_eq(port_list_parse("", 1, &set), 0);
  ck_assert_int_eq(port_list_parse("\n", 1, &set), 0);
  ck_assert_int_eq(port_list_parse("  \t\n", 1, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 0);
}
END_TEST

START_TEST(test_list_adds_to_existing_members) {
  portset_add(&set, 1);
  ck_assert_int_eq(port_list_parse("2", 1, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 2);
  ck_assert(portset_has(&set, 1));
}
END_TEST

START_TEST(test_list_min_port_zero) {
  ck_assert_int_eq(port_list_parse("0-2,65535\n", 0, &set), 0);
  ck_assert_uint_eq(portset_count(&set), 4);
  ck_assert(portset_has(&set, 0));
  ck_assert(portset_has(&set, 65535));
  portset_clear(&set);
  ck_assert_int_eq(port_list_parse("0", 1, &set), -1);
}
END_TEST

static const char *const malformed_lists[] = {
    "1-",       "5-3",         "70000",  ",,",    ",",     "22,",
    ",22",      "22,,23",      "22;23",  "22 23", "ssh",   "22\n\n",
    "\n22",     "22\n23",      "-",      "1-2-3", "65536", "1-65536",
    "8000-800", "12345678901", "22, ,23"};

START_TEST(test_list_rejects_malformed) {
  const char *text = malformed_lists[_i];
  ck_assert_msg(port_list_parse(text, 1, &set) == -1, "\"%s\" was accepted",
                text);
}
END_TEST

START_TEST(test_list_error_keeps_items_before_the_bad_one) {
  ck_assert_int_eq(port_list_parse("22,443,bad,8080", 1, &set), -1);
  ck_assert_uint_eq(portset_count(&set), 2);
  ck_assert(portset_has(&set, 22));
  ck_assert(portset_has(&set, 443));
}
END_TEST

static Suite *port_list_suite(void) {
  Suite *suite = suite_create("port_list");
  TCase *range = tcase_create("port_range_parse");
  tcase_add_test(range, test_range_single_port);
  tcase_add_test(range, test_range_span);
  tcase_add_test(range, test_range_extremes);
  tcase_add_test(range, test_range_min_port_zero_allows_zero);
  tcase_add_test(range, test_range_rejects_malformed);
  suite_add_tcase(suite, range);

  TCase *list = tcase_create("port_list_parse");
  tcase_add_checked_fixture(list, setup, NULL);
  tcase_add_test(list, test_list_kernel_format);
  tcase_add_test(list, test_list_single_item);
  tcase_add_test(list, test_list_blanks_around_items);
  tcase_add_test(list, test_list_overlapping_items);
  tcase_add_test(list, test_list_empty_adds_nothing);
  tcase_add_test(list, test_list_adds_to_existing_members);
  tcase_add_test(list, test_list_min_port_zero);
  tcase_add_loop_test(list, test_list_rejects_malformed, 0,
                      COUNT(malformed_lists));
  tcase_add_test(list, test_list_error_keeps_items_before_the_bad_one);
  suite_add_tcase(suite, list);
  return suite;
}

int main(void) { return run_suite(port_list_suite()); }
