#include "run_suite.h"
#include "util/name_select.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static name_select_t sel;

static void setup(void) { name_select_init(&sel); }

static void teardown(void) { name_select_free(&sel); }

/* Adds text, which must be accepted. */
static void add(const char *text) {
  char err[256] = "";
  ck_assert_msg(name_select_add(&sel, text, err, sizeof(err)) == 0,
                "\"%s\" was rejected: %s", text, err);
}

/* Adds text, which must be refused with exactly the reason expected and
 * leave the selection as it was. */
static void assert_refused(const char *text, const char *expected) {
  size_t before = sel.count;
  char err[256] = "";
  ck_assert_msg(name_select_add(&sel, text, err, sizeof(err)) == -1,
                "\"%s\" was accepted", text);
  ck_assert_str_eq(err, expected);
  ck_assert_uint_eq(sel.count, before);
}

START_TEST(test_init_is_empty) {
  ck_assert(name_select_is_empty(&sel));
  ck_assert_uint_eq(sel.count, 0);
  ck_assert(!sel.ignore_selected);
  ck_assert_ptr_null(sel.patterns);
}
END_TEST

START_TEST(test_empty_selection_takes_all) {
  ck_assert(name_select_takes(&sel, "blue"));
  ck_assert(name_select_takes(&sel, "cni-1234"));
  ck_assert(name_select_takes(&sel, ""));
  /* IgnoreSelected without names ignores nothing (collectd's ignorelist). */
  sel.ignore_selected = true;
  ck_assert(name_select_takes(&sel, "blue"));
  ck_assert(name_select_takes(&sel, "netns-4026532000"));
}
END_TEST

START_TEST(test_exact_names) {
  add("blue");
  add("netns-4026532000");
  ck_assert(!name_select_is_empty(&sel));
  ck_assert_uint_eq(sel.count, 2);
  ck_assert(name_select_takes(&sel, "blue"));
  ck_assert(name_select_takes(&sel, "netns-4026532000"));
  ck_assert(!name_select_takes(&sel, "red"));
  /* Exact: no prefix, suffix, substring or case folding. */
  ck_assert(!name_select_takes(&sel, "blu"));
  ck_assert(!name_select_takes(&sel, "blue2"));
  ck_assert(!name_select_takes(&sel, "xblue"));
  ck_assert(!name_select_takes(&sel, "Blue"));
  ck_assert(!name_select_takes(&sel, "netns-40265320001"));
  ck_assert(!name_select_takes(&sel, ""));
}
END_TEST

/* Regex metacharacters outside slashes are plain characters of a name. */
START_TEST(test_name_with_metacharacters_is_literal) {
  add("cni-.*");
  ck_assert(name_select_takes(&sel, "cni-.*"));
  ck_assert(!name_select_takes(&sel, "cni-1234"));
}
END_TEST

START_TEST(test_regex) {
  add("/^cni-[0-9a-f]+$/");
  ck_assert_uint_eq(sel.count, 1);
  ck_assert(name_select_takes(&sel, "cni-0f3a"));
  ck_assert(name_select_takes(&sel, "cni-1"));
  ck_assert(!name_select_takes(&sel, "cni-"));
  ck_assert(!name_select_takes(&sel, "cni-0f3g"));
  ck_assert(!name_select_takes(&sel, "xcni-0f3a"));
  ck_assert(!name_select_takes(&sel, "cni-0f3a-2"));
}
END_TEST

/* POSIX extended: alternation, intervals, classes. */
START_TEST(test_regex_is_extended) {
  add("/^(kube-proxy|coredns)-[a-z0-9]{5}$/");
  ck_assert(name_select_takes(&sel, "coredns-7x9kq"));
  ck_assert(name_select_takes(&sel, "kube-proxy-ab12c"));
  ck_assert(!name_select_takes(&sel, "coredns-7x9k"));
  ck_assert(!name_select_takes(&sel, "kube-proxy|coredns-ab12c"));
  ck_assert(!name_select_takes(&sel, "(coredns)-7x9kq"));
}
END_TEST

/* Unanchored, as regexec and collectd's ignorelist are: a match anywhere
 * in the name takes it; ^ and $ anchor. */
START_TEST(test_regex_unanchored) {
  add("/proxy/");
  ck_assert(name_select_takes(&sel, "proxy"));
  ck_assert(name_select_takes(&sel, "kube-proxy-ab12c"));
  ck_assert(name_select_takes(&sel, "proxyish"));
  ck_assert(!name_select_takes(&sel, "prox"));
  name_select_free(&sel);

  add("/^proxy/");
  ck_assert(name_select_takes(&sel, "proxyish"));
  ck_assert(!name_select_takes(&sel, "kube-proxy"));
  name_select_free(&sel);

  add("/proxy$/");
  ck_assert(name_select_takes(&sel, "kube-proxy"));
  ck_assert(!name_select_takes(&sel, "proxyish"));
}
END_TEST

START_TEST(test_regex_is_case_sensitive) {
  add("/^Blue$/");
  ck_assert(name_select_takes(&sel, "Blue"));
  ck_assert(!name_select_takes(&sel, "blue"));
}
END_TEST

START_TEST(test_names_and_regexes_together) {
  add("blue");
  add("/^cni-/");
  add("red");
  ck_assert_uint_eq(sel.count, 3);
  ck_assert(name_select_takes(&sel, "blue"));
  ck_assert(name_select_takes(&sel, "red"));
  ck_assert(name_select_takes(&sel, "cni-42"));
  ck_assert(!name_select_takes(&sel, "green"));
  ck_assert(!name_select_takes(&sel, "my-cni-42"));
}
END_TEST

/* "/" alone and other texts that do not both start and end with "/" are
 * names; a text of at least two characters that does is a regex. */
START_TEST(test_slash_forms) {
  add("/");
  ck_assert(name_select_takes(&sel, "/"));
  ck_assert(!name_select_takes(&sel, "a"));
  ck_assert(!name_select_takes(&sel, "//"));
  name_select_free(&sel);

  add("/blue");
  add("red/");
  ck_assert(name_select_takes(&sel, "/blue"));
  ck_assert(name_select_takes(&sel, "red/"));
  ck_assert(!name_select_takes(&sel, "blue"));
  ck_assert(!name_select_takes(&sel, "red"));
  name_select_free(&sel);

  /* "/a/": the regex a, not the name "/a/". */
  add("/a/");
  ck_assert(name_select_takes(&sel, "a"));
  ck_assert(name_select_takes(&sel, "bab"));
  ck_assert(!name_select_takes(&sel, "/b/"));
  name_select_free(&sel);

  /* "///": the regex "/". */
  add("///");
  ck_assert(name_select_takes(&sel, "/"));
  ck_assert(name_select_takes(&sel, "a/b"));
  ck_assert(!name_select_takes(&sel, "ab"));
}
END_TEST

START_TEST(test_errors) {
  assert_refused("", "an empty name");
  assert_refused("//", "an empty regular expression");
  assert_refused("/a(/", "a malformed regular expression: Unmatched ( or \\(");
  assert_refused("/x{2,1}/",
                 "a malformed regular expression: Invalid content of \\{\\}");
  assert_refused("/*a/", "a malformed regular expression: Invalid preceding "
                         "regular expression");
  ck_assert(name_select_is_empty(&sel));
  ck_assert(name_select_takes(&sel, "anything"));
}
END_TEST

/* A refused text leaves what was added before it working. */
START_TEST(test_error_keeps_earlier_patterns) {
  add("blue");
  add("/^cni-/");
  assert_refused("/a(/", "a malformed regular expression: Unmatched ( or \\(");
  assert_refused("", "an empty name");
  add("red");
  ck_assert_uint_eq(sel.count, 3);
  ck_assert(name_select_takes(&sel, "blue"));
  ck_assert(name_select_takes(&sel, "cni-1"));
  ck_assert(name_select_takes(&sel, "red"));
  ck_assert(!name_select_takes(&sel, "a("));
  ck_assert(!name_select_takes(&sel, ""));
}
END_TEST

/* The reason is cut to err's size, still a string. */
START_TEST(test_error_text_truncated) {
  char err[8] = "xxxxxxx";
  ck_assert_int_eq(name_select_add(&sel, "/a(/", err, sizeof(err)), -1);
  ck_assert_str_eq(err, "a malfo");
  ck_assert_uint_eq(sel.count, 0);
}
END_TEST

START_TEST(test_ignore_selected_inverts) {
  add("blue");
  add("/^cni-/");
  sel.ignore_selected = true;
  ck_assert(!name_select_takes(&sel, "blue"));
  ck_assert(!name_select_takes(&sel, "cni-42"));
  ck_assert(name_select_takes(&sel, "red"));
  ck_assert(name_select_takes(&sel, "blue2"));
  ck_assert(name_select_takes(&sel, "my-cni-42"));
  ck_assert(name_select_takes(&sel, "netns-4026532000"));
  sel.ignore_selected = false;
  ck_assert(name_select_takes(&sel, "blue"));
  ck_assert(name_select_takes(&sel, "cni-42"));
  ck_assert(!name_select_takes(&sel, "red"));
}
END_TEST

/* Freed, the selection is empty and takes every name again; it can be
 * filled anew. */
START_TEST(test_free_empties) {
  add("blue");
  add("/^cni-/");
  name_select_free(&sel);
  ck_assert(name_select_is_empty(&sel));
  ck_assert_uint_eq(sel.count, 0);
  ck_assert_ptr_null(sel.patterns);
  ck_assert(name_select_takes(&sel, "red"));
  name_select_free(&sel); /* twice is harmless */
  add("red");
  ck_assert(name_select_takes(&sel, "red"));
  ck_assert(!name_select_takes(&sel, "blue"));
}
END_TEST

/* Many patterns: the array grows and earlier compiled regexes keep
 * working after it moved. */
START_TEST(test_many_patterns) {
  char text[32];
  for (int i = 0; i < 200; i++) {
    if (i % 2 == 0)
      snprintf(text, sizeof(text), "/^rx%d-/", i);
    else
      snprintf(text, sizeof(text), "name%d", i);
    add(text);
  }
  ck_assert_uint_eq(sel.count, 200);
  ck_assert(name_select_takes(&sel, "rx0-a"));
  ck_assert(name_select_takes(&sel, "rx198-b"));
  ck_assert(name_select_takes(&sel, "name1"));
  ck_assert(name_select_takes(&sel, "name199"));
  ck_assert(!name_select_takes(&sel, "rx1-a"));
  ck_assert(!name_select_takes(&sel, "name0"));
}
END_TEST

static Suite *name_select_suite(void) {
  Suite *suite = suite_create("name_select");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_init_is_empty);
  tcase_add_test(tc, test_empty_selection_takes_all);
  tcase_add_test(tc, test_exact_names);
  tcase_add_test(tc, test_name_with_metacharacters_is_literal);
  tcase_add_test(tc, test_regex);
  tcase_add_test(tc, test_regex_is_extended);
  tcase_add_test(tc, test_regex_unanchored);
  tcase_add_test(tc, test_regex_is_case_sensitive);
  tcase_add_test(tc, test_names_and_regexes_together);
  tcase_add_test(tc, test_slash_forms);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_error_keeps_earlier_patterns);
  tcase_add_test(tc, test_error_text_truncated);
  tcase_add_test(tc, test_ignore_selected_inverts);
  tcase_add_test(tc, test_free_empties);
  tcase_add_test(tc, test_many_patterns);
  suite_add_tcase(suite, tc);
  return suite;
}

int main(void) { return run_suite(name_select_suite()); }
