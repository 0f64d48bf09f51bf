/* cgroup_names over a fake cgroup tree: a temporary tree of ordinary
 * directories, whose 8-byte file handles (ext4's inode and generation)
 * stand for cgroup ids, both by open_by_handle_at and by walking. */
#include "kernel/cgroup_mount.h"
#include "kernel/cgroup_names.h"
#include "kernel/cgroup_pseudo.h"
#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LONG_POD                                                               \
  "kubepods-burstable-pod0f4b5c1e_9a7d_4e2b_8c3f_1d2e3f4a5b6c.slice"
#define LONG_SCOPE                                                             \
  "cri-containerd-"                                                            \
  "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c.scope"
#define LONG_PATH                                                              \
  "/kubepods.slice/kubepods-burstable.slice/" LONG_POD "/" LONG_SCOPE

/* The tree, parents first; DIRS directories with the root. */
static const char *const tree[] = {
    "/system.slice",
    "/system.slice/nginx.service",
    "/system.slice/ssh.service",
    "/user.slice",
    "/user.slice/user-1000.slice",
    "/user.slice/user-1000.slice/session-1.scope",
    "/with space\\and\tescapes",
    "/kubepods.slice",
    "/kubepods.slice/kubepods-burstable.slice",
    "/kubepods.slice/kubepods-burstable.slice/"
    "" LONG_POD,
    LONG_PATH};
#define DIRS (COUNT(tree) + 1)

static char base[PATH_MAX]; /* the tree's root, a canonical path */
static uint64_t gone_id;    /* a directory's, removed before the test */
static cgroup_names_t *names;
static char name[CGROUP_NAME_SIZE];
static char err[256];

/* The id of base + path, straight from name_to_handle_at. */
static uint64_t id_of(const char *path) {
  char full[2 * PATH_MAX];
  snprintf(full, sizeof(full), "%s%s", base, path);
  union {
    struct file_handle handle;
    char bytes[sizeof(struct file_handle) + 8];
  } buf = {.handle.handle_bytes = 8};
  int mount_id;
  ck_assert_msg(name_to_handle_at(AT_FDCWD, full, &buf.handle, &mount_id, 0) ==
                    0,
                "%s: %s", full, strerror(errno));
  ck_assert_uint_eq(buf.handle.handle_bytes, 8);
  uint64_t id;
  memcpy(&id, buf.handle.f_handle, sizeof(id));
  return id;
}

/* A temporary directory on a file system with 8-byte handles (ext4; not
 * tmpfs, whose are 12). */
static void make_base(void) {
  const char *candidates[] = {getenv("TMPDIR"), "/tmp", "/var/tmp", "."};
  for (size_t i = 0; i < COUNT(candidates); i++) {
    char templ[PATH_MAX];
    if (candidates[i] == NULL)
      continue;
    snprintf(templ, sizeof(templ), "%s/cgroup_names.XXXXXX", candidates[i]);
    if (mkdtemp(templ) == NULL)
      continue;
    ck_assert_ptr_nonnull(realpath(templ, base));
    union {
      struct file_handle handle;
      char bytes[sizeof(struct file_handle) + 8];
    } buf = {.handle.handle_bytes = 8};
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, base, &buf.handle, &mount_id, 0) == 0)
      return;
    rmdir(base);
  }
  ck_abort_msg("no temporary directory with 8-byte file handles");
}

static void setup(void) {
  make_base();
  char full[2 * PATH_MAX];
  for (size_t i = 0; i < COUNT(tree); i++) {
    snprintf(full, sizeof(full), "%s%s", base, tree[i]);
    ck_assert_msg(mkdir(full, 0755) == 0, "%s: %s", full, strerror(errno));
  }
  snprintf(full, sizeof(full), "%s/removed", base);
  ck_assert_int_eq(mkdir(full, 0755), 0);
  gone_id = id_of("/removed");
  ck_assert_int_eq(rmdir(full), 0);
  /* A file is not a group: the walk does not count it. */
  snprintf(full, sizeof(full), "%s/system.slice/cgroup.procs", base);
  int fd = open(full, O_CREAT | O_WRONLY, 0644);
  ck_assert_int_ge(fd, 0);
  close(fd);
  names = NULL;
}

static void teardown(void) {
  cgroup_names_free(names);
  char full[2 * PATH_MAX];
  snprintf(full, sizeof(full), "%s/system.slice/cgroup.procs", base);
  unlink(full);
  for (size_t i = COUNT(tree); i-- > 0;) {
    snprintf(full, sizeof(full), "%s%s", base, tree[i]);
    rmdir(full);
  }
  rmdir(base);
}

static void start(bool walk_only, unsigned budget, const char *root) {
  cgroup_names_config_t config = {.mount_path = base,
                                  .mount_root = root,
                                  .budget = budget,
                                  .walk_only = walk_only};
  names = cgroup_names_new(&config);
  ck_assert_ptr_nonnull(names);
  cgroup_names_begin_read(names);
}

static int lookup(uint64_t id) {
  memset(name, 0, sizeof(name));
  return cgroup_names_lookup(names, id, name);
}

static int resolve(void) {
  err[0] = '\0';
  return cgroup_names_resolve(names, err, sizeof(err));
}

static void assert_named(const char *path, const char *want) {
  ck_assert_int_eq(lookup(id_of(path)), 0);
  ck_assert_str_eq(name, want);
}

/* Asks for every group and the removed one, resolves in one read, and
 * checks every name. */
static void resolve_all(const char *prefix) {
  ck_assert_int_eq(lookup(id_of("")), -EAGAIN);
  for (size_t i = 0; i < COUNT(tree); i++)
    ck_assert_int_eq(lookup(id_of(tree[i])), -EAGAIN);
  ck_assert_int_eq(lookup(gone_id), -EAGAIN);
  ck_assert_int_eq(resolve(), 0);

  char want[2 * PATH_MAX], cut[CGROUP_NAME_SIZE];
  snprintf(want, sizeof(want), "%s", prefix[0] != '\0' ? prefix : "/");
  assert_named("", want);
  for (size_t i = 0; i < COUNT(tree); i++) {
    snprintf(want, sizeof(want), "%s%s", prefix, tree[i]);
    cgroup_name_format(want, cut);
    assert_named(tree[i], cut);
  }
  ck_assert_int_eq(lookup(gone_id), -ENOENT);
  ck_assert_int_eq(resolve(), 0); /* nothing left to do */
}

START_TEST(by_handle) {
  start(false, 0, NULL);
  resolve_all("");
  ck_assert_int_eq(cgroup_names_handle_error(names), 0);
  assert_named("/system.slice/nginx.service", "/system.slice/nginx.service");
  assert_named("/with space\\and\tescapes", "/with space\\and\tescapes");
  ck_assert_int_eq(lookup(id_of(LONG_PATH)), 0);
  ck_assert_str_eq(name, "...a61d4211991f8ad9/" LONG_SCOPE);
}
END_TEST

/* Once per read the cache looks whether a named group is still there. */
static void verify_removal(bool walk_only) {
  start(walk_only, 0, NULL);
  resolve_all("");
  uint64_t ssh = id_of("/system.slice/ssh.service");
  uint64_t nginx = id_of("/system.slice/nginx.service");
  ck_assert_int_eq(cgroup_names_verify(names, ssh), 0);
  char path[2 * PATH_MAX];
  snprintf(path, sizeof(path), "%s/system.slice/ssh.service", base);
  ck_assert_int_eq(rmdir(path), 0);
  /* Looked at once in a read: the removal shows at the next. */
  ck_assert_int_eq(cgroup_names_verify(names, ssh), 0);
  cgroup_names_begin_read(names);
  ck_assert_int_eq(cgroup_names_verify(names, ssh), -ENOENT);
  ck_assert_int_eq(lookup(ssh), -ENOENT);
  ck_assert_int_eq(cgroup_names_verify(names, nginx), 0);
  ck_assert_int_eq(cgroup_names_verify(names, CGROUP_ID_UNKNOWN), 0);
  ck_assert_int_eq(cgroup_names_verify(names, 424242), -EAGAIN);
}

START_TEST(verify_by_handle) { verify_removal(false); }
END_TEST

START_TEST(verify_by_walk) { verify_removal(true); }
END_TEST

START_TEST(by_walk) {
  start(true, 0, NULL);
  resolve_all("");
  assert_named("/user.slice/user-1000.slice/session-1.scope",
               "/user.slice/user-1000.slice/session-1.scope");
}
END_TEST

START_TEST(subtree_mount) {
  start(false, 0, "/system.slice/docker-0123.scope");
  resolve_all("/system.slice/docker-0123.scope");
  assert_named("", "/system.slice/docker-0123.scope");
}
END_TEST

/* Without CAP_DAC_READ_SEARCH open_by_handle_at fails with EPERM: the walk
 * takes over at once. (check runs each test in a process of its own.) */
START_TEST(without_capability) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  ck_assert_int_eq(syscall(SYS_capget, &header, data), 0);
  data[CAP_DAC_READ_SEARCH / 32].effective &=
      ~(1u << (CAP_DAC_READ_SEARCH % 32));
  ck_assert_int_eq(syscall(SYS_capset, &header, data), 0);
  start(false, 0, NULL);
  resolve_all("");
  ck_assert_int_eq(cgroup_names_handle_error(names), EPERM);
}
END_TEST

START_TEST(walk_resumes_within_budget) {
  /* Two directories a read: DIRS take DIRS / 2 reads. The deepest group
   * cannot be met in the first; the removed one is gone when the pass
   * ends, and not before. */
  ck_assert_uint_eq(DIRS % 2, 0);
  start(true, 2, NULL);
  uint64_t deep = id_of(LONG_PATH);
  for (size_t read = 1; read <= DIRS / 2; read++) {
    if (read > 1)
      cgroup_names_begin_read(names);
    lookup(deep);
    ck_assert_int_eq(lookup(gone_id), -EAGAIN);
    int left = resolve();
    if (read == 1)
      ck_assert_int_eq(left, 2);
    else if (read < DIRS / 2)
      ck_assert_msg(left == 1 || left == 2, "read %zu: %d", read, left);
    else
      ck_assert_int_eq(left, 0);
  }
  ck_assert_int_eq(lookup(gone_id), -ENOENT);
  ck_assert_int_eq(lookup(deep), 0);
  ck_assert_str_eq(name, "...a61d4211991f8ad9/" LONG_SCOPE);
}
END_TEST

START_TEST(asked_mid_pass_waits_for_next_pass) {
  start(true, 2, NULL);
  uint64_t later = gone_id + 0x100000000ULL; /* another generation: no dir */
  size_t pass = DIRS / 2;
  for (size_t read = 1; read <= DIRS; read++) {
    if (read > 1)
      cgroup_names_begin_read(names);
    int first = lookup(gone_id);
    int second = read >= 2 ? lookup(later) : -EAGAIN;
    ck_assert_int_eq(first, read <= pass ? -EAGAIN : -ENOENT);
    ck_assert_int_eq(second, -EAGAIN);
    ck_assert_int_ge(resolve(), 0);
  }
  /* Both passes: 2 x DIRS directories, two a read. */
  ck_assert_int_eq(lookup(later), -ENOENT);
}
END_TEST

START_TEST(pseudo_groups) {
  start(false, 0, NULL);
  ck_assert_int_eq(lookup(CGROUP_ID_UNKNOWN), 0);
  ck_assert_str_eq(name, "unknown");
  ck_assert_int_eq(lookup(CGROUP_ID_TIME_WAIT), 0);
  ck_assert_str_eq(name, "time_wait");
  ck_assert_int_eq(lookup(CGROUP_ID_NONE), -EINVAL);
  ck_assert_int_eq(cgroup_names_lookup(names, CGROUP_ID_UNKNOWN, NULL), 0);
}
END_TEST

START_TEST(no_cgroup2_mount) {
  cgroup_names_config_t config = {.mount_path = NULL};
  names = cgroup_names_new(&config);
  ck_assert_ptr_nonnull(names);
  cgroup_names_begin_read(names);
  ck_assert_int_eq(lookup(1), -ENOENT);
  ck_assert_int_eq(resolve(), 0);
  ck_assert_int_eq(lookup(CGROUP_ID_TIME_WAIT), 0);
}
END_TEST

START_TEST(mount_missing) {
  char missing[PATH_MAX + 16];
  snprintf(missing, sizeof(missing), "%s/missing", base);
  cgroup_names_config_t config = {.mount_path = missing};
  names = cgroup_names_new(&config);
  cgroup_names_begin_read(names);
  ck_assert_int_eq(lookup(5), -EAGAIN);
  ck_assert_int_eq(resolve(), -ENOENT);
  ck_assert_msg(strstr(err, "/missing: No such file") != NULL, "%s", err);
  ck_assert_int_eq(lookup(5), -EAGAIN); /* still asked for */
}
END_TEST

START_TEST(mount_without_handles) {
  /* procfs gives no file handles: not a tree to resolve in. */
  cgroup_names_config_t config = {.mount_path = "/proc"};
  names = cgroup_names_new(&config);
  cgroup_names_begin_read(names);
  ck_assert_int_eq(lookup(5), -EAGAIN);
  ck_assert_int_eq(resolve(), -EOPNOTSUPP);
  ck_assert_msg(strstr(err, "no 8-byte file handles") != NULL, "%s", err);
}
END_TEST

START_TEST(idle_entries_forgotten) {
  /* 300 gone ids and one group; then half the ids and the group are asked
   * for every read, and the other half is forgotten once idle. */
  start(true, 0, NULL);
  uint64_t nginx = id_of("/system.slice/nginx.service");
  const uint64_t fake = 0x7000000000000000ULL;
  ck_assert_int_eq(lookup(nginx), -EAGAIN);
  for (uint64_t k = 0; k < 300; k++)
    ck_assert_int_eq(lookup(fake + k), -EAGAIN);
  ck_assert_int_eq(resolve(), 0);
  for (unsigned read = 0; read <= CGROUP_NAMES_IDLE_READS; read++) {
    cgroup_names_begin_read(names);
    ck_assert_int_eq(lookup(nginx), 0);
    for (uint64_t k = 0; k < 300; k += 2)
      ck_assert_int_eq(lookup(fake + k), -ENOENT);
    ck_assert_int_eq(resolve(), 0);
  }
  for (uint64_t k = 1; k < 300; k += 2)
    ck_assert_int_eq(lookup(fake + k), -EAGAIN);
  for (uint64_t k = 0; k < 300; k += 2)
    ck_assert_int_eq(lookup(fake + k), -ENOENT);
  assert_named("/system.slice/nginx.service", "/system.slice/nginx.service");
}
END_TEST

START_TEST(format_short_paths_kept) {
  char out[CGROUP_NAME_SIZE], path[CGROUP_NAME_SIZE];
  cgroup_name_format("/", out);
  ck_assert_str_eq(out, "/");
  cgroup_name_format("/system.slice/nginx.service", out);
  ck_assert_str_eq(out, "/system.slice/nginx.service");
  memset(path, 'a', 127);
  path[0] = '/';
  path[127] = '\0';
  cgroup_name_format(path, out);
  ck_assert_str_eq(out, path); /* 127 bytes: fits */
}
END_TEST

START_TEST(format_long_paths_keep_their_end) {
  char out[CGROUP_NAME_SIZE], other[CGROUP_NAME_SIZE];
  cgroup_name_format(LONG_PATH, out);
  ck_assert_str_eq(out, "...a61d4211991f8ad9/" LONG_SCOPE);
  /* Another path with the same end: another hash. */
  cgroup_name_format(
      "/other.slice/kubepods-burstable.slice/" LONG_POD "/" LONG_SCOPE, other);
  ck_assert_str_eq(other, "...01323e91154e3c1e/" LONG_SCOPE);

  /* 128 bytes: cut, at the last '/' that leaves at most 108 bytes. */
  char path[256];
  snprintf(path, sizeof(path), "/%0100d/%025d", 0, 0);
  ck_assert_uint_eq(strlen(path), 127);
  cgroup_name_format(path, out);
  ck_assert_str_eq(out, path);
  snprintf(path, sizeof(path), "/%0100d/%026d", 0, 0);
  cgroup_name_format(path, out);
  ck_assert_uint_eq(strlen(out), 19 + 27);
  ck_assert_str_eq(out + 19, "/00000000000000000000000000");
  ck_assert_int_eq(strncmp(out, "...", 3), 0);
}
END_TEST

START_TEST(format_long_last_component) {
  /* No '/' in the last 108 bytes: those, from a character's start. */
  char path[300], out[CGROUP_NAME_SIZE];
  memset(path, 'x', sizeof(path));
  path[0] = '/';
  path[200] = '\0';
  cgroup_name_format(path, out);
  ck_assert_uint_eq(strlen(out), 127);
  ck_assert_str_eq(out + 19, path + 200 - 108);
  /* "é" is 2 bytes: the cut would fall inside one. */
  char accented[300] = "/";
  for (int i = 0; i < 100; i++)
    strcat(accented, "\xc3\xa9");
  strcat(accented, "z");
  cgroup_name_format(accented, out);
  ck_assert_uint_eq(strlen(out), 19 + 107);
  ck_assert_uint_eq((unsigned char)out[19], 0xc3);
}
END_TEST

/* The real cgroup2 tree: this process's own group, named as
 * /proc/self/cgroup names it, by handle and by walking. */
static void own_group(bool walk_only) {
  static cgroup_mount_t mount;
  char mount_err[256];
  int rc = cgroup_mount_find("/proc", &mount, mount_err, sizeof(mount_err));
  ck_assert_msg(rc == 0 || rc == -ENOENT, "%s", mount_err);
  if (rc != 0)
    return; /* no cgroup2 here: cgroup_mount's suite covers that */
  FILE *file = fopen("/proc/self/cgroup", "r");
  ck_assert_ptr_nonnull(file);
  char line[PATH_MAX] = "", own[PATH_MAX] = "";
  while (fgets(line, sizeof(line), file) != NULL)
    if (strncmp(line, "0::", 3) == 0)
      snprintf(own, sizeof(own), "%.*s", (int)strcspn(line + 3, "\n"),
               line + 3);
  fclose(file);
  ck_assert_msg(own[0] == '/', "no cgroup v2 line in /proc/self/cgroup");
  snprintf(base, sizeof(base), "%s", mount.path);
  uint64_t id = id_of(strcmp(own, "/") == 0 ? "" : own);

  cgroup_names_config_t config = {.mount_path = mount.path,
                                  .mount_root = mount.root,
                                  .walk_only = walk_only};
  names = cgroup_names_new(&config);
  ck_assert_ptr_nonnull(names);
  int left = 0;
  for (int read = 0; read < 1000; read++) {
    cgroup_names_begin_read(names);
    if (lookup(id) != -EAGAIN)
      break;
    left = resolve();
    ck_assert_msg(left >= 0, "%s", err);
  }
  ck_assert_int_eq(lookup(id), 0);
  char want[CGROUP_NAME_SIZE];
  cgroup_name_format(own, want);
  ck_assert_str_eq(name, want);
  cgroup_names_free(names);
  names = NULL;
}

START_TEST(own_group_by_handle) { own_group(false); }
END_TEST

START_TEST(own_group_by_walk) { own_group(true); }
END_TEST

static Suite *cgroup_names_suite(void) {
  Suite *s = suite_create("cgroup_names");
  TCase *tree_case = tcase_create("tree");
  tcase_add_checked_fixture(tree_case, setup, teardown);
  tcase_add_test(tree_case, by_handle);
  tcase_add_test(tree_case, by_walk);
  tcase_add_test(tree_case, verify_by_handle);
  tcase_add_test(tree_case, verify_by_walk);
  tcase_add_test(tree_case, subtree_mount);
  tcase_add_test(tree_case, without_capability);
  tcase_add_test(tree_case, walk_resumes_within_budget);
  tcase_add_test(tree_case, asked_mid_pass_waits_for_next_pass);
  tcase_add_test(tree_case, pseudo_groups);
  tcase_add_test(tree_case, no_cgroup2_mount);
  tcase_add_test(tree_case, mount_missing);
  tcase_add_test(tree_case, mount_without_handles);
  tcase_add_test(tree_case, idle_entries_forgotten);
  suite_add_tcase(s, tree_case);
  TCase *format = tcase_create("format");
  tcase_add_test(format, format_short_paths_kept);
  tcase_add_test(format, format_long_paths_keep_their_end);
  tcase_add_test(format, format_long_last_component);
  suite_add_tcase(s, format);
  TCase *live = tcase_create("live");
  tcase_add_test(live, own_group_by_handle);
  tcase_add_test(live, own_group_by_walk);
  suite_add_tcase(s, live);
  return s;
}

int main(void) { return run_suite(cgroup_names_suite()); }
