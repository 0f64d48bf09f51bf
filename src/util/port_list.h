/* Port lists as users and the kernel write them: "22", "8000-8010", and
 * comma-separated lists of both ("1000,2000-2002"). */
#ifndef EPHEMERAL_PORTS_PORT_LIST_H
#define EPHEMERAL_PORTS_PORT_LIST_H

#include "util/portset.h"

/* Parses the decimal digits at *cursor as a port within min_port..65535
 * and advances *cursor past them. Returns 0, or -1 (cursor unchanged) when
 * there are no digits or the number is out of range. */
int port_number_parse(const char **cursor, unsigned min_port, uint16_t *port);

/* Parses "N" or "A-B" (A <= B), each number within min_port..65535, with no
 * other characters. Returns 0, or -1 when the text is not such a range. */
int port_range_parse(const char *text, unsigned min_port, uint16_t *first,
                     uint16_t *last);

/* Adds every port of a comma-separated list of ranges to set. Blanks around
 * items and a trailing newline are allowed; an empty list adds nothing.
 * Returns 0, or -1 (set partially filled) on any malformed item. */
int port_list_parse(const char *text, unsigned min_port, portset_t *set);

#endif
