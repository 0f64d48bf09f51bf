#include "kernel/sysctl_tcp.h"

#include "kernel/sysctl_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#define TW_REUSE_FILE "sys/net/ipv4/tcp_tw_reuse"
#define TW_REUSE_DELAY_FILE "sys/net/ipv4/tcp_tw_reuse_delay"
#define TIMESTAMPS_FILE "sys/net/ipv4/tcp_timestamps"

/* "4294967295\n" is 11 bytes. */
#define UINT_TEXT_MAX 64

int sysctl_uint_text_parse(const char *text, uint32_t max, uint32_t *value) {
  const char *p = text;
  uint64_t number = 0;
  if (*p < '0' || *p > '9')
    return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    number = number * 10 + (uint64_t)(*p - '0');
    if (number > max)
      return -1;
  }
  if (*p == '\n')
    p++;
  if (*p != '\0')
    return -1;
  *value = (uint32_t)number;
  return 0;
}

/* Reads file as a number within 0..max into *value; a missing file leaves
 * *value alone and sets *missing. Returns 0 or a negative errno. */
static int read_uint(const char *proc_root, const char *file, uint32_t max,
                     uint32_t *value, bool *missing, char *err,
                     size_t err_size) {
  char path[PATH_MAX];
  int status =
      sysctl_file_path(path, sizeof(path), proc_root, file, err, err_size);
  if (status != 0)
    return status;
  char text[UINT_TEXT_MAX + 1];
  ssize_t length = sysctl_file_read(path, text, sizeof(text), err, err_size);
  *missing = length == -ENOENT;
  if (*missing) {
    if (err_size > 0)
      err[0] = '\0';
    return 0;
  }
  if (length < 0)
    return (int)length;
  if (sysctl_uint_text_parse(text, max, value) != 0) {
    snprintf(err, err_size, "%s: malformed (expected a number within 0..%u)",
             path, (unsigned)max);
    return -EINVAL;
  }
  return 0;
}

int sysctl_read_tcp_reuse(const char *proc_root, tcp_reuse_sysctls_t *out,
                          char *err, size_t err_size) {
  uint32_t reuse = 0, delay = TCP_TW_REUSE_DELAY_OLD_MS, timestamps = 0;
  bool missing;
  /* The kernel's own bounds: tcp_tw_reuse 0..2, tcp_timestamps 0..2. */
  int status =
      read_uint(proc_root, TW_REUSE_FILE, 2, &reuse, &missing, err, err_size);
  if (status == 0)
    status = read_uint(proc_root, TW_REUSE_DELAY_FILE, UINT32_MAX, &delay,
                       &missing, err, err_size);
  if (status == 0)
    status = read_uint(proc_root, TIMESTAMPS_FILE, 2, &timestamps, &missing,
                       err, err_size);
  if (status != 0)
    return status;
  *out = (tcp_reuse_sysctls_t){reuse, delay, timestamps != 0};
  return 0;
}
