/* Network namespaces other than collectd's own: checking a configured
 * path, finding every namespace on the host, naming one, and entering one
 * just long enough to open what a read needs there. Knows no collectd. */
#ifndef EPHEMERAL_PORTS_NETNS_H
#define EPHEMERAL_PORTS_NETNS_H

#include <linux/capability.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A namespace is its nsfs inode: the same namespace has the same id
 * whichever path names it. */
typedef struct {
  dev_t dev;
  ino_t ino;
} netns_id_t;

/* The directories whose entries are bind mounts of named namespaces, in
 * the order their names win: ip netns, then Docker. */
#define NETNS_RUN_DIR "/run/netns"
#define NETNS_DOCKER_DIR "/var/run/docker/netns"

bool netns_id_equal(const netns_id_t *a, const netns_id_t *b);

/* The namespace the calling thread is in. Returns 0 or a negative errno. */
int netns_self(netns_id_t *id);

/* The calling thread's namespace's cookie (SO_NETNS_COOKIE, Linux 5.14+):
 * unlike the inode, which the kernel gives the next new namespace as soon
 * as one is destroyed, a cookie is never used twice while the system runs.
 * Opens and closes one AF_UNIX socket, which takes no port. Returns 0, or
 * a negative errno (-ENOPROTOOPT: a kernel without cookies). */
int netns_cookie(uint64_t *cookie);

/* Opens path and checks that it names a network namespace. Returns the
 * descriptor (O_CLOEXEC) with its id, or a negative errno (-EINVAL: some
 * other file) with a message in err. */
int netns_open(const char *path, netns_id_t *id, char *err, size_t err_size);

/* What a discovery walk found: the namespace, a path that names it now,
 * the name of its bind mount (NULL for one found through a process), and
 * the process it was found through (0 for a bind mount). */
typedef struct {
  netns_id_t id;
  const char *path;
  const char *mount_name;
  pid_t pid;
} netns_found_t;

typedef void (*netns_found_fn)(const netns_found_t *found, void *ctx);

/* Calls found for every entry of the two bind-mount directories, then for
 * every process under <proc_root>/ (its ns/net), in that order, so a
 * namespace is first met through its bind mount when it has one. The same
 * namespace is met as often as it is named: the caller keeps one per id.
 * Entries that cannot be examined are skipped; returns how many, with the
 * first failure's errno in *first_error (0 when none). */
unsigned netns_discover(const char *proc_root, netns_found_fn found, void *ctx,
                        int *first_error);

/* The same for the two bind-mount directories only. */
unsigned netns_discover_mounts(netns_found_fn found, void *ctx,
                               int *first_error);

/* Whether the process has capability (CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...)
 * in its effective set. */
bool netns_has_capability(int capability);

/* The UTS hostname of process pid when its UTS namespace is not the
 * caller's (a container's or a pod's name); enters that UTS namespace for
 * the one uname() and returns to own_uts. Returns 1 with the name in buf,
 * 0 when the process shares the caller's UTS namespace, or a negative
 * errno. */
int netns_uts_hostname(const char *proc_root, pid_t pid, int own_uts, char *buf,
                       size_t size);

#endif
