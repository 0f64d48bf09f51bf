#include "read/cgroup_part.h"

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

struct cgroup_part {
  unsigned top_n; /* TopCgroups; 0: off */
  const log_sink_t *log;
  cgroup_usage_t usage[2];    /* pool ports per group, TCP and UDP */
  cgroup_names_t *names;      /* NULL: every group counts as unknown */
  cgroup_count_t *top;        /* scratch of top_n */
  cgroup_reading_t *readings; /* per protocol: the top, then as many
                                 drop-outs */
  uint64_t *ids;              /* the readings' ids, scratch */
  uint64_t *unnamed;          /* ids to fold, scratch */
  size_t unnamed_capacity;
  bool walk_noted;
  bool tree_complained;
};

/* Reading through /proc or without a cgroup2 mount, every owner is
 * unknown (names stays NULL); says so once. Returns 0, or -1 when memory
 * runs out. */
static int open_names(cgroup_part_t *part, const options_t *opts,
                      source_kind_t source) {
  if (source == SOURCE_PROC) {
    log_sink_printf(part->log, LOG_INFO,
                    "cgroup: /proc/net does not say which cgroup "
                    "owns a socket: " UNKNOWN_REASON);
    return 0;
  }
  cgroup_mount_t mount;
  char err[256];
  int rc = cgroup_mount_find(opts->proc_root, &mount, err, sizeof(err));
  if (rc != 0) {
    log_sink_printf(part->log, LOG_INFO, "cgroup: %s: " UNKNOWN_REASON, err);
    return 0;
  }
  cgroup_names_config_t config = {.mount_path = mount.path,
                                  .mount_root = mount.root};
  part->names = cgroup_names_new(&config);
  return part->names != NULL ? 0 : -1;
}

cgroup_part_t *cgroup_part_new(const options_t *opts, source_kind_t source,
                               const log_sink_t *log) {
  cgroup_part_t *part = calloc(1, sizeof(*part));
  if (part == NULL)
    return NULL;
  part->top_n = opts->top_cgroups;
  part->log = log;
  if (part->top_n == 0)
    return part;
  for (size_t i = 0; i < 2; i++)
    cgroup_usage_init(&part->usage[i]);
  part->top = calloc(part->top_n, sizeof(*part->top));
  part->readings = calloc(4 * (size_t)part->top_n, sizeof(*part->readings));
  part->ids = calloc(2 * (size_t)part->top_n, sizeof(*part->ids));
  if (part->top == NULL || part->readings == NULL || part->ids == NULL ||
      open_names(part, opts, source) != 0) {
    cgroup_part_free(part);
    return NULL;
  }
  return part;
}

void cgroup_part_free(cgroup_part_t *part) {
  if (part == NULL)
    return;
  if (part->top_n > 0)
    for (size_t i = 0; i < 2; i++)
      cgroup_usage_free(&part->usage[i]);
  cgroup_names_free(part->names);
  free(part->top);
  free(part->readings);
  free(part->ids);
  free(part->unnamed);
  free(part);
}

cgroup_usage_t *cgroup_part_usage(cgroup_part_t *part, size_t index) {
  return part->top_n > 0 ? &part->usage[index] : NULL;
}

void cgroup_part_begin_read(cgroup_part_t *part) {
  if (part->names != NULL)
    cgroup_names_begin_read(part->names);
}

void cgroup_memory_forget(cgroup_memory_t *memory) {
  for (size_t i = 0; i < 2; i++) {
    free(memory->protocols[i].groups);
    memory->protocols[i].groups = NULL;
    memory->protocols[i].count = 0;
  }
}

/* Says once how paths are found when the kernel will not open a cgroup by
 * its id, and once when the tree cannot be read at all. */
static void note_resolving(cgroup_part_t *part, int rc, const char *err) {
  if (rc < 0 && !part->tree_complained) {
    part->tree_complained = true;
    log_sink_printf(part->log, LOG_INFO,
                    "cgroup: %s: groups not named yet count under \"%s\"", err,
                    CGROUP_NAME_UNKNOWN);
  }
  int handle_error = cgroup_names_handle_error(part->names);
  if (handle_error != 0 && !part->walk_noted) {
    part->walk_noted = true;
    log_sink_printf(part->log, LOG_INFO,
                    "cgroup: paths are found by walking the cgroup2 tree "
                    "(open_by_handle_at: %s; it needs CAP_DAC_READ_SEARCH)",
                    strerror(handle_error));
  }
}

/* Asks for every group's name, resolves what the read's budget allows, and
 * folds the groups that cannot be named (yet) into "unknown". Returns 0 or
 * -ENOMEM. */
static int name_groups(cgroup_part_t *part, cgroup_usage_t *usage) {
  size_t count = cgroup_usage_count(usage);
  if (count > part->unnamed_capacity) {
    uint64_t *grown = realloc(part->unnamed, count * sizeof(*grown));
    if (grown == NULL)
      return -ENOMEM;
    part->unnamed = grown;
    part->unnamed_capacity = count;
  }
  size_t unnamed = 0;
  bool asked = false;
  for (size_t i = 0; i < count; i++) {
    uint64_t id = cgroup_usage_at(usage, i)->id;
    int rc =
        part->names != NULL
            ? cgroup_names_lookup(part->names, id, NULL)
            : (id == CGROUP_ID_UNKNOWN || id == CGROUP_ID_TIME_WAIT ? 0
                                                                    : -ENOENT);
    asked |= rc == -EAGAIN;
    if (rc != 0)
      part->unnamed[unnamed++] = id;
  }
  if (asked) {
    char err[256] = "";
    note_resolving(part, cgroup_names_resolve(part->names, err, sizeof(err)),
                   err);
    size_t still = 0;
    for (size_t i = 0; i < unnamed; i++)
      if (cgroup_names_lookup(part->names, part->unnamed[i], NULL) != 0)
        part->unnamed[still++] = part->unnamed[i];
    unnamed = still;
  }
  if (unnamed == 0)
    return 0;
  return cgroup_usage_fold(usage, part->unnamed, unnamed, CGROUP_ID_UNKNOWN);
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

static void name_of(cgroup_part_t *part, uint64_t id, char *name);

/* A real group whose name a pseudo group has, or a group of smaller id
 * counted in this read, gets "-<id>": the same group keeps the same name
 * read after read, and two series never share one. */
static bool name_taken(cgroup_part_t *part, const cgroup_usage_t *usage,
                       const char *name, uint64_t id) {
  if (strcmp(name, CGROUP_NAME_UNKNOWN) == 0 ||
      strcmp(name, CGROUP_NAME_TIME_WAIT) == 0)
    return true;
  char other[CGROUP_NAME_SIZE];
  for (size_t i = 0; i < cgroup_usage_count(usage); i++) {
    const cgroup_count_t *group = cgroup_usage_at(usage, i);
    if (group->id >= id || group->ports == 0 || is_pseudo(group->id))
      continue;
    name_of(part, group->id, other);
    if (strcmp(other, name) == 0)
      return true;
  }
  return false;
}

static void make_unique(cgroup_part_t *part, const cgroup_usage_t *usage,
                        char *name, uint64_t id) {
  if (is_pseudo(id) || !name_taken(part, usage, name, id))
    return;
  char suffix[24];
  int len = snprintf(suffix, sizeof(suffix), "-%" PRIu64, id);
  size_t keep = strlen(name);
  if (keep + (size_t)len >= CGROUP_NAME_SIZE)
    keep = CGROUP_NAME_SIZE - 1 - (size_t)len;
  snprintf(name + keep, CGROUP_NAME_SIZE - keep, "%s", suffix);
}

static void name_of(cgroup_part_t *part, uint64_t id, char *name) {
  char path[CGROUP_NAME_SIZE];
  if (part->names == NULL || cgroup_names_lookup(part->names, id, path) != 0)
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
static size_t top_groups(cgroup_part_t *part, cgroup_usage_t *usage, size_t n) {
  size_t count = cgroup_usage_top(usage, part->top, n);
  /* No room to note gone groups in (name_groups ran out of memory). */
  if (part->names == NULL || part->unnamed_capacity < count)
    return count;
  /* Each fold can bring a group into the top that was not verified yet;
   * a few rounds are plenty (a group is verified once per read). */
  for (int round = 0; round < 4; round++) {
    size_t gone = 0;
    for (size_t i = 0; i < count; i++)
      if (cgroup_names_verify(part->names, part->top[i].id) == -ENOENT)
        part->unnamed[gone++] = part->top[i].id;
    if (gone == 0 ||
        cgroup_usage_fold(usage, part->unnamed, gone, CGROUP_ID_UNKNOWN) != 0)
      break;
    count = cgroup_usage_top(usage, part->top, n);
  }
  return count;
}

cgroup_readings_t cgroup_part_reading(cgroup_part_t *part,
                                      cgroup_memory_t *memory, size_t index) {
  size_t top_n = part->top_n;
  if (top_n == 0)
    return (cgroup_readings_t){NULL, 0};
  cgroup_usage_t *usage = &part->usage[index];
  /* Per protocol: the top, then as many that dropped out of the last. */
  cgroup_reading_t *out = part->readings + index * 2 * top_n;
  uint64_t *ids = part->ids;
  if (name_groups(part, usage) != 0)
    log_sink_printf(part->log, LOG_WARNING,
                    "cgroup: out of memory: groups not named "
                    "yet are reported under their own names later");
  size_t count = top_groups(part, usage, top_n);
  for (size_t i = 0; i < count; i++) {
    ids[i] = part->top[i].id;
    out[i].used = part->top[i].ports;
    name_of(part, ids[i], out[i].name);
    make_unique(part, usage, out[i].name, ids[i]);
  }
  reported_cgroups_t *reported = &memory->protocols[index];
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
  return (cgroup_readings_t){out, n};
}
