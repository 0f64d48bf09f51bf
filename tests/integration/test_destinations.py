"""Per-destination usage: collectd_ephemeral_ports_destination_used/_usage_ratio.

Port range 40000-40019 (a pool of 20, none reserved) in every scenario.  For
each (local address, remote address, remote port) of connected TCP sockets
with a pool local port, used = those sockets (on ports not held
exclusively) + the pool ports held exclusively (listeners, bound-only).

Scenario "exhaustion": listeners A 127.0.0.1:9000 and B 127.0.0.1:9001;
3 connections to B, then connections to A until connect() fails with
EADDRNOTAVAIL, then one more connection to B, which succeeds (the kernel
shares a local port between destinations).  Asserts A used 20 / ratio 1, B
used 4 / ratio 0.2, global used 20 / ratio 1, and the per-destination
socket counts against ss -tan.

Scenario "exclusive": a listener inside the pool (40003) counts against
every destination: 2 connections to 9000, 1 to 9001, 1 to the in-pool
listener 40003 give exactly the destinations 9000 -> 3, 9001 -> 2,
40003 -> 2; the accepted side of the connection to 40003 (local port 40003,
held exclusively) creates no destination.

Scenario "ipv6": 3 connections to [::1]:9000 give destination "[::1]:9000",
type "::1", used 3.

Scenario "top_two": TopDestinations 2, an in-pool listener (40019, so the
exclusive count is 1) and listeners 9001..9005 with 5, 4, 3, 2, 1
connections: exactly 9001 -> 6 and 9002 -> 5 are reported.  Closing 9001's
clients (SO_LINGER 0, no TIME_WAIT) makes the top 9002 -> 5, 9003 -> 4, and
9001 is reported once more, by a read after the change, with its current
value 0 + 1 = 1; the read after that does not report it again.  Closing 3 of
9002's 4 clients then makes the top 9003 -> 4, 9004 -> 3 and 9002 is
reported once with 1 + 1 = 2.  9004/9005 never appear before they rank.

Scenario "top_zero": TopDestinations 0 with connections to two
destinations: no destination series at all.
"""

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
MAX_CONNECT_ATTEMPTS = 100


class Sockets:
    """Every socket a scenario makes, closed at the end."""

    def __init__(self):
        self.all = []

    def keep(self, sock):
        self.all.append(sock)
        return sock

    def listener(self, port, family=socket.AF_INET, backlog=128):
        return self.keep(h.listener(port, family, backlog))

    def connect(self, listening, port, family=socket.AF_INET):
        """A client to listening (on port) and its accepted end; returns
        the client."""
        client = self.keep(h.client(port, family))
        self.keep(listening.accept()[0])
        return client

    def close(self):
        for sock in self.all:
            sock.close()


def remote4(port):
    return "127.0.0.1:%d" % port


def ratio(used):
    return h.format_ratio(used / TOTAL)


def destination_values(samples):
    """{(remote, local): (used, usage_ratio)}"""
    found = h.destination_samples(samples)
    result = {}
    for key, fields in found.items():
        h.check(set(fields) == {"used", "usage_ratio"},
                "destination %r has only %r" % (key, sorted(fields)))
        result[key] = (fields["used"][0], fields["usage_ratio"][0])
    return result


def expected_destinations(used_by_key):
    return {key: (float(used), ratio(used))
            for key, used in used_by_key.items()}


def check_fresh(samples, keys, since, what):
    """The used series of each key was dispatched by a read after since."""
    found = h.destination_samples(samples)
    for key in keys:
        timestamp = found[key]["used"][1]
        h.check(timestamp is not None and timestamp > since * 1000,
                "%s: destination %r not dispatched by the latest read "
                "(timestamp %r, expected after %.0f)"
                % (what, key, timestamp, since * 1000))


# --------------------------------------------------------------------------
# exhaustion


def connect_until_exhausted(sockets, listening, port):
    clients = []
    for _ in range(MAX_CONNECT_ATTEMPTS):
        try:
            clients.append(sockets.connect(listening, port))
        except OSError as error:
            if h.is_address_not_available(error):
                return clients
            h.fail("connect() to %d failed with %r, expected EADDRNOTAVAIL "
                   "after %d connections" % (port, error, len(clients)))
    h.fail("connect() to %d still succeeded after %d attempts"
           % (port, MAX_CONNECT_ATTEMPTS))


def exhaustion():
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        h.check_equal(h.current_pool(), POOL, "namespace pool")
        sockets = Sockets()
        try:
            listen_a = sockets.listener(9000)
            listen_b = sockets.listener(9001)
            to_b = [sockets.connect(listen_b, 9001) for _ in range(3)]
            to_a = connect_until_exhausted(sockets, listen_a, 9000)
            h.check_equal(len(to_a), TOTAL,
                          "connections to 9000 before EADDRNOTAVAIL")
            h.check_equal({h.local_port(c) for c in to_a}, POOL,
                          "local ports of the connections to 9000")
            try:
                to_b.append(sockets.connect(listen_b, 9001))
            except OSError as error:
                h.fail("connect() to 9001 after 9000 was exhausted failed: "
                       "%r (expected success: ports are shared between "
                       "destinations)" % error)
            h.log("after %d connections to 9000 connect() failed with "
                  "EADDRNOTAVAIL; a connect() to 9001 then succeeded "
                  "(local port %d, also used by a connection to 9000)"
                  % (len(to_a), h.local_port(to_b[-1])))
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)

            b_used = len(to_b)
            expected = {(remote4(9000), "127.0.0.1"): TOTAL,
                        (remote4(9001), "127.0.0.1"): b_used}
            h.check_equal(h.ss_destination_counts(POOL), expected,
                          "in-pool sockets per destination in ss -tan")
            h.check_equal({s.state for s in h.ss_tcp()
                           if s.local_port in POOL}, {"ESTAB"},
                          "ss states of in-pool sockets")
            h.check_equal(destination_values(samples),
                          expected_destinations(expected),
                          "destination used/usage_ratio")
            check_fresh(samples, expected, built_at, "exhaustion")
            h.check_pool_values(samples, TOTAL, TOTAL, "global")
            h.check_equal(len(h.ss_pool_ports(POOL)), TOTAL,
                          "distinct in-pool ports in ss -tan")
            h.log("FIGURES: global usage_ratio %g (used %d/%d); destination "
                  "127.0.0.1:9000 used %d ratio %g (connect() fails: "
                  "EADDRNOTAVAIL); destination 127.0.0.1:9001 used %d ratio "
                  "%g (connect() still succeeds)"
                  % (h.value_of(samples,
                                "collectd_ephemeral_ports_usage_ratio"),
                     TOTAL, TOTAL, TOTAL, ratio(TOTAL), b_used,
                     ratio(b_used)))
        finally:
            sockets.close()


# --------------------------------------------------------------------------
# exclusive


def exclusive():
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        sockets = Sockets()
        try:
            in_pool = sockets.listener(40003)
            listen_a = sockets.listener(9000)
            listen_b = sockets.listener(9001)
            clients = [sockets.connect(listen_a, 9000) for _ in range(2)]
            clients.append(sockets.connect(listen_b, 9001))
            clients.append(sockets.connect(in_pool, 40003))
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)

            table = h.ss_tcp()
            h.check_equal(sorted(s.peer_port for s in table
                                 if s.local_port == 40003
                                 and s.state == "ESTAB"),
                          [h.local_port(clients[-1])],
                          "ss: accepted side of the connection to 40003")
            sockets_per_key = {(remote4(9000), "127.0.0.1"): 2,
                               (remote4(9001), "127.0.0.1"): 1,
                               (remote4(40003), "127.0.0.1"): 1}
            h.check_equal(h.ss_destination_counts(POOL), sockets_per_key,
                          "in-pool sockets per destination in ss -tan "
                          "(without those on the listening port)")
            exclusive_ports = {s.local_port for s in table
                               if s.state == "LISTEN"} & POOL
            h.check_equal(exclusive_ports, {40003},
                          "exclusive pool ports in ss")
            expected = {key: n + len(exclusive_ports)
                        for key, n in sockets_per_key.items()}
            h.check_equal(expected, {(remote4(9000), "127.0.0.1"): 3,
                                     (remote4(9001), "127.0.0.1"): 2,
                                     (remote4(40003), "127.0.0.1"): 2},
                          "expectation")
            h.check_equal(destination_values(samples),
                          expected_destinations(expected),
                          "destination used/usage_ratio")
            check_fresh(samples, expected, built_at, "exclusive")
            # Distinct: the kernel may give clients to different
            # destinations the same local port.
            used = {h.local_port(c) for c in clients} | {40003}
            h.check_equal(h.ss_pool_ports(POOL), used, "ss pool ports")
            h.check_pool_values(samples, len(used), TOTAL, "global")
        finally:
            sockets.close()


# --------------------------------------------------------------------------
# ipv6


def ipv6():
    with h.TempDir() as tmp, h.Collectd(tmp, h.plugin_block([])) as collectd:
        sockets = Sockets()
        try:
            listening = sockets.listener(9000, socket.AF_INET6)
            clients = [sockets.connect(listening, 9000, socket.AF_INET6)
                       for _ in range(3)]
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            expected = {("[::1]:9000", "::1"): 3}
            h.check_equal(h.ss_destination_counts(POOL), expected,
                          "in-pool sockets per destination in ss -tan")
            h.check_equal(destination_values(samples),
                          expected_destinations(expected),
                          "destination used/usage_ratio")
            check_fresh(samples, expected, built_at, "ipv6")
            h.check_pool_values(samples, len(clients), TOTAL, "global")
        finally:
            sockets.close()


# --------------------------------------------------------------------------
# top_two


def wait_for_ss_destinations(expected, what):
    """Waits until ss -tan shows exactly expected ({key: sockets}) as the
    in-pool sockets per destination."""
    deadline = time.monotonic() + 5
    while h.ss_destination_counts(POOL) != expected:
        if time.monotonic() > deadline:
            h.check_equal(h.ss_destination_counts(POOL), expected,
                          "%s: in-pool sockets per destination in ss -tan"
                          % what)
        time.sleep(0.02)


def check_top(samples, expected_top, since, dropped, what):
    """The destination series are exactly expected_top (dispatched by a read
    after since) plus the dropped ones ({key: used}) reported once by a read
    after since; returns {dropped key: its (value, timestamp)}."""
    found = h.destination_samples(samples)
    values = destination_values(samples)
    check_fresh(samples, expected_top, since, what)
    wanted = dict(expected_top)
    wanted.update(dropped)
    present = {key: values[key] for key in values
               if key in wanted or found[key]["used"][1] > since * 1000}
    h.check_equal(present, expected_destinations(wanted),
                  "%s: destinations dispatched after the change" % what)
    success_ts = h.sample(samples, h.SCRAPE_SUCCESS)[1]
    result = {}
    for key in dropped:
        used_sample = found[key]["used"]
        # Every value of a read carries the read's start time, and reads
        # are an interval (1 s) apart: the read whose scrape_success is
        # served or the next one, caught dispatching (scrape_success last).
        h.check(since * 1000 < used_sample[1] < success_ts + 1500,
                "%s: dropped destination %r not dispatched by a read after "
                "the change (timestamp %r, change at %.0f, latest read %r)"
                % (what, key, used_sample[1], since * 1000, success_ts))
        result[key] = used_sample
    return result


def check_not_dispatched_again(collectd, dropped_samples, what):
    """The read after the one that reported a dropped destination does not
    report it again."""
    last_ts = max(ts for _, ts in dropped_samples.values())
    samples = h.wait_for_fresh_read(collectd, last_ts / 1000.0)
    found = h.destination_samples(samples)
    for key, first in dropped_samples.items():
        later = found.get(key, {}).get("used")
        h.log("%s: %r at the next read: %s" % (
            what, key, "expired from write_prometheus" if later is None
            else "still served as %r (not re-dispatched)" % (later,)))
        h.check(later is None or later == first,
                "%s: dropped destination %r dispatched again: first %r, "
                "then %r" % (what, key, first, later))
    return samples


def top_two():
    options = ["TopDestinations 2"]
    # A dropped destination is dispatched once, by the first read after the
    # change; collectd's Timeout (2 intervals) must not remove it before the
    # test's scrape, which can come 2 reads later.
    with h.TempDir() as tmp, \
            h.Collectd(tmp, h.plugin_block(options),
                       extra_config=h.NO_EXPIRY) as collectd:
        sockets = Sockets()
        try:
            sockets.listener(40019)  # exclusive: +1 for every destination
            exclusive_count = 1
            listeners = {port: sockets.listener(port)
                         for port in range(9001, 9006)}
            clients = {}
            for port, count in zip(range(9001, 9006), (5, 4, 3, 2, 1)):
                clients[port] = [sockets.connect(listeners[port], port)
                                 for _ in range(count)]
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)

            def key(port):
                return (remote4(port), "127.0.0.1")

            def used_now(port):
                return len(clients[port]) + exclusive_count

            ss_counts = h.ss_destination_counts(POOL)
            h.check_equal(ss_counts, {key(p): len(clients[p])
                                      for p in clients},
                          "in-pool sockets per destination in ss -tan")
            expected = {key(9001): used_now(9001), key(9002): used_now(9002)}
            h.check_equal(expected, {key(9001): 6, key(9002): 5},
                          "expectation")
            h.check_equal(destination_values(samples),
                          expected_destinations(expected),
                          "TopDestinations 2: the two busiest")
            check_fresh(samples, expected, built_at, "initial top two")

            # 9001 drops out: its clients close with RST, no TIME_WAIT.
            for client in clients[9001]:
                h.close_with_reset(client)
            clients[9001] = []
            changed_at = time.time()
            wait_for_ss_destinations({key(p): len(clients[p])
                                      for p in clients if clients[p]},
                                     "after closing 9001's clients")
            samples = h.wait_for_read_after(collectd, changed_at)
            expected = {key(9002): used_now(9002), key(9003): used_now(9003)}
            h.check_equal(expected, {key(9002): 5, key(9003): 4},
                          "expectation")
            dropped = check_top(samples, expected, changed_at,
                                {key(9001): used_now(9001)},
                                "after 9001 dropped to 0 sockets")
            h.check_equal(used_now(9001), 1, "9001's current used")
            check_not_dispatched_again(collectd, dropped, "9001")

            # 9002 drops out while it still has a socket.
            for client in clients[9002][1:]:
                h.close_with_reset(client)
            clients[9002] = clients[9002][:1]
            changed_at = time.time()
            wait_for_ss_destinations({key(p): len(clients[p])
                                      for p in clients if clients[p]},
                                     "after closing 3 of 9002's clients")
            samples = h.wait_for_read_after(collectd, changed_at)
            expected = {key(9003): used_now(9003), key(9004): used_now(9004)}
            h.check_equal(expected, {key(9003): 4, key(9004): 3},
                          "expectation")
            dropped = check_top(samples, expected, changed_at,
                                {key(9002): used_now(9002)},
                                "after 9002 dropped to 1 socket")
            h.check_equal(used_now(9002), 2, "9002's current used")
            samples = check_not_dispatched_again(collectd, dropped, "9002")
            h.check(key(9005) not in h.destination_samples(samples),
                    "9005 (never in the top two) was reported")
            h.check_equal(
                h.plugin_log_lines(collectd.log_lines(), "error"), [],
                "plugin ERROR lines")
        finally:
            sockets.close()


# --------------------------------------------------------------------------
# top_zero


def top_zero():
    options = ["TopDestinations 0"]
    with h.TempDir() as tmp, \
            h.Collectd(tmp, h.plugin_block(options)) as collectd:
        sockets = Sockets()
        try:
            listen_a = sockets.listener(9000)
            listen_b = sockets.listener(9001)
            clients = [sockets.connect(listen_a, 9000) for _ in range(3)]
            clients.append(sockets.connect(listen_b, 9001))
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            h.check_equal(len(h.ss_destination_counts(POOL)), 2,
                          "destinations in ss -tan")
            h.check_equal(
                sorted(h.format_key(k) for k in samples
                       if k[0].startswith(
                           "collectd_ephemeral_ports_destination")),
                [], "destination series with TopDestinations 0")
            h.check_pool_values(samples,
                                len({h.local_port(c) for c in clients}),
                                TOTAL, "global")
            h.check_equal(len(h.ss_pool_ports(POOL)),
                          len({h.local_port(c) for c in clients}),
                          "distinct in-pool ports in ss -tan")
        finally:
            sockets.close()


if __name__ == "__main__":
    h.run_scenarios({"exhaustion": exhaustion, "exclusive": exclusive,
                     "ipv6": ipv6, "top_two": top_two, "top_zero": top_zero},
                    port_range=PORT_RANGE, reserved_ports="")
