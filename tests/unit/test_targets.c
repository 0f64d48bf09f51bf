#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "read/targets.h"

#include "log_record.h"
#include "run_suite.h"

#include <check.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static options_t opts;
static targets_t *targets;
static int own_uts;

static void setup(void) {
  logged[0] = '\0';
  options_init(&opts);
  targets = targets_new(&opts, 100, &sink);
  ck_assert_ptr_nonnull(targets);
  char err[256];
  ck_assert_int_eq(targets_start(targets, err, sizeof(err)), 0);
  own_uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(own_uts, 0);
}

static void teardown(void) {
  close(own_uts);
  targets_free(targets);
  options_free(&opts);
}

START_TEST(test_own_namespace_measured_once) {
  char err[256];
  ck_assert_int_eq(targets_add_configured(targets, "/proc/self/ns/net", own_uts,
                                          err, sizeof(err)),
                   0);
  ck_assert_int_eq(targets_add_configured(targets, "/proc/thread-self/ns/net",
                                          own_uts, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(targets_count(targets), 0);
  ck_assert_uint_eq(targets_configured(targets), 0);
  ck_assert_str_eq(logged,
                   "6 NetNamespace \"/proc/self/ns/net\" is collectd's own "
                   "network namespace: measured once, under the plain host\n"
                   "6 NetNamespace \"/proc/thread-self/ns/net\" is collectd's "
                   "own network namespace: measured once, under the plain "
                   "host\n");
}
END_TEST

START_TEST(test_not_a_network_namespace) {
  char err[256];
  ck_assert_int_eq(targets_add_configured(targets, "/proc/self/ns/uts", own_uts,
                                          err, sizeof(err)),
                   -1);
  ck_assert_str_eq(err, "/proc/self/ns/uts: not a network namespace");
  ck_assert_int_eq(targets_add_configured(targets, "/nonexistent/ns", own_uts,
                                          err, sizeof(err)),
                   -1);
  ck_assert_uint_eq(targets_count(targets), 0);
}
END_TEST

static target_t *find(const netns_id_t *id) {
  for (size_t i = 0; i < targets_count(targets); i++)
    if (netns_id_equal(&targets_at(targets, i)->id, id))
      return targets_at(targets, i);
  return NULL;
}

/* A namespace held only by a process of the test's (root: unshare), with
 * collectd's hostname: found through /proc under netns-<inode>, never
 * collectd's own; gone with its process at the next discovery's sweep. */
START_TEST(test_discovery_of_a_process_namespace) {
  int ready[2];
  ck_assert_int_eq(pipe(ready), 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    char byte = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    if (write(ready[1], &byte, 1) != 1)
      _exit(1);
    pause();
    _exit(0);
  }
  char byte = 0;
  ck_assert_int_eq(read(ready[0], &byte, 1), 1);
  ck_assert_msg(byte == 'y', "unshare(CLONE_NEWNET) failed: needs root");
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)child);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  netns_id_t id = {st.st_dev, st.st_ino}, own;
  ck_assert_int_eq(netns_self(&own), 0);

  int refused = -1;
  targets_discover(targets, own_uts, &refused);
  ck_assert_int_eq(refused, 0);
  ck_assert_ptr_null(find(&own));
  target_t *t = find(&id);
  ck_assert_ptr_nonnull(t);
  char name[64];
  snprintf(name, sizeof(name), "netns-%ju", (uintmax_t)st.st_ino);
  ck_assert_str_eq(t->name, name);
  ck_assert_str_eq(t->path, path);
  ck_assert(!t->configured);
  size_t found = targets_count(targets);
  targets_sweep(targets);
  ck_assert_uint_eq(targets_count(targets), found);

  kill(child, SIGKILL);
  ck_assert_int_eq(waitpid(child, NULL, 0), child);
  targets_discover(targets, own_uts, &refused);
  targets_sweep(targets);
  ck_assert_ptr_null(find(&id));
}
END_TEST

/* NetNamespaceName and IgnoreSelected on a discovered target's name,
 * decided at its first question and kept: a name does not change while
 * its namespace lives, and the selection does not change after config. */
START_TEST(test_takes_by_name) {
  char err[256];
  target_t blue = {.name = "blue"}, cni = {.name = "cni-42"},
           red = {.name = "red"}, other = {.name = "netns-4026532000"};
  ck_assert(targets_takes(targets, &other)); /* no names: every one */
  ck_assert(other.selection_known);
  ck_assert(other.taken);

  ck_assert_int_eq(
      name_select_add(&opts.netns_select, "blue", err, sizeof(err)), 0);
  ck_assert_int_eq(
      name_select_add(&opts.netns_select, "/^cni-/", err, sizeof(err)), 0);
  ck_assert(targets_takes(targets, &blue));
  ck_assert(targets_takes(targets, &cni));
  ck_assert(!targets_takes(targets, &red));
  ck_assert(red.selection_known);
  ck_assert(!red.taken);
  ck_assert(targets_takes(targets, &other)); /* decided before */

  opts.netns_select.ignore_selected = true; /* the decisions stay */
  ck_assert(targets_takes(targets, &blue));
  ck_assert(!targets_takes(targets, &red));
  target_t blue2 = {.name = "blue"}, red2 = {.name = "red"},
           cni2 = {.name = "my-cni-42"};
  ck_assert(!targets_takes(targets, &blue2));
  ck_assert(targets_takes(targets, &red2));
  ck_assert(targets_takes(targets, &cni2));
}
END_TEST

int main(void) {
  Suite *suite = suite_create("targets");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_own_namespace_measured_once);
  tcase_add_test(tc, test_not_a_network_namespace);
  tcase_add_test(tc, test_discovery_of_a_process_namespace);
  tcase_add_test(tc, test_takes_by_name);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
