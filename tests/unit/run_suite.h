/* The main() of every unit test program: run one suite, exit non-zero on
 * any failure. */
#ifndef EPHEMERAL_PORTS_RUN_SUITE_H
#define EPHEMERAL_PORTS_RUN_SUITE_H

#include <check.h>
#include <stdlib.h>

static inline int run_suite(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
