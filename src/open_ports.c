#include "open_ports.h"

void open_ports_report(open_ports_t *tracker, const portset_t *open,
                       open_port_emit_fn emit, void *ctx) {
  for (unsigned i = 0; i < PORTSET_WORDS; i++) {
    uint64_t now = open->words[i];
    uint64_t reported = tracker->watch.words[i];
    if (tracker->report_open)
      reported |= now | tracker->previously_open.words[i];
    reported &= ~tracker->ignore.words[i];
    while (reported != 0) {
      unsigned bit = (unsigned)__builtin_ctzll(reported);
      reported &= reported - 1;
      emit((uint16_t)(i * 64 + bit), (now >> bit) & 1, ctx);
    }
    tracker->previously_open.words[i] = now;
  }
}
