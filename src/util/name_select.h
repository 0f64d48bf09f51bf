/* A selection of names in collectd's convention (the interface and disk
 * plugins' Interface / Disk with IgnoreSelected): a list of exact names
 * and "/regex/" patterns (POSIX extended); with IgnoreSelected false only
 * the names it matches are taken, with true all but those; an empty list
 * takes every name. */
#ifndef EPHEMERAL_PORTS_NAME_SELECT_H
#define EPHEMERAL_PORTS_NAME_SELECT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct name_pattern name_pattern_t;

typedef struct {
  name_pattern_t *patterns;
  size_t count;
  bool ignore_selected;
} name_select_t;

void name_select_init(name_select_t *select);
void name_select_free(name_select_t *select);

/* Adds an exact name, or a regex written "/.../". Returns 0, or -1 with
 * the reason in err (an empty name, an empty or malformed regex, no
 * memory) and the selection unchanged. */
int name_select_add(name_select_t *select, const char *text, char *err,
                    size_t err_size);

bool name_select_is_empty(const name_select_t *select);

/* Whether name is taken: matched and IgnoreSelected false, or not matched
 * and IgnoreSelected true. */
bool name_select_takes(const name_select_t *select, const char *name);

#endif
