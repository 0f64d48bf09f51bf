#!/usr/bin/env python3
"""Writes the hand-built sock_diag seeds of fuzz_sock_diag into the
directory given (tests/fuzz/corpus/fuzz_sock_diag): a first byte picking
the protocol (0 TCP, 1 UDP), then one datagram as the kernel would send it
to port id 4242 for dump sequence 1."""

import os
import socket
import struct
import sys

SEQ, PORTID = 1, 4242
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCPDIAG_GETSOCK, SOCK_DIAG_BY_FAMILY = 18, 20
NLM_F_MULTI, NLM_F_DUMP_INTR = 2, 16
TCP, UDP = b"\x00", b"\x01"
ESTABLISHED, TIME_WAIT, CLOSE, LISTEN = 1, 6, 7, 10


def align(data):
    return data + b"\0" * (-len(data) % 4)


def message(kind, payload, flags=NLM_F_MULTI, seq=SEQ, length=None):
    if length is None:
        length = 16 + len(payload)
    return align(struct.pack("=IHHII", length, kind, flags, seq, PORTID)
                 + payload)


def address(family, text):
    packed = socket.inet_pton(family, text)
    return packed + b"\0" * (16 - len(packed))


def diag_msg(family, state, src, sport, dst, dport, attrs=b""):
    return (struct.pack("=BBBB", family, state, 0, 0)
            + struct.pack(">HH", sport, dport)
            + address(family, src) + address(family, dst)
            + struct.pack("=IQ", 0, 0)
            + struct.pack("=IIIII", 0, 0, 0, 0, 0) + attrs)


def sock(family, state, src, sport, dst, dport, kind=SOCK_DIAG_BY_FAMILY,
         flags=NLM_F_MULTI, attrs=b""):
    return message(kind, diag_msg(family, state, src, sport, dst, dport,
                                  attrs), flags)


def done(error=0):
    return message(NLMSG_DONE, struct.pack("=i", error))


V4, V6 = socket.AF_INET, socket.AF_INET6
TCP_TABLE = (
    sock(V4, LISTEN, "0.0.0.0", 40000, "0.0.0.0", 0, TCPDIAG_GETSOCK)
    + sock(V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1", 443,
           TCPDIAG_GETSOCK)
    + sock(V4, ESTABLISHED, "127.0.0.1", 40002, "127.0.0.1", 443,
           TCPDIAG_GETSOCK)
    + sock(V4, TIME_WAIT, "127.0.0.1", 40003, "127.0.0.2", 80,
           TCPDIAG_GETSOCK)
    + sock(V6, ESTABLISHED, "::1", 40004, "2001:db8::7", 443,
           TCPDIAG_GETSOCK)
    + sock(V6, ESTABLISHED, "::ffff:127.0.0.1", 40005, "::ffff:127.0.0.1",
           443, TCPDIAG_GETSOCK)
    + sock(V6, LISTEN, "::", 40000, "::", 0, TCPDIAG_GETSOCK))
INFO_ATTR = struct.pack("=HH", 8, 2) + b"\x01\x02\x03\x04"
PAST_END_ATTR = struct.pack("=HH", 200, 2) + b"\x01\x02\x03\x04"
INET_DIAG_SHUTDOWN, INET_DIAG_PAD, INET_DIAG_MARK = 8, 14, 15
INET_DIAG_CGROUP_ID, INET_DIAG_SOCKOPT = 21, 22


def attr(kind, payload, length=None):
    if length is None:
        length = 4 + len(payload)
    return align(struct.pack("=HH", length, kind) + payload)


def owner(cgroup_id, pad=False):
    """What a 6.x kernel puts after a full socket's inet_diag_msg: the
    cgroup id (after an INET_DIAG_PAD where unaligned access is slow)."""
    return (attr(INET_DIAG_SHUTDOWN, b"\0")
            + (attr(INET_DIAG_PAD, b"") if pad else b"")
            + attr(INET_DIAG_CGROUP_ID, struct.pack("=Q", cgroup_id))
            + attr(INET_DIAG_SOCKOPT, b"\0\0"))


OWNED_TCP_TABLE = (
    sock(V4, LISTEN, "0.0.0.0", 40000, "0.0.0.0", 0, TCPDIAG_GETSOCK,
         attrs=owner(0x1234))
    + sock(V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1", 443,
           TCPDIAG_GETSOCK, attrs=owner(0x1234))
    + sock(V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.2", 443,
           TCPDIAG_GETSOCK, attrs=owner(0x5678, pad=True))
    + sock(V4, TIME_WAIT, "127.0.0.1", 40003, "127.0.0.2", 80,
           TCPDIAG_GETSOCK, attrs=attr(INET_DIAG_MARK, b"\0" * 4))
    + sock(V6, ESTABLISHED, "::1", 40004, "2001:db8::7", 443,
           TCPDIAG_GETSOCK, attrs=owner(1)))

SEEDS = {
    "tcp_dump": TCP + TCP_TABLE + done(),
    "tcp_dump_continues": TCP + TCP_TABLE,
    "udp_dump": UDP
    + sock(V4, CLOSE, "0.0.0.0", 40010, "0.0.0.0", 0)
    + sock(V4, ESTABLISHED, "127.0.0.1", 40011, "127.0.0.1", 53)
    + sock(V6, CLOSE, "::", 40012, "::", 0)
    + sock(V6, ESTABLISHED, "::1", 40013, "::1", 53) + done(),
    "dump_intr": TCP + sock(V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1",
                            443, flags=NLM_F_MULTI | NLM_F_DUMP_INTR)
    + message(NLMSG_DONE, struct.pack("=i", 0),
              NLM_F_MULTI | NLM_F_DUMP_INTR),
    "error_enoent": TCP + message(NLMSG_ERROR, struct.pack("=i", -2)
                                  + struct.pack("=IHHII", 72, 20, 0x301,
                                                SEQ, 0)),
    "error_without_payload": TCP + message(NLMSG_ERROR, b""),
    "done_with_error": TCP + done(-16),
    "done_without_payload": TCP + message(NLMSG_DONE, b""),
    "stale_sequence": TCP + message(SOCK_DIAG_BY_FAMILY,
                                    diag_msg(V4, ESTABLISHED, "127.0.0.1",
                                             40001, "127.0.0.1", 443),
                                    seq=SEQ - 1) + done(),
    "attributes": TCP + sock(V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1",
                             443, attrs=INFO_ATTR) + done(),
    "attribute_past_end": TCP + sock(V4, ESTABLISHED, "127.0.0.1", 40001,
                                     "127.0.0.1", 443, attrs=PAST_END_ATTR),
    "tcp_dump_owned": TCP + OWNED_TCP_TABLE + done(),
    "cgroup_id_short": TCP + sock(V4, ESTABLISHED, "127.0.0.1", 40001,
                                  "127.0.0.1", 443,
                                  attrs=attr(INET_DIAG_CGROUP_ID,
                                             b"\x01\0\0\0")) + done(),
    "cgroup_id_cut": TCP + message(SOCK_DIAG_BY_FAMILY, diag_msg(
        V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1", 443,
        attrs=attr(INET_DIAG_CGROUP_ID, b"\x01\0\0\0",
                   length=12))) + done(),
    "attribute_header_cut": TCP + message(SOCK_DIAG_BY_FAMILY, diag_msg(
        V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1", 443,
        attrs=b"\x08\0")) + done(),
    "short_diag_msg": TCP + message(SOCK_DIAG_BY_FAMILY, b"\x02\x01" * 5),
    "length_past_end": TCP + message(SOCK_DIAG_BY_FAMILY,
                                     diag_msg(V4, ESTABLISHED, "127.0.0.1",
                                              40001, "127.0.0.1", 443),
                                     length=4096),
    "truncated_header": TCP + done()[:10],
    "bad_family": TCP + message(SOCK_DIAG_BY_FAMILY, b"\x07" + diag_msg(
        V4, ESTABLISHED, "127.0.0.1", 40001, "127.0.0.1", 443)[1:]) + done(),
}


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


if __name__ == "__main__":
    main()
