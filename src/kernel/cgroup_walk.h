/* A walk over a cgroup2 tree that can stop after any directory and go on
 * at the next read: the directories still to visit are a stack of paths
 * relative to the mount, so no descriptor is held between reads. Each
 * directory visited reports its cgroup id, the 8 bytes of its file handle
 * (name_to_handle_at: kernfs puts the id there; ext4 puts inode and
 * generation, which lets unit tests walk a tree of ordinary
 * directories). */
#ifndef EPHEMERAL_PORTS_CGROUP_WALK_H
#define EPHEMERAL_PORTS_CGROUP_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *paths;   /* the stack: NUL-terminated paths, last pushed last */
  size_t length; /* bytes of paths in use */
  size_t capacity;
  uint32_t pass; /* passes started so far */
  bool active;   /* a pass is under way */
} cgroup_walk_t;

/* One directory: its id and its path relative to the mount ("" for the
 * mount's root, else "/a/b"). */
typedef void (*cgroup_walk_fn)(uint64_t id, const char *path, void *ctx);

void cgroup_walk_init(cgroup_walk_t *walk);
void cgroup_walk_free(cgroup_walk_t *walk);

/* Starts a pass, from the mount's root, unless one is under way. Returns
 * the number of the pass under way, or 0 when memory ran out. */
uint32_t cgroup_walk_start(cgroup_walk_t *walk);

/* Visits directories of the pass under way from mount_fd (a descriptor of
 * the mount's root), each once, while *budget lasts, one from *budget per
 * directory, calling visit for each. Directories of another mount, that
 * vanish, cannot be opened (too long a path) or give a file handle that
 * is not 8 bytes are skipped with what is under them. Returns 1 when the
 * pass has ended (and no pass is under way), 0 when the budget ran out
 * first, or -ENOMEM (the pass then ends: start another). */
int cgroup_walk_step(cgroup_walk_t *walk, int mount_fd, unsigned *budget,
                     cgroup_walk_fn visit, void *ctx);

/* The 8-byte file handle of path under dir_fd ("" for dir_fd itself) as a
 * cgroup id, and its mount id. Returns 0, -EOVERFLOW when the handle is not
 * 8 bytes, or the negative errno of name_to_handle_at. */
int cgroup_dir_id(int dir_fd, const char *path, uint64_t *id, int *mount_id,
                  int *handle_type);

#endif
