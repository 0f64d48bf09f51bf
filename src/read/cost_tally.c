#include "read/cost_tally.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double clock_seconds(clockid_t clock) {
  struct timespec now;
  if (clock_gettime(clock, &now) != 0)
    return 0;
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

double cost_tally_clock(void) { return clock_seconds(CLOCK_MONOTONIC); }

void cost_tally_begin(cost_tally_t *tally) {
  bool told = tally->told;
  memset(tally, 0, sizeof(*tally));
  tally->told = told;
  tally->wall_start = cost_tally_clock();
  tally->cpu_start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
}

void cost_tally_add_own(cost_tally_t *tally, double seconds) {
  tally->own_seconds += seconds;
}

static void note_shared_name(cost_tally_t *tally, const char *name) {
  if (tally->names_cut)
    return;
  size_t used = strlen(tally->shared_names);
  const char *comma = used > 0 ? ", " : "";
  /* Room is kept for a closing ", ..." after any name. */
  if (used + strlen(comma) + strlen(name) + sizeof(", ...") >
      sizeof(tally->shared_names)) {
    snprintf(tally->shared_names + used, sizeof(tally->shared_names) - used,
             "%s...", comma);
    tally->names_cut = true;
    return;
  }
  snprintf(tally->shared_names + used, sizeof(tally->shared_names) - used,
           "%s%s", comma, name);
}

void cost_tally_add_other(cost_tally_t *tally, const char *name, double seconds,
                          netns_tables_t tables) {
  tally->others_read++;
  tally->others_seconds += seconds;
  if (tables != TABLES_SHARED && tables != TABLES_ALWAYS_SHARED)
    return;
  tally->shared_read++;
  tally->shared_seconds += seconds;
  tally->before_child_ehash |= tables == TABLES_ALWAYS_SHARED;
  note_shared_name(tally, name);
}

read_cost_t cost_tally_end(cost_tally_t *tally) {
  return (read_cost_t){cost_tally_clock() - tally->wall_start,
                       clock_seconds(CLOCK_THREAD_CPUTIME_ID) -
                           tally->cpu_start};
}

#define APPEND(buf, size, used, ...)                                           \
  do {                                                                         \
    if ((used) < (size))                                                       \
      (used) +=                                                                \
          (size_t)snprintf((buf) + (used), (size) - (used), __VA_ARGS__);      \
  } while (0)

static void advise_tables(const cost_tally_t *tally, char *message, size_t size,
                          size_t *used) {
  if (tally->shared_read == 0)
    return;
  APPEND(message, size, *used,
         "; %u of them (%s) share the kernel's global socket tables "
         "(tcp_ehash_entries < 0), so a dump in each walks the whole table "
         "(%.3f s in all): ",
         tally->shared_read, tally->shared_names, tally->shared_seconds);
  if (tally->before_child_ehash)
    APPEND(message, size, *used,
           "before Linux 6.1 every namespace does; from 6.1 on, "
           "net.ipv4.tcp_child_ehash_entries gives the namespaces created "
           "after it is set tables of their own");
  else
    APPEND(message, size, *used,
           "net.ipv4.tcp_child_ehash_entries gives the namespaces created "
           "after it is set tables of their own, saving most of that");
}

/* The NetNamespaceInterval that brings a read under a tenth of the
 * interval, if one does: own + (others per namespace) * namespaces / k. */
static void advise_interval(const cost_tally_t *tally,
                            const cost_setting_t *setting, char *message,
                            size_t size, size_t *used) {
  if (tally->others_read == 0 || setting->namespaces == 0)
    return;
  double each = tally->others_seconds / tally->others_read;
  double room = setting->read_interval / 10 - tally->own_seconds;
  if (room <= 0) {
    APPEND(message, size, *used,
           "; collectd's own namespace alone takes more than a tenth");
    return;
  }
  double cycle = each * setting->namespaces;
  double reads = cycle / room + 1;
  /* Past what NetNamespaceInterval takes, no value of it helps. */
  if (reads > setting->every_max ||
      (unsigned)reads * setting->read_interval > setting->interval_max)
    return;
  unsigned every = (unsigned)reads;
  if (every <= setting->netns_every)
    return;
  APPEND(message, size, *used,
         "; NetNamespaceInterval %g would read each of the %u other "
         "namespaces once every %u reads (about %.3f s a read)",
         every * setting->read_interval, setting->namespaces, every,
         tally->own_seconds + cycle / every);
}

bool cost_tally_advice(cost_tally_t *tally, const read_cost_t *cost,
                       const cost_setting_t *setting, char *message,
                       size_t size) {
  if (setting->read_interval <= 0)
    return false;
  double share = cost->seconds / setting->read_interval;
  if (share < 0.05)
    tally->told = false;
  if (share <= 0.1 || tally->told)
    return false;
  tally->told = true;
  size_t used = 0;
  APPEND(message, size, used,
         "a read took %.3f s, %.1f%% of the %g s interval (CPU %.3f s): "
         "collectd's own network namespace %.3f s",
         cost->seconds, 100 * share, setting->read_interval, cost->cpu_seconds,
         tally->own_seconds);
  if (tally->others_read > 0)
    APPEND(message, size, used,
           ", %u other network namespace%s %.3f s (%.1f ms each)",
           tally->others_read, tally->others_read == 1 ? "" : "s",
           tally->others_seconds,
           1000 * tally->others_seconds / tally->others_read);
  advise_tables(tally, message, size, &used);
  advise_interval(tally, setting, message, size, &used);
  if (tally->others_read > 0 && setting->selectable)
    APPEND(message, size, used,
           "; NetNamespaceName and IgnoreSelected leave out the namespaces "
           "nobody needs");
  return true;
}
