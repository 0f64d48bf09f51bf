#include "kernel/netlink_dump.h"

#include "run_suite.h"

#include <check.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEQ 77
#define PORTID 1234
#define TYPE 0x0123 /* the dump's messages */
#define PAYLOAD 8   /* each carries a 32-bit value and a pad */
#define MALFORMED 0xbad

typedef struct {
  union {
    struct nlmsghdr align;
    char bytes[4096];
  } u;
  size_t len;
} msgbuf_t;

/* What the message function saw: values visited, messages checked. */
typedef struct {
  uint32_t values[64];
  size_t visited;
  size_t checked;
  size_t stop_after; /* 0 = never stop */
} seen_t;

static msgbuf_t mb;
static seen_t seen;

static void reset(void) {
  memset(&mb, 0, sizeof(mb));
  memset(&seen, 0, sizeof(seen));
}

/* A message of TYPE is malformed when shorter than PAYLOAD or carrying
 * MALFORMED; its value is visited when asked. */
static int message(const struct nlmsghdr *nlh, bool visit, void *ctx) {
  seen_t *s = ctx;
  uint32_t value;
  if (nlh->nlmsg_len < NLMSG_HDRLEN + PAYLOAD)
    return -EBADMSG;
  memcpy(&value, mnl_nlmsg_get_payload(nlh), sizeof(value));
  if (value == MALFORMED)
    return -EBADMSG;
  s->checked++;
  if (!visit)
    return 0;
  ck_assert_uint_lt(s->visited, COUNT(s->values));
  s->values[s->visited++] = value;
  return s->stop_after != 0 && s->visited >= s->stop_after ? 42 : 0;
}

static struct nlmsghdr *add_msg(uint16_t type, uint16_t flags, uint32_t seq,
                                size_t payload_len) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(mb.u.bytes + mb.len);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_MULTI | flags;
  nlh->nlmsg_seq = seq;
  nlh->nlmsg_pid = PORTID;
  mnl_nlmsg_put_extra_header(nlh, payload_len);
  mb.len += NLMSG_ALIGN(nlh->nlmsg_len);
  return nlh;
}

static void add_value(uint32_t value, uint16_t flags) {
  struct nlmsghdr *nlh = add_msg(TYPE, flags, SEQ, PAYLOAD);
  memcpy(mnl_nlmsg_get_payload(nlh), &value, sizeof(value));
}

static void add_end(uint16_t type, uint16_t flags, int error) {
  size_t len = type == NLMSG_ERROR ? sizeof(struct nlmsgerr) : sizeof(int);
  struct nlmsghdr *nlh = add_msg(type, flags, SEQ, len);
  memcpy(mnl_nlmsg_get_payload(nlh), &error, sizeof(error));
}

static int walk(void) {
  netlink_walk_t w;
  netlink_walk_begin(&w, SEQ, PORTID, TYPE, message, &seen);
  int rc = netlink_walk_buffer(&w, mb.u.bytes, mb.len);
  return rc != 0 ? rc : netlink_walk_result(&w);
}

START_TEST(values_then_done) {
  reset();
  add_value(1, 0);
  add_value(2, 0);
  add_end(NLMSG_DONE, 0, 0);
  ck_assert_int_eq(walk(), 0);
  ck_assert_uint_eq(seen.visited, 2);
  ck_assert_uint_eq(seen.values[0], 1);
  ck_assert_uint_eq(seen.values[1], 2);
}
END_TEST

START_TEST(more_follows) {
  reset();
  add_value(1, 0);
  ck_assert_int_eq(walk(), 1);
  reset();
  ck_assert_int_eq(walk(), 1); /* an empty datagram */
}
END_TEST

START_TEST(nothing_after_the_end_is_read) {
  reset();
  add_value(1, 0);
  add_end(NLMSG_DONE, 0, 0);
  add_value(MALFORMED, 0);
  ck_assert_int_eq(walk(), 0);
  ck_assert_uint_eq(seen.visited, 1);
}
END_TEST

START_TEST(done_forms) {
  reset();
  add_msg(NLMSG_DONE, 0, SEQ, 0); /* kernels before 4.x: no error int */
  ck_assert_int_eq(walk(), 0);
  reset();
  add_end(NLMSG_DONE, 0, -ENOBUFS);
  ck_assert_int_eq(walk(), -ENOBUFS);
}
END_TEST

START_TEST(error_forms) {
  reset();
  add_end(NLMSG_ERROR, 0, -EPERM);
  ck_assert_int_eq(walk(), -EPERM);
  reset();
  add_msg(NLMSG_ERROR, 0, SEQ, 0);
  ck_assert_int_eq(walk(), -EBADMSG);
  reset();
  add_end(NLMSG_ERROR, 0, EPERM); /* an errno must be negative */
  ck_assert_int_eq(walk(), -EBADMSG);
  reset();
  add_end(NLMSG_ERROR, 0, -5000);
  ck_assert_int_eq(walk(), -EBADMSG);
}
END_TEST

START_TEST(interrupted) {
  reset();
  add_value(1, 0);
  add_value(2, NLM_F_DUMP_INTR);
  add_value(3, 0);
  add_end(NLMSG_DONE, 0, 0);
  ck_assert_int_eq(walk(), -EAGAIN);
  ck_assert_uint_eq(seen.visited, 1);
  ck_assert_uint_eq(seen.checked, 3);
  reset();
  add_end(NLMSG_DONE, NLM_F_DUMP_INTR, 0);
  ck_assert_int_eq(walk(), -EAGAIN);
}
END_TEST

START_TEST(precedence) {
  /* The visitor's stop, then the kernel's error, then an interruption. */
  reset();
  add_value(1, NLM_F_DUMP_INTR);
  add_end(NLMSG_ERROR, 0, -EPERM);
  ck_assert_int_eq(walk(), -EPERM);
  reset();
  add_value(1, 0);
  add_value(2, NLM_F_DUMP_INTR);
  add_end(NLMSG_ERROR, 0, -EPERM);
  seen.stop_after = 1;
  ck_assert_int_eq(walk(), 42);
}
END_TEST

START_TEST(visitor_stops_messages_still_checked) {
  reset();
  add_value(1, 0);
  add_value(2, 0);
  add_value(3, 0);
  add_end(NLMSG_DONE, 0, 0);
  seen.stop_after = 1;
  ck_assert_int_eq(walk(), 42);
  ck_assert_uint_eq(seen.visited, 1);
  ck_assert_uint_eq(seen.checked, 3);
  reset();
  add_value(1, 0);
  add_value(MALFORMED, 0);
  seen.stop_after = 1;
  ck_assert_int_eq(walk(), -EBADMSG);
}
END_TEST

START_TEST(malformed_message) {
  reset();
  add_msg(TYPE, 0, SEQ, PAYLOAD - 4);
  ck_assert_int_eq(walk(), -EBADMSG);
  ck_assert_uint_eq(seen.visited, 0);
}
END_TEST

START_TEST(truncated_datagrams) {
  reset();
  add_value(1, 0);
  mb.len += NLMSG_HDRLEN - 1; /* a partial header after a whole message */
  ck_assert_int_eq(walk(), -EBADMSG);
  reset();
  add_value(1, 0);
  mb.u.align.nlmsg_len = (uint32_t)mb.len + 4;
  ck_assert_int_eq(walk(), -EBADMSG);
  mb.u.align.nlmsg_len = 0x80000000u; /* mnl_nlmsg_ok would take it */
  ck_assert_int_eq(walk(), -EBADMSG);
  mb.u.align.nlmsg_len = NLMSG_HDRLEN - 1;
  ck_assert_int_eq(walk(), -EBADMSG);
  ck_assert_uint_eq(seen.visited, 0);
}
END_TEST

START_TEST(others_skipped) {
  /* A stale dump's tail, another socket's message, other types. */
  reset();
  struct nlmsghdr *stale = add_msg(TYPE, NLM_F_DUMP_INTR, SEQ - 1, PAYLOAD);
  memset(mnl_nlmsg_get_payload(stale), 0xff, PAYLOAD);
  add_msg(NLMSG_DONE, 0, SEQ - 1, sizeof(int));
  add_value(1, 0);
  struct nlmsghdr *foreign = add_msg(TYPE, 0, SEQ, PAYLOAD);
  foreign->nlmsg_pid = PORTID + 1;
  add_msg(NLMSG_NOOP, 0, SEQ, 0);
  add_msg(TYPE + 1, 0, SEQ, 2);
  add_value(2, 0);
  add_end(NLMSG_DONE, 0, 0);
  ck_assert_int_eq(walk(), 0);
  ck_assert_uint_eq(seen.visited, 2);
  ck_assert_uint_eq(seen.values[0], 1);
  ck_assert_uint_eq(seen.values[1], 2);
}
END_TEST

/* Records the type of every message it is given. */
static int record_type(const struct nlmsghdr *nlh, bool visit, void *ctx) {
  seen_t *s = ctx;
  ck_assert(visit);
  ck_assert_uint_lt(s->visited, COUNT(s->values));
  s->values[s->visited++] = nlh->nlmsg_type;
  return 0;
}

START_TEST(any_type) {
  /* Every type from NLMSG_MIN_TYPE up reaches the message function; the
   * control messages below it do not. */
  reset();
  add_value(1, 0);
  add_msg(NLMSG_NOOP, 0, SEQ, 0);
  add_msg(NLMSG_OVERRUN, 0, SEQ, 0);
  add_msg(NLMSG_MIN_TYPE - 1, 0, SEQ, 0);
  add_msg(NLMSG_MIN_TYPE, 0, SEQ, 0);
  add_msg(TYPE + 1, 0, SEQ, 2);
  add_end(NLMSG_DONE, 0, 0);
  netlink_walk_t w;
  netlink_walk_begin(&w, SEQ, PORTID, NETLINK_DUMP_ANY_TYPE, record_type,
                     &seen);
  ck_assert_int_eq(netlink_walk_buffer(&w, mb.u.bytes, mb.len), 0);
  ck_assert_int_eq(netlink_walk_result(&w), 0);
  ck_assert_uint_eq(seen.visited, 3);
  ck_assert_uint_eq(seen.values[0], TYPE);
  ck_assert_uint_eq(seen.values[1], NLMSG_MIN_TYPE);
  ck_assert_uint_eq(seen.values[2], TYPE + 1);
}
END_TEST

START_TEST(walk_over_two_datagrams) {
  reset();
  add_value(1, 0);
  netlink_walk_t w;
  netlink_walk_begin(&w, SEQ, PORTID, TYPE, message, &seen);
  ck_assert_int_eq(netlink_walk_buffer(&w, mb.u.bytes, mb.len), 0);
  ck_assert_int_eq(netlink_walk_result(&w), 1);
  memset(&mb, 0, sizeof(mb));
  add_value(2, NLM_F_DUMP_INTR);
  add_end(NLMSG_DONE, 0, 0);
  ck_assert_int_eq(netlink_walk_buffer(&w, mb.u.bytes, mb.len), 0);
  ck_assert_int_eq(netlink_walk_result(&w), -EAGAIN);
  ck_assert_uint_eq(seen.visited, 1);
}
END_TEST

/* Live: a real dump, the TCP sockets of this network namespace. */

static int count_socket(const struct nlmsghdr *nlh, bool visit, void *ctx) {
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct inet_diag_msg))
    return -EBADMSG;
  if (visit)
    (*(size_t *)ctx)++;
  return 0;
}

static struct nlmsghdr *diag_request(void *buf, uint8_t protocol) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  struct inet_diag_req_v2 *r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
  r->sdiag_family = AF_INET;
  r->sdiag_protocol = protocol;
  r->idiag_states = 1u << 10; /* TCP_LISTEN */
  return nlh;
}

START_TEST(live_dump) {
  char err[128] = "";
  netlink_dump_t *dump =
      netlink_dump_open(NETLINK_SOCK_DIAG, "test", err, sizeof(err));
  ck_assert_msg(dump != NULL, "%s", err);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in lo = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(listener, (struct sockaddr *)&lo, sizeof(lo)), 0);
  ck_assert_int_eq(listen(listener, 1), 0);

  union {
    struct nlmsghdr align;
    char bytes[256];
  } req = {0};
  for (int round = 0; round < 2; round++) {
    size_t sockets = 0;
    int rc = netlink_dump_run(dump, diag_request(req.bytes, IPPROTO_TCP),
                              SOCK_DIAG_BY_FAMILY, count_socket, &sockets,
                              "dump", err, sizeof(err));
    ck_assert_msg(rc == 0, "%d %s", rc, err);
    ck_assert_uint_ge(sockets, 1);
  }
  /* The kernel's error, and the same socket answering afterwards. */
  size_t sockets = 0;
  memset(&req, 0, sizeof(req));
  ck_assert_int_eq(netlink_dump_run(dump, diag_request(req.bytes, 253),
                                    SOCK_DIAG_BY_FAMILY, count_socket, &sockets,
                                    "dump", err, sizeof(err)),
                   -ENOENT);
  ck_assert_str_eq(err, "test: dump: No such file or directory");
  memset(&req, 0, sizeof(req));
  ck_assert_int_eq(netlink_dump_run(dump, diag_request(req.bytes, IPPROTO_TCP),
                                    SOCK_DIAG_BY_FAMILY, count_socket, &sockets,
                                    "dump", err, sizeof(err)),
                   0);
  ck_assert_uint_ge(sockets, 1);
  netlink_dump_close(dump);
  close(listener);
}
END_TEST

START_TEST(open_unknown_bus) {
  char err[128] = "";
  ck_assert_ptr_null(netlink_dump_open(MAX_LINKS, "test", err, sizeof(err)));
  ck_assert_int_eq(errno, EPROTONOSUPPORT);
  ck_assert_str_eq(err, "test: socket: Protocol not supported");
}
END_TEST

int main(void) {
  Suite *s = suite_create("netlink_dump");
  TCase *tc = tcase_create("walk");
  tcase_add_test(tc, values_then_done);
  tcase_add_test(tc, more_follows);
  tcase_add_test(tc, nothing_after_the_end_is_read);
  tcase_add_test(tc, done_forms);
  tcase_add_test(tc, error_forms);
  tcase_add_test(tc, interrupted);
  tcase_add_test(tc, precedence);
  tcase_add_test(tc, visitor_stops_messages_still_checked);
  tcase_add_test(tc, malformed_message);
  tcase_add_test(tc, truncated_datagrams);
  tcase_add_test(tc, others_skipped);
  tcase_add_test(tc, any_type);
  tcase_add_test(tc, walk_over_two_datagrams);
  suite_add_tcase(s, tc);
  TCase *live = tcase_create("live");
  tcase_add_test(live, live_dump);
  tcase_add_test(live, open_unknown_bus);
  suite_add_tcase(s, live);
  return run_suite(s);
}
