#include "fixtures.h"
#include "kernel/cgroup_mount.h"
#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root[PATH_MAX];
static char err[512];
static cgroup_mount_t mount;

/* Points root at tests/fixtures/proc/<name>. */
static const char *fixture_root(const char *name) {
  return fixture_proc_root(root, name);
}

static int find(const char *name) {
  err[0] = '\0';
  memset(&mount, 0x55, sizeof(mount));
  return cgroup_mount_find(fixture_root(name), &mount, err, sizeof(err));
}

static void assert_found(const char *name, const char *path,
                         const char *hierarchy_root) {
  int rc = find(name);
  ck_assert_msg(rc == 0, "%s: %d %s", name, rc, err);
  ck_assert_str_eq(mount.path, path);
  ck_assert_str_eq(mount.root, hierarchy_root);
}

START_TEST(unified_host) {
  assert_found("cgroup_unified", "/sys/fs/cgroup", "/");
}
END_TEST

START_TEST(hybrid_host) {
  assert_found("cgroup_hybrid", "/sys/fs/cgroup/unified", "/");
}
END_TEST

START_TEST(escaped_mount_point) {
  assert_found("cgroup_escaped_path", "/run/cgroup v2\ttab\\back", "/");
}
END_TEST

START_TEST(whole_hierarchy_preferred) {
  /* A container's own subtree first, then two mounts of the whole: the
   * first of those. */
  assert_found("cgroup_subtree_then_whole", "/host/sys/fs/cgroup", "/");
}
END_TEST

START_TEST(subtree_only) {
  assert_found("cgroup_subtree_only", "/sys/fs/cgroup",
               "/system.slice/docker-0123abcd.scope");
}
END_TEST

START_TEST(line_of_10_kib) {
  assert_found("cgroup_long_line", "/sys/fs/cgroup", "/");
}
END_TEST

START_TEST(no_final_newline) {
  assert_found("cgroup_no_final_newline", "/sys/fs/cgroup", "/");
}
END_TEST

START_TEST(v1_only_host) {
  ck_assert_int_eq(find("cgroup_v1_only"), -ENOENT);
  ck_assert_msg(strstr(err, "no cgroup2 mount") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "cgroup_v1_only/self/mountinfo") != NULL, "%s",
                err);
}
END_TEST

START_TEST(empty_file) { ck_assert_int_eq(find("cgroup_empty"), -ENOENT); }
END_TEST

START_TEST(missing_file) {
  ck_assert_int_eq(find("sysctl_default"), -ENOENT);
  ck_assert_msg(strstr(err, "No such file or directory") != NULL, "%s", err);
}
END_TEST

START_TEST(path_too_long_for_buffer) {
  char long_root[PATH_MAX];
  memset(long_root, 'a', sizeof(long_root) - 1);
  long_root[sizeof(long_root) - 1] = '\0';
  ck_assert_int_eq(cgroup_mount_find(long_root, &mount, err, sizeof(err)),
                   -ENAMETOOLONG);
}
END_TEST

/* Each has one bad line, the second, before a good cgroup2 line: the whole
 * file is rejected, the line and the reason named. */
static const struct {
  const char *name;
  const char *reason;
} malformed[] = {
    {"cgroup_malformed_no_separator", "line 2: no separator"},
    {"cgroup_malformed_too_few_fields",
     "line 2: too few fields before the separator"},
    {"cgroup_malformed_after_separator",
     "line 2: too few fields after the separator"},
    {"cgroup_malformed_mount_id", "line 2: mount id, parent id or device"},
    {"cgroup_malformed_device", "line 2: mount id, parent id or device"},
    {"cgroup_malformed_empty_field", "line 2: empty field"},
    {"cgroup_malformed_nul_escape", "line 2: bad escape or path too long"},
    {"cgroup_malformed_nul_byte", "line 2: NUL byte"},
    {"cgroup_malformed_blank_line", "line 2: empty field"},
    {"cgroup_malformed_no_fields_before", "line 2: too few fields before"},
    {"cgroup_malformed_path_too_long", "line 1: bad escape or path too long"},
};

START_TEST(malformed_file) {
  int rc = find(malformed[_i].name);
  ck_assert_msg(rc == -EINVAL, "%s: %d", malformed[_i].name, rc);
  ck_assert_msg(strstr(err, malformed[_i].reason) != NULL, "%s: \"%s\"",
                malformed[_i].name, err);
}
END_TEST

static int parse_text(const char *text) {
  FILE *file = fmemopen((void *)text, strlen(text), "r");
  ck_assert_ptr_nonnull(file);
  err[0] = '\0';
  int rc = cgroup_mount_parse(file, &mount, err, sizeof(err));
  fclose(file);
  return rc;
}

START_TEST(escapes) {
  /* Backslash and three octal digits is that byte; anything else stays. */
  ck_assert_int_eq(
      parse_text("1 2 0:3 /a\\134b\\ /m\\040x\\12\\0400\\777 rw - cgroup2 c "
                 "rw\n"),
      0);
  ck_assert_str_eq(mount.root, "/a\\b\\");
  ck_assert_str_eq(mount.path, "/m x\\12 0\\777");
}
END_TEST

START_TEST(tags_and_only_cgroup2) {
  /* "cgroup" (v1) is not it; tags between options and "-" are skipped;
   * a tag named "-"-like but longer is a tag. */
  ck_assert_int_eq(parse_text("1 2 0:3 / /v1 rw shared:1 - cgroup c rw,cpu\n"
                              "4 2 0:5 / /v2 rw shared:2 master:1 -x "
                              "propagate_from:3 - cgroup2 c rw\n"),
                   0);
  ck_assert_str_eq(mount.path, "/v2");
}
END_TEST

START_TEST(bad_line_after_found) {
  /* A malformed line is an error even after the mount was found. */
  ck_assert_int_eq(parse_text("1 2 0:3 / /v2 rw - cgroup2 c rw\ngarbage\n"),
                   -EINVAL);
  ck_assert_msg(strstr(err, "line 2") != NULL, "%s", err);
}
END_TEST

START_TEST(this_machine) {
  /* The real file parses, and what it names is a cgroup2 directory. */
  char own_err[512];
  int rc = cgroup_mount_find("/proc", &mount, own_err, sizeof(own_err));
  ck_assert_msg(rc == 0 || rc == -ENOENT, "%d %s", rc, own_err);
  if (rc == 0) {
    struct stat st;
    ck_assert_int_eq(stat(mount.path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    char controllers[PATH_MAX + 32];
    snprintf(controllers, sizeof(controllers), "%s/cgroup.controllers",
             mount.path);
    ck_assert_int_eq(stat(controllers, &st), 0);
  }
}
END_TEST

static Suite *cgroup_mount_suite(void) {
  Suite *s = suite_create("cgroup_mount");
  TCase *tc = tcase_create("find");
  tcase_add_test(tc, unified_host);
  tcase_add_test(tc, hybrid_host);
  tcase_add_test(tc, escaped_mount_point);
  tcase_add_test(tc, whole_hierarchy_preferred);
  tcase_add_test(tc, subtree_only);
  tcase_add_test(tc, line_of_10_kib);
  tcase_add_test(tc, no_final_newline);
  tcase_add_test(tc, v1_only_host);
  tcase_add_test(tc, empty_file);
  tcase_add_test(tc, missing_file);
  tcase_add_test(tc, path_too_long_for_buffer);
  tcase_add_loop_test(tc, malformed_file, 0, (int)COUNT(malformed));
  tcase_add_test(tc, escapes);
  tcase_add_test(tc, tags_and_only_cgroup2);
  tcase_add_test(tc, bad_line_after_found);
  tcase_add_test(tc, this_machine);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(cgroup_mount_suite()); }
