#include "count/top_report.h"

#include <stdlib.h>

size_t top_report(destinations_t *table, destination_t *top, size_t n,
                  reported_keys_t *reported, top_entry_t *out) {
  size_t count = destinations_top(table, top, n);
  size_t filled = 0;
  for (size_t i = 0; i < count; i++)
    out[filled++] = (top_entry_t){top[i].key, top[i].held, top[i].time_wait};
  for (size_t i = 0; i < reported->count; i++) {
    const destination_t *now = destinations_find(table, &reported->keys[i]);
    if (now == NULL)
      out[filled++] = (top_entry_t){reported->keys[i], 0, 0};
    else if (!now->in_top)
      out[filled++] = (top_entry_t){now->key, now->held, now->time_wait};
  }
  if (reported->keys == NULL && count > 0)
    reported->keys = calloc(n, sizeof(*reported->keys));
  reported->count = reported->keys != NULL ? count : 0;
  for (size_t i = 0; i < reported->count; i++)
    reported->keys[i] = top[i].key;
  return filled;
}

void reported_keys_free(reported_keys_t *reported) {
  free(reported->keys);
  reported->keys = NULL;
  reported->count = 0;
}
