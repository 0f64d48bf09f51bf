/* Reading one sysctl file under <proc_root>/sys/: the whole small text,
 * with errors that name the file. */
#ifndef EPHEMERAL_PORTS_SYSCTL_FILE_H
#define EPHEMERAL_PORTS_SYSCTL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes "<proc_root>/<file>" into path. Returns 0, or -ENAMETOOLONG with
 * a message in err. */
int sysctl_file_path(char *path, size_t path_size, const char *proc_root,
                     const char *file, char *err, size_t err_size);

/* Reads the whole file into text (text_size - 1 bytes at most, then a NUL).
 * Returns the length, or a negative errno with a message naming path in
 * err: the open or read error (-ENOENT for a missing file), or -EINVAL
 * when the text is longer than that or holds a NUL byte. */
ssize_t sysctl_file_read(const char *path, char *text, size_t text_size,
                         char *err, size_t err_size);

/* "N" with optional trailing newline, N a decimal within 0..max. Returns 0,
 * or -1 on anything else. */
int sysctl_uint_text_parse(const char *text, uint32_t max, uint32_t *value);

/* Reads <proc_root>/<file> as a number within 0..max into *value. A missing
 * file leaves *value alone and sets *missing (err empty). Returns 0, or a
 * negative errno (-EINVAL for malformed content) with a message naming the
 * file in err. */
int sysctl_file_read_uint(const char *proc_root, const char *file, uint32_t max,
                          uint32_t *value, bool *missing, char *err,
                          size_t err_size);

#endif
