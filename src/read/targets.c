#include "read/targets.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

struct targets {
  const options_t *opts;
  const log_sink_t *log;
  size_t name_max;
  /* The configured first. */
  target_t **list;
  size_t count;
  size_t capacity;
  size_t configured;
  unsigned discovery; /* number of the current discovery, from 1 */
  bool can_ptrace;    /* CAP_SYS_PTRACE: every /proc/PID/ns/net shows */
  netns_id_t own_id;
  /* How many targets each of NetNamespaceInterval's reads covers: a new
   * target takes the least loaded, so reads stay even as pods come and go. */
  unsigned *slot_load;
};

void target_forget(target_t *t) {
  reading_memory_forget(&t->reading);
  nat_memory_forget(&t->nat);
  cgroup_memory_forget(&t->cgroups);
}

static unsigned slot_count(const targets_t *targets) {
  return targets->opts->netns_every > 0 ? targets->opts->netns_every : 1;
}

static unsigned least_loaded_slot(const targets_t *targets) {
  unsigned best = 0;
  for (unsigned slot = 1; slot < slot_count(targets); slot++)
    if (targets->slot_load[slot] < targets->slot_load[best])
      best = slot;
  return best;
}

targets_t *targets_new(const options_t *opts, size_t name_max,
                       const log_sink_t *log) {
  targets_t *targets = calloc(1, sizeof(*targets));
  if (targets == NULL)
    return NULL;
  targets->opts = opts;
  targets->name_max = name_max;
  targets->log = log;
  targets->slot_load = calloc(slot_count(targets), sizeof(unsigned));
  if (targets->slot_load == NULL) {
    free(targets);
    return NULL;
  }
  return targets;
}

int targets_start(targets_t *targets, char *err, size_t err_size) {
  targets->can_ptrace = netns_has_capability(CAP_SYS_PTRACE);
  int rc = netns_self(&targets->own_id);
  if (rc != 0) {
    snprintf(err, err_size, "/proc/thread-self/ns/net: %s", strerror(-rc));
    return -1;
  }
  return 0;
}

static target_t *find_target(const targets_t *targets, const netns_id_t *id) {
  for (size_t i = 0; i < targets->count; i++)
    if (netns_id_equal(&targets->list[i]->id, id))
      return targets->list[i];
  return NULL;
}

/* By another namespace than id's: a target renamed keeps its own name. */
static bool name_taken(const targets_t *targets, const char *name,
                       const netns_id_t *id) {
  for (size_t i = 0; i < targets->count; i++)
    if (strcmp(targets->list[i]->name, name) == 0 &&
        !netns_id_equal(&targets->list[i]->id, id))
      return true;
  return false;
}

/* Cut to what fits after "<Hostname>:", and made unique by appending
 * "-<inode>" (cutting further if need be) when another namespace has it. */
static char *unique_name(const targets_t *targets, const char *base,
                         const netns_id_t *id) {
  size_t max = targets->name_max;
  char name[256], suffix[32];
  snprintf(name, sizeof(name), "%.*s", (int)(max < 255 ? max : 255), base);
  if (name_taken(targets, name, id)) {
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
static char *name_of(const targets_t *targets, int own_uts,
                     const netns_id_t *id, const char *mount_name, pid_t pid,
                     bool *by_inode) {
  char name[256];
  *by_inode = false;
  if (mount_name != NULL) {
    snprintf(name, sizeof(name), "%s", mount_name);
  } else if (pid <= 0 || netns_uts_hostname(targets->opts->proc_root, pid,
                                            own_uts, name, sizeof(name)) != 1) {
    snprintf(name, sizeof(name), "netns-%" PRIuMAX, (uintmax_t)id->ino);
    *by_inode = true;
  }
  return unique_name(targets, name, id);
}

/* A namespace first met this discovery through a process that shares
 * collectd's hostname (a debugging nsenter, a CNI helper) takes the
 * hostname of a later process in it that has its own (the pod's). Once
 * the discovery that met it is over, its name stays. */
static void name_by_later_process(targets_t *targets, int own_uts, target_t *t,
                                  const netns_found_t *found) {
  if (!t->named_by_inode || t->born != targets->discovery || found->pid <= 0)
    return;
  char hostname[256];
  if (netns_uts_hostname(targets->opts->proc_root, found->pid, own_uts,
                         hostname, sizeof(hostname)) != 1)
    return;
  char *name = unique_name(targets, hostname, &t->id);
  if (name == NULL)
    return;
  free(t->name);
  t->name = name;
  t->named_by_inode = false;
}

/* `ip netns add` unshares before it bind-mounts: a discovery in between
 * meets the new namespace through the ip process alone and names it
 * netns-<inode>. Its mount, met later, gives it the name it was made
 * with; a namespace that has a name of its own keeps it. */
static void name_by_later_mount(targets_t *targets, target_t *t,
                                const netns_found_t *found) {
  if (!t->named_by_inode || found->mount_name == NULL)
    return;
  char *name = unique_name(targets, found->mount_name, &t->id);
  if (name == NULL)
    return;
  free(t->name);
  t->name = name;
  t->named_by_inode = false;
  t->selection_known = false; /* chosen by its name */
  target_forget(t);
}

static target_t *append_target(targets_t *targets, const netns_id_t *id,
                               const char *path, char *name) {
  if (targets->count == targets->capacity) {
    size_t capacity = targets->capacity ? 2 * targets->capacity : 8;
    target_t **grown = realloc(targets->list, capacity * sizeof(target_t *));
    if (grown == NULL) {
      free(name);
      return NULL;
    }
    targets->list = grown;
    targets->capacity = capacity;
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
  t->slot = least_loaded_slot(targets);
  targets->slot_load[t->slot]++;
  targets->list[targets->count++] = t;
  return t;
}

static void free_target(targets_t *targets, target_t *t) {
  targets->slot_load[t->slot]--;
  target_forget(t);
  free(t->name);
  free(t->path);
  free(t);
}

/* The pid of a "<ProcRoot>/PID/ns/net" or "/proc/PID/ns/net" path, or 0. */
static pid_t pid_of_path(const targets_t *targets, const char *path) {
  const char *roots[] = {targets->opts->proc_root, "/proc"};
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
static char *name_of_configured(const targets_t *targets, int own_uts,
                                const netns_id_t *id, const char *path) {
  mount_lookup_t lookup = {.id = id};
  int skipped_error;
  netns_discover_mounts(match_mount, &lookup, &skipped_error);
  bool by_inode;
  return name_of(targets, own_uts, id, lookup.found ? lookup.name : NULL,
                 pid_of_path(targets, path), &by_inode);
}

int targets_add_configured(targets_t *targets, const char *path, int own_uts,
                           char *err, size_t err_size) {
  netns_id_t id;
  int fd = netns_open(path, &id, err, err_size);
  if (fd < 0)
    return -1;
  close(fd);
  if (netns_id_equal(&id, &targets->own_id)) {
    log_sink_printf(targets->log, LOG_INFO,
                    "NetNamespace \"%s\" is collectd's own network "
                    "namespace: measured once, under the plain host",
                    path);
    return 0;
  }
  if (find_target(targets, &id) != NULL)
    return 0; /* named twice: measured once */
  char *name = name_of_configured(targets, own_uts, &id, path);
  target_t *t = append_target(targets, &id, path, name);
  if (t == NULL) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  t->configured = true;
  targets->configured = targets->count;
  return 0;
}

typedef struct {
  targets_t *targets;
  int own_uts;
} discovery_t;

static void found_namespace(const netns_found_t *found, void *ctx) {
  const discovery_t *discovery = ctx;
  targets_t *targets = discovery->targets;
  /* Every namespace lives on the one nsfs: anything else under /run/netns
   * is a file left behind (a failed `ip netns add`), not a namespace. */
  if (found->id.dev != targets->own_id.dev ||
      netns_id_equal(&found->id, &targets->own_id))
    return;
  target_t *t = find_target(targets, &found->id);
  if (t != NULL) {
    if (!t->configured)
      name_by_later_mount(targets, t, found);
    if (!t->configured)
      name_by_later_process(targets, discovery->own_uts, t, found);
    if (!t->configured && t->seen != targets->discovery) {
      t->seen = targets->discovery;
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
  char *name = name_of(targets, discovery->own_uts, &found->id,
                       found->mount_name, found->pid, &by_inode);
  t = append_target(targets, &found->id, found->path, name);
  if (t != NULL) {
    t->seen = t->born = targets->discovery;
    t->named_by_inode = by_inode;
  }
}

void targets_discover(targets_t *targets, int own_uts, int *refused) {
  if (++targets->discovery == 0)
    targets->discovery = 1;
  discovery_t discovery = {targets, own_uts};
  int error;
  unsigned skipped = netns_discover(targets->opts->proc_root, found_namespace,
                                    &discovery, &error);
  /* Without CAP_SYS_PTRACE, other users' processes do not show their
   * namespaces: the same blind spot as a refused setns. (With it, a
   * process can still refuse, as a sandbox's init does; what it hides is
   * seen through the other processes in its namespace, or not at all.) */
  *refused =
      skipped > 0 && (error == EACCES || error == EPERM) && !targets->can_ptrace
          ? error
          : 0;
}

int targets_retarget(targets_t *targets, target_t *t, int own_uts, char *err,
                     size_t err_size) {
  netns_id_t id;
  int fd = netns_open(t->path, &id, err, err_size);
  if (fd < 0)
    return fd;
  close(fd);
  /* Its own before its name: the name it had is free for it again. */
  t->id = id;
  char *name = name_of_configured(targets, own_uts, &id, t->path);
  if (name == NULL) {
    snprintf(err, err_size, "out of memory");
    return -ENOMEM;
  }
  free(t->name);
  t->name = name;
  t->failing = false;
  t->tables = TABLES_UNKNOWN;
  t->cookie_known = false;
  t->read_before = false;
  t->selection_known = false;
  target_forget(t);
  return 0;
}

void targets_mark_gone(target_t *t) { t->seen = 0; }

bool targets_takes(const targets_t *targets, target_t *t) {
  if (!t->selection_known) {
    t->taken = name_select_takes(&targets->opts->netns_select, t->name);
    t->selection_known = true;
  }
  return t->taken;
}

bool targets_due(const targets_t *targets, const target_t *t,
                 unsigned read_number) {
  return !t->read_before || read_number % slot_count(targets) == t->slot;
}

void targets_sweep(targets_t *targets) {
  size_t kept = targets->configured;
  for (size_t i = targets->configured; i < targets->count; i++) {
    if (targets->list[i]->seen == targets->discovery)
      targets->list[kept++] = targets->list[i];
    else
      free_target(targets, targets->list[i]);
  }
  targets->count = kept;
}

size_t targets_count(const targets_t *targets) { return targets->count; }

size_t targets_configured(const targets_t *targets) {
  return targets->configured;
}

target_t *targets_at(targets_t *targets, size_t i) { return targets->list[i]; }

void targets_free(targets_t *targets) {
  if (targets == NULL)
    return;
  for (size_t i = 0; i < targets->count; i++)
    free_target(targets, targets->list[i]);
  free(targets->list);
  free(targets->slot_load);
  free(targets);
}
