#include "kernel/sysctl_tcp.h"

#include "fixtures.h"
#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char root[PATH_MAX];
static char err[512];

static const char *fixture_root(const char *name) {
  return fixture_proc_root(root, name);
}

START_TEST(test_read_default) {
  tcp_reuse_sysctls_t got = {9, 9, false};
  ck_assert_int_eq(sysctl_read_tcp_reuse(fixture_root("tcp_reuse_default"),
                                         &got, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(got.tw_reuse, 2);
  ck_assert_uint_eq(got.tw_reuse_delay_ms, 1000);
  ck_assert(got.timestamps);
}
END_TEST

START_TEST(test_read_before_6_13) {
  tcp_reuse_sysctls_t got = {9, 9, false};
  ck_assert_int_eq(sysctl_read_tcp_reuse(fixture_root("tcp_reuse_before_6_13"),
                                         &got, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(got.tw_reuse, 1);
  ck_assert_uint_eq(got.tw_reuse_delay_ms, TCP_TW_REUSE_DELAY_OLD_MS);
  ck_assert(got.timestamps); /* 2: timestamps without random offsets */
}
END_TEST

START_TEST(test_read_missing_means_off) {
  tcp_reuse_sysctls_t got = {9, 9, true};
  strcpy(err, "stale");
  ck_assert_int_eq(sysctl_read_tcp_reuse(fixture_root("tcp_reuse_missing"),
                                         &got, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(got.tw_reuse, 0);
  ck_assert(!got.timestamps);
  ck_assert_str_eq(err, "");
}
END_TEST

static const char *const malformed[][2] = {
    {"tcp_reuse_malformed_reuse", "tcp_tw_reuse"},
    {"tcp_reuse_malformed_delay", "tcp_tw_reuse_delay"},
    {"tcp_reuse_malformed_timestamps", "tcp_timestamps"},
    {"tcp_reuse_empty", "tcp_tw_reuse"},
};

START_TEST(test_read_malformed) {
  tcp_reuse_sysctls_t got = {9, 9, true};
  err[0] = '\0';
  ck_assert_int_eq(sysctl_read_tcp_reuse(fixture_root(malformed[_i][0]), &got,
                                         err, sizeof(err)),
                   -EINVAL);
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/sys/net/ipv4/%s:", root, malformed[_i][1]);
  ck_assert_msg(strstr(err, path) != NULL, "\"%s\" does not name %s", err,
                path);
  ck_assert_ptr_nonnull(strstr(err, "malformed"));
  ck_assert_uint_eq(got.tw_reuse, 9); /* untouched */
}
END_TEST

int main(void) {
  Suite *suite = suite_create("sysctl_tcp");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_read_default);
  tcase_add_test(tc, test_read_before_6_13);
  tcase_add_test(tc, test_read_missing_means_off);
  tcase_add_loop_test(tc, test_read_malformed, 0, COUNT(malformed));
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
