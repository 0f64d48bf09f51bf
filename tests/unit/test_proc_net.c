#include "fixtures.h"
#include "kernel/proc_net.h"
#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SOCKETS 32

typedef struct {
  inet_socket_t sockets[MAX_SOCKETS];
  unsigned count;
  unsigned stop_at; /* 1-based socket to stop at; 0 = never */
  int stop_with;
} collector_t;

typedef struct {
  int family;
  int protocol;
  const char *local;
  unsigned local_port;
  const char *remote;
  unsigned remote_port;
  unsigned state;
} expected_socket_t;

static collector_t seen;
static char err[512];
static char root[PATH_MAX];

static int collect(const inet_socket_t *sock, void *ctx) {
  collector_t *collector = ctx;
  ck_assert_uint_lt(collector->count, MAX_SOCKETS);
  collector->sockets[collector->count++] = *sock;
  if (collector->count == collector->stop_at)
    return collector->stop_with;
  return 0;
}

static void reset(void) {
  memset(&seen, 0, sizeof(seen));
  snprintf(err, sizeof(err), "untouched");
}

static const char *fixture_root(const char *name) {
  return fixture_proc_root(root, name);
}

static FILE *open_table(const char *name) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/proc_net/%s", fixtures_dir(), name);
  FILE *table = fopen(path, "r");
  ck_assert_msg(table != NULL, "cannot open %s", path);
  return table;
}

static int parse_fixture(const char *name, int family, int protocol) {
  FILE *table = open_table(name);
  int status = proc_net_parse(table, family, protocol, collect, &seen);
  fclose(table);
  return status;
}

static void assert_socket(unsigned index, const expected_socket_t *want) {
  const inet_socket_t *got = &seen.sockets[index];
  uint8_t local[16] = {0}, remote[16] = {0};
  ck_assert_int_eq(inet_pton(want->family, want->local, local), 1);
  ck_assert_int_eq(inet_pton(want->family, want->remote, remote), 1);
  ck_assert_msg(got->family == want->family, "socket %u: family %u", index,
                got->family);
  ck_assert_msg(got->protocol == want->protocol, "socket %u: protocol %u",
                index, got->protocol);
  ck_assert_msg(got->state == want->state, "socket %u: state %u, want %u",
                index, got->state, want->state);
  ck_assert_msg(got->local_port == want->local_port,
                "socket %u: local port %u, want %u", index, got->local_port,
                want->local_port);
  ck_assert_msg(got->remote_port == want->remote_port,
                "socket %u: remote port %u, want %u", index, got->remote_port,
                want->remote_port);
  ck_assert_msg(memcmp(got->local_addr, local, 16) == 0,
                "socket %u: local address is not %s", index, want->local);
  ck_assert_msg(memcmp(got->remote_addr, remote, 16) == 0,
                "socket %u: remote address is not %s", index, want->remote);
}

static void assert_sockets(unsigned first, const expected_socket_t *want,
                           unsigned count) {
  for (unsigned i = 0; i < count; i++)
    assert_socket(first + i, &want[i]);
}

#define TCP4(l, lp, r, rp, st)                                                 \
  { AF_INET, IPPROTO_TCP, l, lp, r, rp, st }
#define TCP6(l, lp, r, rp, st)                                                 \
  { AF_INET6, IPPROTO_TCP, l, lp, r, rp, st }
#define UDP4(l, lp, r, rp, st)                                                 \
  { AF_INET, IPPROTO_UDP, l, lp, r, rp, st }
#define UDP6(l, lp, r, rp, st)                                                 \
  { AF_INET6, IPPROTO_UDP, l, lp, r, rp, st }

/* netns_sample/net/tcp: a listener on 127.0.0.1:3306, accepted and client
 * ends, a TIME_WAIT, and an edited CLOSING (08) line with documentation
 * addresses that would show a byte-order mistake. */
static const expected_socket_t tcp4_sample[] = {
    TCP4("127.0.0.1", 3306, "0.0.0.0", 0, 0x0A),
    TCP4("127.0.0.1", 3306, "127.0.0.1", 37054, 0x01),
    TCP4("127.0.0.1", 3306, "127.0.0.1", 40001, 0x01),
    TCP4("127.0.0.1", 37062, "127.0.0.1", 3306, 0x06),
    TCP4("127.0.0.1", 40001, "127.0.0.1", 3306, 0x01),
    TCP4("10.0.0.2", 41202, "203.0.113.7", 443, 0x08),
};

static const expected_socket_t tcp6_sample[] = {
    TCP6("::1", 8080, "::", 0, 0x0A),
    TCP6("::", 22, "::", 0, 0x0A),
    TCP6("::1", 8080, "::1", 49820, 0x01),
    TCP6("::1", 49820, "::1", 8080, 0x01),
    TCP6("::ffff:127.0.0.1", 37054, "::ffff:127.0.0.1", 3306, 0x01),
    TCP6("2001:db8::2", 57843, "2001:db8::7", 443, 0x02),
};

static const expected_socket_t udp4_sample[] = {
    UDP4("0.0.0.0", 5353, "0.0.0.0", 0, 0x07),
    UDP4("127.0.0.1", 42035, "127.0.0.1", 53, 0x01),
};

static const expected_socket_t udp6_sample[] = {
    UDP6("::1", 123, "::", 0, 0x07),
};

START_TEST(test_parse_tcp4) {
  ck_assert_int_eq(parse_fixture("tcp_sample", AF_INET, IPPROTO_TCP), 0);
  ck_assert_uint_eq(seen.count, 6);
  assert_sockets(0, tcp4_sample, COUNT(tcp4_sample));
  /* The TIME_WAIT line's timer, 0x175C clock ticks. */
  ck_assert_uint_eq(seen.sockets[3].expires_ms,
                    0x175C * 1000 / (unsigned)sysconf(_SC_CLK_TCK));
  ck_assert_uint_eq(seen.sockets[0].expires_ms, 0);
}
END_TEST

START_TEST(test_parse_tcp6) {
  ck_assert_int_eq(parse_fixture("tcp6_sample", AF_INET6, IPPROTO_TCP), 0);
  ck_assert_uint_eq(seen.count, 6);
  assert_sockets(0, tcp6_sample, COUNT(tcp6_sample));
}
END_TEST

START_TEST(test_parse_udp4) {
  ck_assert_int_eq(parse_fixture("udp_sample", AF_INET, IPPROTO_UDP), 0);
  ck_assert_uint_eq(seen.count, 2);
  assert_sockets(0, udp4_sample, COUNT(udp4_sample));
}
END_TEST

START_TEST(test_parse_udp6) {
  ck_assert_int_eq(parse_fixture("udp6_sample", AF_INET6, IPPROTO_UDP), 0);
  ck_assert_uint_eq(seen.count, 1);
  assert_sockets(0, udp6_sample, COUNT(udp6_sample));
}
END_TEST

START_TEST(test_parse_header_only) {
  ck_assert_int_eq(parse_fixture("tcp_header_only", AF_INET, IPPROTO_TCP), 0);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(test_parse_lowercase_hex) {
  static const expected_socket_t want[] = {
      TCP4("10.0.0.2", 41202, "203.0.113.7", 443, 0x08)};
  ck_assert_int_eq(parse_fixture("tcp_lowercase_hex", AF_INET, IPPROTO_TCP), 0);
  ck_assert_uint_eq(seen.count, 1);
  assert_sockets(0, want, 1);
}
END_TEST

/* Malformed tables, and how many sockets come before the bad line. */
static const struct {
  const char *name;
  int family;
  unsigned sockets_before;
} malformed_tables[] = {
    {"tcp_empty", AF_INET, 0},
    {"tcp_bad_header", AF_INET, 0},
    {"tcp_header_wrong_columns", AF_INET, 0},
    {"tcp_header_slot", AF_INET, 0},
    {"tcp_no_header", AF_INET, 0},
    {"tcp_truncated", AF_INET, 2},
    {"tcp_long_line", AF_INET, 1},
    {"tcp_nonhex_address", AF_INET, 1},
    {"tcp_missing_fields", AF_INET, 1},
    {"tcp_missing_state", AF_INET, 0},
    {"tcp_state_three_digits", AF_INET, 0},
    {"tcp_state_not_hex", AF_INET, 1},
    {"tcp_bad_timer", AF_INET, 1},
    {"tcp_bad_queues", AF_INET, 0},
    {"tcp_short_address", AF_INET, 0},
    {"tcp_v6_address_in_v4", AF_INET, 0},
    {"tcp_blank_line", AF_INET, 1},
    {"tcp_bad_slot", AF_INET, 0},
    {"tcp_sample", AF_INET6, 0},
    {"tcp6_sample", AF_INET, 0},
};

START_TEST(test_parse_malformed) {
  ck_assert_int_eq(parse_fixture(malformed_tables[_i].name,
                                 malformed_tables[_i].family, IPPROTO_TCP),
                   -EINVAL);
  ck_assert_uint_eq(seen.count, malformed_tables[_i].sockets_before);
}
END_TEST

START_TEST(test_parse_rejects_unknown_family_and_protocol) {
  FILE *table = open_table("tcp_sample");
  ck_assert_int_eq(proc_net_parse(table, AF_UNIX, IPPROTO_TCP, collect, &seen),
                   -EINVAL);
  fclose(table);
  table = open_table("tcp_sample");
  ck_assert_int_eq(proc_net_parse(table, AF_INET, IPPROTO_SCTP, collect, &seen),
                   -EINVAL);
  fclose(table);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(test_parse_visitor_stops_the_walk) {
  seen.stop_at = 3;
  seen.stop_with = 42;
  ck_assert_int_eq(parse_fixture("tcp_sample", AF_INET, IPPROTO_TCP), 42);
  ck_assert_uint_eq(seen.count, 3);
  assert_sockets(0, tcp4_sample, 3);
}
END_TEST

START_TEST(test_parse_read_error_is_eio) {
  /* glibc opens a directory for reading; the first read fails (EISDIR). */
  FILE *table = fopen(fixtures_dir(), "r");
  ck_assert_ptr_nonnull(table);
  ck_assert_int_eq(proc_net_parse(table, AF_INET, IPPROTO_TCP, collect, &seen),
                   -EIO);
  fclose(table);
}
END_TEST

/* A header and one valid socket line padded with blanks to line_length
 * characters before its newline, parsed from memory. */
static int parse_padded_line(size_t line_length) {
  static char text[8192];
  const char *header = "  sl  local_address rem_address   st tx_queue "
                       "rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
  const char *line = "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 "
                     "00:00000000 00000000     0        0 6679 1 "
                     "000000001b412df4 100 0 0 10 0";
  size_t header_length = strlen(header);
  ck_assert_uint_lt(header_length + line_length + 1, sizeof(text));
  memcpy(text, header, header_length);
  memset(text + header_length, ' ', line_length);
  memcpy(text + header_length, line, strlen(line));
  text[header_length + line_length] = '\n';
  FILE *table = fmemopen(text, header_length + line_length + 1, "r");
  ck_assert_ptr_nonnull(table);
  int status = proc_net_parse(table, AF_INET, IPPROTO_TCP, collect, &seen);
  fclose(table);
  return status;
}

START_TEST(test_parse_longest_line_that_fits) {
  ck_assert_int_eq(parse_padded_line(4094), 0);
  ck_assert_uint_eq(seen.count, 1);
  assert_sockets(0, tcp4_sample, 1);
}
END_TEST

START_TEST(test_parse_line_one_byte_too_long) {
  ck_assert_int_eq(parse_padded_line(4095), -EINVAL);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(test_read_tcp_v4_then_v6) {
  ck_assert_int_eq(proc_net_read(fixture_root("netns_sample"), IPPROTO_TCP,
                                 collect, &seen, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(seen.count, 12);
  assert_sockets(0, tcp4_sample, COUNT(tcp4_sample));
  assert_sockets(6, tcp6_sample, COUNT(tcp6_sample));
}
END_TEST

START_TEST(test_read_udp_v4_then_v6) {
  ck_assert_int_eq(proc_net_read(fixture_root("netns_sample"), IPPROTO_UDP,
                                 collect, &seen, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(seen.count, 3);
  assert_sockets(0, udp4_sample, COUNT(udp4_sample));
  assert_sockets(2, udp6_sample, COUNT(udp6_sample));
}
END_TEST

START_TEST(test_read_without_ipv6) {
  ck_assert_int_eq(proc_net_read(fixture_root("no_ipv6"), IPPROTO_TCP, collect,
                                 &seen, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(seen.count, 2);
  assert_sockets(0, tcp4_sample, 2);

  reset();
  ck_assert_int_eq(proc_net_read(fixture_root("no_ipv6"), IPPROTO_UDP, collect,
                                 &seen, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(seen.count, 2);
  assert_sockets(0, udp4_sample, 2);
}
END_TEST

START_TEST(test_read_header_only) {
  ck_assert_int_eq(proc_net_read(fixture_root("header_only"), IPPROTO_TCP,
                                 collect, &seen, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(test_read_missing_v4_table) {
  ck_assert_int_eq(proc_net_read(fixture_root("v4_missing"), IPPROTO_TCP,
                                 collect, &seen, err, sizeof(err)),
                   -ENOENT);
  ck_assert_uint_eq(seen.count, 0);
  char want[PATH_MAX + 64];
  snprintf(want, sizeof(want),
           "%s/net/tcp: cannot open: No such file or "
           "directory",
           root);
  ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_read_malformed_v6_names_file_and_line) {
  ck_assert_int_eq(proc_net_read(fixture_root("v6_malformed"), IPPROTO_TCP,
                                 collect, &seen, err, sizeof(err)),
                   -EINVAL);
  ck_assert_uint_eq(seen.count, 5);
  assert_sockets(0, tcp4_sample, 3);
  assert_sockets(3, tcp6_sample, 2);
  char want[PATH_MAX + 64];
  snprintf(want, sizeof(want), "%s/net/tcp6: line 4: bad remote address", root);
  ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_read_visitor_status_passes_through) {
  seen.stop_at = 8;
  seen.stop_with = -EINVAL;
  ck_assert_int_eq(proc_net_read(fixture_root("netns_sample"), IPPROTO_TCP,
                                 collect, &seen, err, sizeof(err)),
                   -EINVAL);
  ck_assert_uint_eq(seen.count, 8);
  ck_assert_str_eq(err, "untouched");
}
END_TEST

START_TEST(test_read_unknown_protocol) {
  ck_assert_int_eq(proc_net_read(fixture_root("netns_sample"), IPPROTO_SCTP,
                                 collect, &seen, err, sizeof(err)),
                   -EINVAL);
  ck_assert_uint_eq(seen.count, 0);
  ck_assert_str_eq(err, "unsupported protocol 132");
}
END_TEST

static Suite *proc_net_suite(void) {
  Suite *suite = suite_create("proc_net");
  TCase *parse = tcase_create("proc_net_parse");
  tcase_add_checked_fixture(parse, reset, NULL);
  tcase_add_test(parse, test_parse_tcp4);
  tcase_add_test(parse, test_parse_tcp6);
  tcase_add_test(parse, test_parse_udp4);
  tcase_add_test(parse, test_parse_udp6);
  tcase_add_test(parse, test_parse_header_only);
  tcase_add_test(parse, test_parse_lowercase_hex);
  tcase_add_loop_test(parse, test_parse_malformed, 0, COUNT(malformed_tables));
  tcase_add_test(parse, test_parse_rejects_unknown_family_and_protocol);
  tcase_add_test(parse, test_parse_visitor_stops_the_walk);
  tcase_add_test(parse, test_parse_read_error_is_eio);
  tcase_add_test(parse, test_parse_longest_line_that_fits);
  tcase_add_test(parse, test_parse_line_one_byte_too_long);
  suite_add_tcase(suite, parse);

  TCase *read = tcase_create("proc_net_read");
  tcase_add_checked_fixture(read, reset, NULL);
  tcase_add_test(read, test_read_tcp_v4_then_v6);
  tcase_add_test(read, test_read_udp_v4_then_v6);
  tcase_add_test(read, test_read_without_ipv6);
  tcase_add_test(read, test_read_header_only);
  tcase_add_test(read, test_read_missing_v4_table);
  tcase_add_test(read, test_read_malformed_v6_names_file_and_line);
  tcase_add_test(read, test_read_visitor_status_passes_through);
  tcase_add_test(read, test_read_unknown_protocol);
  suite_add_tcase(suite, read);
  return suite;
}

int main(void) { return run_suite(proc_net_suite()); }
