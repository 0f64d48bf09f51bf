"""Per-destination usage against connect() itself: TIME_WAIT reuse and
explicit binds (docs/metrics.md, "Per-destination headroom").

Port range 40000-40005 (6 ports, ends of different parity so that
connect()'s search covers all of them) in every scenario; a listener on
127.0.0.1:9000 (or [::1]:9000) outside the pool.  Each scenario fills the
pool with connections to that one destination, closed client first, so
that 6 TIME_WAIT sockets hold every pool port, and sets the namespace's
net.ipv4.tcp_tw_reuse, tcp_tw_reuse_delay (5000 ms) and tcp_timestamps.
After each read the test calls connect() to the destination and asserts
that the plugin agrees with it: usage_ratio 1 exactly when connect()
fails with EADDRNOTAVAIL.

Scenario "reuse_off" (tcp_tw_reuse 0): once the TIME_WAIT sockets are older
than the delay, used 6, usage_ratio 1, time_wait 6, and connect() fails.

Scenario "reuse_loopback" (2, Linux's default; IPv4 loopback) and
"reuse_on" (1; IPv6 ::1): younger than the delay, used 6, ratio 1,
time_wait 6 and connect() fails; older, used 0, ratio 0, time_wait 6 and
connect() succeeds (it takes one TIME_WAIT port over).

Scenario "no_timestamps" (1, tcp_timestamps 0): older than the delay, used 6,
ratio 1, and connect() fails: without timestamps there is no reuse.

Scenario "bound_time_wait" (the blind spot, reuse 2): the 6 clients bind()
to 127.0.0.1 port 0 before connect().  Their TIME_WAIT sockets keep their
ports exclusive, and connect() fails at every age; sock_diag does not tell
such a socket from another, so the plugin reports used 0: the test asserts
both, as docs/metrics.md states.

Scenario "bound_established" (the blind spot, reuse 0): 3 clients bind() to
port 0 then connect to 9001, 3 plain ones connect to 9000.  The next
connect() to 9000 fails (the bound ports are exclusive), while the plugin
reports 9000 used 3, ratio 0.5."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from tw_reuse_scene import (  # noqa: E402
    DELAY_MS, OTHER_PORT, POOL, PORT_RANGE, SERVER_PORT, TOTAL, destination,
    key_of, set_reuse)


def try_connect(family, port=SERVER_PORT):
    """A client to the listener, or None when connect() fails with
    EADDRNOTAVAIL (any other failure fails the test)."""
    try:
        return h.client(port, family)
    except OSError as error:
        if not h.is_address_not_available(error):
            h.fail("connect() to %d failed with %r, not EADDRNOTAVAIL"
                   % (port, error))
        return None


def bound_client(port, family):
    """A client that bind()s to port 0 of the loopback address first."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((h.LOOPBACK[family], 0))
    sock.connect((h.LOOPBACK[family], port))
    return sock


def fill_with_time_wait(listening, family, bound=False):
    """TOTAL connections to the listener, closed client first; returns
    when ss shows every pool port in TIME-WAIT, and that time."""
    for _ in range(TOTAL):
        client = bound_client(SERVER_PORT, family) if bound else \
            h.client(SERVER_PORT, family)
        server_end = listening.accept()[0]
        client.close()
        server_end.close()
    deadline = time.monotonic() + 5
    while h.ss_ports_in_state("TIME-WAIT") & POOL != POOL:
        if time.monotonic() > deadline:
            h.fail("the pool never filled with TIME-WAIT: %r" % h.ss_tcp())
        time.sleep(0.05)
    return time.time()


def check_agrees(collectd, since, family, used, connects, what):
    """The first read after since reports used (time_wait TOTAL) for the
    destination, and the next connect() succeeds exactly when connects."""
    key = key_of(family)
    samples = h.wait_for_fresh_read(collectd, since)
    h.check_equal(destination(samples, key),
                  (float(used), h.format_ratio(used / TOTAL), float(TOTAL)),
                  "%s: %r used, usage_ratio, time_wait" % (what, key))
    client = try_connect(family)
    h.check_equal(client is not None, connects,
                  "%s: connect() to %r succeeded" % (what, key))
    h.log("FIGURES: %s: %s used %d/%d, time_wait %d; connect() %s"
          % (what, key[0], used, TOTAL, TOTAL,
             "succeeds" if connects else "fails with EADDRNOTAVAIL"))
    return client


def young_and_old(reuse, family, young_used, old_used, timestamps=1):
    set_reuse(reuse, timestamps)
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        collectd.start_and_wait_ready()
        listening = h.listener(SERVER_PORT, family)
        try:
            filled_at = fill_with_time_wait(listening, family)
            if young_used is not None:
                check_agrees(collectd, filled_at, family, young_used,
                             young_used < TOTAL, "younger than the delay")
                h.check(time.time() < filled_at + DELAY_MS / 1000 - 1,
                        "the young read and connect() took too long")
            old_since = filled_at + DELAY_MS / 1000 + 0.5
            time.sleep(max(0.0, old_since - time.time()))
            client = check_agrees(collectd, old_since, family, old_used,
                                  old_used < TOTAL, "older than the delay")
            if client is not None:
                client.close()
        finally:
            listening.close()


def reuse_off():
    young_and_old(0, socket.AF_INET, None, TOTAL)


def reuse_loopback():
    young_and_old(2, socket.AF_INET, TOTAL, 0)


def reuse_on():
    young_and_old(1, socket.AF_INET6, TOTAL, 0)


def no_timestamps():
    young_and_old(1, socket.AF_INET, None, TOTAL, timestamps=0)


def bound_time_wait():
    set_reuse(2)
    family = socket.AF_INET
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        collectd.start_and_wait_ready()
        listening = h.listener(SERVER_PORT, family)
        try:
            filled_at = fill_with_time_wait(listening, family, bound=True)
            old_since = filled_at + DELAY_MS / 1000 + 0.5
            time.sleep(max(0.0, old_since - time.time()))
            samples = h.wait_for_fresh_read(collectd, old_since)
            key = key_of(family)
            h.check_equal(destination(samples, key),
                          (0.0, 0.0, float(TOTAL)),
                          "bound TIME_WAIT: %r as the plugin reports it" %
                          (key,))
            h.check_equal(try_connect(family), None,
                          "bound TIME_WAIT: connect() to %r" % (key,))
            h.log("FIGURES: blind spot: 6 TIME_WAIT sockets of clients "
                  "that bind() first, older than the delay: the plugin "
                  "reports used 0/6 (it cannot tell them), connect() fails "
                  "with EADDRNOTAVAIL")
        finally:
            listening.close()


def bound_established():
    set_reuse(0)
    family = socket.AF_INET
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        listen_a = h.listener(SERVER_PORT, family)
        listen_b = h.listener(OTHER_PORT, family)
        sockets = [listen_a, listen_b]
        try:
            half = TOTAL // 2
            for _ in range(half):
                sockets.append(bound_client(OTHER_PORT, family))
                sockets.append(listen_b.accept()[0])
            for _ in range(half):
                sockets.append(h.client(SERVER_PORT, family))
                sockets.append(listen_a.accept()[0])
            built_at = time.time()
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            key = key_of(family)
            h.check_equal(h.ss_destination_counts(POOL),
                          {key: half, key_of(family, OTHER_PORT): half},
                          "sockets per destination in ss -tan")
            h.check_equal(destination(samples, key),
                          (float(half), h.format_ratio(half / TOTAL), 0.0),
                          "explicit binds: %r as the plugin reports it" %
                          (key,))
            h.check_equal(try_connect(family), None,
                          "explicit binds: connect() to %r" % (key,))
            h.log("FIGURES: blind spot: 3 clients bound to port 0 then "
                  "connected to 9001, 3 plain ones to 9000: the plugin "
                  "reports 9000 used 3/6, connect() to 9000 fails with "
                  "EADDRNOTAVAIL")
        finally:
            for sock in sockets:
                sock.close()


if __name__ == "__main__":
    h.run_scenarios({"reuse_off": reuse_off,
                     "reuse_loopback": reuse_loopback,
                     "reuse_on": reuse_on,
                     "no_timestamps": no_timestamps,
                     "bound_time_wait": bound_time_wait,
                     "bound_established": bound_established},
                    port_range=PORT_RANGE)
