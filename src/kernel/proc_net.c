#include "kernel/proc_net.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_SIZE 4096

/* sl, local_address, rem_address, st, tx_queue:rx_queue, tr:tm->when,
 * retrnsmt, uid, timeout, inode: every socket line has at least these
 * (TIME_WAIT and SYN_RECV lines stop soon after inode). */
#define MIN_FIELDS 10

typedef struct {
  unsigned line;
  const char *reason;
  bool visitor_stopped;
} parse_failure_t;

/* The kernel prints timers in USER_HZ ticks (jiffies_delta_to_clock_t). */
static uint64_t clock_ticks_per_second(void) {
  static long ticks;
  if (ticks <= 0)
    ticks = sysconf(_SC_CLK_TCK);
  return ticks > 0 ? (uint64_t)ticks : 100;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Parses exactly digits hex digits (at most 8) at *cursor. */
static bool parse_hex(const char **cursor, unsigned digits, uint32_t *value) {
  const char *p = *cursor;
  uint32_t result = 0;
  for (unsigned i = 0; i < digits; i++) {
    int digit = hex_digit(p[i]);
    if (digit < 0)
      return false;
    result = (result << 4) | (uint32_t)digit;
  }
  *value = result;
  *cursor = p + digits;
  return true;
}

static void skip_blanks(const char **cursor) {
  while (is_blank(**cursor))
    (*cursor)++;
}

/* Parses "ADDR:PORT". The kernel prints each 32-bit word of the address
 * with %08X as the host reads it from memory, so storing the parsed word
 * back in host order restores the network-order bytes. */
static bool parse_endpoint(const char **cursor, int family, uint8_t addr[16],
                           uint16_t *port) {
  size_t words = family == AF_INET6 ? 4 : 1;
  memset(addr, 0, 16);
  for (size_t i = 0; i < words; i++) {
    uint32_t word;
    if (!parse_hex(cursor, 8, &word))
      return false;
    memcpy(addr + 4 * i, &word, sizeof(word));
  }
  uint32_t port_value;
  if (**cursor != ':')
    return false;
  (*cursor)++;
  if (!parse_hex(cursor, 4, &port_value))
    return false;
  *port = (uint16_t)port_value;
  return is_blank(**cursor);
}

/* Parses "TX:RX TR:WHEN" (the queues, then the timer and what it has
 * left in clock ticks, %08lX: more digits when it is long) into the ms the
 * timer has left. */
static bool parse_timer(const char **cursor, uint32_t *expires_ms) {
  uint32_t queue, timer;
  if (!parse_hex(cursor, 8, &queue) || **cursor != ':')
    return false;
  (*cursor)++;
  if (!parse_hex(cursor, 8, &queue) || !is_blank(**cursor))
    return false;
  skip_blanks(cursor);
  if (!parse_hex(cursor, 2, &timer) || **cursor != ':')
    return false;
  (*cursor)++;
  uint64_t ticks = 0;
  unsigned digits = 0;
  for (int digit; (digit = hex_digit(**cursor)) >= 0; (*cursor)++) {
    if (++digits > 16)
      return false;
    ticks = ticks << 4 | (uint64_t)digit;
  }
  if (digits == 0 || !is_blank(**cursor))
    return false;
  uint64_t ms = ticks * 1000 / clock_ticks_per_second();
  *expires_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
  return true;
}

static unsigned count_fields(const char *p) {
  unsigned fields = 0;
  while (*p != '\0') {
    skip_blanks(&p);
    if (*p == '\0')
      break;
    fields++;
    while (*p != '\0' && !is_blank(*p))
      p++;
  }
  return fields;
}

/* The kernel pads the "sl" column: "  sl  local_address ..." (tcp, tcp6,
 * udp6) or "   sl  local_address ..." (udp). */
static bool is_header(const char *line) {
  const char *p = line;
  skip_blanks(&p);
  if (strncmp(p, "sl", 2) != 0 || !is_blank(p[2]))
    return false;
  p += 2;
  skip_blanks(&p);
  return strncmp(p, "local_address", 13) == 0 && is_blank(p[13]);
}

static const char *parse_socket_line(const char *line, int family,
                                     inet_socket_t *sock) {
  const char *p = line;
  skip_blanks(&p);
  if (*p < '0' || *p > '9')
    return "bad slot number";
  while (*p >= '0' && *p <= '9')
    p++;
  if (*p != ':' || !is_blank(p[1]))
    return "bad slot number";
  p++;
  skip_blanks(&p);
  if (!parse_endpoint(&p, family, sock->local_addr, &sock->local_port))
    return "bad local address";
  skip_blanks(&p);
  if (!parse_endpoint(&p, family, sock->remote_addr, &sock->remote_port))
    return "bad remote address";
  skip_blanks(&p);
  uint32_t state;
  if (!parse_hex(&p, 2, &state) || !is_blank(*p))
    return "bad state";
  if (count_fields(line) < MIN_FIELDS)
    return "missing fields";
  skip_blanks(&p);
  if (!parse_timer(&p, &sock->expires_ms))
    return "bad queues or timer";
  sock->state = (uint8_t)state;
  return NULL;
}

/* Reads one line into line, without its newline. Returns 1, 0 at the end of
 * the table, or a negative errno. */
static int read_line(FILE *table, char line[LINE_SIZE],
                     parse_failure_t *failure) {
  if (fgets(line, LINE_SIZE, table) == NULL) {
    if (ferror(table)) {
      failure->reason = "read error";
      return -EIO;
    }
    return 0;
  }
  failure->line++;
  size_t length = strlen(line);
  if (length == 0 || line[length - 1] != '\n') {
    failure->reason =
        feof(table) ? "truncated last line" : "line longer than 4 KiB";
    return -EINVAL;
  }
  line[length - 1] = '\0';
  return 1;
}

static int parse_table(FILE *table, int family, int protocol,
                       inet_socket_visit_fn visit, void *ctx,
                       parse_failure_t *failure) {
  *failure = (parse_failure_t){0};
  if ((family != AF_INET && family != AF_INET6) ||
      (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)) {
    failure->reason = "unsupported family or protocol";
    return -EINVAL;
  }

  char line[LINE_SIZE];
  int status = read_line(table, line, failure);
  if (status <= 0) {
    if (status == 0)
      failure->reason = "empty file, no header line";
    return status == 0 ? -EINVAL : status;
  }
  if (!is_header(line)) {
    failure->reason = "bad header line";
    return -EINVAL;
  }

  inet_socket_t sock = {.family = (uint8_t)family,
                        .protocol = (uint8_t)protocol};
  while ((status = read_line(table, line, failure)) > 0) {
    failure->reason = parse_socket_line(line, family, &sock);
    if (failure->reason != NULL)
      return -EINVAL;
    int visit_status = visit(&sock, ctx);
    if (visit_status != 0) {
      failure->visitor_stopped = true;
      return visit_status;
    }
  }
  return status;
}

int proc_net_parse(FILE *table, int family, int protocol,
                   inet_socket_visit_fn visit, void *ctx) {
  parse_failure_t failure;
  return parse_table(table, family, protocol, visit, ctx, &failure);
}

/* Parses the table at path; a missing file sets *missing when missing_ok.
 * Returns as proc_net_read. */
static int read_table_file(const char *path, int family, int protocol,
                           bool missing_ok, bool *missing,
                           inet_socket_visit_fn visit, void *ctx, char *err,
                           size_t err_size) {
  *missing = false;
  FILE *table = fopen(path, "re");
  if (table == NULL) {
    int error = errno;
    if (error == ENOENT && missing_ok) {
      *missing = true;
      return 0;
    }
    snprintf(err, err_size, "%s: cannot open: %s", path, strerror(error));
    return -error;
  }
  parse_failure_t failure;
  int status = parse_table(table, family, protocol, visit, ctx, &failure);
  fclose(table);
  if (status != 0 && !failure.visitor_stopped)
    snprintf(err, err_size, "%s: line %u: %s", path, failure.line,
             failure.reason);
  return status;
}

int proc_net_read(const char *proc_root, int protocol,
                  inet_socket_visit_fn visit, void *ctx, char *err,
                  size_t err_size) {
  const char *name = protocol == IPPROTO_TCP   ? "tcp"
                     : protocol == IPPROTO_UDP ? "udp"
                                               : NULL;
  if (name == NULL) {
    snprintf(err, err_size, "unsupported protocol %d", protocol);
    return -EINVAL;
  }

  char path[PATH_MAX];
  int length = snprintf(path, sizeof(path), "%s/net/%s", proc_root, name);
  if (length < 0 || (size_t)length + 1 >= sizeof(path)) {
    snprintf(err, err_size, "%s/net/%s: path too long", proc_root, name);
    return -ENAMETOOLONG;
  }
  bool missing;
  int status = read_table_file(path, AF_INET, protocol, false, &missing, visit,
                               ctx, err, err_size);
  if (status != 0)
    return status;

  /* A missing tcp6/udp6 means the kernel runs without IPv6. */
  snprintf(path + length, sizeof(path) - (size_t)length, "6");
  return read_table_file(path, AF_INET6, protocol, true, &missing, visit, ctx,
                         err, err_size);
}
