"""Graphite receives the values under the paths contrib/graphite documents.

In a namespace with port range 40000-40019 (a pool of 20), the test starts
Debian's carbon-cache with a carbon.conf of its own (data in the temp dir,
line receiver on 127.0.0.1:2003, cache query on 127.0.0.1:7002, pickle
receiver, tags and self-metrics off, retention 1s:1h), builds sockets (IPv4
and IPv6 TCP clients to 9000, one connection to 9001 left in TIME_WAIT, a
UDP socket bound to 5353 and one connected to 9999), and starts collectd
with Protocol "tcp" "udp", ReportStates true, WatchPort 22 and the stock
write_graphite configured by contrib/graphite/write_graphite.conf (Host and
Port pointed at the test's carbon-cache).

write_graphite's own connection to carbon-cache takes a pool port too: the
test finds it in ss -tan and counts it.  Once collectd has made a read
after that connection existed, the test reads the whisper files back with
the `whisper` module and asserts, for every point stamped at least 1 s
after the connection showed up (write_graphite rounds a read's time to the
second), the exact values of
  collectd.eptest.ephemeral_ports.{used,total,available,usage_ratio}
  collectd.eptest.ephemeral_ports.udp.ephemeral_ports.{used,...}
  collectd.eptest.ephemeral_port_exporter.scrape_success
  collectd.eptest.instance_open.<port>.instance_open.ports  (TCP)
  collectd.eptest.instance_open.<port>.udp.ports            (UDP)
  collectd.eptest.ephemeral_ports_destination.<remote>.<local>.{used,...}
  collectd.eptest.ephemeral_ports_state.<state>.sockets
  collectd.eptest.ephemeral_ports_cgroup.<group>.ephemeral_ports_cgroup.used
  collectd.eptest.ephemeral_ports_cgroup.<group>.udp.used        (UDP)
and, for the read's cost (timings: no exact value),
  collectd.eptest.ephemeral_port_exporter_read.{seconds,cpu_seconds}
that both have points since then, in pairs of one read (same timestamp),
each pair with 0 < seconds < 10 and 0 < cpu_seconds <= seconds + 1 ms;
and that no other path exists under collectd.eptest.  `ip netns exec`
hides the cgroup2 mount from collectd (it logs one INFO saying so), so the
groups are the pseudo groups: time_wait (the TIME_WAIT port) and unknown
(every other pool port, TCP and UDP).
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))  # tests/: harness/
import harness as h  # noqa: E402
from socket_mix import (SERVER_PORT, TIME_WAIT_SERVER_PORT,  # noqa: E402
                        V4_CLIENTS, V6_CLIENTS, SocketMix)

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20

CARBON_CACHE = "/usr/bin/carbon-cache"
CARBON_LINE_PORT = 2003
CARBON_QUERY_PORT = 7002
WATCHED_CLOSED_PORT = 22
UDP_UNCONNECTED_PORT = 5353
SNIPPET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "contrib", "graphite", "write_graphite.conf")
ROOT = ("collectd", h.HOSTNAME)  # Prefix "collectd." and the host

CARBON_CONF = """\
[cache]
STORAGE_DIR = {tmp}/storage
LOCAL_DATA_DIR = {tmp}/storage/whisper
LOG_DIR = {tmp}/storage/log
PID_DIR = {tmp}/storage
DATABASE = whisper
# With tags on, carbon-cache posts every new series to graphite-web's tag
# database over HTTP (GRAPHITE_URL, 127.0.0.1:80): a connection of its own.
ENABLE_TAGS = False
CARBON_METRIC_INTERVAL = 0
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line_port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_PORT = 0
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query_port}
LOG_CREATES = True
LOG_LISTENER_CONN_SUCCESS = False
"""

# One point a second, as collectd's Interval 1 sends them.
STORAGE_SCHEMAS = """\
[everything_1s]
pattern = .*
retentions = 1s:1h
"""


def graphite_snippet(host, port):
    """contrib/graphite/write_graphite.conf, pointed at host:port."""
    with open(SNIPPET) as handle:
        text = handle.read()
    text, hosts = re.subn(r'(?m)^(\s*)Host "[^"]*"$',
                          r'\1Host "%s"' % host, text)
    text, ports = re.subn(r'(?m)^(\s*)Port "[^"]*"$',
                          r'\1Port "%d"' % port, text)
    h.check_equal((hosts, ports), (1, 1),
                  "Host and Port lines in %s" % SNIPPET)
    return text


def start_carbon(tmp):
    if not os.access(CARBON_CACHE, os.X_OK):
        raise h.TestSkip("%s not found (Debian package graphite-carbon)"
                         % CARBON_CACHE)
    conf_dir = tmp.join("carbon")
    os.makedirs(conf_dir)
    with open(os.path.join(conf_dir, "carbon.conf"), "w") as handle:
        handle.write(CARBON_CONF.format(tmp=conf_dir,
                                        line_port=CARBON_LINE_PORT,
                                        query_port=CARBON_QUERY_PORT))
    # carbon-cache reads storage-schemas.conf from carbon.conf's directory.
    with open(os.path.join(conf_dir, "storage-schemas.conf"), "w") as handle:
        handle.write(STORAGE_SCHEMAS)
    carbon = h.Daemon([CARBON_CACHE,
                       "--config=%s" % os.path.join(conf_dir, "carbon.conf"),
                       "--nodaemon", "start"],
                      tmp.join("carbon-cache.log"))
    carbon.start()
    carbon.whisper_dir = os.path.join(conf_dir, "storage", "whisper")
    return carbon


def wait_until(predicate, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            h.fail("timed out waiting for %s; ss -tan: %r"
                   % (what, h.ss_tcp()))
        time.sleep(0.05)


def carbon_connection_port():
    """The pool port of write_graphite's connection to carbon-cache."""
    ports = [s.local_port for s in h.ss_tcp()
             if s.state == "ESTAB" and s.peer_port == CARBON_LINE_PORT and
             s.local_port in POOL]
    return ports[0] if len(ports) == 1 else None


def whisper_path(whisper_dir, path):
    return os.path.join(whisper_dir, *path) + ".wsp"


def points_since(whisper, whisper_dir, path, since):
    """[(timestamp, value)] of the file's points stamped at or after since."""
    filename = whisper_path(whisper_dir, path)
    if not os.path.exists(filename):
        return []
    (start, _, step), values = whisper.fetch(filename, int(since) - 1)
    return [(start + i * step, v) for i, v in enumerate(values)
            if v is not None and start + i * step >= since]


def all_series(whisper_dir):
    """Every path under collectd.eptest, as tuples of nodes."""
    base = os.path.join(whisper_dir, *ROOT)
    found = set()
    for directory, _, files in os.walk(base):
        relative = os.path.relpath(directory, base)
        nodes = () if relative == "." else tuple(relative.split(os.sep))
        for name in files:
            if name.endswith(".wsp"):
                found.add(ROOT + nodes + (name[:-len(".wsp")],))
    return found


def pool_series(node, used):
    return {
        node + ("used",): used,
        node + ("total",): TOTAL,
        node + ("available",): TOTAL - used,
        node + ("usage_ratio",): h.format_ratio(used / TOTAL),
    }


def expected_series(used, udp_used, destinations, time_wait, states,
                    open_ports, udp_open_ports, cgroups):
    """{path: value} of every series collectd should have sent; cgroups:
    {(group, type): used}, type "" for TCP, "udp" for UDP."""
    series = {ROOT + ("ephemeral_port_exporter", "scrape_success"): 1}
    series.update(pool_series(ROOT + ("ephemeral_ports",), used))
    # plugin_instance "udp" stands between plugin and type, so
    # DropDuplicateFields keeps the type.
    series.update(pool_series(ROOT + ("ephemeral_ports", "udp",
                                      "ephemeral_ports"), udp_used))
    for port, value in open_ports.items():
        series[ROOT + ("instance_open", str(port), "instance_open",
                       "ports")] = value
    # type_instance "udp": DropDuplicateFields drops the type instead.
    for port, value in udp_open_ports.items():
        series[ROOT + ("instance_open", str(port), "udp", "ports")] = value
    for (remote, local), count in destinations.items():
        node = ROOT + ("ephemeral_ports_destination", graphite_escape(remote),
                       graphite_escape(local))
        series[node + ("used",)] = count
        series[node + ("usage_ratio",)] = h.format_ratio(count / TOTAL)
        series[node + ("time_wait",)] = time_wait.get((remote, local), 0)
    for state, count in states.items():
        series[ROOT + ("ephemeral_ports_state", state, "sockets")] = count
    # As instance_open: the type stays unless the type instance "udp" is
    # there to drop it for.
    for (group, kind), count in cgroups.items():
        series[ROOT + ("ephemeral_ports_cgroup", graphite_escape(group),
                       kind or "ephemeral_ports_cgroup", "used")] = count
    return series


# The read's cost: write_graphite's DropDuplicateFields drops the type,
# which equals the plugin; no instance.
READ_COST_PATHS = {ds: ROOT + ("ephemeral_port_exporter_read", ds)
                   for ds in ("seconds", "cpu_seconds")}


def check_read_cost(whisper, whisper_dir, since):
    """Every read's cost point since `since`, paired by timestamp (both
    values of a read carry its time): a read takes time, and the read
    thread's CPU time is at most its wall-clock time."""
    seconds = dict(points_since(whisper, whisper_dir,
                                READ_COST_PATHS["seconds"], since))
    cpu = dict(points_since(whisper, whisper_dir,
                            READ_COST_PATHS["cpu_seconds"], since))
    h.check_read_cost_points(seconds, cpu, "Graphite")


def graphite_escape(text):
    """write_graphite with EscapeCharacter "_": dots and colons become _."""
    return text.replace(".", "_").replace(":", "_")


def scenario():
    try:
        import whisper
    except ImportError:
        raise h.TestSkip("python3 module whisper not found (Debian package "
                         "python3-whisper)")
    with h.TempDir() as tmp:
        with start_carbon(tmp) as carbon:
            started = time.monotonic()
            carbon.wait_listening(CARBON_LINE_PORT)
            h.log("carbon-cache listening after %.1f s"
                  % (time.monotonic() - started))
            mix = SocketMix(POOL, UDP_UNCONNECTED_PORT)
            try:
                mix.build()
                config = graphite_snippet("127.0.0.1", CARBON_LINE_PORT)
                block = h.plugin_block(['Protocol "tcp" "udp"',
                                        "ReportStates true",
                                        "WatchPort %d" % WATCHED_CLOSED_PORT])
                with h.Collectd(tmp, block, extra_plugins=("write_graphite",),
                                extra_config=config) as collectd:
                    collectd.start_and_wait_ready()
                    connection_port = wait_until(
                        carbon_connection_port,
                        "write_graphite's connection to carbon-cache")
                    connected_at = time.time()
                    h.log("write_graphite connected from port %d"
                          % connection_port)
                    samples = h.wait_for_read_after(collectd, connected_at)
                    h.check_no_cgroup2_info(collectd)
                    check_series(whisper, carbon, mix, connection_port,
                                 connected_at, samples)
            finally:
                mix.close()
        h.check_equal([line for line in h.read_text(carbon.log_path)
                       .splitlines() if "Traceback" in line or
                       "rror" in line], [], "carbon-cache errors")


def check_series(whisper, carbon, mix, connection_port, connected_at,
                 samples):
    held = mix.tcp_pool_ports() | {connection_port}
    h.check_equal(h.ss_pool_ports(POOL), held,
                  "in-pool ports: ss -tan vs the test's sockets and "
                  "write_graphite's connection")
    used = len(held)
    destinations = h.ss_destination_counts(POOL)
    h.check_equal(destinations, {
        ("127.0.0.1:%d" % SERVER_PORT, "127.0.0.1"): V4_CLIENTS,
        ("[::1]:%d" % SERVER_PORT, "::1"): V6_CLIENTS,
        ("127.0.0.1:%d" % TIME_WAIT_SERVER_PORT, "127.0.0.1"): 1,
        ("127.0.0.1:%d" % CARBON_LINE_PORT, "127.0.0.1"): 1},
        "destinations in ss -tan")
    time_wait = h.ss_destination_counts(POOL, "TIME-WAIT")
    h.check_equal(time_wait, {
        ("127.0.0.1:%d" % TIME_WAIT_SERVER_PORT, "127.0.0.1"): 1},
        "TIME_WAIT sockets per destination in ss -tan")
    states = h.ss_state_counts(POOL)
    h.check_equal((states["established"], states["time_wait"]),
                  (V4_CLIENTS + V6_CLIENTS + 1, 1),
                  "established and time_wait in ss -tan")
    open_ports = {WATCHED_CLOSED_PORT: 0}
    open_ports.update({p: 1 for p in h.ss_listening_ports()})
    h.check_equal(set(open_ports),
                  {WATCHED_CLOSED_PORT, SERVER_PORT, TIME_WAIT_SERVER_PORT,
                   CARBON_LINE_PORT, CARBON_QUERY_PORT, h.PROMETHEUS_PORT},
                  "watched and listening ports")
    udp_table = h.ss_udp()
    udp_held = mix.udp_pool_ports()
    h.check_equal({s.local_port for s in udp_table if s.local_port in POOL},
                  udp_held, "in-pool UDP ports in ss -uan")
    udp_open = {s.local_port: 1 for s in udp_table if s.peer_port is None}
    h.check_equal(set(udp_open), {UDP_UNCONNECTED_PORT},
                  "unconnected UDP ports")
    udp_open[WATCHED_CLOSED_PORT] = 0  # WatchPort watches UDP ports too
    # No owner can be named (check_no_cgroup2_info): every pool port counts
    # under unknown, the TIME_WAIT socket's under time_wait.
    unknown = ({h.local_port(sock) for sock in mix.tcp} & POOL) | {
        connection_port}
    cgroups = h.unnamed_owners(POOL, {mix.time_wait_port}, unknown, udp_held)
    # The same read, as write_prometheus serves it.
    h.check_pool_values(samples, used, TOTAL, "write_prometheus")
    h.check_equal({key: value for key, (value, _)
                   in h.cgroup_values(samples).items()},
                  {key: float(n) for key, n in cgroups.items()},
                  "write_prometheus: " + h.CGROUP_USED)

    expected = expected_series(used, len(udp_held), destinations, time_wait,
                               states, open_ports, udp_open, cgroups)
    # write_graphite stamps a read with its time rounded to the second:
    # points from 1 s after the connection come from reads that saw it.
    since = connected_at + 1

    every_path = set(expected) | set(READ_COST_PATHS.values())

    def missing():
        return [".".join(path) for path in sorted(every_path)
                if not points_since(whisper, carbon.whisper_dir, path, since)]
    started = time.monotonic()
    deadline = started + 15
    while missing():
        if time.monotonic() > deadline:
            h.fail("no point since %.0f in %s; whisper files: %s\n%s"
                   % (since, missing(), sorted(".".join(p) for p in
                                               all_series(carbon.whisper_dir)),
                      carbon.diagnostics()))
        time.sleep(0.1)
    h.log("all %d series in whisper %.1f s after the read"
          % (len(every_path), time.monotonic() - started))

    h.check_equal(sorted(all_series(carbon.whisper_dir)), sorted(every_path),
                  "whisper files under %s" % ".".join(ROOT))
    for path, value in sorted(expected.items()):
        points = points_since(whisper, carbon.whisper_dir, path, since)
        h.check_equal({v for _, v in points}, {value},
                      "values of %s (points %r)" % (".".join(path), points))
    check_read_cost(whisper, carbon.whisper_dir, since)
    h.log("used %d (ports %s, write_graphite's %d); %d series checked "
          "exactly, and the read's cost" % (used, sorted(held),
                                            connection_port, len(expected)))
    h.check_equal(h.ss_pool_ports(POOL), held, "in-pool ports at the end")


if __name__ == "__main__":
    if not os.access(CARBON_CACHE, os.X_OK):
        print("SKIP: carbon-cache not found (Debian package graphite-carbon)")
        sys.exit(h.EXIT_SKIP)
    h.run_scenarios({"carbon": scenario}, port_range=PORT_RANGE)
