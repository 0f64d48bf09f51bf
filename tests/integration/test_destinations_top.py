"""Per-destination usage: collectd_ephemeral_ports_destination_used/_usage_ratio.

What every scenario here shares is in destinations_scene.py's docstring.

Scenario "top_two": TopDestinations 2, an in-pool listener (40019, so the
exclusive count is 1) and listeners 9001..9005 with 5, 4, 3, 2, 1
connections: exactly 9001 -> 6 and 9002 -> 5 are reported.  Closing 9001's
clients (SO_LINGER 0, no TIME_WAIT) makes the top 9002 -> 5, 9003 -> 4, and
9001 is reported once more, by a read after the change, with its current
value 0 + 1 = 1; the read after that does not report it again.  Closing 3 of
9002's 4 clients then makes the top 9003 -> 4, 9004 -> 3 and 9002 is
reported once with 1 + 1 = 2.  9004/9005 never appear before they rank.

Scenario "top_zero": TopDestinations 0 with connections to two
destinations: no destination series at all."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from destinations_scene import (  # noqa: E402
    POOL, PORT_RANGE, Sockets, TOTAL, check_fresh, destination_values,
    expected_destinations, remote4)


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
    h.run_scenarios({"top_two": top_two, "top_zero": top_zero},
                    port_range=PORT_RANGE, reserved_ports="")
