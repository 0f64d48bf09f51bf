"""The scene of the NAT tests (test_nat_*.py): ReportNat blocks, flows
through real nftables rules on loopback, and the checks that the NAT
series are exactly what conntrack -L and -S say.

What every scenario of those files shares:

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
"""

import socket
import time

import harness as h


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
