#!/usr/bin/env python3
"""Writes the hand-built ctnetlink seeds of fuzz_conntrack into the
directory given (tests/fuzz/corpus/fuzz_conntrack): a first byte picking
the dump (0 the table, 1 the per-CPU statistics), then one datagram as the
kernel would send it to port id 4242 for dump sequence 1."""

import os
import socket
import struct
import sys

SEQ, PORTID = 1, 4242
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_MULTI, NLM_F_DUMP_INTR = 2, 16
NLA_F_NESTED = 0x8000
CTNETLINK = 1 << 8
CT_NEW, CT_GET_STATS_CPU = CTNETLINK | 0, CTNETLINK | 4
TABLE, STATS = b"\x00", b"\x01"
V4, V6 = socket.AF_INET, socket.AF_INET6
TCP, UDP, ICMP = 6, 17, 1

# enum ctattr_type, ctattr_tuple, ctattr_ip, ctattr_l4proto
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO = 1, 2, 3, 4
CTA_TIMEOUT, CTA_USE, CTA_ID, CTA_ZONE = 7, 11, 12, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_TUPLE_ZONE = 1, 2, 3
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE = 4, 5, 6
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
# enum ctattr_stats_cpu
STATS_FOUND, STATS_INVALID, STATS_INSERT = 2, 4, 8
STATS_INSERT_FAILED, STATS_DROP, STATS_EARLY_DROP, STATS_ERROR = 9, 10, 11, 12
STATS_SEARCH_RESTART, STATS_CLASH_RESOLVE, STATS_CHAIN_TOOLONG = 13, 14, 15
# IPS_CONFIRMED | IPS_SRC_NAT | IPS_SRC_NAT_DONE; IPS_DST_NAT | _DONE
SNAT, DNAT = 0x8 | 0x10 | 0x80, 0x20 | 0x100


def align(data):
    return data + b"\0" * (-len(data) % 4)


def attr(kind, payload, length=None):
    if length is None:
        length = 4 + len(payload)
    return align(struct.pack("=HH", length, kind) + payload)


def nest(kind, *children, length=None):
    body = b"".join(children)
    if length is None:
        length = 4 + len(body)
    return struct.pack("=HH", length, kind | NLA_F_NESTED) + body


def u8(kind, value):
    return attr(kind, struct.pack("B", value))


def be16(kind, value):
    return attr(kind, struct.pack(">H", value))


def be32(kind, value):
    return attr(kind, struct.pack(">I", value))


def message(kind, payload, flags=NLM_F_MULTI, seq=SEQ, length=None):
    if length is None:
        length = 16 + len(payload)
    return align(struct.pack("=IHHII", length, kind, flags, seq, PORTID)
                 + payload)


def nfgen(family, res_id=0):
    return struct.pack("=BBH", family, 0, socket.htons(res_id))


def tuple_attr(kind, family, proto, src, sport, dst, dport):
    v4 = family == V4
    ip = nest(CTA_TUPLE_IP,
              attr(CTA_IP_V4_SRC if v4 else CTA_IP_V6_SRC,
                   socket.inet_pton(family, src)),
              attr(CTA_IP_V4_DST if v4 else CTA_IP_V6_DST,
                   socket.inet_pton(family, dst)))
    if proto == ICMP:
        ports = (be16(CTA_PROTO_ICMP_ID, sport) + u8(CTA_PROTO_ICMP_TYPE, 8)
                 + u8(CTA_PROTO_ICMP_CODE, 0))
    else:
        ports = be16(CTA_PROTO_SRC_PORT, sport) + be16(CTA_PROTO_DST_PORT,
                                                       dport)
    return nest(kind, ip, nest(CTA_TUPLE_PROTO, u8(CTA_PROTO_NUM, proto),
                               ports))


def info(proto, status):
    rest = be32(CTA_STATUS, status) + be32(CTA_TIMEOUT, 431999)
    if proto == TCP:
        rest += nest(CTA_PROTOINFO, nest(CTA_PROTOINFO_TCP,
                                         u8(CTA_PROTOINFO_TCP_STATE, 3)))
    return rest + be32(CTA_USE, 1) + be32(CTA_ID, 0x12345678)


def entry(family, proto, orig, reply, status=SNAT, flags=NLM_F_MULTI,
          seq=SEQ):
    return message(CT_NEW, nfgen(family)
                   + tuple_attr(CTA_TUPLE_ORIG, family, proto, *orig)
                   + tuple_attr(CTA_TUPLE_REPLY, family, proto, *reply)
                   + info(proto, status), flags, seq)


def done(error=0, flags=NLM_F_MULTI):
    return message(NLMSG_DONE, struct.pack("=i", error), flags)


def cpu(number, insert_failed, drop):
    counters = [(STATS_FOUND, 7), (STATS_INVALID, 9), (STATS_INSERT, 1000),
                (STATS_INSERT_FAILED, insert_failed), (STATS_DROP, drop),
                (STATS_EARLY_DROP, 0), (STATS_ERROR, 2),
                (STATS_SEARCH_RESTART, 1), (STATS_CLASH_RESOLVE, 3),
                (STATS_CHAIN_TOOLONG, 0)]
    return message(CT_GET_STATS_CPU, nfgen(socket.AF_UNSPEC, number)
                   + b"".join(be32(k, v) for k, v in counters))


CLIENT = ("10.0.0.2", 40000, "203.0.113.7", 443)
SNAT_REPLY = ("203.0.113.7", 443, "198.51.100.2", 61000)
TCP_SNAT = entry(V4, TCP, CLIENT, SNAT_REPLY)
TABLE_DUMP = (
    TCP_SNAT
    + entry(V4, TCP, CLIENT, ("203.0.113.7", 443, "198.51.100.2", 40000))
    + entry(V4, TCP, ("10.0.0.3", 40001, "203.0.113.7", 443),
            ("203.0.113.7", 443, "198.51.100.2", 61001))
    + entry(V4, UDP, ("10.0.0.2", 40002, "203.0.113.53", 53),
            ("203.0.113.53", 53, "198.51.100.2", 1024))
    + entry(V6, TCP, ("2001:db8::2", 40003, "2001:db8::7", 443),
            ("2001:db8::7", 443, "2001:db8::100", 50000))
    + entry(V4, TCP, ("10.0.0.2", 40004, "203.0.113.80", 80),
            ("192.0.2.80", 8080, "10.0.0.2", 40004), DNAT)
    + entry(V4, TCP, ("10.0.0.2", 40005, "203.0.113.80", 80),
            ("192.0.2.80", 8080, "198.51.100.2", 61005), SNAT | DNAT)
    + entry(V4, TCP, ("10.0.0.4", 40006, "203.0.113.7", 443),
            ("203.0.113.7", 443, "10.0.0.4", 40006), 0x8)
    + entry(V4, ICMP, ("10.0.0.2", 7, "203.0.113.7", 0),
            ("203.0.113.7", 7, "198.51.100.2", 0)))
# The reply tuple's CTA_TUPLE_IP claims 8 bytes past its parent's end.
ORIG_LEN = len(tuple_attr(CTA_TUPLE_ORIG, V4, TCP, *CLIENT))
NESTED_PAST_END = bytearray(TCP_SNAT)
IP_AT = 16 + 4 + ORIG_LEN + 4
NESTED_PAST_END[IP_AT:IP_AT + 2] = struct.pack(
    "=H", struct.unpack_from("=H", TCP_SNAT, IP_AT)[0] + 40)

SEEDS = {
    "table_dump": TABLE + TABLE_DUMP + done(),
    "table_continues": TABLE + TABLE_DUMP,
    "snat_stop_visitor": b"\x20" + TABLE_DUMP + done(),
    "dump_intr": TABLE + TCP_SNAT
    + entry(V4, TCP, CLIENT, SNAT_REPLY, flags=NLM_F_MULTI | NLM_F_DUMP_INTR)
    + done(),
    "error_eperm": TABLE + message(NLMSG_ERROR, struct.pack("=i", -1)
                                   + struct.pack("=IHHII", 20, 0x101, 0x301,
                                                 SEQ, 0)),
    "error_without_payload": TABLE + message(NLMSG_ERROR, b""),
    "done_with_error": TABLE + done(-105),
    "stale_sequence": TABLE + entry(V4, TCP, CLIENT, SNAT_REPLY, seq=SEQ - 1)
    + done(),
    "length_past_end": TABLE + message(CT_NEW, TCP_SNAT[16:], length=4096),
    "truncated_header": TABLE + TCP_SNAT[:10],
    "truncated_attribute": TABLE + message(CT_NEW, TCP_SNAT[16:60]),
    "nested_past_end": TABLE + bytes(NESTED_PAST_END) + done(),
    "short_nfgenmsg": TABLE + message(CT_NEW, b"\x02\x00"),
    "zone": TABLE + message(CT_NEW, TCP_SNAT[16:] + struct.pack(
        "=HHH", 6, CTA_ZONE, socket.htons(7)) + b"\0\0") + done(),
    "stats": STATS + cpu(0, 3, 1) + cpu(1, 4, 2)
    + cpu(2, 0xffffffff, 0xfffffffe) + done(),
    "stats_continues": STATS + cpu(0, 3, 1),
    "stats_missing_drop": STATS + message(CT_GET_STATS_CPU, nfgen(0)
                                          + be32(STATS_INSERT_FAILED, 1)),
    "stats_error": STATS + message(NLMSG_ERROR, struct.pack("=i", -1)
                                   + struct.pack("=IHHII", 20, 0x104, 0x301,
                                                 SEQ, 0)),
}


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


if __name__ == "__main__":
    main()
