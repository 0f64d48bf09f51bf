/* test_sock_diag against the kernel: real sockets on loopback, read back
 * through sock_diag. */
#include "kernel/cgroup_mount.h"
#include "kernel/sock_diag.h"

#include "sock_diag_seen.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static seen_t seen;

typedef struct {
  int listener, client, server;
  uint16_t listen_port, client_port;
} live_pair_t;

static uint16_t local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static live_pair_t open_pair(int family) {
  struct sockaddr_storage ss = {0};
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof(*sin6);
  }
  live_pair_t p;
  p.listener = socket(family, SOCK_STREAM, 0);
  ck_assert_int_ge(p.listener, 0);
  ck_assert_msg(bind(p.listener, (struct sockaddr *)&ss, len) == 0,
                "bind to loopback (family %d) failed: %s", family,
                strerror(errno));
  ck_assert_int_eq(listen(p.listener, 4), 0);
  p.listen_port = local_port(p.listener);
  if (family == AF_INET)
    ((struct sockaddr_in *)&ss)->sin_port = htons(p.listen_port);
  else
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(p.listen_port);

  p.client = socket(family, SOCK_STREAM, 0);
  ck_assert_int_ge(p.client, 0);
  ck_assert_int_eq(connect(p.client, (struct sockaddr *)&ss, len), 0);
  p.server = accept(p.listener, NULL, NULL);
  ck_assert_int_ge(p.server, 0);
  p.client_port = local_port(p.client);
  return p;
}

static void close_pair(live_pair_t *p) {
  /* Linger 0: no TIME_WAIT left behind by the test. */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(p->client, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  setsockopt(p->server, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(p->client);
  close(p->server);
  close(p->listener);
}

static size_t count_matches(const seen_t *s, uint8_t state, uint16_t lport,
                            uint16_t rport, const char *loopback, int family) {
  size_t n = 0;
  for (size_t i = 0; i < s->count; i++) {
    const inet_socket_t *x = &s->socks[i];
    if (x->family != family || x->protocol != IPPROTO_TCP ||
        x->state != state || x->local_port != lport || x->remote_port != rport)
      continue;
    uint8_t lo[16] = {0};
    ck_assert_int_eq(inet_pton(family, loopback, lo), 1);
    ck_assert_mem_eq(x->local_addr, lo, 16);
    if (rport != 0)
      ck_assert_mem_eq(x->remote_addr, lo, 16);
    n++;
  }
  return n;
}

/* The owner's cgroup id of the one socket in state on lport. */
static uint64_t cgroup_of(const seen_t *s, uint8_t state, uint16_t lport,
                          uint16_t rport) {
  uint64_t id = 0;
  size_t n = 0;
  for (size_t i = 0; i < s->count; i++) {
    const inet_socket_t *x = &s->socks[i];
    if (x->state == state && x->local_port == lport &&
        x->remote_port == rport) {
      id = x->cgroup_id;
      n++;
    }
  }
  ck_assert_uint_eq(n, 1);
  return id;
}

/* This process's cgroup v2 id, as name_to_handle_at gives it for the
 * directory that /proc/self/cgroup names under the cgroup2 mount; 0 when
 * there is no cgroup2 mount. */
static uint64_t own_cgroup_id(void) {
  static cgroup_mount_t mount;
  char err[256];
  if (cgroup_mount_find("/proc", &mount, err, sizeof(err)) != 0)
    return 0;
  FILE *file = fopen("/proc/self/cgroup", "r");
  ck_assert_ptr_nonnull(file);
  char line[PATH_MAX] = "", path[2 * PATH_MAX] = "";
  while (fgets(line, sizeof(line), file) != NULL)
    if (strncmp(line, "0::", 3) == 0) {
      line[strcspn(line, "\n")] = '\0';
      snprintf(path, sizeof(path), "%s%s", mount.path, line + 3);
    }
  fclose(file);
  ck_assert_msg(path[0] != '\0', "no cgroup v2 line in /proc/self/cgroup");
  struct {
    struct file_handle fh;
    uint64_t id;
  } handle = {.fh.handle_bytes = sizeof(uint64_t)};
  int mount_id;
  ck_assert_int_eq(name_to_handle_at(AT_FDCWD, path, &handle.fh, &mount_id, 0),
                   0);
  return handle.id;
}

static size_t count_port(const seen_t *s, uint16_t lport) {
  size_t n = 0;
  for (size_t i = 0; i < s->count; i++)
    n += s->socks[i].local_port == lport;
  return n;
}

static void live_dump(int family, const char *loopback) {
  char err[256] = "";
  sock_diag_t *diag = sock_diag_open(err, sizeof(err));
  ck_assert_msg(diag != NULL, "%s", err);
  live_pair_t p = open_pair(family);
  seen_t *s = calloc(1, sizeof(*s));
  ck_assert_ptr_nonnull(s);

  /* Twice on the same socket, and once more after a visitor that stops
   * early: the drained socket must answer the next dump cleanly. */
  const seen_t keep = {.keep = {p.listen_port, p.client_port}};
  sock_diag_query_t all_tcp = {family, IPPROTO_TCP, ALL_STATES, 0, 0, false};
  for (int round = 0; round < 3; round++) {
    if (round == 1) {
      *s = keep;
      s->stop_after = 1;
      ck_assert_int_eq(
          sock_diag_dump(diag, &all_tcp, collect, s, err, sizeof(err)), 42);
    }
    *s = keep;
    int rc = sock_diag_dump(diag, &all_tcp, collect, s, err, sizeof(err));
    ck_assert_msg(rc == 0, "dump: %d %s", rc, err);
    ck_assert_uint_eq(count_port(s, p.listen_port), 2);
    ck_assert_uint_eq(
        count_matches(s, TCP_LISTEN, p.listen_port, 0, loopback, family), 1);
    ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, p.listen_port,
                                    p.client_port, loopback, family),
                      1);
    ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, p.client_port,
                                    p.listen_port, loopback, family),
                      1);
    /* One process made all three: its group owns them. */
    uint64_t owner = cgroup_of(s, TCP_LISTEN, p.listen_port, 0);
    ck_assert_uint_ne(owner, 0);
    uint64_t own = own_cgroup_id();
    if (own != 0)
      ck_assert_uint_eq(owner, own);
    ck_assert_uint_eq(
        cgroup_of(s, TCP_ESTABLISHED, p.client_port, p.listen_port), owner);
    ck_assert_uint_eq(
        cgroup_of(s, TCP_ESTABLISHED, p.listen_port, p.client_port), owner);
  }

  /* Only the listening state asked for. */
  *s = keep;
  sock_diag_query_t listeners = {family, IPPROTO_TCP, 1u << TCP_LISTEN,
                                 0,      0,           false};
  ck_assert_int_eq(
      sock_diag_dump(diag, &listeners, collect, s, err, sizeof(err)), 0);
  ck_assert_uint_eq(count_port(s, p.listen_port), 1);
  ck_assert_uint_eq(count_port(s, p.client_port), 0);

  /* The kernel filters on the local port: the client's port alone, then
   * the listener's port alone (the listener and the accepted socket). */
  *s = keep;
  sock_diag_query_t client_only = {family,        IPPROTO_TCP,   ALL_STATES,
                                   p.client_port, p.client_port, false};
  ck_assert_int_eq(
      sock_diag_dump(diag, &client_only, collect, s, err, sizeof(err)), 0);
  ck_assert_uint_eq(s->count, 1);
  ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, p.client_port,
                                  p.listen_port, loopback, family),
                    1);
  *s = keep;
  sock_diag_query_t listen_port_only = {
      family, IPPROTO_TCP, ALL_STATES, p.listen_port, p.listen_port, false};
  ck_assert_int_eq(
      sock_diag_dump(diag, &listen_port_only, collect, s, err, sizeof(err)), 0);
  ck_assert_uint_eq(s->count, 2);
  ck_assert_uint_eq(
      count_matches(s, TCP_LISTEN, p.listen_port, 0, loopback, family), 1);
  ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, p.listen_port,
                                  p.client_port, loopback, family),
                    1);

  close_pair(&p);
  free(s);
  sock_diag_close(diag);
}

/* With tcp_info asked for, an established loopback socket tells the
 * timestamps option the namespace's tcp_timestamps gave it. */
START_TEST(live_tcp_info_timestamps) {
  char err[256] = "";
  sock_diag_t *diag = sock_diag_open(err, sizeof(err));
  ck_assert_msg(diag != NULL, "%s", err);
  FILE *sysctl = fopen("/proc/sys/net/ipv4/tcp_timestamps", "r");
  int timestamps = -1;
  ck_assert_ptr_nonnull(sysctl);
  ck_assert_int_eq(fscanf(sysctl, "%d", &timestamps), 1);
  fclose(sysctl);
  live_pair_t p = open_pair(AF_INET);
  seen_t *s = calloc(1, sizeof(*s));
  ck_assert_ptr_nonnull(s);
  *s = (seen_t){.keep = {p.client_port}};
  sock_diag_query_t query = {
      AF_INET,       IPPROTO_TCP,   1u << TCP_ESTABLISHED,
      p.client_port, p.client_port, true};
  ck_assert_int_eq(sock_diag_dump(diag, &query, collect, s, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(s->count, 1);
  ck_assert_uint_eq(s->socks[0].timestamps,
                    timestamps != 0 ? INET_TIMESTAMPS_YES : INET_TIMESTAMPS_NO);
  query.tcp_info = false;
  *s = (seen_t){.keep = {p.client_port}};
  ck_assert_int_eq(sock_diag_dump(diag, &query, collect, s, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(s->socks[0].timestamps, INET_TIMESTAMPS_UNKNOWN);
  close_pair(&p);
  free(s);
  sock_diag_close(diag);
}
END_TEST

START_TEST(live_tcp4) { live_dump(AF_INET, "127.0.0.1"); }
END_TEST

START_TEST(live_tcp6) { live_dump(AF_INET6, "::1"); }
END_TEST

/* AF_UNSPEC asks for both families in one TCP dump. */
START_TEST(live_tcp_both_families) {
  char err[256] = "";
  sock_diag_t *diag = sock_diag_open(err, sizeof(err));
  ck_assert_msg(diag != NULL, "%s", err);
  live_pair_t v4 = open_pair(AF_INET);
  live_pair_t v6 = open_pair(AF_INET6);
  seen_t *s = calloc(1, sizeof(*s));
  ck_assert_ptr_nonnull(s);
  *s = (seen_t){
      .keep = {v4.listen_port, v4.client_port, v6.listen_port, v6.client_port}};

  sock_diag_query_t both = {AF_UNSPEC, IPPROTO_TCP, ALL_STATES, 0, 0, false};
  int rc = sock_diag_dump(diag, &both, collect, s, err, sizeof(err));
  ck_assert_msg(rc == 0, "dump: %d %s", rc, err);
  ck_assert_uint_eq(
      count_matches(s, TCP_LISTEN, v4.listen_port, 0, "127.0.0.1", AF_INET), 1);
  ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, v4.client_port,
                                  v4.listen_port, "127.0.0.1", AF_INET),
                    1);
  ck_assert_uint_eq(
      count_matches(s, TCP_LISTEN, v6.listen_port, 0, "::1", AF_INET6), 1);
  ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, v6.client_port,
                                  v6.listen_port, "::1", AF_INET6),
                    1);

  sock_diag_query_t udp_both = {AF_UNSPEC, IPPROTO_UDP, ALL_STATES,
                                0,         0,           false};
  ck_assert_int_eq(
      sock_diag_dump(diag, &udp_both, collect, s, err, sizeof(err)), -EINVAL);
  close_pair(&v4);
  close_pair(&v6);
  free(s);
  sock_diag_close(diag);
}
END_TEST

START_TEST(live_missing_protocol) {
  char err[256] = "";
  sock_diag_t *diag = sock_diag_open(err, sizeof(err));
  ck_assert_msg(diag != NULL, "%s", err);
  /* 253 is reserved for experiments: no diag module serves it. */
  sock_diag_query_t experimental = {AF_INET, 253, ALL_STATES, 0, 0, false};
  int rc =
      sock_diag_dump(diag, &experimental, collect, &seen, err, sizeof(err));
  ck_assert_int_eq(rc, -ENOENT);
  ck_assert_str_eq(
      err, "sock_diag: dump protocol 253 family 2: No such file or directory");

  memset(&seen, 0, sizeof(seen));
  sock_diag_query_t all_tcp4 = {AF_INET, IPPROTO_TCP, ALL_STATES, 0, 0, false};
  rc = sock_diag_dump(diag, &all_tcp4, collect, &seen, err, sizeof(err));
  ck_assert_msg(rc == 0, "dump after an error: %d %s", rc, err);
  sock_diag_close(diag);
}
END_TEST

TCase *sock_diag_live_tcase(void) {
  TCase *live = tcase_create("live");
  tcase_add_test(live, live_tcp4);
  tcase_add_test(live, live_tcp6);
  tcase_add_test(live, live_missing_protocol);
  tcase_add_test(live, live_tcp_both_families);
  tcase_add_test(live, live_tcp_info_timestamps);
  return live;
}
