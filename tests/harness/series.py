"""Reading the plugin's series out of a scrape: the pool, open ports,
destinations, states, other namespaces' hosts, cgroups and NAT keys; and
the names and values the plugin's rules give them.
"""

from .base import HOSTNAME, check, check_equal, log
from .prometheus import SCRAPE_SUCCESS, value_of
from .collectd import plugin_log_lines
from .ss import ss_tcp

__all__ = ["POOL_METRICS", "OPEN_PORTS", "open_port_values", "format_ratio",
           "check_pool_values", "DESTINATION_USED", "DESTINATION_RATIO",
           "DESTINATION_TIME_WAIT",
           "STATE_SOCKETS", "series_of", "destination_samples", "state_values",
           "open_port_values_by_type", "host_of", "host_view", "CGROUP_USED",
           "NO_CGROUP2_INFO", "unnamed_owners", "check_no_cgroup2_info",
           "CGROUP_PSEUDO_NAMES", "CGROUP_NAME_MAX", "cgroup_cut_name",
           "collectd_escape", "cgroup_instances", "cgroup_values",
           "NAT_METRICS", "CONNTRACK_COUNTERS", "nat_destination_label",
           "nat_samples", "nat_values", "expected_nat_values",
           "nat_part_samples", "READ_COST", "check_read_cost",
           "check_read_cost_points"]


POOL_METRICS = ("collectd_ephemeral_ports_used",
                "collectd_ephemeral_ports_total",
                "collectd_ephemeral_ports_available",
                "collectd_ephemeral_ports_usage_ratio")
OPEN_PORTS = "collectd_instance_open_ports"
# What the whole read cost, under collectd's own host only: wall-clock and
# the read thread's CPU seconds.
READ_COST = ("collectd_ephemeral_port_exporter_read_seconds",
             "collectd_ephemeral_port_exporter_read_cpu_seconds")


def open_port_values(samples):
    """{port: value} of every collectd_instance_open_ports series."""
    ports = {}
    for (name, labels), (value, _) in samples.items():
        if name != OPEN_PORTS:
            continue
        label_map = dict(labels)
        check(label_map.get("instance") == HOSTNAME and
              set(label_map) == {"instance", "instance_open"},
              "unexpected labels on %s: %r" % (OPEN_PORTS, labels))
        ports[int(label_map["instance_open"])] = value
    return ports


def format_ratio(value):
    """How write_prometheus prints a gauge ("%.15g"), back as a float."""
    return float("%.15g" % value)


def check_pool_values(samples, used, total, what=""):
    """Asserts used/total/available/usage_ratio exactly."""
    prefix = (what + ": ") if what else ""
    check_equal(value_of(samples, "collectd_ephemeral_ports_used"), used,
                prefix + "collectd_ephemeral_ports_used")
    check_equal(value_of(samples, "collectd_ephemeral_ports_total"), total,
                prefix + "collectd_ephemeral_ports_total")
    check_equal(value_of(samples, "collectd_ephemeral_ports_available"),
                total - used, prefix + "collectd_ephemeral_ports_available")
    check_equal(value_of(samples, "collectd_ephemeral_ports_usage_ratio"),
                format_ratio(used / total),
                prefix + "collectd_ephemeral_ports_usage_ratio")
    check_equal(value_of(samples, SCRAPE_SUCCESS), 1.0, prefix + SCRAPE_SUCCESS)


DESTINATION_USED = "collectd_ephemeral_ports_destination_used"
DESTINATION_RATIO = "collectd_ephemeral_ports_destination_usage_ratio"
DESTINATION_TIME_WAIT = "collectd_ephemeral_ports_destination_time_wait"
STATE_SOCKETS = "collectd_ephemeral_ports_state_sockets"


def series_of(samples, name):
    """[(label dict without instance, value, timestamp_ms)] of every series
    with this name (checking that instance is the test host)."""
    found = []
    for (key_name, labels), (value, timestamp) in samples.items():
        if key_name != name:
            continue
        label_map = dict(labels)
        check(label_map.pop("instance", None) == HOSTNAME,
              "unexpected instance on %s: %r" % (name, labels))
        found.append((label_map, value, timestamp))
    return found


def destination_samples(samples):
    """{(remote, local): {"used": (value, ts), "usage_ratio": (value, ts),
    "time_wait": (value, ts)}} of every per-destination series."""
    result = {}
    for name, field in ((DESTINATION_USED, "used"),
                        (DESTINATION_RATIO, "usage_ratio"),
                        (DESTINATION_TIME_WAIT, "time_wait")):
        for labels, value, timestamp in series_of(samples, name):
            check(set(labels) == {"ephemeral_ports_destination", "type"},
                  "unexpected labels on %s: %r" % (name, labels))
            key = (labels["ephemeral_ports_destination"], labels["type"])
            result.setdefault(key, {})[field] = (value, timestamp)
    return result


def state_values(samples):
    """{state: sockets} of every collectd_ephemeral_ports_state_sockets."""
    states = {}
    for labels, value, _ in series_of(samples, STATE_SOCKETS):
        check(set(labels) == {"ephemeral_ports_state"},
              "unexpected labels on %s: %r" % (STATE_SOCKETS, labels))
        states[labels["ephemeral_ports_state"]] = value
    return states


def open_port_values_by_type(samples):
    """{type: {port: value}} of every collectd_instance_open_ports series;
    type is "" for TCP (no type label) and "udp" for UDP."""
    result = {}
    for labels, value, _ in series_of(samples, OPEN_PORTS):
        check(set(labels) in ({"instance_open"}, {"instance_open", "type"}),
              "unexpected labels on %s: %r" % (OPEN_PORTS, labels))
        kind = labels.get("type", "")
        result.setdefault(kind, {})[int(labels["instance_open"])] = value
    return result


def host_of(namespace_name):
    return "%s:%s" % (HOSTNAME, namespace_name)


def host_view(samples, host):
    """The series of one host, relabelled as the test host's, so that
    value_of, check_pool_values, destination_samples, state_values, ... read
    them."""
    view = {}
    for (name, labels), found in samples.items():
        label_map = dict(labels)
        if label_map.get("instance") != host:
            continue
        label_map["instance"] = HOSTNAME
        view[(name, tuple(sorted(label_map.items())))] = found
    return view


CGROUP_USED = "collectd_ephemeral_ports_cgroup_used"
# What collectd logs, once, where it sees no cgroup2 mount (under `ip netns
# exec`, which mounts a fresh /sys): no owner can be named.
NO_CGROUP2_INFO = ('ephemeral_ports plugin: cgroup: /proc/self/mountinfo: '
                   'no cgroup2 mount: every pool port counts under '
                   '"unknown", a TIME_WAIT socket\'s under "time_wait"')


def unnamed_owners(pool, time_wait, unknown, udp_held):
    """The per-cgroup series {(group, type): ports} where no owner can be
    named, after checking the test's own sets against ss -tan: time_wait
    the in-pool TIME-WAIT ports, unknown the other in-pool ports (TCP),
    udp_held the in-pool UDP ports.  A group holding no port is not
    reported."""
    table = ss_tcp()
    check_equal({s.local_port for s in table if s.local_port in pool
                 and s.state == "TIME-WAIT"}, time_wait,
                "in-pool TIME-WAIT ports in ss -tan")
    check_equal({s.local_port for s in table if s.local_port in pool
                 and s.state != "TIME-WAIT"}, unknown,
                "in-pool ports of other states in ss -tan")
    return {key: n for key, n in ((("unknown", ""), len(unknown)),
                                  (("time_wait", ""), len(time_wait)),
                                  (("unknown", "udp"), len(udp_held)))
            if n > 0}


def check_no_cgroup2_info(collectd):
    """The premise of every test that expects all owners under unknown and
    time_wait: collectd said, once, that it sees no cgroup2 mount."""
    lines = [line for line in plugin_log_lines(collectd.log_lines(), "info")
             if NO_CGROUP2_INFO in line]
    check_equal(len(lines), 1, "INFO lines saying %r" % NO_CGROUP2_INFO)


CGROUP_PSEUDO_NAMES = ("unknown", "time_wait")
CGROUP_NAME_MAX = 127  # collectd's instance fields


def _fnv1a64(data):
    value = 0xcbf29ce484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001b3) & 0xffffffffffffffff
    return value


def cgroup_cut_name(path):
    """A path as cgroup_names.h fits it in 127 bytes: unchanged when it
    fits, else "..." + 16 hex digits of its FNV-1a hash + its longest end
    that starts at a "/" and fits in the 108 bytes left (else the last 108
    bytes from a UTF-8 character's start)."""
    data = path.encode()
    if len(data) <= CGROUP_NAME_MAX:
        return path
    prefix = "...%016x" % _fnv1a64(data)
    tail = data[len(data) - (CGROUP_NAME_MAX - len(prefix)):]
    if b"/" in tail:
        tail = tail[tail.index(b"/"):]
    else:
        while tail and tail[0] & 0xc0 == 0x80:
            tail = tail[1:]
    return prefix + tail.decode()


def collectd_escape(name):
    """What plugin_dispatch_values makes of a name field: a leading "/"
    dropped, every other "/" turned into "_", "/" alone into "root"."""
    if name == "/":
        return "root"
    return (name[1:] if name.startswith("/") else name).replace("/", "_")


def cgroup_instances(paths_by_id):
    """{id: plugin_instance} for groups reported together: each path cut
    and escaped; a name that a pseudo group or a group of smaller id has
    gets "-<id>" (cut to fit)."""
    names = {group: collectd_escape(cgroup_cut_name(path))
             for group, path in paths_by_id.items()}
    result = {}
    for group, name in names.items():
        if name in CGROUP_PSEUDO_NAMES or any(
                other < group and other_name == name
                for other, other_name in names.items()):
            suffix = "-%d" % group
            name = name.encode()[:CGROUP_NAME_MAX - len(suffix)].decode(
                errors="ignore") + suffix
        result[group] = name
    return result


def cgroup_values(samples):
    """{(plugin_instance, type): (value, timestamp_ms)} of every
    collectd_ephemeral_ports_cgroup_used series of the test host; type is
    "" for TCP, "udp" for UDP."""
    found = {}
    for labels, value, timestamp in series_of(samples, CGROUP_USED):
        check(set(labels) in ({"ephemeral_ports_cgroup"},
                              {"ephemeral_ports_cgroup", "type"}),
              "unexpected labels on %s: %r" % (CGROUP_USED, labels))
        kind = labels.get("type", "")
        check(kind in ("", "udp"), "type %r on %s" % (kind, CGROUP_USED))
        found[(labels["ephemeral_ports_cgroup"], kind)] = (value, timestamp)
    return found


NAT_METRICS = ("collectd_ephemeral_ports_nat_used",
               "collectd_ephemeral_ports_nat_total",
               "collectd_ephemeral_ports_nat_usage_ratio")
CONNTRACK_COUNTERS = {
    "insert_failed": "collectd_ephemeral_ports_conntrack_insert_failed_total",
    "drop": "collectd_ephemeral_ports_conntrack_drop_total"}


def nat_destination_label(protocol, address, port):
    """The plugin_instance of a NAT key: "127.0.0.1:8080", "[::1]:8080",
    "udp:127.0.0.1:5353"."""
    endpoint = ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)
    return ("udp:" if protocol == "udp" else "") + endpoint


def nat_samples(samples, instance=HOSTNAME):
    """{(destination, source): {"used": (value, ts), "total": ...,
    "usage_ratio": ...}} of the ephemeral_ports_nat series of one host."""
    result = {}
    for name in NAT_METRICS:
        field = name[len("collectd_ephemeral_ports_nat_"):]
        for (key_name, labels), found in samples.items():
            label_map = dict(labels)
            if key_name != name or label_map.get("instance") != instance:
                continue
            check(set(label_map) == {"ephemeral_ports_nat", "type",
                                     "instance"},
                  "unexpected labels on %s: %r" % (name, labels))
            key = (label_map["ephemeral_ports_nat"], label_map["type"])
            result.setdefault(key, {})[field] = found
    return result


def nat_values(samples, instance=HOSTNAME):
    """{(destination, source): (used, total, usage_ratio)}"""
    result = {}
    for key, fields in nat_samples(samples, instance).items():
        check(set(fields) == {"used", "total", "usage_ratio"},
              "NAT key %r has only %r" % (key, sorted(fields)))
        result[key] = tuple(fields[f][0]
                            for f in ("used", "total", "usage_ratio"))
    return result


def expected_nat_values(usage, total):
    """nat_values' form of {key: used} with the pool size total."""
    return {key: (float(used), float(total), format_ratio(used / total))
            for key, used in usage.items()}


def nat_part_samples(samples, instance=HOSTNAME):
    """{"scrape_success": (value, ts), "insert_failed": ..., "drop": ...}:
    the NAT part's scrape_success and the conntrack counters present."""
    found = {"scrape_success": samples.get((SCRAPE_SUCCESS, tuple(sorted(
        {"ephemeral_port_exporter": "nat", "instance": instance}.items()))))}
    for field, name in CONNTRACK_COUNTERS.items():
        found[field] = samples.get((name, (("instance", instance),)))
    return {field: value for field, value in found.items()
            if value is not None}


def check_read_cost(view, what):
    """The read's cost series of a host's view: a read takes time, and the
    thread's CPU time is at most its wall-clock time (1 ms of clock
    granularity aside)."""
    seconds = value_of(view, READ_COST[0])
    cpu = value_of(view, READ_COST[1])
    check(0 < seconds < 10, "%s: read seconds %r" % (what, seconds))
    check(0 < cpu <= seconds + 0.001,
          "%s: read CPU seconds %r for %r s" % (what, cpu, seconds))


def check_read_cost_points(seconds, cpu, what):
    """The read-cost points a receiver stored, {time: value} of seconds and
    of cpu_seconds: at least one read with both, each as check_read_cost
    wants it."""
    both = sorted(set(seconds) & set(cpu))
    check(both, "%s: no read with both cost points: seconds %r, cpu_seconds "
          "%r" % (what, seconds, cpu))
    for stamp in both:
        check(0 < seconds[stamp] < 10 and
              0 < cpu[stamp] <= seconds[stamp] + 0.001,
              "%s: read cost at %s: %r s, CPU %r s"
              % (what, stamp, seconds[stamp], cpu[stamp]))
    log("%s read cost: %d reads, wall-clock %.6f - %.6f s, CPU %.6f - %.6f s"
        % (what, len(both), min(seconds[s] for s in both),
           max(seconds[s] for s in both), min(cpu[s] for s in both),
           max(cpu[s] for s in both)))
