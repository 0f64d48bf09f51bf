#include "count/nat_usage.h"

#include "util/port_list.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define UDP_PREFIX "udp:"

int nat_port_range_parse(const char *text, nat_port_range_t *range) {
  uint16_t low, high;
  if (port_range_parse(text, 1, &low, &high) != 0)
    return -1;
  range->low = low;
  range->high = high;
  return 0;
}

void nat_port_range_default(nat_port_range_t *range) {
  range->low = NAT_PORT_RANGE_DEFAULT_LOW;
  range->high = NAT_PORT_RANGE_DEFAULT_HIGH;
}

unsigned nat_port_range_size(const nat_port_range_t *range) {
  return (unsigned)range->high - range->low + 1;
}

void nat_usage_init(nat_usage_t *usage, const nat_port_range_t *range) {
  destinations_init(&usage->table);
  usage->range = *range;
}

void nat_usage_free(nat_usage_t *usage) { destinations_free(&usage->table); }

void nat_usage_clear(nat_usage_t *usage) { destinations_clear(&usage->table); }

void nat_key_of(const nat_flow_t *flow, destination_key_t *key) {
  memset(key, 0, sizeof(*key));
  key->remote_port = flow->destination_port;
  key->family = flow->family;
  key->protocol = flow->protocol;
  size_t len = flow->family == AF_INET ? 4 : 16;
  memcpy(key->local_addr, flow->source_addr, len);
  memcpy(key->remote_addr, flow->destination_addr, len);
}

int nat_usage_add(nat_usage_t *usage, const nat_flow_t *flow) {
  if (flow->source_port < usage->range.low ||
      flow->source_port > usage->range.high)
    return 0;
  destination_key_t key;
  nat_key_of(flow, &key);
  return destinations_add(&usage->table, &key, 0);
}

int nat_usage_visit(const nat_flow_t *flow, void *ctx) {
  return nat_usage_add(ctx, flow);
}

size_t nat_usage_keys(const nat_usage_t *usage) { return usage->table.count; }

const destination_t *nat_usage_find(const nat_usage_t *usage,
                                    const destination_key_t *key) {
  return destinations_find(&usage->table, key);
}

size_t nat_usage_top(nat_usage_t *usage, destination_t *top, size_t n) {
  return destinations_top(&usage->table, top, n);
}

int nat_format_destination(const destination_key_t *key, char *buf,
                           size_t size) {
  const char *prefix = key->protocol == IPPROTO_UDP ? UDP_PREFIX : "";
  int len = snprintf(buf, size, "%s", prefix);
  if (len < 0 || (size_t)len >= size)
    return -1;
  return destination_format_remote(key, buf + len, size - (size_t)len);
}

int nat_format_source(const destination_key_t *key, char *buf, size_t size) {
  return destination_format_local(key, buf, size);
}
