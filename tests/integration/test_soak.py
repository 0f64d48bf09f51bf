"""Soak: 2,000+ reads at Interval 0.05 of a churning socket table; then
10,000 reads of a steady one (scenario "flat", below).

collectd runs with the plugin (TCP and UDP, every series on) and the stock
csv plugin, which records every value list collectd dispatches; the plugin
stamps every value of a read with the read's start time, so a timestamp is
a read.  Two reads can share a millisecond (csv's resolution): when a read
starts late, collectd schedules the next one at once, and a read of this
small table takes well under 1 ms.  So every series must have exactly as
many rows at each timestamp as scrape_success.  A churn thread keeps
opening and closing connections (TIME_WAIT piles up), listeners on pool
ports and UDP sockets, and changes the port range every 3 s.

The reads of the last UNCHECKED_TAIL_S before collectd stops are not
checked: collectd 5.12 drops what is still in its write queue at shutdown,
so the last read's scrape_success (dispatched last) can be lost while its
other values were written.  Every read before that is checked, for TCP and
UDP: scrape_success 1, used <= total,
available == total - used, usage_ratio == used / total as csv prints it
("%f"), and total is the pool size of a range the sysctl held between that
read's start and the next read's start (the range is read at the start of
a read; csv rounds the timestamp to 1 ms, hence 1 ms of slack on each
side).  The ranges have distinct pool sizes, so a stale or mixed range
shows.

collectd's VmRSS and descriptors are sampled twice a second.  Warm-up is
the first 10% of the reads.  After it, the lasting descriptors must stay
exactly the same, and VmRSS may grow by at most RSS_GROWTH_LIMIT_KIB.  Not
lasting: the csv and log files (those plugins open and close them around
each write), and a file the plugin opens once per read (PER_READ_FILES)
when a sample catches a read in progress; two of the same such file in one
sample is a leak (one more per read) and counts.

Flat (issue 18): collectd's VmRSS after 10,000 reads must be within
FLAT_RSS_LIMIT_KIB of its VmRSS after 100, at 1,000 sockets (500 loopback
connections to 5 listeners, nothing changing), Interval 0.02, the plugin's
default options, write_prometheus fed every value.  The plugin itself
allocates nothing in a read once its tables are sized at the first read
(tests/bench/heap_driver --own, the collector alone: mallinfo2 in use
435,040 B and VmRSS 2,172 KiB after read 100 and after read 10,000; under
valgrind 38 allocations in all, for 10 reads as for 60).  What grew in
issue 18's figure was collectd's: the read thread copies every dispatched
value list into the write queue (about 750 B each, some 120 per read
here), the write thread frees them, and glibc keeps the pages of the
longest queue ever seen in those threads' arenas, however long ago.
Measured at 1,000 sockets, 100 -> 10,000 reads, with the benchmark's
collectd config (csv and match_regex, no write_prometheus): +112 and +160
KiB with the plugin (write queue seen at up to 449 values, 4 reads' worth,
when the write thread lagged), +68 KiB with tcpconns in its place, +384
KiB with MALLOC_ARENA_MAX=1 (one long stall): it follows the machine's
load, not the number of reads.  So this scenario makes
collectd's own part steady: the same series at every read (its value
cache and write_prometheus's metric families do not change), and glibc
told to give freed memory back at once (FLAT_MALLOC_TUNABLES: no
thread caches or fast bins holding chunks, no top pad, trimming at any
size), so that what stays resident is what is live.  What is left is what
the plugin controls: a leak planted in the plugin, one 8-byte malloc() per
read, grew VmRSS by 44 KiB over 2,900 reads under the same settings (the
same run without it: 0).  VmRSS is taken as the least of
FLAT_WINDOW samples over a second, at a moment between reads.
"""

import collections
import os
import resource
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import long_runs as lr  # noqa: E402

RANGE_EVERY_S = 3.0
INTERVAL_S = 0.05
MIN_READS = 2000
READS_TIMEOUT_S = 900
SCENARIO_TIMEOUT_S = 1200
SAMPLE_EVERY_S = 0.5
WARM_UP_FRACTION = 0.1
TIMESTAMP_SLACK_S = 0.001
UNCHECKED_TAIL_S = 1.0
# Growth measured after warm-up over ~4,500 reads with no memory leak: +76,
# +88 and +152 KiB (collectd's write queue and the malloc arenas of its read and
# write threads; csv's stdio buffers).  512 KiB is over 3x that; a planted
# 1 KiB-per-read leak grew VmRSS by 4,632 KiB.  A small leak per read is the
# flat scenario's to catch.
RSS_GROWTH_LIMIT_KIB = 512
# The flat scenario (see the docstring).
FLAT_RANGE = (41000, 42999)  # 2,000 ports, ends of different parity
FLAT_CONNECTIONS = 500  # 1,000 sockets: the client ends hold pool ports
FLAT_SERVER_PORTS = (9001, 9002, 9003, 9004, 9005)  # outside the range
FLAT_INTERVAL_S = 0.02
FLAT_FIRST_READS = 100
FLAT_READS = 10000
FLAT_READS_TIMEOUT_S = 600
FLAT_RSS_LIMIT_KIB = 16
FLAT_WINDOW = 40  # VmRSS samples, FLAT_WINDOW_STEP_S apart; the least counts
FLAT_WINDOW_STEP_S = 0.025
FLAT_MALLOC_TUNABLES = ("glibc.malloc.trim_threshold=0:glibc.malloc.top_pad=0"
                        ":glibc.malloc.mmap_threshold=131072"
                        ":glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0")
# Opened and closed by the plugin within each read: the sysctls of the
# pool and of TIME_WAIT reuse, and (with UDP measured) the socket counts,
# which resolve through /proc/net to /proc/PID/net.
PER_READ_FILES = ("/proc/sys/net/ipv4/ip_local_port_range",
                  "/proc/sys/net/ipv4/ip_local_reserved_ports",
                  "/proc/sys/net/ipv4/tcp_tw_reuse",
                  "/proc/sys/net/ipv4/tcp_tw_reuse_delay",
                  "/proc/sys/net/ipv4/tcp_timestamps",
                  "/proc/%(pid)d/net/sockstat", "/proc/%(pid)d/net/sockstat6")


def pool_size(port_range):
    return len(h.pool_of(port_range, lr.RESERVED_PORTS))


def by_time(row):
    return float(row[0])


def in_time_order(rows, until=float("inf")):
    """The csv rows stamped before until, in time order."""
    return sorted((row for row in rows if by_time(row) < until), key=by_time)


def check_every_read(tmp, churn, checked_until, run_ended):
    """Checks the values of each read before checked_until; returns (read
    timestamps, figures)."""
    every_success = in_time_order(lr.read_series(tmp,
                                                 "ephemeral_port_exporter"))
    every_start = [by_time(row) for row in every_success]
    success = [row for row in every_success if by_time(row) < checked_until]
    stamps = [stamp for stamp, _ in success]
    h.check(len(stamps) >= MIN_READS,
            "only %d reads, wanted %d" % (len(stamps), MIN_READS))
    times = [float(stamp) for stamp in stamps]
    failed = [stamp for stamp, values in success if values != [1.0]]
    h.check(not failed, "scrape_success not 1 at %d reads, first %r"
            % (len(failed), failed[:5]))
    # The last pair of a repeated stamp wins: the next read that started in
    # a later millisecond.
    next_start = dict(zip(stamps, every_start[1:] + [run_ended]))
    shared = len(stamps) - len(next_start)
    h.log("%d reads shared their millisecond with the read before "
          "(collectd catching up after a late read); %d reads of the last "
          "%.1f s before shutdown not checked"
          % (shared, len(every_start) - len(stamps), UNCHECKED_TAIL_S))
    figures = {}
    for protocol, instance in (("tcp", ""), ("udp", "udp")):
        rows = in_time_order(lr.read_series(tmp, "ephemeral_ports", instance),
                             checked_until)
        h.check_equal([stamp for stamp, _ in rows], stamps,
                      "%s: reads with ephemeral_ports values" % protocol)
        used_seen = []
        straddling = collections.Counter()
        for stamp, values in rows:
            h.check_equal(len(values), 4, "%s values at %s" % (protocol,
                                                                stamp))
            used, total, available, ratio = values
            what = "%s read at %s (used %g, total %g)" % (protocol, stamp,
                                                         used, total)
            allowed = {pool_size(r) for r in churn.ranges_in_force(
                float(stamp) - TIMESTAMP_SLACK_S,
                next_start[stamp] + TIMESTAMP_SLACK_S)}
            h.check(total in allowed, "%s: total not the pool size of a "
                    "range in force then %r" % (what, sorted(allowed)))
            if len(allowed) > 1:
                straddling[total] += 1
            h.check(0 <= used <= total, "%s: used > total" % what)
            h.check_equal(available, total - used, what + ": available")
            h.check_equal(ratio, float("%f" % (used / total)),
                          what + ": usage_ratio")
            used_seen.append(used)
        figures[protocol] = (min(used_seen), max(used_seen))
        h.log("%s: %d reads straddled a range change (totals seen there: "
              "%s)" % (protocol, sum(straddling.values()),
                       dict(sorted(straddling.items()))))
    return times, figures


class Sampler:
    """VmRSS and descriptors of collectd, with the wall-clock time."""

    def __init__(self, pid, csv_dir, log_path):
        self.pid = pid
        self.csv_dir = csv_dir + os.sep
        self.log_path = log_path
        self.samples = []  # (time, rss KiB, sorted lasting fd targets)
        self.transient_seen = collections.Counter()  # target: samples
        self.per_read = [path % {"pid": pid} for path in PER_READ_FILES]

    def is_transient(self, target, counts):
        if target in self.per_read:
            return counts[target] == 1
        return target.startswith(self.csv_dir) or target == self.log_path

    def sample(self):
        targets = lr.descriptor_targets(self.pid)
        counts = collections.Counter(targets)
        lasting = sorted(t for t in targets
                         if not self.is_transient(t, counts))
        self.transient_seen.update(set(targets) - set(lasting))
        self.samples.append((time.time(), lr.vm_rss_kib(self.pid), lasting))


def count_targets(targets, minus=()):
    """"/dev/null x2, socket:[123]" for a list of descriptor targets."""
    counts = collections.Counter(targets)
    counts.subtract(collections.Counter(minus))
    return ", ".join("%s x%d" % (target, count) if count > 1 else target
                     for target, count in sorted(counts.items())
                     if count > 0) or "none"


def check_flat(sampler, warm_up_ends):
    after = [s for s in sampler.samples if s[0] >= warm_up_ends]
    h.check(len(after) >= 10, "only %d samples after warm-up" % len(after))
    first_rss = sampler.samples[0][1]
    base_time, base_rss, base_fds = after[0]
    last_rss = after[-1][1]
    max_rss = max(s[1] for s in after)
    h.log("VmRSS KiB: first %d, after warm-up %d, last %d, max after "
          "warm-up %d (growth %+d KiB; limit %d)"
          % (first_rss, base_rss, last_rss, max_rss, max_rss - base_rss,
             RSS_GROWTH_LIMIT_KIB))
    per_read = sum(sampler.transient_seen[t] for t in sampler.per_read)
    h.log("descriptors: %d lasting after warm-up (%s); in %d samples, "
          "csv/log files seen open %d times, a per-read file mid-read %d "
          "times"
          % (len(base_fds), count_targets(base_fds), len(sampler.samples),
             sum(sampler.transient_seen.values()) - per_read, per_read))
    problems = ["collectd's lasting descriptors %.1f s after warm-up: %d, "
                "not %d (new: %s; gone: %s)"
                % (when - base_time, len(fds), len(base_fds),
                   count_targets(fds, minus=base_fds),
                   count_targets(base_fds, minus=fds))
                for when, _, fds in after if fds != base_fds][-1:]
    if max_rss - base_rss > RSS_GROWTH_LIMIT_KIB:
        problems.append("VmRSS grew %d KiB after warm-up (limit %d)"
                        % (max_rss - base_rss, RSS_GROWTH_LIMIT_KIB))
    h.check(not problems, "; ".join(problems))


def soak():
    h.check_equal(len({pool_size(r) for r in lr.CHURN_RANGES}),
                  len(lr.CHURN_RANGES), "distinct pool sizes of the ranges")
    with h.TempDir() as tmp:
        block = h.plugin_block(['Protocol "tcp" "udp"', "WatchPort 22",
                                "IgnorePort 40020", "TopDestinations 3",
                                "ReportStates true"])
        with h.Collectd(tmp, block, interval=INTERVAL_S,
                        extra_plugins=("csv",),
                        extra_config=lr.csv_config(tmp)) as collectd:
            collectd.start_and_wait_ready()
            sampler = Sampler(collectd.process.pid, tmp.join("csv"),
                              collectd.log_path)
            churn = lr.Churn(lr.CHURN_RANGES, RANGE_EVERY_S).start()
            started = time.monotonic()
            try:
                deadline = started + READS_TIMEOUT_S
                while lr.read_count(tmp) < MIN_READS:
                    h.check(collectd.process.poll() is None,
                            "collectd exited during the soak\n%s"
                            % collectd.diagnostics())
                    h.check(time.monotonic() < deadline,
                            "only %d reads after %d s"
                            % (lr.read_count(tmp), READS_TIMEOUT_S))
                    sampler.sample()
                    time.sleep(SAMPLE_EVERY_S)
                # MIN_READS rows are in the csv files, so they were stamped
                # before now: all of them are checked.
                checked_until = time.time()
                time.sleep(UNCHECKED_TAIL_S)
            finally:
                churn.stop()
            run_ended = time.time()
            run_s = time.monotonic() - started
            collectd.stop()
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")
            h.check_equal(h.plugin_log_lines(collectd.log_lines(),
                                             "warning"),
                          [], "plugin WARNING lines")
        times, used = check_every_read(tmp, churn, checked_until, run_ended)
        h.log("%d reads in %.1f s (first to last read %.1f s, longest gap "
              "%.3f s); churn: %s"
              % (len(times), run_s, times[-1] - times[0],
                 max(b - a for a, b in zip(times, times[1:])),
                 churn.summary()))
        h.log("used: TCP %d..%d, UDP %d..%d; %d range changes"
              % (used["tcp"] + used["udp"] + (len(churn.changes),)))
        check_flat(sampler, times[int(len(times) * WARM_UP_FRACTION)])


def flat_config(tmp):
    """csv gets scrape_success only (it counts the reads); write_prometheus
    gets every value, as in a real deployment."""
    return (lr.csv_config(tmp)
            + "LoadPlugin match_regex\n"
            "<Chain \"PostCache\">\n"
            "  <Rule \"count_reads\">\n"
            "    <Match \"regex\">\n"
            "      Plugin \"^ephemeral_port_exporter$\"\n"
            "      PluginInstance \"^$\"\n"
            "    </Match>\n"
            "    <Target \"write\">\n"
            "      Plugin \"csv\"\n"
            "    </Target>\n"
            "  </Rule>\n"
            "  <Target \"write\">\n"
            "    Plugin \"write_prometheus\"\n"
            "  </Target>\n"
            "</Chain>\n")


def steady_connections():
    """FLAT_CONNECTIONS loopback connections spread over the listeners;
    returns every socket (listeners included), to be kept open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * FLAT_CONNECTIONS + 100
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    sockets = [h.listener(port, socket.AF_INET, backlog=FLAT_CONNECTIONS)
               for port in FLAT_SERVER_PORTS]
    for i in range(FLAT_CONNECTIONS):
        listening = sockets[i % len(FLAT_SERVER_PORTS)]
        sockets.append(h.client(FLAT_SERVER_PORTS[i % len(FLAT_SERVER_PORTS)]))
        sockets.append(listening.accept()[0])
    return sockets


def rss_between_reads(pid):
    """The least VmRSS of a window of samples: a sample taken while a read
    is dispatching counts its value lists in flight."""
    samples = []
    for _ in range(FLAT_WINDOW):
        samples.append(lr.vm_rss_kib(pid))
        time.sleep(FLAT_WINDOW_STEP_S)
    return min(samples), max(samples)


def rss_by_mapping(pid):
    """{(address range, name): Rss KiB} from /proc/PID/smaps."""
    mappings = {}
    key = None
    with open("/proc/%d/smaps" % pid) as handle:
        for line in handle:
            fields = line.split()
            if not fields[0].endswith(":"):
                key = (fields[0], fields[5] if len(fields) > 5 else "[anon]")
            elif fields[0] == "Rss:":
                mappings[key] = int(fields[1])
    return mappings


def mapping_changes(before, after):
    """"name start: a -> b KiB" for each mapping whose Rss changed (a heap
    that grew changes its end: mappings are matched by start and name)."""
    def by_start(mappings):
        return {(k[0].split("-")[0], k[1]): v for k, v in mappings.items()}
    before, after = by_start(before), by_start(after)
    return ", ".join("%s %s: %d -> %d KiB"
                     % (key[1], key[0], before.get(key, 0), after.get(key, 0))
                     for key in sorted(set(before) | set(after))
                     if before.get(key, 0) != after.get(key, 0)) or "none"


def wait_reads(collectd, tmp, wanted, deadline, poll_s):
    while lr.read_count(tmp) < wanted:
        h.check(collectd.process.poll() is None,
                "collectd exited\n%s" % collectd.diagnostics())
        h.check(time.monotonic() < deadline, "only %d of %d reads after %d s"
                % (lr.read_count(tmp), wanted, FLAT_READS_TIMEOUT_S))
        time.sleep(poll_s)
    return lr.read_count(tmp)


def flat():
    lr.write_range(FLAT_RANGE)
    sockets = steady_connections()
    try:
        with h.TempDir() as tmp:
            with h.Collectd(tmp, h.plugin_block([]),
                            interval=FLAT_INTERVAL_S,
                            extra_plugins=("csv", "match_regex"),
                            extra_config=flat_config(tmp),
                            extra_env={"GLIBC_TUNABLES":
                                       FLAT_MALLOC_TUNABLES}) as collectd:
                collectd.start_and_wait_ready()
                pid = collectd.process.pid
                started = time.monotonic()
                deadline = started + FLAT_READS_TIMEOUT_S
                first_reads = wait_reads(collectd, tmp, FLAT_FIRST_READS,
                                         deadline, 0.02)
                first_rss, first_max = rss_between_reads(pid)
                first_maps = rss_by_mapping(pid)
                last_reads = wait_reads(collectd, tmp, FLAT_READS, deadline,
                                        0.5)
                last_rss, last_max = rss_between_reads(pid)
                last_maps = rss_by_mapping(pid)
                hwm = lr.status_kib(pid, "VmHWM")
                run_s = time.monotonic() - started
                collectd.stop()
                h.check_equal(h.plugin_log_lines(collectd.log_lines(),
                                                 "error"),
                              [], "plugin ERROR lines")
                h.check_equal(h.plugin_log_lines(collectd.log_lines(),
                                                 "warning"),
                              [], "plugin WARNING lines")
            success = lr.read_series(tmp, "ephemeral_port_exporter")
            failed = [stamp for stamp, values in success if values != [1.0]]
            h.check(not failed, "scrape_success not 1 at %d reads, first %r"
                    % (len(failed), failed[:5]))
    finally:
        for sock in sockets:
            sock.close()
    changes = mapping_changes(first_maps, last_maps)
    h.log("flat: %d sockets; VmRSS KiB after %d reads %d (window max %d), "
          "after %d reads %d (window max %d), VmHWM %d: growth %+d KiB "
          "(limit %d); %.1f s; Rss by mapping changed: %s"
          % (2 * FLAT_CONNECTIONS, first_reads, first_rss, first_max,
             last_reads, last_rss, last_max, hwm, last_rss - first_rss,
             FLAT_RSS_LIMIT_KIB, run_s, changes))
    h.check(last_rss - first_rss <= FLAT_RSS_LIMIT_KIB,
            "collectd's VmRSS grew %d KiB from read %d to read %d (limit "
            "%d); Rss by mapping changed: %s"
            % (last_rss - first_rss, first_reads, last_reads,
               FLAT_RSS_LIMIT_KIB, changes))


if __name__ == "__main__":
    h.run_scenarios({"soak": soak, "flat": flat},
                    port_range=lr.CHURN_RANGES[0],
                    reserved_ports=lr.RESERVED_PORTS,
                    timeout=SCENARIO_TIMEOUT_S)
