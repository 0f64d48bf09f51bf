#include "count/snapshot.h"

#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

static snapshot_t snap;
static destinations_t table;

static inet_socket_t tcp_socket(int family, uint8_t state, uint16_t port) {
  inet_socket_t sock = {.family = (uint8_t)family,
                        .protocol = IPPROTO_TCP,
                        .state = state,
                        .local_port = port};
  return sock;
}

static inet_socket_t connected(const char *local, uint16_t port,
                               const char *remote, uint16_t remote_port,
                               uint8_t state) {
  int family = strchr(local, ':') ? AF_INET6 : AF_INET;
  inet_socket_t sock = tcp_socket(family, state, port);
  sock.remote_port = remote_port;
  ck_assert_int_eq(inet_pton(family, local, sock.local_addr), 1);
  ck_assert_int_eq(inet_pton(family, remote, sock.remote_addr), 1);
  return sock;
}

/* Both passes of a read, as the sources run them. */
static void add(inet_socket_t sock) {
  ck_assert_int_eq(snapshot_add_unconnected(&sock, &snap), 0);
  ck_assert_int_eq(snapshot_add_connected(&sock, &snap), 0);
}

/* Range 40000..40019 with 40005 and 40010-40011 reserved: 17 pool ports. */
static void begin(int protocol, destinations_t *destinations) {
  portset_t reserved;
  portset_clear(&reserved);
  portset_add(&reserved, 40005);
  portset_add_range(&reserved, 40010, 40011);
  snapshot_begin(&snap, protocol, 40000, 40019, &reserved, destinations, NULL);
}

static void setup(void) { destinations_init(&table); }
static void teardown(void) { destinations_free(&table); }

START_TEST(test_total_excludes_reserved) {
  begin(IPPROTO_TCP, NULL);
  ck_assert_uint_eq(snap.total, 17);
  ck_assert_uint_eq(snapshot_used(&snap), 0);
  ck_assert_int_eq(portset_next(&snap.open, 0), -1);
}
END_TEST

START_TEST(test_used_counts_distinct_pool_ports) {
  begin(IPPROTO_TCP, NULL);
  add(connected("127.0.0.1", 40001, "127.0.0.1", 9000, TCP_ESTABLISHED));
  /* The same port again, to another destination: counted once. */
  add(connected("::1", 40001, "::1", 9000, TCP_TIME_WAIT));
  add(tcp_socket(AF_INET, TCP_LISTEN, 40002));
  add(connected("127.0.0.1", 40019, "127.0.0.1", 9000, TCP_SYN_SENT));
  add(connected("127.0.0.1", 40005, "127.0.0.1", 9000, TCP_ESTABLISHED));
  add(connected("127.0.0.1", 40010, "127.0.0.1", 9000, TCP_ESTABLISHED));
  add(connected("127.0.0.1", 39999, "127.0.0.1", 9000, TCP_ESTABLISHED));
  add(connected("127.0.0.1", 40020, "127.0.0.1", 9000, TCP_ESTABLISHED));
  add(tcp_socket(AF_INET, TCP_LISTEN, 8080));

  ck_assert_uint_eq(snapshot_used(&snap), 3);
  ck_assert(portset_has(&snap.used, 40001));
  ck_assert(portset_has(&snap.used, 40002));
  ck_assert(portset_has(&snap.used, 40019));
  ck_assert_int_eq(portset_next(&snap.open, 0), 8080);
  ck_assert_int_eq(portset_next(&snap.open, 8081), 40002);
  ck_assert_int_eq(portset_next(&snap.open, 40003), -1);
  ck_assert_uint_eq(snapshot_exclusive(&snap), 1);
}
END_TEST

START_TEST(test_states_of_sockets_on_pool_ports) {
  begin(IPPROTO_TCP, NULL);
  add(connected("127.0.0.1", 40001, "127.0.0.1", 9000, TCP_ESTABLISHED));
  add(connected("127.0.0.1", 40002, "127.0.0.1", 9000, TCP_TIME_WAIT));
  add(connected("127.0.0.1", 40003, "127.0.0.1", 9000, TCP_TIME_WAIT));
  add(connected("127.0.0.1", 40003, "127.0.0.1", 9001, TCP_TIME_WAIT));
  add(tcp_socket(AF_INET, TCP_LISTEN, 40004));
  add(connected("127.0.0.1", 9000, "127.0.0.1", 40001, TCP_ESTABLISHED));
  add(tcp_socket(AF_INET, TCP_LISTEN, 9000));

  unsigned expected[SNAPSHOT_STATES] = {0};
  expected[TCP_ESTABLISHED] = 1;
  expected[TCP_TIME_WAIT] = 3;
  expected[TCP_LISTEN] = 1;
  ck_assert_mem_eq(snap.sockets_by_state, expected, sizeof(expected));
}
END_TEST

START_TEST(test_listener_on_reserved_port_is_open_not_used) {
  begin(IPPROTO_TCP, NULL);
  add(tcp_socket(AF_INET6, TCP_LISTEN, 40005));
  ck_assert_uint_eq(snapshot_used(&snap), 0);
  ck_assert_uint_eq(snapshot_exclusive(&snap), 0);
  ck_assert_int_eq(portset_next(&snap.open, 0), 40005);
}
END_TEST

START_TEST(test_bound_only_tcp_is_exclusive_not_open) {
  begin(IPPROTO_TCP, NULL);
  add(tcp_socket(AF_INET, TCP_CLOSE, 40007));
  ck_assert_uint_eq(snapshot_used(&snap), 1);
  ck_assert_uint_eq(snapshot_exclusive(&snap), 1);
  ck_assert_int_eq(portset_next(&snap.open, 0), -1);
}
END_TEST

START_TEST(test_port_zero_is_never_open) {
  begin(IPPROTO_TCP, NULL);
  add(tcp_socket(AF_INET, TCP_LISTEN, 0));
  ck_assert_int_eq(portset_next(&snap.open, 0), -1);
}
END_TEST

START_TEST(test_udp_open_is_bound_without_peer) {
  begin(IPPROTO_UDP, NULL);
  inet_socket_t unconnected = tcp_socket(AF_INET, TCP_CLOSE, 53);
  unconnected.protocol = IPPROTO_UDP;
  add(unconnected);
  inet_socket_t in_pool = unconnected;
  in_pool.local_port = 40003;
  add(in_pool);
  inet_socket_t peer =
      connected("127.0.0.1", 40004, "127.0.0.1", 53, TCP_ESTABLISHED);
  peer.protocol = IPPROTO_UDP;
  add(peer);

  ck_assert_uint_eq(snapshot_used(&snap), 2);
  ck_assert_int_eq(portset_next(&snap.open, 0), 53);
  ck_assert_int_eq(portset_next(&snap.open, 54), 40003);
  ck_assert_int_eq(portset_next(&snap.open, 40004), -1);
}
END_TEST

START_TEST(test_destinations_leave_out_exclusive_ports) {
  begin(IPPROTO_TCP, &table);
  /* The listener on pool port 40001 goes first, as in a real read. */
  inet_socket_t listener = tcp_socket(AF_INET, TCP_LISTEN, 40001);
  ck_assert_int_eq(snapshot_add_unconnected(&listener, &snap), 0);
  inet_socket_t to_a1 =
      connected("10.0.0.2", 40002, "203.0.113.7", 443, TCP_ESTABLISHED);
  inet_socket_t to_a2 =
      connected("10.0.0.2", 40003, "203.0.113.7", 443, TCP_TIME_WAIT);
  inet_socket_t to_b =
      connected("10.0.0.2", 40002, "203.0.113.8", 443, TCP_ESTABLISHED);
  inet_socket_t accepted =
      connected("10.0.0.2", 40001, "203.0.113.9", 5555, TCP_ESTABLISHED);
  inet_socket_t outside =
      connected("10.0.0.2", 30000, "203.0.113.7", 443, TCP_ESTABLISHED);
  const inet_socket_t *all[] = {&to_a1, &to_a2, &to_b, &accepted, &outside};
  for (size_t i = 0; i < COUNT(all); i++)
    ck_assert_int_eq(snapshot_add_connected(all[i], &snap), 0);

  destination_key_t key_a, key_b, key_accepted;
  destination_key_of(&to_a1, &key_a);
  destination_key_of(&to_b, &key_b);
  destination_key_of(&accepted, &key_accepted);
  ck_assert_uint_eq(table.count, 2);
  ck_assert_uint_eq(destinations_find(&table, &key_a)->held, 2);
  ck_assert_uint_eq(destinations_find(&table, &key_b)->held, 1);
  ck_assert_ptr_null(destinations_find(&table, &key_accepted));
  ck_assert_uint_eq(snapshot_exclusive(&snap), 1);
  ck_assert_uint_eq(snapshot_used(&snap), 3);
}
END_TEST

/* Under tcp_tw_reuse 1: a loopback TIME_WAIT port older than the delay
 * leaves its destination's held at snapshot_end, a young one stays; one
 * elsewhere leaves only once an established socket to the same key shows
 * timestamps. The host's used keeps every port (what ss -tan shows). */
START_TEST(test_end_takes_reused_time_wait_out) {
  begin(IPPROTO_TCP, &table);
  snapshot_set_tw_reuse(&snap, &(tcp_reuse_sysctls_t){1, 1000, true});
  inet_socket_t old_lo =
      connected("127.0.0.1", 40000, "127.0.0.1", 9000, TCP_TIME_WAIT);
  old_lo.expires_ms = 50000;
  inet_socket_t young_lo =
      connected("127.0.0.1", 40001, "127.0.0.1", 9000, TCP_TIME_WAIT);
  young_lo.expires_ms = 59500;
  inet_socket_t old_far =
      connected("10.0.0.2", 40002, "203.0.113.7", 443, TCP_TIME_WAIT);
  old_far.expires_ms = 50000;
  inet_socket_t far =
      connected("10.0.0.2", 40003, "203.0.113.7", 443, TCP_ESTABLISHED);
  far.timestamps = INET_TIMESTAMPS_YES;
  const inet_socket_t *all[] = {&old_lo, &young_lo, &old_far, &far};
  for (size_t i = 0; i < COUNT(all); i++)
    add(*all[i]);
  snapshot_end(&snap);
  destination_key_t lo, far_key;
  destination_key_of(&old_lo, &lo);
  destination_key_of(&far, &far_key);
  ck_assert_uint_eq(destinations_find(&table, &lo)->held, 1);
  ck_assert_uint_eq(destinations_find(&table, &lo)->time_wait, 2);
  ck_assert_uint_eq(destinations_find(&table, &far_key)->held, 1);
  ck_assert_uint_eq(destinations_find(&table, &far_key)->time_wait, 1);
  ck_assert_uint_eq(snapshot_used(&snap), 4);
  /* snapshot_begin turns reuse off again. */
  begin(IPPROTO_TCP, &table);
  add(old_lo);
  snapshot_end(&snap);
  ck_assert_uint_eq(destinations_find(&table, &lo)->held, 1);
}
END_TEST

START_TEST(test_add_socket_sorts_by_kind) {
  begin(IPPROTO_TCP, &table);
  inet_socket_t bound = tcp_socket(AF_INET, TCP_CLOSE, 40007);
  inet_socket_t to_a =
      connected("10.0.0.2", 40008, "203.0.113.7", 443, TCP_ESTABLISHED);
  ck_assert_int_eq(snapshot_add_socket(&bound, &snap), 0);
  ck_assert_int_eq(snapshot_add_socket(&to_a, &snap), 0);
  destination_key_t key;
  destination_key_of(&to_a, &key);
  ck_assert_uint_eq(snapshot_used(&snap), 2);
  ck_assert_uint_eq(snapshot_exclusive(&snap), 1);
  ck_assert(portset_has(&snap.exclusive, 40007));
  ck_assert_uint_eq(table.count, 1);
  ck_assert_uint_eq(destinations_find(&table, &key)->held, 1);
  ck_assert_uint_eq(snap.sockets_by_state[TCP_CLOSE], 1);
  ck_assert_uint_eq(snap.sockets_by_state[TCP_ESTABLISHED], 1);
}
END_TEST

START_TEST(test_begin_forgets_the_previous_read) {
  begin(IPPROTO_TCP, &table);
  add(tcp_socket(AF_INET, TCP_LISTEN, 40003));
  add(connected("127.0.0.1", 40004, "127.0.0.1", 9000, TCP_ESTABLISHED));
  begin(IPPROTO_TCP, &table);
  ck_assert_uint_eq(snapshot_used(&snap), 0);
  ck_assert_uint_eq(snapshot_exclusive(&snap), 0);
  ck_assert_int_eq(portset_next(&snap.open, 0), -1);
  ck_assert_uint_eq(table.count, 0);
  ck_assert_uint_eq(snap.sockets_by_state[TCP_ESTABLISHED], 0);
}
END_TEST

START_TEST(test_full_range_every_port_used) {
  portset_t none;
  portset_clear(&none);
  snapshot_begin(&snap, IPPROTO_TCP, 1, 65535, &none, NULL, NULL);
  ck_assert_uint_eq(snap.total, 65535);
  for (unsigned port = 1; port <= 65535; port++)
    add(connected("127.0.0.1", (uint16_t)port, "127.0.0.1", 9, 1));
  ck_assert_uint_eq(snapshot_used(&snap), 65535);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("snapshot");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_total_excludes_reserved);
  tcase_add_test(tc, test_used_counts_distinct_pool_ports);
  tcase_add_test(tc, test_states_of_sockets_on_pool_ports);
  tcase_add_test(tc, test_listener_on_reserved_port_is_open_not_used);
  tcase_add_test(tc, test_bound_only_tcp_is_exclusive_not_open);
  tcase_add_test(tc, test_port_zero_is_never_open);
  tcase_add_test(tc, test_udp_open_is_bound_without_peer);
  tcase_add_test(tc, test_destinations_leave_out_exclusive_ports);
  tcase_add_test(tc, test_add_socket_sorts_by_kind);
  tcase_add_test(tc, test_end_takes_reused_time_wait_out);
  tcase_add_test(tc, test_begin_forgets_the_previous_read);
  tcase_add_test(tc, test_full_range_every_port_used);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
