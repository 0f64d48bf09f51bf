#include "count/cgroup_usage.h"
#include "kernel/cgroup_pseudo.h"
#include "run_suite.h"

#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>

#define A 0x100000001ULL
#define B 7
#define C 8

static cgroup_usage_t usage;

static void setup(void) { cgroup_usage_init(&usage); }
static void teardown(void) { cgroup_usage_free(&usage); }

static void add(uint64_t id, uint16_t port) {
  ck_assert_int_eq(cgroup_usage_add(&usage, id, port), 0);
}

static uint32_t ports_of(uint64_t id) {
  const cgroup_count_t *group = cgroup_usage_find(&usage, id);
  ck_assert_msg(group != NULL, "group %llu not found", (unsigned long long)id);
  ck_assert_uint_eq(group->id, id);
  return group->ports;
}

START_TEST(empty) {
  cgroup_count_t top[4];
  ck_assert_uint_eq(cgroup_usage_count(&usage), 0);
  ck_assert_ptr_null(cgroup_usage_at(&usage, 0));
  ck_assert_ptr_null(cgroup_usage_find(&usage, A));
  ck_assert_uint_eq(cgroup_usage_top(&usage, top, 4), 0);
  const uint64_t ids[] = {A};
  ck_assert_int_eq(cgroup_usage_fold(&usage, ids, 1, CGROUP_ID_UNKNOWN), 0);
  ck_assert_uint_eq(cgroup_usage_count(&usage), 0);
}
END_TEST

START_TEST(port_counts_once_per_group) {
  add(A, 40000);
  add(A, 40000);
  add(A, 40000);
  ck_assert_uint_eq(ports_of(A), 1);
  add(A, 40001);
  add(A, 0);
  add(A, 65535);
  ck_assert_uint_eq(ports_of(A), 4);
  ck_assert_uint_eq(cgroup_usage_count(&usage), 1);
  ck_assert_ptr_null(cgroup_usage_find(&usage, B));
}
END_TEST

START_TEST(port_shared_by_groups) {
  /* connect() reuses a port for other destinations, across groups too. */
  add(A, 40000);
  add(B, 40000);
  add(C, 40000);
  add(B, 40000);
  add(C, 40000);
  add(A, 40000);
  add(B, 40001);
  ck_assert_uint_eq(ports_of(A), 1);
  ck_assert_uint_eq(ports_of(B), 2);
  ck_assert_uint_eq(ports_of(C), 1);
  /* In the order first added. */
  ck_assert_uint_eq(cgroup_usage_count(&usage), 3);
  ck_assert_uint_eq(cgroup_usage_at(&usage, 0)->id, A);
  ck_assert_uint_eq(cgroup_usage_at(&usage, 1)->id, B);
  ck_assert_uint_eq(cgroup_usage_at(&usage, 2)->id, C);
  ck_assert_ptr_null(cgroup_usage_at(&usage, 3));
}
END_TEST

START_TEST(clear_forgets) {
  add(A, 40000);
  add(B, 40000);
  cgroup_usage_clear(&usage);
  ck_assert_uint_eq(cgroup_usage_count(&usage), 0);
  ck_assert_ptr_null(cgroup_usage_find(&usage, A));
  /* The port's owner of the last read is not this read's. */
  add(B, 40000);
  add(A, 40000);
  add(A, 40000);
  ck_assert_uint_eq(ports_of(A), 1);
  ck_assert_uint_eq(ports_of(B), 1);
  ck_assert_uint_eq(cgroup_usage_at(&usage, 0)->id, B);
}
END_TEST

START_TEST(many_groups_and_ports) {
  /* Past the 255 groups an owner entry can name, the pairs count alone;
   * and tables grow many times. */
  for (uint64_t id = 1; id <= 70000; id++) {
    add(id, (uint16_t)(id % 1000));
    add(id, 50000);
    add(id, (uint16_t)(id % 1000));
  }
  ck_assert_uint_eq(cgroup_usage_count(&usage), 70000);
  for (uint64_t id = 1; id <= 70000; id += 4999)
    ck_assert_uint_eq(ports_of(id), 2);
  ck_assert_uint_eq(ports_of(70000), 2);
  cgroup_usage_clear(&usage);
  add(70000, 50000);
  ck_assert_uint_eq(ports_of(70000), 1);
}
END_TEST

START_TEST(top_busiest_first_ties_by_id) {
  for (uint16_t p = 0; p < 3; p++)
    add(C, (uint16_t)(40000 + p));
  for (uint16_t p = 0; p < 5; p++)
    add(A, (uint16_t)(40000 + p));
  for (uint16_t p = 0; p < 3; p++)
    add(B, (uint16_t)(41000 + p));
  add(CGROUP_ID_TIME_WAIT, 42000);

  cgroup_count_t top[4];
  ck_assert_uint_eq(cgroup_usage_top(&usage, top, 4), 4);
  ck_assert_uint_eq(top[0].id, A);
  ck_assert_uint_eq(top[0].ports, 5);
  ck_assert_uint_eq(top[1].id, B); /* 3 ports, as C: the lower id first */
  ck_assert_uint_eq(top[2].id, C);
  ck_assert_uint_eq(top[2].ports, 3);
  ck_assert_uint_eq(top[3].id, CGROUP_ID_TIME_WAIT);
  ck_assert_uint_eq(top[3].ports, 1);
  for (size_t i = 0; i < 4; i++)
    ck_assert(top[i].in_top);

  cgroup_usage_clear(&usage);
  for (uint16_t p = 0; p < 5; p++)
    add(A, (uint16_t)(40000 + p));
  for (uint16_t p = 0; p < 3; p++)
    add(C, (uint16_t)(40000 + p));
  for (uint16_t p = 0; p < 3; p++)
    add(B, (uint16_t)(41000 + p));
  ck_assert_uint_eq(cgroup_usage_top(&usage, top, 2), 2);
  ck_assert_uint_eq(top[0].id, A);
  ck_assert_uint_eq(top[1].id, B);
  ck_assert(cgroup_usage_find(&usage, A)->in_top);
  ck_assert(cgroup_usage_find(&usage, B)->in_top);
  /* Dropped out: still found with its value, not in the top. */
  ck_assert(!cgroup_usage_find(&usage, C)->in_top);
  ck_assert_uint_eq(ports_of(C), 3);
  /* A later call in the same read (after a fold, say) chooses anew. */
  const uint64_t gone[] = {A};
  ck_assert_int_eq(cgroup_usage_fold(&usage, gone, COUNT(gone), C), 0);
  ck_assert_uint_eq(cgroup_usage_top(&usage, top, 2), 2);
  ck_assert_uint_eq(top[0].id, C);
  ck_assert_uint_eq(top[1].id, B);
  ck_assert(!cgroup_usage_find(&usage, A)->in_top);
  ck_assert_uint_eq(cgroup_usage_top(&usage, top, 0), 0);
}
END_TEST

START_TEST(top_same_order_whatever_the_insertion) {
  const uint64_t ids[] = {9, 3, 12, 5, 1};
  cgroup_count_t first[5], second[5];
  for (size_t round = 0; round < 2; round++) {
    cgroup_usage_clear(&usage);
    for (size_t i = 0; i < COUNT(ids); i++) {
      size_t k = round == 0 ? i : COUNT(ids) - 1 - i;
      add(ids[k], 1000);
      add(ids[k], (uint16_t)(2000 + (ids[k] % 2))); /* odd ids: 2 ports */
    }
    ck_assert_uint_eq(cgroup_usage_top(&usage, round == 0 ? first : second, 5),
                      5);
  }
  const uint64_t want[] = {1, 3, 5, 9, 12}; /* odd ones hold 2 ports */
  for (size_t i = 0; i < 5; i++) {
    ck_assert_uint_eq(first[i].id, want[i]);
    ck_assert_uint_eq(second[i].id, want[i]);
  }
}
END_TEST

START_TEST(fold_into_unknown) {
  add(A, 1);
  add(A, 2);
  add(A, 3);
  add(B, 3);
  add(B, 4);
  add(C, 3); /* stays: not folded */
  add(C, 9);
  add(CGROUP_ID_UNKNOWN, 5);
  add(CGROUP_ID_UNKNOWN, 1);
  const uint64_t gone[] = {A, CGROUP_ID_UNKNOWN, B, 12345};
  ck_assert_int_eq(
      cgroup_usage_fold(&usage, gone, COUNT(gone), CGROUP_ID_UNKNOWN), 0);
  ck_assert_uint_eq(ports_of(CGROUP_ID_UNKNOWN), 5); /* 1 2 3 4 5 */
  ck_assert_uint_eq(ports_of(A), 0);
  ck_assert_uint_eq(ports_of(B), 0);
  ck_assert_uint_eq(ports_of(C), 2);
  ck_assert_ptr_null(cgroup_usage_find(&usage, 12345));

  cgroup_count_t top[4];
  ck_assert_uint_eq(cgroup_usage_top(&usage, top, 4), 2);
  ck_assert_uint_eq(top[0].id, CGROUP_ID_UNKNOWN);
  ck_assert_uint_eq(top[1].id, C);
  ck_assert(!cgroup_usage_find(&usage, A)->in_top);
}
END_TEST

START_TEST(fold_creates_target) {
  add(A, 1);
  add(B, 1);
  add(B, 2);
  const uint64_t gone[] = {A, B};
  ck_assert_int_eq(cgroup_usage_fold(&usage, gone, 2, CGROUP_ID_UNKNOWN), 0);
  ck_assert_uint_eq(ports_of(CGROUP_ID_UNKNOWN), 2);
  ck_assert_uint_eq(cgroup_usage_count(&usage), 3);
}
END_TEST

START_TEST(fold_nothing_there) {
  add(A, 1);
  const uint64_t absent[] = {B, C, CGROUP_ID_UNKNOWN};
  ck_assert_int_eq(cgroup_usage_fold(&usage, absent, 3, CGROUP_ID_UNKNOWN), 0);
  ck_assert_ptr_null(cgroup_usage_find(&usage, CGROUP_ID_UNKNOWN));
  ck_assert_int_eq(cgroup_usage_fold(&usage, absent, 0, CGROUP_ID_UNKNOWN), 0);
  ck_assert_uint_eq(ports_of(A), 1);
}
END_TEST

START_TEST(fold_groups_past_port_entries) {
  /* Groups counted through pairs alone fold the same. */
  for (uint64_t id = 1; id <= 66000; id++)
    add(id, (uint16_t)id);
  uint64_t gone[] = {65999, 66000, 1};
  add(65999, 7);
  ck_assert_int_eq(cgroup_usage_fold(&usage, gone, 3, 2), 0);
  ck_assert_uint_eq(ports_of(2), 5); /* 2, 65999%65536, 66000%65536, 7, 1 */
  ck_assert_uint_eq(ports_of(65999), 0);
}
END_TEST

START_TEST(groups_past_owner_entries) {
  /* An owner entry names the first 255 groups of a read; the 256th (id
   * 256 here) takes port 40000 first, so that port has no owner entry,
   * and group 1 adding it after must count it too. */
  for (uint64_t id = 1; id <= 257; id++)
    add(id, 1000);
  add(256, 40000);
  add(1, 40000);
  add(256, 40000);
  add(1, 40000);
  ck_assert_uint_eq(cgroup_usage_count(&usage), 257);
  ck_assert_uint_eq(ports_of(1), 2); /* 1000 40000 */
  ck_assert_uint_eq(ports_of(255), 1);
  ck_assert_uint_eq(ports_of(256), 2);
  /* Index 256 is 0 in a byte: port 1000's entry is group 1's, not its. */
  ck_assert_uint_eq(ports_of(257), 1);
  const uint64_t gone[] = {256};
  ck_assert_int_eq(cgroup_usage_fold(&usage, gone, 1, 1), 0);
  ck_assert_uint_eq(ports_of(1), 2);
  ck_assert_uint_eq(ports_of(256), 0);
  /* The next read: port 40000's stale entry is not group 1's any more. */
  cgroup_usage_clear(&usage);
  add(2, 40000);
  add(1, 40000);
  ck_assert_uint_eq(ports_of(1), 1);
  ck_assert_uint_eq(ports_of(2), 1);
}
END_TEST

START_TEST(generation_wraps) {
  usage.generation = UINT32_MAX;
  add(A, 40000);
  cgroup_usage_clear(&usage);
  ck_assert_ptr_null(cgroup_usage_find(&usage, A));
  add(B, 40001);
  ck_assert_uint_eq(ports_of(B), 1);
  ck_assert_ptr_null(cgroup_usage_find(&usage, A));
}
END_TEST

START_TEST(owner_of_sockets) {
  inet_socket_t sock = {.family = AF_INET,
                        .protocol = IPPROTO_TCP,
                        .state = TCP_ESTABLISHED,
                        .cgroup_id = A};
  ck_assert_uint_eq(cgroup_owner_of(&sock), A);
  sock.cgroup_id = 0;
  ck_assert_uint_eq(cgroup_owner_of(&sock), CGROUP_ID_UNKNOWN);
  sock.state = TCP_TIME_WAIT;
  ck_assert_uint_eq(cgroup_owner_of(&sock), CGROUP_ID_TIME_WAIT);
  sock.state = INET_TCP_NEW_SYN_RECV;
  ck_assert_uint_eq(cgroup_owner_of(&sock), CGROUP_ID_NONE);
  sock.state = TCP_LISTEN;
  sock.cgroup_id = 1; /* the root */
  ck_assert_uint_eq(cgroup_owner_of(&sock), 1);
}
END_TEST

static Suite *cgroup_usage_suite(void) {
  Suite *s = suite_create("cgroup_usage");
  TCase *tc = tcase_create("usage");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, empty);
  tcase_add_test(tc, port_counts_once_per_group);
  tcase_add_test(tc, port_shared_by_groups);
  tcase_add_test(tc, clear_forgets);
  tcase_add_test(tc, many_groups_and_ports);
  tcase_add_test(tc, top_busiest_first_ties_by_id);
  tcase_add_test(tc, top_same_order_whatever_the_insertion);
  tcase_add_test(tc, fold_into_unknown);
  tcase_add_test(tc, fold_creates_target);
  tcase_add_test(tc, fold_nothing_there);
  tcase_add_test(tc, fold_groups_past_port_entries);
  tcase_add_test(tc, groups_past_owner_entries);
  tcase_add_test(tc, generation_wraps);
  tcase_add_test(tc, owner_of_sockets);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(cgroup_usage_suite()); }
