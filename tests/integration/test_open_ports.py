"""instance_open_ports: listeners, WatchPort, IgnorePort, ReportOpenPorts.

Scenario "watch_ignore": WatchPort 22 "7000-7001", IgnorePort 8081, and
listeners on 8080 (IPv4), 8081 (IPv4 and IPv6) and 7000 (IPv6).  A fresh read
shows exactly 22 -> 0, 7000 -> 1, 7001 -> 0, 8080 -> 1, 9103 -> 1
(write_prometheus's own listener) and no 8081; watched and open series are
dispatched at every read (fresh timestamps).  Then 8080 is closed: the next
fresh read shows 8080 -> 0, and the read after that does not dispatch it
again (it is reported once: its timestamp does not advance, or collectd has
already expired it).

Scenario "report_open_ports_false": the same with ReportOpenPorts false and
the watch list given as repeated options: only the watched ports appear.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

WATCHED = {22, 7000, 7001}
IGNORED = {8081}


def open_listeners():
    return {
        8080: [h.listener(8080, socket.AF_INET)],
        8081: [h.listener(8081, socket.AF_INET),
               h.listener(8081, socket.AF_INET6)],
        7000: [h.listener(7000, socket.AF_INET6)],
    }


def close_all(listeners):
    for socks in listeners.values():
        for sock in socks:
            sock.close()


def expected_from_ss(report_open_ports):
    """What the plugin must report, derived from ss's listening ports."""
    listening = h.ss_listening_ports()
    expected = {port: 0 for port in WATCHED}
    for port in listening:
        if port in IGNORED:
            continue
        if report_open_ports or port in WATCHED:
            expected[port] = 1
    return expected


def check_all_fresh(samples, ports, since):
    """Every listed port's series was dispatched by a read after since."""
    for port in ports:
        _, timestamp_ms = h.sample(samples, h.OPEN_PORTS,
                                   instance_open=str(port))
        h.check(timestamp_ms is not None and timestamp_ms > since * 1000,
                "instance_open_ports{instance_open=\"%d\"} not dispatched "
                "by the latest read (timestamp %r, expected after %.0f)"
                % (port, timestamp_ms, since * 1000))


def watch_ignore():
    block = h.plugin_block(['WatchPort 22 "7000-7001"', "IgnorePort 8081"])
    with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
        collectd.start_and_wait_ready()
        listeners = open_listeners()
        try:
            opened_at = time.time()
            samples = h.wait_for_fresh_read(collectd, opened_at)
            expected = {22: 0, 7000: 1, 7001: 0, 8080: 1,
                        h.PROMETHEUS_PORT: 1}
            h.check_equal(expected_from_ss(True), expected,
                          "expectation derived from ss")
            h.check_equal(h.open_port_values(samples), expected,
                          "instance_open_ports with 8080 open")
            check_all_fresh(samples, expected, opened_at)

            for sock in listeners.pop(8080):
                sock.close()
            closed_at = time.time()
            h.check(8080 not in h.ss_listening_ports(),
                    "8080 still listening in ss")
            samples = h.wait_for_fresh_read(collectd, closed_at)
            expected[8080] = 0
            h.check_equal(expected_from_ss(True),
                          {p: v for p, v in expected.items() if p != 8080},
                          "expectation derived from ss after closing 8080")
            h.check_equal(h.open_port_values(samples), expected,
                          "instance_open_ports right after closing 8080")
            check_all_fresh(samples, expected, closed_at)
            closed_sample = h.sample(samples, h.OPEN_PORTS,
                                     instance_open="8080")

            check_reported_once(collectd, closed_sample)
        finally:
            close_all(listeners)


def check_reported_once(collectd, closed_sample):
    """The read after the one that reported 8080 -> 0 does not report it."""
    samples = h.wait_for_fresh_read(collectd, closed_sample[1] / 1000.0)
    later = h.sample(samples, h.OPEN_PORTS, instance_open="8080")
    h.log("8080 at the next read: %s" % (
        "expired from write_prometheus" if later is None
        else "still served as %r (not re-dispatched)" % (later,)))
    h.check(later is None or later == closed_sample,
            "closed port 8080 dispatched again: first %r, then %r"
            % (closed_sample, later))


def report_open_ports_false():
    block = h.plugin_block(["ReportOpenPorts false", "WatchPort 22",
                            'WatchPort "7000-7001"', "IgnorePort 8081"])
    with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
        collectd.start_and_wait_ready()
        listeners = open_listeners()
        try:
            opened_at = time.time()
            samples = h.wait_for_fresh_read(collectd, opened_at)
            expected = {22: 0, 7000: 1, 7001: 0}
            h.check_equal(expected_from_ss(False), expected,
                          "expectation derived from ss")
            h.check_equal(h.open_port_values(samples), expected,
                          "instance_open_ports with ReportOpenPorts false")
            check_all_fresh(samples, expected, opened_at)
            h.check_pool_values(samples, 0, 20, "ReportOpenPorts false")
        finally:
            close_all(listeners)


if __name__ == "__main__":
    h.run_scenarios({"watch_ignore": watch_ignore,
                     "report_open_ports_false": report_open_ports_false},
                    port_range=(40000, 40019), reserved_ports="")
