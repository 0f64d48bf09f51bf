/* Where the unit suites find tests/fixtures: FIXTURES_DIR (make check sets
 * it), else FIXTURES_DIR_DEFAULT when the build defines it; and a case's
 * ProcRoot under proc/. */
#ifndef EPHEMERAL_PORTS_FIXTURES_H
#define EPHEMERAL_PORTS_FIXTURES_H

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static inline const char *fixtures_dir(void) {
  const char *fixtures = getenv("FIXTURES_DIR");
#ifdef FIXTURES_DIR_DEFAULT
  if (fixtures == NULL)
    fixtures = FIXTURES_DIR_DEFAULT;
#endif
  ck_assert_msg(fixtures != NULL, "FIXTURES_DIR is not set");
  return fixtures;
}

/* Writes "<fixtures>/proc/<name>" into root and returns it. */
static inline const char *fixture_proc_root(char root[PATH_MAX],
                                            const char *name) {
  snprintf(root, PATH_MAX, "%s/proc/%s", fixtures_dir(), name);
  return root;
}

#endif
