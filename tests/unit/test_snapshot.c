#include "snapshot.h"

#include "run_suite.h"

#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>

static snapshot_t snap;

static void add(int family, uint8_t state, uint16_t port) {
  inet_socket_t sock = {.family = (uint8_t)family,
                        .protocol = IPPROTO_TCP,
                        .state = state,
                        .local_port = port};
  ck_assert_int_eq(snapshot_add_socket(&sock, &snap), 0);
}

/* Range 40000..40019 with 40005 and 40010-40011 reserved: 17 pool ports. */
static void begin_test_range(void) {
  portset_t reserved;
  portset_clear(&reserved);
  portset_add(&reserved, 40005);
  portset_add_range(&reserved, 40010, 40011);
  snapshot_begin(&snap, 40000, 40019, &reserved);
}

START_TEST(test_total_excludes_reserved) {
  begin_test_range();
  ck_assert_uint_eq(snap.total, 17);
  ck_assert_uint_eq(snapshot_used(&snap), 0);
  ck_assert_int_eq(portset_next(&snap.listening, 0), -1);
}
END_TEST

START_TEST(test_used_counts_distinct_pool_ports) {
  begin_test_range();
  add(AF_INET, TCP_ESTABLISHED, 40001);
  add(AF_INET6, TCP_TIME_WAIT, 40001); /* same port again: counted once */
  add(AF_INET, TCP_LISTEN, 40002);
  add(AF_INET6, TCP_SYN_SENT, 40019);   /* last port of the range */
  add(AF_INET, TCP_ESTABLISHED, 40005); /* reserved */
  add(AF_INET, TCP_ESTABLISHED, 40010); /* reserved */
  add(AF_INET, TCP_ESTABLISHED, 39999); /* below the range */
  add(AF_INET, TCP_ESTABLISHED, 40020); /* above the range */
  add(AF_INET, TCP_LISTEN, 8080);

  ck_assert_uint_eq(snapshot_used(&snap), 3);
  ck_assert(portset_has(&snap.used, 40001));
  ck_assert(portset_has(&snap.used, 40002));
  ck_assert(portset_has(&snap.used, 40019));
  ck_assert_int_eq(portset_next(&snap.listening, 0), 8080);
  ck_assert_int_eq(portset_next(&snap.listening, 8081), 40002);
  ck_assert_int_eq(portset_next(&snap.listening, 40003), -1);
}
END_TEST

START_TEST(test_listener_on_reserved_port_is_open_not_used) {
  begin_test_range();
  add(AF_INET6, TCP_LISTEN, 40005);
  ck_assert_uint_eq(snapshot_used(&snap), 0);
  ck_assert_int_eq(portset_next(&snap.listening, 0), 40005);
}
END_TEST

START_TEST(test_port_zero_is_never_open) {
  begin_test_range();
  add(AF_INET, TCP_LISTEN, 0);
  ck_assert_int_eq(portset_next(&snap.listening, 0), -1);
}
END_TEST

START_TEST(test_begin_forgets_the_previous_read) {
  begin_test_range();
  add(AF_INET, TCP_LISTEN, 40003);
  begin_test_range();
  ck_assert_uint_eq(snapshot_used(&snap), 0);
  ck_assert_int_eq(portset_next(&snap.listening, 0), -1);
}
END_TEST

START_TEST(test_full_range_every_port_used) {
  portset_t none;
  portset_clear(&none);
  snapshot_begin(&snap, 1, 65535, &none);
  ck_assert_uint_eq(snap.total, 65535);
  for (unsigned port = 1; port <= 65535; port++)
    add(AF_INET, TCP_ESTABLISHED, (uint16_t)port);
  ck_assert_uint_eq(snapshot_used(&snap), 65535);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("snapshot");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_total_excludes_reserved);
  tcase_add_test(tc, test_used_counts_distinct_pool_ports);
  tcase_add_test(tc, test_listener_on_reserved_port_is_open_not_used);
  tcase_add_test(tc, test_port_zero_is_never_open);
  tcase_add_test(tc, test_begin_forgets_the_previous_read);
  tcase_add_test(tc, test_full_range_every_port_used);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
