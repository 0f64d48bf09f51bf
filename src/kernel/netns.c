#include "kernel/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

bool netns_id_equal(const netns_id_t *a, const netns_id_t *b) {
  return a->dev == b->dev && a->ino == b->ino;
}

static void id_of(const struct stat *st, netns_id_t *id) {
  id->dev = st->st_dev;
  id->ino = st->st_ino;
}

/* Linux 5.14's value, for headers that predate it. */
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int netns_cookie(uint64_t *cookie) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  socklen_t length = sizeof(*cookie);
  int rc = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &length) == 0
               ? 0
               : -errno;
  close(fd);
  if (rc == 0 && length != sizeof(*cookie))
    rc = -ENOPROTOOPT;
  return rc;
}

int netns_self(netns_id_t *id) {
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) != 0)
    return -errno;
  id_of(&st, id);
  return 0;
}

int netns_open(const char *path, netns_id_t *id, char *err, size_t err_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int rc = -errno;
    snprintf(err, err_size, "%s: %s", path, strerror(-rc));
    return rc;
  }
  struct stat st;
  /* NS_GET_NSTYPE (Linux 4.11) fails with ENOTTY on anything but an nsfs
   * file, so one call tells a network namespace from every other file. */
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET || fstat(fd, &st) != 0) {
    snprintf(err, err_size, "%s: not a network namespace", path);
    close(fd);
    return -EINVAL;
  }
  id_of(&st, id);
  return fd;
}

/* Skips dot entries and, for /proc, everything but process ids. */
static bool wanted_entry(const struct dirent *entry, bool pids_only) {
  if (entry->d_name[0] == '.')
    return false;
  if (!pids_only)
    return true;
  for (const char *c = entry->d_name; *c != '\0'; c++)
    if (*c < '0' || *c > '9')
      return false;
  return true;
}

typedef struct {
  netns_found_fn found;
  void *ctx;
  unsigned skipped;
  int first_error;
} walk_t;

static void skip(walk_t *walk, int error) {
  if (walk->skipped++ == 0)
    walk->first_error = error;
}

/* stat() follows /proc/PID/ns/net to the namespace's nsfs inode and takes
 * no descriptor; a bind mount under /run/netns is that inode already. */
static void walk_dir(walk_t *walk, const char *dir, const char *suffix,
                     bool pids) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    if (errno != ENOENT)
      skip(walk, errno);
    return;
  }
  struct dirent *entry;
  char path[512];
  while ((entry = readdir(d)) != NULL) {
    if (!wanted_entry(entry, pids))
      continue;
    int n = snprintf(path, sizeof(path), "%s/%s%s", dir, entry->d_name, suffix);
    struct stat st;
    if (n < 0 || (size_t)n >= sizeof(path)) {
      skip(walk, ENAMETOOLONG);
      continue;
    }
    if (stat(path, &st) != 0) {
      /* A process that exited since readdir is not a failure. */
      if (errno != ENOENT)
        skip(walk, errno);
      continue;
    }
    netns_found_t found = {.path = path};
    id_of(&st, &found.id);
    if (pids)
      found.pid = (pid_t)strtol(entry->d_name, NULL, 10);
    else
      found.mount_name = entry->d_name;
    walk->found(&found, walk->ctx);
  }
  closedir(d);
}

unsigned netns_discover_mounts(netns_found_fn found, void *ctx,
                               int *first_error) {
  walk_t walk = {.found = found, .ctx = ctx};
  walk_dir(&walk, NETNS_RUN_DIR, "", false);
  walk_dir(&walk, NETNS_DOCKER_DIR, "", false);
  *first_error = walk.first_error;
  return walk.skipped;
}

unsigned netns_discover(const char *proc_root, netns_found_fn found, void *ctx,
                        int *first_error) {
  walk_t walk = {.found = found, .ctx = ctx};
  walk.skipped = netns_discover_mounts(found, ctx, &walk.first_error);
  walk_dir(&walk, proc_root, "/ns/net", true);
  *first_error = walk.first_error;
  return walk.skipped;
}

bool netns_has_capability(int capability) {
  /* capget(2) without libcap: version 3 takes two 32-bit words a set. */
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0)
    return false;
  return (data[capability / 32].effective >> (capability % 32)) & 1;
}

int netns_uts_hostname(const char *proc_root, pid_t pid, int own_uts, char *buf,
                       size_t size) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%d/ns/uts", proc_root, (int)pid);
  struct stat theirs, ours;
  if (fstat(own_uts, &ours) != 0 || stat(path, &theirs) != 0)
    return -errno;
  if (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
    return 0;
  struct utsname own_name, their_name;
  if (uname(&own_name) != 0)
    return -errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = setns(fd, CLONE_NEWUTS);
  close(fd);
  if (rc != 0)
    return -errno;
  rc = uname(&their_name) == 0 ? 0 : -errno;
  /* Back to our own at once: other plugins run on this thread too. */
  if (setns(own_uts, CLONE_NEWUTS) != 0)
    return -errno;
  if (rc != 0)
    return rc;
  if (strcmp(own_name.nodename, their_name.nodename) == 0)
    return 0;
  snprintf(buf, size, "%s", their_name.nodename);
  return 1;
}
