/* libFuzzer target: /proc/net/{tcp,tcp6,udp,udp6} text. The first byte
 * picks the file (its low two bits: tcp, tcp6, udp, udp6) and, in its high
 * four, the socket at which the visitor fails (0: none); the rest is the
 * file. One target for the four: they share one parser whose only
 * difference is the address width, so seeds of one kind help the others.
 * The text is parsed twice into one snapshot, unconnected sockets then
 * connected ones, as the plugin's proc source reads each file. */
#include "fuzz_snapshot.h"
#include "kernel/proc_net.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
  int family;
  int protocol;
} kinds[4] = {{AF_INET, IPPROTO_TCP},
              {AF_INET6, IPPROTO_TCP},
              {AF_INET, IPPROTO_UDP},
              {AF_INET6, IPPROTO_UDP}};

static int parse(const uint8_t *text, size_t size, int family, int protocol,
                 inet_socket_visit_fn add, fuzz_read_t *read) {
  fuzz_walk_begin(read, add);
  FILE *table = fmemopen((void *)text, size, "r");
  if (table == NULL)
    abort();
  int rc = proc_net_parse(table, family, protocol, fuzz_visit, read);
  fclose(table);
  if (fuzz_visitor_failed(read) ? rc != -ENOMEM : rc != 0 && rc != -EINVAL)
    abort(); /* a memory stream has no read error */
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int family = kinds[data[0] & 3].family;
  int protocol = kinds[data[0] & 3].protocol;
  /* The parser reads a FILE, as it reads /proc: a stream over a copy of the
   * text (malloc'd one byte longer, never 0 bytes). */
  uint8_t *text = malloc(size);
  if (text == NULL)
    return 0;
  memcpy(text, data + 1, size - 1);

  fuzz_read_t read;
  fuzz_read_begin(&read, protocol, data[0] >> 4);
  if (parse(text, size - 1, family, protocol, snapshot_add_unconnected,
            &read) == 0)
    parse(text, size - 1, family, protocol, snapshot_add_connected, &read);
  fuzz_read_end(&read);
  free(text);
  return 0;
}
