"""NAT ports from conntrack (issue 12): TopNatDestinations.

What every scenario here shares is in nat_scene.py's docstring.

  top_one          TopNatDestinations 1: the busiest key only; a key that
                   drops out is sent once more with its current value (3
                   while its flows live, 0 once conntrack holds none), and
                   not again.
  top_zero         TopNatDestinations 0: no ephemeral_ports_nat series, but
                   the conntrack counters and the NAT scrape_success."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from nat_scene import (  # noqa: E402
    Flows, PORT_RANGE, SNAT_RANGE, SNAT_RULES, check_fresh, check_part,
    check_socket_part, key, nat_block, range_option, range_size)


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


if __name__ == "__main__":
    h.run_scenarios({"top_one": top_one, "top_zero": top_zero},
                    port_range=PORT_RANGE, reserved_ports="")
