/* The namespaces other than collectd's own: those NetNamespace names, and
 * with AllNetNamespaces those found at each read, each named once when
 * first met. */
#include "read/collector_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static target_t *find_target(const collector_t *c, const netns_id_t *id) {
  for (size_t i = 0; i < c->others_count; i++)
    if (netns_id_equal(&c->others[i]->id, id))
      return c->others[i];
  return NULL;
}

static bool name_taken(const collector_t *c, const char *name) {
  for (size_t i = 0; i < c->others_count; i++)
    if (strcmp(c->others[i]->name, name) == 0)
      return true;
  return false;
}

/* Cut to what fits after "<Hostname>:", and made unique by appending
 * "-<inode>" (cutting further if need be) when another namespace has it. */
static char *unique_name(const collector_t *c, const char *base,
                         const netns_id_t *id) {
  size_t max = c->ops.netns_name_max;
  char name[256], suffix[32];
  snprintf(name, sizeof(name), "%.*s", (int)(max < 255 ? max : 255), base);
  if (name_taken(c, name)) {
    int n = snprintf(suffix, sizeof(suffix), "-%" PRIuMAX, (uintmax_t)id->ino);
    size_t keep = strlen(name);
    if (keep + (size_t)n > max)
      keep = max > (size_t)n ? max - (size_t)n : 0;
    snprintf(name + keep, sizeof(name) - keep, "%s", suffix);
  }
  return strdup(name);
}

typedef struct {
  const netns_id_t *id;
  char name[256];
  bool found;
} mount_lookup_t;

static void match_mount(const netns_found_t *found, void *ctx) {
  mount_lookup_t *lookup = ctx;
  if (lookup->found || found->mount_name == NULL ||
      !netns_id_equal(&found->id, lookup->id))
    return;
  snprintf(lookup->name, sizeof(lookup->name), "%s", found->mount_name);
  lookup->found = true;
}

/* The name DESIGN.md gives: its bind mount's, else the UTS hostname of a
 * process in it when that is not collectd's own, else netns-<inode>
 * (*by_inode then says so: another process met in the same discovery may
 * still name it). */
static char *name_of(const collector_t *c, const netns_id_t *id,
                     const char *mount_name, pid_t pid, bool *by_inode) {
  char name[256];
  *by_inode = false;
  if (mount_name != NULL) {
    snprintf(name, sizeof(name), "%s", mount_name);
  } else if (pid <= 0 || netns_uts_hostname(c->opts->proc_root, pid, c->own_uts,
                                            name, sizeof(name)) != 1) {
    snprintf(name, sizeof(name), "netns-%" PRIuMAX, (uintmax_t)id->ino);
    *by_inode = true;
  }
  return unique_name(c, name, id);
}

/* A namespace first met this discovery through a process that shares
 * collectd's hostname (a debugging nsenter, a CNI helper) takes the
 * hostname of a later process in it that has its own (the pod's). Once
 * the discovery that met it is over, its name stays. */
static void name_by_later_process(collector_t *c, target_t *t,
                                  const netns_found_t *found) {
  if (!t->named_by_inode || t->born != c->discovery || found->pid <= 0)
    return;
  char hostname[256];
  if (netns_uts_hostname(c->opts->proc_root, found->pid, c->own_uts, hostname,
                         sizeof(hostname)) != 1)
    return;
  char *name = unique_name(c, hostname, &t->id);
  if (name == NULL)
    return;
  free(t->name);
  t->name = name;
  t->named_by_inode = false;
}

static target_t *append_target(collector_t *c, const netns_id_t *id,
                               const char *path, char *name) {
  if (c->others_count == c->others_capacity) {
    size_t capacity = c->others_capacity ? 2 * c->others_capacity : 8;
    target_t **grown = realloc(c->others, capacity * sizeof(target_t *));
    if (grown == NULL) {
      free(name);
      return NULL;
    }
    c->others = grown;
    c->others_capacity = capacity;
  }
  target_t *t = calloc(1, sizeof(*t));
  if (t != NULL)
    t->path = strdup(path);
  if (t == NULL || t->path == NULL || name == NULL) {
    free(t != NULL ? t->path : NULL);
    free(t);
    free(name);
    return NULL;
  }
  t->id = *id;
  t->name = name;
  c->others[c->others_count++] = t;
  return t;
}

static void free_target(target_t *t) {
  target_forget(t);
  free(t->name);
  free(t->path);
  free(t);
}

/* The pid of a "<ProcRoot>/PID/ns/net" or "/proc/PID/ns/net" path, or 0. */
static pid_t pid_of_path(const collector_t *c, const char *path) {
  const char *roots[] = {c->opts->proc_root, "/proc"};
  for (size_t i = 0; i < 2; i++) {
    size_t len = strlen(roots[i]);
    if (strncmp(path, roots[i], len) != 0 || path[len] != '/')
      continue;
    char *end;
    long pid = strtol(path + len + 1, &end, 10);
    if (end != path + len + 1 && pid > 0 && strcmp(end, "/ns/net") == 0)
      return (pid_t)pid;
  }
  return 0;
}

/* A configured path's namespace: named by its bind mount wherever that is,
 * else as the process the path goes through (/proc/PID/ns/net) is. */
static char *name_of_configured(const collector_t *c, const netns_id_t *id,
                                const char *path) {
  mount_lookup_t lookup = {.id = id};
  int skipped_error;
  netns_discover_mounts(match_mount, &lookup, &skipped_error);
  bool by_inode;
  return name_of(c, id, lookup.found ? lookup.name : NULL, pid_of_path(c, path),
                 &by_inode);
}

int targets_add_configured(collector_t *c, const char *path, char *err,
                           size_t err_size) {
  netns_id_t id;
  int fd = netns_open(path, &id, err, err_size);
  if (fd < 0)
    return -1;
  close(fd);
  if (netns_id_equal(&id, &c->own_id)) {
    collector_log(c, LOG_INFO,
                  "NetNamespace \"%s\" is collectd's own network "
                  "namespace: measured once, under the plain host",
                  path);
    return 0;
  }
  if (find_target(c, &id) != NULL)
    return 0; /* named twice: measured once */
  char *name = name_of_configured(c, &id, path);
  target_t *t = append_target(c, &id, path, name);
  if (t == NULL) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  t->configured = true;
  c->configured_count = c->others_count;
  return 0;
}

static void found_namespace(const netns_found_t *found, void *ctx) {
  collector_t *c = ctx;
  /* Every namespace lives on the one nsfs: anything else under /run/netns
   * is a file left behind (a failed `ip netns add`), not a namespace. */
  if (found->id.dev != c->own_id.dev || netns_id_equal(&found->id, &c->own_id))
    return;
  target_t *t = find_target(c, &found->id);
  if (t != NULL) {
    if (!t->configured)
      name_by_later_process(c, t, found);
    if (!t->configured && t->seen != c->discovery) {
      t->seen = c->discovery;
      if (strcmp(t->path, found->path) != 0) {
        char *path = strdup(found->path);
        if (path != NULL) {
          free(t->path);
          t->path = path;
        }
      }
    }
    return;
  }
  bool by_inode;
  char *name = name_of(c, &found->id, found->mount_name, found->pid, &by_inode);
  t = append_target(c, &found->id, found->path, name);
  if (t != NULL) {
    t->seen = t->born = c->discovery;
    t->named_by_inode = by_inode;
  }
}

void targets_discover(collector_t *c) {
  if (++c->discovery == 0)
    c->discovery = 1;
  int error;
  unsigned skipped =
      netns_discover(c->opts->proc_root, found_namespace, c, &error);
  /* Without CAP_SYS_PTRACE, other users' processes do not show their
   * namespaces: the same blind spot as a refused setns. (With it, a
   * process can still refuse, as a sandbox's init does; what it hides is
   * seen through the other processes in its namespace, or not at all.) */
  if (skipped > 0 && (error == EACCES || error == EPERM) && !c->can_ptrace)
    collector_note_privilege(c, "reading /proc/PID/ns/net", error);
}

int targets_retarget(collector_t *c, target_t *t, char *err, size_t err_size) {
  netns_id_t id;
  int fd = netns_open(t->path, &id, err, err_size);
  if (fd < 0)
    return fd;
  close(fd);
  char *name = name_of_configured(c, &id, t->path);
  if (name == NULL) {
    snprintf(err, err_size, "out of memory");
    return -ENOMEM;
  }
  free(t->name);
  t->name = name;
  t->id = id;
  t->failing = false;
  target_forget(t);
  return 0;
}

void targets_sweep(collector_t *c) {
  size_t kept = c->configured_count;
  for (size_t i = c->configured_count; i < c->others_count; i++) {
    if (c->others[i]->seen == c->discovery)
      c->others[kept++] = c->others[i];
    else
      free_target(c->others[i]);
  }
  c->others_count = kept;
}

void targets_free(collector_t *c) {
  for (size_t i = 0; i < c->others_count; i++)
    free_target(c->others[i]);
  free(c->others);
  c->others = NULL;
  c->others_count = c->others_capacity = c->configured_count = 0;
}
