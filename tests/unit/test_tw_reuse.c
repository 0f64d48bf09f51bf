#include "count/tw_reuse.h"

#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

/* A TIME_WAIT socket from local to remote:443 whose timer has expires_ms
 * left (its age is TW_LENGTH_MS minus that). */
static inet_socket_t time_wait(const char *local, const char *remote,
                               uint32_t expires_ms) {
  int family = strchr(local, ':') ? AF_INET6 : AF_INET;
  inet_socket_t sock = {.family = (uint8_t)family,
                        .protocol = IPPROTO_TCP,
                        .state = TCP_TIME_WAIT,
                        .local_port = 40000,
                        .remote_port = 443,
                        .expires_ms = expires_ms};
  ck_assert_int_eq(inet_pton(family, local, sock.local_addr), 1);
  ck_assert_int_eq(inet_pton(family, remote, sock.remote_addr), 1);
  return sock;
}

static const tcp_reuse_sysctls_t reuse_default = {2, 1000, true};
static const tcp_reuse_sysctls_t reuse_on = {1, 1000, true};
static const tcp_reuse_sysctls_t reuse_off = {0, 1000, true};
static const tcp_reuse_sysctls_t no_timestamps = {1, 1000, false};

#define OLD 50000 /* 10 s old */

START_TEST(test_reuse_2_is_loopback_only) {
  inet_socket_t v4 = time_wait("127.0.0.1", "127.0.0.1", OLD);
  inet_socket_t v4_remote_only = time_wait("10.0.0.2", "127.0.0.9", OLD);
  inet_socket_t v6 = time_wait("::1", "::1", OLD);
  inet_socket_t mapped = time_wait("::ffff:127.0.0.1", "::ffff:127.0.0.2", OLD);
  inet_socket_t outside = time_wait("10.0.0.2", "203.0.113.7", OLD);
  inet_socket_t outside6 = time_wait("2001:db8::2", "2001:db8::7", OLD);
  inet_socket_t mapped_outside =
      time_wait("::ffff:10.0.0.2", "::ffff:203.0.113.7", OLD);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &v4), TW_TAKEN_OVER);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &v4_remote_only),
                   TW_TAKEN_OVER);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &v6), TW_TAKEN_OVER);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &mapped), TW_TAKEN_OVER);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &outside), TW_HELD);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &outside6), TW_HELD);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &mapped_outside), TW_HELD);
  /* Bound to lo (ifindex 1) counts as loopback whatever the addresses. */
  outside.bound_if = 1;
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &outside), TW_TAKEN_OVER);
  outside.bound_if = 2;
  ck_assert_int_eq(tw_reuse_verdict(&reuse_default, &outside), TW_HELD);
}
END_TEST

START_TEST(test_reuse_1_elsewhere_waits_on_timestamps) {
  inet_socket_t loopback = time_wait("127.0.0.1", "127.0.0.1", OLD);
  inet_socket_t outside = time_wait("10.0.0.2", "203.0.113.7", OLD);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_on, &loopback), TW_TAKEN_OVER);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_on, &outside),
                   TW_TAKEN_OVER_IF_TIMESTAMPS);
  ck_assert(tw_reuse_needs_tcp_info(&reuse_on));
  ck_assert(!tw_reuse_needs_tcp_info(&reuse_default));
  ck_assert(!tw_reuse_needs_tcp_info(&reuse_off));
  ck_assert(!tw_reuse_needs_tcp_info(&no_timestamps));
}
END_TEST

START_TEST(test_off_or_without_timestamps_holds) {
  inet_socket_t loopback = time_wait("127.0.0.1", "127.0.0.1", OLD);
  ck_assert_int_eq(tw_reuse_verdict(&reuse_off, &loopback), TW_HELD);
  ck_assert_int_eq(tw_reuse_verdict(&no_timestamps, &loopback), TW_HELD);
}
END_TEST

/* Older than the delay by more than the margin, strictly. */
START_TEST(test_age_against_delay) {
  const tcp_reuse_sysctls_t delay = {2, 4000, true};
  uint32_t boundary = TW_LENGTH_MS - 4000 - TW_AGE_MARGIN_MS;
  inet_socket_t tw = time_wait("127.0.0.1", "127.0.0.1", boundary);
  ck_assert_int_eq(tw_reuse_verdict(&delay, &tw), TW_HELD);
  tw.expires_ms = boundary - 1;
  ck_assert_int_eq(tw_reuse_verdict(&delay, &tw), TW_TAKEN_OVER);
  tw.expires_ms = TW_LENGTH_MS; /* just entered */
  ck_assert_int_eq(tw_reuse_verdict(&delay, &tw), TW_HELD);
  tw.expires_ms = TW_LENGTH_MS + 30000; /* a timer longer than 60 s */
  ck_assert_int_eq(tw_reuse_verdict(&delay, &tw), TW_HELD);
  tw.expires_ms = 0;
  ck_assert_int_eq(tw_reuse_verdict(&delay, &tw), TW_TAKEN_OVER);
  const tcp_reuse_sysctls_t huge = {2, UINT32_MAX, true};
  ck_assert_int_eq(tw_reuse_verdict(&huge, &tw), TW_HELD);
}
END_TEST

START_TEST(test_what_tells_timestamps) {
  inet_socket_t sock = time_wait("10.0.0.2", "203.0.113.7", 0);
  sock.timestamps = INET_TIMESTAMPS_YES;
  static const uint8_t telling[] = {TCP_ESTABLISHED, TCP_FIN_WAIT1,
                                    TCP_FIN_WAIT2,   TCP_CLOSE_WAIT,
                                    TCP_LAST_ACK,    TCP_CLOSING};
  for (size_t i = 0; i < COUNT(telling); i++) {
    sock.state = telling[i];
    ck_assert(tw_reuse_tells_timestamps(&sock));
  }
  static const uint8_t silent[] = {TCP_SYN_SENT, TCP_SYN_RECV, TCP_TIME_WAIT,
                                   TCP_LISTEN, INET_TCP_NEW_SYN_RECV};
  for (size_t i = 0; i < COUNT(silent); i++) {
    sock.state = silent[i];
    ck_assert(!tw_reuse_tells_timestamps(&sock));
  }
  sock.state = TCP_ESTABLISHED;
  sock.timestamps = INET_TIMESTAMPS_UNKNOWN;
  ck_assert(!tw_reuse_tells_timestamps(&sock));
}
END_TEST

int main(void) {
  Suite *suite = suite_create("tw_reuse");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_reuse_2_is_loopback_only);
  tcase_add_test(tc, test_reuse_1_elsewhere_waits_on_timestamps);
  tcase_add_test(tc, test_off_or_without_timestamps_holds);
  tcase_add_test(tc, test_age_against_delay);
  tcase_add_test(tc, test_what_tells_timestamps);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
