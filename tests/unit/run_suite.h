/* What every unit test program shares: its main() runs one suite and exits
 * non-zero on any failure; COUNT sizes the tables of loop tests. */
#ifndef EPHEMERAL_PORTS_RUN_SUITE_H
#define EPHEMERAL_PORTS_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static inline int run_suite(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
