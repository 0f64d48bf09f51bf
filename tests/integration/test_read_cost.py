"""What a read costs (issue 19): the ephemeral_port_exporter_read series
and the INFO when a read takes more than a tenth of the interval.

Scenario "advice": in the test's namespace (range 40000-40019) the test
makes three namespaces as a node's runtime would (they share the kernel's
global socket tables: tcp_ehash_entries < 0), then sets
net.ipv4.tcp_child_ehash_entries to 128 there and makes a fourth (a table
of its own, tcp_ehash_entries 128, read inside it to be sure).  collectd
reads all four through NetNamespace at Interval 0.02, so that any read of
five namespaces takes more than the tenth (2 ms; one dump walks the
kernel's 262,144-bucket table in about 1 ms here).  Over 100 reads the
plugin logs exactly one such INFO, and exactly as cost_tally.c writes it:
four other namespaces, the three sharing ones named in configuration
order, the advice that fits its own figures (a NetNamespaceInterval that
brings a read under the tenth, or collectd's own namespace alone being
over it); no selection advice (no AllNetNamespaces).

Scenario "gauge": collectd (Interval 1, ReadThreads 1) reads its own
namespace and two others.  The test samples the CPU time of collectd's
read thread (/proc/PID/task/TID/schedstat, nanoseconds on CPU) every
10 ms: the thread runs only during reads, so each read shows as one burst.
Each read's cpu_seconds, as write_prometheus serves it, equals its
burst within 0.5 ms + 5% (what the thread does outside the plugin's own
measurement: collectd's read loop, dispatching the two cost values), and
its seconds is at least its cpu_seconds.
"""

import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

OWN_RANGE = (40000, 40019)
ADVICE_INTERVAL = 0.02
ADVICE_READS = 100
READ_SECONDS, READ_CPU = h.READ_COST


def make_namespaces():
    names = [h.shared_namespace_name("cost%d" % i) for i in range(4)]
    # The test's own namespace: set here, it reaches no other test.
    for i, name in enumerate(names):
        if i == 3:
            h.run(["sysctl", "-qw", "net.ipv4.tcp_child_ehash_entries=128"])
        h.create_shared_namespace(name, (41000 + 10 * i, 41009 + 10 * i))
    for i, name in enumerate(names):
        entries = int(h.run(["ip", "netns", "exec", name, "cat",
                             "/proc/sys/net/ipv4/tcp_ehash_entries"])
                      .stdout)
        h.check(entries == 128 if i == 3 else entries < 0,
                "tcp_ehash_entries of %s: %d" % (name, entries))
    return names


def netns_lines(names):
    return ['NetNamespace "/run/netns/%s"' % name for name in names]


NUMBER = r"(\d+\.\d+)"


def advice_pattern(shared):
    return re.compile(
        r"^ephemeral_ports plugin: a read took %(n)s s, %(n)s%% of the "
        r"0\.02 s interval \(CPU %(n)s s\): collectd's own network namespace "
        r"%(n)s s, 4 other network namespaces %(n)s s \(%(n)s ms each\); "
        r"3 of them \(%(shared)s\) share the kernel's global socket tables "
        r"\(tcp_ehash_entries < 0\), so a dump in each walks the whole table "
        r"\(%(n)s s in all\): net\.ipv4\.tcp_child_ehash_entries gives the "
        r"namespaces created after it is set tables of their own, saving "
        r"most of that(?:; NetNamespaceInterval ([0-9.e+]+) would read each "
        r"of the 4 other namespaces once every (\d+) reads \(about %(n)s s a "
        r"read\)|(; collectd's own namespace alone takes more than a "
        r"tenth))$" % {"n": NUMBER, "shared": re.escape(", ".join(shared))})


def check_advice_figures(match):
    seconds, share, cpu, own, others, each, shared = (
        float(match.group(i)) for i in range(1, 8))
    h.check(abs(share - 100 * seconds / ADVICE_INTERVAL) <= 0.1 + 1e-9 +
            100 * 0.0005 / ADVICE_INTERVAL,
            "share %.1f%% of %.3f s" % (share, seconds))
    h.check(share > 10, "told at %.1f%%, not over a tenth" % share)
    h.check(own + others <= seconds + 0.001,
            "own %.3f + others %.3f over the read's %.3f" % (own, others,
                                                            seconds))
    h.check(abs(each * 4 / 1000 - others) <= 0.001,
            "%.1f ms each of 4 vs %.3f s" % (each, others))
    h.check(shared <= others + 0.001, "shared %.3f of %.3f" % (shared,
                                                               others))
    h.check(cpu <= seconds + 0.001, "CPU %.3f in %.3f s" % (cpu, seconds))
    if match.group(11) is not None:
        h.check(own >= ADVICE_INTERVAL / 10 - 0.0005,
                "own %.3f said to be over the tenth" % own)
        return "collectd's own namespace alone over the tenth"
    interval, every, about = (float(match.group(8)), int(match.group(9)),
                              float(match.group(10)))
    h.check(every >= 2 and abs(interval - every * ADVICE_INTERVAL) < 1e-9,
            "NetNamespaceInterval %g for every %d reads" % (interval, every))
    h.check(abs(about - (own + others / every)) <= 0.002,
            "about %.3f s a read, from own %.3f + %.3f / %d"
            % (about, own, others, every))
    return "NetNamespaceInterval %g (every %d reads)" % (interval, every)


def advice():
    names = make_namespaces()
    block = h.plugin_block(netns_lines(names))
    with h.TempDir() as tmp, h.Collectd(tmp, block,
                                        interval=ADVICE_INTERVAL) as collectd:
        collectd.start_and_wait_ready()
        h.wait_for_fresh_read(collectd, time.time())
        time.sleep(ADVICE_READS * ADVICE_INTERVAL)
        h.check_read_cost(h.host_view(h.scrape(), h.HOSTNAME), "advice")
        lines = [re.sub(r"^\[[^\]]*\] ", "", line) for line in
                 h.plugin_log_lines(collectd.log_lines(), "info")
                 if "a read took" in line]
        h.check_equal(len(lines), 1, "INFO lines about a read's cost: %r"
                      % lines)
        text = lines[0].replace("[info] ", "", 1)
        match = advice_pattern(names[:3]).match(text)
        h.check(match is not None, "the INFO is not as specified: %r" % text)
        h.log("FIGURES: one INFO in %d reads, advice: %s; %s"
              % (ADVICE_READS, check_advice_figures(match), text))
        h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"), [],
                      "plugin ERROR lines")
    for name in names:
        h.delete_shared_namespace(name)


def reader_thread(pid):
    for tid in os.listdir("/proc/%d/task" % pid):
        if h.read_text("/proc/%d/task/%s/comm" % (pid, tid)).strip() == \
                "reader#0":
            return int(tid)
    h.fail("collectd %d has no thread reader#0" % pid)


def thread_cpu_ns(pid, tid):
    return int(h.read_text("/proc/%d/task/%d/schedstat" % (pid, tid))
               .split()[0])


def cpu_bursts(pid, tid, seconds):
    """[(wall time the burst was first seen, CPU ns of the burst)]: the
    read thread's CPU time sampled every 10 ms, increments grouped while
    they follow each other."""
    bursts, last, last_change = [], thread_cpu_ns(pid, tid), None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now_ns, now = thread_cpu_ns(pid, tid), time.time()
        if now_ns != last:
            if last_change is not None and now - last_change < 0.1:
                bursts[-1][1] += now_ns - last
            else:
                bursts.append([now, now_ns - last])
            last, last_change = now_ns, now
    return bursts


def served_costs(collectd, seconds):
    """{read time (ms): (seconds, cpu_seconds)} as write_prometheus served
    them, scraped every 0.1 s."""
    costs = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples = h.scrape()
        wall, cpu = (h.sample(samples, READ_SECONDS),
                     h.sample(samples, READ_CPU))
        if wall and cpu and wall[1] == cpu[1]:
            costs[wall[1]] = (wall[0], cpu[0])
        time.sleep(0.1)
    return costs


def gauge():
    names = [h.shared_namespace_name("gauge%d" % i) for i in range(2)]
    for i, name in enumerate(names):
        h.create_shared_namespace(name, (41000 + 10 * i, 41009 + 10 * i))
    block = h.plugin_block(netns_lines(names))
    with h.TempDir() as tmp, h.Collectd(
            tmp, block, extra_config="ReadThreads 1\n") as collectd:
        collectd.start_and_wait_ready()
        h.wait_for_fresh_read(collectd, time.time())
        pid = collectd.process.pid
        tid = reader_thread(pid)
        costs = {}
        scraper = threading.Thread(
            target=lambda: costs.update(served_costs(collectd, 6.5)))
        scraper.start()
        bursts = cpu_bursts(pid, tid, 6.0)
        scraper.join()
    matched = []
    for stamp_ms, (wall, cpu) in sorted(costs.items()):
        start = stamp_ms / 1000.0
        found = [ns for seen, ns in bursts if start - 0.05 <= seen <=
                 start + max(wall, 0) + 0.1]
        if len(found) != 1:
            continue  # at the sampling window's edges
        burst = found[0] / 1e9
        h.check(abs(burst - cpu) <= 0.0005 + 0.05 * cpu,
                "read at %d ms: cpu_seconds %.6f, the thread's burst %.6f"
                % (stamp_ms, cpu, burst))
        h.check(cpu <= wall + 0.001, "read at %d ms: cpu %.6f, wall %.6f"
                % (stamp_ms, cpu, wall))
        matched.append((cpu, burst))
    h.check(len(matched) >= 4, "reads matched to the thread's bursts: %r "
            "(served %r, bursts %r)" % (matched, costs, bursts))
    h.log("FIGURES: %d reads: cpu_seconds vs the read thread's schedstat "
          "burst (ms): %s" % (len(matched), ", ".join(
              "%.3f/%.3f" % (c * 1000, b * 1000) for c, b in matched)))
    for name in names:
        h.delete_shared_namespace(name)


if __name__ == "__main__":
    try:
        h.run_scenarios({"advice": advice, "gauge": gauge},
                        port_range=OWN_RANGE)
    finally:
        h.delete_shared_namespaces()
