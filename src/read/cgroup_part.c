/* Who holds the ports: the per-cgroup part of a target's reading. The
 * scan counts pool ports per owner's cgroup id (snapshot.c); here the ids
 * get names, those that cannot be named fold into "unknown", and the
 * busiest TopCgroups groups, then the drop-outs, become the reading. */
#include "read/collector_internal.h"

#include "kernel/cgroup_mount.h"
#include "kernel/cgroup_pseudo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define UNKNOWN_REASON                                                         \
  "every pool port counts under \"" CGROUP_NAME_UNKNOWN                        \
  "\", a TIME_WAIT socket's under \"" CGROUP_NAME_TIME_WAIT "\""

int cgroup_part_init(collector_t *c) {
  unsigned top = c->opts->top_cgroups;
  if (top == 0)
    return 0;
  for (size_t i = 0; i < 2; i++)
    cgroup_usage_init(&c->cgroups[i]);
  c->cgroup_top = calloc(top, sizeof(*c->cgroup_top));
  c->cgroup_readings = calloc(4 * (size_t)top, sizeof(*c->cgroup_readings));
  c->cgroup_ids = calloc(2 * (size_t)top, sizeof(*c->cgroup_ids));
  if (c->cgroup_top == NULL || c->cgroup_readings == NULL ||
      c->cgroup_ids == NULL)
    return -1;
  if (c->source == SOURCE_PROC) {
    collector_log(c, LOG_INFO,
                  "cgroup: /proc/net does not say which cgroup "
                  "owns a socket: " UNKNOWN_REASON);
    return 0;
  }
  cgroup_mount_t mount;
  char err[256];
  int rc = cgroup_mount_find(c->opts->proc_root, &mount, err, sizeof(err));
  if (rc != 0) {
    collector_log(c, LOG_INFO, "cgroup: %s: " UNKNOWN_REASON, err);
    return 0;
  }
  cgroup_names_config_t config = {.mount_path = mount.path,
                                  .mount_root = mount.root};
  c->cgroup_names = cgroup_names_new(&config);
  return c->cgroup_names != NULL ? 0 : -1;
}

void cgroup_part_free(collector_t *c) {
  if (c->cgroup_top == NULL)
    return;
  for (size_t i = 0; i < 2; i++)
    cgroup_usage_free(&c->cgroups[i]);
  cgroup_names_free(c->cgroup_names);
  c->cgroup_names = NULL;
  free(c->cgroup_top);
  free(c->cgroup_readings);
  free(c->cgroup_ids);
  free(c->unnamed);
  c->cgroup_top = NULL;
  c->unnamed = NULL;
}

cgroup_usage_t *cgroup_part_usage(collector_t *c, size_t index) {
  return c->opts->top_cgroups > 0 ? &c->cgroups[index] : NULL;
}

void cgroup_part_begin_read(collector_t *c) {
  if (c->cgroup_names != NULL)
    cgroup_names_begin_read(c->cgroup_names);
}

void cgroup_part_forget(target_t *t) {
  for (size_t i = 0; i < 2; i++) {
    free(t->reported_cgroups[i].groups);
    t->reported_cgroups[i].groups = NULL;
    t->reported_cgroups[i].count = 0;
  }
}

/* Says once how paths are found when the kernel will not open a cgroup by
 * its id, and once when the tree cannot be read at all. */
static void note_resolving(collector_t *c, int rc, const char *err) {
  if (rc < 0 && !c->cgroup_tree_complained) {
    c->cgroup_tree_complained = true;
    collector_log(c, LOG_INFO,
                  "cgroup: %s: groups not named yet count under \"%s\"", err,
                  CGROUP_NAME_UNKNOWN);
  }
  int handle_error = cgroup_names_handle_error(c->cgroup_names);
  if (handle_error != 0 && !c->cgroup_walk_noted) {
    c->cgroup_walk_noted = true;
    collector_log(c, LOG_INFO,
                  "cgroup: paths are found by walking the cgroup2 tree "
                  "(open_by_handle_at: %s; it needs CAP_DAC_READ_SEARCH)",
                  strerror(handle_error));
  }
}

/* Asks for every group's name, resolves what the read's budget allows, and
 * folds the groups that cannot be named (yet) into "unknown". Returns 0 or
 * -ENOMEM. */
static int name_groups(collector_t *c, cgroup_usage_t *usage) {
  size_t count = cgroup_usage_count(usage);
  if (count > c->unnamed_capacity) {
    uint64_t *grown = realloc(c->unnamed, count * sizeof(*grown));
    if (grown == NULL)
      return -ENOMEM;
    c->unnamed = grown;
    c->unnamed_capacity = count;
  }
  size_t unnamed = 0;
  bool asked = false;
  for (size_t i = 0; i < count; i++) {
    uint64_t id = cgroup_usage_at(usage, i)->id;
    int rc =
        c->cgroup_names != NULL
            ? cgroup_names_lookup(c->cgroup_names, id, NULL)
            : (id == CGROUP_ID_UNKNOWN || id == CGROUP_ID_TIME_WAIT ? 0
                                                                    : -ENOENT);
    asked |= rc == -EAGAIN;
    if (rc != 0)
      c->unnamed[unnamed++] = id;
  }
  if (asked) {
    char err[256] = "";
    note_resolving(c, cgroup_names_resolve(c->cgroup_names, err, sizeof(err)),
                   err);
    size_t still = 0;
    for (size_t i = 0; i < unnamed; i++)
      if (cgroup_names_lookup(c->cgroup_names, c->unnamed[i], NULL) != 0)
        c->unnamed[still++] = c->unnamed[i];
    unnamed = still;
  }
  if (unnamed == 0)
    return 0;
  return cgroup_usage_fold(usage, c->unnamed, unnamed, CGROUP_ID_UNKNOWN);
}

/* collectd turns every '/' of a name into '_' (a leading one dropped, "/"
 * alone into "root") before any writer sees it; the plugin does it first,
 * so that it can tell when two groups would come out the same. */
static void escape_name(const char *path, char *name) {
  const char *from = path[0] == '/' ? path + 1 : path;
  if (*from == '\0') {
    snprintf(name, CGROUP_NAME_SIZE, "root");
    return;
  }
  size_t i = 0;
  for (; from[i] != '\0' && i + 1 < CGROUP_NAME_SIZE; i++) {
    if (from[i] == '/')
      name[i] = '_';
    else
      name[i] = from[i];
  }
  name[i] = '\0';
}

static bool is_pseudo(uint64_t id) {
  return id == CGROUP_ID_UNKNOWN || id == CGROUP_ID_TIME_WAIT;
}

static void name_of(collector_t *c, uint64_t id, char *name);

/* A real group whose name a pseudo group has, or a group of smaller id
 * counted in this read, gets "-<id>": the same group keeps the same name
 * read after read, and two series never share one. */
static bool name_taken(collector_t *c, const cgroup_usage_t *usage,
                       const char *name, uint64_t id) {
  if (strcmp(name, CGROUP_NAME_UNKNOWN) == 0 ||
      strcmp(name, CGROUP_NAME_TIME_WAIT) == 0)
    return true;
  char other[CGROUP_NAME_SIZE];
  for (size_t i = 0; i < cgroup_usage_count(usage); i++) {
    const cgroup_count_t *group = cgroup_usage_at(usage, i);
    if (group->id >= id || group->ports == 0 || is_pseudo(group->id))
      continue;
    name_of(c, group->id, other);
    if (strcmp(other, name) == 0)
      return true;
  }
  return false;
}

static void make_unique(collector_t *c, const cgroup_usage_t *usage, char *name,
                        uint64_t id) {
  if (is_pseudo(id) || !name_taken(c, usage, name, id))
    return;
  char suffix[24];
  int len = snprintf(suffix, sizeof(suffix), "-%" PRIu64, id);
  size_t keep = strlen(name);
  if (keep + (size_t)len >= CGROUP_NAME_SIZE)
    keep = CGROUP_NAME_SIZE - 1 - (size_t)len;
  snprintf(name + keep, CGROUP_NAME_SIZE - keep, "%s", suffix);
}

static void name_of(collector_t *c, uint64_t id, char *name) {
  char path[CGROUP_NAME_SIZE];
  if (c->cgroup_names == NULL ||
      cgroup_names_lookup(c->cgroup_names, id, path) != 0)
    snprintf(path, sizeof(path), "%s",
             id == CGROUP_ID_TIME_WAIT ? CGROUP_NAME_TIME_WAIT
                                       : CGROUP_NAME_UNKNOWN);
  escape_name(path, name);
}

/* Remembers this read's top as what the target reported, with names, so
 * that a group that drops out is sent under the name it had. */
static void remember(reported_cgroups_t *reported, const cgroup_reading_t *out,
                     const uint64_t *ids, size_t count, unsigned top) {
  if (reported->groups == NULL && count > 0)
    reported->groups = calloc(top, sizeof(*reported->groups));
  reported->count = reported->groups != NULL ? count : 0;
  for (size_t i = 0; i < reported->count; i++) {
    reported->groups[i].id = ids[i];
    memcpy(reported->groups[i].name, out[i].name, CGROUP_NAME_SIZE);
  }
}

/* The busiest groups, after folding into unknown those that were removed
 * since they were named (a removed group's sockets live on without it). */
static size_t top_groups(collector_t *c, cgroup_usage_t *usage, size_t n) {
  size_t count = cgroup_usage_top(usage, c->cgroup_top, n);
  /* No room to note gone groups in (name_groups ran out of memory). */
  if (c->cgroup_names == NULL || c->unnamed_capacity < count)
    return count;
  /* Each fold can bring a group into the top that was not verified yet;
   * a few rounds are plenty (a group is verified once per read). */
  for (int round = 0; round < 4; round++) {
    size_t gone = 0;
    for (size_t i = 0; i < count; i++)
      if (cgroup_names_verify(c->cgroup_names, c->cgroup_top[i].id) == -ENOENT)
        c->unnamed[gone++] = c->cgroup_top[i].id;
    if (gone == 0 ||
        cgroup_usage_fold(usage, c->unnamed, gone, CGROUP_ID_UNKNOWN) != 0)
      break;
    count = cgroup_usage_top(usage, c->cgroup_top, n);
  }
  return count;
}

size_t cgroup_part_reading(collector_t *c, target_t *t, size_t index,
                           const cgroup_reading_t **readings) {
  size_t top_n = c->opts->top_cgroups;
  cgroup_usage_t *usage = &c->cgroups[index];
  /* Per protocol: the top, then as many that dropped out of the last. */
  cgroup_reading_t *out = c->cgroup_readings + index * 2 * top_n;
  uint64_t *ids = c->cgroup_ids;
  *readings = out;
  if (name_groups(c, usage) != 0)
    collector_log(c, LOG_WARNING,
                  "cgroup: out of memory: groups not named "
                  "yet are reported under their own names later");
  size_t count = top_groups(c, usage, top_n);
  for (size_t i = 0; i < count; i++) {
    ids[i] = c->cgroup_top[i].id;
    out[i].used = c->cgroup_top[i].ports;
    name_of(c, ids[i], out[i].name);
    make_unique(c, usage, out[i].name, ids[i]);
  }
  reported_cgroups_t *reported = &t->reported_cgroups[index];
  size_t n = count;
  for (size_t i = 0; i < reported->count; i++) {
    const reported_cgroup_t *was = &reported->groups[i];
    const cgroup_count_t *now = cgroup_usage_find(usage, was->id);
    if (now != NULL && now->in_top)
      continue;
    /* Its old name may be a top group's now: that series is sent. */
    bool sent = false;
    for (size_t j = 0; j < count && !sent; j++)
      sent = strcmp(out[j].name, was->name) == 0;
    if (sent)
      continue;
    ids[n] = was->id;
    out[n].used = now != NULL ? now->ports : 0;
    memcpy(out[n].name, was->name, CGROUP_NAME_SIZE);
    n++;
  }
  remember(reported, out, ids, count, (unsigned)top_n);
  return n;
}
