#include "kernel/sysctl_tcp.h"

#include "kernel/sysctl_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TW_REUSE_FILE "sys/net/ipv4/tcp_tw_reuse"
#define TW_REUSE_DELAY_FILE "sys/net/ipv4/tcp_tw_reuse_delay"
#define TIMESTAMPS_FILE "sys/net/ipv4/tcp_timestamps"
#define EHASH_ENTRIES_FILE "sys/net/ipv4/tcp_ehash_entries"

int sysctl_read_tcp_reuse(const char *proc_root, tcp_reuse_sysctls_t *out,
                          char *err, size_t err_size) {
  uint32_t reuse = 0, delay = TCP_TW_REUSE_DELAY_OLD_MS, timestamps = 0;
  bool missing;
  /* The kernel's own bounds: tcp_tw_reuse 0..2, tcp_timestamps 0..2. */
  int status = sysctl_file_read_uint(proc_root, TW_REUSE_FILE, 2, &reuse,
                                     &missing, err, err_size);
  if (status == 0)
    status = sysctl_file_read_uint(proc_root, TW_REUSE_DELAY_FILE, UINT32_MAX,
                                   &delay, &missing, err, err_size);
  if (status == 0)
    status = sysctl_file_read_uint(proc_root, TIMESTAMPS_FILE, 2, &timestamps,
                                   &missing, err, err_size);
  if (status != 0)
    return status;
  *out = (tcp_reuse_sysctls_t){reuse, delay, timestamps != 0};
  return 0;
}

int sysctl_read_tcp_ehash_entries(const char *proc_root, long *entries,
                                  char *err, size_t err_size) {
  char path[PATH_MAX];
  int status = sysctl_file_path(path, sizeof(path), proc_root,
                                EHASH_ENTRIES_FILE, err, err_size);
  if (status != 0)
    return status;
  char text[32];
  ssize_t length = sysctl_file_read(path, text, sizeof(text), err, err_size);
  if (length < 0)
    return (int)length;
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (end == text || errno != 0 || value < INT_MIN || value > INT_MAX ||
      (*end != '\0' && strcmp(end, "\n") != 0)) {
    snprintf(err, err_size, "%s: malformed (expected a number)", path);
    return -EINVAL;
  }
  *entries = value;
  return 0;
}
