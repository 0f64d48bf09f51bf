#include "count/open_ports.h"

void open_ports_report(const open_ports_config_t *config,
                       portset_t *previously_open, const portset_t *open,
                       open_port_emit_fn emit, void *ctx) {
  for (unsigned i = 0; i < PORTSET_WORDS; i++) {
    uint64_t now = open->words[i];
    uint64_t reported = config->watch.words[i];
    if (config->report_open)
      reported |= now | previously_open->words[i];
    reported &= ~config->ignore.words[i];
    while (reported != 0) {
      unsigned bit = (unsigned)__builtin_ctzll(reported);
      reported &= reported - 1;
      emit((uint16_t)(i * 64 + bit), (now >> bit) & 1, ctx);
    }
    previously_open->words[i] = now;
  }
}
