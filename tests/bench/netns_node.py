"""The busy node (issue 19, item 6): netns_bench.py's other run, chosen
with run_bench --netns-interval SECONDS. What a read of a Kubernetes-like
node costs the operator per interval, with every namespace read at every
read (the default) and with NetNamespaceInterval SECONDS.

In the world of netns_bench.py (netns_world.py: PID, mount and network
namespaces of the benchmark's own), per phase (pods sharing the kernel's
global established table; then, when --child-ehash is given, pods made with
net.ipv4.tcp_child_ehash_entries set): COUNT pods with SOCKETS TCP sockets
each, then ROUNDS rounds of

  floor, every, floor, interval, floor      (the second phase: no interval)

  every     collectd, Interval INTERVAL, AllNetNamespaces true
  interval  the same with NetNamespaceInterval SECONDS
  floor     floor -m netns over collectd's namespace and the pods, and over
            collectd's namespace alone (the floor of a read with no pod due)

Each collectd run measures its read thread's CPU read by read
(Collectd.sample_each_read) beside the plugin's own gauge of each read
(ephemeral_port_exporter_read: seconds, cpu_seconds): "every" over READS
reads after SKIP_READS; "interval" over CYCLES whole cycles of
ceil(SECONDS / INTERVAL) reads after its first two reads (the first reads
every namespace, as the option says; it is reported on its own). Each run
also writes every host's scrape_success: the run fails unless every pod was
read, each with 1, and collectd logged no ERROR.
"""

import time

from benchlib import BenchError, Collectd, log
from netns_bench import kernel_tcp_sockets, run_floor
from netns_world import check_hosts

SKIP_READS = 3  # "every": start-up and the first reads
READS = 7  # "every": reads measured
CYCLES = 2  # "interval": whole cycles measured
INTERVAL_SKIP = 2  # "interval": the read of every namespace, and one more


def reads_per_cycle(cfg):
    """NetNamespaceInterval's reads per cycle, as the plugin rounds it."""
    reads = cfg.netns_interval / cfg.node_interval
    whole = int(reads)
    return whole + 1 if reads - whole > 1e-6 else whole


def plugin_conf(cfg, interval_option):
    lines = "  AllNetNamespaces true\n"
    if interval_option:
        lines += "  NetNamespaceInterval %g\n" % cfg.netns_interval
    return "<Plugin ephemeral_ports>\n%s</Plugin>\n" % lines


def run_collectd(cfg, children, world, kind):
    """One collectd: per-read CPU of its read thread and the plugin's
    gauge, read by read, aligned (read k of both)."""
    interval_option = kind == "interval"
    if interval_option:
        skip, count = INTERVAL_SKIP, CYCLES * reads_per_cycle(cfg)
    else:
        skip, count = SKIP_READS, READS
    if cfg.quick:
        count = reads_per_cycle(cfg) if interval_option else 3
    cd = Collectd(cfg, children, "plugin", cfg.node_interval,
                  plugin_conf(cfg, interval_option), csv_hosts=".*")
    try:
        started = time.monotonic()
        reader = cd.sample_each_read(
            skip, count, timeout=120 + 4 * cfg.node_interval)
        wall = time.monotonic() - started
        costs = cd.read_costs()
        first = costs[0]
        gauge = costs[skip:skip + count]
        namespaces = check_hosts(cd.scrape_success(), cd.log_errors(),
                                 world.pods, kind)
        with open(cd.dir + "/collectd.log") as f:
            infos = [line.strip() for line in f
                     if "[info] ephemeral_ports plugin:" in line]
    finally:
        cd.stop()
    m = {"reader_ns": reader, "gauge_wall_s": [g[0] for g in gauge],
         "gauge_cpu_s": [g[1] for g in gauge], "first_read": first,
         "namespaces": namespaces, "wall_s": wall, "infos": infos[-3:],
         "tcp_sockets": kernel_tcp_sockets()}
    log("   %-9s per read (ms): reader %s; gauge cpu %s" % (
        kind, " ".join("%.0f" % (r / 1e6) for r in reader),
        " ".join("%.0f" % (g * 1e3) for g in m["gauge_cpu_s"])))
    return m


def floors(cfg, world, repeat):
    paths = ["."] + [p.path for p in world.pods]
    node = run_floor(cfg, paths, repeat)
    own = run_floor(cfg, ["."], 200)
    log("   floor     %9.3f ms/read (dumps), %9.3f (all); own %.3f"
        % (node["cpu_ns_per_read"] / 1e6, node["cpu_ns_all_per_read"] / 1e6,
           own["cpu_ns_per_read"] / 1e6))
    return {"node": node, "own": own, "tcp_sockets": kernel_tcp_sockets()}


def run_phase(cfg, children, world, name, child_ehash, with_interval):
    log("== node, %s: %d pods, %d sockets each" % (name, cfg.netns_count,
                                                   cfg.netns_sockets))
    res = {"name": name, "child_ehash": child_ehash}
    try:
        world.populate(cfg, child_ehash, res)
        res["processes"] = world.processes() + 1
        estimate = run_floor(cfg, ["."] + [p.path for p in world.pods], 1)
        repeat = max(2, min(20, int(3e9 / estimate["cpu_ns_all_per_read"])))
        res["floor_repeat"] = repeat
        rounds = []
        for r in range(cfg.node_rounds):
            log("   round %d" % (r + 1))
            o = {"floor_a": floors(cfg, world, repeat),
                 "every": run_collectd(cfg, children, world, "every"),
                 "floor_b": floors(cfg, world, repeat)}
            if with_interval:
                o["interval"] = run_collectd(cfg, children, world,
                                             "interval")
                o["floor_c"] = floors(cfg, world, repeat)
            rounds.append(o)
        res["rounds"] = rounds
    finally:
        world.remove_pods()
    return res


def run_node(cfg, children, world, result):
    """Both phases; their results into RESULT (netns_bench.py's JSON)."""
    if cfg.netns_interval < cfg.node_interval:
        raise BenchError("--netns-interval below the read interval")
    result["node"] = {"interval": cfg.node_interval,
                      "netns_interval": cfg.netns_interval,
                      "cycle": reads_per_cycle(cfg),
                      "reads": READS, "cycles": CYCLES,
                      "skip_every": SKIP_READS,
                      "skip_interval": INTERVAL_SKIP,
                      "rounds": cfg.node_rounds}
    phases = [run_phase(cfg, children, world, "shared", 0, True)]
    if cfg.child_ehash:
        phases.append(run_phase(cfg, children, world, "own tables",
                                cfg.child_ehash, False))
    result["phases"] = phases
