#include "count/destinations.h"

#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static destinations_t table;

static destination_key_t key_of(const char *local, const char *remote,
                                uint16_t remote_port) {
  int family = strchr(local, ':') ? AF_INET6 : AF_INET;
  inet_socket_t sock = {.family = (uint8_t)family,
                        .protocol = IPPROTO_TCP,
                        .state = 1,
                        .local_port = 40000,
                        .remote_port = remote_port};
  ck_assert_int_eq(inet_pton(family, local, sock.local_addr), 1);
  ck_assert_int_eq(inet_pton(family, remote, sock.remote_addr), 1);
  destination_key_t key;
  destination_key_of(&sock, &key);
  return key;
}

static void add_times(const destination_key_t *key, unsigned times) {
  for (unsigned i = 0; i < times; i++)
    ck_assert_int_eq(destinations_add(&table, key, 0), 0);
}

static const char *remote_text(const destination_key_t *key) {
  static char buf[64];
  ck_assert_int_eq(destination_format_remote(key, buf, sizeof(buf)), 0);
  return buf;
}

static const char *local_text(const destination_key_t *key) {
  static char buf[64];
  ck_assert_int_eq(destination_format_local(key, buf, sizeof(buf)), 0);
  return buf;
}

static void setup(void) { destinations_init(&table); }
static void teardown(void) { destinations_free(&table); }

START_TEST(test_formats) {
  destination_key_t v4 = key_of("10.0.0.2", "203.0.113.7", 443);
  ck_assert_str_eq(remote_text(&v4), "203.0.113.7:443");
  ck_assert_str_eq(local_text(&v4), "10.0.0.2");
  destination_key_t v6 = key_of("2001:db8::2", "2001:db8::7", 8443);
  ck_assert_str_eq(remote_text(&v6), "[2001:db8::7]:8443");
  ck_assert_str_eq(local_text(&v6), "2001:db8::2");
  char small[8];
  ck_assert_int_eq(destination_format_remote(&v4, small, sizeof(small)), -1);
}
END_TEST

START_TEST(test_v4_mapped_is_keyed_as_v4) {
  destination_key_t mapped =
      key_of("::ffff:10.0.0.2", "::ffff:203.0.113.7", 443);
  destination_key_t v4 = key_of("10.0.0.2", "203.0.113.7", 443);
  ck_assert_mem_eq(&mapped, &v4, sizeof(v4));
  ck_assert_str_eq(remote_text(&mapped), "203.0.113.7:443");
}
END_TEST

START_TEST(test_keys_differ_by_each_part) {
  destination_key_t base = key_of("10.0.0.2", "203.0.113.7", 443);
  destination_key_t other_local = key_of("10.0.0.3", "203.0.113.7", 443);
  destination_key_t other_remote = key_of("10.0.0.2", "203.0.113.8", 443);
  destination_key_t other_port = key_of("10.0.0.2", "203.0.113.7", 80);
  add_times(&base, 3);
  add_times(&other_local, 1);
  add_times(&other_remote, 2);
  add_times(&other_port, 4);
  ck_assert_uint_eq(table.count, 4);
  ck_assert_uint_eq(destinations_find(&table, &base)->held, 3);
  ck_assert_uint_eq(destinations_find(&table, &other_local)->held, 1);
  ck_assert_uint_eq(destinations_find(&table, &other_remote)->held, 2);
  ck_assert_uint_eq(destinations_find(&table, &other_port)->held, 4);
}
END_TEST

START_TEST(test_grows_and_keeps_counts) {
  destination_key_t key = key_of("10.0.0.2", "203.0.113.7", 0);
  for (unsigned port = 1; port <= 5000; port++) {
    key.remote_port = (uint16_t)port;
    add_times(&key, port % 7 + 1);
  }
  ck_assert_uint_eq(table.count, 5000);
  ck_assert_uint_ge(table.capacity, 10000);
  for (unsigned port = 1; port <= 5000; port++) {
    key.remote_port = (uint16_t)port;
    ck_assert_uint_eq(destinations_find(&table, &key)->held, port % 7 + 1);
  }
}
END_TEST

START_TEST(test_clear_forgets_without_freeing) {
  destination_key_t key = key_of("10.0.0.2", "203.0.113.7", 443);
  add_times(&key, 2);
  destination_t *slots = table.slots;
  destinations_clear(&table);
  ck_assert_uint_eq(table.count, 0);
  ck_assert_ptr_null(destinations_find(&table, &key));
  add_times(&key, 1);
  ck_assert_uint_eq(destinations_find(&table, &key)->held, 1);
  ck_assert_ptr_eq(table.slots, slots);
}
END_TEST

START_TEST(test_generation_wrap_forgets_old_entries) {
  destination_key_t key = key_of("10.0.0.2", "203.0.113.7", 443);
  table.generation = UINT32_MAX;
  add_times(&key, 2);
  destinations_clear(&table);
  ck_assert_uint_eq(table.generation, 1);
  ck_assert_ptr_null(destinations_find(&table, &key));
}
END_TEST

START_TEST(test_top_busiest_first_ties_in_key_order) {
  destination_key_t a = key_of("10.0.0.2", "203.0.113.1", 443);
  destination_key_t b = key_of("10.0.0.2", "203.0.113.2", 443);
  destination_key_t c = key_of("10.0.0.2", "203.0.113.3", 443);
  destination_key_t d = key_of("10.0.0.2", "203.0.113.4", 443);
  add_times(&c, 2);
  add_times(&a, 5);
  add_times(&d, 2);
  add_times(&b, 1);

  destination_t top[3];
  ck_assert_uint_eq(destinations_top(&table, top, 3), 3);
  ck_assert_str_eq(remote_text(&top[0].key), "203.0.113.1:443");
  ck_assert_uint_eq(top[0].held, 5);
  ck_assert_str_eq(remote_text(&top[1].key), "203.0.113.3:443");
  ck_assert_str_eq(remote_text(&top[2].key), "203.0.113.4:443");
  ck_assert(destinations_find(&table, &a)->in_top);
  ck_assert(destinations_find(&table, &c)->in_top);
  ck_assert(destinations_find(&table, &d)->in_top);
  ck_assert(!destinations_find(&table, &b)->in_top);

  destination_t all[10];
  ck_assert_uint_eq(destinations_top(&table, all, 10), 4);
  ck_assert_str_eq(remote_text(&all[3].key), "203.0.113.2:443");
  ck_assert_uint_eq(destinations_top(&table, all, 0), 0);
}
END_TEST

START_TEST(test_top_of_empty_table) {
  destination_t top[2];
  ck_assert_uint_eq(destinations_top(&table, top, 2), 0);
  destination_key_t key = key_of("10.0.0.2", "203.0.113.7", 443);
  ck_assert_ptr_null(destinations_find(&table, &key));
}
END_TEST

/* Each TIME_WAIT port connect() takes over leaves held; those that wait on
 * timestamps only when the key's established sockets all had them. */
START_TEST(test_settle_takes_reused_time_wait_out) {
  destination_key_t local = key_of("127.0.0.1", "127.0.0.1", 9000);
  destination_key_t proven = key_of("10.0.0.2", "203.0.113.7", 443);
  destination_key_t unproven = key_of("10.0.0.2", "203.0.113.8", 443);
  destination_key_t mixed = key_of("10.0.0.2", "203.0.113.9", 443);
  const unsigned tw = DESTINATION_TIME_WAIT;
  const unsigned taken = tw | DESTINATION_TAKEN_OVER;
  const unsigned if_ts = tw | DESTINATION_TAKEN_OVER_IF_TIMESTAMPS;
  unsigned local_flags[] = {taken, taken, tw, 0};
  unsigned proven_flags[] = {if_ts, if_ts, DESTINATION_WITH_TIMESTAMPS};
  unsigned unproven_flags[] = {if_ts, if_ts, 0};
  unsigned mixed_flags[] = {if_ts, DESTINATION_WITH_TIMESTAMPS,
                            DESTINATION_WITHOUT_TIMESTAMPS};
  for (size_t i = 0; i < COUNT(local_flags); i++)
    ck_assert_int_eq(destinations_add(&table, &local, local_flags[i]), 0);
  for (size_t i = 0; i < 3; i++) {
    ck_assert_int_eq(destinations_add(&table, &proven, proven_flags[i]), 0);
    ck_assert_int_eq(destinations_add(&table, &unproven, unproven_flags[i]), 0);
    ck_assert_int_eq(destinations_add(&table, &mixed, mixed_flags[i]), 0);
  }
  ck_assert_uint_eq(destinations_find(&table, &local)->held, 4);
  destinations_settle(&table);
  const destination_t *entry = destinations_find(&table, &local);
  ck_assert_uint_eq(entry->held, 2);
  ck_assert_uint_eq(entry->time_wait, 3);
  ck_assert_uint_eq(destinations_find(&table, &proven)->held, 1);
  ck_assert_uint_eq(destinations_find(&table, &unproven)->held, 3);
  ck_assert_uint_eq(destinations_find(&table, &mixed)->held, 3);
  ck_assert_uint_eq(destinations_find(&table, &mixed)->time_wait, 1);
  destination_t top[4];
  ck_assert_uint_eq(destinations_top(&table, top, 4), 4);
  ck_assert_uint_eq(top[3].held, 1);
  ck_assert_str_eq(remote_text(&top[3].key), "203.0.113.7:443");
}
END_TEST

int main(void) {
  Suite *suite = suite_create("destinations");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_formats);
  tcase_add_test(tc, test_v4_mapped_is_keyed_as_v4);
  tcase_add_test(tc, test_keys_differ_by_each_part);
  tcase_add_test(tc, test_grows_and_keeps_counts);
  tcase_add_test(tc, test_clear_forgets_without_freeing);
  tcase_add_test(tc, test_generation_wrap_forgets_old_entries);
  tcase_add_test(tc, test_top_busiest_first_ties_in_key_order);
  tcase_add_test(tc, test_top_of_empty_table);
  tcase_add_test(tc, test_settle_takes_reused_time_wait_out);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
