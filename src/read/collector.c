#include "read/collector.h"

#include "kernel/kernel_release.h"
#include "kernel/netns.h"
#include "kernel/sock_diag.h"
#include "kernel/sysctl_tcp.h"
#include "read/cgroup_part.h"
#include "read/nat_part.h"
#include "read/scan.h"
#include "read/table_scan.h"
#include "read/targets.h"
#include "util/log_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <syslog.h>
#include <unistd.h>

#define BOUND_ONLY_BLIND_SPOT                                                  \
  "TCP sockets that are bound but neither listening nor connected hold "       \
  "ports that are not counted: "

struct collector {
  const options_t *opts;
  collector_ops_t ops;
  log_sink_t log;
  source_kind_t source; /* the one in use: "auto" may have fallen back */
  sock_diag_t *own_diag;
  target_t own;
  targets_t *targets; /* the other namespaces */
  /* One target's read after another: nothing here grows with the number
   * of namespaces. */
  scan_t *scan;
  cgroup_part_t *cgroups;
  nat_part_t *nat;
  reading_t *reading;
  /* A read refused other namespaces for want of privilege: one ERROR
   * until a read has no such refusal. */
  bool privilege_failing;
  int privilege_error;     /* this read's refusal (errno), or 0 */
  char privilege_what[64]; /* what was refused */
  /* The way back home, open only while a read is in other namespaces. */
  int own_netns;
  int own_uts;
  char thread_net_root[PATH_MAX + 16];
  unsigned reads; /* numbers the reads, for NetNamespaceInterval */
  bool own_ok;    /* this read of collectd's own namespace worked */
  cost_tally_t cost;
};

static int scan_protocols(collector_t *c, const table_source_t *source,
                          char *err, size_t err_size) {
  cgroup_usage_t *const cgroups[2] = {cgroup_part_usage(c->cgroups, 0),
                                      cgroup_part_usage(c->cgroups, 1)};
  return scan_tables(c->scan, source, cgroups, err, err_size);
}

/* collectd's own namespace: one netlink socket kept across reads, and
 * Source "auto" falling back to /proc for good when netlink fails. */
static int read_own(collector_t *c, char *err, size_t err_size) {
  int rc = scan_read_pool(c->scan, err, err_size);
  if (rc != 0)
    return rc;
  scan_read_counts(c->scan, c->opts->proc_root, c->source != SOURCE_PROC);
  /* Source "netlink" keeps trying at each read: the failure shows as
   * scrape_success 0 until netlink works. */
  if (c->source != SOURCE_PROC && c->own_diag == NULL) {
    c->own_diag = sock_diag_open(err, err_size);
    if (c->own_diag == NULL)
      rc = -errno;
  }
  table_source_t source = {c->own_diag, c->opts->proc_root};
  if (rc == 0)
    rc = scan_protocols(c, &source, err, err_size);
  if (rc != 0 && rc != -ENOMEM && c->source == SOURCE_AUTO) {
    log_sink_printf(&c->log, LOG_WARNING,
                    "%s; reading %s/net instead from now on", err,
                    c->opts->proc_root);
    c->source = SOURCE_PROC;
    sock_diag_close(c->own_diag);
    c->own_diag = NULL;
    source.diag = NULL;
    rc = scan_protocols(c, &source, err, err_size);
  }
  return rc;
}

/* The way back from other namespaces, opened for one read and closed
 * after it, so that between reads the plugin holds no namespace at all.
 * /proc/self names the main thread, which never leaves collectd's own. */
static int open_home(collector_t *c, char *err, size_t err_size) {
  netns_id_t id;
  c->own_netns = netns_open("/proc/self/ns/net", &id, err, err_size);
  if (c->own_netns < 0)
    return -1;
  c->own_uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  if (c->own_uts < 0) {
    snprintf(err, err_size, "/proc/self/ns/uts: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static void close_home(collector_t *c) {
  if (c->own_netns >= 0)
    close(c->own_netns);
  if (c->own_uts >= 0)
    close(c->own_uts);
  c->own_netns = c->own_uts = -1;
}

static bool reads_others(const collector_t *c) {
  return c->opts->netns_count > 0 || c->opts->all_netns;
}

/* Fixed for a namespace's life: read once, from inside it. */
static netns_tables_t tables_of_namespace(const collector_t *c) {
  long entries;
  char err[256];
  int rc = sysctl_read_tcp_ehash_entries(c->opts->proc_root, &entries, err,
                                         sizeof(err));
  if (rc == -ENOENT)
    return TABLES_ALWAYS_SHARED;
  if (rc != 0)
    return TABLES_UNKNOWN;
  return entries < 0 ? TABLES_SHARED : TABLES_OWN;
}

static void go_home(collector_t *c) {
  if (setns(c->own_netns, CLONE_NEWNET) != 0) {
    /* Nothing else on this thread may run in the wrong namespace. */
    log_sink_printf(&c->log, LOG_ERR,
                    "cannot return to collectd's own network "
                    "namespace: %s; this read thread stays in another one",
                    strerror(errno));
  }
}

/* The kernel gives a destroyed namespace's inode to the next new one at
 * once: the namespace the thread just entered is the target's only if its
 * cookie is the one learnt at the target's first read. Without cookies
 * (before Linux 5.14) the inode is all there is. */
static bool same_namespace_as_before(target_t *t) {
  uint64_t cookie;
  if (netns_cookie(&cookie) != 0)
    return true;
  if (!t->cookie_known) {
    t->cookie = cookie;
    t->cookie_known = true;
    return true;
  }
  return t->cookie == cookie;
}

/* Another namespace: entered only to read its sysctls and open a netlink
 * socket there (or, reading /proc, to read its tables), then left at once;
 * the socket is closed when the read is done, so nothing of the plugin
 * keeps the namespace alive between reads. */
static int read_other(collector_t *c, target_t *t, char *err, size_t err_size) {
  netns_id_t id;
  int fd = netns_open(t->path, &id, err, err_size);
  /* Gone, or its bind mount half removed: the path no longer names it. */
  if (fd == -ENOENT || fd == -EINVAL)
    return -ESTALE;
  if (fd < 0)
    return fd;
  if (!netns_id_equal(&id, &t->id)) {
    close(fd);
    snprintf(err, err_size, "%s: names another namespace now", t->path);
    return -ESTALE;
  }
  int rc = setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
  close(fd);
  if (rc != 0) {
    snprintf(err, err_size, "setns %s: %s", t->path, strerror(-rc));
    return rc;
  }
  if (!same_namespace_as_before(t)) {
    go_home(c);
    snprintf(err, err_size, "%s: another namespace now (cookie)", t->path);
    return -ESTALE;
  }
  if (t->tables == TABLES_UNKNOWN)
    t->tables = tables_of_namespace(c);
  sock_diag_t *diag = NULL;
  rc = scan_read_pool(c->scan, err, err_size);
  if (rc == 0)
    scan_read_counts(c->scan, c->thread_net_root, c->source != SOURCE_PROC);
  if (rc == 0 && c->source != SOURCE_PROC) {
    diag = sock_diag_open(err, err_size);
    if (diag == NULL)
      rc = -errno;
  }
  table_source_t source = {diag, c->thread_net_root};
  if (rc == 0 && diag == NULL)
    rc = scan_protocols(c, &source, err, err_size);
  conntrack_t *ct = nat_part_open(c->nat);
  go_home(c);
  if (rc == 0 && diag != NULL)
    rc = scan_protocols(c, &source, err, err_size);
  sock_diag_close(diag);
  nat_part_read(c->nat, ct);
  conntrack_close(ct);
  return rc;
}

/* Entering another namespace is refused without CAP_SYS_ADMIN (setns),
 * opening a mode-0 bind mount without CAP_DAC_OVERRIDE. */
static bool is_privilege_error(int rc) { return rc == -EPERM || rc == -EACCES; }

/* Notes that this read could not enter or find another namespace for
 * want of privilege; the first refusal of a read is the one told. */
static void note_privilege(collector_t *c, const char *what, int error) {
  if (c->privilege_error != 0)
    return;
  c->privilege_error = error;
  snprintf(c->privilege_what, sizeof(c->privilege_what), "%s", what);
}

static void complain_privilege(collector_t *c) {
  if (c->privilege_error != 0 && !c->privilege_failing)
    log_sink_printf(&c->log, LOG_ERR,
                    "other network namespaces cannot be measured: entering "
                    "one needs CAP_SYS_ADMIN (%s: %s)",
                    c->privilege_what, strerror(c->privilege_error));
  else if (c->privilege_error == 0 && c->privilege_failing)
    log_sink_printf(&c->log, LOG_INFO,
                    "other network namespaces can be measured "
                    "again");
  c->privilege_failing = c->privilege_error != 0;
  c->privilege_error = 0;
}

static void note_outcome(collector_t *c, target_t *t, int rc, const char *err) {
  bool failing = rc != 0;
  if (t->name == NULL) {
    if (failing && !t->failing)
      log_sink_printf(&c->log, LOG_ERR, "%s", err);
    else if (!failing && t->failing)
      log_sink_printf(&c->log, LOG_INFO, "reading recovered");
  } else if (failing && is_privilege_error(rc)) {
    /* One ERROR for all of them, not one per namespace. */
    note_privilege(c, "entering a network namespace", -rc);
    failing = false;
  } else if (failing && !t->failing) {
    log_sink_printf(&c->log, LOG_ERR, "network namespace \"%s\": %s", t->name,
                    err);
  } else if (!failing && t->failing) {
    log_sink_printf(&c->log, LOG_INFO,
                    "network namespace \"%s\": reading recovered", t->name);
  }
  t->failing = failing;
}

/* Up again from the kernel: the parts' readings, then the target's. */
static void hand_on(collector_t *c, target_t *t, bool ok) {
  cgroup_readings_t cgroups[2] = {{NULL, 0}, {NULL, 0}};
  for (size_t i = 0; ok && i < 2; i++)
    if (i == 0 ? c->opts->measure_tcp : c->opts->measure_udp)
      cgroups[i] = cgroup_part_reading(c->cgroups, &t->cgroups, i);
  nat_reading_t nat;
  if (c->opts->report_nat)
    nat_part_reading(c->nat, &t->nat, &nat);
  const target_reading_t *reading =
      reading_make(c->reading, &t->reading, c->scan, t->name, ok, cgroups,
                   c->opts->report_nat ? &nat : NULL);
  c->ops.reading(reading, c->ops.ctx);
}

/* Reads one target and hands its reading on. Returns -ESTALE, with
 * nothing handed on, when a discovered target's path no longer names it. */
static int read_target(collector_t *c, target_t *t) {
  char err[512] = "";
  nat_part_begin_target(c->nat);
  int rc;
  if (t->name == NULL) {
    rc = read_own(c, err, sizeof(err));
    nat_part_read_own(c->nat);
  } else {
    rc = read_other(c, t, err, sizeof(err));
  }
  /* A discovered namespace that went between discovery and read is gone,
   * not failing: its bind mount was removed, its process exited. */
  if (rc == -ESTALE && t->name != NULL && !t->configured)
    return rc;
  if (rc == -ESTALE) {
    rc = targets_retarget(c->targets, t, c->own_uts, err, sizeof(err));
    if (rc == 0)
      rc = read_other(c, t, err, sizeof(err));
  }
  note_outcome(c, t, rc, err);
  if (t->name == NULL)
    c->own_ok = rc == 0;
  nat_part_note(c->nat, &t->nat, t->name);
  hand_on(c, t, rc == 0);
  return 0;
}

/* Another namespace, when this read is one of its reads. Returns -ESTALE
 * as read_target does. */
static int read_other_when_due(collector_t *c, target_t *t) {
  if (!targets_due(c->targets, t, c->reads))
    return 0;
  double start = cost_tally_clock();
  int rc = read_target(c, t);
  t->read_before = true;
  cost_tally_add_other(&c->cost, t->name, cost_tally_clock() - start,
                       t->tables);
  return rc;
}

static void read_others(collector_t *c) {
  targets_t *targets = c->targets;
  size_t configured = targets_configured(targets);
  for (size_t i = 0; i < configured; i++)
    read_other_when_due(c, targets_at(targets, i));
  if (!c->opts->all_netns)
    return;
  int refused;
  targets_discover(targets, c->own_uts, &refused);
  if (refused != 0)
    note_privilege(c, "reading /proc/PID/ns/net", refused);
  for (size_t i = configured; i < targets_count(targets); i++) {
    target_t *t = targets_at(targets, i);
    if (targets_takes(targets, t) && read_other_when_due(c, t) == -ESTALE)
      targets_mark_gone(t); /* not reported */
  }
  targets_sweep(targets);
}

static unsigned namespaces_covered(collector_t *c) {
  size_t configured = targets_configured(c->targets);
  unsigned count = (unsigned)configured;
  for (size_t i = configured; i < targets_count(c->targets); i++)
    count += targets_takes(c->targets, targets_at(c->targets, i));
  return count;
}

/* The read's cost to the glue, and the INFO when it was too much. */
static void tell_cost(collector_t *c) {
  read_cost_t cost = cost_tally_end(&c->cost);
  /* A failed read dispatches scrape_success 0 and nothing else. */
  if (c->ops.cost != NULL && c->own_ok)
    c->ops.cost(&cost, c->ops.ctx);
  cost_setting_t setting = {
      .read_interval = c->opts->read_interval,
      .netns_every = c->opts->netns_every,
      .namespaces = reads_others(c) ? namespaces_covered(c) : 0,
      .selectable = c->opts->all_netns,
      .every_max = NETNS_EVERY_MAX,
      .interval_max = NETNS_INTERVAL_MAX,
  };
  char message[1024];
  if (cost_tally_advice(&c->cost, &cost, &setting, message, sizeof(message)))
    log_sink_printf(&c->log, LOG_INFO, "%s", message);
}

static void read_all(collector_t *c) {
  cgroup_part_begin_read(c->cgroups);
  double start = cost_tally_clock();
  read_target(c, &c->own);
  cost_tally_add_own(&c->cost, cost_tally_clock() - start);
  if (!reads_others(c))
    return;
  char err[512];
  if (open_home(c, err, sizeof(err)) != 0) {
    log_sink_printf(&c->log, LOG_ERR, "other network namespaces not read: %s",
                    err);
    close_home(c);
    return;
  }
  read_others(c);
  close_home(c);
  complain_privilege(c);
}

void collector_read(collector_t *c) {
  cost_tally_begin(&c->cost);
  read_all(c);
  tell_cost(c);
  c->reads++;
}

/* Whether dumps show TCP sockets that are only bound: said once when they
 * cannot (Source proc, a kernel before 6.8), and known to the scan, whose
 * empty counts do not cover them. */
static void learn_bound_only(collector_t *c) {
  struct utsname uts;
  bool dumps = uname(&uts) != 0 || kernel_dumps_bound_only(uts.release);
  scan_set_dumps_bound_only(c->scan, dumps);
  if (!c->opts->measure_tcp)
    return;
  if (c->source == SOURCE_PROC)
    log_sink_printf(&c->log, LOG_INFO,
                    BOUND_ONLY_BLIND_SPOT "/proc/net/tcp does not list them");
  else if (!dumps)
    log_sink_printf(&c->log, LOG_INFO,
                    BOUND_ONLY_BLIND_SPOT "Linux %s does not dump them (%s)",
                    uts.release, KERNEL_BOUND_ONLY_SINCE);
}

static int open_namespaces(collector_t *c, char *err, size_t err_size) {
  if (!reads_others(c))
    return 0;
  snprintf(c->thread_net_root, sizeof(c->thread_net_root), "%s/thread-self",
           c->opts->proc_root);
  int rc = targets_start(c->targets, err, err_size);
  if (rc != 0)
    return -1;
  rc = open_home(c, err, err_size);
  for (size_t i = 0; rc == 0 && i < c->opts->netns_count; i++)
    rc = targets_add_configured(c->targets, c->opts->netns_paths[i], c->own_uts,
                                err, err_size);
  close_home(c);
  return rc == 0 ? 0 : -1;
}

static collector_t *out_of_memory(collector_t *c, char *err, size_t err_size) {
  snprintf(err, err_size, "out of memory");
  collector_free(c);
  return NULL;
}

collector_t *collector_new(const options_t *opts, const collector_ops_t *ops,
                           char *err, size_t err_size) {
  collector_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return out_of_memory(c, err, err_size);
  c->opts = opts;
  c->ops = *ops;
  c->log = (log_sink_t){ops->log, ops->ctx};
  c->own_netns = c->own_uts = -1;
  c->source = opts->source;
  c->scan = scan_new(opts);
  c->reading = reading_new(opts, &c->log);
  c->nat = nat_part_new(opts, &c->log);
  c->targets = targets_new(opts, ops->netns_name_max, &c->log);
  if (c->scan == NULL || c->reading == NULL || c->nat == NULL ||
      c->targets == NULL)
    return out_of_memory(c, err, err_size);
  if (open_namespaces(c, err, err_size) != 0) {
    collector_free(c);
    return NULL;
  }
  if (c->source != SOURCE_PROC) {
    char why[256];
    c->own_diag = sock_diag_open(why, sizeof(why));
    if (c->own_diag == NULL && c->source == SOURCE_AUTO) {
      log_sink_printf(&c->log, LOG_WARNING, "%s; reading %s/net instead", why,
                      opts->proc_root);
      c->source = SOURCE_PROC;
    }
  }
  learn_bound_only(c);
  /* After the fallback: it says whether owners can be known. */
  c->cgroups = cgroup_part_new(opts, c->source, &c->log);
  if (c->cgroups == NULL)
    return out_of_memory(c, err, err_size);
  return c;
}

void collector_free(collector_t *c) {
  if (c == NULL)
    return;
  sock_diag_close(c->own_diag);
  target_forget(&c->own);
  targets_free(c->targets);
  nat_part_free(c->nat);
  cgroup_part_free(c->cgroups);
  reading_free(c->reading);
  scan_free(c->scan);
  free(c);
}
