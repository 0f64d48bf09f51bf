#include "kernel_release.h"

#include <stdio.h>

bool kernel_dumps_bound_only(const char *release) {
  unsigned major, minor;
  if (sscanf(release, "%u.%u", &major, &minor) != 2)
    return true;
  return major > 6 || (major == 6 && minor >= 8);
}
