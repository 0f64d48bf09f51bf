#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kernel/netns.h"

#include "kernel/kernel_release.h"
#include "run_suite.h"
#include "util/port_memory.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(test_open_own_namespace) {
  char err[256];
  netns_id_t id, self;
  int fd = netns_open("/proc/self/ns/net", &id, err, sizeof(err));
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(netns_self(&self), 0);
  ck_assert(netns_id_equal(&id, &self));
  close(fd);
}
END_TEST

START_TEST(test_open_rejects_other_files) {
  char err[256];
  netns_id_t id;
  ck_assert_int_eq(netns_open("/proc/self/ns/uts", &id, err, sizeof(err)),
                   -EINVAL);
  ck_assert_str_eq(err, "/proc/self/ns/uts: not a network namespace");
  ck_assert_int_eq(netns_open("/proc/self/status", &id, err, sizeof(err)),
                   -EINVAL);
  ck_assert_int_eq(netns_open("/nonexistent/ns", &id, err, sizeof(err)),
                   -ENOENT);
  ck_assert_str_eq(err, "/nonexistent/ns: No such file or directory");
}
END_TEST

typedef struct {
  netns_id_t self;
  unsigned self_seen;
  bool saw_own_pid;
} discovery_t;

static void count_self(const netns_found_t *found, void *ctx) {
  discovery_t *d = ctx;
  if (netns_id_equal(&found->id, &d->self)) {
    d->self_seen++;
    if (found->pid == getpid())
      d->saw_own_pid = true;
  }
}

START_TEST(test_discovery_meets_this_process) {
  discovery_t d = {.self_seen = 0};
  ck_assert_int_eq(netns_self(&d.self), 0);
  int error;
  netns_discover("/proc", count_self, &d, &error);
  ck_assert(d.saw_own_pid);
  ck_assert_uint_ge(d.self_seen, 1);
}
END_TEST

START_TEST(test_own_uts_hostname_is_not_a_name) {
  int own = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(own, 0);
  char name[256] = "";
  ck_assert_int_eq(
      netns_uts_hostname("/proc", getpid(), own, name, sizeof(name)), 0);
  ck_assert_int_eq(netns_uts_hostname("/proc", 0, own, name, sizeof(name)),
                   -ENOENT);
  close(own);
}
END_TEST

START_TEST(test_kernel_release) {
  ck_assert(kernel_dumps_bound_only("6.18.44-fc-v1098"));
  ck_assert(kernel_dumps_bound_only("6.8.0-31-generic"));
  ck_assert(kernel_dumps_bound_only("7.0"));
  ck_assert(!kernel_dumps_bound_only("6.7.12"));
  ck_assert(!kernel_dumps_bound_only("6.1.0-27-amd64"));
  ck_assert(!kernel_dumps_bound_only("5.15.0"));
  ck_assert(kernel_dumps_bound_only("garbage"));
}
END_TEST

START_TEST(test_port_memory_round_trip) {
  portset_t set, back;
  portset_clear(&set);
  portset_add(&set, 1);
  portset_add(&set, 64);
  portset_add(&set, 65535);
  port_memory_t memory = {0};
  ck_assert_int_eq(port_memory_save(&memory, &set), 0);
  ck_assert_uint_eq(memory.count, 3);
  ck_assert_uint_eq(memory.ports[0], 1);
  ck_assert_uint_eq(memory.ports[2], 65535);
  port_memory_load(&memory, &back);
  ck_assert_mem_eq(&back, &set, sizeof(set));
  portset_clear(&set);
  ck_assert_int_eq(port_memory_save(&memory, &set), 0);
  ck_assert_uint_eq(memory.count, 0);
  port_memory_load(&memory, &back);
  ck_assert_uint_eq(portset_count(&back), 0);
  port_memory_free(&memory);
  ck_assert_ptr_null(memory.ports);
}
END_TEST

/* The same namespace, the same cookie; a new one (a child's, after
 * unshare) another, though the kernel may give it a freed inode. */
START_TEST(test_cookie) {
  uint64_t first = 0, again = 1;
  ck_assert_int_eq(netns_cookie(&first), 0);
  ck_assert_int_eq(netns_cookie(&again), 0);
  ck_assert(first == again);
  int pipe_fds[2];
  ck_assert_int_eq(pipe(pipe_fds), 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    uint64_t cookie = 0;
    if (unshare(CLONE_NEWNET) != 0 || netns_cookie(&cookie) != 0)
      cookie = 0;
    _exit(write(pipe_fds[1], &cookie, sizeof(cookie)) == sizeof(cookie) ? 0
                                                                        : 1);
  }
  uint64_t other = 0;
  ck_assert_int_eq(read(pipe_fds[0], &other, sizeof(other)), sizeof(other));
  ck_assert_int_eq(waitpid(child, NULL, 0), child);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  ck_assert_msg(other != 0, "unshare(CLONE_NEWNET) failed: needs root");
  ck_assert(other != first);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("netns");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_open_own_namespace);
  tcase_add_test(tc, test_open_rejects_other_files);
  tcase_add_test(tc, test_discovery_meets_this_process);
  tcase_add_test(tc, test_own_uts_hostname_is_not_a_name);
  tcase_add_test(tc, test_kernel_release);
  tcase_add_test(tc, test_cookie);
  tcase_add_test(tc, test_port_memory_round_trip);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
