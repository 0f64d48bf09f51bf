#include "kernel/sockstat.h"

#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char root[PATH_MAX];
static char err[512];

static const char *fixture(const char *name) {
  snprintf(root, sizeof(root), "%s/sockstat/%s", getenv("FIXTURES_DIR"), name);
  return root;
}

static const struct {
  const char *name;
  sockstat_t counts;
  bool tcp_empty, udp_empty;
} good[] = {
    {"real", {3, 1, 2, 1, 4}, false, false},
    {"empty", {0, 0, 0, 0, 0}, true, true},
    {"time_wait_only", {0, 2, 0, 0, 0}, false, true},
    {"udp6_only", {0, 0, 0, 0, 1}, true, false},
    {"no_ipv6", {5, 6, 0, 9, 0}, false, false},
};

START_TEST(test_read) {
  sockstat_t got = {7, 7, 7, 7, 7};
  ck_assert_int_eq(
      sockstat_read(fixture(good[_i].name), &got, err, sizeof(err)), 0);
  ck_assert_uint_eq(got.tcp_inuse, good[_i].counts.tcp_inuse);
  ck_assert_uint_eq(got.tcp_tw, good[_i].counts.tcp_tw);
  ck_assert_uint_eq(got.tcp6_inuse, good[_i].counts.tcp6_inuse);
  ck_assert_uint_eq(got.udp_inuse, good[_i].counts.udp_inuse);
  ck_assert_uint_eq(got.udp6_inuse, good[_i].counts.udp6_inuse);
  ck_assert(sockstat_tcp_empty(&got) == good[_i].tcp_empty);
  ck_assert(sockstat_udp_empty(&got) == good[_i].udp_empty);
}
END_TEST

/* Each case: which file the ERROR names, and the error. */
static const struct {
  const char *name, *file;
  int error;
  const char *why;
} bad[] = {
    {"malformed_no_tw", "sockstat", -EINVAL,
     "malformed (no TCP or UDP counts)"},
    {"malformed_number", "sockstat", -EINVAL,
     "malformed (no TCP or UDP counts)"},
    {"malformed_negative", "sockstat", -EINVAL,
     "malformed (no TCP or UDP counts)"},
    {"malformed_no_udp", "sockstat", -EINVAL,
     "malformed (no TCP or UDP counts)"},
    {"malformed_dangling", "sockstat", -EINVAL,
     "malformed (no TCP or UDP counts)"},
    {"malformed6_no_udp6", "sockstat6", -EINVAL,
     "malformed (no TCP6 or UDP6 counts)"},
    {"malformed_nul", "sockstat", -EINVAL,
     "malformed (too long, or a NUL byte)"},
    {"too_long", "sockstat", -EINVAL, "malformed (too long, or a NUL byte)"},
    {"missing", "sockstat", -ENOENT, "No such file or directory"},
};

START_TEST(test_read_bad) {
  sockstat_t got = {7, 7, 7, 7, 7};
  const char *net_root = fixture(bad[_i].name);
  ck_assert_int_eq(sockstat_read(net_root, &got, err, sizeof(err)),
                   bad[_i].error);
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof(expected), "%s/net/%s: %s", net_root, bad[_i].file,
           bad[_i].why);
  ck_assert_str_eq(err, expected);
  ck_assert_uint_eq(got.tcp_inuse, 7); /* untouched */
  ck_assert_uint_eq(got.udp6_inuse, 7);
}
END_TEST

/* The text alone: the fields are found by name, in any order, on the line
 * of their protocol only. */
START_TEST(test_parse_text) {
  sockstat_t got;
  ck_assert_int_eq(sockstat_parse("UDP: mem 0 inuse 4\n"
                                  "TCP: tw 2 inuse 1\n",
                                  "UDP6: inuse 6\nTCP6: inuse 5", &got),
                   0);
  ck_assert_uint_eq(got.tcp_inuse, 1);
  ck_assert_uint_eq(got.tcp_tw, 2);
  ck_assert_uint_eq(got.udp_inuse, 4);
  ck_assert_uint_eq(got.tcp6_inuse, 5);
  ck_assert_uint_eq(got.udp6_inuse, 6);
  /* "UDPLITE:" is not "UDP:"; "inuse" on another line does not count. */
  ck_assert_int_eq(
      sockstat_parse("TCP: inuse 1 tw 0\nUDPLITE: inuse 3\n", NULL, &got), -1);
  ck_assert_int_eq(
      sockstat_parse("TCP: inuse 1\ntw 0\nUDP: inuse 0\n", NULL, &got), -1);
  ck_assert_int_eq(sockstat_parse("", NULL, &got), -1);
  ck_assert_int_eq(sockstat_parse("TCP: inuse 99999999999999999999999 tw 0\n"
                                  "UDP: inuse 0\n",
                                  NULL, &got),
                   -1);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("sockstat");
  TCase *tc = tcase_create("core");
  tcase_add_loop_test(tc, test_read, 0, COUNT(good));
  tcase_add_loop_test(tc, test_read_bad, 0, COUNT(bad));
  tcase_add_test(tc, test_parse_text);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
