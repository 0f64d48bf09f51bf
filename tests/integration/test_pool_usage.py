"""Pool usage from a real socket table, with each Source.

In a namespace with port range 40000-40019 and reserved ports
40005,40010-40011 (pool of 17), the test builds a mix of sockets: IPv4 and
IPv6 listeners on 9000 with ephemeral clients connected to them, two
connections left in TIME_WAIT (one on a kernel-picked port, one bound to
40017 so that TIME_WAIT is the port's only holder), a listener inside the
range (40001), a listener on a reserved port (40005), a client bound to a
pool port (40015), an IPv4 and an IPv6 client both bound to 40013 (one port,
counted once) and a listener outside the range (8080).  After a fresh read it asserts
used/total/available/usage_ratio exactly, against both the ports the test
knows it holds and the distinct in-pool local ports `ss -tan` shows, and
that instance_open_ports is 1 for exactly the listening ports (including
collectd's own write_prometheus listener, 9103).

The scenario runs three times, with Source "netlink", "proc" and "auto",
each in a namespace and collectd of its own.
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
RESERVED = "40005,40010-40011"
POOL = h.pool_of(PORT_RANGE, RESERVED)
TOTAL = 17

SERVER_PORT = 9000
LISTENER_IN_RANGE = 40001
LISTENER_ON_RESERVED = 40005
BOUND_CLIENT_PORT = 40015
SHARED_V4_V6_PORT = 40013
TIME_WAIT_ONLY_PORT = 40017
LISTENER_OUT_OF_RANGE = 8080
CLIENTS_PER_FAMILY = 3

EXPECTED_OPEN_PORTS = {SERVER_PORT: 1, LISTENER_IN_RANGE: 1,
                       LISTENER_ON_RESERVED: 1, LISTENER_OUT_OF_RANGE: 1,
                       h.PROMETHEUS_PORT: 1}


class SocketMix:
    """The sockets of the scenario, and the local ports they hold."""

    def __init__(self):
        self.sockets = []
        self.time_wait_ports = set()

    def keep(self, sock):
        self.sockets.append(sock)
        return sock

    def connect(self, listening, family, bind_port=None):
        self.keep(h.client(SERVER_PORT, family, bind_port))
        self.keep(listening.accept()[0])

    def build(self):
        listen4 = self.keep(h.listener(SERVER_PORT, socket.AF_INET))
        listen6 = self.keep(h.listener(SERVER_PORT, socket.AF_INET6))
        self.keep(h.listener(LISTENER_IN_RANGE, socket.AF_INET6))
        self.keep(h.listener(LISTENER_ON_RESERVED, socket.AF_INET))
        self.keep(h.listener(LISTENER_OUT_OF_RANGE, socket.AF_INET))
        # Bind before the ephemeral clients so that the kernel cannot have
        # handed these ports out already (it never hands out a port that
        # was bound explicitly, nor one a listener holds).
        self.connect(listen4, socket.AF_INET, bind_port=BOUND_CLIENT_PORT)
        self.connect(listen4, socket.AF_INET, bind_port=SHARED_V4_V6_PORT)
        self.connect(listen6, socket.AF_INET6, bind_port=SHARED_V4_V6_PORT)
        self.make_time_wait(listen4, bind_port=TIME_WAIT_ONLY_PORT)
        for _ in range(CLIENTS_PER_FAMILY):
            self.connect(listen4, socket.AF_INET)
            self.connect(listen6, socket.AF_INET6)
        # Last: no later connect() can take this TIME_WAIT over.
        self.make_time_wait(listen4)

    def make_time_wait(self, listening, bind_port=None):
        self.time_wait_ports.add(
            h.make_time_wait(listening, SERVER_PORT, socket.AF_INET, bind_port))

    def pool_ports(self):
        held = {h.local_port(s) for s in self.sockets}
        held |= self.time_wait_ports
        return held & POOL

    def close(self):
        for sock in self.sockets:
            sock.close()


def check_socket_mix_with_ss(mix):
    table = h.ss_tcp()
    h.check_equal(len(mix.time_wait_ports), 2, "TIME_WAIT connections")
    h.check(mix.time_wait_ports <= POOL,
            "TIME_WAIT ports %r outside the pool" % mix.time_wait_ports)
    h.check(mix.time_wait_ports <= h.ss_ports_in_state("TIME-WAIT"),
            "TIME_WAIT ports %r no longer all in TIME-WAIT: %r"
            % (mix.time_wait_ports, table))
    h.check_equal([s.state for s in table
                   if s.local_port == TIME_WAIT_ONLY_PORT],
                  ["TIME-WAIT"], "ss sockets on port %d" % TIME_WAIT_ONLY_PORT)
    h.check_equal(sorted(s.local_address for s in table
                         if s.local_port == SHARED_V4_V6_PORT),
                  ["127.0.0.1", "[::1]"],
                  "ss local addresses on port %d" % SHARED_V4_V6_PORT)
    h.check_equal(h.ss_pool_ports(POOL), mix.pool_ports(),
                  "in-pool local ports: ss -tan vs the test's own sockets")
    for port in (LISTENER_IN_RANGE, BOUND_CLIENT_PORT, SHARED_V4_V6_PORT,
                 TIME_WAIT_ONLY_PORT):
        h.check(port in mix.pool_ports(), "pool port %d not held" % port)
    h.check(LISTENER_ON_RESERVED not in mix.pool_ports(),
            "reserved port counted")


def pool_usage_scenario(source):
    def scenario():
        with h.TempDir() as tmp:
            block = h.plugin_block(['Source "%s"' % source])
            with h.Collectd(tmp, block) as collectd:
                collectd.start_and_wait_ready()
                h.check_equal(h.current_pool(), POOL, "namespace pool")
                mix = SocketMix()
                try:
                    mix.build()
                    built_at = time.time()
                    samples = h.wait_for_fresh_read(collectd, built_at)
                    check_socket_mix_with_ss(mix)
                    expected_used = mix.pool_ports()
                    h.log("Source %s: pool ports held %s"
                          % (source, sorted(expected_used)))
                    h.check_pool_values(samples, len(expected_used), TOTAL,
                                        "Source %s" % source)
                    h.check_equal(len(h.ss_pool_ports(POOL)),
                                  int(h.value_of(
                                      samples,
                                      "collectd_ephemeral_ports_used")),
                                  "used vs ss -tan")
                    open_ports = h.open_port_values(samples)
                    h.check_equal(open_ports, EXPECTED_OPEN_PORTS,
                                  "Source %s: instance_open_ports" % source)
                    h.check_equal(open_ports,
                                  {p: 1 for p in h.ss_listening_ports()},
                                  "instance_open_ports vs ss listeners")
                    h.check_equal(
                        h.plugin_log_lines(collectd.log_lines(), "error"),
                        [], "plugin ERROR lines")
                finally:
                    mix.close()
    return scenario


if __name__ == "__main__":
    h.run_scenarios({source: pool_usage_scenario(source)
                     for source in ("netlink", "proc", "auto")},
                    port_range=PORT_RANGE, reserved_ports=RESERVED)
