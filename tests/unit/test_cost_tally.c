#include "read/cost_tally.h"

#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static char message[1024];

/* The tally of a read as the collector would leave it, clocks aside. */
static cost_tally_t tally_of_three(netns_tables_t second) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  cost_tally_add_own(&tally, 0.2);
  cost_tally_add_other(&tally, "pod-a", 0.5, TABLES_SHARED);
  cost_tally_add_other(&tally, "pod-b", 0.4, second);
  cost_tally_add_other(&tally, "pod-c", 0.1, TABLES_SHARED);
  return tally;
}

static const cost_setting_t every_read = {10, 1, 3, true, 10000, 86400};

START_TEST(test_tally_sums) {
  cost_tally_t tally = tally_of_three(TABLES_OWN);
  ck_assert_double_eq_tol(tally.own_seconds, 0.2, 1e-12);
  ck_assert_uint_eq(tally.others_read, 3);
  ck_assert_double_eq_tol(tally.others_seconds, 1.0, 1e-12);
  ck_assert_uint_eq(tally.shared_read, 2);
  ck_assert_double_eq_tol(tally.shared_seconds, 0.6, 1e-12);
  ck_assert_str_eq(tally.shared_names, "pod-a, pod-c");
  ck_assert(!tally.before_child_ehash);
}
END_TEST

START_TEST(test_advice_text) {
  cost_tally_t tally = tally_of_three(TABLES_OWN);
  read_cost_t cost = {1.2, 1.1};
  ck_assert(
      cost_tally_advice(&tally, &cost, &every_read, message, sizeof(message)));
  /* Per namespace 1.0 / 3 s; room under a tenth 1.0 - 0.2 = 0.8 s; the
   * whole cycle 1.0 s fits in two reads: 0.2 + 1.0 / 2 = 0.7 s a read. */
  ck_assert_str_eq(
      message,
      "a read took 1.200 s, 12.0% of the 10 s interval (CPU 1.100 s): "
      "collectd's own network namespace 0.200 s, 3 other network namespaces "
      "1.000 s (333.3 ms each); 2 of them (pod-a, pod-c) share the kernel's "
      "global socket tables (tcp_ehash_entries < 0), so a dump in each walks "
      "the whole table (0.600 s in all): net.ipv4.tcp_child_ehash_entries "
      "gives the namespaces created after it is set tables of their own, "
      "saving most of that; NetNamespaceInterval 20 would read each of the 3 "
      "other namespaces once every 2 reads (about 0.700 s a read); "
      "NetNamespaceName and IgnoreSelected leave out the namespaces nobody "
      "needs");
}
END_TEST

START_TEST(test_advice_before_6_1_configured_only) {
  cost_tally_t tally = tally_of_three(TABLES_ALWAYS_SHARED);
  read_cost_t cost = {1.2, 1.1};
  /* NetNamespace paths only: no selection to advise; already every 2nd
   * read: no shorter NetNamespaceInterval to advise either. */
  cost_setting_t setting = {10, 2, 3, false, 10000, 86400};
  ck_assert(
      cost_tally_advice(&tally, &cost, &setting, message, sizeof(message)));
  ck_assert_str_eq(
      message,
      "a read took 1.200 s, 12.0% of the 10 s interval (CPU 1.100 s): "
      "collectd's own network namespace 0.200 s, 3 other network namespaces "
      "1.000 s (333.3 ms each); 3 of them (pod-a, pod-b, pod-c) share the "
      "kernel's global socket tables (tcp_ehash_entries < 0), so a dump in "
      "each walks the whole table (1.000 s in all): before Linux 6.1 every "
      "namespace does; from 6.1 on, net.ipv4.tcp_child_ehash_entries gives "
      "the namespaces created after it is set tables of their own");
}
END_TEST

START_TEST(test_advice_own_alone) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  cost_tally_add_own(&tally, 1.5);
  cost_tally_add_other(&tally, "pod-a", 0.1, TABLES_OWN);
  read_cost_t cost = {1.6, 1.6};
  ck_assert(
      cost_tally_advice(&tally, &cost, &every_read, message, sizeof(message)));
  ck_assert_str_eq(
      message,
      "a read took 1.600 s, 16.0% of the 10 s interval (CPU 1.600 s): "
      "collectd's own network namespace 1.500 s, 1 other network namespace "
      "0.100 s (100.0 ms each); collectd's own namespace alone takes more "
      "than a tenth; NetNamespaceName and IgnoreSelected leave out the "
      "namespaces nobody needs");
}
END_TEST

START_TEST(test_advice_own_namespace_only) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  cost_tally_add_own(&tally, 2.0);
  read_cost_t cost = {2.0, 1.9};
  cost_setting_t setting = {10, 1, 0, false, 10000, 86400};
  ck_assert(
      cost_tally_advice(&tally, &cost, &setting, message, sizeof(message)));
  ck_assert_str_eq(message,
                   "a read took 2.000 s, 20.0% of the 10 s interval (CPU "
                   "1.900 s): collectd's own network namespace 2.000 s");
}
END_TEST

/* Told once; again only after a read under a twentieth of the interval. */
START_TEST(test_advice_once_until_cheap) {
  cost_tally_t tally = tally_of_three(TABLES_OWN);
  read_cost_t dear = {1.2, 1.1}, middling = {0.6, 0.6}, cheap = {0.49, 0.4};
  ck_assert(
      cost_tally_advice(&tally, &dear, &every_read, message, sizeof(message)));
  ck_assert(
      !cost_tally_advice(&tally, &dear, &every_read, message, sizeof(message)));
  ck_assert(!cost_tally_advice(&tally, &middling, &every_read, message,
                               sizeof(message)));
  ck_assert(
      !cost_tally_advice(&tally, &dear, &every_read, message, sizeof(message)));
  ck_assert(!cost_tally_advice(&tally, &cheap, &every_read, message,
                               sizeof(message)));
  ck_assert(
      cost_tally_advice(&tally, &dear, &every_read, message, sizeof(message)));
  /* cost_tally_begin keeps what was told. */
  cost_tally_begin(&tally);
  ck_assert(
      !cost_tally_advice(&tally, &dear, &every_read, message, sizeof(message)));
}
END_TEST

START_TEST(test_advice_threshold_exact) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  read_cost_t tenth = {1.0, 1.0};
  ck_assert(!cost_tally_advice(&tally, &tenth, &every_read, message,
                               sizeof(message)));
  cost_setting_t unknown = {0, 1, 0, false, 10000, 86400};
  read_cost_t dear = {5, 5};
  ck_assert(
      !cost_tally_advice(&tally, &dear, &unknown, message, sizeof(message)));
}
END_TEST

START_TEST(test_names_cut) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  char name[32];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "pod-%02d", i);
    cost_tally_add_other(&tally, name, 0.01, TABLES_SHARED);
  }
  ck_assert_uint_eq(tally.shared_read, 40);
  /* 19 names of 6 bytes (pod-00 to pod-18) and 18 ", " make 150 bytes; a
   * 20th would leave no room for the closing ", ...". */
  ck_assert_uint_eq(strlen(tally.shared_names), 155);
  ck_assert_str_eq(tally.shared_names + 150 - 14, "pod-17, pod-18, ...");
}
END_TEST

START_TEST(test_clocks) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  tally.told = true;
  cost_tally_begin(&tally);
  ck_assert(tally.told);
  ck_assert_uint_eq(tally.others_read, 0);
  /* Burn 20 ms of this thread's CPU. */
  double start = cost_tally_clock();
  volatile unsigned long spin = 0;
  while (cost_tally_clock() - start < 0.02)
    spin++;
  read_cost_t cost = cost_tally_end(&tally);
  ck_assert_double_ge(cost.seconds, 0.02);
  ck_assert_double_ge(cost.cpu_seconds, 0.01);
  ck_assert_double_le(cost.cpu_seconds, cost.seconds + 0.001);
}
END_TEST

/* A NetNamespaceInterval past its limits is no advice: here 0.999 s of
 * room's 1 s is taken by collectd's own namespace. */
START_TEST(test_advice_past_the_limits) {
  cost_tally_t tally;
  memset(&tally, 0, sizeof(tally));
  cost_tally_add_own(&tally, 0.999);
  cost_tally_add_other(&tally, "pod-a", 2.0, TABLES_OWN);
  cost_tally_add_other(&tally, "pod-b", 2.0, TABLES_OWN);
  read_cost_t cost = {5, 5};
  cost_setting_t setting = {10, 1, 500, false, 10000, 86400};
  ck_assert(
      cost_tally_advice(&tally, &cost, &setting, message, sizeof(message)));
  ck_assert_ptr_null(strstr(message, "NetNamespaceInterval"));
  /* Within the limits: 4 s a cycle in 0.001 s of room, 4000 reads. */
  setting.namespaces = 2;
  setting.interval_max = 1e9;
  setting.every_max = 100000;
  tally.told = false;
  ck_assert(
      cost_tally_advice(&tally, &cost, &setting, message, sizeof(message)));
  ck_assert_msg(strstr(message, "once every 4000 reads") != NULL, "%s",
                message);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("cost_tally");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_tally_sums);
  tcase_add_test(tc, test_advice_text);
  tcase_add_test(tc, test_advice_before_6_1_configured_only);
  tcase_add_test(tc, test_advice_own_alone);
  tcase_add_test(tc, test_advice_own_namespace_only);
  tcase_add_test(tc, test_advice_once_until_cheap);
  tcase_add_test(tc, test_advice_threshold_exact);
  tcase_add_test(tc, test_names_cut);
  tcase_add_test(tc, test_advice_past_the_limits);
  tcase_add_test(tc, test_clocks);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
