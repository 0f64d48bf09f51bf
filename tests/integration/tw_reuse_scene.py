"""The scene of the TIME_WAIT reuse tests (test_tw_reuse.py, test_proxy.py):
the namespace's reuse sysctls, and the destination series read out of a
scrape.  Both fill a 6-port pool (40000-40005) with connections to one
destination on loopback and judge the plugin by connect() itself."""

import os
import socket

import harness as h


PORT_RANGE = (40000, 40005)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = len(POOL)
SERVER_PORT = 9000
OTHER_PORT = 9001
DELAY_MS = 5000
SYSCTL_DIR = "/proc/sys/net/ipv4/"


def set_sysctl(name, value):
    with open(SYSCTL_DIR + name, "w") as handle:
        handle.write("%d\n" % value)


def set_reuse(reuse, timestamps=1):
    """The scenario's TIME_WAIT rule; a kernel without tcp_tw_reuse_delay
    (before 6.13) allows reuse after one second, too soon to catch."""
    if not os.path.exists(SYSCTL_DIR + "tcp_tw_reuse_delay"):
        raise h.TestSkip("net.ipv4.tcp_tw_reuse_delay is missing (Linux "
                         "before 6.13): the delay cannot be set longer "
                         "than a read")
    set_sysctl("tcp_tw_reuse", reuse)
    set_sysctl("tcp_tw_reuse_delay", DELAY_MS)
    set_sysctl("tcp_timestamps", timestamps)


def key_of(family, port=SERVER_PORT):
    address = h.LOOPBACK[family]
    remote = ("%s:%d" if family == socket.AF_INET else "[%s]:%d") % (
        address, port)
    return (remote, address)


def destination(samples, key):
    found = h.destination_samples(samples)
    h.check(key in found, "no series for destination %r: %r"
            % (key, sorted(found)))
    return tuple(found[key][field][0]
                 for field in ("used", "usage_ratio", "time_wait"))
