"""The real Prometheus with the shipped contrib/prometheus/ files.

In a namespace (port range 40000-40019, a pool of 20): listeners on 9000
and 9001 with 3 and 2 clients (one of 9001's closes first: TIME_WAIT), a
listener on the watched port 2222, the watched port 22 closed, a UDP socket
bound to 5353 and one connected from a pool port.  collectd runs the plugin
(Protocol "tcp" "udp", WatchPort 22 2222, ReportStates true) and the stock
cpu plugin (a series with a `type` label of its own) with write_prometheus;
Prometheus (/usr/bin/prometheus) runs the shipped prometheus.yml and rules,
listening on 127.0.0.1 only, with its scrape and evaluation intervals
rewritten from 10 s to 1 s (the only change; the test would take minutes
otherwise).

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
stored metrics and returns data.

Scenario "closed_port": an unwatched listener that closes is stored as
exactly one 0 sample (write_prometheus's timestamp, however often
Prometheus scrapes), a closed watched port as a 0 per read: what
WatchedPortClosed tells them apart by.  Once collectd stops, its series stay
queryable (no staleness markers for series with timestamps).
"""

import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: harness/
import harness as h  # noqa: E402

TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
SHIPPED_DIR = os.path.join(TOP, "contrib", "prometheus")
DASHBOARD = os.path.join(TOP, "contrib", "grafana", "ephemeral_ports.json")
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
# Outside the pool and the harness's scrape client ports (31000-31999).
PROMETHEUS_WEB_PORT = 39090
WATCHED_OPEN = 2222
WATCHED_CLOSED = 22
UNWATCHED = 7777
UDP_OPEN = 5353
UDP_PEER = 9999  # connect() on UDP sends nothing
FIRST_CLIENTS = 3  # to 9000
SECOND_CLIENTS = 2  # to 9001, one of them in TIME_WAIT

ESTABLISHED_NAMES = (
    "ephemeral_ports_used", "ephemeral_ports_total",
    "ephemeral_ports_available", "ephemeral_ports_usage_ratio",
    "ephemeral_port_exporter_scrape_success", "instance_open_ports",
    "ephemeral_ports_destination_used",
    "ephemeral_ports_destination_usage_ratio",
    "ephemeral_ports_state_sockets")
COLLECTD_LABELS = ("ephemeral_ports", "ephemeral_ports_destination",
                   "ephemeral_ports_state", "instance_open",
                   "ephemeral_ports_cgroup", "ephemeral_ports_nat",
                   "ephemeral_port_exporter", "exported_instance")
# Established names of parts these scenarios do not turn on (per-cgroup
# series, ReportNat): dashboard panels on them must be accepted by
# Prometheus, and have data only where the part runs.
OTHER_PART_NAMES = ("ephemeral_ports_cgroup_used",
                    "ephemeral_ports_nat_used", "ephemeral_ports_nat_total",
                    "ephemeral_ports_nat_usage_ratio",
                    "ephemeral_ports_conntrack_insert_failed_total",
                    "ephemeral_ports_conntrack_drop_total")
ALERTS = {"EphemeralPortsPoolHigh", "EphemeralPortsDestinationHigh",
          "EphemeralPortsReadFailing", "EphemeralPortsNatReadFailing",
          "EphemeralPortsNatHigh", "EphemeralPortsNatInsertFailing",
          "CollectdDown", "EphemeralPortsMetricsMissing",
          "WatchedPortClosed"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring",
                "group_left", "group_right", "bool", "offset", "inf", "nan"}


# --------------------------------------------------------------------------
# Prometheus


def prometheus_config(tmp):
    """The shipped files in tmp, the two 10 s intervals set to 1 s."""
    with open(os.path.join(SHIPPED_DIR, "prometheus.yml")) as handle:
        text = handle.read()
    for key in ("scrape_interval", "evaluation_interval"):
        line = "  %s: 10s\n" % key
        h.check_equal(text.count(line), 1, "%r in prometheus.yml" % line)
        text = text.replace(line, "  %s: 1s\n" % key)
    path = tmp.join("prometheus.yml")
    with open(path, "w") as handle:
        handle.write(text)
    shutil.copy(os.path.join(SHIPPED_DIR, "ephemeral_ports.rules.yml"),
                tmp.join("ephemeral_ports.rules.yml"))
    return path


def api(path, **params):
    """GET a Prometheus API path; returns its data (status must be
    success)."""
    query = urllib.parse.urlencode(params)
    status, body = h.http_get(PROMETHEUS_WEB_PORT,
                              path + ("?" + query if query else ""))
    h.check_equal(status, 200, "HTTP status of %s %r: %s" % (path, params,
                                                             body[:300]))
    answer = json.loads(body)
    h.check_equal(answer.get("status"), "success",
                  "status of %s %r" % (path, params))
    return answer["data"]


def query(expr, at=None):
    params = {"query": expr}
    if at is not None:
        params["time"] = "%.3f" % at
    return api("/api/v1/query", **params)


def stored_now(selector):
    """{(name, sorted labels): value} of every series selector (a PromQL
    series selector) matches, as Prometheus holds them now."""
    found = {}
    for series in query(selector)["result"]:
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        found[(name, tuple(sorted(labels.items())))] = \
            float(series["value"][1])
    return found


def wait_until(what, produce, expected, timeout=20):
    """Polls produce() until it returns expected or timeout (s) passes,
    then asserts it; returns what it got."""
    deadline = time.monotonic() + timeout
    while True:
        got = produce()
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    h.check_equal(got, expected, what)
    return got


def start_prometheus(tmp):
    daemon = h.Daemon(
        [PROMETHEUS_BIN, "--config.file=" + prometheus_config(tmp),
         "--storage.tsdb.path=" + tmp.join("data"),
         "--web.listen-address=127.0.0.1:%d" % PROMETHEUS_WEB_PORT,
         "--log.level=info"],
        tmp.join("prometheus.log"), cwd=tmp.path)
    started = time.monotonic()
    daemon.start()
    daemon.wait_listening(PROMETHEUS_WEB_PORT)
    deadline = time.monotonic() + 30
    while h.http_get(PROMETHEUS_WEB_PORT, "/-/ready")[0] != 200:
        h.check(time.monotonic() < deadline,
                "Prometheus not ready in 30 s\n" + daemon.diagnostics())
        time.sleep(0.05)
    ready = time.monotonic()
    while not query('up{job="collectd"} == 1')["result"]:
        h.check(time.monotonic() < deadline,
                "no successful scrape of collectd in 30 s\n"
                + daemon.diagnostics())
        time.sleep(0.05)
    h.log("FIGURES: Prometheus ready %.2f s after start, first successful "
          "scrape of collectd after %.2f s"
          % (ready - started, time.monotonic() - started))
    return daemon


def samples_at(name, timestamp_ms):
    """{sorted label tuple: value} of the samples of `name` stamped exactly
    timestamp_ms."""
    at = timestamp_ms / 1000.0
    result = query("%s[10s]" % name, at)
    h.check_equal(result["resultType"], "matrix", "result type of %s" % name)
    found = {}
    for series in result["result"]:
        labels = dict(series["metric"])
        h.check_equal(labels.pop("__name__"), name, "name")
        for stamp, value in series["values"]:
            if round(float(stamp) * 1000) == timestamp_ms:
                found[tuple(sorted(labels.items()))] = float(value)
    return found


def wait_ingested(timestamp_ms, timeout=15):
    """Waits until Prometheus stored the read stamped timestamp_ms."""
    deadline = time.monotonic() + timeout
    while True:
        result = query("timestamp(ephemeral_port_exporter_scrape_success)")
        stamps = [float(r["value"][1]) * 1000 for r in result["result"]]
        if stamps and max(stamps) >= timestamp_ms - 0.5:
            return
        h.check(time.monotonic() < deadline,
                "Prometheus did not store the read at %d ms: %r"
                % (timestamp_ms, stamps))
        time.sleep(0.1)


def own_sockets(pid, flags):
    """(local, peer) endpoints of the sockets of process pid, from ss."""
    found = []
    for line in h.run(["ss", "-Hnp" + flags]).stdout.splitlines():
        if "pid=%d," % pid in line:
            fields = line.split()
            found.append((fields[-3], fields[-2]))
    return found


# --------------------------------------------------------------------------
# The sockets the test makes


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
            h.ss_state_counts(POOL), scraper_ports)


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
    pool_ports, destinations, states, scraper_ports = table
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


def check_rules():
    groups = api("/api/v1/rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    h.check_equal(set(rules), ALERTS, "alerting rules loaded")
    closed = [(str(WATCHED_CLOSED), "tcp"), (str(WATCHED_CLOSED), "udp"),
              (str(WATCHED_OPEN), "udp")]
    # Each expression on the live data: only the closed watched ports
    # (once they have two samples).
    deadline = time.monotonic() + 20
    expected = {name: closed if name == "WatchedPortClosed" else []
                for name in rules}
    while True:
        selected = {name: sorted((r["metric"].get("port"),
                                  r["metric"].get("protocol"))
                                 for r in query(rule["query"])["result"])
                    for name, rule in rules.items()}
        if selected == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    h.check_equal(selected, expected, "what the rules' expressions select")
    # The groups Prometheus evaluates every second (the presence group
    # runs once a minute: its first evaluation may not have happened).
    for group in groups:
        if group["interval"] > 1:
            continue
        for rule in group["rules"]:
            h.check_equal(rule["health"], "ok", "health of rule %s (%s)"
                          % (rule["name"], rule.get("lastError")))
    deadline = time.monotonic() + 20
    expected = [("WatchedPortClosed", port, protocol, "pending")
                for port, protocol in closed]
    while True:
        alerts = sorted((a["labels"]["alertname"], a["labels"].get("port"),
                         a["labels"].get("protocol"), a["state"])
                        for a in api("/api/v1/alerts")["alerts"])
        if alerts == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    h.check_equal(alerts, expected, "active alerts")


def dashboard_queries():
    with open(DASHBOARD) as handle:
        model = json.load(handle)
    exprs = [t["expr"] for p in model["panels"] for t in p.get("targets", [])]
    h.check(exprs, "no expressions in the dashboard")
    variables = [v["query"]["query"] for v in model["templating"]["list"]
                 if v["type"] == "query"]
    return exprs, variables


def metric_names(expr):
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)"
                  r"\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or match.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def regex_literal(text):
    """text as a regex matching itself, inside a PromQL "..." string (what
    Grafana makes of one selected value)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\\\1", text)


def check_dashboard(netns_values=(), netns="$__all"):
    """The dashboard's variables have the values (instance: the host;
    netns: netns_values), and each expression, with instance the host and
    netns the one given (All: .*), is accepted and returns data unless it
    selects only parts this scenario does not turn on."""
    exprs, variables = dashboard_queries()
    stored = set(api("/api/v1/label/__name__/values"))
    values = {"instance": [h.HOSTNAME], "netns": sorted(netns_values)}
    referenced = set()
    for expr in exprs:
        referenced |= metric_names(expr)
    for variable in variables:
        match = re.fullmatch(r"label_values\((\w+)(\{[^}]*\})?,\s*(\w+)\)",
                             variable)
        h.check(match, "unexpected variable query %r" % variable)
        referenced.add(match.group(1))
        selector = match.group(1) + (match.group(2) or "").replace(
            "$instance", h.HOSTNAME)
        h.check_equal(api("/api/v1/label/%s/values" % match.group(3),
                          **{"match[]": selector}),
                      values[match.group(3)],
                      "values of the variable %r" % variable)
    h.check_equal(sorted(referenced - stored - set(OTHER_PART_NAMES)), [],
                  "dashboard metrics not stored by Prometheus")
    h.check_equal(sorted(referenced - set(ESTABLISHED_NAMES)
                         - set(OTHER_PART_NAMES)), [],
                  "dashboard metrics that are not established names")
    with_data = 0
    for expr in exprs:
        concrete = expr.replace("$instance", h.HOSTNAME).replace(
            "$netns", ".*" if netns == "$__all" else regex_literal(netns))
        result = query(concrete)["result"]
        if metric_names(expr) <= set(OTHER_PART_NAMES) - stored:
            continue  # accepted (query() checks that); nothing to show
        h.check(result, "dashboard expression %r returned nothing" % concrete)
        with_data += 1
    h.log("FIGURES: %d dashboard expressions accepted, %d with data; "
          "metrics %s" % (len(exprs), with_data,
                          ", ".join(sorted(referenced))))


def check_prometheus_itself(daemon):
    pid = daemon.process.pid
    listening = [local for local, _ in own_sockets(pid, "tul")]
    h.check_equal(listening, ["127.0.0.1:%d" % PROMETHEUS_WEB_PORT],
                  "Prometheus's listening sockets (TCP and UDP)")
    for local, peer in own_sockets(pid, "tu"):
        h.check(peer.endswith(":%d" % h.PROMETHEUS_PORT) or
                local.endswith(":%d" % PROMETHEUS_WEB_PORT),
                "Prometheus connection %s -> %s is neither the scrape nor "
                "the test's API client" % (local, peer))
    status, body = h.http_get(PROMETHEUS_WEB_PORT, "/metrics")
    h.check_equal(status, 200, "Prometheus /metrics")
    counters = {}
    for name in ("prometheus_target_scrapes_sample_out_of_order_total",
                 "prometheus_target_scrapes_sample_out_of_bounds_total",
                 "prometheus_target_scrapes_sample_duplicate_timestamp_total",
                 "prometheus_tsdb_out_of_order_samples_total",
                 "prometheus_tsdb_out_of_bound_samples_total"):
        for line in body.splitlines():
            if line.startswith(name):
                counters[line.split()[0]] = float(line.split()[1])
    h.check(counters, "no sample rejection counters on Prometheus /metrics")
    h.check_equal({k: v for k, v in counters.items() if v}, {},
                  "Prometheus sample rejections")
    log_text = h.read_text(daemon.log_path)
    h.check_equal([line for line in log_text.splitlines()
                   if re.search(r"out of (order|bounds)|too old|duplicate",
                                line, re.I)], [],
                  "Prometheus log lines about rejected samples")


# --------------------------------------------------------------------------
# What the alert rules rely on: how exported timestamps are stored


def raw_samples(selector, window="1h"):
    """[(timestamp_ms, value)] of the one series matching selector."""
    result = query("%s[%s]" % (selector, window))["result"]
    h.check_equal(len(result), 1, "series matching %s: %r" % (selector,
                                                               result))
    return [(round(float(t) * 1000), float(v))
            for t, v in result[0]["values"]]


def wait_stored_after(selector, since_ms, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        stamps = [t for t, _ in raw_samples(selector)] if \
            query(selector)["result"] else []
        if stamps and max(stamps) > since_ms:
            return
        h.check(time.monotonic() < deadline,
                "%s: no sample after %d ms stored" % (selector, since_ms))
        time.sleep(0.1)


def require_skip_conditions():
    if not os.access(PROMETHEUS_BIN, os.X_OK):
        raise h.TestSkip("%s not found (Debian package prometheus)"
                         % PROMETHEUS_BIN)


def closed_port_scenario():
    """A port that stops listening is reported once with 0: with exported
    timestamps Prometheus stores exactly one 0 however often it scrapes,
    while a closed watched port gets a 0 per read (WatchedPortClosed tells
    them apart by that).  When collectd stops, its series stay queryable
    (no staleness markers for series with timestamps)."""
    require_skip_conditions()
    block = h.plugin_block(["WatchPort %d" % WATCHED_CLOSED])
    # No expiry: write_prometheus keeps serving the one 0 (same timestamp)
    # to every scrape, which must still store it once.
    with h.TempDir() as tmp, \
            h.Collectd(tmp, block, extra_config=h.NO_EXPIRY) as collectd:
        listening = h.listener(UNWATCHED)
        try:
            collectd.start_and_wait_ready()
            with start_prometheus(tmp) as prometheus:
                unwatched = 'instance_open_ports{port="%d"}' % UNWATCHED
                watched = 'instance_open_ports{port="%d"}' % WATCHED_CLOSED
                wait_stored_after(unwatched, 0)
                listening.close()
                closed_at = time.time()
                samples = h.wait_for_fresh_read(collectd, closed_at)
                for _ in range(3):
                    read_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
                    samples = h.wait_for_fresh_read(collectd,
                                                    read_ms / 1000.0)
                last_read_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
                wait_stored_after(watched, last_read_ms - 1)
                # Two scrapes a read: any re-stored 0 would show.
                time.sleep(2.0)
                stored = raw_samples(unwatched)
                zeros = [(t, v) for t, v in stored if v == 0]
                h.check_equal(len(zeros), 1,
                              "0 samples stored for the unwatched port "
                              "%d after it closed: %r" % (UNWATCHED, stored))
                h.check(zeros[0][0] > closed_at * 1000 and
                        zeros == stored[-1:],
                        "the 0 of %d is the last sample, after the close: "
                        "%r" % (UNWATCHED, stored))
                watched_stored = raw_samples(watched)
                h.check_equal({v for _, v in watched_stored}, {0.0},
                              "values of the watched closed port")
                h.check(len(watched_stored) >= 5,
                        "watched port: %d samples, expected one per read"
                        % len(watched_stored))
                h.log("FIGURES: after the close, %d samples of the "
                      "unwatched port (one 0), %d samples (all 0) of the "
                      "watched closed port"
                      % (len(stored), len(watched_stored)))
                collectd.stop()
                deadline = time.monotonic() + 15
                while not query('up{job="collectd"} == 0')["result"]:
                    h.check(time.monotonic() < deadline,
                            "Prometheus never saw collectd down")
                    time.sleep(0.1)
                result = query(h.SCRAPE_SUCCESS.replace("collectd_", "", 1))
                h.check_equal([r["value"][1] for r in result["result"]],
                              ["1"], "scrape_success right after collectd "
                              "stopped (no staleness marker)")
                check_prometheus_itself(prometheus)
        finally:
            listening.close()


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
    h.run_scenarios({"prometheus": prometheus_scenario,
                     "closed_port": closed_port_scenario},
                    port_range=PORT_RANGE, reserved_ports="")
