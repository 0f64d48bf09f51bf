"""InfluxDB receives the values as the measurements contrib/influxdb documents.

In a namespace with port range 40000-40019 (a pool of 20), the test starts
Debian's influxd with a config of its own (meta, data and wal in the temp
dir, usage reporting off, HTTP on 127.0.0.1:8086, RPC on 127.0.0.1:8088)
plus the [[collectd]] section of contrib/influxdb/influxdb.conf.snippet
(listening on 127.0.0.1:25826, typesdb a directory of symlinks to
collectd's types.db and the shipped ephemeral_ports.types.db, as the snippet
tells users to make).  It builds TCP sockets (a listener on 9000, IPv4 and
IPv6 clients, one connection left in TIME_WAIT on 9001) and UDP sockets (one
unconnected on the pool port 40003, one connected to 9999), and starts
collectd with Protocol "tcp" "udp", ReportStates true, WatchPort 22 and the
stock network plugin configured by contrib/influxdb/collectd-network.conf.

The network plugin's own UDP socket takes a pool port (and, unconnected, is
an open UDP port): the test finds it in ss -uanp and counts it.  Then it
queries InfluxDB over HTTP for every point dispatched by a read that began
after that socket existed (the plugin stamps a read's values with its start)
and asserts the exact set of (measurement, tags) and every value:
  ephemeral_ports_{used,total,available,usage_ratio}  TCP, and instance=udp
  ephemeral_port_exporter_scrape_success
  instance_open_ports                 instance=<port>, type_instance=udp
  ephemeral_ports_destination_{used,usage_ratio,time_wait}
                                      instance=<remote>, type_instance=<local>
  ephemeral_ports_state_sockets       type_instance=<state>
  ephemeral_ports_cgroup_used         instance=<group>, type_instance=udp
each with host=eptest and type=<plugin>; and the read's cost (timings: no
exact value)
  ephemeral_port_exporter_read_{seconds,cpu_seconds}
with the same tags, in pairs of one read (same time), each pair with
0 < seconds < 10 and 0 < cpu_seconds <= seconds + 1 ms; no other series.
`ip netns exec` hides the cgroup2 mount from collectd (it logs one INFO
saying so), so the groups are the pseudo groups: time_wait (the TIME_WAIT
port) and unknown (every other pool port, TCP and UDP).
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))  # tests/: harness/
import harness as h  # noqa: E402
from socket_mix import (SERVER_PORT, TIME_WAIT_SERVER_PORT,  # noqa: E402
                        V4_CLIENTS, V6_CLIENTS, SocketMix)

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20

INFLUXD = "/usr/bin/influxd"
HTTP_PORT = 8086
RPC_PORT = 8088
COLLECTD_UDP_PORT = 25826
DATABASE = "collectd"
DEBIAN_TYPES_DB = "/usr/share/collectd/types.db"

UDP_UNCONNECTED_PORT = 40003
WATCHED_CLOSED_PORT = 22
CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "contrib", "influxdb")
INFLUXDB_SNIPPET = os.path.join(CONTRIB, "influxdb.conf.snippet")
COLLECTD_SNIPPET = os.path.join(CONTRIB, "collectd-network.conf")

# Everything but the [[collectd]] section, which comes from the snippet.
INFLUXDB_CONF = """\
# Debian's influxd reads reporting-enabled (default false); upstream's reads
# reporting-disabled.  Either way: never report usage to influxdata.com.
reporting-enabled = false
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{tmp}/meta"

[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[monitor]
  store-enabled = false

"""


def read(path):
    with open(path) as handle:
        return handle.read()


def substitute(text, key, value, what):
    """Replaces the value of the one `key = ...` line of a TOML snippet."""
    text, count = re.subn(r'(?m)^(\s*%s\s*=\s*).*$' % re.escape(key),
                          lambda m: m.group(1) + value, text)
    h.check_equal(count, 1, "%s lines in %s" % (key, what))
    return text


def influxdb_config(tmp, types_dir):
    snippet = read(INFLUXDB_SNIPPET)
    snippet = substitute(snippet, "bind-address",
                         '"127.0.0.1:%d"' % COLLECTD_UDP_PORT,
                         INFLUXDB_SNIPPET)
    snippet = substitute(snippet, "typesdb", '"%s"' % types_dir,
                         INFLUXDB_SNIPPET)
    h.check('database = "%s"' % DATABASE in snippet,
            "%s does not write to database %s" % (INFLUXDB_SNIPPET, DATABASE))
    return INFLUXDB_CONF.format(tmp=tmp, rpc_port=RPC_PORT,
                                http_port=HTTP_PORT) + snippet


def collectd_network_config():
    text, count = re.subn(r'<Server "[^"]*" "[^"]*">',
                          '<Server "127.0.0.1" "%d">' % COLLECTD_UDP_PORT,
                          read(COLLECTD_SNIPPET))
    h.check_equal(count, 1, "<Server> lines in %s" % COLLECTD_SNIPPET)
    return text


def types_directory(tmp):
    """A directory of symlinks to the types.db files, as the snippet says."""
    types_db = os.environ.get("TYPES_DB")
    if not types_db:
        raise h.TestSkip("TYPES_DB (the shipped ephemeral_ports.types.db) "
                         "is not set")
    directory = tmp.join("collectd-types")
    os.makedirs(directory)
    os.symlink(os.path.abspath(types_db),
               os.path.join(directory, "ephemeral_ports.types.db"))
    if os.path.isfile(DEBIAN_TYPES_DB):
        os.symlink(DEBIAN_TYPES_DB, os.path.join(directory, "types.db"))
    return directory


def start_influxd(tmp):
    if not os.access(INFLUXD, os.X_OK):
        raise h.TestSkip("%s not found (Debian package influxdb)" % INFLUXD)
    influx_dir = tmp.join("influxdb")
    os.makedirs(influx_dir)
    config_path = os.path.join(influx_dir, "influxdb.conf")
    with open(config_path, "w") as handle:
        handle.write(influxdb_config(influx_dir, types_directory(tmp)))
    env = dict(os.environ)
    # influxd also reads INFLUXDB_* variables over the file: none of ours.
    for name in list(env):
        if name.startswith("INFLUXDB_"):
            del env[name]
    daemon = h.Daemon([INFLUXD, "run", "-config", config_path],
                      tmp.join("influxd.log"), env=env)
    daemon.start()
    return daemon


def query(text):
    path = "/query?" + urllib.parse.urlencode(
        {"db": DATABASE, "epoch": "ns", "q": text})
    status, body = h.http_get(HTTP_PORT, path)
    if status != 200:
        h.fail("InfluxDB answered %d to %r: %s" % (status, text, body))
    return json.loads(body)


def points_since(since_ns):
    """{(measurement, tags as sorted tuple): [values]} of every point at or
    after since_ns."""
    answer = query("SELECT * FROM /.*/ WHERE time >= %d" % since_ns)
    found = {}
    for result in answer.get("results", []):
        # The collectd service creates its database with its first write.
        if result.get("error") == "database not found: %s" % DATABASE:
            return found
        if "error" in result:
            h.fail("InfluxDB query error: %s" % result["error"])
        for series in result.get("series", []):
            columns = series["columns"]
            for row in series["values"]:
                record = dict(zip(columns, row))
                value = record.pop("value")
                record.pop("time")
                tags = tuple(sorted((k, v) for k, v in record.items()
                                    if v is not None))
                found.setdefault((series["name"], tags), []).append(value)
    return found


def wait_for_influxd(daemon):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            h.fail("influxd exited with status %d\n%s"
                   % (daemon.process.returncode, daemon.diagnostics()))
        try:
            if h.http_get(HTTP_PORT, "/ping")[0] == 204:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        h.fail("influxd did not answer /ping\n%s" % daemon.diagnostics())


def stop_influxd(daemon, grace_s=5):
    """influxd 1.6.7 that has received collectd data hangs in closing its
    collectd service after SIGTERM (over 10 s seen): kill it after grace_s."""
    daemon.process.terminate()
    try:
        daemon.process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        h.log("influxd still shutting down after %d s: killed" % grace_s)
        daemon.process.kill()
        daemon.process.wait()


def collectd_udp_ports():
    """Local ports of collectd's UDP sockets (the network plugin's)."""
    result = h.run(["ss", "-Huanp"])
    ports = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 6 and '"collectd"' in line:
            ports.add(int(fields[3].rpartition(":")[2]))
    return ports


def pool_series(used, instance=None):
    tags = {"type": "ephemeral_ports"}
    if instance:
        tags["instance"] = instance
    return {
        ("ephemeral_ports_used", tags_of(tags)): used,
        ("ephemeral_ports_total", tags_of(tags)): TOTAL,
        ("ephemeral_ports_available", tags_of(tags)): TOTAL - used,
        ("ephemeral_ports_usage_ratio", tags_of(tags)): used / TOTAL,
    }


def tags_of(tags):
    tags = dict(tags, host=h.HOSTNAME)
    return tuple(sorted(tags.items()))


def expected_series(tcp_used, udp_used, tcp_open, udp_open, destinations,
                    time_wait, states, cgroups):
    """{(measurement, tags): value} of every series collectd should have
    sent; cgroups: {(group, type): used}, type "" for TCP, "udp" for UDP."""
    series = {("ephemeral_port_exporter_scrape_success",
               tags_of({"type": "ephemeral_port_exporter"})): 1}
    series.update(pool_series(tcp_used))
    series.update(pool_series(udp_used, "udp"))
    for port, value in tcp_open.items():
        series[("instance_open_ports",
                tags_of({"type": "instance_open", "instance": str(port)}))] = \
            value
    for port, value in udp_open.items():
        series[("instance_open_ports",
                tags_of({"type": "instance_open", "instance": str(port),
                         "type_instance": "udp"}))] = value
    for (remote, local), count in destinations.items():
        tags = tags_of({"type": "ephemeral_ports_destination",
                        "instance": remote, "type_instance": local})
        series[("ephemeral_ports_destination_used", tags)] = count
        series[("ephemeral_ports_destination_usage_ratio", tags)] = \
            count / TOTAL
        series[("ephemeral_ports_destination_time_wait", tags)] = \
            time_wait.get((remote, local), 0)
    for state, count in states.items():
        series[("ephemeral_ports_state_sockets",
                tags_of({"type": "ephemeral_ports_state",
                         "type_instance": state}))] = count
    for (group, kind), count in cgroups.items():
        tags = {"type": "ephemeral_ports_cgroup", "instance": group}
        if kind:
            tags["type_instance"] = kind
        series[("ephemeral_ports_cgroup_used", tags_of(tags))] = count
    return series


# The read's cost, measurement: data source; type is the plugin, no
# instance.
READ_COST = {"ephemeral_port_exporter_read_seconds": "seconds",
             "ephemeral_port_exporter_read_cpu_seconds": "cpu_seconds"}
READ_COST_TAGS = tags_of({"type": "ephemeral_port_exporter_read"})


def check_read_cost(since_ns):
    """Every read's cost point since since_ns, paired by time (both values
    of a read carry its start): a read takes time, and the read thread's
    CPU time is at most its wall-clock time."""
    answer = query("SELECT * FROM %s WHERE time >= %d"
                   % (",".join('"%s"' % m for m in READ_COST), since_ns))
    points = {ds: {} for ds in READ_COST.values()}
    for result in answer.get("results", []):
        for series in result.get("series", []):
            for row in series["values"]:
                record = dict(zip(series["columns"], row))
                points[READ_COST[series["name"]]][record["time"]] = \
                    record["value"]
    seconds, cpu = points["seconds"], points["cpu_seconds"]
    h.check_read_cost_points(seconds, cpu, "InfluxDB")


# The README's example: the TCP pool (no instance tag) per host.
README_QUERY = ('SELECT last("value") FROM "ephemeral_ports_usage_ratio" '
                "WHERE \"instance\" = '' GROUP BY \"host\"")


def check_readme_query(tcp_used):
    answer = query(README_QUERY)
    rows = [(series["tags"], series["values"][0][1])
            for result in answer["results"]
            for series in result.get("series", [])]
    h.check_equal(rows, [({"host": h.HOSTNAME}, tcp_used / TOTAL)],
                  "the README's query %r" % README_QUERY)


def scenario():
    with h.TempDir() as tmp:
        with start_influxd(tmp) as influxd:
            started = time.monotonic()
            wait_for_influxd(influxd)
            h.log("influxd ready after %.1f s" % (time.monotonic() - started))
            mix = SocketMix(POOL, UDP_UNCONNECTED_PORT)
            try:
                mix.build()
                block = h.plugin_block(['Protocol "tcp" "udp"',
                                        "ReportStates true",
                                        "WatchPort %d" % WATCHED_CLOSED_PORT])
                with h.Collectd(tmp, block, extra_plugins=("network",),
                                extra_config=collectd_network_config()) \
                        as collectd:
                    collectd.start_and_wait_ready()
                    check_values(collectd, influxd, mix)
            finally:
                mix.close()
                stop_influxd(influxd)
        log_text = h.read_text(influxd.log_path)
        # Besides its structured log, influxd prints some complaints, such
        # as `unable to find "<type>" in TypesDB`, with Go's plain logger.
        h.check_equal([line for line in log_text.splitlines()
                       if not line.startswith("ts=") or "lvl=error" in line
                       or "lvl=warn" in line or "usage" in line], [],
                      "influxd errors, warnings, complaints or usage "
                      "reporting")


def check_values(collectd, influxd, mix):
    deadline = time.monotonic() + 15
    while True:
        network_ports = collectd_udp_ports()
        if network_ports:
            break
        if time.monotonic() > deadline:
            h.fail("the network plugin never opened its socket\n%s"
                   % collectd.diagnostics())
        time.sleep(0.05)
    since = time.time()
    h.check_equal(len(network_ports), 1, "collectd's UDP sockets")
    network_port = next(iter(network_ports))
    h.log("the network plugin sends from port %d" % network_port)

    tcp_held = mix.tcp_pool_ports()
    h.check_equal(h.ss_pool_ports(POOL), tcp_held, "in-pool TCP ports in ss")
    udp_held = mix.udp_pool_ports() | ({network_port} & POOL)
    udp_table = h.ss_udp()
    h.check_equal({s.local_port for s in udp_table
                   if s.local_port in POOL}, udp_held,
                  "in-pool UDP ports in ss -uan")
    udp_open = {s.local_port: 1 for s in udp_table if s.peer_port is None}
    h.check_equal(set(udp_open), {UDP_UNCONNECTED_PORT, COLLECTD_UDP_PORT,
                                  network_port}, "unconnected UDP ports")
    udp_open[WATCHED_CLOSED_PORT] = 0  # WatchPort watches UDP ports too
    tcp_open = {WATCHED_CLOSED_PORT: 0}
    tcp_open.update({p: 1 for p in h.ss_listening_ports()})
    h.check_equal(set(tcp_open), {WATCHED_CLOSED_PORT, SERVER_PORT,
                                  TIME_WAIT_SERVER_PORT, HTTP_PORT, RPC_PORT,
                                  h.PROMETHEUS_PORT}, "TCP open ports")
    destinations = h.ss_destination_counts(POOL)
    h.check_equal(destinations, {
        ("127.0.0.1:%d" % SERVER_PORT, "127.0.0.1"): V4_CLIENTS,
        ("[::1]:%d" % SERVER_PORT, "::1"): V6_CLIENTS,
        ("127.0.0.1:%d" % TIME_WAIT_SERVER_PORT, "127.0.0.1"): 1},
        "destinations in ss -tan")
    time_wait = h.ss_destination_counts(POOL, "TIME-WAIT")
    h.check_equal(time_wait, {
        ("127.0.0.1:%d" % TIME_WAIT_SERVER_PORT, "127.0.0.1"): 1},
        "TIME_WAIT sockets per destination in ss -tan")
    states = h.ss_state_counts(POOL)
    h.check_equal((states["established"], states["time_wait"]),
                  (V4_CLIENTS + V6_CLIENTS, 1), "ss established, time_wait")
    # No owner can be named (check_no_cgroup2_info): every pool port counts
    # under unknown, the TIME_WAIT socket's under time_wait.
    h.check_no_cgroup2_info(collectd)
    unknown = {h.local_port(sock) for sock in mix.tcp} & POOL
    cgroups = h.unnamed_owners(POOL, {mix.time_wait_port}, unknown, udp_held)
    expected = expected_series(len(tcp_held), len(udp_held), tcp_open,
                               udp_open, destinations, time_wait, states,
                               cgroups)

    since_ns = int(since * 1e9)
    every_key = set(expected) | {(m, READ_COST_TAGS) for m in READ_COST}
    started = time.monotonic()
    deadline = started + 20
    while True:
        found = points_since(since_ns)
        if every_key <= set(found):
            break
        if time.monotonic() > deadline:
            h.fail("series missing from InfluxDB: %s\nfound: %s\n%s"
                   % (sorted(every_key - set(found)), sorted(found),
                      influxd.diagnostics()))
        time.sleep(0.2)
    h.log("all %d series in InfluxDB %.1f s after the socket appeared"
          % (len(every_key), time.monotonic() - started))
    h.check(set(found) == every_key,
            "series in InfluxDB since %d: unexpected %s, missing %s"
            % (since_ns, sorted(set(found) - every_key),
               sorted(every_key - set(found))))
    for key, value in sorted(expected.items()):
        h.check_equal(set(found[key]), {value},
                      "values of %s %r" % key)
    check_read_cost(since_ns)
    check_readme_query(len(tcp_held))
    h.log("TCP used %d, UDP used %d (ports %s, the network plugin's %d); "
          "%d series checked" % (len(tcp_held), len(udp_held),
                                 sorted(udp_held), network_port,
                                 len(expected)))
    h.check_equal(h.ss_pool_ports(POOL), tcp_held, "TCP ports at the end")
    h.check_equal({s.local_port for s in h.ss_udp() if s.local_port in POOL},
                  udp_held, "UDP ports at the end")


if __name__ == "__main__":
    if not os.access(INFLUXD, os.X_OK):
        print("SKIP: %s not found (Debian package influxdb)" % INFLUXD)
        sys.exit(h.EXIT_SKIP)
    h.run_scenarios({"influxdb": scenario}, port_range=PORT_RANGE)
