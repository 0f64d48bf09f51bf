"""The shipped relabelling and alert rules on every identity of the metric
contract, through the real write_prometheus and the real Prometheus.

collectd runs without the plugin: a python plugin module (collectd's stock
python.so) dispatches, every interval, one value list per identity that
DESIGN.md's contract gives the plugin, with fixed values: the per-cgroup,
NAT, conntrack and NAT-part scrape_success series (issues 11 and 12) and
the read's cost (ephemeral_port_exporter_read seconds and cpu_seconds,
issue 19) for collectd's own host, and every series, old and new, for
another network namespace, host "eptest:ns:1-a" (issue 10; a namespace
name may hold ":" and "-").  The shipped types.db, plus the contract's
lines for types it does not have yet, is the TypesDB.  write_prometheus
serves them under its own naming; Prometheus (shipped prometheus.yml and
rules, intervals 1 s) must store exactly the established series with their
values, no collectd_* original and no collectd label; and the alerts that
the values call for must be pending, with the namespace in their labels
and annotations, the pool alert naming the namespace's top cgroup.
(collectd escapes "/" in identifiers: a cgroup path arrives without its
slashes.)

This checks the Prometheus side of the contract for parts whose plugin code
is not on this branch; the live scenarios (test_prometheus.py,
test_prometheus_netns.py) check it with the plugin's own values.
"""

import json
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tests/: harness/
import harness as h  # noqa: E402
import prometheus_scene as prom  # noqa: E402

OWN = h.HOSTNAME
NETNS = "ns:1-a"
OTHER = "%s:%s" % (h.HOSTNAME, NETNS)  # the host of that namespace

# Contract types that the shipped types.db may not have yet.
CONTRACT_TYPES = {
    "ephemeral_ports_cgroup": "used:GAUGE:0:U",
    "ephemeral_ports_nat": "used:GAUGE:0:U, total:GAUGE:0:U, "
                           "usage_ratio:GAUGE:0:U",
    "ephemeral_ports_conntrack": "insert_failed:DERIVE:0:U, "
                                 "drop:DERIVE:0:U",
}

# (host, plugin = type, plugin_instance, type_instance, {ds: value}) and
# the labels Prometheus stores it with.  collectd's plugin_dispatch_values
# escapes "/" in every identifier (escape_slashes): "/" alone becomes
# "root", a leading "/" goes, every other "/" becomes "_"; the stored
# cgroup and NAT labels show that.
IDENTITIES = (
    # Issue 11, collectd's own namespace.
    ((OWN, "ephemeral_ports_cgroup", "/system.slice/nginx.service", "",
      {"used": 5}),
     {"cgroup": "system.slice_nginx.service", "protocol": "tcp"}),
    ((OWN, "ephemeral_ports_cgroup",
      "/user.slice/user-1000.slice/session-2.scope", "udp", {"used": 2}),
     {"cgroup": "user.slice_user-1000.slice_session-2.scope",
      "protocol": "udp"}),
    # The root group.
    ((OWN, "ephemeral_ports_cgroup", "/", "", {"used": 1}),
     {"cgroup": "root", "protocol": "tcp"}),
    # Issue 12: TCP, and UDP with "udp:" in front of the destination (and
    # "udp/", which collectd turns into "udp_").
    ((OWN, "ephemeral_ports_nat", "203.0.113.7:443", "198.51.100.2",
      {"used": 16128, "total": 64512, "usage_ratio": 0.25}),
     {"destination": "203.0.113.7:443", "nat_source": "198.51.100.2",
      "protocol": "tcp"}),
    ((OWN, "ephemeral_ports_nat", "udp/[2001:db8::7]:53", "2001:db8::2",
      {"used": 5, "total": 5, "usage_ratio": 1}),
     {"destination": "[2001:db8::7]:53", "nat_source": "2001:db8::2",
      "protocol": "udp"}),
    ((OWN, "ephemeral_ports_conntrack", "", "",
      {"insert_failed": 7, "drop": 9}), {}),
    ((OWN, "ephemeral_port_exporter", "nat", "", {"scrape_success": 1}),
     {"part": "nat"}),
    # Issue 10: every series of another namespace.
    ((OTHER, "ephemeral_ports", "", "",
      {"used": 9, "total": 10, "available": 1, "usage_ratio": 0.9}),
     {"netns": NETNS, "protocol": "tcp"}),
    ((OTHER, "ephemeral_ports", "udp", "",
      {"used": 1, "total": 10, "available": 9, "usage_ratio": 0.1}),
     {"netns": NETNS, "protocol": "udp"}),
    ((OTHER, "ephemeral_port_exporter", "", "", {"scrape_success": 1}),
     {"netns": NETNS}),
    ((OTHER, "ephemeral_port_exporter", "nat", "", {"scrape_success": 0}),
     {"netns": NETNS, "part": "nat"}),
    ((OTHER, "instance_open", "22", "", {"ports": 1}),
     {"netns": NETNS, "port": "22", "protocol": "tcp"}),
    ((OTHER, "instance_open", "53", "udp", {"ports": 0}),
     {"netns": NETNS, "port": "53", "protocol": "udp"}),
    ((OTHER, "ephemeral_ports_destination", "203.0.113.7:443", "10.0.0.2",
      {"used": 9, "usage_ratio": 0.9, "time_wait": 3}),
     {"netns": NETNS, "destination": "203.0.113.7:443",
      "source": "10.0.0.2"}),
    ((OTHER, "ephemeral_ports_state", "", "time_wait", {"sockets": 4}),
     {"netns": NETNS, "state": "time_wait"}),
    ((OTHER, "ephemeral_ports_cgroup", "/kubepods/burstable/pod1234/app", "",
      {"used": 9}),
     {"netns": NETNS, "cgroup": "kubepods_burstable_pod1234_app",
      "protocol": "tcp"}),
    ((OTHER, "ephemeral_ports_cgroup", "/kubepods/burstable/pod1234/side",
      "", {"used": 1}),
     {"netns": NETNS, "cgroup": "kubepods_burstable_pod1234_side",
      "protocol": "tcp"}),
    ((OWN, "ephemeral_ports_nat", "udp:203.0.113.7:53", "198.51.100.2",
      {"used": 3, "total": 64512, "usage_ratio": 3 / 64512}),
     {"destination": "203.0.113.7:53", "nat_source": "198.51.100.2",
      "protocol": "udp"}),
    ((OTHER, "ephemeral_ports_nat", "203.0.113.9:80", "198.51.100.3",
      {"used": 2, "total": 64512, "usage_ratio": 2 / 64512}),
     {"netns": NETNS, "destination": "203.0.113.9:80",
      "nat_source": "198.51.100.3", "protocol": "tcp"}),
    ((OTHER, "ephemeral_ports_conntrack", "", "",
      {"insert_failed": 1, "drop": 2}), {"netns": NETNS}),
    # Issue 19: the read's cost, under collectd's own host only, no
    # plugin or type instance: the stored series have instance and job
    # alone.
    ((OWN, "ephemeral_port_exporter_read", "", "",
      {"seconds": 0.25, "cpu_seconds": 0.125}), {}),
)

# The alerts these values call for, pending (every `for` is longer than
# the test): (alertname, labels besides alertname, job, instance and
# severity) -> summary.
PENDING = {
    ("EphemeralPortsPoolHigh", (("netns", NETNS), ("protocol", "tcp"))):
        "eptest (netns ns:1-a): tcp ephemeral port pool 90% used",
    ("EphemeralPortsNatHigh", (("destination", "[2001:db8::7]:53"),
                               ("nat_source", "2001:db8::2"),
                               ("protocol", "udp"))):
        "eptest: NAT ports to [2001:db8::7]:53 100% used",
    ("EphemeralPortsNatReadFailing", (("netns", NETNS), ("part", "nat"))):
        "eptest (netns ns:1-a): ephemeral_ports cannot read the conntrack "
        "table",
    ("WatchedPortClosed", (("netns", NETNS), ("port", "53"),
                           ("protocol", "udp"))):
        "eptest (netns ns:1-a): nothing listens on udp port 53",
}
TOP_CGROUP_SENTENCE = ("The cgroup holding the most is "
                       "kubepods_burstable_pod1234_app (9 ports).")

MODULE = '''\
import collectd

IDENTITIES = %s


def read():
    for host, plugin, plugin_instance, type_instance, values in IDENTITIES:
        collectd.Values(host=host, plugin=plugin,
                        plugin_instance=plugin_instance, type=plugin,
                        type_instance=type_instance).dispatch(values=values)


collectd.register_read(read)
'''


def established(name, ds):
    """The established name of data source ds of type name (write_prometheus
    adds _total to DERIVE, the relabel drops collectd_)."""
    if name == "instance_open":
        return "instance_open_ports"
    suffix = "_total" if name == "ephemeral_ports_conntrack" else ""
    return "%s_%s%s" % (name, ds, suffix)


def write_types(tmp):
    """The shipped types.db, and the contract's lines for types it has
    not; returns their paths and the data source order of every type."""
    shipped = os.environ.get("TYPES_DB")
    if not shipped or not os.path.isfile(shipped):
        raise h.TestSkip("TYPES_DB (the shipped ephemeral_ports.types.db) "
                         "is not set")
    specs = {}
    for line in h.read_text(shipped).splitlines():
        if line.strip() and not line.startswith("#"):
            name, spec = line.split(None, 1)
            specs[name] = spec
    extra = {n: s for n, s in CONTRACT_TYPES.items() if n not in specs}
    path = tmp.join("contract.types.db")
    with open(path, "w") as handle:
        handle.writelines("%s\t%s\n" % item for item in extra.items())
    specs.update(extra)
    order = {name: [ds.split(":")[0].strip() for ds in spec.split(",")]
             for name, spec in specs.items()}
    return [shipped, path], order


def collectd_config(tmp, types_paths, order):
    module_dir = tmp.join("python")
    os.makedirs(module_dir)
    identities = [[host, plugin, pinst, tinst,
                   [values[ds] for ds in order[plugin]]]
                  for (host, plugin, pinst, tinst, values), _ in IDENTITIES]
    with open(os.path.join(module_dir, "contract_series.py"), "w") as handle:
        handle.write(MODULE % json.dumps(identities, indent=4))
    return (h.collectd_base_config(tmp, plugin_dir=tmp.join("plugins"))
            + "".join('TypesDB "%s"\n' % path for path in types_paths)
            + "LoadPlugin python\n<Plugin python>\n"
            + '  ModulePath "%s"\n  Import "contract_series"\n</Plugin>\n'
            % module_dir
            + "LoadPlugin write_prometheus\n<Plugin write_prometheus>\n"
            + '  Port "%d"\n</Plugin>\n' % h.PROMETHEUS_PORT)


class ContractCollectd(h.Collectd):
    """collectd with the python plugin and write_prometheus, not the
    ephemeral_ports plugin."""

    def __init__(self, tmp):
        h.copy_plugins(tmp.join("plugins"), ("python",))
        types_paths, order = write_types(tmp)
        self.setup(tmp, collectd_config(tmp, types_paths, order))


def expected_series():
    expected = {}
    for (host, plugin, _, _, values), labels in IDENTITIES:
        for ds, value in values.items():
            key = dict(labels, instance=h.HOSTNAME, job="collectd")
            expected[(established(plugin, ds),
                      tuple(sorted(key.items())))] = h.format_ratio(value)
    return expected


def stored_series():
    """Every series of an established name Prometheus holds now."""
    names = sorted({name for name, _ in expected_series()})
    return prom.stored_now('{__name__=~"%s"}' % "|".join(names))


def check_stored():
    expected = expected_series()
    prom.wait_until("series Prometheus stored", stored_series, expected)
    names = set(prom.api("/api/v1/label/__name__/values"))
    # Nothing but these value lists goes through write_prometheus here.
    h.check_equal(sorted(n for n in names if n.startswith("collectd_")), [],
                  "collectd_* originals stored")
    h.check_equal(sorted(set(prom.COLLECTD_LABELS)
                         & set(prom.api("/api/v1/labels"))), [],
                  "collectd label names stored")
    h.check_equal(prom.api("/api/v1/label/netns/values"), [NETNS],
                  "netns label values")
    h.check_equal(prom.api("/api/v1/label/instance/values",
                           **{"match[]": '{job="collectd",__name__!="up",'
                                         '__name__!~"scrape_.*"}'}),
                  [h.HOSTNAME], "instance label values of collectd's series")
    h.log("FIGURES: %d series of %d identities stored exactly, e.g. "
          "instance=%r netns=%r from host %r"
          % (len(expected), len(IDENTITIES), h.HOSTNAME, NETNS, OTHER))


def pending_alerts():
    found = {}
    for alert in prom.api("/api/v1/alerts")["alerts"]:
        labels = dict(alert["labels"])
        name = labels.pop("alertname")
        for common in ("instance", "job", "severity"):
            labels.pop(common, None)
        found[(name, tuple(sorted(labels.items())))] = (
            alert["state"], alert["annotations"]["summary"],
            alert["annotations"]["description"])
    return found


def check_alerts():
    expected = {key: summary for key, summary in PENDING.items()}
    got = prom.wait_until("pending alerts and their summaries",
                       lambda: {k: v[1] for k, v in pending_alerts().items()
                                if v[0] == "pending"}, expected)
    description = pending_alerts()[("EphemeralPortsPoolHigh",
                                    (("netns", NETNS),
                                     ("protocol", "tcp")))][2]
    h.check(re.search(r"^eptest \(network namespace ns:1-a\) has used ",
                      description) and
            description.endswith(" " + TOP_CGROUP_SENTENCE),
            "EphemeralPortsPoolHigh description names the namespace and "
            "its top cgroup: %r" % description)
    h.log("FIGURES: %d alerts pending as expected: %s"
          % (len(got), ", ".join(sorted(k[0] for k in got))))


def scenario():
    prom.require_skip_conditions()
    if not os.path.isfile(os.path.join(h.stock_plugin_dir(), "python.so")):
        raise h.TestSkip("collectd's python.so not found")
    with h.TempDir() as tmp, ContractCollectd(tmp) as collectd:
        collectd.start_and_wait_ready()
        with prom.start_prometheus(tmp) as prometheus:
            check_stored()
            check_alerts()
            prom.check_prometheus_itself(prometheus)


if __name__ == "__main__":
    h.run_scenarios({"contract": scenario})
