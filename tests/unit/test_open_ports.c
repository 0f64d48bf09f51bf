#include "count/open_ports.h"

#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The emitted (port, open) pairs of one read, as "22=0 7000=1 ". */
static char emitted[1024];

static void record(uint16_t port, bool open, void *ctx) {
  (void)ctx;
  size_t len = strlen(emitted);
  snprintf(emitted + len, sizeof(emitted) - len, "%u=%d ", (unsigned)port,
           open ? 1 : 0);
}

static open_ports_config_t config;
static portset_t previously_open;

static const char *report(const uint16_t *open_ports, size_t count) {
  portset_t open;
  portset_clear(&open);
  for (size_t i = 0; i < count; i++)
    portset_add(&open, open_ports[i]);
  emitted[0] = '\0';
  open_ports_report(&config, &previously_open, &open, record, NULL);
  return emitted;
}

#define REPORT(...)                                                            \
  report((const uint16_t[]){__VA_ARGS__},                                      \
         sizeof((const uint16_t[]){__VA_ARGS__}) / sizeof(uint16_t))
#define REPORT_NONE() report(NULL, 0)

static void setup(void) {
  memset(&config, 0, sizeof(config));
  portset_clear(&previously_open);
  config.report_open = true;
  portset_add(&config.watch, 22);
  portset_add_range(&config.watch, 7000, 7001);
  portset_add(&config.ignore, 8081);
}

START_TEST(test_open_watched_and_ignored) {
  ck_assert_str_eq(REPORT(7000, 8080, 8081), "22=0 7000=1 7001=0 8080=1 ");
}
END_TEST

START_TEST(test_closed_port_reported_once_with_zero) {
  REPORT(7000, 8080, 8081);
  ck_assert_str_eq(REPORT(7000), "22=0 7000=1 7001=0 8080=0 ");
  ck_assert_str_eq(REPORT(7000), "22=0 7000=1 7001=0 ");
}
END_TEST

START_TEST(test_reopened_port_reported_again) {
  REPORT(8080);
  REPORT_NONE();
  ck_assert_str_eq(REPORT(8080), "22=0 7000=0 7001=0 8080=1 ");
}
END_TEST

START_TEST(test_only_watched_when_open_ports_off) {
  config.report_open = false;
  ck_assert_str_eq(REPORT(7000, 8080), "22=0 7000=1 7001=0 ");
  ck_assert_str_eq(REPORT_NONE(), "22=0 7000=0 7001=0 ");
}
END_TEST

START_TEST(test_ignore_wins_over_watch) {
  portset_add(&config.ignore, 22);
  ck_assert_str_eq(REPORT(22), "7000=0 7001=0 ");
}
END_TEST

START_TEST(test_word_edges) {
  memset(&config.watch, 0, sizeof(config.watch));
  ck_assert_str_eq(REPORT(1, 63, 64, 65535), "1=1 63=1 64=1 65535=1 ");
  ck_assert_str_eq(REPORT(64), "1=0 63=0 64=1 65535=0 ");
}
END_TEST

int main(void) {
  Suite *suite = suite_create("open_ports");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_open_watched_and_ignored);
  tcase_add_test(tc, test_closed_port_reported_once_with_zero);
  tcase_add_test(tc, test_reopened_port_reported_again);
  tcase_add_test(tc, test_only_watched_when_open_ports_off);
  tcase_add_test(tc, test_ignore_wins_over_watch);
  tcase_add_test(tc, test_word_edges);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
