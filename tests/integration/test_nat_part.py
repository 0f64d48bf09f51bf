"""NAT ports from conntrack (issue 12): the NAT part beside the socket
table, in another namespace, and without privileges.

What every scenario here shares is in nat_scene.py's docstring.

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
  empty_table      ReportNat in a namespace whose conntrack table is empty
                   (nf_conntrack_count 0): over 3 reads the fault shim
                   (preloaded, logging every ctnetlink request) sees the
                   statistics asked for at each read and no table dump;
                   NAT scrape_success 1, the counters equal conntrack -S,
                   no NAT key.  Then the rule and 3 flows: the next reads
                   dump the table again and report the flows' key."""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import test_unprivileged as unprivileged  # noqa: E402
from faults_scene import NetlinkFault  # noqa: E402
from nat_scene import (  # noqa: E402
    Flows, PORT_RANGE, SNAT_RANGE, SNAT_RULES, check_fresh, check_nat,
    check_socket_part, key, nat_block, range_option)


def socket_part(samples):
    """{series: value} of everything but the NAT part and the read's cost
    (a timing: not the same twice)."""
    nat_part = (set(h.NAT_METRICS) | set(h.CONNTRACK_COUNTERS.values())
                | set(h.READ_COST))
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
                               and k[0] not in h.READ_COST
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


# --------------------------------------------------------------------------
# empty_table

EMPTY_READS = 3


def ctnetlink_requests(fault, since):
    """{"ct_dump": n, "ct_stats": n} the shim logged after since."""
    found = {"ct_dump": 0, "ct_stats": 0}
    for name, stamp in fault.events():
        if name in found and stamp > since:
            found[name] += 1
    return found


def conntrack_count():
    return int(h.read_text("/proc/sys/net/netfilter/nf_conntrack_count"))


def empty_table():
    h.require_nat_tools()
    h.check_equal(conntrack_count(), 0, "nf_conntrack_count of the new "
                  "namespace")
    flows = Flows()
    try:
        with h.TempDir() as tmp:
            fault = NetlinkFault(tmp)
            block = nat_block([range_option(SNAT_RANGE)])
            with h.Collectd(tmp, block, extra_env=fault.env()) as collectd:
                collectd.start_and_wait_ready()
                since = time.time()
                samples = h.wait_for_read_after(collectd, since)
                for _ in range(EMPTY_READS - 1):
                    samples = h.wait_for_read_after(
                        collectd,
                        h.sample(samples, h.SCRAPE_SUCCESS)[1] / 1000.0)
                h.check_equal(conntrack_count(), 0, "nf_conntrack_count")
                check_nat(samples, SNAT_RANGE, {}, since, "empty table")
                requests = ctnetlink_requests(fault, since)
                h.check_equal(requests["ct_dump"], 0,
                              "ctnetlink dumps of the empty table")
                h.check(requests["ct_stats"] >= EMPTY_READS,
                        "ctnetlink statistics requests over %d reads: %r"
                        % (EMPTY_READS, requests))

                h.nft_load(SNAT_RULES)
                listening = flows.listener(8080)
                for _ in range(3):
                    flows.tcp(listening, "127.0.0.1", 8080)
                built_at = time.time()
                samples = h.wait_for_read_after(collectd, built_at)
                h.check(conntrack_count() > 0, "nf_conntrack_count with "
                        "the flows")
                check_nat(samples, SNAT_RANGE, {key("127.0.0.1:8080"): 3},
                          built_at, "with the flows")
                after = ctnetlink_requests(fault, built_at)
                h.check(after["ct_dump"] >= 1,
                        "ctnetlink dumps once the table has entries: %r"
                        % after)
                h.log("FIGURES: empty conntrack table: %d reads, %d "
                      "statistics requests, 0 dumps; with 3 flows: %d dumps"
                      % (EMPTY_READS, requests["ct_stats"], after["ct_dump"]))
    finally:
        flows.close()


if __name__ == "__main__":
    h.run_scenarios({"without_nat": without_nat,
                     "other_namespace": other_namespace,
                     "unprivileged": unprivileged_nat,
                     "empty_table": empty_table},
                    port_range=PORT_RANGE, reserved_ports="")
