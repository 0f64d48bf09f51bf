"""Shared machinery of the long-running tests (test_memcheck, test_soak).

- Every read, as collectd dispatched it: the stock csv plugin writes each
  value list to a file per series under the temp dir; the plugin stamps
  every value of a read with the read's start time, so one timestamp is one
  read.
- Churn: a thread that keeps the namespace's socket table and port range
  moving (connections opening and closing in several ways, TIME_WAIT piling
  up, listeners on pool ports appearing and vanishing, UDP sockets, and the
  range sysctl changing every few seconds), logging each range change with
  the wall-clock window in which it happened.
- Samples of a process's VmRSS and descriptors.
"""

import collections
import os
import random
import socket
import threading
import time

import harness as h

RANGE_SYSCTL = "/proc/sys/net/ipv4/ip_local_port_range"
CHURN_SERVER_PORT = 9000  # outside every range the churn sets
# The ranges the churn cycles through, the first one set at the start.  With
# these reserved ports their pools hold 95, 195, 50 and 59 ports: distinct,
# so a read that used the wrong range shows in its total.
CHURN_RANGES = [(40000, 40099), (40000, 40199), (40100, 40149),
                (40000, 40063)]
RESERVED_PORTS = "40010-40014"

# ---------------------------------------------------------------------------
# Every read, from the csv plugin


def csv_config(tmp):
    """extra_config for h.Collectd: the csv plugin writing under tmp."""
    return ("LoadPlugin csv\n"
            "<Plugin csv>\n"
            '  DataDir "%s"\n' % tmp.join("csv")
            + "  StoreRates false\n"
            "</Plugin>\n")


def _series_dir_and_prefix(tmp, plugin, plugin_instance, type_,
                           type_instance):
    """csv writes DataDir/<host>/<plugin>[-<pinst>]/<type>[-<tinst>]-<date>."""
    plugin_dir = plugin + ("-" + plugin_instance if plugin_instance else "")
    prefix = type_ + ("-" + type_instance if type_instance else "") + "-"
    return tmp.join("csv", h.HOSTNAME, plugin_dir), prefix


def series_files(tmp, plugin, plugin_instance="", type_=None,
                 type_instance=""):
    """The csv files of one series (one per day), oldest first."""
    directory, prefix = _series_dir_and_prefix(
        tmp, plugin, plugin_instance, type_ or plugin, type_instance)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    # The date suffix is YYYY-MM-DD: lexical order is date order.
    return [os.path.join(directory, name) for name in sorted(names)
            if name.startswith(prefix) and
            len(name) == len(prefix) + len("YYYY-MM-DD")]


def read_series(tmp, plugin, plugin_instance="", type_=None,
                type_instance=""):
    """[(timestamp text, [value floats])] of one series, in file order.
    The timestamp stays text: it is the read's identity."""
    rows = []
    for path in series_files(tmp, plugin, plugin_instance, type_,
                             type_instance):
        with open(path) as handle:
            header = handle.readline()
            if not header.startswith("epoch,"):
                h.fail("%s: unexpected csv header %r" % (path, header))
            for line in handle:
                if not line.endswith("\n"):
                    break  # being written right now
                fields = line.rstrip("\n").split(",")
                rows.append((fields[0], [float(f) for f in fields[1:]]))
    return rows


def count_rows(tmp, plugin, plugin_instance="", type_=None,
               type_instance=""):
    """How many complete rows one series has so far."""
    count = 0
    for path in series_files(tmp, plugin, plugin_instance, type_,
                             type_instance):
        with open(path, "rb") as handle:
            count += max(handle.read().count(b"\n") - 1, 0)
    return count


def read_count(tmp):
    """Reads so far: every read dispatches scrape_success exactly once."""
    return count_rows(tmp, "ephemeral_port_exporter")


def wait_for_reads(collectd, tmp, wanted, timeout, poll_s=1.0):
    """Waits until collectd has done `wanted` reads; returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        if collectd.process.poll() is not None:
            h.fail("collectd exited with status %d during the run\n%s"
                   % (collectd.process.returncode, collectd.diagnostics()))
        count = read_count(tmp)
        if count >= wanted:
            return count
        if time.monotonic() > deadline:
            h.fail("only %d of %d reads after %d s" % (count, wanted,
                                                       timeout))
        time.sleep(poll_s)


# ---------------------------------------------------------------------------
# Churn


def read_range():
    with open(RANGE_SYSCTL) as handle:
        low, high = (int(word) for word in handle.read().split())
    return low, high


def write_range(port_range):
    with open(RANGE_SYSCTL, "w") as handle:
        handle.write("%d %d\n" % port_range)


RangeChange = collections.namedtuple("RangeChange",
                                     "started finished old new")


class Churn:
    """Keeps sockets and the port range moving in a thread of its own.

    Each step opens a few connections (IPv4 and IPv6, to a listener outside
    every range, so each takes an ephemeral port), and closes the oldest in
    turn: client first (TIME_WAIT on the pool port), server first (the
    client lingers in CLOSE_WAIT, then LAST_ACK), or with a reset.  Now and
    then it opens a listener on a pool port, closes one, or binds a UDP
    socket to an ephemeral port.  Every range_every_s seconds it writes the
    next range of `ranges` into the sysctl, logging the change."""

    MAX_CONNECTIONS = 40
    MAX_LISTENERS = 4
    MAX_UDP = 6

    def __init__(self, ranges, range_every_s, step_s=0.01, seed=1):
        self.ranges = list(ranges)
        self.range_every_s = range_every_s
        self.step_s = step_s
        self.random = random.Random(seed)
        self.changes = []
        self.counts = collections.Counter()
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._servers = []
        self._connections = collections.deque()  # (client, server end)
        self._listeners = collections.deque()
        self._udp = collections.deque()
        self._union = set()
        for low, high in self.ranges:
            self._union.update(range(low, high + 1))

    # -- life cycle

    def start(self):
        self._servers = [h.listener(CHURN_SERVER_PORT, family, backlog=256)
                         for family in (socket.AF_INET, socket.AF_INET6)]
        self.started_range = read_range()
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            h.fail("churn thread did not stop")
        for client, server_end in self._connections:
            client.close()
            server_end.close()
        for sock in list(self._listeners) + list(self._udp) + self._servers:
            sock.close()
        if self.error is not None:
            h.fail("churn failed: %r" % (self.error,))

    def ranges_in_force(self, since, until):
        """The ranges the sysctl held at any moment of [since, until] (wall
        clock).  A change is in force from when its write started; the
        range before it, until the write finished."""
        in_force = set()
        current = self.started_range
        current_from = float("-inf")
        for change in self.changes:
            if current_from <= until and change.finished >= since:
                in_force.add(current)
            current, current_from = change.new, change.started
        if current_from <= until:
            in_force.add(current)
        return in_force

    # -- the thread

    def _run(self):
        next_range = time.monotonic() + self.range_every_s
        index = 0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_range:
                    index = (index + 1) % len(self.ranges)
                    self._change_range(self.ranges[index])
                    next_range += self.range_every_s
                self._step()
                time.sleep(self.step_s)
        except Exception as error:  # reported by stop()
            self.error = error

    def _change_range(self, new):
        old = read_range()
        started = time.time()
        write_range(new)
        finished = time.time()
        self.changes.append(RangeChange(started, finished, old, new))
        self.counts["range changes"] += 1

    def _step(self):
        for _ in range(2):
            self._connect()
        while len(self._connections) > self.MAX_CONNECTIONS // 2 or \
                (self._connections and self.random.random() < 0.5):
            self._close_oldest()
        roll = self.random.random()
        if roll < 0.05:
            self._open_listener()
        elif roll < 0.10 and self._listeners:
            self._listeners.popleft().close()
            self.counts["listeners closed"] += 1
        elif roll < 0.20:
            self._bind_udp()

    def _connect(self):
        family = self.random.choice((socket.AF_INET, socket.AF_INET6))
        server = self._servers[0 if family == socket.AF_INET else 1]
        try:
            client = h.client(CHURN_SERVER_PORT, family)
        except OSError as error:
            if h.is_address_not_available(error):
                self.counts["connect EADDRNOTAVAIL"] += 1
                return
            raise
        self._connections.append((client, server.accept()[0]))
        self.counts["connections opened"] += 1

    def _close_oldest(self):
        client, server_end = self._connections.popleft()
        how = self.random.choice(("client first", "server first", "reset"))
        if how == "client first":
            client.close()  # TIME_WAIT on the client's pool port
            server_end.close()
        elif how == "server first":
            server_end.close()
            client.close()
        else:
            h.close_with_reset(client)
            server_end.close()
        self.counts["connections closed " + how] += 1

    def _open_listener(self):
        if len(self._listeners) >= self.MAX_LISTENERS:
            return
        port = self.random.choice(sorted(self._union))
        family = self.random.choice((socket.AF_INET, socket.AF_INET6))
        try:
            self._listeners.append(h.listener(port, family))
        except OSError:
            self.counts["listener port busy"] += 1
            return
        self.counts["listeners opened"] += 1

    def _bind_udp(self):
        if len(self._udp) >= self.MAX_UDP:
            self._udp.popleft().close()
        family = self.random.choice((socket.AF_INET, socket.AF_INET6))
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((h.LOOPBACK[family], 0))
        except OSError:
            sock.close()
            self.counts["udp bind failed"] += 1
            return
        self._udp.append(sock)
        self.counts["udp sockets bound"] += 1

    def summary(self):
        return ", ".join("%s %d" % item for item in sorted(self.counts.items()))


# ---------------------------------------------------------------------------
# Process figures


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    h.fail("no VmRSS for pid %d" % pid)


def status_kib(pid, field):
    """A "kB" field of /proc/PID/status (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    h.fail("no %s for pid %d" % (field, pid))


def descriptors(pid):
    """pid's open descriptors, each as (number, what it refers to:
    readlink); one closed while we looked is left out."""
    directory = "/proc/%d/fd" % pid
    found = []
    for name in os.listdir(directory):
        try:
            found.append((int(name),
                          os.readlink(os.path.join(directory, name))))
        except FileNotFoundError:
            pass  # closed while we looked
    return found


def descriptor_targets(pid):
    """What each open descriptor of pid refers to (readlink)."""
    return [target for _, target in descriptors(pid)]
