"""The machine of the namespace benchmark, made from nothing and gone with
the process that made it.

netns_bench.py runs as the first process of new PID, mount and network
namespaces (`unshare --pid --mount --net --fork --mount-proc`). So:

- /proc lists exactly the processes of the benchmark: the plugin's discovery
  walks the benchmark's 1,000 processes, not whatever else runs on the
  machine, and every figure is reproducible;
- /run/netns is a tmpfs of the benchmark's own mount namespace: `ip netns
  add` puts its pods there and nowhere else;
- "home", the network namespace the benchmark starts in, is collectd's own
  (like a node's host namespace); the pods are created from it, which is the
  namespace whose net.ipv4.tcp_child_ehash_entries applies to them;
- when the first process ends, however it ends, the kernel kills every other
  process of the PID namespace, the mount namespace goes with the last of
  them and with it every bind mount under /run/netns, so no pod namespace
  outlives the benchmark. A normal end stops everything in order anyway.
"""

import os
import subprocess
import time

from benchlib import HOSTNAME, BenchError, log, setns_fd

NETNS_DIR = "/run/netns"
CHILD_EHASH = "/proc/sys/net/ipv4/tcp_child_ehash_entries"
EHASH = "/proc/sys/net/ipv4/tcp_ehash_entries"
# A pod's sockets: CONNECTIONS loopback connections (a client socket on a
# pool port and the accepted socket on a destination port each) to
# DESTINATIONS listeners, plus LISTENERS listeners outside the pool.
DESTINATIONS = 2
LISTENERS = 10
SLEEPERS_PER_POD = 2


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def write_sysctl(path, value):
    with open(path, "w") as f:
        f.write("%d\n" % value)


class Pod:
    """A network namespace under /run/netns with lo up, a load generator
    holding its sockets and a few sleeping processes in it."""

    def __init__(self, world, name):
        self.world = world
        self.name = name
        self.path = os.path.join(NETNS_DIR, name)
        self.procs = []
        self.created = False

    def create(self, loadgen, sockets):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.created = True
        fd = os.open(self.path, os.O_RDONLY)
        try:
            setns_fd(fd, self.path)
            try:
                self._populate(loadgen, sockets)
            finally:
                setns_fd(self.world.home, "home")
        finally:
            os.close(fd)

    def _populate(self, loadgen, sockets):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        connections = (sockets - LISTENERS) // 2
        proc = self.world.children.start(
            [loadgen, "-c", str(connections), "-d", str(DESTINATIONS),
             "-p", "9001", "-l", str(LISTENERS), "-L", "7000"],
            stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        line = proc.stdout.readline()  # the load generator exits on failure
        if not line.startswith("ready"):
            raise BenchError("loadgen in %s did not get ready: %r"
                             % (self.name, line))
        for _ in range(SLEEPERS_PER_POD):
            self.procs.append(self.world.start_sleeper())

    def ehash_entries(self):
        """tcp_ehash_entries as seen inside: negative when the pod shares
        the global established table."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            setns_fd(fd, self.path)
            try:
                return read_int(EHASH)
            finally:
                setns_fd(self.world.home, "home")
        finally:
            os.close(fd)


class World:
    def __init__(self, children):
        self.children = children
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.pods = []
        self.sleepers = []
        if os.getpid() != 1:
            raise BenchError("netns_bench.py runs under unshare --pid "
                             "(run_bench starts it)")
        os.makedirs(NETNS_DIR, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755",
                        "ep-bench-netns", NETNS_DIR], check=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def start_sleeper(self):
        return self.children.start(["sleep", "infinity"],
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL)

    def processes(self):
        return sum(1 for d in os.listdir("/proc") if d.isdigit())

    def top_up(self, total):
        """Sleepers in home until the machine runs TOTAL processes (or
        fewer sleepers, down to none, when it runs more)."""
        while self.processes() < total:
            self.sleepers.append(self.start_sleeper())
        surplus = self.processes() - total
        if surplus > 0 and self.sleepers:
            gone = self.sleepers[-surplus:]
            del self.sleepers[-surplus:]
            self.children.stop_many(gone)

    def add_pods(self, count, loadgen, sockets):
        for i in range(count):
            pod = Pod(self, "ep-pod-%03d" % (len(self.pods) + 1))
            self.pods.append(pod)
            pod.create(loadgen, sockets)
        log("   %d pods with %d sockets each" % (count, sockets))

    def populate(self, cfg, child_ehash, res):
        """A phase's world: cfg.netns_count pods of cfg.netns_sockets made
        under tcp_child_ehash_entries child_ehash (restored after: only
        pod creation reads it), then sleepers up to cfg.processes with
        collectd; what it took goes into res."""
        old = self.child_ehash()
        res["child_ehash_before"] = old
        self.set_child_ehash(child_ehash)
        started = time.monotonic()
        try:
            self.add_pods(cfg.netns_count, cfg.loadgen, cfg.netns_sockets)
        finally:
            self.set_child_ehash(old)
        res["create_s"] = time.monotonic() - started
        res["pod_ehash_entries"] = self.pods[0].ehash_entries()
        self.top_up(cfg.processes - 1)  # collectd is the last one

    def remove_pods(self, keep=0):
        """All pods but the first KEEP go."""
        gone = self.pods[keep:]
        self.children.stop_many([p for pod in gone for p in pod.procs])
        for pod in gone:
            if pod.created:
                subprocess.run(["ip", "netns", "del", pod.name], check=False)
        self.pods = self.pods[:keep]

    def child_ehash(self):
        return read_int(CHILD_EHASH)

    def set_child_ehash(self, value):
        write_sysctl(CHILD_EHASH, value)

    def close(self):
        self.remove_pods()
        self.children.stop_many(self.sleepers)
        self.sleepers = []


def check_hosts(hosts, errors, pods, kind):
    """The plugin read every pod and its own namespace, each with
    scrape_success 1, and logged no ERROR (hosts: scrape_success values
    by host; errors: the log's ERRORs); else a BenchError. Returns how
    many namespaces it read."""
    expected = {HOSTNAME} | {"%s:%s" % (HOSTNAME, p.name) for p in pods}
    failed = sorted(h for h, v in hosts.items() if v and min(v) != 1)
    if set(hosts) != expected or failed or errors:
        raise BenchError(
            "%s: the plugin read %d namespaces, expected %d; failed: %s; "
            "missing: %s; unexpected: %s; errors: %s"
            % (kind, len(hosts), len(expected), failed[:5],
               sorted(expected - set(hosts))[:5],
               sorted(set(hosts) - expected)[:5], errors[:3]))
    return len(hosts)
