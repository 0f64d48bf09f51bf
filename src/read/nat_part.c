#include "read/nat_part.h"

#include "count/nat_usage.h"
#include "kernel/sysctl_file.h"
#include "read/table_scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <syslog.h>

/* The part was not read: the namespace could not be entered. */
#define NAT_PART_NOT_READ 1

/* The entries of the reader's namespace (its conntrack table). */
#define CONNTRACK_COUNT_FILE "sys/net/netfilter/nf_conntrack_count"

struct nat_part {
  const options_t *opts;
  const log_sink_t *log;
  conntrack_t *own_conntrack;
  nat_usage_t usage;
  destination_t *top;
  top_entry_t *entries;
  int rc;           /* 0, a negative errno, or NAT_PART_NOT_READ */
  bool table_empty; /* the target's nf_conntrack_count read 0 */
  char err[512];
  conntrack_stats_t stats;
};

nat_part_t *nat_part_new(const options_t *opts, const log_sink_t *log) {
  nat_part_t *part = calloc(1, sizeof(*part));
  if (part == NULL)
    return NULL;
  part->opts = opts;
  part->log = log;
  nat_usage_init(&part->usage, &opts->nat_range);
  unsigned top = opts->top_nat;
  if (!opts->report_nat || top == 0)
    return part;
  part->top = calloc(top, sizeof(*part->top));
  part->entries = calloc(2 * (size_t)top, sizeof(*part->entries));
  if (part->top == NULL || part->entries == NULL) {
    nat_part_free(part);
    return NULL;
  }
  return part;
}

void nat_part_free(nat_part_t *part) {
  if (part == NULL)
    return;
  conntrack_close(part->own_conntrack);
  nat_usage_free(&part->usage);
  free(part->top);
  free(part->entries);
  free(part);
}

void nat_memory_forget(nat_memory_t *memory) {
  reported_keys_free(&memory->reported);
}

void nat_part_begin_target(nat_part_t *part) { part->rc = NAT_PART_NOT_READ; }

/* A dump walks the kernel's whole conntrack hash whichever namespace asks
 * (about 12 ms with 262,144 buckets): a namespace whose table is empty, by
 * its own nf_conntrack_count, is not dumped. Read in the caller's
 * namespace; a count that cannot be read means a dump. */
static void note_table_size(nat_part_t *part) {
  uint32_t count = 1;
  bool missing = true;
  char err[256];
  part->table_empty =
      sysctl_file_read_uint(part->opts->proc_root, CONNTRACK_COUNT_FILE,
                            UINT32_MAX, &count, &missing, err,
                            sizeof(err)) == 0 &&
      !missing && count == 0;
}

/* The whole table in one walk of the kernel's hash (IPv4 and IPv6),
 * filtered by the kernel to source-translated entries where it can
 * (Linux 5.15+); a dump the kernel marked interrupted is started over. */
static int read_part(nat_part_t *part, conntrack_t *ct) {
  conntrack_query_t query = {AF_UNSPEC, false};
  char *err = part->err;
  size_t err_size = sizeof(part->err);
  int rc = part->table_empty ? 0 : -EAGAIN;
  nat_usage_clear(&part->usage);
  for (int attempt = 0; attempt < TABLE_SCAN_ATTEMPTS && rc == -EAGAIN;
       attempt++) {
    nat_usage_clear(&part->usage);
    rc = conntrack_dump(ct, &query, nat_usage_visit, &part->usage, err,
                        err_size);
  }
  if (rc == -ENOMEM)
    snprintf(err, err_size, "out of memory counting NAT destinations");
  if (rc == 0)
    rc = conntrack_stats(ct, &part->stats, err, err_size);
  return rc;
}

conntrack_t *nat_part_open(nat_part_t *part) {
  if (!part->opts->report_nat)
    return NULL;
  conntrack_t *ct = conntrack_open(part->err, sizeof(part->err));
  if (ct == NULL)
    part->rc = -errno;
  else
    note_table_size(part);
  return ct;
}

void nat_part_read(nat_part_t *part, conntrack_t *ct) {
  if (ct != NULL)
    part->rc = read_part(part, ct);
}

/* A socket that failed is replaced at the next read, so a lasting fault
 * costs one socket() a read. */
void nat_part_read_own(nat_part_t *part) {
  if (!part->opts->report_nat)
    return;
  if (part->own_conntrack == NULL)
    part->own_conntrack = nat_part_open(part);
  else
    note_table_size(part);
  nat_part_read(part, part->own_conntrack);
  if (part->rc != 0) {
    conntrack_close(part->own_conntrack);
    part->own_conntrack = NULL;
  }
}

void nat_part_note(nat_part_t *part, nat_memory_t *memory, const char *netns) {
  if (!part->opts->report_nat || part->rc == NAT_PART_NOT_READ)
    return;
  bool failing = part->rc != 0;
  const char *prefix = netns != NULL ? "network namespace \"" : "";
  const char *name = netns != NULL ? netns : "";
  const char *end = netns != NULL ? "\": " : "";
  if (failing && !memory->failing)
    log_sink_printf(part->log, LOG_ERR, "%s%s%sNAT: %s", prefix, name, end,
                    part->err);
  else if (!failing && memory->failing)
    log_sink_printf(part->log, LOG_INFO, "%s%s%sNAT: reading recovered", prefix,
                    name, end);
  memory->failing = failing;
}

void nat_part_reading(nat_part_t *part, nat_memory_t *memory,
                      nat_reading_t *out) {
  const options_t *opts = part->opts;
  out->ok = part->rc == 0;
  out->total = nat_port_range_size(&opts->nat_range);
  out->insert_failed = part->stats.insert_failed;
  out->drop = part->stats.drop;
  out->entries = part->entries;
  out->count = 0;
  if (out->ok && opts->top_nat > 0)
    out->count = top_report(&part->usage.table, part->top, opts->top_nat,
                            &memory->reported, part->entries);
}
