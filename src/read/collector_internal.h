/* What the collector's files share: the collector and its targets. Not
 * for the glue, which sees collector.h only. */
#ifndef EPHEMERAL_PORTS_COLLECTOR_INTERNAL_H
#define EPHEMERAL_PORTS_COLLECTOR_INTERNAL_H

#include "count/cgroup_usage.h"
#include "count/nat_usage.h"
#include "count/snapshot.h"
#include "count/top_report.h"
#include "kernel/cgroup_names.h"
#include "kernel/conntrack.h"
#include "kernel/netns.h"
#include "kernel/sock_diag.h"
#include "read/collector.h"
#include "read/table_scan.h"
#include "util/port_memory.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>

/* A group a target reported at its last read, under the name it had. */
typedef struct {
  uint64_t id;
  char name[CGROUP_NAME_SIZE];
} reported_cgroup_t;

typedef struct {
  reported_cgroup_t *groups; /* room for TopCgroups, allocated at need */
  size_t count;
} reported_cgroups_t;

/* A namespace a read covers, and what its reading keeps between reads:
 * a few hundred bytes, so that a host with many namespaces stays small. */
typedef struct {
  netns_id_t id;
  char *name; /* NULL: collectd's own namespace */
  char *path; /* where to enter it: configured, or as last discovered */
  bool configured;
  unsigned seen;       /* the discovery that last met it */
  unsigned born;       /* the discovery that first met it */
  bool named_by_inode; /* netns-<inode>: no name of its own found yet */
  bool failing;        /* its ERROR is out; its recovery gets an INFO */
  port_memory_t previously_open[2]; /* TCP, UDP */
  reported_keys_t reported_destinations;
  reported_keys_t reported_nat;
  reported_cgroups_t reported_cgroups[2]; /* TCP, UDP */
  bool nat_failing;                       /* its NAT part's ERROR is out */
} target_t;

struct collector {
  const options_t *opts;
  collector_ops_t ops;
  source_kind_t source; /* the one in use: "auto" may have fallen back */
  sock_diag_t *own_diag;
  target_t own;
  /* Other namespaces, the configured ones first. */
  target_t **others;
  size_t others_count;
  size_t others_capacity;
  size_t configured_count;
  unsigned discovery;      /* number of the current discovery, from 1 */
  bool can_ptrace;         /* CAP_SYS_PTRACE: every /proc/PID/ns/net shows */
  bool privilege_failing;  /* its ERROR is out */
  int privilege_error;     /* this read's refusal (errno), or 0 */
  char privilege_what[64]; /* what was refused */
  /* The way back home, open only while a read is in other namespaces. */
  int own_netns;
  int own_uts;
  netns_id_t own_id;
  char thread_net_root[PATH_MAX + 16];
  /* One target's read, reused by the next: nothing here grows with the
   * number of namespaces. */
  snapshot_t tcp;
  snapshot_t udp;
  portset_t reserved;
  portset_t previously_open;
  portset_t report[2];
  destinations_t destinations;
  destination_t *top;
  top_entry_t *destination_readings;
  /* Who holds the ports (TopCgroups): pool ports per group, TCP and UDP;
   * the names are the host's, one cache for every namespace. */
  cgroup_usage_t cgroups[2];
  cgroup_names_t *cgroup_names; /* NULL: every group counts as unknown */
  cgroup_count_t *cgroup_top;
  cgroup_reading_t *cgroup_readings;
  uint64_t *cgroup_ids;
  uint64_t *unnamed;
  size_t unnamed_capacity;
  bool cgroup_walk_noted;
  bool cgroup_tree_complained;
  /* The NAT part of a target's read (ReportNat). */
  conntrack_t *own_conntrack;
  nat_usage_t nat;
  destination_t *nat_top;
  top_entry_t *nat_entries;
  int nat_rc; /* 0, a negative errno, or NAT_PART_NOT_READ */
  char nat_err[512];
  conntrack_stats_t nat_stats;
};

/* The NAT part was not read: the namespace could not be entered (its
 * scrape_success says so; no ERROR of its own). */
#define NAT_PART_NOT_READ 1

/* Formats a message and hands it to the glue's log callback. A macro, not
 * a va_list function: clang-tidy 14 misreads va_list use across files. */
#define collector_log(c, severity, ...)                                        \
  do {                                                                         \
    char collector_message_[2 * PATH_MAX + 1024];                              \
    snprintf(collector_message_, sizeof(collector_message_), __VA_ARGS__);     \
    (c)->ops.log((severity), collector_message_, (c)->ops.ctx);                \
  } while (0)

/* Notes that this read could not enter or find another namespace for
 * want of privilege; one ERROR says so until a read has no such refusal. */
void collector_note_privilege(collector_t *c, const char *what, int error);

/* reading.c: turns the scratch of a target's read into its reading. */
int reading_init(collector_t *c);
void reading_free(collector_t *c);
void reading_emit(collector_t *c, target_t *t, bool ok);
void target_forget(target_t *t);

/* cgroup_part.c: the per-cgroup part of a target's reading. */
int cgroup_part_init(collector_t *c);
void cgroup_part_free(collector_t *c);
/* The table a protocol's scan counts into (0 TCP, 1 UDP), NULL when off. */
cgroup_usage_t *cgroup_part_usage(collector_t *c, size_t index);
void cgroup_part_begin_read(collector_t *c);
void cgroup_part_forget(target_t *t);
/* Names the protocol's groups and points *readings at the busiest, then
 * the drop-outs; returns how many. */
size_t cgroup_part_reading(collector_t *c, target_t *t, size_t index,
                           const cgroup_reading_t **readings);

/* nat_part.c: the NAT part of a target's read and its reading. */
int nat_part_init(collector_t *c);
void nat_part_free(collector_t *c);
/* Opens a ctnetlink socket in the caller's namespace: NULL with nat_rc set
 * when it cannot, or when ReportNat is off. */
conntrack_t *nat_part_open(collector_t *c);
/* Reads the part over ct (NULL: nothing, nat_rc stays) into the scratch. */
void nat_part_read(collector_t *c, conntrack_t *ct);
void nat_part_read_own(collector_t *c);
/* One ERROR when the part starts failing, one INFO when it recovers. */
void nat_part_note(collector_t *c, target_t *t);
void nat_part_reading(collector_t *c, target_t *t, nat_reading_t *out);

/* targets.c: the other namespaces, configured and discovered. */
int targets_add_configured(collector_t *c, const char *path, char *err,
                           size_t err_size);
void targets_discover(collector_t *c);
/* A configured path that names another namespace now: measure that one,
 * under its own name, from scratch. Returns 0 or a negative errno. */
int targets_retarget(collector_t *c, target_t *t, char *err, size_t err_size);
void targets_sweep(collector_t *c);
void targets_free(collector_t *c);

#endif
