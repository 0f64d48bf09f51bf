#include "kernel/sock_diag.h"

#include "sock_diag_seen.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
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

#define SEQ 77
#define PORTID 1234

/* A hand-built receive buffer. */
typedef struct {
  union {
    struct nlmsghdr align;
    char bytes[8192];
  } u;
  size_t len;
} msgbuf_t;

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

/* The timer, the bound device and tcp_info's timestamps option. */
START_TEST(timer_device_and_timestamps_parsed) {
  reset();
  struct nlmsghdr *tw = add_socket(&mb, AF_INET, TCP_TIME_WAIT, "10.0.0.2",
                                   40003, "203.0.113.7", 443, 0, SEQ);
  struct inet_diag_msg *msg = mnl_nlmsg_get_payload(tw);
  msg->idiag_timer = 3;
  msg->idiag_expires = 58750;
  msg->id.idiag_if = 1;
  uint8_t info[sizeof(struct tcp_info)] = {0};
  info[5] = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK;
  struct nlmsghdr *with = add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                     40004, "203.0.113.7", 443, 0, SEQ);
  add_attr(&mb, with, INET_DIAG_INFO, sizeof(info), info);
  info[5] = TCPI_OPT_SACK;
  struct nlmsghdr *without =
      add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2", 40005,
                 "203.0.113.8", 443, 0, SEQ);
  add_attr(&mb, without, INET_DIAG_INFO, 6, info); /* the oldest tcp_info */
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), 0);
  ck_assert_uint_eq(seen.count, 3);
  ck_assert_uint_eq(seen.socks[0].expires_ms, 58750);
  ck_assert_uint_eq(seen.socks[0].bound_if, 1);
  ck_assert_uint_eq(seen.socks[0].timestamps, INET_TIMESTAMPS_UNKNOWN);
  ck_assert_uint_eq(seen.socks[1].timestamps, INET_TIMESTAMPS_YES);
  ck_assert_uint_eq(seen.socks[1].bound_if, 0);
  ck_assert_uint_eq(seen.socks[2].timestamps, INET_TIMESTAMPS_NO);
}
END_TEST

START_TEST(tcp_info_too_short) {
  reset();
  uint8_t info[5] = {0};
  struct nlmsghdr *nlh = add_socket(&mb, AF_INET, TCP_ESTABLISHED, "10.0.0.2",
                                    40004, "203.0.113.7", 443, 0, SEQ);
  add_attr(&mb, nlh, INET_DIAG_INFO, sizeof(info), info);
  add_end(&mb, NLMSG_DONE, 0);
  ck_assert_int_eq(parse(&mb, &seen), -EBADMSG);
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
  tcase_add_test(tc, timer_device_and_timestamps_parsed);
  tcase_add_test(tc, tcp_info_too_short);
  suite_add_tcase(s, tc);

  suite_add_tcase(s, sock_diag_live_tcase());
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(sock_diag_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
