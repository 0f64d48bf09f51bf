#include "count/nat_usage.h"

#include "run_suite.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

static nat_usage_t usage;
static const nat_port_range_t full_range = {1024, 65535};

static nat_flow_t flow_of(int protocol, const char *source,
                          uint16_t source_port, const char *destination,
                          uint16_t destination_port) {
  int family = strchr(source, ':') ? AF_INET6 : AF_INET;
  nat_flow_t flow = {.family = (uint8_t)family,
                     .protocol = (uint8_t)protocol,
                     .source_port = source_port,
                     .destination_port = destination_port};
  ck_assert_int_eq(inet_pton(family, source, flow.source_addr), 1);
  ck_assert_int_eq(inet_pton(family, destination, flow.destination_addr), 1);
  return flow;
}

static destination_key_t key_of(int protocol, const char *source,
                                const char *destination,
                                uint16_t destination_port) {
  nat_flow_t flow = flow_of(protocol, source, 0, destination, destination_port);
  destination_key_t key;
  nat_key_of(&flow, &key);
  return key;
}

/* count flows to the key, translated source ports first_port, +1, ... */
static void add_ports(int protocol, const char *source, const char *destination,
                      uint16_t destination_port, uint16_t first_port,
                      unsigned count) {
  for (unsigned i = 0; i < count; i++) {
    nat_flow_t flow = flow_of(protocol, source, (uint16_t)(first_port + i),
                              destination, destination_port);
    ck_assert_int_eq(nat_usage_add(&usage, &flow), 0);
  }
}

static unsigned used(int protocol, const char *source, const char *destination,
                     uint16_t destination_port) {
  destination_key_t key =
      key_of(protocol, source, destination, destination_port);
  const destination_t *entry = nat_usage_find(&usage, &key);
  return entry ? entry->held : 0;
}

static const char *destination_text(const destination_key_t *key) {
  static char buf[64];
  ck_assert_int_eq(nat_format_destination(key, buf, sizeof(buf)), 0);
  return buf;
}

static const char *source_text(const destination_key_t *key) {
  static char buf[64];
  ck_assert_int_eq(nat_format_source(key, buf, sizeof(buf)), 0);
  return buf;
}

static void setup(void) { nat_usage_init(&usage, &full_range); }
static void teardown(void) { nat_usage_free(&usage); }

START_TEST(test_port_range_parse) {
  static const struct {
    const char *text;
    int rc;
    uint16_t low, high;
  } cases[] = {
      {"1024-65535", 0, 1024, 65535},
      {"41000-41004", 0, 41000, 41004},
      {"1-65535", 0, 1, 65535},
      {"5000", 0, 5000, 5000},
      {"0-100", -1, 0, 0},
      {"100-99", -1, 0, 0},
      {"1024-65536", -1, 0, 0},
      {"", -1, 0, 0},
      {"1024 - 2048", -1, 0, 0},
      {"1024-2048 ", -1, 0, 0},
      {"-5", -1, 0, 0},
      {"1024-", -1, 0, 0},
      {"0x400-0x800", -1, 0, 0},
      {"1024,2048", -1, 0, 0},
  };
  for (size_t i = 0; i < COUNT(cases); i++) {
    nat_port_range_t range = {7, 8};
    ck_assert_msg(nat_port_range_parse(cases[i].text, &range) == cases[i].rc,
                  "\"%s\"", cases[i].text);
    if (cases[i].rc == 0) {
      ck_assert_uint_eq(range.low, cases[i].low);
      ck_assert_uint_eq(range.high, cases[i].high);
    } else {
      ck_assert_uint_eq(range.low, 7); /* unchanged */
      ck_assert_uint_eq(range.high, 8);
    }
  }
}
END_TEST

START_TEST(test_port_range_default_and_size) {
  nat_port_range_t range;
  nat_port_range_default(&range);
  ck_assert_uint_eq(range.low, 1024);
  ck_assert_uint_eq(range.high, 65535);
  ck_assert_uint_eq(nat_port_range_size(&range), 64512);
  range = (nat_port_range_t){41000, 41004};
  ck_assert_uint_eq(nat_port_range_size(&range), 5);
  range = (nat_port_range_t){1, 65535};
  ck_assert_uint_eq(nat_port_range_size(&range), 65535);
  range = (nat_port_range_t){65535, 65535};
  ck_assert_uint_eq(nat_port_range_size(&range), 1);
}
END_TEST

START_TEST(test_formats) {
  destination_key_t tcp4 = key_of(TCP, "198.51.100.2", "203.0.113.7", 443);
  ck_assert_str_eq(destination_text(&tcp4), "203.0.113.7:443");
  ck_assert_str_eq(source_text(&tcp4), "198.51.100.2");
  destination_key_t tcp6 = key_of(TCP, "2001:db8::100", "2001:db8::7", 443);
  ck_assert_str_eq(destination_text(&tcp6), "[2001:db8::7]:443");
  ck_assert_str_eq(source_text(&tcp6), "2001:db8::100");
  destination_key_t udp4 = key_of(UDP, "198.51.100.2", "203.0.113.53", 53);
  ck_assert_str_eq(destination_text(&udp4), "udp:203.0.113.53:53");
  ck_assert_str_eq(source_text(&udp4), "198.51.100.2");
  destination_key_t udp6 = key_of(UDP, "2001:db8::100", "2001:db8::53", 53);
  ck_assert_str_eq(destination_text(&udp6), "udp:[2001:db8::53]:53");

  char small[20]; /* "udp:203.0.113.53:53" takes 20 with its NUL */
  ck_assert_int_eq(nat_format_destination(&udp4, small, sizeof(small)), 0);
  ck_assert_int_eq(nat_format_destination(&udp4, small, 19), -1);
  ck_assert_int_eq(nat_format_destination(&udp4, small, 4), -1);
  ck_assert_int_eq(nat_format_destination(&udp4, small, 0), -1);
  ck_assert_int_eq(nat_format_source(&tcp4, small, 8), -1);
}
END_TEST

START_TEST(test_counts_per_key) {
  add_ports(TCP, "198.51.100.2", "203.0.113.7", 443, 1024, 5);
  add_ports(TCP, "198.51.100.2", "203.0.113.7", 80, 1024, 3);
  add_ports(TCP, "198.51.100.3", "203.0.113.7", 443, 1024, 2);
  add_ports(TCP, "198.51.100.2", "203.0.113.8", 443, 1024, 4);
  add_ports(UDP, "198.51.100.2", "203.0.113.7", 443, 1024, 6);
  add_ports(TCP, "2001:db8::100", "2001:db8::7", 443, 1024, 7);
  ck_assert_uint_eq(nat_usage_keys(&usage), 6);
  ck_assert_uint_eq(used(TCP, "198.51.100.2", "203.0.113.7", 443), 5);
  ck_assert_uint_eq(used(TCP, "198.51.100.2", "203.0.113.7", 80), 3);
  ck_assert_uint_eq(used(TCP, "198.51.100.3", "203.0.113.7", 443), 2);
  ck_assert_uint_eq(used(TCP, "198.51.100.2", "203.0.113.8", 443), 4);
  ck_assert_uint_eq(used(UDP, "198.51.100.2", "203.0.113.7", 443), 6);
  ck_assert_uint_eq(used(TCP, "2001:db8::100", "2001:db8::7", 443), 7);
  ck_assert_uint_eq(used(UDP, "198.51.100.3", "203.0.113.7", 443), 0);
}
END_TEST

START_TEST(test_ports_outside_the_range_not_counted) {
  /* nf_nat maps source ports below 1024 into 1-1023 when the rule names
   * no range: they are not the pool's. */
  nat_usage_free(&usage);
  const nat_port_range_t small = {41000, 41004};
  nat_usage_init(&usage, &small);
  add_ports(TCP, "127.0.0.3", "127.0.0.1", 8080, 40998, 9); /* ..41006 */
  ck_assert_uint_eq(used(TCP, "127.0.0.3", "127.0.0.1", 8080), 5);
  nat_usage_clear(&usage);
  add_ports(TCP, "127.0.0.3", "127.0.0.1", 8080, 600, 1);
  ck_assert_uint_eq(nat_usage_keys(&usage), 0);
}
END_TEST

START_TEST(test_visit_adds) {
  nat_flow_t flow = flow_of(UDP, "198.51.100.2", 2000, "203.0.113.53", 53);
  ck_assert_int_eq(nat_usage_visit(&flow, &usage), 0);
  ck_assert_int_eq(nat_usage_visit(&flow, &usage), 0);
  ck_assert_uint_eq(used(UDP, "198.51.100.2", "203.0.113.53", 53), 2);
}
END_TEST

START_TEST(test_clear_is_o1_and_forgets) {
  add_ports(TCP, "198.51.100.2", "203.0.113.7", 443, 1024, 3);
  const destination_t *slots = usage.table.slots;
  nat_usage_clear(&usage);
  ck_assert_uint_eq(nat_usage_keys(&usage), 0);
  ck_assert_uint_eq(used(TCP, "198.51.100.2", "203.0.113.7", 443), 0);
  add_ports(TCP, "198.51.100.2", "203.0.113.7", 443, 1024, 1);
  ck_assert_uint_eq(used(TCP, "198.51.100.2", "203.0.113.7", 443), 1);
  ck_assert_ptr_eq(usage.table.slots, slots); /* nothing freed or grown */
}
END_TEST

START_TEST(test_many_keys) {
  /* 3,000 destinations, 1 to 5 flows each: the table grows. */
  char destination[32];
  for (unsigned i = 0; i < 3000; i++) {
    snprintf(destination, sizeof(destination), "10.%u.%u.1", i / 256, i % 256);
    add_ports(TCP, "198.51.100.2", destination, 443, 1024, i % 5 + 1);
  }
  ck_assert_uint_eq(nat_usage_keys(&usage), 3000);
  for (unsigned i = 0; i < 3000; i++) {
    snprintf(destination, sizeof(destination), "10.%u.%u.1", i / 256, i % 256);
    ck_assert_uint_eq(used(TCP, "198.51.100.2", destination, 443), i % 5 + 1);
  }
}
END_TEST

START_TEST(test_top_busiest_first_across_protocols) {
  add_ports(TCP, "198.51.100.2", "203.0.113.1", 443, 1024, 2);
  add_ports(UDP, "198.51.100.2", "203.0.113.2", 53, 1024, 9);
  add_ports(TCP, "198.51.100.2", "203.0.113.3", 443, 1024, 5);
  add_ports(TCP, "198.51.100.2", "203.0.113.4", 443, 1024, 1);
  destination_t top[3];
  ck_assert_uint_eq(nat_usage_top(&usage, top, 3), 3);
  ck_assert_str_eq(destination_text(&top[0].key), "udp:203.0.113.2:53");
  ck_assert_uint_eq(top[0].held, 9);
  ck_assert_str_eq(destination_text(&top[1].key), "203.0.113.3:443");
  ck_assert_uint_eq(top[1].held, 5);
  ck_assert_str_eq(destination_text(&top[2].key), "203.0.113.1:443");
  ck_assert_uint_eq(top[2].held, 2);
  destination_key_t dropped = key_of(TCP, "198.51.100.2", "203.0.113.4", 443);
  ck_assert(!nat_usage_find(&usage, &dropped)->in_top);
  ck_assert(nat_usage_find(&usage, &top[0].key)->in_top);
}
END_TEST

START_TEST(test_top_ties_in_a_stable_order) {
  /* The same keys added in two orders rank the same way. */
  const char *destinations[] = {"203.0.113.9", "203.0.113.1", "203.0.113.5",
                                "203.0.113.3"};
  destination_t first[4], second[4];
  for (size_t i = 0; i < 4; i++)
    add_ports(TCP, "198.51.100.2", destinations[i], 443, 1024, 3);
  ck_assert_uint_eq(nat_usage_top(&usage, first, 4), 4);
  nat_usage_clear(&usage);
  for (size_t i = 4; i-- > 0;)
    add_ports(TCP, "198.51.100.2", destinations[i], 443, 1024, 3);
  ck_assert_uint_eq(nat_usage_top(&usage, second, 4), 4);
  for (size_t i = 0; i < 4; i++)
    ck_assert_mem_eq(&first[i].key, &second[i].key, sizeof(first[i].key));
  ck_assert_uint_eq(nat_usage_top(&usage, second, 0), 0);
}
END_TEST

START_TEST(test_protocol_tells_keys_apart) {
  destination_key_t tcp = key_of(TCP, "198.51.100.2", "203.0.113.7", 53);
  destination_key_t udp = key_of(UDP, "198.51.100.2", "203.0.113.7", 53);
  ck_assert_int_ne(memcmp(&tcp, &udp, sizeof(tcp)), 0);
  ck_assert_uint_eq(tcp.protocol, TCP);
  ck_assert_uint_eq(udp.protocol, UDP);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nat_usage");
  TCase *tc = tcase_create("nat_usage");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_port_range_parse);
  tcase_add_test(tc, test_port_range_default_and_size);
  tcase_add_test(tc, test_formats);
  tcase_add_test(tc, test_counts_per_key);
  tcase_add_test(tc, test_ports_outside_the_range_not_counted);
  tcase_add_test(tc, test_visit_adds);
  tcase_add_test(tc, test_clear_is_o1_and_forgets);
  tcase_add_test(tc, test_many_keys);
  tcase_add_test(tc, test_top_busiest_first_across_protocols);
  tcase_add_test(tc, test_top_ties_in_a_stable_order);
  tcase_add_test(tc, test_protocol_tells_keys_apart);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
