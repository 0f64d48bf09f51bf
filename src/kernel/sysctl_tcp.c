#include "kernel/sysctl_tcp.h"

#include "kernel/sysctl_file.h"

#define TW_REUSE_FILE "sys/net/ipv4/tcp_tw_reuse"
#define TW_REUSE_DELAY_FILE "sys/net/ipv4/tcp_tw_reuse_delay"
#define TIMESTAMPS_FILE "sys/net/ipv4/tcp_timestamps"

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
