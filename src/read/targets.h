/* The network namespaces a read covers besides collectd's own: those
 * NetNamespace names, and with AllNetNamespaces those found at each read,
 * each named once when first met; and what each target remembers between
 * reads, its parts' memories. */
#ifndef EPHEMERAL_PORTS_TARGETS_H
#define EPHEMERAL_PORTS_TARGETS_H

#include "kernel/netns.h"
#include "read/cgroup_part.h"
#include "read/cost_tally.h"
#include "read/nat_part.h"
#include "read/options.h"
#include "read/reading.h"
#include "util/log_sink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A namespace a read covers: a few hundred bytes, so that a host with many
 * namespaces stays small. */
typedef struct {
  netns_id_t id;
  char *name; /* NULL: collectd's own namespace */
  char *path; /* where to enter it: configured, or as last discovered */
  bool configured;
  unsigned seen;        /* the discovery that last met it */
  unsigned born;        /* the discovery that first met it */
  bool named_by_inode;  /* netns-<inode>: no name of its own found yet */
  bool failing;         /* its ERROR is out; its recovery gets an INFO */
  bool selection_known; /* taken: whether NetNamespaceName takes its name */
  bool taken;
  /* Read at the reads whose number is slot modulo NetNamespaceInterval's
   * reads, and at the first read that meets it. */
  unsigned slot;
  bool read_before;
  netns_tables_t tables; /* learnt at its first read */
  /* Its cookie, learnt at its first read: the inode alone is handed to a
   * new namespace as soon as this one is destroyed. */
  uint64_t cookie;
  bool cookie_known;
  reading_memory_t reading;
  cgroup_memory_t cgroups;
  nat_memory_t nat;
} target_t;

/* Forgets what the target's parts remember. */
void target_forget(target_t *t);

typedef struct targets targets_t;

/* name_max: the longest name a target may have. Returns NULL when memory
 * runs out. */
targets_t *targets_new(const options_t *opts, size_t name_max,
                       const log_sink_t *log);
void targets_free(targets_t *targets);

/* Learns collectd's own namespace and privileges, before the first target.
 * Returns 0 or -1 with a message in err. */
int targets_start(targets_t *targets, char *err, size_t err_size);

/* The calls that name namespaces take own_uts, collectd's own UTS
 * namespace, to tell a process's hostname from collectd's. */

/* Adds a NetNamespace path (collectd's own and repeats are measured once).
 * Returns 0 or -1 with a message in err. */
int targets_add_configured(targets_t *targets, const char *path, int own_uts,
                           char *err, size_t err_size);

/* Finds every namespace on the host now; *refused is the errno of a
 * refusal for want of privilege (CAP_SYS_PTRACE), else 0. */
void targets_discover(targets_t *targets, int own_uts, int *refused);

/* A configured path that names another namespace now: measure that one,
 * under its own name, from scratch. Returns 0 or a negative errno. */
int targets_retarget(targets_t *targets, target_t *t, int own_uts, char *err,
                     size_t err_size);

/* A discovered target found gone at its read: dropped by the next sweep. */
void targets_mark_gone(target_t *t);

/* Whether a discovered target is read: NetNamespaceName and
 * IgnoreSelected on its name, decided once the discovery that named it is
 * over (its name is fixed from then on). */
bool targets_takes(const targets_t *targets, target_t *t);

/* Whether read number read_number reads the target: its first, then one in
 * NetNamespaceInterval's reads (every read without it). */
bool targets_due(const targets_t *targets, const target_t *t,
                 unsigned read_number);

/* Drops the discovered targets the last discovery did not meet. */
void targets_sweep(targets_t *targets);

/* The targets, configured ones first: [0, targets_configured) are the
 * configured, [targets_configured, targets_count) the discovered. */
size_t targets_count(const targets_t *targets);
size_t targets_configured(const targets_t *targets);
target_t *targets_at(targets_t *targets, size_t i);

#endif
