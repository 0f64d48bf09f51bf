/* libFuzzer target: one datagram of a sock_diag dump, as received. The
 * first byte picks the protocol (low bit: TCP, UDP) and, in its high four,
 * the socket at which the visitor fails (0: none); the rest is the
 * datagram. Messages must carry nlmsg_seq FUZZ_SEQ and nlmsg_pid
 * FUZZ_PORTID to count as the dump's (the seeds do). The datagram is
 * walked twice into one snapshot, as the plugin's two dumps are: with
 * snapshot_add_unconnected (the listener dump), then with
 * snapshot_add_socket (the dump of the rest). A real dump runs the same
 * walk over each datagram it receives until NLMSG_DONE; what carries over
 * between datagrams is three flags, so one datagram per input reaches all
 * of the parsing. */
#include "fuzz_snapshot.h"
#include "kernel/sock_diag.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SEQ 1
#define FUZZ_PORTID 4242

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const void *buf, size_t len, int protocol,
                 inet_socket_visit_fn add, fuzz_read_t *read) {
  fuzz_walk_begin(read, add);
  int rc = sock_diag_parse_buffer(buf, len, FUZZ_SEQ, FUZZ_PORTID, protocol,
                                  fuzz_visit, read);
  /* 1 (more follows), 0 (done), or a negative errno: the kernel's, the
   * visitor's -ENOMEM, -EBADMSG, -EAGAIN. */
  if (rc > 1 || rc < -4095)
    abort();
  /* Only a malformed datagram outranks the visitor's failure. */
  if (fuzz_visitor_failed(read) && rc != -ENOMEM && rc != -EBADMSG)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int protocol = (data[0] & 1) ? IPPROTO_UDP : IPPROTO_TCP;
  /* A receive buffer is aligned; malloc's is, and its exact size lets
   * ASan catch a read past the datagram. */
  size_t len = size - 1;
  void *buf = malloc(len > 0 ? len : 1);
  if (buf == NULL)
    return 0;
  memcpy(buf, data + 1, len);

  fuzz_read_t read;
  fuzz_read_begin(&read, protocol, data[0] >> 4);
  walk(buf, len, protocol, snapshot_add_unconnected, &read);
  walk(buf, len, protocol, snapshot_add_socket, &read);
  fuzz_read_end(&read);
  free(buf);
  return 0;
}
