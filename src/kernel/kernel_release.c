#include "kernel/kernel_release.h"

#include <stdlib.h>

bool kernel_dumps_bound_only(const char *release) {
  char *end;
  unsigned long major = strtoul(release, &end, 10);
  if (end == release || *end != '.')
    return true;
  const char *minor_text = end + 1;
  unsigned long minor = strtoul(minor_text, &end, 10);
  if (end == minor_text)
    return true;
  return major > 6 || (major == 6 && minor >= 8);
}
