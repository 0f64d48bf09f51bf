"""UDP: Protocol "tcp" "udp" and Protocol "udp".

Port range 40000-40019 (a pool of 20, none reserved).

Scenario "tcp_and_udp": Protocol "tcp" "udp", WatchPort 5399, IgnorePort
5355.  UDP sockets: unconnected on 127.0.0.1:5353 (outside the range),
[::1]:5354 and 127.0.0.1:5355, unconnected on the pool port 40002, one bound
to 40007 and then connected, and 3 IPv4 + 3 IPv6 sockets connected without
bind() (the kernel picks a pool port).  TCP: a listener on 9000 with 2
clients.  Asserts the UDP usage series (ephemeral_ports="udp") exactly,
equal to the distinct in-pool local ports of `ss -Huan`; the UDP open ports
(type="udp") exactly {5353, 5354, 40002} -> 1 and the watched 5399 -> 0,
equal to ss's UNCONN sockets minus the ignored 5355; and the TCP usage and
open-port series (no type label) unchanged: used 2 / ss -tan, {9000, 9103}
-> 1, 5399 -> 0.

Scenario "udp_only": Protocol "udp" alone with the same UDP sockets and the
same TCP listener and clients: the UDP series as above, and no TCP series at
all: no collectd_ephemeral_ports_* without ephemeral_ports="udp", no
instance_open_ports without type="udp" (not even write_prometheus's 9103),
no destination series; the per-cgroup series are UDP's too (type="udp"),
all under "unknown" (ip netns exec hides the cgroup2 mount), adding up to
the UDP pool's used.
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
WATCHED = 5399
IGNORED = 5355
UDP_PEER_PORT = 9999  # connect() on UDP sends nothing; no one listens here
CONNECTED_PER_FAMILY = 3
EXPECTED_UDP_OPEN = {5353: 1, 5354: 1, 40002: 1, WATCHED: 0}


def udp_socket(family, bind_port=None, peer_port=None):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if bind_port is not None:
        sock.bind((h.LOOPBACK[family], bind_port))
    if peer_port is not None:
        sock.connect((h.LOOPBACK[family], peer_port))
    return sock


class Mix:
    def __init__(self):
        self.udp = []
        self.tcp = []

    def build(self):
        # Explicit binds first, so that no autobind can have taken them.
        self.udp.append(udp_socket(socket.AF_INET, 5353))
        self.udp.append(udp_socket(socket.AF_INET6, 5354))
        self.udp.append(udp_socket(socket.AF_INET, IGNORED))
        self.udp.append(udp_socket(socket.AF_INET, 40002))
        self.udp.append(udp_socket(socket.AF_INET, 40007, UDP_PEER_PORT))
        for family in (socket.AF_INET, socket.AF_INET6):
            for _ in range(CONNECTED_PER_FAMILY):
                self.udp.append(udp_socket(family, None, UDP_PEER_PORT))
        listening = h.listener(9000)
        self.tcp.append(listening)
        for _ in range(2):
            self.tcp.append(h.client(9000))
            self.tcp.append(listening.accept()[0])

    def udp_pool_ports(self):
        return {h.local_port(s) for s in self.udp} & POOL

    def tcp_pool_ports(self):
        return {h.local_port(s) for s in self.tcp} & POOL

    def close(self):
        for sock in self.udp + self.tcp:
            sock.close()


def check_udp(samples, mix):
    ports = mix.udp_pool_ports()
    h.check({40002, 40007} <= ports, "40002/40007 not held: %r" % ports)
    h.check_equal(len(ports), 2 + 2 * CONNECTED_PER_FAMILY,
                  "distinct UDP pool ports the test holds")
    table = h.ss_udp()
    h.check_equal({s.local_port for s in table if s.local_port in POOL},
                  ports, "in-pool UDP local ports: ss -uan vs the test")
    h.check_equal(sum(1 for s in table if s.state == "ESTAB"),
                  1 + 2 * CONNECTED_PER_FAMILY, "connected UDP sockets in ss")
    used = len(ports)
    for name, expected in (("used", used), ("total", TOTAL),
                           ("available", TOTAL - used),
                           ("usage_ratio", h.format_ratio(used / TOTAL))):
        h.check_equal(h.value_of(samples, "collectd_ephemeral_ports_" + name,
                                 ephemeral_ports="udp"),
                      expected, "UDP " + name)
    open_ports = h.open_port_values_by_type(samples).get("udp", {})
    h.check_equal(open_ports, EXPECTED_UDP_OPEN, "UDP instance_open_ports")
    unconnected = {s.local_port for s in table if s.state == "UNCONN"}
    h.check(IGNORED in unconnected, "ignored UDP port %d not in ss" % IGNORED)
    unconnected.discard(IGNORED)
    h.check_equal({p for p, v in open_ports.items() if v == 1}, unconnected,
                  "open UDP ports vs ss UNCONN sockets")


def tcp_and_udp():
    block = h.plugin_block(['Protocol "tcp" "udp"', "WatchPort %d" % WATCHED,
                            "IgnorePort %d" % IGNORED])
    with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
        mix = Mix()
        try:
            mix.build()
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            check_udp(samples, mix)
            tcp_ports = mix.tcp_pool_ports()
            h.check_equal(len(tcp_ports), 2, "TCP pool ports")
            h.check_equal(h.ss_pool_ports(POOL), tcp_ports,
                          "in-pool TCP ports: ss -tan vs the test")
            h.check_pool_values(samples, len(tcp_ports), TOTAL, "TCP")
            tcp_open = h.open_port_values_by_type(samples).get("", {})
            h.check_equal(tcp_open, {9000: 1, h.PROMETHEUS_PORT: 1,
                                     WATCHED: 0}, "TCP instance_open_ports")
            h.check_equal({p for p, v in tcp_open.items() if v == 1},
                          h.ss_listening_ports(),
                          "open TCP ports vs ss listeners")
            h.check_equal(
                h.plugin_log_lines(collectd.log_lines(), "error"), [],
                "plugin ERROR lines")
        finally:
            mix.close()


def udp_only():
    block = h.plugin_block(['Protocol "udp"', "WatchPort %d" % WATCHED,
                            "IgnorePort %d" % IGNORED])
    with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
        mix = Mix()
        try:
            mix.build()
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            check_udp(samples, mix)
            h.check_equal(len(h.ss_pool_ports(POOL)), 2,
                          "in-pool TCP ports in ss -tan (not measured)")
            tcp_series = []
            udp_owners = {}
            for key in h.ephemeral_series(samples):
                name, labels = key
                label_map = dict(labels)
                if name == h.SCRAPE_SUCCESS or name in h.READ_COST:
                    continue
                if name in h.POOL_METRICS and \
                        label_map.get("ephemeral_ports") == "udp":
                    continue
                if name == h.OPEN_PORTS and label_map.get("type") == "udp":
                    continue
                if name == h.CGROUP_USED and label_map.get("type") == "udp":
                    udp_owners[label_map["ephemeral_ports_cgroup"]] = \
                        h.value_of(samples, name, **label_map)
                    continue
                tcp_series.append(h.format_key(key))
            h.check_equal(sorted(tcp_series), [],
                          "series other than UDP with Protocol \"udp\"")
            # ip netns exec hides the cgroup2 mount: every owner unknown.
            h.check_equal(udp_owners, {"unknown": h.value_of(
                samples, "collectd_ephemeral_ports_used",
                ephemeral_ports="udp")}, "UDP pool ports per cgroup")
            h.check_equal(
                h.plugin_log_lines(collectd.log_lines(), "error"), [],
                "plugin ERROR lines")
        finally:
            mix.close()


if __name__ == "__main__":
    h.run_scenarios({"tcp_and_udp": tcp_and_udp, "udp_only": udp_only},
                    port_range=PORT_RANGE, reserved_ports="")
