/* The shipped types.db must describe exactly the data sets the plugin
 * registers, or receivers decode the values under other names. */
#include "glue/metric_types.h"
#include "run_suite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *open_types_db(void) {
  const char *path = getenv("TYPES_DB");
  ck_assert_msg(path != NULL, "TYPES_DB is not set");
  FILE *file = fopen(path, "r");
  ck_assert_msg(file != NULL, "cannot open %s", path);
  return file;
}

/* "used:GAUGE:0:U" -> the name "used"; fails unless GAUGE (DERIVE for a
 * counter type), min 0, max U. */
static void check_source(char *spec, const metric_type_t *type,
                         const char *expected_name) {
  char *colon = strchr(spec, ':');
  ck_assert_msg(colon != NULL, "no type in \"%s\"", spec);
  *colon = '\0';
  ck_assert_str_eq(spec, expected_name);
  ck_assert_str_eq(colon + 1, type->derive ? "DERIVE:0:U" : "GAUGE:0:U");
}

START_TEST(test_types_db_matches_registered_sets) {
  FILE *file = open_types_db();
  char line[512];
  size_t count = 0;
  while (fgets(line, sizeof(line), file) != NULL) {
    ck_assert_msg(count < METRIC_TYPES_NUM, "more lines than data sets");
    const metric_type_t *type = &metric_types[count++];
    line[strcspn(line, "\n")] = '\0';
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    ck_assert_str_eq(name, type->name);
    size_t sources = 0;
    for (char *spec = strtok_r(NULL, " \t,", &save); spec != NULL;
         spec = strtok_r(NULL, " \t,", &save)) {
      ck_assert_msg(sources < type->sources_num, "%s: extra source %s",
                    type->name, spec);
      check_source(spec, type, type->sources[sources++]);
    }
    ck_assert_uint_eq(sources, type->sources_num);
  }
  fclose(file);
  ck_assert_uint_eq(count, METRIC_TYPES_NUM);
}
END_TEST

START_TEST(test_type_names_are_the_contract) {
  ck_assert_str_eq(metric_types[METRIC_EPHEMERAL_PORTS].name,
                   "ephemeral_ports");
  ck_assert_str_eq(metric_types[METRIC_EXPORTER].name,
                   "ephemeral_port_exporter");
  ck_assert_str_eq(metric_types[METRIC_INSTANCE_OPEN].name, "instance_open");
  ck_assert_str_eq(metric_types[METRIC_DESTINATION].name,
                   "ephemeral_ports_destination");
  ck_assert_str_eq(metric_types[METRIC_STATE].name, "ephemeral_ports_state");
}
END_TEST

int main(void) {
  Suite *suite = suite_create("metric_types");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_types_db_matches_registered_sets);
  tcase_add_test(tc, test_type_names_are_the_contract);
  suite_add_tcase(suite, tc);
  return run_suite(suite);
}
