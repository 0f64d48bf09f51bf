#include "kernel/cgroup_mount.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The fields of a line up to the "-" separator: mount id, parent id,
 * major:minor, root, mount point, options; then tags. */
#define FIELDS_BEFORE_TAGS 6
/* After the separator: file system type, source, super options. */
#define FIELDS_AFTER_SEPARATOR 3

static void set_err(char *err, size_t err_size, unsigned line,
                    const char *reason) {
  if (err != NULL && err_size > 0)
    snprintf(err, err_size, "mountinfo line %u: %s", line, reason);
}

static bool is_number(const char *text) {
  if (*text == '\0')
    return false;
  for (; *text != '\0'; text++)
    if (*text < '0' || *text > '9')
      return false;
  return true;
}

/* "MAJOR:MINOR", both decimal. */
static bool is_device(const char *text) {
  const char *colon = strchr(text, ':');
  if (colon == NULL || colon == text || !is_number(colon + 1))
    return false;
  for (const char *p = text; p < colon; p++)
    if (*p < '0' || *p > '9')
      return false;
  return true;
}

static bool is_octal(char c) { return c >= '0' && c <= '7'; }

/* Undoes the kernel's escapes of blank, tab, newline and backslash
 * ("\040"...): a backslash and three octal digits up to \377 is that byte;
 * any other backslash is itself. Returns false when the result would be NUL or
 * too long for size. */
static bool unescape(const char *text, char *out, size_t size) {
  size_t len = 0;
  while (*text != '\0') {
    char c = *text++;
    if (c == '\\' && text[0] >= '0' && text[0] <= '3' && is_octal(text[1]) &&
        is_octal(text[2])) {
      unsigned value = (unsigned)(text[0] - '0') * 64 +
                       (unsigned)(text[1] - '0') * 8 +
                       (unsigned)(text[2] - '0');
      if (value == 0)
        return false;
      c = (char)value;
      text += 3;
    }
    if (len + 1 >= size)
      return false;
    out[len++] = c;
  }
  out[len] = '\0';
  return true;
}

/* Splits line at each blank into at most max fields; a blank next to
 * another, at the start or at the end makes an empty field. Returns the
 * number of fields, or max + 1 when there are more. */
static size_t split(char *line, char **fields, size_t max) {
  size_t count = 0;
  char *start = line;
  for (char *p = line;; p++) {
    if (*p != ' ' && *p != '\0')
      continue;
    if (count == max)
      return max + 1;
    bool end = *p == '\0';
    *p = '\0';
    fields[count++] = start;
    if (end)
      return count;
    start = p + 1;
  }
}

typedef enum { LINE_OTHER, LINE_CGROUP2, LINE_MALFORMED } line_kind_t;

/* A mountinfo line has a handful of tags, so one of more fields than this
 * is malformed. */
#define MAX_FIELDS 64

/* The reason a line's fields are not those of a mount, or NULL. */
static const char *check_fields(char **fields, size_t count,
                                size_t *separator) {
  if (count > MAX_FIELDS)
    return "too many fields";
  for (size_t i = 0; i < count; i++)
    if (fields[i][0] == '\0')
      return "empty field";
  size_t at = 0;
  while (at < count && strcmp(fields[at], "-") != 0)
    at++;
  if (at >= count)
    return "no separator";
  if (at < FIELDS_BEFORE_TAGS)
    return "too few fields before the separator";
  if (count - at - 1 < FIELDS_AFTER_SEPARATOR)
    return "too few fields after the separator";
  if (!is_number(fields[0]) || !is_number(fields[1]) || !is_device(fields[2]))
    return "mount id, parent id or device is not a number";
  *separator = at;
  return NULL;
}

/* Parses one line (its newline removed) into found. */
static line_kind_t parse_line(char *line, cgroup_mount_t *found,
                              const char **reason) {
  char *fields[MAX_FIELDS];
  size_t count = split(line, fields, MAX_FIELDS);
  size_t separator = 0;
  *reason = check_fields(fields, count, &separator);
  if (*reason != NULL)
    return LINE_MALFORMED;
  if (strcmp(fields[separator + 1], "cgroup2") != 0)
    return LINE_OTHER;
  if (!unescape(fields[3], found->root, sizeof(found->root)) ||
      !unescape(fields[4], found->path, sizeof(found->path))) {
    *reason = "bad escape or path too long";
    return LINE_MALFORMED;
  }
  return LINE_CGROUP2;
}

int cgroup_mount_parse(FILE *mountinfo, cgroup_mount_t *mount, char *err,
                       size_t err_size) {
  cgroup_mount_t *candidate = malloc(sizeof(*candidate));
  if (candidate == NULL)
    return -ENOMEM;
  char *line = NULL;
  size_t capacity = 0;
  ssize_t len;
  unsigned number = 0;
  int rc = -ENOENT;
  const char *reason = NULL;
  for (;;) {
    errno = 0;
    len = getline(&line, &capacity, mountinfo);
    if (len < 0)
      break;
    number++;
    if (memchr(line, '\0', (size_t)len) != NULL) {
      reason = "NUL byte";
      rc = -EINVAL;
      break;
    }
    if (len > 0 && line[len - 1] == '\n')
      line[len - 1] = '\0';
    line_kind_t kind = parse_line(line, candidate, &reason);
    if (kind == LINE_MALFORMED) {
      rc = -EINVAL;
      break;
    }
    /* The first cgroup2 mount is kept, unless a later one mounts the whole
     * hierarchy and the kept one does not. */
    if (kind == LINE_CGROUP2 &&
        (rc == -ENOENT || (strcmp(mount->root, "/") != 0 &&
                           strcmp(candidate->root, "/") == 0))) {
      *mount = *candidate;
      rc = 0;
    }
  }
  if (len < 0 && (errno == ENOMEM || ferror(mountinfo))) {
    rc = errno == ENOMEM ? -ENOMEM : -EIO;
    reason = strerror(-rc);
    number++;
  }
  if (rc == -ENOENT && err != NULL && err_size > 0)
    snprintf(err, err_size, "no cgroup2 mount");
  else if (rc != 0)
    set_err(err, err_size, number, reason);
  free(line);
  free(candidate);
  return rc;
}

int cgroup_mount_find(const char *proc_root, cgroup_mount_t *mount, char *err,
                      size_t err_size) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof(path), "%s/self/mountinfo", proc_root);
  if (n < 0 || (size_t)n >= sizeof(path)) {
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "%s/self/mountinfo: path too long", proc_root);
    return -ENAMETOOLONG;
  }
  FILE *file = fopen(path, "re");
  if (file == NULL) {
    int rc = -errno;
    if (err != NULL && err_size > 0)
      snprintf(err, err_size, "%s: %s", path, strerror(-rc));
    return rc;
  }
  char reason[256] = "";
  int rc = cgroup_mount_parse(file, mount, reason, sizeof(reason));
  fclose(file);
  if (rc != 0 && err != NULL && err_size > 0)
    snprintf(err, err_size, "%s: %s", path, reason);
  return rc;
}
