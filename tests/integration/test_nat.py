"""NAT ports from conntrack (issue 12): ephemeral_ports_nat, the conntrack
counters and the NAT part's scrape_success, with ReportNat true.

Every scenario loads real nftables rules into its own network namespace and
makes real flows through them, on loopback only (every flow goes to
127.0.0.1 or ::1; translated sources are local addresses of lo), then
compares what the plugin served through write_prometheus with `conntrack -L`
and `conntrack -S` run in the same namespace: per NAT key (the reply
tuple's source, i.e. the destination after any DNAT, and the translated
source address) used = the source-translated entries whose translated port
is in NatPortRange, total = the size of NatPortRange, usage_ratio =
used / total; insert_failed and drop = conntrack -S summed over the CPUs.
Sockets and flows are made before collectd starts unless the scenario
watches a change, so no read sees them half built.

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
                   insert_failed each) and "127.0.0.1:5353".
  not_counted      untranslated flows, an identity `snat to 127.0.0.1` and
                   a DNAT-only flow (output chain `dnat to 127.0.0.1:8083`),
                   all in conntrack -L, beside one SNAT flow: only the SNAT
                   flow's key is reported.
  dnat_snat        DNAT 127.0.0.5:9090 -> 127.0.0.1:8083, then SNAT: counted
                   under the post-DNAT destination, with a direct flow to
                   127.0.0.1:8083 in the same key.
  default_range    no NatPortRange (1024-65535, total 64512) and a rule
                   without ports: nf_nat keeps a unique source port and
                   moves a clashing one within its class (below 1024: into
                   600-1023, from 1024: into 1024-65535); only ports of the
                   range count.
  top_one          TopNatDestinations 1: the busiest key only; a key that
                   drops out is sent once more with its current value (3
                   while its flows live, 0 once conntrack holds none), and
                   not again.
  top_zero         TopNatDestinations 0: no ephemeral_ports_nat series, but
                   the conntrack counters and the NAT scrape_success.
  without_nat      the same flows read without ReportNat (the default): no
                   series of the NAT part; then with it: the socket-table
                   series and scrape_success equal to those without.
  other_namespace  NetNamespace with the rule and the flows in that
                   namespace: its NAT series under "<Hostname>:<name>", from
                   its own conntrack table; collectd's own has none.
  unprivileged     collectd as nobody with no capabilities: NAT
                   scrape_success 0, no NAT or conntrack series, one ERROR
                   "NAT: ... Operation not permitted" over several reads;
                   the socket-table series and scrape_success exact.
"""

import errno
import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import test_unprivileged as unprivileged  # noqa: E402

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
SNAT_SOURCE = "127.0.0.3"
DEFAULT_NAT_RANGE = (1024, 65535)
CONNECT_TIMEOUT_S = 30


def nat_block(options=()):
    return h.plugin_block(["ReportNat true"] + list(options))


def range_option(nat_range):
    return 'NatPortRange "%d-%d"' % nat_range


def range_size(nat_range):
    return nat_range[1] - nat_range[0] + 1


def key(destination, source=SNAT_SOURCE):
    return (destination, source)


class Flows:
    """Every socket a scenario makes, closed with RST at the end."""

    def __init__(self):
        self.all = []

    def keep(self, sock):
        self.all.append(sock)
        return sock

    def listener(self, port, family=socket.AF_INET):
        return self.keep(h.listener(port, family))

    def tcp(self, listening, address, port, family=socket.AF_INET,
            bind=None):
        """A connection to (address, port), which listening accepts (after
        any DNAT); returns the client."""
        sock = self.keep(socket.socket(family, socket.SOCK_STREAM))
        sock.settimeout(CONNECT_TIMEOUT_S)
        if bind is not None:
            sock.bind(bind)
        sock.connect((address, port))
        self.keep(listening.accept()[0])
        return sock

    def close(self, socks=None):
        for sock in list(self.all if socks is None else socks):
            if sock.type == socket.SOCK_STREAM:
                h.close_with_reset(sock)
            else:
                sock.close()
            self.all.remove(sock)


def check_part(samples, instance=h.HOSTNAME, prefix=(), what=""):
    """The NAT part read fine: scrape_success 1, and the conntrack
    counters equal to conntrack -S in that namespace; returns the sums."""
    part = h.nat_part_samples(samples, instance)
    h.check_equal(sorted(part), ["drop", "insert_failed", "scrape_success"],
                  "%s: NAT part series present" % what)
    h.check_equal(part["scrape_success"][0], 1.0,
                  "%s: NAT scrape_success" % what)
    sums = h.conntrack_stat_sums(prefix)
    for field in ("insert_failed", "drop"):
        h.check_equal(part[field][0], float(sums[field]),
                      "%s: %s against conntrack -S" % (what, field))
    return sums


def check_fresh(samples, since, what, instance=h.HOSTNAME, keys=None):
    """The NAT series (of keys, or all) and the NAT part were dispatched by
    a read that started after since."""
    threshold = (since + h.FRESH_READ_MARGIN_S) * 1000
    stamps = {"%s %s" % (k, f): ts
              for k, fields in h.nat_samples(samples, instance).items()
              if keys is None or k in keys
              for f, (_, ts) in fields.items()}
    stamps.update({f: ts for f, (_, ts) in
                   h.nat_part_samples(samples, instance).items()})
    stale = {name: ts for name, ts in stamps.items()
             if ts is None or ts <= threshold}
    h.check_equal(stale, {}, "%s: series not from a read after %.0f ms"
                  % (what, threshold))


def check_nat(samples, nat_range, expected, since, what, instance=h.HOSTNAME,
              prefix=()):
    """The NAT series are exactly expected ({key: used}), which is also what
    conntrack -L holds, and were dispatched after since; the part read
    fine.  Returns the conntrack entries."""
    entries = h.conntrack_entries(prefix)
    h.check_equal(h.conntrack_nat_usage(entries, nat_range), expected,
                  "%s: per NAT key from conntrack -L" % what)
    h.check_equal(h.nat_values(samples, instance),
                  h.expected_nat_values(expected, range_size(nat_range)),
                  "%s: ephemeral_ports_nat used/total/usage_ratio" % what)
    check_fresh(samples, since, what, instance)
    check_part(samples, instance, prefix, what)
    h.check_equal(translated_flows(h.conntrack_entries(prefix)),
                  translated_flows(entries),
                  "%s: translated entries of conntrack -L changed during the "
                  "check" % what)
    return entries


def translated_flows(entries):
    return sorted(repr(e) for e in entries if e.source_translated())


def check_socket_part(samples, what):
    """The pool series and scrape_success, exact against ss."""
    h.check_pool_values(samples, len(h.ss_pool_ports(POOL)), len(POOL), what)


def log_entries(entries, what):
    h.log("%s: conntrack -L, translated: %s" % (what, "; ".join(
        "%s %s:%d -> %s:%d as %s:%d" % (
            e.protocol, e.original[0], e.original[2], e.original[1],
            e.original[3], e.reply[1], e.reply[3])
        for e in entries if e.source_translated())))


def run_simple(rules, options, nat_range, build, expected, what):
    """Rules (None: loaded already), then the flows build(flows) makes,
    then collectd: one fresh read must show exactly expected."""
    h.require_nat_tools()
    if rules:
        h.nft_load(rules)
    flows = Flows()
    try:
        build(flows)
        built_at = time.time()
        with h.TempDir() as tmp, \
                h.Collectd(tmp, nat_block(options)) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_read_after(collectd, built_at)
            entries = check_nat(samples, nat_range, expected, built_at, what)
            check_socket_part(samples, what)
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "%s: plugin ERROR lines" % what)
            log_entries(entries, what)
            return samples, entries
    finally:
        flows.close()


# --------------------------------------------------------------------------
# snat_exhaustion

SNAT_RANGE = (41000, 41004)
SNAT_RULES = """
table ip nat {
  chain syns {
    type filter hook output priority 0;
    ip daddr 127.0.0.1 tcp dport 8080 tcp flags & (syn | ack) == syn counter
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8080 snat to 127.0.0.3:41000-41004
  }
}
"""


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


# --------------------------------------------------------------------------
# not_counted, dnat_snat

NOT_COUNTED_RULES = """
table ip nat {
  chain out {
    type nat hook output priority -100;
    ip daddr 127.0.0.5 tcp dport 9090 dnat to 127.0.0.1:8083
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8086 snat to 127.0.0.1
    ip daddr 127.0.0.1 tcp dport 8080 snat to 127.0.0.3:41000-41004
  }
}
"""


def not_counted():
    def build(flows):
        listeners = {port: flows.listener(port)
                     for port in (8080, 8083, 8085, 8086)}
        for _ in range(2):
            flows.tcp(listeners[8085], "127.0.0.1", 8085)  # no rule
            flows.tcp(listeners[8086], "127.0.0.1", 8086)  # identity SNAT
            flows.tcp(listeners[8083], "127.0.0.5", 9090)  # DNAT only
        flows.tcp(listeners[8080], "127.0.0.1", 8080)      # SNAT

    _, entries = run_simple(NOT_COUNTED_RULES, [range_option(SNAT_RANGE)],
                            SNAT_RANGE, build, {key("127.0.0.1:8080"): 1},
                            "not_counted")
    kinds = sorted((e.original[1], e.original[3], e.reply[0], e.reply[2],
                    e.source_translated()) for e in entries
                   if e.original[3] in (8080, 8085, 8086, 9090))
    h.check_equal(kinds, sorted(
        [("127.0.0.1", 8080, "127.0.0.1", 8080, True)]
        + [("127.0.0.1", 8085, "127.0.0.1", 8085, False)] * 2
        + [("127.0.0.1", 8086, "127.0.0.1", 8086, False)] * 2
        + [("127.0.0.5", 9090, "127.0.0.1", 8083, False)] * 2),
        "conntrack -L: (destination, reply source, translated) of the flows")


DNAT_SNAT_RANGE = (44000, 44004)
DNAT_SNAT_RULES = """
table ip nat {
  chain out {
    type nat hook output priority -100;
    ip daddr 127.0.0.5 tcp dport 9090 dnat to 127.0.0.1:8083
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8083 snat to 127.0.0.3:44000-44004
  }
}
"""


def dnat_snat():
    def build(flows):
        listening = flows.listener(8083)
        for _ in range(3):
            flows.tcp(listening, "127.0.0.5", 9090)
        flows.tcp(listening, "127.0.0.1", 8083)

    _, entries = run_simple(DNAT_SNAT_RULES, [range_option(DNAT_SNAT_RANGE)],
                            DNAT_SNAT_RANGE, build,
                            {key("127.0.0.1:8083"): 4}, "dnat_snat")
    h.check_equal(sorted("%s:%d" % e.original[1::2] for e in entries
                         if e.source_translated()),
                  ["127.0.0.1:8083"] + ["127.0.0.5:9090"] * 3,
                  "original destinations of the translated entries")


# --------------------------------------------------------------------------
# default_range

DEFAULT_RULES = """
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8080 snat to 127.0.0.3
  }
}
"""


def default_range():
    # Two clients from each fixed port, from 127.0.0.1 and 127.0.0.2: both
    # map to 127.0.0.3, so the second must move.
    fixed = [("127.0.0.1", 700), ("127.0.0.2", 700), ("127.0.0.1", 1500),
             ("127.0.0.2", 1500)]

    def build(flows):
        listening = flows.listener(8080)
        for source in fixed:
            flows.tcp(listening, "127.0.0.1", 8080, bind=source)
        for _ in range(2):
            flows.tcp(listening, "127.0.0.1", 8080)  # ports of 40000-40019

    _, entries = run_simple(DEFAULT_RULES, [], DEFAULT_NAT_RANGE, build,
                            {key("127.0.0.1:8080"): 4}, "default_range")
    translated = {(e.original[0], e.original[2]): e.reply[3]
                  for e in entries if e.source_translated()}
    h.check_equal(len(translated), 6, "translated entries")
    for address, port in fixed:
        moved = translated[(address, port)]
        if address == "127.0.0.1":
            h.check_equal(moved, port, "%s:%d kept its port" % (address, port))
            continue
        low, high = (600, 1023) if port < 1024 else (1024, 65535)
        h.check(low <= moved <= high and moved != port,
                "%s:%d clashed and moved to %d, expected %d-%d"
                % (address, port, moved, low, high))
    h.log("default_range: 127.0.0.2:700 moved to %d (600-1023, not counted),"
          " 127.0.0.2:1500 to %d (counted); total 64512"
          % (translated[("127.0.0.2", 700)], translated[("127.0.0.2", 1500)]))


# --------------------------------------------------------------------------
# top_one, top_zero

TOP_RULES = """
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8080 snat to 127.0.0.3:41000-41004
    ip daddr 127.0.0.1 tcp dport 8081 snat to 127.0.0.3:41000-41004
  }
}
"""
TOP_A = key("127.0.0.1:8080")
TOP_B = key("127.0.0.1:8081")


def check_top(samples, expected_top, dropped, since, what):
    """The NAT series dispatched after since are exactly the top
    ({key: used}), fresh, and the dropped ones ({key: used}) from the first
    read after since; returns {dropped key: its used sample}."""
    found = h.nat_samples(samples)
    threshold = since * 1000
    recent = {k: v for k, v in h.nat_values(samples).items()
              if found[k]["used"][1] > threshold}
    wanted = dict(expected_top)
    wanted.update(dropped)
    h.check_equal(recent,
                  h.expected_nat_values(wanted, range_size(SNAT_RANGE)),
                  "%s: NAT series dispatched after the change" % what)
    check_fresh(samples, since, what, keys=expected_top)
    success_ts = h.sample(samples, h.SCRAPE_SUCCESS)[1]
    result = {}
    for dropped_key in dropped:
        used = found[dropped_key]["used"]
        # Reads are an interval (1 s) apart: the read whose scrape_success
        # is served or the next one, caught dispatching.
        h.check(used[1] < success_ts + 1500,
                "%s: dropped %r stamped %r, latest read %r"
                % (what, dropped_key, used[1], success_ts))
        result[dropped_key] = used
    return result


def check_not_sent_again(collectd, dropped, what):
    last_ts = max(ts for _, ts in dropped.values())
    samples = h.wait_for_fresh_read(collectd, last_ts / 1000.0)
    found = h.nat_samples(samples)
    for dropped_key, first in dropped.items():
        later = found.get(dropped_key, {}).get("used")
        h.check(later is None or later == first,
                "%s: dropped %r dispatched again: %r, then %r"
                % (what, dropped_key, first, later))
    return samples


def wait_conntrack_without(port, what):
    deadline = time.monotonic() + 5
    while any(e.original[3] == port for e in h.conntrack_entries()):
        if time.monotonic() > deadline:
            h.fail("%s: conntrack -L still holds flows to %d" % (what, port))
        h.run(["conntrack", "-D", "-p", "tcp", "--orig-port-dst", str(port)],
              check_status=False)
        time.sleep(0.05)


def top_one():
    h.require_nat_tools()
    h.nft_load(TOP_RULES)
    options = [range_option(SNAT_RANGE), "TopNatDestinations 1"]
    flows = Flows()
    # A dropped key is dispatched once; collectd's Timeout must not expire
    # it before the scrape.
    with h.TempDir() as tmp, \
            h.Collectd(tmp, nat_block(options),
                       extra_config=h.NO_EXPIRY) as collectd:
        try:
            listen_a = flows.listener(8080)
            listen_b = flows.listener(8081)
            for _ in range(3):
                flows.tcp(listen_a, "127.0.0.1", 8080)
            to_b = [flows.tcp(listen_b, "127.0.0.1", 8081) for _ in range(2)]
            built_at = time.time()
            collectd.start_and_wait_ready()
            samples = h.wait_for_read_after(collectd, built_at)
            h.check_equal(h.conntrack_nat_usage(h.conntrack_entries(),
                                                SNAT_RANGE),
                          {TOP_A: 3, TOP_B: 2}, "conntrack -L per NAT key")
            h.check_equal(h.nat_values(samples),
                          h.expected_nat_values({TOP_A: 3}, 5),
                          "TopNatDestinations 1: the busiest only")
            check_fresh(samples, built_at, "A busiest")
            check_part(samples, what="A busiest")

            # B overtakes A: A is sent once more, with its 3.
            to_b += [flows.tcp(listen_b, "127.0.0.1", 8081) for _ in range(2)]
            changed_at = time.time()
            samples = h.wait_for_read_after(collectd, changed_at)
            h.check_equal(h.conntrack_nat_usage(h.conntrack_entries(),
                                                SNAT_RANGE),
                          {TOP_A: 3, TOP_B: 4}, "conntrack -L per NAT key")
            dropped = check_top(samples, {TOP_B: 4}, {TOP_A: 3}, changed_at,
                                "B overtook A")
            check_not_sent_again(collectd, dropped, "A")

            # B's flows end and leave conntrack: B is sent once with 0.
            flows.close(to_b + [s for s in flows.all
                                if s.getsockname()[1] == 8081
                                and s is not listen_b])
            wait_conntrack_without(8081, "after closing B's flows")
            changed_at = time.time()
            samples = h.wait_for_read_after(collectd, changed_at)
            h.check_equal(h.conntrack_nat_usage(h.conntrack_entries(),
                                                SNAT_RANGE),
                          {TOP_A: 3}, "conntrack -L per NAT key")
            dropped = check_top(samples, {TOP_A: 3}, {TOP_B: 0}, changed_at,
                                "B gone")
            check_not_sent_again(collectd, dropped, "B")
            check_part(samples, what="B gone")
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")
        finally:
            flows.close()


def top_zero():
    def build(flows):
        listening = flows.listener(8080)
        flows.tcp(listening, "127.0.0.1", 8080)

    h.require_nat_tools()
    h.nft_load(SNAT_RULES)
    flows = Flows()
    try:
        build(flows)
        built_at = time.time()
        options = [range_option(SNAT_RANGE), "TopNatDestinations 0"]
        with h.TempDir() as tmp, \
                h.Collectd(tmp, nat_block(options)) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_read_after(collectd, built_at)
            h.check_equal(h.conntrack_nat_usage(h.conntrack_entries(),
                                                SNAT_RANGE),
                          {key("127.0.0.1:8080"): 1},
                          "conntrack -L per NAT key")
            h.check_equal(sorted(h.format_key(k) for k in samples
                                 if k[0] in h.NAT_METRICS), [],
                          "ephemeral_ports_nat series with "
                          "TopNatDestinations 0")
            check_fresh(samples, built_at, "top_zero")
            check_part(samples, what="top_zero")
            check_socket_part(samples, "top_zero")
    finally:
        flows.close()


# --------------------------------------------------------------------------
# without_nat


def socket_part(samples):
    """{series: value} of everything but the NAT part."""
    nat_part = set(h.NAT_METRICS) | set(h.CONNTRACK_COUNTERS.values())
    return {h.format_key(k): value for k, (value, _) in samples.items()
            if k[0] not in nat_part and
            ("ephemeral_port_exporter", "nat") not in k[1] and
            k in h.ephemeral_series(samples)}


def without_nat():
    """The same rule and flows read without ReportNat, then with it: no
    series of the NAT part without it, and the socket-table series equal
    in both runs."""
    h.require_nat_tools()
    h.nft_load(SNAT_RULES)
    flows = Flows()
    parts = {}
    try:
        listening = flows.listener(8080)
        for _ in range(3):
            flows.tcp(listening, "127.0.0.1", 8080)
        built_at = time.time()
        for name, block in (("without", h.plugin_block([])),
                            ("with", nat_block([range_option(SNAT_RANGE)]))):
            with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_read_after(collectd, built_at)
                check_socket_part(samples, "%s ReportNat" % name)
                parts[name] = socket_part(samples)
                if name == "without":
                    h.check_equal(
                        sorted(h.format_key(k) for k in samples
                               if k in h.ephemeral_series(samples)
                               and h.format_key(k) not in parts[name]),
                        [], "NAT part series without ReportNat")
                else:
                    check_nat(samples, SNAT_RANGE, {key("127.0.0.1:8080"): 3},
                              built_at, "with ReportNat")
        h.check_equal(parts["with"], parts["without"],
                      "socket-table series with ReportNat against without")
        h.log("without_nat: %d socket-table series, equal with and without "
              "ReportNat" % len(parts["with"]))
    finally:
        flows.close()


# --------------------------------------------------------------------------
# other_namespace

# Run in the other namespace: a listener on 8080 and N connections to it,
# held until stdin closes.
HOLDER = """\
import socket, sys
listening = socket.socket()
listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listening.bind(("127.0.0.1", 8080))
listening.listen(16)
held = [listening]
for _ in range(%d):
    held.append(socket.create_connection(("127.0.0.1", 8080)))
    held.append(listening.accept()[0])
print("ready", flush=True)
sys.stdin.read()
"""
OTHER_FLOWS = 2


def other_namespace():
    h.require_nat_tools()
    name = "ept-nat-%d" % os.getpid()
    in_other = ["ip", "netns", "exec", name]
    host = "%s:%s" % (h.HOSTNAME, name)
    holder = None
    try:
        h.create_namespace(name, PORT_RANGE, "")
        h.nft_load(SNAT_RULES, in_other)
        holder = subprocess.Popen(in_other + [h.PYTHON, "-c",
                                              HOLDER % OTHER_FLOWS],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        h.check_equal(holder.stdout.readline(), "ready\n",
                      "the flow holder in %s" % name)
        built_at = time.time()
        options = [range_option(SNAT_RANGE),
                   'NetNamespace "/run/netns/%s"' % name]
        with h.TempDir() as tmp, \
                h.Collectd(tmp, nat_block(options)) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_read_after(collectd, built_at)
            # The other namespace's read is dispatched with the same read.
            check_nat(samples, SNAT_RANGE,
                      {key("127.0.0.1:8080"): OTHER_FLOWS}, built_at,
                      "namespace %s" % name, instance=host, prefix=in_other)
            check_nat(samples, SNAT_RANGE, {}, built_at,
                      "collectd's own namespace")
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")
    finally:
        if holder is not None:
            holder.stdin.close()
            holder.wait(timeout=10)
        h.delete_namespace(name)


# --------------------------------------------------------------------------
# unprivileged

UNPRIVILEGED_READS = 3


def unprivileged_nat():
    h.require_nat_tools()
    prefix, uid, gid = unprivileged.drop_privileges_prefix()
    h.nft_load(SNAT_RULES)
    flows = Flows()
    try:
        listening = flows.listener(8080)
        for _ in range(2):
            flows.tcp(listening, "127.0.0.1", 8080)
        server = flows.listener(9000)
        for _ in range(3):
            flows.tcp(server, "127.0.0.1", 9000)
        built_at = time.time()
        with h.TempDir() as tmp:
            with h.Collectd(tmp, nat_block([range_option(SNAT_RANGE)]),
                            command_prefix=prefix) as collectd:
                unprivileged.hand_over(tmp.path, uid, gid)
                collectd.start_and_wait_ready()
                unprivileged.check_unprivileged(collectd.process.pid, uid,
                                                gid)
                samples = h.wait_for_read_after(collectd, built_at)
                for _ in range(UNPRIVILEGED_READS - 2):
                    samples = h.wait_for_read_after(
                        collectd,
                        h.sample(samples, h.SCRAPE_SUCCESS)[1] / 1000.0)
                h.check_equal(
                    h.conntrack_nat_usage(h.conntrack_entries(), SNAT_RANGE),
                    {key("127.0.0.1:8080"): 2},
                    "conntrack -L per NAT key (as root)")
                part = h.nat_part_samples(samples)
                h.check_equal({f: v for f, (v, _) in part.items()},
                              {"scrape_success": 0.0},
                              "NAT part series as nobody")
                check_fresh(samples, built_at, "as nobody")
                h.check_equal(h.nat_values(samples), {},
                              "NAT series as nobody")
                check_socket_part(samples, "as nobody")
                h.check_equal(h.open_port_values(samples),
                              {8080: 1, 9000: 1, h.PROMETHEUS_PORT: 1},
                              "instance_open_ports as nobody")
                lines = collectd.log_lines()
                errors = h.plugin_log_lines(lines, "error")
                h.check_equal(len(errors), 1,
                              "plugin ERROR lines over %d reads: %r"
                              % (UNPRIVILEGED_READS, errors))
                h.check("ephemeral_ports plugin: NAT: " in errors[0] and
                        "Operation not permitted" in errors[0],
                        "the ERROR names NAT and EPERM: %r" % errors[0])
                h.check_equal(h.plugin_log_lines(lines, "warning"), [],
                              "plugin WARNING lines")
                h.log("as nobody: %s" % errors[0].strip())
    finally:
        flows.close()


if __name__ == "__main__":
    h.run_scenarios({"snat_exhaustion": snat_exhaustion,
                     "masquerade": masquerade, "ipv6": ipv6, "udp": udp,
                     "not_counted": not_counted, "dnat_snat": dnat_snat,
                     "default_range": default_range, "top_one": top_one,
                     "top_zero": top_zero, "without_nat": without_nat,
                     "other_namespace": other_namespace,
                     "unprivileged": unprivileged_nat},
                    port_range=PORT_RANGE, reserved_ports="")
