"""NAT ports from conntrack (issue 12): SNAT and masquerade pools, IPv4,
IPv6 and UDP, to exhaustion.

What every scenario here shares is in nat_scene.py's docstring.

  snat_exhaustion  `snat to 127.0.0.3:41000-41004`, NatPortRange
                   "41000-41004": five connections to 127.0.0.1:8080 take
                   the five ports, the sixth times out (tcp_syn_retries 1);
                   used 5, total 5, ratio 1; insert_failed and drop rise by
                   exactly the SYNs that found no port (an nft counter on
                   SYNs minus the five that got one), between two reads.
  masquerade       `masquerade to :43000-43004`: the source is lo's global
                   address 192.0.2.1 (masquerade takes a global-scope
                   address, which 127/8 cannot be; it lives on lo of the
                   scenario's own namespace, and the test only connects
                   to 127.0.0.1).
  ipv6             `snat to [::1]:45000-45004` for ::1 (the port alone is
                   translated; traffic stays on ::1): the key is
                   "[::1]:8080", type "::1".
  udp              UDP to 127.0.0.1:5353 through `snat to
                   127.0.0.3:42000-42004`, and one TCP flow to the same
                   address and port: two keys, "udp:127.0.0.1:5353" (five
                   senders, the sixth's datagrams are dropped, one
                   insert_failed each) and "127.0.0.1:5353"."""

import errno
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from nat_scene import (  # noqa: E402
    Flows, PORT_RANGE, SNAT_RANGE, SNAT_RULES, SNAT_SOURCE, check_nat,
    check_part, check_socket_part, key, nat_block, range_option, range_size,
    run_simple)


def snat_exhaustion():
    h.require_nat_tools()
    h.run(["sysctl", "-q", "-w", "net.ipv4.tcp_syn_retries=1"])
    h.nft_load(SNAT_RULES)
    flows = Flows()
    what = "snat_exhaustion"
    with h.TempDir() as tmp, \
            h.Collectd(tmp, nat_block([range_option(SNAT_RANGE)])) \
            as collectd:
        try:
            collectd.start_and_wait_ready()
            before = h.conntrack_stat_sums()
            samples = h.wait_for_fresh_read(collectd, time.time())
            h.check_equal(h.nat_values(samples), {},
                          "NAT series before any flow")
            check_part(samples, what="before any flow")

            listening = flows.listener(8080)
            for _ in range(range_size(SNAT_RANGE)):
                flows.tcp(listening, "127.0.0.1", 8080)
            started = time.monotonic()
            try:
                flows.tcp(listening, "127.0.0.1", 8080)
                h.fail("the sixth connection through a 5-port SNAT range "
                       "succeeded")
            except OSError as error:
                h.check_equal(error.errno, errno.ETIMEDOUT,
                              "the sixth connect()'s errno (%r)" % error)
            timed_out_after = time.monotonic() - started
            built_at = time.time()

            syns = h.nft_counters("ip", "nat", "syns")[0]
            after = h.conntrack_stat_sums()
            unanswered = syns - range_size(SNAT_RANGE)
            h.check(unanswered >= 1, "SYNs %d: none found no port" % syns)
            for field in ("insert_failed", "drop"):
                h.check_equal(after[field] - before[field], unanswered,
                              "conntrack -S %s delta (SYNs %d, connections "
                              "%d)" % (field, syns, range_size(SNAT_RANGE)))

            samples = h.wait_for_read_after(collectd, built_at)
            entries = check_nat(samples, SNAT_RANGE,
                                {key("127.0.0.1:8080"): 5}, built_at, what)
            h.check_equal(sorted(e.reply[3] for e in entries
                                 if e.source_translated()),
                          list(range(SNAT_RANGE[0], SNAT_RANGE[1] + 1)),
                          "translated ports in conntrack -L")
            part = h.nat_part_samples(samples)
            h.check_equal(part["insert_failed"][0],
                          float(before["insert_failed"] + unanswered),
                          "plugin insert_failed")
            check_socket_part(samples, what)
            h.log("FIGURES: 5 connections took 41000-41004, the sixth timed "
                  "out after %.1f s; %d SYNs, insert_failed %d -> %d, drop "
                  "%d -> %d; ephemeral_ports_nat used 5 total 5 ratio 1"
                  % (timed_out_after, syns, before["insert_failed"],
                     after["insert_failed"], before["drop"], after["drop"]))
        finally:
            flows.close()


# --------------------------------------------------------------------------
# masquerade, ipv6, udp


MASQUERADE_RANGE = (43000, 43004)
MASQUERADE_RULES = """
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8081 masquerade to :43000-43004
  }
}
"""


def masquerade():
    def build(flows):
        listening = flows.listener(8081)
        for _ in range(2):
            flows.tcp(listening, "127.0.0.1", 8081)

    # lo's global-scope address, which create_namespace adds.
    run_simple(MASQUERADE_RULES, [range_option(MASQUERADE_RANGE)],
               MASQUERADE_RANGE, build,
               {key("127.0.0.1:8081", "192.0.2.1"): 2}, "masquerade")


IPV6_RANGE = (45000, 45004)
IPV6_SOURCE = "::1"
IPV6_RULES = """
table ip6 nat {
  chain post {
    type nat hook postrouting priority 100;
    ip6 daddr ::1 tcp dport 8080 snat to [::1]:45000-45004
  }
}
"""


def ipv6():
    def build(flows):
        listening = flows.listener(8080, socket.AF_INET6)
        for _ in range(3):
            flows.tcp(listening, "::1", 8080, socket.AF_INET6)

    run_simple(IPV6_RULES, [range_option(IPV6_RANGE)], IPV6_RANGE, build,
               {key("[::1]:8080", IPV6_SOURCE): 3}, "ipv6")


UDP_RANGE = (42000, 42004)
UDP_RULES = """
table ip nat {
  chain datagrams {
    type filter hook output priority 0;
    ip daddr 127.0.0.1 udp dport 5353 counter
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 udp dport 5353 snat to 127.0.0.3:42000-42004
    ip daddr 127.0.0.1 tcp dport 5353 snat to 127.0.0.3:42000-42004
  }
}
"""
UDP_SENDERS = 6
LAST_SENDER_DATAGRAMS = 2


def udp():
    h.require_nat_tools()
    received = []
    refused = []

    def build(flows):
        server = flows.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        server.bind(("127.0.0.1", 5353))
        server.settimeout(1.0)
        for sender in range(UDP_SENDERS):
            sock = flows.keep(socket.socket(socket.AF_INET,
                                            socket.SOCK_DGRAM))
            count = LAST_SENDER_DATAGRAMS if sender == UDP_SENDERS - 1 else 1
            for _ in range(count):
                try:
                    sock.sendto(b"x", ("127.0.0.1", 5353))
                except OSError as error:
                    # A local sender learns of the drop: EPERM.
                    h.check_equal(error.errno, errno.EPERM,
                                  "sendto() errno (%r)" % error)
                    refused.append(sender)
        while len(received) < range_size(UDP_RANGE):
            received.append(server.recvfrom(16)[1])
        listening = flows.listener(5353)
        flows.tcp(listening, "127.0.0.1", 5353)

    h.nft_load(UDP_RULES)
    before = h.conntrack_stat_sums()
    samples, _ = run_simple(
        None, [range_option(UDP_RANGE)], UDP_RANGE, build,
        {key("udp:127.0.0.1:5353"): 5, key("127.0.0.1:5353"): 1}, "udp")
    h.check_equal(sorted(received),
                  [(SNAT_SOURCE, port)
                   for port in range(UDP_RANGE[0], UDP_RANGE[1] + 1)],
                  "sources of the datagrams that arrived")
    h.check_equal(refused, [UDP_SENDERS - 1] * LAST_SENDER_DATAGRAMS,
                  "senders whose datagrams were dropped")
    datagrams = h.nft_counters("ip", "nat", "datagrams")[0]
    after = h.conntrack_stat_sums()
    h.check_equal(datagrams, UDP_SENDERS - 1 + LAST_SENDER_DATAGRAMS,
                  "datagrams counted by nft")
    for field in ("insert_failed", "drop"):
        h.check_equal(after[field] - before[field],
                      datagrams - range_size(UDP_RANGE),
                      "conntrack -S %s delta" % field)
        h.check_equal(h.nat_part_samples(samples)[field][0],
                      float(after[field]), "plugin %s" % field)


if __name__ == "__main__":
    h.run_scenarios({"snat_exhaustion": snat_exhaustion,
                     "masquerade": masquerade, "ipv6": ipv6, "udp": udp},
                    port_range=PORT_RANGE, reserved_ports="")
