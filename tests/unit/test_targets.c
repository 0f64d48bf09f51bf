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
#include <sys/mount.h>
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
/* A child process in a network namespace of its own, until killed. */
static pid_t spawn_namespace_holder(void) {
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
  close(ready[0]);
  close(ready[1]);
  ck_assert_msg(byte == 'y', "unshare(CLONE_NEWNET) failed: needs root");
  return child;
}

static void stop_holder(pid_t child) {
  kill(child, SIGKILL);
  ck_assert_int_eq(waitpid(child, NULL, 0), child);
}

START_TEST(test_discovery_of_a_process_namespace) {
  pid_t child = spawn_namespace_holder();
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

  stop_holder(child);
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

static target_t *target_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  netns_id_t id = {st.st_dev, st.st_ino};
  target_t *t = find(&id);
  ck_assert_ptr_nonnull(t);
  return t;
}

/* A namespace first met through a process alone (netns-<inode>: `ip netns
 * add` between its unshare and its bind mount) takes its mount's name
 * when a later discovery meets the mount; one named already keeps its. */
START_TEST(test_named_by_later_mount) {
  pid_t child = spawn_namespace_holder();
  int refused;
  targets_discover(targets, own_uts, &refused);
  target_t *t = target_of(child);
  ck_assert(t->named_by_inode);
  ck_assert(targets_takes(targets, t));
  char name[64], mount_path[128], source[64];
  snprintf(name, sizeof(name), "ept-unit-mount-%d", (int)getpid());
  snprintf(mount_path, sizeof(mount_path), NETNS_RUN_DIR "/%s", name);
  snprintf(source, sizeof(source), "/proc/%d/ns/net", (int)child);
  mkdir(NETNS_RUN_DIR, 0755);
  int fd = open(mount_path, O_CREAT | O_RDONLY | O_CLOEXEC, 0444);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(mount(source, mount_path, NULL, MS_BIND, NULL), 0);
  targets_discover(targets, own_uts, &refused);
  t = target_of(child);
  ck_assert_str_eq(t->name, name);
  ck_assert(!t->named_by_inode);
  ck_assert(!t->selection_known); /* decided again, by this name */
  /* Its process gone, the mount holds it: found there, the name stays. */
  netns_id_t id = t->id;
  stop_holder(child);
  targets_discover(targets, own_uts, &refused);
  targets_sweep(targets);
  t = find(&id);
  ck_assert_ptr_nonnull(t);
  ck_assert_str_eq(t->name, name);
  ck_assert_str_eq(t->path, mount_path);
  umount2(mount_path, MNT_DETACH);
  unlink(mount_path);
}
END_TEST

/* How many targets each slot of the cycle has: every namespace on the
 * machine counts, the test's and any other's. */
static void slot_loads(unsigned loads[3]) {
  loads[0] = loads[1] = loads[2] = 0;
  for (size_t i = 0; i < targets_count(targets); i++)
    loads[targets_at(targets, i)->slot]++;
}

static unsigned least(const unsigned loads[3]) {
  unsigned min = loads[0];
  for (size_t i = 1; i < 3; i++)
    min = loads[i] < min ? loads[i] : min;
  return min;
}

/* A namespace born now takes a slot that had the fewest targets. */
static pid_t spawn_and_check_slot(void) {
  unsigned before[3];
  slot_loads(before);
  pid_t pid = spawn_namespace_holder();
  int refused;
  targets_discover(targets, own_uts, &refused);
  targets_sweep(targets);
  unsigned slot = target_of(pid)->slot;
  ck_assert_msg(before[slot] == least(before),
                "slot %u had %u targets; loads %u %u %u", slot, before[slot],
                before[0], before[1], before[2]);
  return pid;
}

/* NetNamespaceInterval's cycle of 3 reads: each namespace in the least
 * loaded slot when first met, and the places of those that go are what
 * the next ones take. */
START_TEST(test_slots_even) {
  targets_free(targets);
  opts.netns_every = 3;
  targets = targets_new(&opts, 100, &sink);
  ck_assert_ptr_nonnull(targets);
  char err[256];
  ck_assert_int_eq(targets_start(targets, err, sizeof(err)), 0);
  int refused;
  targets_discover(targets, own_uts, &refused); /* this machine's others */
  targets_sweep(targets);
  pid_t pids[9] = {0};
  for (size_t i = 0; i < 7; i++)
    pids[i] = spawn_and_check_slot();
  unsigned loads[3];
  slot_loads(loads);
  /* Two of one slot go: it is the least loaded then, and takes the next. */
  unsigned slot = target_of(pids[0])->slot, gone = 0;
  for (size_t i = 0; i < 7 && gone < 2; i++)
    if (target_of(pids[i])->slot == slot) {
      stop_holder(pids[i]);
      pids[i] = 0;
      gone++;
    }
  targets_discover(targets, own_uts, &refused);
  targets_sweep(targets);
  unsigned after[3];
  slot_loads(after);
  ck_assert_uint_eq(after[slot], loads[slot] - gone);
  for (size_t i = 7; i < 9; i++)
    pids[i] = spawn_and_check_slot();
  for (size_t i = 0; i < 9; i++)
    if (pids[i] > 0)
      stop_holder(pids[i]);
}
END_TEST

/* Due at the read that first meets it, then at the reads of its slot. */
START_TEST(test_due) {
  targets_free(targets);
  opts.netns_every = 4;
  targets = targets_new(&opts, 100, &sink);
  ck_assert_ptr_nonnull(targets);
  target_t t = {.slot = 2};
  for (unsigned read = 0; read < 8; read++)
    ck_assert(targets_due(targets, &t, read));
  t.read_before = true;
  bool due[8];
  for (unsigned read = 0; read < 8; read++)
    due[read] = targets_due(targets, &t, read);
  ck_assert(!due[0] && !due[1] && due[2] && !due[3]);
  ck_assert(!due[4] && !due[5] && due[6] && !due[7]);
  /* Without NetNamespaceInterval: every read. */
  targets_free(targets);
  opts.netns_every = 1;
  targets = targets_new(&opts, 100, &sink);
  target_t every = {.read_before = true};
  for (unsigned read = 0; read < 3; read++)
    ck_assert(targets_due(targets, &every, read));
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
  tcase_add_test(tc, test_named_by_later_mount);
  tcase_add_test(tc, test_slots_even);
  tcase_add_test(tc, test_due);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
