"""Per-destination usage: collectd_ephemeral_ports_destination_used/_usage_ratio.

What every scenario here shares is in destinations_scene.py's docstring.

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
type "::1", used 3."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from destinations_scene import (  # noqa: E402
    POOL, PORT_RANGE, Sockets, TOTAL, check_fresh, connect_until_exhausted,
    destination_values, expected_destinations, ratio, remote4)


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


if __name__ == "__main__":
    h.run_scenarios({"exhaustion": exhaustion, "exclusive": exclusive,
                     "ipv6": ipv6},
                    port_range=PORT_RANGE, reserved_ports="")
