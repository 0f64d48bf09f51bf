#include "kernel/sysctl_file.h"

#include <errno.h>
#include <fcntl.h>
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
