/* libFuzzer target: mountinfo text, as cgroup_mount_find reads it from
 * <proc_root>/self/mountinfo. A found mount must be two NUL-terminated
 * paths within their buffers; a failure must say why in err. */
#include "kernel/cgroup_mount.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0; /* fmemopen wants a buffer; the unit tests read an empty file */
  /* An exact-size copy, so a read past the text is caught. */
  char *text = malloc(size);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  FILE *mountinfo = fmemopen(text, size, "r");
  if (mountinfo == NULL)
    abort();

  static cgroup_mount_t mount;
  char err[128] = "";
  memset(&mount, 0x55, sizeof(mount));
  int rc = cgroup_mount_parse(mountinfo, &mount, err, sizeof(err));
  fclose(mountinfo);
  free(text);

  if (rc == 0) {
    if (memchr(mount.path, '\0', sizeof(mount.path)) == NULL ||
        memchr(mount.root, '\0', sizeof(mount.root)) == NULL ||
        mount.path[0] == '\0' || mount.root[0] == '\0')
      abort();
  } else if (rc == -ENOENT || rc == -EINVAL) {
    if (err[0] == '\0')
      abort();
  } else {
    abort(); /* a memory stream has no read error; -ENOMEM is not fuzzed */
  }
  return 0;
}
