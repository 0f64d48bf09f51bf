"""What the benchmarks share: network namespaces, the processes they start,
and a real collectd whose read thread's CPU time is measured per read (see
run_bench's docstring for the method)."""

import ctypes
import datetime
import glob
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CLONE_NEWNET = 0x40000000
# Reads left out at the start of a measurement (start-up, first reads).
SKIP_READS = 3
# The Hostname of every collectd the benchmarks start; other network
# namespaces are reported under "bench:<name>".
HOSTNAME = "bench"
# The plugin's gauge of each read's cost (wall and CPU seconds, plugin and
# type of this name), dispatched at the end of every read: the filter chain
# writes it too, and it is not counted as a read of its own.
READ_COST_TYPE = "ephemeral_port_exporter_read"


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- namespaces ----

_libc = ctypes.CDLL(None, use_errno=True)


def setns_fd(fd, what):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns %s: %s" % (what, os.strerror(err)))


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        setns_fd(fd, path)
    finally:
        os.close(fd)


class Namespace:
    """A network namespace with lo up and the port range PORT_RANGE; this
    process works inside it between enter() and leave()."""

    def __init__(self, name, port_range):
        self.name = name
        self.port_range = port_range
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.created = False

    def enter(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.created = True
        setns("/run/netns/" + self.name)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
            f.write("%d %d\n" % self.port_range)
        with open("/proc/sys/net/ipv4/ip_local_reserved_ports", "w") as f:
            f.write("\n")

    def leave(self):
        if _libc.setns(self.home, CLONE_NEWNET) != 0:
            log("warning: cannot return to the original namespace")
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], check=False)
            self.created = False


# ---- processes ----

class Children:
    """Every long-running process this script starts, stopped at the end."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        proc = subprocess.Popen(argv, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc, timeout=30):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_many(self, procs, timeout=30):
        """Signals all of them first, then waits: many stop in parallel."""
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            self.stop(proc, timeout)

    def stop_all(self):
        self.stop_many(list(self.procs))


# ---- collectd ----

def read_schedstat_ns(path):
    with open(path) as f:
        return int(f.read().split()[0])


def process_cpu_ns(pid):
    total = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            total += read_schedstat_ns(path)
        except (OSError, ValueError):
            pass
    return total


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError("no %s in /proc/%d/status" % (field, pid))


class Collectd:
    """One collectd with one read plugin (or none), counting its reads.
    csv_hosts: whose scrape_success reaches the csv files (a regex on the
    host); the reads are counted in collectd's own host's file."""

    def __init__(self, args, children, read_plugin, interval,
                 plugin_conf="", csv_hosts="^%s$" % HOSTNAME):
        self.args = args
        self.children = children
        self.interval = interval
        self.dir = tempfile.mkdtemp(prefix="ep-bench-collectd-")
        plugins = os.path.join(self.dir, "plugins")
        os.mkdir(plugins)
        # collectd loads plugins from one PluginDir and refuses symlinks.
        for name in ("csv", "logfile", "match_regex", "tcpconns"):
            shutil.copy(os.path.join(args.stock_plugin_dir, name + ".so"),
                        plugins)
        shutil.copy(args.plugin, os.path.join(plugins, "ephemeral_ports.so"))
        load = ""
        if read_plugin == "plugin":
            load = "LoadPlugin ephemeral_ports\n" + plugin_conf
        elif read_plugin == "tcpconns":
            load = ("LoadPlugin tcpconns\n<Plugin tcpconns>\n"
                    "  ListeningPorts false\n  AllPortsSummary true\n"
                    "</Plugin>\n")
        conf = """Hostname "{hostname}"
FQDNLookup false
Interval {interval}
ReadThreads 1
WriteThreads 1
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
PluginDir "{plugins}"
TypesDB "{types_db}"
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  PrintSeverity true
  File "{dir}/collectd.log"
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "{dir}/csv"
  StoreRates false
</Plugin>
LoadPlugin match_regex
# One value per read reaches the csv plugin: it counts the reads (and the
# plugin's gauge of what each read cost).
<Chain "PostCache">
  <Rule "count_reads">
    <Match "regex">
      Host "{csv_hosts}"
      Plugin "^(ephemeral_port_exporter|ephemeral_port_exporter_read|tcpconns)$"
      TypeInstance "^(|ESTABLISHED)$"
    </Match>
    <Target "write">
      Plugin "csv"
    </Target>
  </Rule>
  Target "stop"
</Chain>
{load}""".format(hostname=HOSTNAME, interval=interval, dir=self.dir,
                 plugins=plugins, types_db=args.types_db, load=load,
                 csv_hosts=csv_hosts)
        self.conf = os.path.join(self.dir, "collectd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = children.start([args.collectd, "-f", "-C", self.conf],
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.reader = None
        if read_plugin is not None:
            self.reader = self._find_reader()

    def _find_reader(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("collectd exited: see " + self.log_tail())
            for comm in glob.glob("/proc/%d/task/*/comm" % self.pid):
                try:
                    with open(comm) as f:
                        name = f.read().strip()
                except OSError:
                    continue
                if name.startswith("reader#"):
                    return os.path.join(os.path.dirname(comm), "schedstat")
            time.sleep(0.05)
        raise BenchError("collectd started no read thread: " + self.log_tail())

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "collectd.log")) as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return "(no log)"

    def log_errors(self):
        """The ERROR lines of collectd's log."""
        try:
            with open(os.path.join(self.dir, "collectd.log")) as f:
                return [line for line in f if "[error]" in line]
        except OSError:
            return []

    def reads(self):
        count = 0
        for path in glob.glob(os.path.join(self.dir, "csv", HOSTNAME, "*",
                                           "*")):
            if os.path.basename(path).startswith(READ_COST_TYPE + "-"):
                continue  # the read's cost: one more line per read
            with open(path, "rb") as f:
                count += max(f.read().count(b"\n") - 1, 0)  # minus header
        return count

    def read_costs(self):
        """The plugin's own gauge of each read, oldest first: (seconds,
        cpu_seconds) of ephemeral_port_exporter_read, dispatched at the end
        of every read."""
        costs = []
        for path in sorted(glob.glob(os.path.join(
                self.dir, "csv", HOSTNAME, READ_COST_TYPE,
                READ_COST_TYPE + "-*"))):
            with open(path) as f:
                for line in f.read().splitlines()[1:]:  # minus header
                    fields = line.split(",")
                    costs.append((float(fields[1]), float(fields[2])))
        return costs

    def sample_each_read(self, skip, count, timeout):
        """The read thread's CPU time of each of COUNT reads after the
        first SKIP, in ns, one by one: the end of a read is the line of its
        cost gauge (the plugin dispatches it last); the thread's CPU is
        sampled when it is still just after, so the difference between two
        samples is exactly one read. Needs an interval longer than a read.
        """
        def settled(target):
            deadline = time.monotonic() + timeout
            while len(self.read_costs()) < target:
                if self.proc.poll() is not None:
                    raise BenchError("collectd exited: " + self.log_tail())
                if time.monotonic() > deadline:
                    raise BenchError("no read %d in %.0f s: %s"
                                     % (target, timeout, self.log_tail()))
                time.sleep(0.005)
            for _ in range(200):
                time.sleep(0.01)
                cpu = read_schedstat_ns(self.reader)
                time.sleep(0.01)
                if read_schedstat_ns(self.reader) == cpu:
                    if len(self.read_costs()) != target:
                        raise BenchError("read %d began before read %d was "
                                         "sampled: interval too short"
                                         % (target + 1, target))
                    return cpu
            raise BenchError("the read thread is never still after read %d"
                             % target)

        samples = [settled(skip)]
        for k in range(skip + 1, skip + count + 1):
            samples.append(settled(k))
        return [b - a for a, b in zip(samples, samples[1:])]

    def scrape_success(self):
        """{host: [scrape_success values, oldest first]} from the csv."""
        hosts = {}
        pattern = os.path.join(self.dir, "csv", "*", "ephemeral_port_exporter",
                               "*")
        for path in glob.glob(pattern):
            host = path.split(os.sep)[-3]
            with open(path) as f:
                lines = f.read().splitlines()[1:]  # minus header
            hosts.setdefault(host, []).extend(
                float(line.split(",")[1]) for line in lines)
        return hosts

    def wait_reads(self, target, timeout):
        deadline = time.monotonic() + timeout
        while True:
            count = self.reads()
            if count >= target:
                return count
            if self.proc.poll() is not None:
                raise BenchError("collectd exited: " + self.log_tail())
            if time.monotonic() > deadline:
                raise BenchError("collectd made %d of %d reads in %.0f s: %s"
                                 % (count, target, timeout, self.log_tail()))
            time.sleep(0.002)

    def sample_idle(self, target):
        """(reads, reader CPU ns, process CPU ns, wall s) in the idle gap
        after read number >= target; moves on to the next read when the
        reader is not idle at the sampling point."""
        for attempt in range(20):
            count = self.wait_reads(target + attempt, 60 + 4 * self.interval)
            time.sleep(0.4 * self.interval)
            cpu = read_schedstat_ns(self.reader)
            proc = process_cpu_ns(self.pid)
            wall = time.monotonic()
            time.sleep(0.001)
            if (read_schedstat_ns(self.reader) == cpu and
                    self.reads() == count):
                return count, cpu, proc, wall
            target = count
        raise BenchError("the read thread is never idle: interval too short")

    def stop(self):
        self.children.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_collectd(args, children, read_plugin, interval, reads,
                     idle_rate, plugin_conf=""):
    cd = Collectd(args, children, read_plugin, interval, plugin_conf)
    try:
        r0, cpu0, proc0, wall0 = cd.sample_idle(SKIP_READS)
        r1, cpu1, proc1, wall1 = cd.sample_idle(r0 + reads)
        n = r1 - r0
        result = {
            "reads": n,
            "reader_ns": (cpu1 - cpu0) / n,
            "process_ns": max(proc1 - proc0 - idle_rate * (wall1 - wall0),
                              0) / n,
            "rss_kib": status_kib(cd.pid, "VmRSS"),
            "hwm_kib": status_kib(cd.pid, "VmHWM"),
        }
    finally:
        cd.stop()
    return result


def measure_idle_rate(args, children, seconds=5.0):
    """collectd's own CPU (ns per second) with the same configuration and
    no read plugin."""
    cd = Collectd(args, children, None, 0.1)
    try:
        time.sleep(1.0)
        proc0, wall0 = process_cpu_ns(cd.pid), time.monotonic()
        time.sleep(seconds)
        proc1, wall1 = process_cpu_ns(cd.pid), time.monotonic()
    finally:
        cd.stop()
    return (proc1 - proc0) / (wall1 - wall0)



# ---- the other readers ----

def children_cpu_ns():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1e9


def measure_command(argv, repeat):
    """CPU per run of argv, every process it starts included (getrusage of
    the waited-for children, which sums their waited-for children)."""
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)  # warm-up
    before = children_cpu_ns()
    for _ in range(repeat):
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return (children_cpu_ns() - before) / repeat



# ---- report ----

def ms(ns):
    return "%.2f" % (ns / 1e6) if abs(ns) >= 1e5 else "%.3f" % (ns / 1e6)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cores": os.cpu_count(),
            "kernel": platform.release()}


def versions(args):
    cd = subprocess.run([args.collectd, "-h"], capture_output=True,
                        text=True).stdout
    cd_line = next((l for l in cd.splitlines() if l.startswith("collectd ")),
                   "collectd (unknown version)")
    git = subprocess.run(
        ["git", "-C", args.source_dir, "describe", "--always", "--dirty"],
        capture_output=True, text=True)
    built = datetime.datetime.fromtimestamp(
        os.path.getmtime(args.plugin)).strftime("%Y-%m-%d %H:%M")
    return cd_line.split(",")[0], "%s` (.so built %s" % (
        git.stdout.strip() or "unknown", built)

