#include "fixtures.h"
#include "kernel/sysctl_ports.h"
#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];
static char err[512];

/* Points root at tests/fixtures/proc/<name>. */
static const char *fixture_root(const char *name) {
  return fixture_proc_root(root, name);
}

static void assert_err_names(const char *file) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/sys/net/ipv4/%s", root, file);
  ck_assert_msg(strstr(err, path) != NULL, "error \"%s\" does not name %s", err,
                path);
}

static void assert_text_range(const char *text, unsigned low, unsigned high) {
  uint16_t got_low = 0, got_high = 0;
  ck_assert_msg(port_range_text_parse(text, &got_low, &got_high) == 0,
                "\"%s\" was rejected", text);
  ck_assert_uint_eq(got_low, low);
  ck_assert_uint_eq(got_high, high);
}

START_TEST(test_text_kernel_format) {
  assert_text_range("32768\t60999\n", 32768, 60999);
  assert_text_range("32768\t60999", 32768, 60999);
  assert_text_range("1024 65535\n", 1024, 65535);
  assert_text_range("40000 \t 40019\n", 40000, 40019);
  assert_text_range("1\t65535\n", 1, 65535);
  assert_text_range("5000\t5000\n", 5000, 5000);
}
END_TEST

static const char *const malformed_texts[] = {"",
                                              "\n",
                                              "32768",
                                              "32768\n",
                                              "0\t0\n",
                                              "0\t100\n",
                                              "60999\t32768\n",
                                              "65536\t70000\n",
                                              "1\t65536\n",
                                              "garbage\n",
                                              "32768\t60999\t1\n",
                                              "32768-60999\n",
                                              " 32768\t60999\n",
                                              "32768\t60999\n\n",
                                              "32768\t60999 \n",
                                              "-1\t5\n",
                                              "32768\t0x1000\n",
                                              "32768,60999\n"};

START_TEST(test_text_rejects_malformed) {
  uint16_t low = 7, high = 7;
  const char *text = malformed_texts[_i];
  ck_assert_msg(port_range_text_parse(text, &low, &high) == -1,
                "\"%s\" was accepted", text);
  ck_assert_uint_eq(low, 7);
  ck_assert_uint_eq(high, 7);
}
END_TEST

START_TEST(test_read_range_default) {
  uint16_t low = 0, high = 0;
  ck_assert_int_eq(sysctl_read_port_range(fixture_root("sysctl_default"), &low,
                                          &high, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(low, 32768);
  ck_assert_uint_eq(high, 60999);
}
END_TEST

START_TEST(test_read_range_full) {
  uint16_t low = 0, high = 0;
  ck_assert_int_eq(sysctl_read_port_range(fixture_root("sysctl_range_full"),
                                          &low, &high, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(low, 1);
  ck_assert_uint_eq(high, 65535);
}
END_TEST

START_TEST(test_read_range_small) {
  uint16_t low = 0, high = 0;
  ck_assert_int_eq(
      sysctl_read_port_range(fixture_root("sysctl_no_reserved_file"), &low,
                             &high, err, sizeof(err)),
      0);
  ck_assert_uint_eq(low, 40000);
  ck_assert_uint_eq(high, 40019);
}
END_TEST

static const char *const malformed_range_cases[] = {
    "sysctl_range_reversed",    "sysctl_range_zero",  "sysctl_range_too_big",
    "sysctl_range_garbage",     "sysctl_range_empty", "sysctl_range_nul",
    "sysctl_range_extra_token",
};

START_TEST(test_read_range_malformed) {
  uint16_t low = 7, high = 7;
  err[0] = '\0';
  ck_assert_int_eq(
      sysctl_read_port_range(fixture_root(malformed_range_cases[_i]), &low,
                             &high, err, sizeof(err)),
      -EINVAL);
  assert_err_names("ip_local_port_range");
  ck_assert_ptr_nonnull(strstr(err, "malformed"));
}
END_TEST

START_TEST(test_read_range_missing_file) {
  uint16_t low = 7, high = 7;
  err[0] = '\0';
  ck_assert_int_eq(sysctl_read_port_range(fixture_root("sysctl_no_range_file"),
                                          &low, &high, err, sizeof(err)),
                   -ENOENT);
  assert_err_names("ip_local_port_range");
  ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
}
END_TEST

START_TEST(test_read_range_missing_root) {
  uint16_t low = 7, high = 7;
  ck_assert_int_eq(sysctl_read_port_range(fixture_root("no_such_case"), &low,
                                          &high, err, sizeof(err)),
                   -ENOENT);
  assert_err_names("ip_local_port_range");
}
END_TEST

static portset_t reserved;

START_TEST(test_read_reserved_empty) {
  portset_add(&reserved, 1234); /* must be cleared by the read */
  ck_assert_int_eq(sysctl_read_reserved_ports(fixture_root("sysctl_default"),
                                              &reserved, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(portset_count(&reserved), 0);
}
END_TEST

START_TEST(test_read_reserved_list) {
  ck_assert_int_eq(sysctl_read_reserved_ports(fixture_root("sysctl_reserved"),
                                              &reserved, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(portset_count(&reserved), 12);
  ck_assert(portset_has(&reserved, 8080));
  ck_assert_int_eq(portset_next(&reserved, 0), 8080);
  ck_assert_int_eq(portset_next(&reserved, 8081), 9000);
  ck_assert_uint_eq(portset_count_range(&reserved, 9000, 9010), 11);
  ck_assert_int_eq(portset_next(&reserved, 9011), -1);
}
END_TEST

START_TEST(test_read_reserved_port_zero) {
  /* The kernel accepts 0 in ip_local_reserved_ports ("0" reads back "0"). */
  ck_assert_int_eq(
      sysctl_read_reserved_ports(fixture_root("sysctl_reserved_zero"),
                                 &reserved, err, sizeof(err)),
      0);
  ck_assert_uint_eq(portset_count(&reserved), 4);
  ck_assert(portset_has(&reserved, 0));
  ck_assert(portset_has(&reserved, 1));
  ck_assert(portset_has(&reserved, 2));
  ck_assert(portset_has(&reserved, 65535));
}
END_TEST

START_TEST(test_read_reserved_missing_file_means_none) {
  portset_add(&reserved, 1234);
  ck_assert_int_eq(
      sysctl_read_reserved_ports(fixture_root("sysctl_no_reserved_file"),
                                 &reserved, err, sizeof(err)),
      0);
  ck_assert_uint_eq(portset_count(&reserved), 0);
}
END_TEST

static const char *const malformed_reserved_cases[] = {
    "sysctl_reserved_open_range", "sysctl_reserved_reversed",
    "sysctl_reserved_too_big",    "sysctl_reserved_commas",
    "sysctl_reserved_garbage",
};

START_TEST(test_read_reserved_malformed) {
  err[0] = '\0';
  ck_assert_int_eq(
      sysctl_read_reserved_ports(fixture_root(malformed_reserved_cases[_i]),
                                 &reserved, err, sizeof(err)),
      -EINVAL);
  assert_err_names("ip_local_reserved_ports");
  ck_assert_ptr_nonnull(strstr(err, "malformed"));
}
END_TEST

/* Writes a reserved-ports file of "1,1,...,1\n" with exactly size bytes into
 * a fresh root under the temp dir, and points root at it. */
static void make_reserved_file(size_t size) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof(root), "%s/test_sysctl_ports.XXXXXX",
           tmp ? tmp : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(root));
  char path[PATH_MAX + 64];
  const char *dirs[] = {"/sys", "/sys/net", "/sys/net/ipv4"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
    ck_assert_int_eq(mkdir(path, 0700), 0);
  }
  snprintf(path, sizeof(path), "%s/sys/net/ipv4/ip_local_reserved_ports", root);
  FILE *file = fopen(path, "w");
  ck_assert_ptr_nonnull(file);
  const char *tail = size % 2 ? "11\n" : "1\n";
  for (size_t i = 0; i < (size - strlen(tail)) / 2; i++)
    fputs("1,", file);
  fputs(tail, file);
  ck_assert_int_eq(fclose(file), 0);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq((size_t)st.st_size, size);
}

static void remove_reserved_file(void) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/sys/net/ipv4/ip_local_reserved_ports", root);
  unlink(path);
  const char *dirs[] = {"/sys/net/ipv4", "/sys/net", "/sys", ""};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
    rmdir(path);
  }
}

START_TEST(test_read_reserved_64k_is_accepted) {
  make_reserved_file(64 * 1024);
  int status = sysctl_read_reserved_ports(root, &reserved, err, sizeof(err));
  remove_reserved_file();
  ck_assert_int_eq(status, 0);
  ck_assert_uint_eq(portset_count(&reserved), 1);
  ck_assert(portset_has(&reserved, 1));
}
END_TEST

START_TEST(test_read_reserved_over_64k_is_malformed) {
  make_reserved_file(64 * 1024 + 1);
  err[0] = '\0';
  int status = sysctl_read_reserved_ports(root, &reserved, err, sizeof(err));
  remove_reserved_file();
  ck_assert_int_eq(status, -EINVAL);
  assert_err_names("ip_local_reserved_ports");
  ck_assert_ptr_nonnull(strstr(err, "longer than 65536 bytes"));
}
END_TEST

START_TEST(test_read_err_is_truncated_not_overflowed) {
  char small[8];
  memset(small, 'x', sizeof(small));
  uint16_t low, high;
  ck_assert_int_eq(sysctl_read_port_range(fixture_root("sysctl_range_garbage"),
                                          &low, &high, small, 4),
                   -EINVAL);
  char expected[4] = {root[0], root[1], root[2], '\0'};
  ck_assert_str_eq(small, expected);
  ck_assert_int_eq(small[4], 'x');
}
END_TEST

static void clear_reserved(void) { portset_clear(&reserved); }

static Suite *sysctl_ports_suite(void) {
  Suite *suite = suite_create("sysctl_ports");
  TCase *text = tcase_create("port_range_text_parse");
  tcase_add_test(text, test_text_kernel_format);
  tcase_add_loop_test(text, test_text_rejects_malformed, 0,
                      COUNT(malformed_texts));
  suite_add_tcase(suite, text);

  TCase *range = tcase_create("sysctl_read_port_range");
  tcase_add_test(range, test_read_range_default);
  tcase_add_test(range, test_read_range_full);
  tcase_add_test(range, test_read_range_small);
  tcase_add_loop_test(range, test_read_range_malformed, 0,
                      COUNT(malformed_range_cases));
  tcase_add_test(range, test_read_range_missing_file);
  tcase_add_test(range, test_read_range_missing_root);
  tcase_add_test(range, test_read_err_is_truncated_not_overflowed);
  suite_add_tcase(suite, range);

  TCase *res = tcase_create("sysctl_read_reserved_ports");
  tcase_add_checked_fixture(res, clear_reserved, NULL);
  tcase_add_test(res, test_read_reserved_empty);
  tcase_add_test(res, test_read_reserved_list);
  tcase_add_test(res, test_read_reserved_port_zero);
  tcase_add_test(res, test_read_reserved_missing_file_means_none);
  tcase_add_loop_test(res, test_read_reserved_malformed, 0,
                      COUNT(malformed_reserved_cases));
  tcase_add_test(res, test_read_reserved_64k_is_accepted);
  tcase_add_test(res, test_read_reserved_over_64k_is_malformed);
  suite_add_tcase(suite, res);
  return suite;
}

int main(void) { return run_suite(sysctl_ports_suite()); }
