/* libFuzzer target: net.ipv4.ip_local_reserved_ports text, parsed as
 * sysctl_read_reserved_ports does (port_list_parse, 0 allowed). */
#include "util/port_list.h"
#include "util/portset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  static portset_t reserved;
  portset_clear(&reserved);
  if (port_list_parse(text, 0, &reserved) == 0 && strchr(text, ',') == NULL &&
      strchr(text, '-') == NULL && portset_count(&reserved) > 1)
    abort(); /* one plain number reserves at most one port */
  free(text);
  return 0;
}
