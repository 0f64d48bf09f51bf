"""Churn (issue 19, item 5): network namespaces come and go all the time
while collectd reads every one of them every 0.1 s.

collectd runs (the built plugin and write_prometheus) in the test's own
namespace with AllNetNamespaces true, ReportNat true and Interval 0.1, and
NetNamespaceName selecting the test's namespaces by name: every namespace
is still found at each read, but the machine's others (the host's, a
benchmark's 200 pods) are not read, so they cannot stretch the reads past
the interval, and the churn is judged alone.  For
EP_CHURN_SECONDS seconds (default 180, fit for CI; set hours for a long
run, e.g. EP_CHURN_SECONDS=14400) the test keeps CONCURRENT namespaces of
its own alive, each living a random 1-5 s once built (random.Random(seed);
the seed is logged, and EP_CHURN_SEED=<seed> repeats a run's choices):
about half `ip netns add` ones (named ept-c<N>-<pid>), the others held only
by a process (netns_scene's Holder) whose UTS hostname is ept-c<N>-<pid>,
the name the plugin must give it.  (None is left to be named
netns-<inode>: the kernel gives a freed namespace's inode to the next new
one at once, so such a name would not tell the run's namespaces apart.)
Each has a pool of its own (50000-50019), a listener on 9000 and 1-3
clients to it (IPv4 or IPv6); about a third also nat_scene's SNAT rule
(snat to 127.0.0.3) and NAT_FLOWS flows through it to 127.0.0.1:8080.  Each
has a veth pair, down, one end in the test's namespace: the kernel deletes
it when it destroys the namespace.  Half the time (REPLACE_SHARE) a
namespace whose time is up is replaced in place, as a pod is: the next one
is made as soon as the kernel has destroyed it, and mostly gets its inode
(the kernel gives the lowest free one), often before the next read.  Every
socket is on loopback.  A thread
scrapes write_prometheus all the time (every SCRAPE_EVERY_S).

Asserted:
- Reported: every namespace that lived at least MIN_LIFE_S (1 s, from its
  last socket made to its deletion: ten intervals, so a whole read and the
  next scrape fit in it while reads take under half a second; the longest
  read seen is logged) was served under "eptest:<name>" by a scrape
  showing scrape_success 1, used and total exactly its table's (the
  distinct pool ports of its clients and flows, of 20), and its NAT
  part's scrape_success 1 with exactly its NAT key ("127.0.0.1:8080" from
  127.0.0.3, used NAT_FLOWS) when it has the rule, no NAT key otherwise.
  None of the test's namespaces was ever served with scrape_success 0, nor
  collectd's own (its NAT part too).
- Gone: once a namespace was deleted (sockets reset, holder ended or name
  deleted), no scrape that started GONE_BOUND_S (2 s) later served any
  series of it.  collectd drops a value Timeout x Interval (2 x 0.1 s)
  after its last dispatch, checking every interval, and write_prometheus
  drops it with it; a read under way when the namespace went may still
  dispatch it once.  After the churn, the final scrape serves none of them.
- Nothing left behind, at the end:
  * the kernel destroyed every namespace the test made (its veth end
    vanished within FREED_TIMEOUT_S), and nothing in /proc refers to any
    inode they had: a hit in collectd or in the test fails; one in another
    program is a new namespace that got the freed inode (logged);
  * between reads collectd holds no namespace descriptor, no socket in
    another namespace and no thread in another namespace (its
    /proc/PID/task/*/ns/net), and as many sockets as before the churn
    (test_netns_come_and_go's check_holds_nothing);
  * collectd's lasting descriptors, target by target, are those it had
    after warm-up (the first WARM_UP_FRACTION of the run, at least
    WARM_UP_MIN_S).  Lasting: present in every sample over LASTING_WINDOW_S
    (a read's netlink sockets, sysctl files and namespace descriptors, and
    the scrape connections, each live well under it; both windows are
    taken while the scrapes go on, since write_prometheus keeps the last
    connection's descriptor until the next one comes);
  * VmRSS, sampled every SAMPLE_EVERY_S, grows by at most
    RSS_GROWTH_LIMIT_KIB after warm-up (see there).
- The plugin logged no ERROR; no ERROR is expected (a namespace that went
  between its discovery and its read is gone, not failing).

SKIP only when it cannot run: without root (or without nft and
conntrack, as the NAT tests).
"""

import collections
import os
import random
import re
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import long_runs as lr  # noqa: E402
from nat_scene import SNAT_RULES, SNAT_SOURCE  # noqa: E402
from netns_scene import OWN_RANGE, Scene  # noqa: E402
from test_netns_come_and_go import (check_holds_nothing,  # noqa: E402
                                    link_exists, referrers,
                                    socket_facts)
from test_soak import count_targets  # noqa: E402

DEFAULT_SECONDS = 180
INTERVAL_S = 0.1
CONCURRENT = 5
LIFETIME_S = (1.0, 5.0)
MIN_LIFE_S = 1.0
NAT_SHARE = 1 / 3
NAT_FLOWS = 3
NAT_PORT = 8080
NAT_KEY = ("127.0.0.1:%d" % NAT_PORT, SNAT_SOURCE)
SERVER_PORT = 9000
RANGE = (50000, 50019)
POOL_SIZE = RANGE[1] - RANGE[0] + 1
GONE_BOUND_S = 2.0
REPLACE_SHARE = 0.5
REPLACE_WAIT_S = 5.0
FREED_TIMEOUT_S = 30.0
SCRAPE_EVERY_S = 0.05
SAMPLE_EVERY_S = 0.5
PROGRESS_EVERY_S = 30.0
WARM_UP_FRACTION = 0.1
WARM_UP_MIN_S = 15.0
LASTING_WINDOW_S = 1.0
LASTING_SPACING_S = 0.02
# After warm-up (every kind of namespace made and read dozens of times, the
# number alive steady at CONCURRENT), collectd's VmRSS grew by +72 KiB over a
# 3-minute run (294 namespaces, 1,850 reads; +48 and +8 KiB over 40 s runs):
# collectd's cache and write_prometheus's families for the hosts that come
# and go, and malloc's arenas.  test_soak.py's bound, 512 KiB, is 7x that;
# it catches a leak of 1.8 KiB per namespace (~290 in 3 minutes) or of
# 280 B per read, far less over a long run.  Every namespace found costs the
# plugin a target even when NetNamespaceName leaves it out: 200 namespaces
# that another program made on the machine mid-run grew VmRSS by ~400 KiB.
RSS_GROWTH_LIMIT_KIB = 512
VETH_PREFIX = "epc"
READ_SECONDS = "collectd_ephemeral_port_exporter_read_seconds"


def churn_seconds():
    text = os.environ.get("EP_CHURN_SECONDS", "")
    try:
        return float(text) if text else DEFAULT_SECONDS
    except ValueError:
        h.fail("EP_CHURN_SECONDS=%r is not a number of seconds" % text)


def churn_seed():
    text = os.environ.get("EP_CHURN_SEED", "")
    return int(text) if text else int.from_bytes(os.urandom(4), "big")


def name_pattern():
    """The hosts of the namespaces this run makes (ept-c<N>-<pid>)."""
    return re.compile(r"^%s:ept-c\d+-%d$" % (re.escape(h.HOSTNAME),
                                             os.getppid()))


# --------------------------------------------------------------------------
# The namespaces


class Churned:
    """One namespace of the churn: what it is and when it lived."""

    def __init__(self, serial, kind, nat, clients, family, lifetime):
        self.serial, self.kind, self.nat = serial, kind, nat
        self.clients, self.family, self.lifetime = clients, family, lifetime
        self.name = h.shared_namespace_name("c%d" % serial)
        self.host = h.host_of(self.name)
        self.ns = None
        self.inode = None
        self.created = self.built = self.ending = self.gone = None
        self.expected = None

    def used(self):
        """The pool ports its clients hold: fewer than the clients when
        two, to different listeners, got the same port."""
        return len({h.local_port(sock) for sock in self.ns.sockets}
                   & self.ns.pool)

    def lived(self):
        return (self.ending - self.built) if self.built is not None and \
            self.ending is not None else 0.0

    def describe(self):
        return "%s (%s%s, inode %s, built %.3f, lived %.2f s)" % (
            self.name, self.kind, ", NAT" if self.nat else "", self.inode,
            self.built or 0, self.lived())

    def build(self, ns):
        listening = ns.listen(SERVER_PORT, self.family)
        ns.connect(listening, SERVER_PORT, self.clients, self.family)
        if self.nat:
            ns.connect(ns.listen(NAT_PORT), NAT_PORT, NAT_FLOWS)


class Churn:
    """Makes and deletes the namespaces, from the scenario's main thread
    (a Holder dies with the thread that started it)."""

    def __init__(self, scene, rng):
        self.scene = scene
        self.random = rng
        self.alive = []
        self.ended = []
        self.counts = collections.Counter()

    def make(self):
        rng = self.random
        serial = len(self.alive) + len(self.ended) + 1
        churned = Churned(serial, rng.choice(("named", "held")),
                          rng.random() < NAT_SHARE, rng.randint(1, 3),
                          rng.choice((socket.AF_INET, socket.AF_INET6)),
                          rng.uniform(*LIFETIME_S))
        churned.created = time.time()
        if churned.kind == "named":
            ns = self.scene.named("c%d" % serial, RANGE)
        else:
            ns = self.scene.held(churned.name, RANGE)
        churned.ns, churned.inode = ns, ns.inode
        self.alive.append(churned)
        self.scene.veth(ns, "%s%d" % (VETH_PREFIX, serial))
        if churned.nat:
            h.nft_load(SNAT_RULES, ns.nsenter())
        ns.build(churned.build)
        churned.built = time.time()
        churned.expected = expected_observation(churned)
        self.counts[churned.kind + (" with NAT" if churned.nat else "")] += 1

    def end(self, churned):
        churned.ending = time.time()
        self.alive.remove(churned)
        self.ended.append(churned)
        self.scene.drop(churned.ns)
        churned.gone = time.time()

    def replace(self, churned):
        """Ends it and, once the kernel has destroyed it (its veth end is
        gone), makes the next one at once: a pod replaced in place.  The
        new one gets the freed inode, as the kernel gives the lowest free
        one, unless a lower one was freed meanwhile."""
        self.end(churned)
        veth = "%s%d" % (VETH_PREFIX, churned.serial)
        deadline = time.monotonic() + REPLACE_WAIT_S
        while link_exists(veth) and time.monotonic() < deadline:
            time.sleep(0.005)
        self.make()
        self.counts["replaced in place"] += 1
        if self.alive[-1].inode == churned.inode:
            self.counts["replaced with the same inode"] += 1

    def step(self):
        now = time.time()
        for churned in [c for c in self.alive
                        if c.built is not None and
                        now >= c.built + c.lifetime]:
            if self.random.random() < REPLACE_SHARE:
                self.replace(churned)
            else:
                self.end(churned)
        while len(self.alive) < CONCURRENT:
            self.make()

    def end_all(self):
        for churned in list(self.alive):
            self.end(churned)

    def made(self):
        return len(self.alive) + len(self.ended)

    def summary(self):
        return "%d made (%s)" % (self.made(), ", ".join(
            "%s %d" % item for item in sorted(self.counts.items())))


def namespaces_on_machine():
    """How many network namespaces the machine has now (any process's,
    any under /run/netns): each costs every read its dumps."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found.add(os.readlink("/proc/%s/ns/net" % pid))
        except OSError:
            pass  # gone, or a kernel thread's
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") \
            else ():
        try:
            found.add("net:[%d]" % h.namespace_inode(
                os.path.join("/run/netns", name)))
        except OSError:
            pass
    return len(found)


def veth_ends():
    """The veth ends of the churn still in the test's namespace."""
    names = set()
    for line in h.run(["ip", "-o", "link", "show"]).stdout.splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            name = fields[1].strip().split("@")[0]
            if name.startswith(VETH_PREFIX):
                names.add(name)
    return names


# --------------------------------------------------------------------------
# What the scrapes showed


class Seen:
    """What the scrapes showed of one of the test's hosts."""

    def __init__(self):
        self.last_present = 0.0  # start of the last scrape serving it
        self.observations = set()  # (success, used, total, NAT)
        self.failed = 0


class Scraper:
    """Scrapes write_prometheus in a thread of its own (which never leaves
    the test's namespace) and keeps, per host of the test's namespaces,
    what it served."""

    def __init__(self, collectd):
        self.collectd = collectd
        self.ours = name_pattern()
        self.hosts = collections.defaultdict(Seen)
        self.own = collections.Counter()
        self.read_stamps = 0
        self.last_stamp = None
        self.first_stamp = None
        self.read_seconds = []  # (value) of each read seen
        self.scrapes = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def halt(self):
        """Stops it without a word (cleaning up after a failure)."""
        self._stop.set()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            h.fail("scrape thread did not stop")
        if self.error is not None:
            h.fail("scraping failed: %r" % (self.error,))

    def _run(self):
        try:
            while not self._stop.is_set():
                started = time.time()
                self.digest(h.scrape(), started)
                self._stop.wait(SCRAPE_EVERY_S)
        except Exception as error:  # reported by stop()
            self.error = error

    def digest(self, samples, started):
        self.scrapes += 1
        own = h.sample(samples, h.SCRAPE_SUCCESS)
        nat = h.nat_part_samples(samples).get("scrape_success")
        self.own["scrapes"] += 1
        self.own["scrape_success missing" if own is None else
                 "scrape_success %g" % own[0]] += 1
        self.own["NAT scrape_success missing" if nat is None else
                 "NAT scrape_success %g" % nat[0]] += 1
        if own is not None and own[1] != self.last_stamp:
            self.last_stamp = own[1]
            self.first_stamp = self.first_stamp or own[1]
            self.read_stamps += 1
            cost = h.sample(samples, READ_SECONDS)
            if cost is not None:
                self.read_seconds.append(cost[0])
        for host in h.hosts_served(samples):
            if host and self.ours.match(host):
                self.observe(host, h.host_view(samples, host), samples,
                             started)

    def observe(self, host, view, samples, started):
        seen = self.hosts[host]
        seen.last_present = started
        values = [h.sample(view, name) for name in (
            h.SCRAPE_SUCCESS, "collectd_ephemeral_ports_used",
            "collectd_ephemeral_ports_total")]
        success, used, total = [None if v is None else v[0] for v in values]
        if success == 0:
            seen.failed += 1
        nat = h.nat_part_samples(samples, host).get("scrape_success")
        keys = frozenset((key, fields["used"][0]) for key, fields in
                         h.nat_samples(samples, host).items()
                         if "used" in fields)
        seen.observations.add((success, used, total,
                               None if nat is None else nat[0], keys))

    def summary(self):
        return "%d scrapes; reads seen %d" % (self.scrapes, self.read_stamps)


def expected_observation(churned):
    keys = frozenset({(NAT_KEY, float(NAT_FLOWS))} if churned.nat else ())
    return (1.0, float(churned.used()), float(POOL_SIZE), 1.0, keys)


def check_reported_and_gone(churn, scraper):
    """The problems of the test's namespaces as the scrapes showed them."""
    problems = []
    checked = 0
    by_inode = collections.defaultdict(list)
    for churned in churn.ended:
        by_inode[churned.inode].append(churned)

    def context(churned):
        """Which of the run's namespaces had its inode just before it and
        just after it (the kernel gives a freed inode to the next new
        namespace at once)."""
        same = by_inode[churned.inode]
        before = [c for c in same if c.gone is not None and
                  c.gone <= churned.created]
        after = [c for c in same if churned.gone is not None and
                 c.created >= churned.gone]
        text = churned.describe()
        if before:
            text += "; its inode was %s's until %.2f s before it was made" \
                % (before[-1].name, churned.created - before[-1].gone)
        else:
            text += "; the first of the run with its inode"
        if after:
            text += "; %s got its inode %.2f s after it was deleted" % (
                after[0].name, after[0].created - churned.gone)
        return text

    for churned in churn.ended:
        seen = scraper.hosts.get(churned.host)
        if churned.lived() >= MIN_LIFE_S:
            checked += 1
            wanted = churned.expected
            if seen is None or wanted not in seen.observations:
                problems.append("%s: never served as %r; served: %r"
                                % (context(churned), wanted,
                                   sorted(seen.observations, key=repr)
                                   if seen else "nothing"))
        if seen is not None and seen.failed:
            problems.append("%s: served %d times with scrape_success 0"
                            % (context(churned), seen.failed))
        if seen is not None and \
                seen.last_present > churned.gone + GONE_BOUND_S:
            problems.append("%s: still served by a scrape %.2f s after it "
                            "was deleted" % (context(churned),
                                             seen.last_present -
                                             churned.gone))
    strangers = sorted(set(scraper.hosts) - {c.host for c in churn.ended})
    if strangers:
        problems.append("hosts served that the churn never made: %r"
                        % strangers)
    return checked, problems


# --------------------------------------------------------------------------
# collectd's descriptors and memory


def lasting_descriptors(pid):
    """collectd's descriptors (their targets, with counts) present in every
    sample over LASTING_WINDOW_S."""
    lasting = None
    deadline = time.monotonic() + LASTING_WINDOW_S
    while True:
        sample = collections.Counter(lr.descriptor_targets(pid))
        lasting = sample if lasting is None else lasting & sample
        if time.monotonic() >= deadline:
            return lasting
        time.sleep(LASTING_SPACING_S)


def describe_sockets(pid, targets):
    """What pid's sockets among targets are: local port and network
    namespace (test_netns_come_and_go's socket_facts)."""
    wanted = set(targets)
    facts = []
    pidfd = os.pidfd_open(pid)
    try:
        for fd, target in lr.descriptors(pid):
            if target in wanted and target.startswith("socket:["):
                found = socket_facts(pidfd, fd)
                facts.append("%s: %s" % (target, "closed" if found is None
                                         else "port %s in %s" % found))
    finally:
        os.close(pidfd)
    return ", ".join(facts) or "none open now"


def check_nothing_refers(inodes, collectd_pid):
    """Nothing of collectd's or the test's refers to the inodes of the
    test's namespaces (all destroyed by now); returns the problems."""
    problems = []
    ours = ("/proc/%d/" % collectd_pid, "/proc/%d/" % os.getpid())
    elsewhere = {}
    for inode in sorted(inodes):
        found = referrers(inode)
        mine = [path for path in found if path.startswith(ours)]
        if mine:
            problems.append("net:[%d] of a namespace the test made and the "
                            "kernel destroyed is still referred to: %r"
                            % (inode, mine))
        if len(mine) < len(found):
            elsewhere[inode] = len(found) - len(mine)
    h.log("inodes of the test's namespaces: %d distinct; in use again by "
          "other programs' new namespaces: %s"
          % (len(inodes), ", ".join("net:[%d] x%d" % item for item in
                                    sorted(elsewhere.items())) or "none"))
    return problems


# --------------------------------------------------------------------------
# The scenario


def churn_scenario():
    h.require_nat_tools()
    seconds = churn_seconds()
    seed = churn_seed()
    warm_up_s = min(max(WARM_UP_MIN_S, WARM_UP_FRACTION * seconds),
                    seconds / 2)
    h.log("churning for %.0f s (EP_CHURN_SECONDS), seed %d (EP_CHURN_SEED), "
          "warm-up %.0f s; %d network namespaces on the machine now"
          % (seconds, seed, warm_up_s, namespaces_on_machine()))
    scene = Scene()
    scraper = None
    block = h.plugin_block(["AllNetNamespaces true", "ReportNat true",
                            'NetNamespaceName "/^ept-c[0-9]+-%d$/"'
                            % os.getppid()])
    try:
        with h.TempDir() as tmp, \
                h.Collectd(tmp, block, interval=INTERVAL_S) as collectd:
            collectd.start_and_wait_ready()
            pid = collectd.process.pid
            h.wait_for_read_after(collectd, time.time())
            sockets_before = check_holds_nothing(collectd, None,
                                                 "before the churn")
            churn = Churn(scene, random.Random(seed))
            scraper = Scraper(collectd).start()
            rss = []  # (time, KiB)
            fd_counts = []
            started = time.monotonic()
            warm_up_ends = started + warm_up_s
            base_fds = base_rss = None
            next_sample = next_progress = started
            while time.monotonic() < started + seconds:
                h.check(collectd.process.poll() is None,
                        "collectd exited during the churn\n%s"
                        % collectd.diagnostics())
                h.check(scraper.error is None,
                        "scraping failed: %r" % (scraper.error,))
                churn.step()
                now = time.monotonic()
                if now >= next_sample:
                    rss.append((now, lr.vm_rss_kib(pid)))
                    fd_counts.append(len(lr.descriptor_targets(pid)))
                    next_sample = now + SAMPLE_EVERY_S
                if base_fds is None and now >= warm_up_ends:
                    base_rss = lr.vm_rss_kib(pid)
                    base_fds = lasting_descriptors(pid)
                    h.log("after warm-up: VmRSS %d KiB, %d lasting "
                          "descriptors (%s; %s)" % (
                              base_rss, sum(base_fds.values()),
                              count_targets(base_fds.elements()),
                              describe_sockets(pid, base_fds)))
                if now >= next_progress:
                    h.log("%.0f s: %s; %d alive; %s; VmRSS %d KiB"
                          % (now - started, churn.summary(), len(churn.alive),
                             scraper.summary(), rss[-1][1]))
                    next_progress = now + PROGRESS_EVERY_S
                time.sleep(0.01)
            churn.end_all()
            all_gone = time.time()
            run_s = time.monotonic() - started
            h.log("churn over after %.1f s: %s" % (run_s, churn.summary()))

            deadline = time.monotonic() + FREED_TIMEOUT_S
            while veth_ends():
                h.check(time.monotonic() < deadline,
                        "namespaces not destroyed %.0f s after the churn "
                        "(their veth ends remain): %s" % (
                            FREED_TIMEOUT_S, ", ".join(
                                c.describe() for c in churn.ended
                                if "%s%d" % (VETH_PREFIX, c.serial)
                                in veth_ends())))
                time.sleep(0.1)
            h.log("all %d namespaces destroyed %.2f s after the last went"
                  % (churn.made(), time.time() - all_gone))
            time.sleep(max(0.0, all_gone + GONE_BOUND_S - time.time()))
            problems = check_nothing_refers({c.inode for c in churn.ended},
                                            pid)
            check_holds_nothing(collectd, sockets_before, "after the churn")
            # Still scraping, as at warm-up: write_prometheus (libmicrohttpd)
            # keeps the last connection's descriptor until the next one.
            end_fds = lasting_descriptors(pid)
            end_rss = lr.vm_rss_kib(pid)
            scraper.stop()
            final = {host for host in h.hosts_served(h.scrape())
                     if host and scraper.ours.match(host)}
            if final:
                problems.append("the final scrape serves %r" % sorted(final))

            checked, found = check_reported_and_gone(churn, scraper)
            problems += found
            h.log("%s; %d namespaces lived >= %.1f s and were checked; "
                  "collectd's own: %s" % (scraper.summary(), checked,
                                          MIN_LIFE_S,
                                          dict(sorted(scraper.own.items()))))
            costs = sorted(scraper.read_seconds)
            if costs:
                h.log("reads: %d seen over %.1f s; read time median %.4f s, "
                      "max %.4f s" % (scraper.read_stamps,
                                      (scraper.last_stamp -
                                       scraper.first_stamp) / 1000.0,
                                      costs[len(costs) // 2], costs[-1]))
            for what in ("scrape_success 0", "NAT scrape_success 0"):
                if scraper.own[what]:
                    problems.append("collectd's own namespace served with "
                                    "%s %d times" % (what,
                                                     scraper.own[what]))

            h.log("descriptors: %d lasting after warm-up, %d at the end; "
                  "all open, sampled every %.1f s: %d..%d"
                  % (sum(base_fds.values()), sum(end_fds.values()),
                     SAMPLE_EVERY_S, min(fd_counts), max(fd_counts)))
            if end_fds != base_fds:
                new_fds = list((end_fds - base_fds).elements())
                problems.append(
                    "collectd's lasting descriptors: %d after warm-up, %d at "
                    "the end (new: %s [%s]; gone: %s)" % (
                        sum(base_fds.values()), sum(end_fds.values()),
                        count_targets(new_fds),
                        describe_sockets(pid, new_fds),
                        count_targets(base_fds.elements(),
                                      minus=end_fds.elements())))
            after = [kib for when, kib in rss if when >= warm_up_ends]
            max_rss = max(after + [end_rss])
            h.log("VmRSS KiB: first %d, after warm-up %d, end %d, max after "
                  "warm-up %d (growth %+d KiB; limit %d)"
                  % (rss[0][1], base_rss, end_rss, max_rss,
                     max_rss - base_rss, RSS_GROWTH_LIMIT_KIB))
            if max_rss - base_rss > RSS_GROWTH_LIMIT_KIB:
                problems.append("VmRSS grew %d KiB after warm-up (limit %d)"
                                % (max_rss - base_rss, RSS_GROWTH_LIMIT_KIB))

            lines = collectd.log_lines()
            errors = h.plugin_log_lines(lines, "error")
            if errors:
                problems.append("plugin ERROR lines: %r" % errors[:20])
            h.log("plugin log: %d ERROR, %d WARNING, %d INFO lines"
                  % (len(errors), len(h.plugin_log_lines(lines, "warning")),
                     len(h.plugin_log_lines(lines, "info"))))
            h.check(not problems, "%d problems:\n  %s"
                    % (len(problems), "\n  ".join(problems)))
    finally:
        if scraper is not None:
            scraper.halt()
        scene.close()


if __name__ == "__main__":
    try:
        h.run_scenarios({"churn": churn_scenario}, port_range=OWN_RANGE,
                        reserved_ports="",
                        timeout=churn_seconds() + 300)
    finally:
        h.delete_shared_namespaces()
