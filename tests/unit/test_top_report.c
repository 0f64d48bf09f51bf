#include "count/top_report.h"

#include "run_suite.h"

#include <check.h>
#include <string.h>

static destinations_t table;
static destination_t top[2];
static top_entry_t out[4];
static reported_keys_t reported;

static destination_key_t key(uint8_t id) {
  destination_key_t k;
  memset(&k, 0, sizeof(k));
  k.family = 2;
  k.remote_port = 443;
  k.remote_addr[3] = id;
  return k;
}

static void add(uint8_t id, unsigned times) {
  destination_key_t k = key(id);
  for (unsigned i = 0; i < times; i++)
    ck_assert_int_eq(destinations_add(&table, &k, 0), 0);
}

static void check_entry(size_t i, uint8_t id, unsigned count) {
  ck_assert_uint_eq(out[i].key.remote_addr[3], id);
  ck_assert_uint_eq(out[i].count, count);
}

static void setup(void) {
  destinations_init(&table);
  memset(&reported, 0, sizeof(reported));
}

static void teardown(void) {
  destinations_free(&table);
  reported_keys_free(&reported);
}

START_TEST(test_busiest_first) {
  destinations_clear(&table);
  add(1, 1);
  add(2, 3);
  add(3, 2);
  ck_assert_uint_eq(top_report(&table, top, 2, &reported, out), 2);
  check_entry(0, 2, 3);
  check_entry(1, 3, 2);
  ck_assert_uint_eq(reported.count, 2);
}
END_TEST

START_TEST(test_drop_outs_sent_once_more) {
  destinations_clear(&table);
  add(1, 3);
  add(2, 2);
  top_report(&table, top, 2, &reported, out);
  /* 1 is gone, 2 dropped to third place. */
  destinations_clear(&table);
  add(2, 1);
  add(3, 5);
  add(4, 4);
  ck_assert_uint_eq(top_report(&table, top, 2, &reported, out), 4);
  check_entry(0, 3, 5);
  check_entry(1, 4, 4);
  check_entry(2, 1, 0);
  check_entry(3, 2, 1);
  /* Reported once: the next read has only its top. */
  destinations_clear(&table);
  add(3, 5);
  add(4, 4);
  ck_assert_uint_eq(top_report(&table, top, 2, &reported, out), 2);
}
END_TEST

START_TEST(test_empty_table_forgets) {
  destinations_clear(&table);
  add(1, 1);
  top_report(&table, top, 2, &reported, out);
  destinations_clear(&table);
  ck_assert_uint_eq(top_report(&table, top, 2, &reported, out), 1);
  check_entry(0, 1, 0);
  ck_assert_uint_eq(reported.count, 0);
  ck_assert_uint_eq(top_report(&table, top, 2, &reported, out), 0);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("top_report");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_busiest_first);
  tcase_add_test(tc, test_drop_outs_sent_once_more);
  tcase_add_test(tc, test_empty_table_forgets);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
