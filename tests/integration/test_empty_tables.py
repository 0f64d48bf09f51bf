"""Empty tables cost no dump (issue 19): the namespace's sockstat counts
decide, where they are exact.

collectd runs with the fault shim (mode off: it only logs each sock_diag
request, and "request_udp" after one that asks for UDP sockets), Protocol
"tcp" "udp", Interval 0.5, in the test's namespace (range 40000-40019, a
listener on 9000 with two clients, no UDP socket), and reads two more
through NetNamespace: A (a listener with three clients, no UDP socket)
and B (nothing at first).

- While no namespace has a UDP socket with a port, no read sends a UDP
  request: 0 of them over three reads, against 4 per namespace and read
  before (two queries, two families); every namespace's series are exactly
  what ss inside it says, the UDP pool 0 of its size.
- TCP sockets that are only bound are not in sockstat's counts; this
  kernel (6.8+) dumps them, so B's TCP table is dumped anyway: a bound-only
  socket made in B counts as used.
- A UDP socket bound in B: from the next read on, B's UDP table is dumped
  (4 requests a read; A's and collectd's own still none) and its port is
  counted, as ss says.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from faults_scene import NetlinkFault  # noqa: E402
from netns_scene import (OWN_RANGE, Options, Scene, check_reading,
                         clients_of)  # noqa: E402

INTERVAL = 0.5
READS = 3
UDP_QUERIES = 4  # unconnected and connected sockets, IPv4 and IPv6
UDP_PORT = 41105  # in B's pool


def reads_after(fault, since):
    """The shim's requests grouped into reads, of the reads that started
    after since: [[event names]]."""
    groups, last = [], None
    for name, stamp in fault.events():
        if stamp <= since:
            continue
        if last is None or stamp - last > INTERVAL / 2:
            groups.append([])
        groups[-1].append(name)
        last = stamp
    return groups


def watch_reads(collectd, fault, count):
    """Waits for count whole reads after now; returns their events."""
    since = time.time()
    deadline = time.monotonic() + 15
    while True:
        groups = reads_after(fault, since)
        # The last group may still be going on.
        if len(groups) > count:
            return groups[:count]
        h.check(time.monotonic() < deadline, "reads seen: %r" % groups)
        time.sleep(0.1)


def check_every_reading(collectd, scene, options, what):
    """The first read after now: every namespace's series exactly what ss
    inside it says."""
    samples = h.wait_for_fresh_hosts(
        collectd, [ns.host for ns in scene.namespaces], time.time())
    for ns in scene.namespaces:
        check_reading(samples, ns, options, what)


def scenario():
    options = Options(udp=True)
    scene = Scene()
    try:
        scene.own.build(clients_of(9000, 2))
        a = scene.named("ea", (41000, 41009)).build(clients_of(9000, 3))
        b = scene.named("eb", (41100, 41109))
        block = h.plugin_block(['Protocol "tcp" "udp"'] + [
            'NetNamespace "%s"' % ns.path for ns in (a, b)])
        with h.TempDir() as tmp:
            fault = NetlinkFault(tmp)
            with h.Collectd(tmp, block, interval=INTERVAL,
                            extra_env=fault.env()) as collectd:
                collectd.start_and_wait_ready()
                check_every_reading(collectd, scene, options, "no UDP socket")
                reads = watch_reads(collectd, fault, READS)
                h.check_equal([g.count("request_udp") for g in reads],
                              [0] * READS, "UDP requests per read")
                tcp_requests = [g.count("request") for g in reads]
                h.check_equal(tcp_requests, [tcp_requests[0]] * READS,
                              "requests per read")

                b.build(lambda ns: ns.bind_only(41101))
                check_every_reading(collectd, scene, options, "bound-only in B")

                b.build(lambda ns: ns.udp(UDP_PORT))
                check_every_reading(collectd, scene, options, "UDP socket in B")
                reads = watch_reads(collectd, fault, READS)
                h.check_equal([g.count("request_udp") for g in reads],
                              [UDP_QUERIES] * READS,
                              "UDP requests per read, B's alone")
                h.check_equal(
                    [g.count("request") for g in reads],
                    [tcp_requests[0] + UDP_QUERIES] * READS,
                    "requests per read")
                h.log("FIGURES: per read %d sock_diag requests while no "
                      "namespace had a UDP socket (%d before this change), "
                      "%d once B had one"
                      % (tcp_requests[0],
                         tcp_requests[0] + 3 * UDP_QUERIES,
                         tcp_requests[0] + UDP_QUERIES))
                h.check_equal(h.plugin_log_lines(collectd.log_lines(),
                                                 "error"), [],
                              "plugin ERROR lines")
    finally:
        scene.close()


if __name__ == "__main__":
    try:
        h.run_scenarios({"empty_tables": scenario}, port_range=OWN_RANGE)
    finally:
        h.delete_shared_namespaces()
