/* Cgroup ids to paths relative to the cgroup2 root, as `ss --cgroup`
 * prints them ("/system.slice/nginx.service"; the root is "/"), cut to
 * fit collectd's instance fields.
 *
 * A cache, a hash table that grows and is reused: looking up a known id
 * costs one probe and no system call. The tree is touched only for ids the
 * cache does not know, after the read has asked for them all, and then by
 * at most `budget` units of work per read:
 * - open_by_handle_at() on the id (the id is the group's kernfs file
 *   handle), then readlink of /proc/self/fd/N, then name_to_handle_at() of
 *   that path to check it is still that group: one unit per id. Exact and
 *   cheap whatever the tree's size, but it needs CAP_DAC_READ_SEARCH; where
 *   the kernel refuses (EPERM: collectd not root, a container's default
 *   capabilities), it is given up for good in favour of
 * - a walk of the tree (cgroup_walk.h) comparing each directory's id with
 *   those asked for: one unit per directory, resuming at the next read
 *   where the budget ran out. An id that a whole pass begun after it was
 *   asked for did not meet is gone (cgroup ids are never reused).
 * Ids that cannot be named stay known as gone, so they cost nothing more.
 * An entry not asked for in CGROUP_NAMES_IDLE_READS reads is forgotten, so
 * the cache does not grow with every group that ever existed. */
#ifndef EPHEMERAL_PORTS_CGROUP_NAMES_H
#define EPHEMERAL_PORTS_CGROUP_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* collectd's instance fields: 127 bytes and a NUL. */
#define CGROUP_NAME_SIZE 128
/* Units of work (directories walked, handles opened) per read. A
 * directory costs about four system calls; 256 bound a read's extra cost
 * to a few milliseconds, and resolve most trees in one read. */
#define CGROUP_NAMES_DEFAULT_BUDGET 256
/* An hour of reads at collectd's default 10 s interval. */
#define CGROUP_NAMES_IDLE_READS 360

typedef struct {
  /* The cgroup2 mount point (cgroup_mount_t.path), or NULL when there is
   * none: every id is then unresolvable. */
  const char *mount_path;
  /* The group mounted there (cgroup_mount_t.root); NULL or "/" for the
   * whole hierarchy. Names are prefixed with it. */
  const char *mount_root;
  unsigned budget; /* 0: CGROUP_NAMES_DEFAULT_BUDGET */
  bool walk_only;  /* never open_by_handle_at (unit tests of the walk) */
} cgroup_names_config_t;

typedef struct cgroup_names cgroup_names_t;

/* Copies what config points to. Returns NULL when memory ran out. */
cgroup_names_t *cgroup_names_new(const cgroup_names_config_t *config);
void cgroup_names_free(cgroup_names_t *names);

/* Starts a read: renews the budget, forgets idle entries. */
void cgroup_names_begin_read(cgroup_names_t *names);

/* The name of id into name (CGROUP_NAME_SIZE bytes; NULL to ask only),
 * without touching the tree. The pseudo groups of cgroup_pseudo.h are
 * named too. Returns 0; -EAGAIN when id is not known yet (it is now asked
 * for: call cgroup_names_resolve, then ask again); -ENOENT when it cannot
 * be named (gone, outside the mount, no cgroup2 mount); -EINVAL for
 * CGROUP_ID_NONE; -ENOMEM. */
int cgroup_names_lookup(cgroup_names_t *names, uint64_t id, char *name);

/* Works on the ids asked for and not known, within the read's budget.
 * Returns how many are still not known (resolving goes on at the next
 * read), or a negative errno with a message in err when the mount cannot
 * be opened or is not a cgroup2 tree (they stay asked for). */
int cgroup_names_resolve(cgroup_names_t *names, char *err, size_t err_size);

/* Whether the group id was named for is still there, at that path: once
 * per read it looks (one name_to_handle_at), so that a group removed, or
 * moved, after it was named counts as gone. Returns 0 (there, a pseudo
 * group, or not known how to look), -ENOENT (gone, now for good), or
 * -EAGAIN when id has no name yet. */
int cgroup_names_verify(cgroup_names_t *names, uint64_t id);

/* 0 while ids are resolved by open_by_handle_at, else the errno that made
 * it give up for the walk (EPERM without CAP_DAC_READ_SEARCH), for the
 * caller to say once how paths are found. */
int cgroup_names_handle_error(const cgroup_names_t *names);

/* The instance for a path relative to the cgroup2 root ("/a/b", "/"): the
 * path when it fits in 127 bytes. A longer one keeps its end, which names
 * the service or container: "..." then 16 hex digits of the 64-bit FNV-1a
 * hash of the whole path (so two paths with the same end differ, and a
 * group recreated at the same path keeps its name), then the longest end
 * of the path that starts at a "/" and fits in the 108 bytes left (the
 * last 108 bytes, from a UTF-8 character's start, when the last component
 * alone is longer). */
void cgroup_name_format(const char *path, char *name);

#endif
