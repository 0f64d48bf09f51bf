#include "util/port_list.h"

#include <stdbool.h>
#include <string.h>

/* "65535-65535" is the longest valid item. */
#define PORT_ITEM_MAX 11

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

int port_number_parse(const char **cursor, unsigned min_port, uint16_t *port) {
  const char *p = *cursor;
  unsigned long value = 0;
  if (*p < '0' || *p > '9')
    return -1;
  while (*p >= '0' && *p <= '9') {
    value = value * 10 + (unsigned long)(*p - '0');
    if (value > 65535)
      return -1;
    p++;
  }
  if (value < min_port)
    return -1;
  *port = (uint16_t)value;
  *cursor = p;
  return 0;
}

int port_range_parse(const char *text, unsigned min_port, uint16_t *first,
                     uint16_t *last) {
  const char *p = text;
  uint16_t low, high;
  if (port_number_parse(&p, min_port, &low) != 0)
    return -1;
  high = low;
  if (*p == '-') {
    p++;
    if (port_number_parse(&p, min_port, &high) != 0 || high < low)
      return -1;
  }
  if (*p != '\0')
    return -1;
  *first = low;
  *last = high;
  return 0;
}

/* Parses the item text[0..length) with its surrounding blanks. */
static int add_item(const char *text, size_t length, unsigned min_port,
                    portset_t *set) {
  while (length > 0 && is_blank(*text)) {
    text++;
    length--;
  }
  while (length > 0 && is_blank(text[length - 1]))
    length--;
  if (length == 0 || length > PORT_ITEM_MAX)
    return -1;

  char item[PORT_ITEM_MAX + 1];
  memcpy(item, text, length);
  item[length] = '\0';
  uint16_t first, last;
  if (port_range_parse(item, min_port, &first, &last) != 0)
    return -1;
  portset_add_range(set, first, last);
  return 0;
}

int port_list_parse(const char *text, unsigned min_port, portset_t *set) {
  size_t length = strlen(text);
  if (length > 0 && text[length - 1] == '\n')
    length--;

  size_t blanks = 0;
  while (blanks < length && is_blank(text[blanks]))
    blanks++;
  if (blanks == length)
    return 0;

  const char *item = text;
  const char *end = text + length;
  for (;;) {
    const char *comma = memchr(item, ',', (size_t)(end - item));
    const char *item_end = comma ? comma : end;
    if (add_item(item, (size_t)(item_end - item), min_port, set) != 0)
      return -1;
    if (!comma)
      return 0;
    item = comma + 1;
  }
}
