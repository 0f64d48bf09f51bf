#include "kernel/sysctl_file.h"

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

START_TEST(test_text) {
  uint32_t value = 7;
  ck_assert_int_eq(sysctl_uint_text_parse("0\n", 2, &value), 0);
  ck_assert_uint_eq(value, 0);
  ck_assert_int_eq(sysctl_uint_text_parse("2", 2, &value), 0);
  ck_assert_uint_eq(value, 2);
  ck_assert_int_eq(sysctl_uint_text_parse("4294967295\n", UINT32_MAX, &value),
                   0);
  ck_assert_uint_eq(value, UINT32_MAX);
  static const char *const bad[] = {"",   "\n",    "3",   "-1",         " 1",
                                    "1 ", "1\n\n", "0x1", "99999999999"};
  for (size_t i = 0; i < COUNT(bad); i++) {
    value = 7;
    ck_assert_msg(sysctl_uint_text_parse(bad[i], 2, &value) == -1,
                  "\"%s\" was accepted", bad[i]);
    ck_assert_uint_eq(value, 7);
  }
  ck_assert_int_eq(sysctl_uint_text_parse("4294967296", UINT32_MAX, &value),
                   -1);
}
END_TEST

START_TEST(test_read_uint) {
  uint32_t value = 7;
  bool missing = true;
  ck_assert_int_eq(sysctl_file_read_uint(fixture_root("tcp_reuse_default"),
                                         "sys/net/ipv4/tcp_tw_reuse_delay",
                                         UINT32_MAX, &value, &missing, err,
                                         sizeof(err)),
                   0);
  ck_assert_uint_eq(value, 1000);
  ck_assert(!missing);
  /* Above max: malformed, naming the file. */
  ck_assert_int_eq(sysctl_file_read_uint(fixture_root("tcp_reuse_default"),
                                         "sys/net/ipv4/tcp_tw_reuse_delay", 999,
                                         &value, &missing, err, sizeof(err)),
                   -EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "tcp_tw_reuse_delay: malformed"));
  ck_assert_uint_eq(value, 1000);
}
END_TEST

START_TEST(test_read_uint_missing) {
  uint32_t value = 7;
  bool missing = false;
  strcpy(err, "stale");
  ck_assert_int_eq(sysctl_file_read_uint(fixture_root("tcp_reuse_missing"),
                                         "sys/net/ipv4/tcp_tw_reuse", 2, &value,
                                         &missing, err, sizeof(err)),
                   0);
  ck_assert(missing);
  ck_assert_uint_eq(value, 7);
  ck_assert_str_eq(err, "");
  /* A directory where the file should be: the read error, named. */
  ck_assert_int_lt(sysctl_file_read_uint(fixture_root("tcp_reuse_missing"),
                                         "sys/net/ipv4", 2, &value, &missing,
                                         err, sizeof(err)),
                   0);
  ck_assert_ptr_nonnull(strstr(err, "sys/net/ipv4: cannot read"));
}
END_TEST

int main(void) {
  Suite *suite = suite_create("sysctl_file");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_text);
  tcase_add_test(tc, test_read_uint);
  tcase_add_test(tc, test_read_uint_missing);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
