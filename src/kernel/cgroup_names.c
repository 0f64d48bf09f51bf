#include "kernel/cgroup_names.h"

#include "kernel/cgroup_pseudo.h"
#include "kernel/cgroup_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INITIAL_CAPACITY 32
/* "..." and 16 hex digits before the kept end of a long path. */
#define CUT_PREFIX_LEN 19

enum { ENTRY_FREE, ENTRY_ASKED, ENTRY_FOUND, ENTRY_GONE };

typedef struct {
  uint64_t id;
  uint32_t last_read; /* the read that last asked for it */
  uint32_t verified;  /* ENTRY_FOUND: the read that last saw it still there */
  char *path;         /* ENTRY_FOUND: below the mount, for verifying */
  uint32_t pass;      /* ENTRY_ASKED: the walk's pass that must end first */
  uint8_t state;
  char name[CGROUP_NAME_SIZE];
} entry_t;

struct cgroup_names {
  char *mount_path; /* without a trailing '/': "" for a mount at "/" */
  char *mount_root; /* NULL for the whole hierarchy */
  bool has_mount;
  bool walk_only;
  int handle_error;
  unsigned budget;
  unsigned left; /* of the budget, in this read */
  uint32_t read;
  entry_t *slots;
  size_t capacity; /* a power of two, or 0 */
  size_t count;    /* entries in use */
  size_t asked;    /* entries in ENTRY_ASKED */
  cgroup_walk_t walk;
};

static uint64_t fnv1a64(const char *text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (; *text != '\0'; text++)
    hash = (hash ^ (uint8_t)*text) * 0x100000001b3ULL;
  return hash;
}

void cgroup_name_format(const char *path, char *name) {
  size_t len = strlen(path);
  if (len < CGROUP_NAME_SIZE) {
    memcpy(name, path, len + 1);
    return;
  }
  snprintf(name, CGROUP_NAME_SIZE, "...%016" PRIx64, fnv1a64(path));
  size_t room = CGROUP_NAME_SIZE - 1 - CUT_PREFIX_LEN;
  const char *tail = path + len - room;
  const char *slash = strchr(tail, '/');
  if (slash != NULL)
    tail = slash;
  else
    while ((*tail & 0xc0) == 0x80) /* a UTF-8 continuation byte */
      tail++;
  memcpy(name + CUT_PREFIX_LEN, tail, strlen(tail) + 1);
}

cgroup_names_t *cgroup_names_new(const cgroup_names_config_t *config) {
  cgroup_names_t *names = calloc(1, sizeof(*names));
  if (names == NULL)
    return NULL;
  names->has_mount = config->mount_path != NULL;
  names->mount_path = strdup(names->has_mount ? config->mount_path : "");
  const char *root = config->mount_root;
  if (root != NULL && strcmp(root, "/") != 0)
    names->mount_root = strdup(root);
  if (names->mount_path == NULL ||
      (root != NULL && strcmp(root, "/") != 0 && names->mount_root == NULL)) {
    cgroup_names_free(names);
    return NULL;
  }
  size_t len = strlen(names->mount_path);
  while (len > 0 && names->mount_path[len - 1] == '/')
    names->mount_path[--len] = '\0';
  names->walk_only = config->walk_only;
  names->budget = config->budget ? config->budget : CGROUP_NAMES_DEFAULT_BUDGET;
  names->left = names->budget;
  cgroup_walk_init(&names->walk);
  return names;
}

void cgroup_names_free(cgroup_names_t *names) {
  if (names == NULL)
    return;
  free(names->mount_path);
  free(names->mount_root);
  for (size_t i = 0; i < names->capacity; i++)
    free(names->slots[i].path);
  free(names->slots);
  cgroup_walk_free(&names->walk);
  free(names);
}

int cgroup_names_handle_error(const cgroup_names_t *names) {
  return names->handle_error;
}

static size_t home_of(const cgroup_names_t *names, uint64_t id) {
  uint64_t hash = (id ^ 0x9e3779b97f4a7c15ULL) * 0xff51afd7ed558ccdULL;
  return (size_t)(hash ^ (hash >> 32)) & (names->capacity - 1);
}

static entry_t *find_slot(const cgroup_names_t *names, uint64_t id) {
  size_t mask = names->capacity - 1;
  for (size_t i = home_of(names, id);; i = (i + 1) & mask) {
    entry_t *slot = &names->slots[i];
    if (slot->state == ENTRY_FREE || slot->id == id)
      return slot;
  }
}

static entry_t *lookup(const cgroup_names_t *names, uint64_t id) {
  if (names->capacity == 0)
    return NULL;
  entry_t *slot = find_slot(names, id);
  return slot->state != ENTRY_FREE ? slot : NULL;
}

static int grow(cgroup_names_t *names) {
  entry_t *old = names->slots;
  size_t old_capacity = names->capacity;
  size_t capacity = old_capacity ? old_capacity * 2 : INITIAL_CAPACITY;
  names->slots = calloc(capacity, sizeof(*names->slots));
  if (names->slots == NULL) {
    names->slots = old;
    return -ENOMEM;
  }
  names->capacity = capacity;
  for (size_t i = 0; i < old_capacity; i++)
    if (old[i].state != ENTRY_FREE)
      *find_slot(names, old[i].id) = old[i];
  free(old);
  return 0;
}

/* Empties slot i of a linear-probing table without tombstones: the
 * entries after it in its run move back where their probe finds them. */
static void remove_at(cgroup_names_t *names, size_t i) {
  size_t mask = names->capacity - 1;
  free(names->slots[i].path);
  names->slots[i].path = NULL;
  if (names->slots[i].state == ENTRY_ASKED)
    names->asked--;
  names->count--;
  for (size_t j = (i + 1) & mask; names->slots[j].state != ENTRY_FREE;
       j = (j + 1) & mask) {
    size_t home = home_of(names, names->slots[j].id);
    /* Movable to i unless its home lies cyclically in (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      names->slots[i] = names->slots[j];
      i = j;
    }
  }
  names->slots[i].state = ENTRY_FREE;
}

void cgroup_names_begin_read(cgroup_names_t *names) {
  names->read++;
  names->left = names->budget;
  for (size_t i = 0; i < names->capacity;) {
    const entry_t *slot = &names->slots[i];
    if (slot->state != ENTRY_FREE &&
        names->read - slot->last_read > CGROUP_NAMES_IDLE_READS)
      remove_at(names, i); /* another entry may have moved into i */
    else
      i++;
  }
}

static int pseudo_name(uint64_t id, char *name) {
  const char *pseudo = id == CGROUP_ID_UNKNOWN     ? CGROUP_NAME_UNKNOWN
                       : id == CGROUP_ID_TIME_WAIT ? CGROUP_NAME_TIME_WAIT
                                                   : NULL;
  if (pseudo == NULL)
    return -1;
  if (name != NULL)
    snprintf(name, CGROUP_NAME_SIZE, "%s", pseudo);
  return 0;
}

int cgroup_names_lookup(cgroup_names_t *names, uint64_t id, char *name) {
  if (id == CGROUP_ID_NONE)
    return -EINVAL;
  if (pseudo_name(id, name) == 0)
    return 0;
  if (!names->has_mount)
    return -ENOENT;
  entry_t *entry = lookup(names, id);
  if (entry == NULL) {
    /* Load factor at most 1/2 keeps probe runs short. */
    if ((names->count + 1) * 2 > names->capacity && grow(names) != 0)
      return -ENOMEM;
    entry = find_slot(names, id);
    *entry =
        (entry_t){.id = id, .state = ENTRY_ASKED, .pass = names->walk.pass + 1};
    names->count++;
    names->asked++;
  }
  entry->last_read = names->read;
  if (entry->state == ENTRY_FOUND && name != NULL)
    memcpy(name, entry->name, CGROUP_NAME_SIZE);
  return entry->state == ENTRY_FOUND  ? 0
         : entry->state == ENTRY_GONE ? -ENOENT
                                      : -EAGAIN;
}

/* Names entry from its path relative to the mount ("" for its root). */
static void record(cgroup_names_t *names, entry_t *entry, const char *path) {
  char full[2 * PATH_MAX];
  if (names->mount_root != NULL)
    snprintf(full, sizeof(full), "%s%s", names->mount_root, path);
  else
    snprintf(full, sizeof(full), "%s", path[0] != '\0' ? path : "/");
  cgroup_name_format(full, entry->name);
  entry->state = ENTRY_FOUND;
  entry->verified = names->read;
  /* Without it the group is not verified again: it keeps its name. */
  entry->path = strdup(path[0] == '/' ? path + 1 : path);
  names->asked--;
}

static void forget(cgroup_names_t *names, entry_t *entry) {
  entry->state = ENTRY_GONE;
  names->asked--;
}

/* The path of id relative to the mount, by its file handle. Returns 0, 1
 * when the group is gone (or outside the mount), or the negative errno that
 * makes handles unusable here (EPERM without CAP_DAC_READ_SEARCH). */
static int path_by_handle(const cgroup_names_t *names, int mount_fd,
                          int handle_type, uint64_t id, char *path,
                          size_t size) {
  union {
    struct file_handle handle;
    char bytes[sizeof(struct file_handle) + sizeof(uint64_t)];
  } buf;
  buf.handle.handle_bytes = sizeof(id);
  buf.handle.handle_type = handle_type;
  memcpy(buf.handle.f_handle, &id, sizeof(id));
  path[0] = '\0';
  int fd = open_by_handle_at(mount_fd, &buf.handle, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    return error == ESTALE || error == ENOENT ? 1 : -error;
  }
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t len = readlink(link, path, size - 1);
  int error = errno;
  close(fd);
  if (len < 0)
    return error == ENOMEM ? -ENOMEM : -error; /* no /proc: give up */
  path[len] = '\0';
  size_t mount_len = strlen(names->mount_path);
  if (strncmp(path, names->mount_path, mount_len) != 0 ||
      (path[mount_len] != '\0' && path[mount_len] != '/'))
    return 1;
  memmove(path, path + mount_len, (size_t)len - mount_len + 1);
  /* Still that group at that path: not removed or renamed meanwhile. */
  uint64_t check;
  int mount_id;
  if (cgroup_dir_id(mount_fd, path[0] != '\0' ? path + 1 : "", &check,
                    &mount_id, NULL) != 0 ||
      check != id)
    return 1;
  return 0;
}

static bool is_transient(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM ||
         error == EINTR;
}

/* Returns 0, or the negative errno of a passing failure (out of file
 * descriptors or memory): the ids then stay asked for. */
static int resolve_by_handle(cgroup_names_t *names, int mount_fd,
                             int handle_type) {
  char path[PATH_MAX];
  for (size_t i = 0; i < names->capacity && names->asked > 0; i++) {
    entry_t *entry = &names->slots[i];
    if (entry->state != ENTRY_ASKED)
      continue;
    if (names->left == 0)
      return 0;
    names->left--;
    int rc = path_by_handle(names, mount_fd, handle_type, entry->id, path,
                            sizeof(path));
    if (rc < 0 && is_transient(-rc))
      return rc;
    if (rc < 0) {
      names->handle_error = -rc;
      return 0;
    }
    if (rc == 0)
      record(names, entry, path);
    else
      forget(names, entry);
  }
  return 0;
}

static void visit_directory(uint64_t id, const char *path, void *ctx) {
  cgroup_names_t *names = ctx;
  entry_t *entry = lookup(names, id);
  if (entry != NULL && entry->state == ENTRY_ASKED)
    record(names, entry, path);
}

/* Walks while ids are asked for and the budget lasts; a pass that ends
 * makes gone the ids asked for before it began. */
static int resolve_by_walk(cgroup_names_t *names, int mount_fd) {
  while (names->asked > 0 && names->left > 0) {
    uint32_t pass = cgroup_walk_start(&names->walk);
    if (pass == 0)
      return -ENOMEM;
    int rc = cgroup_walk_step(&names->walk, mount_fd, &names->left,
                              visit_directory, names);
    if (rc < 0)
      return rc;
    if (rc == 0)
      return 0;
    for (size_t i = 0; i < names->capacity; i++) {
      entry_t *entry = &names->slots[i];
      if (entry->state == ENTRY_ASKED && entry->pass <= pass)
        forget(names, entry);
    }
  }
  return 0;
}

int cgroup_names_verify(cgroup_names_t *names, uint64_t id) {
  if (pseudo_name(id, NULL) == 0)
    return 0;
  entry_t *entry = names->has_mount ? lookup(names, id) : NULL;
  if (entry == NULL || entry->state != ENTRY_FOUND)
    return entry != NULL && entry->state == ENTRY_GONE ? -ENOENT : -EAGAIN;
  if (entry->verified == names->read || entry->path == NULL)
    return 0;
  char full[2 * PATH_MAX];
  snprintf(full, sizeof(full), "%s/%s", names->mount_path, entry->path);
  uint64_t check;
  int mount_id;
  int rc = cgroup_dir_id(AT_FDCWD, full, &check, &mount_id, NULL);
  if (rc == 0 && check == id) {
    entry->verified = names->read;
    return 0;
  }
  if (rc != 0 && is_transient(-rc))
    return 0; /* cannot tell now: the next read asks again */
  entry->state = ENTRY_GONE;
  free(entry->path);
  entry->path = NULL;
  return -ENOENT;
}

int cgroup_names_resolve(cgroup_names_t *names, char *err, size_t err_size) {
  if (names->asked == 0)
    return 0;
  int mount_fd = open(names->mount_path[0] != '\0' ? names->mount_path : "/",
                      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd < 0) {
    int rc = -errno;
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "cgroup2 mount %s: %s", names->mount_path,
               strerror(-rc));
    return rc;
  }
  uint64_t root_id;
  int mount_id, handle_type;
  int rc = cgroup_dir_id(mount_fd, "", &root_id, &mount_id, &handle_type);
  if (rc != 0) {
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "cgroup2 mount %s: no 8-byte file handles: %s",
               names->mount_path, strerror(-rc));
  } else {
    if (!names->walk_only && names->handle_error == 0)
      rc = resolve_by_handle(names, mount_fd, handle_type);
    if (rc == 0 && (names->walk_only || names->handle_error != 0))
      rc = resolve_by_walk(names, mount_fd);
    if (rc == 0)
      rc = names->asked < INT_MAX ? (int)names->asked : INT_MAX;
    else if (err != NULL && err_size > 0)
      snprintf(err, err_size, "cgroup2 mount %s: %s", names->mount_path,
               strerror(-rc));
  }
  close(mount_fd);
  return rc;
}
