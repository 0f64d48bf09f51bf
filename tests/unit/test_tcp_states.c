#include "count/tcp_states.h"

#include "run_suite.h"

#include <check.h>
#include <netinet/tcp.h>

START_TEST(test_names_in_kernel_order) {
  static const char *const expected[TCP_STATE_NAMES] = {
      "established", "syn_sent",  "syn_recv", "fin_wait1",
      "fin_wait2",   "time_wait", "close",    "close_wait",
      "last_ack",    "listen",    "closing"};
  for (unsigned i = 0; i < TCP_STATE_NAMES; i++)
    ck_assert_str_eq(tcp_state_name(i), expected[i]);
  ck_assert_str_eq(tcp_state_name(TCP_TIME_WAIT - 1), "time_wait");
}
END_TEST

START_TEST(test_fold_request_and_bound_only_sockets) {
  unsigned by_state[SNAPSHOT_STATES] = {0};
  by_state[TCP_ESTABLISHED] = 7;
  by_state[TCP_SYN_RECV] = 1;
  by_state[INET_TCP_NEW_SYN_RECV] = 2;
  by_state[TCP_CLOSE] = 3;
  by_state[INET_TCP_BOUND_INACTIVE] = 4;
  by_state[TCP_CLOSING] = 5;
  unsigned reported[TCP_STATE_NAMES];
  tcp_states_fold(by_state, reported);
  const unsigned expected[TCP_STATE_NAMES] = {7, 0, 3, 0, 0, 0, 7, 0, 0, 0, 5};
  ck_assert_mem_eq(reported, expected, sizeof(expected));
}
END_TEST

int main(void) {
  Suite *suite = suite_create("tcp_states");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_names_in_kernel_order);
  tcase_add_test(tc, test_fold_request_and_bound_only_sockets);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
