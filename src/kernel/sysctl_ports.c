#include "kernel/sysctl_ports.h"

#include "kernel/sysctl_file.h"
#include "util/port_list.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PORT_RANGE_FILE "sys/net/ipv4/ip_local_port_range"
#define RESERVED_PORTS_FILE "sys/net/ipv4/ip_local_reserved_ports"

/* "65535\t65535\n" is 12 bytes; anything much longer is not a port range. */
#define PORT_RANGE_TEXT_MAX 256
/* The kernel's longest list (every other port) is larger, but no real host
 * reserves anything close to that. */
#define RESERVED_PORTS_TEXT_MAX (64 * 1024)

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

int port_range_text_parse(const char *text, uint16_t *low, uint16_t *high) {
  const char *p = text;
  uint16_t first, last;
  if (port_number_parse(&p, 1, &first) != 0 || !is_blank(*p))
    return -1;
  while (is_blank(*p))
    p++;
  if (port_number_parse(&p, 1, &last) != 0)
    return -1;
  if (*p == '\n')
    p++;
  if (*p != '\0' || first > last)
    return -1;
  *low = first;
  *high = last;
  return 0;
}

int sysctl_read_port_range(const char *proc_root, uint16_t *low, uint16_t *high,
                           char *err, size_t err_size) {
  char path[PATH_MAX];
  int status = sysctl_file_path(path, sizeof(path), proc_root, PORT_RANGE_FILE,
                                err, err_size);
  if (status != 0)
    return status;

  char text[PORT_RANGE_TEXT_MAX + 1];
  ssize_t length = sysctl_file_read(path, text, sizeof(text), err, err_size);
  if (length < 0)
    return (int)length;
  if (port_range_text_parse(text, low, high) != 0) {
    snprintf(err, err_size,
             "%s: malformed port range (expected \"LOW HIGH\" with "
             "1 <= LOW <= HIGH <= 65535)",
             path);
    return -EINVAL;
  }
  return 0;
}

int sysctl_read_reserved_ports(const char *proc_root, portset_t *reserved,
                               char *err, size_t err_size) {
  portset_clear(reserved);
  char path[PATH_MAX];
  int status = sysctl_file_path(path, sizeof(path), proc_root,
                                RESERVED_PORTS_FILE, err, err_size);
  if (status != 0)
    return status;

  char text[RESERVED_PORTS_TEXT_MAX + 1];
  ssize_t length = sysctl_file_read(path, text, sizeof(text), err, err_size);
  if (length == -ENOENT) {
    if (err_size > 0)
      err[0] = '\0';
    return 0;
  }
  if (length < 0)
    return (int)length;
  /* The kernel accepts 0 in this list, unlike in the port range. */
  if (port_list_parse(text, 0, reserved) != 0) {
    portset_clear(reserved);
    snprintf(err, err_size,
             "%s: malformed reserved port list (expected comma-separated "
             "ports and LOW-HIGH ranges within 0..65535)",
             path);
    return -EINVAL;
  }
  return 0;
}
