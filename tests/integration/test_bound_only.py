"""Bound-only TCP sockets: bind() without listen() or connect().

Port range 40000-40019 (a pool of 20, none reserved), ReportStates true,
TopDestinations at its default.  The kernel (6.x, inet_diag
TCP_BOUND_INACTIVE) dumps bound-only sockets; Debian 12's ss (no
--bound-inactive) does not show them, so for them the test compares with its
own expectation, and asserts that ss indeed misses them.

Sockets: TCP bound to 127.0.0.1:40009 and to [::]:40011 (IPV6_V6ONLY), a
listener on 127.0.0.1:9000 and one client to it (a kernel-picked pool port).
After a fresh read: used == 3 (ss -tan shows 1 in-pool port: the plugin sees
2 more than ss); destination 127.0.0.1:9000 used == 1 + 2 exclusive;
states: established 1, close 2, the rest 0 (ss's counts plus the 2 bound-only
sockets as close); instance_open_ports exactly {9000, 9103} (bound-only
ports are not open); no INFO saying bound-only sockets are not counted.
Then both bound sockets are closed: the next fresh read shows used 1,
destination used 1, close 0.

Scenario "exhausted_at_start": every pool port is held by a bound-only
socket on 0.0.0.0 before collectd starts (the test asserts that a bind to a
kernel-chosen port then fails with EADDRINUSE); an earlier plugin probed the
kernel with such a bind and, failing, left bound-only sockets uncounted.  The first fresh read still shows
used == total == 20, and after 5 of the sockets close, used == 15; nothing
in the log says bound-only sockets are not counted.
"""

import errno
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
BOUND_V4 = 40009
BOUND_V6 = 40011
DESTINATION = ("127.0.0.1:9000", "127.0.0.1")
NOT_COUNTED_MESSAGE = "hold ports that are not counted"


def bound_only_sockets():
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.bind(("127.0.0.1", BOUND_V4))
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    v6.bind(("::", BOUND_V6))
    return [v4, v6]


def check_read(samples, client_port, bound_ports, what):
    ss_ports = h.ss_pool_ports(POOL)
    h.check_equal(ss_ports, {client_port},
                  "%s: in-pool ports in ss -tan (bound-only not shown)"
                  % what)
    h.check_equal({s.local_port for s in h.ss_tcp()} & set(bound_ports),
                  set(), "%s: bound-only ports in ss -tan" % what)
    used = len(ss_ports | set(bound_ports))
    h.check_equal(used, 1 + len(bound_ports), "%s: expectation" % what)
    h.check_pool_values(samples, used, TOTAL, what)

    destination_used = 1 + len(bound_ports)
    found = h.destination_samples(samples)
    h.check_equal(set(found), {DESTINATION}, "%s: destinations" % what)
    h.check_equal(found[DESTINATION]["used"][0], destination_used,
                  "%s: destination %r used" % (what, DESTINATION))
    h.check_equal(found[DESTINATION]["usage_ratio"][0],
                  h.format_ratio(destination_used / TOTAL),
                  "%s: destination %r usage_ratio" % (what, DESTINATION))
    h.check_equal(h.ss_destination_counts(POOL), {DESTINATION: 1},
                  "%s: in-pool sockets per destination in ss" % what)

    expected_states = h.ss_state_counts(POOL)
    h.check_equal(expected_states["close"], 0, "%s: ss close" % what)
    expected_states["close"] += len(bound_ports)
    h.check_equal(expected_states,
                  dict(dict.fromkeys(h.TCP_STATES, 0), established=1,
                       close=len(bound_ports)),
                  "%s: expected states" % what)
    h.check_equal(h.state_values(samples),
                  {state: float(n) for state, n in expected_states.items()},
                  "%s: ephemeral_ports_state_sockets" % what)

    h.check_equal(h.open_port_values(samples),
                  {9000: 1, h.PROMETHEUS_PORT: 1},
                  "%s: instance_open_ports" % what)


def check_none_said_not_counted(collectd):
    h.check_equal([line for line in collectd.log_lines()
                   if NOT_COUNTED_MESSAGE in line], [],
                  "log lines saying bound-only sockets are not counted")


def exhausted_at_start():
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        bound = []
        try:
            for port in sorted(POOL):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                bound.append(sock)
                sock.bind(("0.0.0.0", port))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("0.0.0.0", 0))
                    h.fail("bind to a kernel-chosen port succeeded on a full "
                           "pool: port %d" % h.local_port(probe))
                except OSError as error:
                    h.check_equal(error.errno, errno.EADDRINUSE,
                                  "bind to a kernel-chosen port")
            h.check_equal(h.ss_pool_ports(POOL), set(),
                          "in-pool ports in ss -tan (bound-only not shown)")
            built_at = time.time()
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            h.check_pool_values(samples, TOTAL, TOTAL,
                                "every pool port bound at start")

            for sock in bound[:5]:
                sock.close()
            bound = bound[5:]
            closed_at = time.time()
            samples = h.wait_for_read_after(collectd, closed_at)
            h.check_pool_values(samples, TOTAL - 5, TOTAL,
                                "after closing 5 of them")
            check_none_said_not_counted(collectd)
            h.check_equal(
                h.plugin_log_lines(collectd.log_lines(), "error"), [],
                "plugin ERROR lines")
        finally:
            for sock in bound:
                sock.close()


def bound_only():
    block = h.plugin_block(["ReportStates true"])
    with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
        bound = bound_only_sockets()
        sockets = []
        try:
            listening = h.listener(9000)
            sockets.append(listening)
            client = h.client(9000)
            sockets.append(client)
            sockets.append(listening.accept()[0])
            client_port = h.local_port(client)
            h.check(client_port in POOL and
                    client_port not in (BOUND_V4, BOUND_V6),
                    "client port %d" % client_port)
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            check_read(samples, client_port, (BOUND_V4, BOUND_V6),
                       "with 2 bound-only sockets")
            check_none_said_not_counted(collectd)

            for sock in bound:
                sock.close()
            bound = []
            closed_at = time.time()
            samples = h.wait_for_read_after(collectd, closed_at)
            check_read(samples, client_port, (), "after closing them")
            h.check_equal(
                h.plugin_log_lines(collectd.log_lines(), "error"), [],
                "plugin ERROR lines")
        finally:
            for sock in bound + sockets:
                sock.close()


if __name__ == "__main__":
    h.run_scenarios({"bound_only": bound_only,
                     "exhausted_at_start": exhausted_at_start},
                    port_range=PORT_RANGE, reserved_ports="")
