#include "kernel/cgroup_walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cgroup_walk_init(cgroup_walk_t *walk) { memset(walk, 0, sizeof(*walk)); }

void cgroup_walk_free(cgroup_walk_t *walk) {
  free(walk->paths);
  cgroup_walk_init(walk);
}

int cgroup_dir_id(int dir_fd, const char *path, uint64_t *id, int *mount_id,
                  int *handle_type) {
  union {
    struct file_handle handle;
    char bytes[sizeof(struct file_handle) + sizeof(uint64_t)];
  } buf;
  buf.handle.handle_bytes = sizeof(uint64_t);
  int flags = path[0] == '\0' ? AT_EMPTY_PATH : 0;
  if (name_to_handle_at(dir_fd, path, &buf.handle, mount_id, flags) != 0)
    return errno > 0 ? -errno : -EIO;
  if (buf.handle.handle_bytes != sizeof(uint64_t))
    return -EOVERFLOW;
  memcpy(id, buf.handle.f_handle, sizeof(*id));
  if (handle_type != NULL)
    *handle_type = buf.handle.handle_type;
  return 0;
}

static int push(cgroup_walk_t *walk, const char *parent, const char *name) {
  size_t parent_len = strlen(parent), name_len = strlen(name);
  size_t need = parent_len + 1 + name_len + 1;
  if (walk->length + need > walk->capacity) {
    size_t capacity = walk->capacity ? walk->capacity : 4096;
    while (walk->length + need > capacity)
      capacity *= 2;
    char *paths = realloc(walk->paths, capacity);
    if (paths == NULL)
      return -ENOMEM;
    walk->paths = paths;
    walk->capacity = capacity;
  }
  snprintf(walk->paths + walk->length, need, "%s/%s", parent, name);
  walk->length += need;
  return 0;
}

uint32_t cgroup_walk_start(cgroup_walk_t *walk) {
  if (walk->active)
    return walk->pass;
  walk->length = 0;
  /* The root is the one path without a leading '/'. */
  if (walk->capacity == 0) {
    walk->paths = malloc(4096);
    if (walk->paths == NULL)
      return 0;
    walk->capacity = 4096;
  }
  walk->paths[0] = '\0';
  walk->length = 1;
  walk->active = true;
  if (++walk->pass == 0)
    walk->pass = 1;
  return walk->pass;
}

/* Pops the last path into path (PATH_MAX bytes); false when it is longer
 * (it is dropped: openat could not open it anyway). */
static bool pop(cgroup_walk_t *walk, char *path, size_t size) {
  size_t end = walk->length - 1; /* the last path's NUL */
  size_t start = end;
  while (start > 0 && walk->paths[start - 1] != '\0')
    start--;
  walk->length = start;
  if (end - start >= size)
    return false;
  memcpy(path, walk->paths + start, end - start + 1);
  return true;
}

static bool is_directory(int dir_fd, const struct dirent *entry) {
  if (entry->d_type != DT_UNKNOWN)
    return entry->d_type == DT_DIR;
  struct stat st;
  return fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISDIR(st.st_mode);
}

/* Pushes path's subdirectories. */
static int push_children(cgroup_walk_t *walk, int mount_fd, const char *path) {
  int fd = openat(mount_fd, path[0] == '\0' ? "." : path + 1,
                  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 0; /* gone, or not to be opened: skipped */
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    close(fd);
    return errno == ENOMEM ? -ENOMEM : 0;
  }
  int rc = 0;
  const struct dirent *entry;
  while (rc == 0 && (entry = readdir(dir)) != NULL) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0 ||
        !is_directory(dirfd(dir), entry))
      continue;
    rc = push(walk, path, entry->d_name);
  }
  closedir(dir);
  return rc;
}

int cgroup_walk_step(cgroup_walk_t *walk, int mount_fd, unsigned *budget,
                     cgroup_walk_fn visit, void *ctx) {
  uint64_t id = 0;
  int root_mount = 0, mount = 0;
  if (!walk->active)
    return 1;
  if (cgroup_dir_id(mount_fd, "", &id, &root_mount, NULL) != 0) {
    walk->active = false; /* the mount is not a tree that can be walked */
    return 1;
  }
  char path[PATH_MAX];
  while (walk->length > 0 && *budget > 0) {
    (*budget)--;
    if (!pop(walk, path, sizeof(path)))
      continue;
    const char *relative = path[0] == '\0' ? "" : path + 1;
    if (cgroup_dir_id(mount_fd, relative, &id, &mount, NULL) != 0 ||
        mount != root_mount)
      continue;
    visit(id, path, ctx);
    if (push_children(walk, mount_fd, path) != 0) {
      walk->active = false;
      walk->length = 0;
      return -ENOMEM;
    }
  }
  if (walk->length > 0)
    return 0;
  walk->active = false;
  return 1;
}
