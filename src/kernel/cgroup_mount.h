/* Where the cgroup v2 hierarchy is mounted, from mountinfo: /sys/fs/cgroup
 * on unified hosts, /sys/fs/cgroup/unified on hybrid ones, nowhere on hosts
 * with cgroup v1 only. Never assumed, always looked up. */
#ifndef EPHEMERAL_PORTS_CGROUP_MOUNT_H
#define EPHEMERAL_PORTS_CGROUP_MOUNT_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
  /* The mount point, its octal escapes (\040 for a blank, ...) undone. */
  char path[PATH_MAX];
  /* The group of the hierarchy that is mounted there: "/" for the whole
   * hierarchy; a container may have only its own subtree mounted. */
  char root[PATH_MAX];
} cgroup_mount_t;

/* Parses mountinfo text (proc(5): "ID PARENT MAJ:MIN ROOT MOUNT_POINT
 * OPTIONS [TAGS...] - FSTYPE SOURCE SUPER_OPTIONS" per line, lines of any
 * length) and picks the first cgroup2 mount of the whole hierarchy (root
 * "/"), else the first cgroup2 mount. Returns 0, -ENOENT when there is no
 * cgroup2 mount, -EINVAL for a malformed line (too few fields, no "-"
 * separator, ids that are not numbers, a NUL byte; in a cgroup2 line also
 * an escape giving NUL or a path longer than PATH_MAX), or -ENOMEM or -EIO;
 * err gets a message naming the line. */
int cgroup_mount_parse(FILE *mountinfo, cgroup_mount_t *mount, char *err,
                       size_t err_size);

/* Reads <proc_root>/self/mountinfo (the process's own mount namespace, as
 * the cgroup tree is then opened by these paths). Returns as
 * cgroup_mount_parse, or the negative errno of opening the file; err names
 * the file. */
int cgroup_mount_find(const char *proc_root, cgroup_mount_t *mount, char *err,
                      size_t err_size);

#endif
