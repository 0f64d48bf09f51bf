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

static const struct {
  const char *fixture;
  long entries;
} ehash_good[] = {
    {"tcp_ehash_shared", -262144},
    {"tcp_ehash_own", 1024},
    {"tcp_ehash_no_newline", 4096},
};

START_TEST(test_ehash_entries) {
  long entries = 7;
  ck_assert_int_eq(
      sysctl_read_tcp_ehash_entries(fixture_root(ehash_good[_i].fixture),
                                    &entries, err, sizeof(err)),
      0);
  ck_assert_int_eq(entries, ehash_good[_i].entries);
}
END_TEST

START_TEST(test_ehash_entries_missing) {
  long entries = 7;
  ck_assert_int_eq(
      sysctl_read_tcp_ehash_entries(fixture_root("tcp_ehash_missing"), &entries,
                                    err, sizeof(err)),
      -ENOENT);
  ck_assert_int_eq(entries, 7);
}
END_TEST

static const char *const ehash_malformed[] = {
    "tcp_ehash_malformed", "tcp_ehash_empty", "tcp_ehash_too_big"};

START_TEST(test_ehash_entries_malformed) {
  long entries = 7;
  const char *proc_root = fixture_root(ehash_malformed[_i]);
  ck_assert_int_eq(
      sysctl_read_tcp_ehash_entries(proc_root, &entries, err, sizeof(err)),
      -EINVAL);
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof(expected),
           "%s/sys/net/ipv4/tcp_ehash_entries: malformed (expected a number)",
           proc_root);
  ck_assert_str_eq(err, expected);
  ck_assert_int_eq(entries, 7);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("sysctl_tcp");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_read_default);
  tcase_add_test(tc, test_read_before_6_13);
  tcase_add_test(tc, test_read_missing_means_off);
  tcase_add_loop_test(tc, test_read_malformed, 0, COUNT(malformed));
  tcase_add_loop_test(tc, test_ehash_entries, 0, COUNT(ehash_good));
  tcase_add_test(tc, test_ehash_entries_missing);
  tcase_add_loop_test(tc, test_ehash_entries_malformed, 0,
                      COUNT(ehash_malformed));
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
