"""The real Prometheus with the shipped contrib/prometheus/ files.

What every scenario here shares is in prometheus_scene.py's docstring.

Prometheus's own scrape connection to collectd takes a pool port (HTTP
keep-alive): the expectation is the test's sockets plus the in-pool
sockets whose peer is 127.0.0.1:9103 or [::1]:9103, taken from ss -tan
before and after a collectd read and required equal.  For that read (its
timestamp T, which write_prometheus exports and Prometheus keeps), the test
asks Prometheus for the samples stamped exactly T and asserts every
established series, its labels and value, exactly; that no collectd_*
original of the plugin's series and no collectd label (ephemeral_ports,
instance_open, type, ...) is stored on them; that cpu's series pass
unchanged; that the rules loaded, their expressions select on the live data
only the closed watched ports (22 tcp and udp, 2222 udp: WatchPort covers
both protocols) and WatchedPortClosed is pending for exactly those; that no
sample was rejected (out of order / bounds);
and that every expression of the Grafana dashboard is accepted, names only
stored metrics and returns data."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from prometheus_scene import (  # noqa: E402
    COLLECTD_LABELS, ESTABLISHED_NAMES, FIRST_CLIENTS, POOL, PORT_RANGE,
    PROMETHEUS_WEB_PORT, SECOND_CLIENTS, TOTAL, UDP_OPEN, UDP_PEER,
    WATCHED_CLOSED, WATCHED_OPEN, api, check_dashboard,
    check_prometheus_itself, check_rules, require_skip_conditions, samples_at,
    start_prometheus, wait_ingested)


class Mix:
    def __init__(self):
        self.sockets = []
        self.tcp_pool_ports = set()  # local ports of the test's clients

    def keep(self, sock):
        self.sockets.append(sock)
        return sock

    def build(self):
        first = self.keep(h.listener(9000))
        second = self.keep(h.listener(9001))
        self.keep(h.listener(WATCHED_OPEN))
        for _ in range(FIRST_CLIENTS):
            self.tcp_pool_ports.add(h.local_port(self.keep(h.client(9000))))
            self.keep(first.accept()[0])
        self.tcp_pool_ports.add(h.local_port(self.keep(h.client(9001))))
        self.keep(second.accept()[0])
        self.tcp_pool_ports.add(h.make_time_wait(second, 9001))
        udp = self.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", UDP_OPEN))
        udp = self.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.connect(("127.0.0.1", UDP_PEER))
        self.udp_pool_port = h.local_port(udp)
        h.check(self.udp_pool_port in POOL, "UDP client port not in pool")

    def close(self):
        for sock in self.sockets:
            sock.close()


def tcp_table():
    """What the plugin's TCP values derive from: in-pool ports, per
    destination and per state counts; and the pool ports of Prometheus's
    connections to collectd."""
    scraper_ports = {s.local_port for s in h.ss_tcp()
                     if s.peer_port == h.PROMETHEUS_PORT} & POOL
    return (h.ss_pool_ports(POOL), h.ss_destination_counts(POOL),
            h.ss_state_counts(POOL), scraper_ports,
            h.ss_destination_counts(POOL, "TIME-WAIT"))


def stable_read(collectd):
    """A write_prometheus scrape of a read between two equal ss tables, and
    that table."""
    for _ in range(10):
        before = tcp_table()
        since = time.time()
        samples = h.wait_for_fresh_read(collectd, since)
        if tcp_table() == before:
            return samples, before
        h.log("the socket table changed around a read; again")
    h.fail("the socket table never held still around a read")


# --------------------------------------------------------------------------
# Expectations, in established names


def key(name, **labels):
    labels.update(instance=h.HOSTNAME, job="collectd")
    return name, tuple(sorted(labels.items()))


def pool_series(protocol, used):
    return {key("ephemeral_ports_used", protocol=protocol): used,
            key("ephemeral_ports_total", protocol=protocol): TOTAL,
            key("ephemeral_ports_available", protocol=protocol): TOTAL - used,
            key("ephemeral_ports_usage_ratio", protocol=protocol):
                h.format_ratio(used / TOTAL)}


def expected_series(mix, table):
    pool_ports, destinations, states, scraper_ports, time_wait = table
    scraper = {k: n for k, n in destinations.items()
               if k[0] in ("127.0.0.1:%d" % h.PROMETHEUS_PORT,
                           "[::1]:%d" % h.PROMETHEUS_PORT)}
    # Keep-alive: normally one; whatever ss shows is what the read saw.
    h.check(scraper, "no connection of Prometheus to collectd from a pool "
            "port: %r" % destinations)
    h.log("Prometheus scrapes localhost:%d over %r"
          % (h.PROMETHEUS_PORT, sorted(scraper)))
    ours = {k: n for k, n in destinations.items() if k not in scraper}
    h.check_equal(ours, {("127.0.0.1:9000", "127.0.0.1"): FIRST_CLIENTS,
                         ("127.0.0.1:9001", "127.0.0.1"): SECOND_CLIENTS},
                  "the test's in-pool sockets per destination in ss -tan")
    h.check_equal(sum(1 for s in h.ss_tcp() if s.state == "TIME-WAIT" and
                      s.peer_port == 9001), 1,
                  "the test's TIME_WAIT socket in ss -tan")
    h.check_equal(pool_ports, mix.tcp_pool_ports | scraper_ports,
                  "in-pool TCP ports in ss -tan: the test's clients and "
                  "Prometheus's connection")
    expected = {key("ephemeral_port_exporter_scrape_success"): 1}
    expected.update(pool_series("tcp", len(pool_ports)))
    expected.update(pool_series("udp", 1))
    h.check_equal({s.local_port for s in h.ss_udp()} & POOL,
                  {mix.udp_pool_port}, "in-pool UDP ports in ss -uan")
    for (remote, local), used in destinations.items():
        expected[key("ephemeral_ports_destination_used", destination=remote,
                     source=local)] = used
        expected[key("ephemeral_ports_destination_usage_ratio",
                     destination=remote, source=local)] = \
            h.format_ratio(used / TOTAL)
        expected[key("ephemeral_ports_destination_time_wait",
                     destination=remote, source=local)] = \
            time_wait.get((remote, local), 0)
    h.check_equal(time_wait, {("127.0.0.1:9001", "127.0.0.1"): 1},
                  "TIME_WAIT sockets per destination in ss -tan")
    for state, count in states.items():
        expected[key("ephemeral_ports_state_sockets", state=state)] = count
    tcp_open = {9000: 1, 9001: 1, WATCHED_OPEN: 1, WATCHED_CLOSED: 0,
                h.PROMETHEUS_PORT: 1, PROMETHEUS_WEB_PORT: 1}
    h.check_equal({p for p, v in tcp_open.items() if v},
                  h.ss_listening_ports(), "TCP listeners in ss -tan")
    udp_open = {UDP_OPEN: 1, WATCHED_OPEN: 0, WATCHED_CLOSED: 0}
    for protocol, ports in (("tcp", tcp_open), ("udp", udp_open)):
        for port, value in ports.items():
            expected[key("instance_open_ports", port=str(port),
                         protocol=protocol)] = value
    return expected


# --------------------------------------------------------------------------
# Checks on the live Prometheus


def check_established(mix, collectd):
    samples, table = stable_read(collectd)
    read_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
    expected = expected_series(mix, table)
    wait_ingested(read_ms)
    stored = {}
    for name in ESTABLISHED_NAMES:
        for labels, value in samples_at(name, read_ms).items():
            stored[(name, labels)] = value
    h.check_equal(sorted(stored.items()), sorted(expected.items()),
                  "series Prometheus stored for the read at %d ms" % read_ms)
    h.log("FIGURES: %d established series stored exactly, e.g. "
          "ephemeral_ports_used{protocol=\"tcp\"} %g: the test's client "
          "ports %s and Prometheus's scrape connection from %s"
          % (len(stored), expected[key("ephemeral_ports_used",
                                       protocol="tcp")],
             sorted(mix.tcp_pool_ports), sorted(table[3])))
    return samples, read_ms


def check_originals_gone(samples, read_ms):
    names = set(api("/api/v1/label/__name__/values"))
    h.check_equal(sorted(n for n in ESTABLISHED_NAMES if n not in names), [],
                  "established names missing from __name__ values")
    h.check_equal(sorted(n for n in names if n.startswith(
        ("collectd_ephemeral", "collectd_instance_open"))), [],
        "collectd_* originals of the plugin's series stored")
    label_names = set(api("/api/v1/labels"))
    h.check_equal(sorted(set(COLLECTD_LABELS) & label_names), [],
                  "collectd label names stored")
    h.check("type" in label_names, "cpu's type label not stored")
    # cpu's series keep their collectd name and labels, `type` included.
    cpu = {labels: value for (name, labels), (value, stamp) in samples.items()
           if name == "collectd_cpu_total"}
    h.check(any(("type", "idle") in labels for labels in cpu),
            "collectd_cpu_total{type=\"idle\"} from write_prometheus: %r"
            % cpu)
    cpu_stamp = max(stamp for (name, _), (_, stamp) in samples.items()
                    if name == "collectd_cpu_total")
    wait_for_cpu = time.monotonic() + 10
    while True:
        stored = samples_at("collectd_cpu_total", cpu_stamp)
        if stored or time.monotonic() > wait_for_cpu:
            break
        time.sleep(0.1)
    expected = {tuple(sorted(dict(labels, job="collectd").items())): value
                for labels, value in cpu.items()
                if samples[("collectd_cpu_total", labels)][1] == cpu_stamp}
    h.check_equal(stored, expected,
                  "collectd_cpu_total in Prometheus (unchanged)")


def prometheus_scenario():
    require_skip_conditions()
    block = h.plugin_block(['Protocol "tcp" "udp"',
                            "WatchPort %d %d" % (WATCHED_CLOSED, WATCHED_OPEN),
                            "ReportStates true"])
    started = time.monotonic()
    with h.TempDir() as tmp, \
            h.Collectd(tmp, block, extra_plugins=("cpu",),
                       extra_config="LoadPlugin cpu\n") as collectd:
        mix = Mix()
        try:
            mix.build()
            collectd.start_and_wait_ready()
            with start_prometheus(tmp) as prometheus:
                samples, read_ms = check_established(mix, collectd)
                check_originals_gone(samples, read_ms)
                check_dashboard()
                check_rules()
                check_prometheus_itself(prometheus)
        finally:
            mix.close()
    h.log("FIGURES: scenario body %.1f s" % (time.monotonic() - started))


if __name__ == "__main__":
    h.run_scenarios({"prometheus": prometheus_scenario},
                    port_range=PORT_RANGE, reserved_ports="")
