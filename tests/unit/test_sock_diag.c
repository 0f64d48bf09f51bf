#include "kernel/cgroup_mount.h"
#include "kernel/sock_diag.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEQ 77
#define PORTID 1234
#define MAX_SEEN 4096
#define ALL_STATES 0xffffffffu

/* A hand-built receive buffer. */
typedef struct {
  union {
    struct nlmsghdr align;
    char bytes[8192];
  } u;
  size_t len;
} msgbuf_t;

typedef struct {
  inet_socket_t socks[MAX_SEEN];
  size_t count;
  size_t stop_after; /* 0 = never stop */
  uint16_t keep[4];  /* when set, only sockets on these local ports */
} seen_t;

static int collect(const inet_socket_t *sock, void *ctx) {
  seen_t *seen = ctx;
  bool kept = seen->keep[0] == 0;
  for (size_t i = 0; i < 4 && !kept; i++)
    kept = seen->keep[i] != 0 && sock->local_port == seen->keep[i];
  if (!kept)
    return 0; /* a live host's other sockets */
  ck_assert_uint_lt(seen->count, MAX_SEEN);
  seen->socks[seen->count++] = *sock;
  if (seen->stop_after != 0 && seen->count >= seen->stop_after)
    return 42;
  return 0;
}

static struct nlmsghdr *add_msg(msgbuf_t *mb, uint16_t type, uint16_t flags,
                                uint32_t seq, size_t payload_len) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(mb->u.bytes + mb->len);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_MULTI | flags;
  nlh->nlmsg_seq = seq;
  nlh->nlmsg_pid = PORTID;
  mnl_nlmsg_put_extra_header(nlh, payload_len);
  mb->len += NLMSG_ALIGN(nlh->nlmsg_len);
  return nlh;
}

static struct nlmsghdr *add_socket(msgbuf_t *mb, int family, uint8_t state,
                                   const char *src, uint16_t sport,
                                   const char *dst, uint16_t dport,
                                   uint16_t flags, uint32_t seq) {
  struct nlmsghdr *nlh = add_msg(mb, SOCK_DIAG_BY_FAMILY, flags, seq,
                                 sizeof(struct inet_diag_msg));
  struct inet_diag_msg *msg = mnl_nlmsg_get_payload(nlh);
  msg->idiag_family = (uint8_t)family;
  msg->idiag_state = state;
  msg->id.idiag_sport = htons(sport);
  msg->id.idiag_dport = htons(dport);
  ck_assert_int_eq(inet_pton(family, src, msg->id.idiag_src), 1);
  ck_assert_int_eq(inet_pton(family, dst, msg->id.idiag_dst), 1);
  if (family == AF_INET) {
    /* The kernel leaves these zero; garbage must not leak into v4. */
    msg->id.idiag_src[1] = msg->id.idiag_dst[3] = 0xdeadbeef;
  }
  return nlh;
}

/* Appends an attribute to nlh, the last message in mb. */
static void add_attr(msgbuf_t *mb, struct nlmsghdr *nlh, uint16_t type,
                     size_t len, const void *data) {
  mb->len -= NLMSG_ALIGN(nlh->nlmsg_len);
  mnl_attr_put(nlh, type, len, data);
  mb->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* A TCP socket as a 6.x kernel sends it: INET_DIAG_SHUTDOWN, then the
 * cgroup id (here after an INET_DIAG_PAD, as on machines without efficient
 * unaligned access), then INET_DIAG_SOCKOPT. */
static struct nlmsghdr *add_owned_socket(msgbuf_t *mb, uint16_t sport,
                                         uint64_t cgroup_id, bool pad) {
  struct nlmsghdr *nlh = add_socket(mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                    sport, "203.0.113.7", 443, 0, SEQ);
  uint8_t shutdown = 0;
  uint16_t sockopt = 0;
  add_attr(mb, nlh, INET_DIAG_SHUTDOWN, sizeof(shutdown), &shutdown);
  if (pad)
    add_attr(mb, nlh, INET_DIAG_PAD, 0, NULL);
  add_attr(mb, nlh, INET_DIAG_CGROUP_ID, sizeof(cgroup_id), &cgroup_id);
  add_attr(mb, nlh, INET_DIAG_SOCKOPT, sizeof(sockopt), &sockopt);
  return nlh;
}

/* The attributes' part of nlh: where they start, and their length. */
static struct nlattr *first_attr(struct nlmsghdr *nlh) {
  return (struct nlattr *)((char *)mnl_nlmsg_get_payload(nlh) +
                           NLMSG_ALIGN(sizeof(struct inet_diag_msg)));
}

static void add_end(msgbuf_t *mb, uint16_t type, int error) {
  size_t len = type == NLMSG_ERROR ? sizeof(struct nlmsgerr) : sizeof(int);
  struct nlmsghdr *nlh = add_msg(mb, type, 0, SEQ, len);
  memcpy(mnl_nlmsg_get_payload(nlh), &error, sizeof(error));
}

static int parse(const msgbuf_t *mb, seen_t *seen) {
  return sock_diag_parse_buffer(mb->u.bytes, mb->len, SEQ, PORTID, IPPROTO_TCP,
                                collect, seen);
}

static void assert_addr(const uint8_t addr[16], int family, const char *text) {
  uint8_t want[16] = {0};
  ck_assert_int_eq(inet_pton(family, text, want), 1);
  ck_assert_mem_eq(addr, want, 16);
}

static msgbuf_t mb;
static seen_t seen;

static void reset(void) {
  memset(&mb, 0, sizeof(mb));
  memset(&seen, 0, sizeof(seen));
}

START_TEST(two_tcp4_sockets) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2", 40001, "203.0.113.7",
             443, 0, SEQ);
  ck_assert_int_eq(parse(&mb, &seen), 1);
  ck_assert_uint_eq(seen.count, 2);

  const inet_socket_t *s = &seen.socks[0];
  ck_assert_uint_eq(s->family, AF_INET);
  ck_assert_uint_eq(s->protocol, IPPROTO_TCP);
  ck_assert_uint_eq(s->state, TCP_LISTEN);
  ck_assert_uint_eq(s->local_port, 22);
  ck_assert_uint_eq(s->remote_port, 0);
  assert_addr(s->local_addr, AF_INET, "0.0.0.0");
  assert_addr(s->remote_addr, AF_INET, "0.0.0.0");
  ck_assert_uint_eq(s->cgroup_id, 0); /* no attribute */

  s = &seen.socks[1];
  ck_assert_uint_eq(s->state, TCP_ESTABLISHED);
  ck_assert_uint_eq(s->local_port, 40001);
  ck_assert_uint_eq(s->remote_port, 443);
  assert_addr(s->local_addr, AF_INET, "10.0.0.2");
  assert_addr(s->remote_addr, AF_INET, "203.0.113.7");
}
END_TEST

START_TEST(tcp6_socket_then_done) {
  reset();
  add_socket(&mb, AF_INET6, TCP_TIME_WAIT, "2001:db8::2", 50000, "2001:db8::7",
             8443, 0, SEQ);
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 1);
  const inet_socket_t *s = &seen.socks[0];
  ck_assert_uint_eq(s->family, AF_INET6);
  ck_assert_uint_eq(s->state, TCP_TIME_WAIT);
  ck_assert_uint_eq(s->local_port, 50000);
  ck_assert_uint_eq(s->remote_port, 8443);
  assert_addr(s->local_addr, AF_INET6, "2001:db8::2");
  assert_addr(s->remote_addr, AF_INET6, "2001:db8::7");
}
END_TEST

START_TEST(protocol_comes_from_request) {
  reset();
  add_socket(&mb, AF_INET, TCP_CLOSE, "127.0.0.1", 5353, "0.0.0.0", 0, 0, SEQ);
  ck_assert_int_eq(sock_diag_parse_buffer(mb.u.bytes, mb.len, SEQ, PORTID,
                                          IPPROTO_UDP, collect, &seen),
                   1);
  ck_assert_uint_eq(seen.count, 1);
  ck_assert_uint_eq(seen.socks[0].protocol, IPPROTO_UDP);
}
END_TEST

START_TEST(older_tcp_request_type) {
  /* The replies to TCPDIAG_GETSOCK carry that type: sockets as well. */
  reset();
  add_socket(&mb, AF_INET6, TCP_LISTEN, "::", 22, "::", 0, 0, SEQ);
  mb.u.align.nlmsg_type = TCPDIAG_GETSOCK;
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 80, "0.0.0.0", 0, 0, SEQ);
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 2);
  ck_assert_uint_eq(seen.socks[0].family, AF_INET6);
  ck_assert_uint_eq(seen.socks[0].local_port, 22);
  ck_assert_uint_eq(seen.socks[1].local_port, 80);
}
END_TEST

START_TEST(done_alone) {
  reset();
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(done_without_error_int) {
  reset();
  add_msg(&mb, NLMSG_DONE, 0, SEQ, 0); /* kernels before 4.x */
  ck_assert_int_eq(parse(&mb, &seen), 0);
}
END_TEST

START_TEST(done_carrying_error) {
  reset();
  add_end(&mb, NLMSG_DONE, -ENOENT);
  ck_assert_int_eq(parse(&mb, &seen), -ENOENT);
}
END_TEST

START_TEST(error_message) {
  reset();
  add_end(&mb, NLMSG_ERROR, -ENOENT);
  ck_assert_int_eq(parse(&mb, &seen), -ENOENT);
}
END_TEST

START_TEST(error_message_too_short) {
  reset();
  add_msg(&mb, NLMSG_ERROR, 0, SEQ, 0);
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
}
END_TEST

START_TEST(error_with_positive_errno) {
  reset();
  add_end(&mb, NLMSG_ERROR, ENOENT);
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
}
END_TEST

START_TEST(dump_interrupted) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 80, "0.0.0.0", 0,
             NLM_F_DUMP_INTR, SEQ);
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 443, "0.0.0.0", 0,
             NLM_F_DUMP_INTR, SEQ);
  ck_assert_int_eq(parse(&mb, &seen), -EAGAIN);
  ck_assert_uint_eq(seen.count, 1); /* visits stop at the interruption */
}
END_TEST

START_TEST(interrupted_done) {
  reset();
  add_msg(&mb, NLMSG_DONE, NLM_F_DUMP_INTR, SEQ, sizeof(int));
  ck_assert_int_eq(parse(&mb, &seen), -EAGAIN);
}
END_TEST

START_TEST(truncated_header) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  mb.len += NLMSG_HDRLEN - 1; /* a partial header after a good message */
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
  ck_assert_int_eq(sock_diag_parse_buffer(mb.u.bytes, 3, SEQ, PORTID,
                                          IPPROTO_TCP, collect, &seen),
                   -EBADMSG);
}
END_TEST

START_TEST(length_beyond_buffer) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  mb.u.align.nlmsg_len = (uint32_t)mb.len + 4;
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(length_of_2_gib) {
  /* libmnl's mnl_nlmsg_ok accepts this (it compares as int). */
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  mb.u.align.nlmsg_len = 0x80000000u;
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(length_below_header) {
  reset();
  add_end(&mb, NLMSG_DONE, 0);
  mb.u.align.nlmsg_len = NLMSG_HDRLEN - 1;
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
}
END_TEST

START_TEST(payload_shorter_than_diag_msg) {
  reset();
  add_msg(&mb, SOCK_DIAG_BY_FAMILY, 0, SEQ, sizeof(struct inet_diag_msg) - 4);
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(unknown_family) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  struct inet_diag_msg *msg = mnl_nlmsg_get_payload(&mb.u.align);
  msg->idiag_family = AF_UNIX;
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
}
END_TEST

START_TEST(stale_messages_skipped) {
  reset();
  /* The tail of an earlier dump, then this dump's socket and end. */
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0,
             NLM_F_DUMP_INTR, SEQ - 1);
  add_msg(&mb, NLMSG_DONE, 0, SEQ - 1, sizeof(int));
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 80, "0.0.0.0", 0, 0, SEQ);
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 1);
  ck_assert_uint_eq(seen.socks[0].local_port, 80);
}
END_TEST

START_TEST(wrong_seq_only) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ + 1);
  ck_assert_int_eq(parse(&mb, &seen), 1);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(wrong_portid_skipped) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  mb.u.align.nlmsg_pid = PORTID + 1;
  ck_assert_int_eq(parse(&mb, &seen), 1);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(visitor_stops) {
  reset();
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 22, "0.0.0.0", 0, 0, SEQ);
  add_socket(&mb, AF_INET, TCP_LISTEN, "0.0.0.0", 80, "0.0.0.0", 0, 0, SEQ);
  add_end(&mb, NLMSG_DONE, 0);
  seen.stop_after = 1;
  ck_assert_int_eq(parse(&mb, &seen), 42);
  ck_assert_uint_eq(seen.count, 1);
}
END_TEST

START_TEST(noop_and_unknown_types_skipped) {
  reset();
  add_msg(&mb, NLMSG_NOOP, 0, SEQ, 0);
  add_msg(&mb, 0x7777, 0, SEQ, 8);
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(cgroup_id_parsed) {
  reset();
  add_owned_socket(&mb, 40001, 0x0000000100000abcULL, false);
  add_owned_socket(&mb, 40002, 1, true);
  add_socket(&mb, AF_INET, TCP_TIME_WAIT, "10.0.0.2", 40003, "203.0.113.7", 443,
             0, SEQ);
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 3);
  ck_assert_uint_eq(seen.socks[0].local_port, 40001);
  ck_assert_uint_eq(seen.socks[0].cgroup_id, 0x0000000100000abcULL);
  ck_assert_uint_eq(seen.socks[0].remote_port, 443);
  ck_assert_uint_eq(seen.socks[1].cgroup_id, 1);
  ck_assert_uint_eq(seen.socks[2].cgroup_id, 0); /* TIME_WAIT: none sent */
}
END_TEST

START_TEST(attributes_without_cgroup_id) {
  reset();
  struct nlmsghdr *nlh = add_socket(&mb, AF_INET, TCP_TIME_WAIT, "10.0.0.2",
                                    40003, "203.0.113.7", 443, 0, SEQ);
  uint32_t mark = 7;
  add_attr(&mb, nlh, INET_DIAG_MARK, sizeof(mark), &mark);
  ck_assert_int_eq(parse(&mb, &seen), 1);
  ck_assert_uint_eq(seen.count, 1);
  ck_assert_uint_eq(seen.socks[0].cgroup_id, 0);
}
END_TEST

START_TEST(last_attribute_unpadded) {
  /* A message may end right after its last attribute's data. */
  reset();
  struct nlmsghdr *nlh = add_owned_socket(&mb, 40001, 42, false);
  uint8_t shutdown = 3;
  add_attr(&mb, nlh, INET_DIAG_SHUTDOWN, sizeof(shutdown), &shutdown);
  nlh->nlmsg_len -= 3;
  ck_assert_int_eq(parse(&mb, &seen), 1);
  ck_assert_uint_eq(seen.count, 1);
  ck_assert_uint_eq(seen.socks[0].cgroup_id, 42);
}
END_TEST

START_TEST(cgroup_id_flag_bits_ignored) {
  reset();
  struct nlmsghdr *nlh = add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                    40001, "203.0.113.7", 443, 0, SEQ);
  uint64_t id = 99;
  add_attr(&mb, nlh, INET_DIAG_CGROUP_ID | NLA_F_NET_BYTEORDER, sizeof(id),
           &id);
  ck_assert_int_eq(parse(&mb, &seen), 1);
  ck_assert_uint_eq(seen.socks[0].cgroup_id, 99);
}
END_TEST

/* Each malformed case spoils the first of two sockets; the whole buffer is
 * then malformed and nothing is visited. */
static void assert_malformed(void) {
  add_owned_socket(&mb, 40009, 5, false);
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
  ck_assert_uint_eq(seen.count, 0);
}

START_TEST(cgroup_id_too_short) {
  reset();
  struct nlmsghdr *nlh = add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                    40001, "203.0.113.7", 443, 0, SEQ);
  uint32_t id = 5;
  add_attr(&mb, nlh, INET_DIAG_CGROUP_ID, sizeof(id), &id);
  assert_malformed();
}
END_TEST

START_TEST(cgroup_id_too_long) {
  reset();
  struct nlmsghdr *nlh = add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                    40001, "203.0.113.7", 443, 0, SEQ);
  uint64_t id[2] = {5, 6};
  add_attr(&mb, nlh, INET_DIAG_CGROUP_ID, sizeof(id), id);
  assert_malformed();
}
END_TEST

START_TEST(cgroup_id_cut_by_message_end) {
  reset();
  struct nlmsghdr *nlh = add_owned_socket(&mb, 40001, 5, false);
  /* Cut inside the cgroup id: SHUTDOWN takes 8 bytes, the id's header 4. */
  nlh->nlmsg_len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct inet_diag_msg)) +
                   8 + NLA_HDRLEN + 4;
  assert_malformed();
}
END_TEST

START_TEST(attribute_header_cut_short) {
  reset();
  struct nlmsghdr *nlh = add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                    40001, "203.0.113.7", 443, 0, SEQ);
  uint8_t shutdown = 0;
  add_attr(&mb, nlh, INET_DIAG_SHUTDOWN, sizeof(shutdown), &shutdown);
  nlh->nlmsg_len += 2; /* half an attribute header after the last one */
  mb.len = NLMSG_ALIGN(nlh->nlmsg_len);
  assert_malformed();
}
END_TEST

START_TEST(attribute_length_below_header) {
  reset();
  struct nlmsghdr *nlh = add_owned_socket(&mb, 40001, 5, false);
  first_attr(nlh)->nla_len = NLA_HDRLEN - 1;
  assert_malformed();
}
END_TEST

START_TEST(attribute_length_past_message) {
  reset();
  struct nlmsghdr *nlh = add_owned_socket(&mb, 40001, 5, false);
  first_attr(nlh)->nla_len = 200;
  assert_malformed();
}
END_TEST

START_TEST(malformed_attribute_after_visitor_stopped) {
  /* Like a bad family, a bad attribute is found in the drained rest too. */
  reset();
  add_owned_socket(&mb, 40001, 5, false);
  struct nlmsghdr *nlh = add_owned_socket(&mb, 40002, 5, false);
  first_attr(nlh)->nla_len = 200;
  seen.stop_after = 1;
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
  ck_assert_uint_eq(seen.count, 1);
}
END_TEST

START_TEST(empty_buffer) {
  reset();
  ck_assert_int_eq(parse(&mb, &seen), 1);
}
END_TEST

/* Live: real sockets on loopback, read back through the kernel. */

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
  sock_diag_query_t all_tcp = {family, IPPROTO_TCP, ALL_STATES, 0, 0};
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
  sock_diag_query_t listeners = {family, IPPROTO_TCP, 1u << TCP_LISTEN, 0, 0};
  ck_assert_int_eq(
      sock_diag_dump(diag, &listeners, collect, s, err, sizeof(err)), 0);
  ck_assert_uint_eq(count_port(s, p.listen_port), 1);
  ck_assert_uint_eq(count_port(s, p.client_port), 0);

  /* The kernel filters on the local port: the client's port alone, then
   * the listener's port alone (the listener and the accepted socket). */
  *s = keep;
  sock_diag_query_t client_only = {family, IPPROTO_TCP, ALL_STATES,
                                   p.client_port, p.client_port};
  ck_assert_int_eq(
      sock_diag_dump(diag, &client_only, collect, s, err, sizeof(err)), 0);
  ck_assert_uint_eq(s->count, 1);
  ck_assert_uint_eq(count_matches(s, TCP_ESTABLISHED, p.client_port,
                                  p.listen_port, loopback, family),
                    1);
  *s = keep;
  sock_diag_query_t listen_port_only = {family, IPPROTO_TCP, ALL_STATES,
                                        p.listen_port, p.listen_port};
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

  sock_diag_query_t both = {AF_UNSPEC, IPPROTO_TCP, ALL_STATES, 0, 0};
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

  sock_diag_query_t udp_both = {AF_UNSPEC, IPPROTO_UDP, ALL_STATES, 0, 0};
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
  sock_diag_query_t experimental = {AF_INET, 253, ALL_STATES, 0, 0};
  int rc =
      sock_diag_dump(diag, &experimental, collect, &seen, err, sizeof(err));
  ck_assert_int_eq(rc, -ENOENT);
  ck_assert_str_eq(
      err, "sock_diag: dump protocol 253 family 2: No such file or directory");

  memset(&seen, 0, sizeof(seen));
  sock_diag_query_t all_tcp4 = {AF_INET, IPPROTO_TCP, ALL_STATES, 0, 0};
  rc = sock_diag_dump(diag, &all_tcp4, collect, &seen, err, sizeof(err));
  ck_assert_msg(rc == 0, "dump after an error: %d %s", rc, err);
  sock_diag_close(diag);
}
END_TEST

static Suite *sock_diag_suite(void) {
  Suite *s = suite_create("sock_diag");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, two_tcp4_sockets);
  tcase_add_test(tc, tcp6_socket_then_done);
  tcase_add_test(tc, protocol_comes_from_request);
  tcase_add_test(tc, older_tcp_request_type);
  tcase_add_test(tc, done_alone);
  tcase_add_test(tc, done_without_error_int);
  tcase_add_test(tc, done_carrying_error);
  tcase_add_test(tc, error_message);
  tcase_add_test(tc, error_message_too_short);
  tcase_add_test(tc, error_with_positive_errno);
  tcase_add_test(tc, dump_interrupted);
  tcase_add_test(tc, interrupted_done);
  tcase_add_test(tc, truncated_header);
  tcase_add_test(tc, length_beyond_buffer);
  tcase_add_test(tc, length_of_2_gib);
  tcase_add_test(tc, length_below_header);
  tcase_add_test(tc, payload_shorter_than_diag_msg);
  tcase_add_test(tc, unknown_family);
  tcase_add_test(tc, stale_messages_skipped);
  tcase_add_test(tc, wrong_seq_only);
  tcase_add_test(tc, wrong_portid_skipped);
  tcase_add_test(tc, visitor_stops);
  tcase_add_test(tc, noop_and_unknown_types_skipped);
  tcase_add_test(tc, empty_buffer);
  tcase_add_test(tc, cgroup_id_parsed);
  tcase_add_test(tc, attributes_without_cgroup_id);
  tcase_add_test(tc, last_attribute_unpadded);
  tcase_add_test(tc, cgroup_id_flag_bits_ignored);
  tcase_add_test(tc, cgroup_id_too_short);
  tcase_add_test(tc, cgroup_id_too_long);
  tcase_add_test(tc, cgroup_id_cut_by_message_end);
  tcase_add_test(tc, attribute_header_cut_short);
  tcase_add_test(tc, attribute_length_below_header);
  tcase_add_test(tc, attribute_length_past_message);
  tcase_add_test(tc, malformed_attribute_after_visitor_stopped);
  suite_add_tcase(s, tc);

  TCase *live = tcase_create("live");
  tcase_add_test(live, live_tcp4);
  tcase_add_test(live, live_tcp6);
  tcase_add_test(live, live_missing_protocol);
  tcase_add_test(live, live_tcp_both_families);
  suite_add_tcase(s, live);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(sock_diag_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
