/* What a read costs: its wall-clock and CPU time, where the time went
 * (collectd's own namespace, the others, those of them that share the
 * kernel's global socket tables), and the advice an operator needs when a
 * read takes more than a tenth of the interval. */
#ifndef EPHEMERAL_PORTS_COST_TALLY_H
#define EPHEMERAL_PORTS_COST_TALLY_H

#include <stdbool.h>
#include <stddef.h>

/* A whole read: wall-clock seconds and the reading thread's CPU seconds
 * (the kernel's walks of its tables, done in that thread, included). */
typedef struct {
  double seconds;
  double cpu_seconds;
} read_cost_t;

/* How another namespace's sock_diag dumps walk the kernel's tables. */
typedef enum {
  TABLES_UNKNOWN,      /* not read yet, or unreadable */
  TABLES_OWN,          /* tcp_ehash_entries > 0: a table of its own */
  TABLES_SHARED,       /* tcp_ehash_entries < 0: the global one */
  TABLES_ALWAYS_SHARED /* no tcp_ehash_entries: before Linux 6.1 */
} netns_tables_t;

#define COST_TALLY_NAMES_MAX 160

typedef struct {
  double wall_start, cpu_start;
  double own_seconds;
  unsigned others_read;
  double others_seconds;
  unsigned shared_read; /* of others_read: TABLES_SHARED or ALWAYS_SHARED */
  double shared_seconds;
  bool before_child_ehash; /* a namespace had no tcp_ehash_entries */
  char shared_names[COST_TALLY_NAMES_MAX]; /* the first few, ", "-joined */
  bool names_cut;                          /* and "..." for the rest */
  bool told; /* the INFO is out until a cheap read */
} cost_tally_t;

/* Seconds on the monotonic clock. */
double cost_tally_clock(void);

/* Starts a read's tally; what the last reads told is kept. */
void cost_tally_begin(cost_tally_t *tally);

void cost_tally_add_own(cost_tally_t *tally, double seconds);
void cost_tally_add_other(cost_tally_t *tally, const char *name, double seconds,
                          netns_tables_t tables);

/* Ends the read: its cost. */
read_cost_t cost_tally_end(cost_tally_t *tally);

/* What the advice is computed from, besides the tally. */
typedef struct {
  double read_interval; /* seconds */
  unsigned netns_every; /* reads between two of another namespace's */
  unsigned namespaces;  /* the other namespaces a read cycle covers */
  bool selectable;      /* AllNetNamespaces: NetNamespaceName applies */
  /* The most NetNamespaceInterval can be: in reads, in seconds. */
  unsigned every_max;
  double interval_max;
} cost_setting_t;

/* When the read took more than a tenth of the interval and that has not
 * been told since a read took less than a twentieth: writes the INFO's
 * text into message and returns true. */
bool cost_tally_advice(cost_tally_t *tally, const read_cost_t *cost,
                       const cost_setting_t *setting, char *message,
                       size_t size);

#endif
