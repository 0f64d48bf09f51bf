"""NetNamespaceInterval (issue 19): other namespaces read at a pace of
their own, spread over the reads, served without gaps.

In the test's namespace (port range 40000-40019) the test makes eight more
(netns_scene's named namespaces, tag "pace<i>"), each with a pool of 10
and, in two of them, a listener on 9000 with clients.  collectd
(Interval 1) measures them through eight NetNamespace lines with
`NetNamespaceInterval 4`; the test scrapes write_prometheus every 0.2 s
for 16 s while the real Prometheus (the shipped prometheus.yml, intervals
1 s) scrapes too.

Exactly:
- collectd's own namespace is read at every read: its scrape_success
  timestamps are 1 s apart;
- each other namespace is read at the first read, then at every 4th:
  after its second reading its timestamps are 4 s apart, and each of those
  reads is one of collectd's own (the same read time);
- the eight are spread evenly: every read after the first reads exactly two;
- no scrape lacks any of their series once it was served (collectd's cache
  keeps them for Timeout x 4 s, not Timeout x 1 s), and their values are
  those of ss inside each namespace;
- Prometheus stored, for each namespace, exactly the samples write_prometheus
  served (one per 4 s, at its read time), a query at every second of the
  window finds each of them, and it rejected no sample.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(TESTS, "integration"), TESTS]
import harness as h  # noqa: E402
import prometheus_scene as prom  # noqa: E402
from netns_scene import (OWN_RANGE, Options, Scene, check_reading,
                         clients_of)  # noqa: E402

NAMESPACES = 8
# NetNamespaceInterval 4 at Interval 1: four reads apart, so that values
# kept only Timeout (2) x Interval would vanish for a while each time.
EVERY = 4
PER_READ = NAMESPACES // EVERY
WATCH_S = 16.0
SCRAPE_EVERY_S = 0.2
# A read starts within this of its schedule on a loaded 2-core machine.
JITTER_MS = 150
CLIENTS = {0: 3, 3: 5}  # namespace: clients of its listener on 9000


def pool_range(i):
    return (41000 + 10 * i, 41009 + 10 * i)


def make_namespaces(scene):
    made = []
    for i in range(NAMESPACES):
        ns = scene.named("pace%d" % i, pool_range(i))
        if i in CLIENTS:
            ns.build(clients_of(9000, CLIENTS[i]))
        made.append(ns)
    return made


def watch(collectd, namespaces):
    """Scrapes for WATCH_S: per host, the timestamps served, and the
    scrapes that lacked a host it had served before."""
    hosts = [h.HOSTNAME] + [ns.host for ns in namespaces]
    stamps = {x: [] for x in hosts}
    gaps = []
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        if collectd.process.poll() is not None:
            h.fail("collectd exited\n" + collectd.diagnostics())
        samples = h.scrape()
        for x in hosts:
            stamp = h.scrape_success_stamp(samples, x)
            if stamp == 0:
                if stamps[x]:
                    gaps.append((round(time.time(), 2), x))
            elif not stamps[x] or stamps[x][-1] != stamp:
                stamps[x].append(stamp)
        time.sleep(SCRAPE_EVERY_S)
    return stamps, gaps


def spaced(stamps, step_ms):
    return all(abs(b - a - step_ms) <= JITTER_MS
               for a, b in zip(stamps, stamps[1:]))


def check_pace(stamps, gaps, namespaces):
    own = stamps[h.HOSTNAME]
    h.check(len(own) >= WATCH_S - 2 and spaced(own, 1000),
            "collectd's own reads 1 s apart: %r" % own)
    h.check_equal(gaps, [], "scrapes that lacked a namespace it had served")
    per_read = {}
    for ns in namespaces:
        name, mine = ns.name, stamps[ns.host]
        h.check(len(mine) >= WATCH_S // EVERY,
                "%s read only at %r" % (name, mine))
        h.check(mine[0] == own[0] or mine[0] < own[0],
                "%s first read %d, collectd's first served %d"
                % (name, mine[0], own[0]))
        h.check(spaced(mine[1:], EVERY * 1000),
                "%s read every %d s after its first: %r" % (name, EVERY,
                                                             mine))
        h.check(set(mine[1:]) <= set(own),
                "%s read at times that are not collectd's reads: %r vs %r"
                % (name, mine, own))
        for stamp in mine[1:]:
            per_read.setdefault(stamp, []).append(name)
    # Reads whose every namespace reading was seen: all but the last
    # EVERY reads of the window, which a later reading may not show.
    complete = [s for s in own[1:-EVERY] if s > min(per_read, default=0)]
    h.check(complete, "no read after the first one was watched whole")
    h.check_equal({s: len(per_read.get(s, [])) for s in complete},
                  {s: PER_READ for s in complete},
                  "namespaces read at each read after the first")
    h.log("FIGURES: %d own reads 1 s apart; each of %d namespaces read "
          "every %d s, %d per read, no gap in %d scrapes"
          % (len(own), NAMESPACES, EVERY, PER_READ,
             int(WATCH_S / SCRAPE_EVERY_S)))


def check_stored(stamps, namespaces):
    """Prometheus holds, per namespace, the samples served: one per read
    of it, at its read time, and answers at every second of the window."""
    # Whole milliseconds, as Prometheus counts: a fraction rounded up in
    # the query's end but not in the count expected made one point more.
    now_ms = int(time.time() * 1000)
    for ns in namespaces:
        name = ns.name
        selector = 'ephemeral_port_exporter_scrape_success{netns="%s"}' % name
        prom.wait_stored_after(selector, stamps[ns.host][-1] - 1)
        stored = [t for t, v in prom.raw_samples(selector, "60s")]
        served = [t for t in stamps[ns.host] if t >= stored[0]]
        h.check_equal(stored[:len(served)], served,
                      "samples Prometheus stored for %s" % name)
        start_ms = int(stored[0])
        result = prom.api("/api/v1/query_range", query=selector,
                          start="%d.%03d" % divmod(start_ms, 1000),
                          end="%d.%03d" % divmod(now_ms, 1000), step="1")
        values = result["result"][0]["values"] if result["result"] else []
        h.check_equal(len(values), (now_ms - start_ms) // 1000 + 1,
                      "seconds of the window at which %s has a value" % name)


def pace_scenario():
    prom.require_skip_conditions()
    scene = Scene()
    try:
        namespaces = make_namespaces(scene)
        block = h.plugin_block(
            ['NetNamespace "%s"' % ns.path for ns in namespaces]
            + ["NetNamespaceInterval %d" % EVERY])
        with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
            collectd.start_and_wait_ready()
            with prom.start_prometheus(tmp) as prometheus:
                stamps, gaps = watch(collectd, namespaces)
                check_pace(stamps, gaps, namespaces)
                samples = h.scrape()
                for ns in namespaces:
                    check_reading(samples, ns, Options(), "paced")
                check_stored(stamps, namespaces)
                prom.check_prometheus_itself(prometheus)
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")
    finally:
        scene.close()


if __name__ == "__main__":
    try:
        h.run_scenarios({"pace": pace_scenario}, port_range=OWN_RANGE)
    finally:
        h.delete_shared_namespaces()
