#include "kernel/sockstat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A few hundred bytes on every kernel; room for growth. */
#define SOCKSTAT_TEXT_MAX 4096

static const char *find_line(const char *text, const char *prefix) {
  size_t length = strlen(prefix);
  for (const char *line = text; line != NULL;
       line = strchr(line, '\n'), line = line != NULL ? line + 1 : NULL)
    if (strncmp(line, prefix, length) == 0)
      return line;
  return NULL;
}

static int parse_count(const char *digits, unsigned long *value) {
  if (*digits < '0' || *digits > '9')
    return -1;
  char *after;
  errno = 0;
  unsigned long parsed = strtoul(digits, &after, 10);
  if (errno != 0 || *after != '\0')
    return -1;
  *value = parsed;
  return 0;
}

/* The number after key on the line "<prefix> <key> <n> <key> <n> ...". */
static int field(const char *text, const char *prefix, const char *key,
                 unsigned long *value) {
  const char *line = find_line(text, prefix);
  if (line == NULL)
    return -1;
  size_t length = strcspn(line, "\n");
  char copy[256];
  if (length >= sizeof(copy))
    return -1;
  memcpy(copy, line, length);
  copy[length] = '\0';
  char *save;
  strtok_r(copy, " ", &save); /* the prefix */
  for (char *name = strtok_r(NULL, " ", &save); name != NULL;
       name = strtok_r(NULL, " ", &save)) {
    char *number = strtok_r(NULL, " ", &save);
    if (number == NULL)
      return -1;
    if (strcmp(name, key) == 0)
      return parse_count(number, value);
  }
  return -1;
}

static int parse4(const char *text, sockstat_t *counts) {
  return field(text, "TCP:", "inuse", &counts->tcp_inuse) == 0 &&
                 field(text, "TCP:", "tw", &counts->tcp_tw) == 0 &&
                 field(text, "UDP:", "inuse", &counts->udp_inuse) == 0
             ? 0
             : -1;
}

static int parse6(const char *text, sockstat_t *counts) {
  return field(text, "TCP6:", "inuse", &counts->tcp6_inuse) == 0 &&
                 field(text, "UDP6:", "inuse", &counts->udp6_inuse) == 0
             ? 0
             : -1;
}

int sockstat_parse(const char *text, const char *text6, sockstat_t *out) {
  sockstat_t counts = {0, 0, 0, 0, 0};
  if (parse4(text, &counts) != 0 ||
      (text6 != NULL && parse6(text6, &counts) != 0))
    return -1;
  *out = counts;
  return 0;
}

/* The whole file into text; -ENOENT when it is missing. */
static ssize_t read_text(const char *path, char *text, size_t size, char *err,
                         size_t err_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    snprintf(err, err_size, "%s: %s", path, strerror(error));
    return -error;
  }
  size_t length = 0;
  ssize_t got;
  while (length < size - 1 &&
         (got = read(fd, text + length, size - 1 - length)) > 0)
    length += (size_t)got;
  int error = got < 0 ? errno : 0;
  close(fd);
  text[length] = '\0';
  if (error != 0) {
    snprintf(err, err_size, "%s: %s", path, strerror(error));
    return -error;
  }
  if (length == size - 1 || strlen(text) != length) {
    snprintf(err, err_size, "%s: malformed (too long, or a NUL byte)", path);
    return -EINVAL;
  }
  return (ssize_t)length;
}

int sockstat_read(const char *net_root, sockstat_t *out, char *err,
                  size_t err_size) {
  char path[PATH_MAX], path6[PATH_MAX];
  if (snprintf(path, sizeof(path), "%s/net/sockstat", net_root) >=
          (int)sizeof(path) ||
      snprintf(path6, sizeof(path6), "%s/net/sockstat6", net_root) >=
          (int)sizeof(path6)) {
    snprintf(err, err_size, "%s: path too long", net_root);
    return -ENAMETOOLONG;
  }
  char text[SOCKSTAT_TEXT_MAX], text6[SOCKSTAT_TEXT_MAX];
  sockstat_t counts = {0, 0, 0, 0, 0};
  ssize_t length = read_text(path, text, sizeof(text), err, err_size);
  if (length < 0)
    return (int)length;
  if (parse4(text, &counts) != 0) {
    snprintf(err, err_size, "%s: malformed (no TCP or UDP counts)", path);
    return -EINVAL;
  }
  length = read_text(path6, text6, sizeof(text6), err, err_size);
  if (length < 0 && length != -ENOENT)
    return (int)length;
  if (length >= 0 && parse6(text6, &counts) != 0) {
    snprintf(err, err_size, "%s: malformed (no TCP6 or UDP6 counts)", path6);
    return -EINVAL;
  }
  *out = counts;
  return 0;
}

bool sockstat_tcp_empty(const sockstat_t *counts) {
  return counts->tcp_inuse == 0 && counts->tcp_tw == 0 &&
         counts->tcp6_inuse == 0;
}

bool sockstat_udp_empty(const sockstat_t *counts) {
  return counts->udp_inuse == 0 && counts->udp6_inuse == 0;
}
