/* libFuzzer target: net.ipv4.ip_local_port_range text, as
 * sysctl_read_port_range hands it to the parser (NUL-terminated). */
#include "kernel/sysctl_ports.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy, so reading past the terminator is caught. */
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  uint16_t low = 0, high = 0;
  if (port_range_text_parse(text, &low, &high) == 0 && (low < 1 || low > high))
    abort(); /* the header's promise: 1 <= LOW <= HIGH <= 65535 */
  free(text);
  return 0;
}
