"""The real Prometheus with the shipped files, and collectd measuring one
network namespace besides its own (issue 10).

In the test's namespace (port range 40000-40019) the test makes one more,
named "ept:pn-<pid>" (a name may hold ":" and "-"), with port range
41000-41009 (a pool of 10) and, held by a process inside it, a listener on
127.0.0.1:9000 with 9 clients: 90% of its pool.  collectd runs the plugin
with `NetNamespace "/run/netns/<that name>"` and ReportStates true, and
write_prometheus; Prometheus runs the shipped prometheus.yml and rules
(intervals 1 s, as in test_prometheus.py).

Prometheus must store that namespace's series under instance="eptest"
(collectd's Hostname) and netns="<name>", each established series exactly
as ss inside that namespace gives it (pool, scrape_success, open port,
destination, states), while collectd's own namespace keeps its series
without a netns label, with its own pool of 20; no series of the plugin
keeps the host "<Hostname>:<name>" as instance; the dashboard's netns
variable lists the name, and every panel has data with it selected and
with All; the only alert pending is EphemeralPortsPoolHigh for that
namespace, naming it.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tests/: harness/
import harness as h  # noqa: E402
import prometheus_scene as prom  # noqa: E402

OWN_RANGE = (40000, 40019)
OWN_TOTAL = 20
OTHER_RANGE = (41000, 41009)
OTHER_POOL = h.pool_of(OTHER_RANGE, "")
OTHER_TOTAL = 10
CLIENTS = 9  # 90%: above EphemeralPortsPoolHigh's 80%
SERVER_PORT = 9000

# Run inside the other namespace: the listener and its clients, held until
# stdin closes.
HOLDER = """\
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", %d))
server.listen(64)
held = [server]
for _ in range(%d):
    client = socket.create_connection(("127.0.0.1", %d))
    held += [client, server.accept()[0]]
print("ready", flush=True)
sys.stdin.read()
""" % (SERVER_PORT, CLIENTS, SERVER_PORT)

# Run inside the other namespace: what ss shows there, with the harness's
# own readers (the ones test_prometheus.py compares against).
SS_READER = """\
import json, sys
sys.path.insert(0, %r)
import harness as h
pool = h.pool_of(%r, "")
print(json.dumps({"pool_ports": sorted(h.ss_pool_ports(pool)),
                  "destinations": [[r, l, n] for (r, l), n in
                                   h.ss_destination_counts(pool).items()],
                  "time_wait": [[r, l, n] for (r, l), n in
                                h.ss_destination_counts(
                                    pool, "TIME-WAIT").items()],
                  "states": h.ss_state_counts(pool),
                  "listening": sorted(h.ss_listening_ports())}))
""" % (os.path.dirname(HERE), OTHER_RANGE)


def netns_name():
    return "ept:pn-%d" % os.getpid()


def in_netns(name, argv):
    return ["ip", "netns", "exec", name] + list(argv)


def start_holder(name):
    holder = subprocess.Popen(in_netns(name, [h.PYTHON, "-c", HOLDER]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    line = holder.stdout.readline()
    h.check_equal(line, "ready\n", "the socket holder in %s" % name)
    return holder


def ss_inside(name):
    result = h.run(in_netns(name, [h.PYTHON, "-c", SS_READER]))
    return json.loads(result.stdout)


def key(name, **labels):
    labels.update(instance=h.HOSTNAME, job="collectd")
    return name, tuple(sorted(labels.items()))


def expected_other(name, table):
    """The established series of the other namespace, from ss inside it."""
    h.check_equal(len(table["pool_ports"]), CLIENTS,
                  "in-pool ports in ss -tan inside %s" % name)
    h.check_equal(table["listening"], [SERVER_PORT],
                  "listeners in ss -tan inside %s" % name)
    used = len(table["pool_ports"])
    expected = {key("ephemeral_port_exporter_scrape_success", netns=name): 1,
                key("instance_open_ports", netns=name, port=str(SERVER_PORT),
                    protocol="tcp"): 1}
    for metric, value in (("used", used), ("total", OTHER_TOTAL),
                          ("available", OTHER_TOTAL - used),
                          ("usage_ratio", h.format_ratio(used / OTHER_TOTAL))):
        expected[key("ephemeral_ports_" + metric, netns=name,
                     protocol="tcp")] = value
    time_wait = {(r, l): n for r, l, n in table["time_wait"]}
    for remote, local, count in table["destinations"]:
        expected[key("ephemeral_ports_destination_used", netns=name,
                     destination=remote, source=local)] = count
        expected[key("ephemeral_ports_destination_usage_ratio", netns=name,
                     destination=remote, source=local)] = \
            h.format_ratio(count / OTHER_TOTAL)
        expected[key("ephemeral_ports_destination_time_wait", netns=name,
                     destination=remote, source=local)] = \
            time_wait.get((remote, local), 0)
    for state, count in table["states"].items():
        expected[key("ephemeral_ports_state_sockets", netns=name,
                     state=state)] = count
    return expected


def stored(selector):
    """{(name, sorted labels): value} of the established series matching
    selector (a label matcher list), as Prometheus holds them now."""
    names = "|".join(prom.ESTABLISHED_NAMES)
    return prom.stored_now('{__name__=~"%s",%s}' % (names, selector))


def check_namespaces(name):
    table = ss_inside(name)
    expected = expected_other(name, table)
    prom.wait_until("series Prometheus stored for namespace %s" % name,
                 lambda: stored('netns="%s"' % name), expected)
    h.check_equal(ss_inside(name), table,
                  "ss inside %s after the check" % name)
    own = stored('netns=""')
    h.check_equal(own.get(key("ephemeral_port_exporter_scrape_success")), 1.0,
                  "collectd's own scrape_success, without netns")
    h.check_equal(own.get(key("ephemeral_ports_total", protocol="tcp")),
                  float(OWN_TOTAL), "collectd's own pool, without netns")
    h.check_equal(prom.api("/api/v1/label/netns/values"), [name],
                  "netns label values")
    h.check_equal(sorted(prom.api("/api/v1/label/instance/values", **{
        "match[]": '{__name__=~"%s"}' % "|".join(prom.ESTABLISHED_NAMES)})),
        [h.HOSTNAME], "instance label values of the plugin's series")
    h.check_equal(sorted(n for n in prom.api("/api/v1/label/__name__/values")
                         if n.startswith(("collectd_ephemeral",
                                          "collectd_instance_open"))), [],
                  "collectd_* originals stored")
    h.log("FIGURES: namespace %s: %d series stored exactly under "
          "instance=%r netns=%r (pool %d of %d); collectd's own: %d series "
          "without netns" % (name, len(expected), h.HOSTNAME, name,
                             len(table["pool_ports"]), OTHER_TOTAL, len(own)))


def check_alerts(name):
    def pending():
        return sorted((a["labels"]["alertname"], a["labels"].get("netns"),
                       a["labels"].get("protocol"), a["state"],
                       a["annotations"]["summary"])
                      for a in prom.api("/api/v1/alerts")["alerts"])
    prom.wait_until("active alerts", pending, [
        ("EphemeralPortsPoolHigh", name, "tcp", "pending",
         "%s (netns %s): tcp ephemeral port pool 90%% used"
         % (h.HOSTNAME, name))])


def netns_scenario():
    prom.require_skip_conditions()
    name = netns_name()
    block = h.plugin_block(['NetNamespace "/run/netns/%s"' % name,
                            "ReportStates true"])
    holder = None
    try:
        h.create_namespace(name, OTHER_RANGE, "")
        holder = start_holder(name)
        with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
            collectd.start_and_wait_ready()
            with prom.start_prometheus(tmp) as prometheus:
                check_namespaces(name)
                prom.check_dashboard(netns_values=[name], netns=name)
                prom.check_dashboard(netns_values=[name])
                check_alerts(name)
                prom.check_prometheus_itself(prometheus)
    finally:
        if holder is not None:
            holder.stdin.close()
            holder.wait(timeout=10)
        h.delete_namespace(name)


if __name__ == "__main__":
    h.run_scenarios({"netns": netns_scenario}, port_range=OWN_RANGE)
