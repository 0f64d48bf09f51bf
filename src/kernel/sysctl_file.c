#include "kernel/sysctl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sysctl_file_path(char *path, size_t path_size, const char *proc_root,
                     const char *file, char *err, size_t err_size) {
  int length = snprintf(path, path_size, "%s/%s", proc_root, file);
  if (length < 0 || (size_t)length >= path_size) {
    snprintf(err, err_size, "%s/%s: path too long", proc_root, file);
    return -ENAMETOOLONG;
  }
  return 0;
}

ssize_t sysctl_file_read(const char *path, char *text, size_t text_size,
                         char *err, size_t err_size) {
  text[0] = '\0'; /* a string on every path, the errors' included */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    snprintf(err, err_size, "%s: cannot open: %s", path, strerror(error));
    return -error;
  }

  size_t capacity = text_size - 1;
  size_t length = 0;
  for (;;) {
    char overflow = 0; /* read() fills it; initialised for cppcheck */
    char *into = length < capacity ? text + length : &overflow;
    size_t room = length < capacity ? capacity - length : 1;
    ssize_t got = read(fd, into, room);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int error = errno;
      close(fd);
      snprintf(err, err_size, "%s: cannot read: %s", path, strerror(error));
      return -error;
    }
    if (got == 0)
      break;
    if (into == &overflow) {
      close(fd);
      snprintf(err, err_size, "%s: malformed: longer than %zu bytes", path,
               capacity);
      return -EINVAL;
    }
    length += (size_t)got;
  }
  close(fd);

  if (memchr(text, '\0', length) != NULL) {
    snprintf(err, err_size, "%s: malformed: contains a NUL byte", path);
    return -EINVAL;
  }
  text[length] = '\0';
  return (ssize_t)length;
}

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

int sysctl_file_read_uint(const char *proc_root, const char *file, uint32_t max,
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
