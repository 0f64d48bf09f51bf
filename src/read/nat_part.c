/* The NAT part of a target's read: conntrack's source-translated flows
 * and its failure counters, over a ctnetlink socket of the target's
 * namespace; and the part's reading. */
#include "read/collector_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <syslog.h>

int nat_part_init(collector_t *c) {
  nat_usage_init(&c->nat, &c->opts->nat_range);
  unsigned top = c->opts->top_nat;
  if (!c->opts->report_nat || top == 0)
    return 0;
  c->nat_top = calloc(top, sizeof(*c->nat_top));
  c->nat_entries = calloc(2 * (size_t)top, sizeof(*c->nat_entries));
  return c->nat_top != NULL && c->nat_entries != NULL ? 0 : -1;
}

void nat_part_free(collector_t *c) {
  conntrack_close(c->own_conntrack);
  c->own_conntrack = NULL;
  nat_usage_free(&c->nat);
  free(c->nat_top);
  free(c->nat_entries);
  c->nat_top = NULL;
  c->nat_entries = NULL;
}

/* The whole table in one walk of the kernel's hash (IPv4 and IPv6),
 * filtered by the kernel to source-translated entries where it can
 * (Linux 5.15+); a dump the kernel marked interrupted is started over. */
static int read_part(collector_t *c, conntrack_t *ct) {
  conntrack_query_t query = {AF_UNSPEC, false};
  char *err = c->nat_err;
  size_t err_size = sizeof(c->nat_err);
  int rc = -EAGAIN;
  for (int attempt = 0; attempt < TABLE_SCAN_ATTEMPTS && rc == -EAGAIN;
       attempt++) {
    nat_usage_clear(&c->nat);
    rc = conntrack_dump(ct, &query, nat_usage_visit, &c->nat, err, err_size);
  }
  if (rc == -ENOMEM)
    snprintf(err, err_size, "out of memory counting NAT destinations");
  if (rc == 0)
    rc = conntrack_stats(ct, &c->nat_stats, err, err_size);
  return rc;
}

conntrack_t *nat_part_open(collector_t *c) {
  if (!c->opts->report_nat)
    return NULL;
  conntrack_t *ct = conntrack_open(c->nat_err, sizeof(c->nat_err));
  if (ct == NULL)
    c->nat_rc = -errno;
  return ct;
}

void nat_part_read(collector_t *c, conntrack_t *ct) {
  if (ct != NULL)
    c->nat_rc = read_part(c, ct);
}

/* collectd's own namespace keeps its socket; one that failed is replaced
 * at the next read, so a lasting fault costs one socket() a read. */
void nat_part_read_own(collector_t *c) {
  if (!c->opts->report_nat)
    return;
  if (c->own_conntrack == NULL)
    c->own_conntrack = nat_part_open(c);
  nat_part_read(c, c->own_conntrack);
  if (c->nat_rc != 0) {
    conntrack_close(c->own_conntrack);
    c->own_conntrack = NULL;
  }
}

void nat_part_note(collector_t *c, target_t *t) {
  if (!c->opts->report_nat || c->nat_rc == NAT_PART_NOT_READ)
    return;
  bool failing = c->nat_rc != 0;
  const char *prefix = t->name != NULL ? "network namespace \"" : "";
  const char *name = t->name != NULL ? t->name : "";
  const char *end = t->name != NULL ? "\": " : "";
  if (failing && !t->nat_failing)
    collector_log(c, LOG_ERR, "%s%s%sNAT: %s", prefix, name, end, c->nat_err);
  else if (!failing && t->nat_failing)
    collector_log(c, LOG_INFO, "%s%s%sNAT: reading recovered", prefix, name,
                  end);
  t->nat_failing = failing;
}

void nat_part_reading(collector_t *c, target_t *t, nat_reading_t *out) {
  out->ok = c->nat_rc == 0;
  out->total = nat_port_range_size(&c->opts->nat_range);
  out->insert_failed = c->nat_stats.insert_failed;
  out->drop = c->nat_stats.drop;
  out->entries = c->nat_entries;
  out->count = 0;
  if (out->ok && c->opts->top_nat > 0)
    out->count = top_report(&c->nat.table, c->nat_top, c->opts->top_nat,
                            &t->reported_nat, c->nat_entries);
}
