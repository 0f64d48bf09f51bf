"""The scene of the Prometheus tests (test_prometheus*.py, test_relabel.py):
the real Prometheus with the shipped configuration, its HTTP API, and the
checks of the shipped rules and Grafana dashboard against what it stored.

What every scenario of those files shares:

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
"""

import json
import os
import re
import shutil
import time
import urllib.parse

import harness as h


HERE = os.path.dirname(os.path.abspath(__file__))
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
    "ephemeral_ports_destination_time_wait",
    "ephemeral_ports_state_sockets")
# The read's cost (issue 19): under collectd's own host only, timings (so
# checked by check_read_cost, not by value).
READ_COST_NAMES = ("ephemeral_port_exporter_read_seconds",
                   "ephemeral_port_exporter_read_cpu_seconds")
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
          "EphemeralPortsDestinationExhaustedWithinHour",
          "EphemeralPortsNatExhaustedWithinHour",
          "CollectdDown", "EphemeralPortsMetricsMissing",
          "WatchedPortClosed"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring",
                "group_left", "group_right", "bool", "offset", "inf", "nan"}


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
    selects only parts this scenario does not turn on; the read cost
    series, which the dashboard shows, are stored as check_read_cost
    says."""
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
                         - set(READ_COST_NAMES) - set(OTHER_PART_NAMES)), [],
                  "dashboard metrics that are not established names")
    h.check_equal(sorted(set(READ_COST_NAMES) - referenced), [],
                  "read cost series the dashboard does not show")
    check_read_cost()
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


def read_cost_stored():
    """{(name, sorted labels): value} of the read's cost as stored now, and
    the set of the timestamps of its series and of collectd's own
    scrape_success."""
    values = stored_now('{__name__=~"%s"}' % "|".join(READ_COST_NAMES))
    stamps = set()
    for name in READ_COST_NAMES + ("ephemeral_port_exporter_scrape_success",):
        for series in query('timestamp(%s{netns="",part=""})'
                            % name)["result"]:
            stamps.add(series["value"][1])
    return values, stamps


def check_read_cost():
    """The read's cost as Prometheus stores it: exactly one series of each
    name, labelled with collectd's own host and nothing else (no netns,
    whatever namespaces the read covered), stamped with the same read time
    as collectd's own scrape_success; a read takes time, and the read
    thread's CPU time is at most its wall-clock time (1 ms of clock
    granularity aside)."""
    labels = (("instance", h.HOSTNAME), ("job", "collectd"))
    expected = sorted((name, labels) for name in READ_COST_NAMES)
    deadline = time.monotonic() + 20
    while True:
        values, stamps = read_cost_stored()
        # A scrape can fall between the plugin's dispatches of
        # scrape_success and of the cost: then the next one has both.
        if (sorted(values) == expected and len(stamps) == 1) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    h.check_equal(sorted(values), expected, "read cost series stored")
    h.check_equal(len(stamps), 1, "timestamps of the read cost and of "
                  "collectd's own scrape_success: %r" % sorted(stamps))
    seconds = values[(READ_COST_NAMES[0], labels)]
    cpu = values[(READ_COST_NAMES[1], labels)]
    h.check(0 < seconds < 10, "read seconds %r" % seconds)
    h.check(0 < cpu <= seconds + 0.001,
            "read CPU seconds %r for %r s" % (cpu, seconds))
    h.log("FIGURES: read cost stored: %.6f s, CPU %.6f s" % (seconds, cpu))


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
