/* libFuzzer target: /proc/net/sockstat and sockstat6 text, as
 * sockstat_read hands it to the parser (NUL-terminated): the input split
 * at its first NUL byte into the two files' texts. */
#include "kernel/sockstat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Exact-size copies, so reading past a terminator is caught. */
  const uint8_t *nul = memchr(data, '\0', size);
  size_t size4 = nul != NULL ? (size_t)(nul - data) : size;
  char *text = malloc(size4 + 1);
  char *text6 = nul != NULL ? malloc(size - size4) : NULL;
  if (text == NULL || (nul != NULL && text6 == NULL)) {
    free(text);
    free(text6);
    return 0;
  }
  memcpy(text, data, size4);
  text[size4] = '\0';
  if (text6 != NULL) {
    memcpy(text6, nul + 1, size - size4 - 1);
    text6[size - size4 - 1] = '\0';
  }
  sockstat_t counts = {1, 2, 3, 4, 5};
  sockstat_t before = counts;
  if (sockstat_parse(text, text6, &counts) != 0 &&
      memcmp(&counts, &before, sizeof(counts)) != 0)
    abort(); /* the header's promise: a refused text changes nothing */
  free(text);
  free(text6);
  return 0;
}
