#include "read/options.h"

#include "run_suite.h"

#include <check.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>

START_TEST(test_defaults) {
  options_t opts;
  options_init(&opts);
  ck_assert_int_eq(opts.source, SOURCE_AUTO);
  ck_assert_str_eq(opts.proc_root, "/proc");
  ck_assert(opts.measure_tcp);
  ck_assert(!opts.measure_udp);
  ck_assert(opts.open_ports.report_open);
  ck_assert_uint_eq(portset_count(&opts.open_ports.watch), 0);
  ck_assert_uint_eq(portset_count(&opts.open_ports.ignore), 0);
  ck_assert_uint_eq(opts.top_destinations, 10);
  ck_assert(!opts.report_states);
  ck_assert_uint_eq(opts.top_cgroups, 10);
  ck_assert_uint_eq(opts.netns_count, 0);
  ck_assert(!opts.all_netns);
  ck_assert(!opts.report_nat);
  ck_assert_uint_eq(opts.nat_range.low, 1024);
  ck_assert_uint_eq(opts.nat_range.high, 65535);
  ck_assert_uint_eq(opts.top_nat, 10);
}
END_TEST

START_TEST(test_netns_paths) {
  options_t opts;
  options_init(&opts);
  ck_assert_int_eq(options_add_netns(&opts, "/run/netns/a"), 0);
  ck_assert_int_eq(options_add_netns(&opts, "/proc/1/ns/net"), 0);
  ck_assert_uint_eq(opts.netns_count, 2);
  ck_assert_str_eq(opts.netns_paths[0], "/run/netns/a");
  ck_assert_str_eq(opts.netns_paths[1], "/proc/1/ns/net");
  options_free(&opts);
  ck_assert_uint_eq(opts.netns_count, 0);
  ck_assert_ptr_null(opts.netns_paths);
}
END_TEST

START_TEST(test_source_names) {
  source_kind_t kind = SOURCE_AUTO;
  ck_assert_int_eq(source_kind_parse("netlink", &kind), 0);
  ck_assert_int_eq(kind, SOURCE_NETLINK);
  ck_assert_int_eq(source_kind_parse("PROC", &kind), 0);
  ck_assert_int_eq(kind, SOURCE_PROC);
  ck_assert_int_eq(source_kind_parse("Auto", &kind), 0);
  ck_assert_int_eq(kind, SOURCE_AUTO);
}
END_TEST

START_TEST(test_bad_source_names) {
  source_kind_t kind = SOURCE_PROC;
  ck_assert_int_eq(source_kind_parse("foo", &kind), -1);
  ck_assert_int_eq(source_kind_parse("", &kind), -1);
  ck_assert_int_eq(source_kind_parse("netlinks", &kind), -1);
  ck_assert_int_eq(kind, SOURCE_PROC);
}
END_TEST

START_TEST(test_port_texts) {
  portset_t set;
  portset_clear(&set);
  ck_assert_int_eq(port_option_add_text(&set, "22"), 0);
  ck_assert_int_eq(port_option_add_text(&set, "8000-8010"), 0);
  ck_assert_int_eq(port_option_add_text(&set, "65535"), 0);
  ck_assert_int_eq(port_option_add_text(&set, "1-1"), 0);
  ck_assert_uint_eq(portset_count(&set), 14);
  ck_assert(portset_has(&set, 8000) && portset_has(&set, 8010));
  ck_assert(!portset_has(&set, 8011));
}
END_TEST

START_TEST(test_bad_port_texts_leave_set_unchanged) {
  static const char *const bad[] = {"0",   "65536", "70000", "10-5", "abc",
                                    "",    "-5",    "5-",    " 22",  "22 ",
                                    "0-3", "1,2",   "+22",   "0x16"};
  portset_t set;
  portset_clear(&set);
  for (size_t i = 0; i < COUNT(bad); i++)
    ck_assert_msg(port_option_add_text(&set, bad[i]) == -1, "accepted \"%s\"",
                  bad[i]);
  ck_assert_uint_eq(portset_count(&set), 0);
}
END_TEST

START_TEST(test_port_numbers) {
  portset_t set;
  portset_clear(&set);
  ck_assert_int_eq(port_option_add_number(&set, 22), 0);
  ck_assert_int_eq(port_option_add_number(&set, 1), 0);
  ck_assert_int_eq(port_option_add_number(&set, 65535), 0);
  ck_assert_uint_eq(portset_count(&set), 3);
  ck_assert_int_eq(port_option_add_number(&set, 0), -1);
  ck_assert_int_eq(port_option_add_number(&set, 65536), -1);
  ck_assert_int_eq(port_option_add_number(&set, -22), -1);
  ck_assert_int_eq(port_option_add_number(&set, 22.5), -1);
  ck_assert_int_eq(port_option_add_number(&set, NAN), -1);
  ck_assert_int_eq(port_option_add_number(&set, INFINITY), -1);
  ck_assert_uint_eq(portset_count(&set), 3);
}
END_TEST

START_TEST(test_protocols) {
  int protocol = 0;
  ck_assert_int_eq(protocol_parse("tcp", &protocol), 0);
  ck_assert_int_eq(protocol, IPPROTO_TCP);
  ck_assert_int_eq(protocol_parse("UDP", &protocol), 0);
  ck_assert_int_eq(protocol, IPPROTO_UDP);
  ck_assert_int_eq(protocol_parse("sctp", &protocol), -1);
  ck_assert_int_eq(protocol_parse("", &protocol), -1);
  ck_assert_int_eq(protocol, IPPROTO_UDP);
}
END_TEST

START_TEST(test_top_destinations) {
  unsigned top = 99;
  ck_assert_int_eq(top_destinations_parse(0, &top), 0);
  ck_assert_uint_eq(top, 0);
  ck_assert_int_eq(top_destinations_parse(1000, &top), 0);
  ck_assert_uint_eq(top, 1000);
  ck_assert_int_eq(top_destinations_parse(1001, &top), -1);
  ck_assert_int_eq(top_destinations_parse(-1, &top), -1);
  ck_assert_int_eq(top_destinations_parse(2.5, &top), -1);
  ck_assert_int_eq(top_destinations_parse(NAN, &top), -1);
  ck_assert_uint_eq(top, 1000);
}
END_TEST

/* NetNamespaceName chooses among what AllNetNamespaces finds: without it
 * the options are refused, with the reason. IgnoreSelected alone is no
 * error (it ignores nothing). */
START_TEST(test_check_netns_names_need_all_netns) {
  options_t opts;
  options_init(&opts);
  char err[256] = "";
  ck_assert(name_select_is_empty(&opts.netns_select));
  ck_assert(!opts.netns_select.ignore_selected);
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), 0);
  opts.netns_select.ignore_selected = true;
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), 0);
  ck_assert_str_eq(err, "");

  ck_assert_int_eq(
      name_select_add(&opts.netns_select, "/^cni-/", err, sizeof(err)), 0);
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), -1);
  ck_assert_str_eq(err, "NetNamespaceName selects among the namespaces that "
                        "AllNetNamespaces finds, and AllNetNamespaces is not "
                        "true");
  err[0] = '\0';
  opts.all_netns = true;
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), 0);
  ck_assert_str_eq(err, "");
  opts.netns_select.ignore_selected = false;
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), 0);

  options_free(&opts);
  ck_assert(name_select_is_empty(&opts.netns_select));
  ck_assert_ptr_null(opts.netns_select.patterns);
}
END_TEST

START_TEST(test_netns_interval_parse) {
  double seconds = -1;
  const double good[] = {0, 0.001, 1, 60, 86400};
  for (size_t i = 0; i < COUNT(good); i++) {
    ck_assert_int_eq(netns_interval_parse(good[i], &seconds), 0);
    ck_assert_double_eq(seconds, good[i]);
  }
  seconds = 7;
  const double bad[] = {-1, 0.0005, 86400.5, NAN, INFINITY};
  for (size_t i = 0; i < COUNT(bad); i++)
    ck_assert_int_eq(netns_interval_parse(bad[i], &seconds), -1);
  ck_assert_double_eq(seconds, 7);
}
END_TEST

/* NetNamespaceInterval in reads: rounded up, 60 s at 0.1 s is 600 reads
 * (not 601 for the binary fraction), never under 1, at most the cap. */
START_TEST(test_netns_every) {
  const struct {
    double netns_interval, read_interval;
    unsigned every;
  } cases[] = {
      {0, 10, 1},     {5, 10, 1},
      {10, 10, 1},    {25, 10, 3},
      {30, 10, 3},    {60, 10, 6},
      {60, 0.1, 600}, {0.3, 0.1, 3},
      {61, 10, 7},    {86400, 0.001, NETNS_EVERY_MAX},
      {60, 0, 1},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    options_t opts;
    options_init(&opts);
    ck_assert_uint_eq(opts.netns_every, 1);
    opts.netns_interval = cases[i].netns_interval;
    options_set_read_interval(&opts, cases[i].read_interval);
    ck_assert_msg(opts.netns_every == cases[i].every, "%g at %g: %u, not %u",
                  cases[i].netns_interval, cases[i].read_interval,
                  opts.netns_every, cases[i].every);
    ck_assert_double_eq(opts.read_interval, cases[i].read_interval);
  }
}
END_TEST

START_TEST(test_check_netns_interval_needs_namespaces) {
  options_t opts;
  options_init(&opts);
  char err[256] = "";
  opts.netns_interval = 60;
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), -1);
  ck_assert_str_eq(err, "NetNamespaceInterval applies to other network "
                        "namespaces, and neither NetNamespace nor "
                        "AllNetNamespaces true names any");
  opts.all_netns = true;
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), 0);
  opts.all_netns = false;
  ck_assert_int_eq(options_add_netns(&opts, "/run/netns/blue"), 0);
  ck_assert_int_eq(options_check(&opts, err, sizeof(err)), 0);
  options_free(&opts);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("options");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_netns_interval_parse);
  tcase_add_test(tc, test_netns_every);
  tcase_add_test(tc, test_check_netns_interval_needs_namespaces);
  tcase_add_test(tc, test_netns_paths);
  tcase_add_test(tc, test_source_names);
  tcase_add_test(tc, test_bad_source_names);
  tcase_add_test(tc, test_port_texts);
  tcase_add_test(tc, test_bad_port_texts_leave_set_unchanged);
  tcase_add_test(tc, test_port_numbers);
  tcase_add_test(tc, test_protocols);
  tcase_add_test(tc, test_top_destinations);
  tcase_add_test(tc, test_check_netns_names_need_all_netns);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
