#include "util/name_select.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct name_pattern {
  char *name; /* NULL: a regex */
  regex_t regex;
};

void name_select_init(name_select_t *select) {
  memset(select, 0, sizeof(*select));
}

static void pattern_free(name_pattern_t *pattern) {
  if (pattern->name != NULL)
    free(pattern->name);
  else
    regfree(&pattern->regex);
}

void name_select_free(name_select_t *select) {
  for (size_t i = 0; i < select->count; i++)
    pattern_free(&select->patterns[i]);
  free(select->patterns);
  select->patterns = NULL;
  select->count = 0;
}

/* "/x/" is a regex; "/" alone is a name (collectd's ignorelist agrees). */
static bool is_regex(const char *text, size_t len) {
  return len >= 2 && text[0] == '/' && text[len - 1] == '/';
}

static int compile(name_pattern_t *pattern, const char *text, size_t len,
                   char *err, size_t err_size) {
  if (len == 2) {
    snprintf(err, err_size, "an empty regular expression");
    return -1;
  }
  char *body = strndup(text + 1, len - 2);
  if (body == NULL) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  int rc = regcomp(&pattern->regex, body, REG_EXTENDED | REG_NOSUB);
  free(body);
  if (rc != 0) {
    char why[128];
    regerror(rc, &pattern->regex, why, sizeof(why));
    snprintf(err, err_size, "a malformed regular expression: %s", why);
    return -1;
  }
  pattern->name = NULL;
  return 0;
}

int name_select_add(name_select_t *select, const char *text, char *err,
                    size_t err_size) {
  size_t len = strlen(text);
  if (len == 0) {
    snprintf(err, err_size, "an empty name");
    return -1;
  }
  /* Grown first: a compiled regex_t is not to be copied. */
  name_pattern_t *grown =
      realloc(select->patterns, (select->count + 1) * sizeof(*grown));
  if (grown == NULL) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  select->patterns = grown;
  name_pattern_t *pattern = &grown[select->count];
  if (is_regex(text, len)) {
    if (compile(pattern, text, len, err, err_size) != 0)
      return -1;
  } else if ((pattern->name = strdup(text)) == NULL) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  select->count++;
  return 0;
}

bool name_select_is_empty(const name_select_t *select) {
  return select->count == 0;
}

static bool matches(const name_pattern_t *pattern, const char *name) {
  if (pattern->name != NULL)
    return strcmp(pattern->name, name) == 0;
  return regexec(&pattern->regex, name, 0, NULL, 0) == 0;
}

bool name_select_takes(const name_select_t *select, const char *name) {
  if (select->count == 0)
    return true;
  bool matched = false;
  for (size_t i = 0; i < select->count && !matched; i++)
    matched = matches(&select->patterns[i], name);
  return matched != select->ignore_selected;
}
