"""The namespace benchmark (issue 10): what one read of many network
namespaces costs. run_bench starts it as the first process of PID, mount
and network namespaces of its own (see netns_world.py):

    unshare --pid --mount --net --fork --mount-proc --kill-child \\
        python3 netns_bench.py CONFIG.json RESULT.json

Per phase (the pods sharing the kernel's global established table, then
pods made with net.ipv4.tcp_child_ehash_entries set so that each has its
own): COUNT pods with SOCKETS TCP sockets each are created, the machine is
topped up to PROCESSES processes, and ROUNDS rounds are run, each

  floor, list, floor, all, collector, floor, no bound, own, floor own

  list       collectd with a NetNamespace line for every pod
  all        collectd with AllNetNamespaces true
  own        collectd with no namespace option (its own namespace only)
  collector  the heap driver's reads (AllNetNamespaces, no collectd)
  floor      floor -m netns over the same namespaces (its own and the pods)
  no bound   the same without bound-only sockets
  floor own  floor -m netns over its own namespace alone

so that every collectd run lies between two floors. Then all pods but
NODE_PODS go, and the plugin with AllNetNamespaces runs between floors
again: the node of the operators' question. One heap driver
(heap_driver.c) reads with AllNetNamespaces through both phases: at 0
pods, at COUNT pods and at 0 again in each. The results go to
RESULT.json; netns_report.py renders them.

With netns_interval set in CONFIG.json (run_bench --netns-interval), the
same world runs the busy node of netns_node.py instead.
"""

import argparse
import datetime
import json
import signal
import subprocess
import sys
import time

from benchlib import (BenchError, Children, Collectd, log, machine,
                      measure_collectd, measure_idle_rate, versions)
from netns_world import World, check_hosts

READS = 10  # measured reads per collectd round
LONG_READS = 6  # the same for reads of more than LONG_READ_NS
LONG_READ_NS = 0.5e9
VERIFY_READS = 3


def run_floor(cfg, paths, repeat, extra=()):
    out = subprocess.run([cfg.floor, "-m", "netns", "-n", str(repeat)]
                         + list(extra) + paths,
                         capture_output=True, text=True, check=True)
    return {k: float(v) for k, v in
            (kv.split("=", 1) for kv in out.stdout.split())
            if k not in ("mode",)}


def kernel_tcp_sockets():
    """TCP sockets in the kernel, every namespace's (slab objects in use,
    TIME_WAIT included): what a walk of the shared table meets."""
    count = 0
    with open("/proc/slabinfo") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] in ("TCP", "TCPv6", "tw_sock_TCP",
                                        "tw_sock_TCPv6"):
                count += int(fields[1])
    return count


def reads_for(cfg, read_ns):
    reads = READS if read_ns < LONG_READ_NS else LONG_READS
    return max(reads // 3, 3) if cfg.quick else reads


def interval_for(read_ns):
    """About five times a read (the method needs an idle gap after it)."""
    return max(0.05, round(5 * read_ns / 1e9 + 0.005, 2))


def plugin_conf(kind, pods):
    if kind == "own":
        return ""
    if kind == "list":
        lines = "".join('  NetNamespace "%s"\n' % p.path for p in pods)
    else:
        lines = "  AllNetNamespaces true\n"
    return "<Plugin ephemeral_ports>\n%s</Plugin>\n" % lines


def verify(cfg, children, kind, pods, interval):
    """A short run writing every namespace's scrape_success: the plugin
    must read every pod, each with success, and log no ERROR; else the
    figures would measure something else."""
    cd = Collectd(cfg, children, "plugin", interval,
                  plugin_conf(kind, pods), csv_hosts=".*")
    try:
        cd.wait_reads(VERIFY_READS, 60 + 10 * interval)
        hosts = cd.scrape_success()
        errors = cd.log_errors()
    finally:
        cd.stop()
    return check_hosts(hosts, errors, pods, kind)


class HeapDriver:
    """heap_driver with AllNetNamespaces: 'read N' on its stdin makes N
    reads and answers with one line of key=value figures."""

    def __init__(self, cfg, children):
        self.children = children
        self.proc = children.start([cfg.heap_driver], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)

    def measure(self, reads):
        self.proc.stdin.write("read %d\n" % reads)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError("heap_driver exited")
        return {k: int(v) for k, v in
                (kv.split("=", 1) for kv in line.split())}

    def stop(self):
        self.proc.stdin.close()
        self.children.stop(self.proc)


def mean(a, b):
    return (a + b) / 2


class Round:
    """One round's measurements in the order they ran, so that each
    collectd run is compared with the floors measured just before and
    after it: the machine's other work (its sockets in the shared table
    above all) drifts over minutes, and a median of one reader's rounds
    against another's would compare different machines."""

    def __init__(self, cfg, children, world, heap, idle_rate, plan):
        self.cfg, self.children, self.world = cfg, children, world
        self.heap, self.idle_rate, self.plan = heap, idle_rate, plan
        self.out = {"tcp_sockets": []}

    def collectd(self, kind, pods=None):
        pods = self.world.pods if pods is None else pods
        m = measure_collectd(self.cfg, self.children, "plugin",
                             self.plan["intervals"][kind], self.plan["reads"],
                             self.idle_rate, plugin_conf(kind, pods))
        m["processes"] = self.world.processes() + 1  # collectd's gone now
        self.out["tcp_sockets"].append(kernel_tcp_sockets())
        log("   %-10s %9.3f ms/read (reader), %9.3f (process), %d reads, "
            "%d processes" % (kind, m["reader_ns"] / 1e6,
                              m["process_ns"] / 1e6, m["reads"],
                              m["processes"]))
        return m

    def floor(self, what, paths, extra=()):
        f = run_floor(self.cfg, paths, self.plan["repeat"] if len(paths) > 1
                      else self.plan["own_repeat"], extra)
        self.out["tcp_sockets"].append(kernel_tcp_sockets())
        log("   %-10s %9.3f ms/read (dumps), %9.3f (all), %d sockets"
            % (what, f["cpu_ns_per_read"] / 1e6,
               f["cpu_ns_all_per_read"] / 1e6, f["sockets"]))
        return f


def plan_for(cfg, paths):
    """Intervals, reads per collectd run and floor repetitions from one
    untimed pass of the floor."""
    estimate = run_floor(cfg, paths, 1)["cpu_ns_all_per_read"]
    own_estimate = run_floor(cfg, ["."], 10)["cpu_ns_all_per_read"]
    repeat = max(3, min(1000, int(2e9 / max(estimate, 1))))
    own_repeat = max(10, min(10000, int(1e9 / max(own_estimate, 1))))
    if cfg.quick:
        repeat, own_repeat = max(repeat // 4, 2), max(own_repeat // 4, 10)
    return {"intervals": {"own": interval_for(own_estimate),
                          "list": interval_for(estimate * 1.2),
                          "all": interval_for(estimate * 1.3)},
            "reads": reads_for(cfg, estimate), "repeat": repeat,
            "own_repeat": own_repeat}


def measure_rounds(cfg, children, world, heap, idle_rate, res):
    """Each round: floor, list, floor, all, collector, floor, floor
    without bound-only sockets, own, floor of the own namespace."""
    paths = ["."] + [p.path for p in world.pods]
    plan = plan_for(cfg, paths)
    res["plan"] = plan
    res["verified"] = {k: verify(cfg, children, k, world.pods,
                                 plan["intervals"][k])
                       for k in ("list", "all")}
    rounds = []
    for r in range(cfg.rounds):
        log("   round %d" % (r + 1))
        rd = Round(cfg, children, world, heap, idle_rate, plan)
        o = rd.out
        o["floor_a"] = rd.floor("floor", paths)
        o["list"] = rd.collectd("list")
        o["floor_b"] = rd.floor("floor", paths)
        o["all"] = rd.collectd("all")
        if heap:
            o["collector"] = heap.measure(plan["reads"])
            log("   collector  %9.3f ms/read (heap_driver)"
                % (o["collector"]["cpu_ns"] / 1e6))
        o["floor_c"] = rd.floor("floor", paths)
        o["floor_no_bound"] = rd.floor("no bound", paths,
                                       ["-s", "0x%x" % NO_BOUND_STATES])
        o["own"] = rd.collectd("own")
        o["floor_own"] = rd.floor("floor own", ["."])
        rounds.append(o)
    res["rounds"] = rounds
    res["processes"] = max(o[k]["processes"] for o in rounds
                           for k in ("list", "all"))
    res["tcp_sockets"] = [min(s for o in rounds for s in o["tcp_sockets"]),
                          max(s for o in rounds for s in o["tcp_sockets"])]


def measure_node(cfg, children, world, idle_rate, res):
    """The node of the operators' question: NODE_PODS of the pods left,
    read with AllNetNamespaces between floors: floor, all, floor, all,
    ..., floor."""
    world.remove_pods(keep=cfg.node_pods)
    world.top_up(cfg.processes - 1)
    paths = ["."] + [p.path for p in world.pods]
    plan = plan_for(cfg, paths)
    res["node_pods"] = len(world.pods)
    res["node_verified"] = verify(cfg, children, "all", world.pods,
                                  plan["intervals"]["all"])
    rd = Round(cfg, children, world, None, idle_rate, plan)
    floors = [rd.floor("node floor", paths)]
    alls = []
    for r in range(cfg.rounds):
        alls.append(rd.collectd("all"))
        floors.append(rd.floor("node floor", paths))
    res["node_rounds"] = {"all": alls, "floor": floors}
    res["node_tcp_sockets"] = [min(rd.out["tcp_sockets"]),
                               max(rd.out["tcp_sockets"])]


# The floor's second dump without BOUND_INACTIVE: every state but LISTEN.
NO_BOUND_STATES = 0x1ffe & ~(1 << 10)


def run_phase(cfg, children, world, heap, idle_rate, name, child_ehash):
    log("== %s: %d pods, %d sockets each" % (name, cfg.netns_count,
                                             cfg.netns_sockets))
    res = {"name": name, "child_ehash": child_ehash}
    try:
        if heap:
            res["heap_before"] = heap.measure(cfg.heap_reads)
        world.populate(cfg, child_ehash, res)
        if heap:
            res["heap_pods"] = heap.measure(cfg.heap_reads)
        measure_rounds(cfg, children, world, heap, idle_rate, res)
        if 0 < cfg.node_pods < cfg.netns_count:
            measure_node(cfg, children, world, idle_rate, res)
    finally:
        world.remove_pods()
    if heap:
        res["heap_after"] = heap.measure(cfg.heap_reads)
    return res


def run_phases(cfg, children, world, result):
    result["idle_rate"] = measure_idle_rate(cfg, children)
    phases = [("shared", 0)]
    if cfg.child_ehash:
        phases.append(("own tables", cfg.child_ehash))
    # One collector through every phase: what a cycle of pods leaves on its
    # heap shows as a difference between the phases' "after".
    heap = None
    try:
        if cfg.heap_driver:
            heap = HeapDriver(cfg, children)
            heap.measure(2)  # warm-up
        result["phases"] = [run_phase(cfg, children, world, heap,
                                      result["idle_rate"], name, value)
                            for name, value in phases]
    finally:
        if heap is not None:
            heap.stop()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="run_bench's options, as JSON")
    p.add_argument("result", help="where the results go, as JSON")
    a = p.parse_args()
    with open(a.config) as f:
        cfg = argparse.Namespace(**json.load(f))

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    children = Children()
    started = time.monotonic()
    result = {"load_before": loadavg(), "count": cfg.netns_count,
              "sockets": cfg.netns_sockets, "rounds": cfg.rounds,
              "heap_reads": cfg.heap_reads,
              "date": datetime.date.today().isoformat(),
              "machine": machine(), "versions": versions(cfg)}
    world = None
    try:
        world = World(children)
        if getattr(cfg, "netns_interval", 0):
            # The busy node (netns_node.py): rounds of its own.
            from netns_node import run_node
            run_node(cfg, children, world, result)
        else:
            run_phases(cfg, children, world, result)
    finally:
        # A second Ctrl-C (or run_bench's SIGTERM) must not cut the
        # clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if world is not None:
            world.close()
        children.stop_all()
    result["load_after"] = loadavg()
    result["minutes"] = (time.monotonic() - started) / 60
    with open(a.result, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("netns_bench: " + str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        log("netns_bench: interrupted")
        sys.exit(130)
