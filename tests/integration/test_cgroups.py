"""Who holds the ports (issue 11): ephemeral_ports_cgroup used per cgroup.

Each scenario runs in a network namespace of its own entered with nsenter
(h.run_scenarios_seeing_cgroups: `ip netns exec` would hide the cgroup2
mount), port range 40000-40099 (a pool of 100).  The test makes its groups
under the cgroup2 mount found in /proc/self/mountinfo
(<mount>/ept-test-<pid>/...), moves socket processes (h.SocketProcess) into
them by writing their pid to cgroup.procs BEFORE they make sockets, and
checks each group's exact count against `ss -tan --cgroup` / `ss -uan
--cgroup` inside the namespace (TIME-WAIT: time_wait; no cgroup or
"unreachable:<id>": unknown) plus the bound-only sockets Debian 12's ss
cannot show, and against its own bookkeeping.  The expected name of a
group is its path relative to the cgroup2 root, cut to 127 bytes as
cgroup_names.h says and escaped as collectd escapes every name field
(h.cgroup_instances); a clash gets "-<id>".

Scenario "groups": Protocol tcp udp, TopCgroups 20.  The test's own group
(named "root" when it is the root) holds 1 client; a: 3 clients (made, then
the process moves to "moved": they stay a's); b: bound-only 127.0.0.1:40060
and one kernel-chosen, an IPv6 client, UDP bound and UDP connected; c:
bound-only [::1]:40060 (a port two groups hold counts for each) and 2
clients to a listener on pool port 40050 made in "listener", whose process
then moves to "moved", accepts them and closes the listener: the accepted
sockets alone hold 40050, for "listener"; one process moved from group to
group making one client in each: a path over 127 bytes ending in
"/svc.service", one whose last component alone is longer (UTF-8), x_y and
x/y (both named "ept-test-<pid>_x_y": the larger id gets -<id>), and
/time_wait and /unknown right under the mount (named like the pseudo
groups: -<id>); t: 2 TIME_WAIT (time_wait); f: an orphaned FIN_WAIT2
socket (unknown when the kernel made it a time-wait mini socket, as ss
shows, else f).  "moved" and t hold no pool port and are not reported.
The first read after collectd starts is exact, as is the next, and nothing
about cgroups is logged.

Scenario "groups_walking": the same, collectd started without
CAP_DAC_READ_SEARCH (setpriv drops it from its bounding and inheritable
sets): paths are found by walking the tree, the counts are the same, and
exactly one INFO says so.

Scenario "removed": gone_before's process made 2 clients, moved out, and
the group was removed before collectd started; gone_after (1 client) is
removed after a read reported it; kept keeps 1.  ss shows the removed
groups' sockets as unreachable; they count under unknown, and gone_after,
which dropped out, is sent once more with 0.

Scenario "top": default TopCgroups (10) first, then TopCgroups 0: no cgroup
series at all (a: 3, b: 2; pool used 5).  TopCgroups 1: a alone; a closes 2
(RST) and b (2) takes the top, a is sent once more with 1 and not again; b
closes all and is sent once more with 0, a is back; x_y (2) takes the top,
then x/y (3), named like it: the read that sends x_y once more sends both,
x/y as -<id> (scraped every 0.1 s to see that read), and collectd never
refuses a value as a second one under an identifier ("uc_update: Value too
old").  The default: eleven groups from one process moved between them,
nine of 12..4 ports and two of 2: the one made first (smaller id) is
reported, not the one that made its sockets first.

Scenario "netns": NetNamespace names another namespace (range 41000-41019)
where a process in group o holds 2 clients and a TIME_WAIT socket; the own
namespace's group s holds 1.  Each namespace reports only its own groups,
o under host "eptest:<name>", checked against ss inside it.

Scenario "no_cgroup2": a: 2 clients, t: 1 TIME_WAIT.  ProcRoot points at a
directory whose self/mountinfo is tests/fixtures/proc/cgroup_v1_only (its
sys and net lead to the real ones): with Source "netlink", a's ports count
under unknown and one INFO names the missing mount; with Source "proc"
(that ProcRoot, then the real /proc) the same, with one INFO saying
/proc/net has no owners.  TIME_WAIT sockets count under time_wait in every
case (TIME_WAIT_WITHOUT_OWNERS).
"""

import contextlib
import os
import shutil
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

PORT_RANGE = (40000, 40099)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 100
OTHER_RANGE = (41000, 41019)
SERVER_PORT = 9000  # the test's listeners (127.0.0.1, ::1), off the pool
TIME_WAIT_PORT = 9001  # a socket process's own listeners, off the pool
FIN_WAIT_PORT = 9002
UDP_PEER_PORT = 9999  # connect() on UDP sends nothing; no one listens
POOL_LISTENER_PORT = 40050
SHARED_PORT = 40060
DEEP = "deep/%s/%s/svc.service" % ("d" * 60, "e" * 60)
DEEP_UTF8 = "deep/%sx" % ("\u00fc" * 100)
CGROUP_LOG = "ephemeral_ports plugin: cgroup: "
WALKING_INFO = CGROUP_LOG + "paths are found by walking the cgroup2 tree"
NO_MOUNT_INFO = ("no cgroup2 mount: every pool port counts under "
                 "\"unknown\", a TIME_WAIT socket's under \"time_wait\"")
PROC_INFO = (CGROUP_LOG + "/proc/net does not say which cgroup owns a "
             "socket: every pool port counts under \"unknown\", a TIME_WAIT "
             "socket's under \"time_wait\"")
# Where TIME_WAIT sockets count when no owner is known at all (Source
# "proc", no cgroup2 mount): the plugin keeps them under time_wait, as
# always (cgroup_pseudo.h), not under unknown.
TIME_WAIT_WITHOUT_OWNERS = "time_wait"
CAP_DAC_READ_SEARCH = 2


# --------------------------------------------------------------------------
# What the kernel says


def kernel_usage(pool, bound_only=()):
    """{(owner, type): set of pool ports}: owner is a cgroup path,
    "time_wait" or "unknown", type "" (TCP) or "udp"; from ss --cgroup in
    the current namespace, plus bound_only ((path, port) of bound-only TCP
    sockets, which Debian 12's ss does not show)."""
    usage = {}
    for kind, protocol in (("", "tcp"), ("udp", "udp")):
        for sock in h.ss_with_cgroups(protocol):
            if sock.local_port not in pool or sock.state == "SYN-RECV":
                continue
            if sock.state == "TIME-WAIT":
                owner = "time_wait"
            elif sock.cgroup is None or sock.cgroup.startswith("unreachable:"):
                owner = "unknown"
            else:
                owner = sock.cgroup
            usage.setdefault((owner, kind), set()).add(sock.local_port)
    for path, port in bound_only:
        usage.setdefault((path, ""), set()).add(port)
    return usage


def expected_series(tree, usage):
    """{(plugin_instance, type): used} that the usage should read as, each
    protocol's groups named together."""
    names = {}
    for kind in ("", "udp"):
        paths = {owner for owner, k in usage if k == kind and
                 owner.startswith("/")}
        by_id = {tree.id_of(path): path for path in paths}
        names.update({(path, kind): name for group, name in
                      h.cgroup_instances(by_id).items()
                      for path in [by_id[group]]})
    return {(names.get((owner, kind), owner), kind): len(ports)
            for (owner, kind), ports in usage.items()}


def values_of(samples, since_ms=0):
    """{(plugin_instance, type): used} of the cgroup series dispatched at
    or after since_ms."""
    return {key: value for key, (value, ts) in h.cgroup_values(samples).items()
            if ts >= since_ms}


def latest_read_values(samples):
    """The cgroup series the latest read dispatched (every value of a read
    carries its start time, scrape_success's)."""
    return values_of(samples, h.sample(samples, h.SCRAPE_SUCCESS)[1])


def check_usage(samples, tree, usage, what, pool_total=TOTAL, used=None):
    expected = expected_series(tree, usage)
    h.check_equal(latest_read_values(samples),
                  {key: float(n) for key, n in expected.items()},
                  "%s: %s" % (what, h.CGROUP_USED))
    if used is None:
        used = len(set().union(*[ports for (_, kind), ports in usage.items()
                                 if kind == ""]))
    h.check_pool_values(samples, used, pool_total, what)
    return expected


def cgroup_log_lines(collectd):
    return [line for line in collectd.log_lines() if CGROUP_LOG in line]


# write_prometheus logs this at every start (libmicrohttpd's option order).
KNOWN_ERRORS = ("MHD_OPTION_EXTERNAL_LOGGER",)


def check_no_errors(collectd):
    """No ERROR in collectd's log, and no second value under one identifier
    in a read (collectd's cache refuses it with a NOTICE)."""
    h.check_equal([line for line in collectd.log_lines()
                   if ("[error]" in line and
                       not any(known in line for known in KNOWN_ERRORS)) or
                   "uc_update: Value too old" in line], [],
                  "ERROR lines and refused values")


def wait_for_ss_state(port, state, timeout=5.0):
    deadline = time.monotonic() + timeout
    while port not in h.ss_ports_in_state(state):
        if time.monotonic() > deadline:
            h.fail("port %d never showed %s in ss: %r"
                   % (port, state, h.ss_tcp()))
        time.sleep(0.05)


# --------------------------------------------------------------------------
# Setting up


class World(contextlib.ExitStack):
    """The scenario's groups, socket processes and own sockets, all removed
    at the end, also on failure."""

    def __init__(self):
        contextlib.ExitStack.__init__(self)
        if not h.ss_cgroup_has_cgroup_option():
            raise h.TestSkip("this ss has no --cgroup")
        self.tree = h.TestCgroups()
        self.callback(self.tree.cleanup)
        self.tmp = self.enter_context(h.TempDir())

    def process(self, path, netns_path=""):
        """A socket process, moved into the group at path."""
        proc = self.enter_context(h.SocketProcess(netns_path))
        self.tree.move(proc.pid, path)
        return proc

    def own(self, sock):
        self.callback(sock.close)
        return sock

    def listeners(self):
        self.own(h.listener(SERVER_PORT))
        self.own(h.listener(SERVER_PORT, socket.AF_INET6))


def start(world, options, command_prefix=(), extra_config=h.NO_EXPIRY):
    """A collectd of its own temp dir, stopped (its log printed on failure)
    before the dir is removed."""
    tmp = world.enter_context(h.TempDir())
    collectd = world.enter_context(h.Collectd(
        tmp, h.plugin_block(options), extra_config=extra_config,
        command_prefix=command_prefix))
    collectd.start_and_wait_ready()
    return collectd


# --------------------------------------------------------------------------
# groups, groups_walking


def build_groups(world):
    """Makes the groups and sockets of "groups"; returns (bound-only
    sockets, {owner: ports} by the test's own bookkeeping, UDP's)."""
    tree = world.tree
    world.listeners()
    g = {name: tree.make(name) for name in (
        "listener", "a", "b", "c", "moved", "x_y", "x/y", "t", "f", DEEP,
        DEEP_UTF8)}
    for name in h.CGROUP_PSEUDO_NAMES:
        g["/" + name] = tree.make(name, top_level=True)
    own_group = h.cgroup_of()

    listening = world.process(g["listener"])
    listener_id = listening.call("listen", port=POOL_LISTENER_PORT)["id"]
    b = world.process(g["b"])
    b.call("bind", port=SHARED_PORT)
    picked = b.call("bind")["port"]
    b_tcp = {SHARED_PORT, picked} | set(
        b.call("connect", port=SERVER_PORT, family=6)["ports"])
    b_udp = {b.call("bind", udp=True)["port"],
             b.call("udp_connect", port=UDP_PEER_PORT)["port"]}
    c = world.process(g["c"])
    c.call("bind", port=SHARED_PORT, family=6)
    c_tcp = {SHARED_PORT} | set(
        c.call("connect", port=POOL_LISTENER_PORT, count=2)["ports"])
    tree.move(listening.pid, g["moved"])
    listening.call("accept", id=listener_id, count=2)
    listening.call("close", ids=[listener_id])
    a = world.process(g["a"])
    a_tcp = set(a.call("connect", port=SERVER_PORT, count=3)["ports"])
    tree.move(a.pid, g["moved"])
    mover = world.process(g[DEEP])
    one_each = {}
    for name in (DEEP, DEEP_UTF8, "x_y", "x/y", "/time_wait", "/unknown"):
        tree.move(mover.pid, g[name])
        one_each[g[name]] = set(mover.call("connect",
                                           port=SERVER_PORT)["ports"])
    time_waits = set(world.process(g["t"]).call(
        "time_wait", port=TIME_WAIT_PORT, count=2)["ports"])
    fin_wait = world.process(g["f"]).call("fin_wait2", port=FIN_WAIT_PORT)
    own_client = world.own(h.client(SERVER_PORT))
    for port in time_waits:
        wait_for_ss_state(port, "TIME-WAIT")
    wait_for_ss_state(fin_wait["port"], "FIN-WAIT-2")

    # An orphaned FIN_WAIT2 socket is a time-wait mini socket without an
    # owner, unless the ACK found the socket locked (ss tells which).
    # (connect() reuses local ports across destinations: pick it by state.)
    fin_wait_sock = [s for s in h.ss_with_cgroups()
                     if s.local_port == fin_wait["port"] and
                     s.state == "FIN-WAIT-2"][0]
    fin_wait_owner = g["f"] if fin_wait_sock.cgroup else "unknown"
    h.log("orphaned FIN_WAIT2 socket %d: %s" % (fin_wait["port"],
                                               fin_wait_sock.cgroup))
    tcp = dict(one_each)
    tcp.update({own_group: {h.local_port(own_client)}, g["a"]: a_tcp,
                g["b"]: b_tcp, g["c"]: c_tcp,
                g["listener"]: {POOL_LISTENER_PORT},
                "time_wait": time_waits, fin_wait_owner: {fin_wait["port"]}})
    h.check_equal({len(tcp[g["a"]]), len(tcp[g["b"]]), len(tcp[g["c"]]),
                   len(b_udp)}, {3, 2}, "bookkeeping: a, b, c 3 ports each, "
                  "b 2 UDP")
    bound_only = [(g["b"], SHARED_PORT), (g["b"], picked),
                  (g["c"], SHARED_PORT)]
    return bound_only, tcp, {g["b"]: b_udp}


def check_kernel_agrees(bound_only, tcp, udp):
    usage = kernel_usage(POOL, bound_only)
    bookkept = {(owner, ""): ports for owner, ports in tcp.items()}
    bookkept.update({(owner, "udp"): ports for owner, ports in udp.items()})
    h.check_equal(usage, bookkept, "ss --cgroup (and the bound-only "
                  "sockets) against the test's bookkeeping")
    return usage


def groups_scenario(command_prefix=(), check_collectd=None):
    with World() as world:
        bound_only, tcp, udp = build_groups(world)
        usage = check_kernel_agrees(bound_only, tcp, udp)
        built_at = time.time()
        collectd = start(world, ['Protocol "tcp" "udp"', "TopCgroups 20"],
                         command_prefix)
        samples = h.wait_for_fresh_read(collectd, built_at)
        expected = check_usage(samples, world.tree, usage, "first read")
        h.log("served: %s" % sorted(expected.items()))
        samples = h.wait_for_read_after(collectd, built_at)
        check_usage(samples, world.tree, usage, "a later read")
        check_no_errors(collectd)
        if check_collectd is not None:
            check_collectd(collectd)


def groups():
    groups_scenario(check_collectd=lambda collectd: h.check_equal(
        cgroup_log_lines(collectd), [], "cgroup log lines"))


def capabilities(pid):
    for line in h.read_text("/proc/%d/status" % pid).splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    h.fail("no CapEff in /proc/%d/status" % pid)


def groups_walking():
    if shutil.which("setpriv") is None:
        raise h.TestSkip("setpriv (util-linux) not installed")
    prefix = ["setpriv", "--inh-caps=-dac_read_search",
              "--bounding-set=-dac_read_search"]
    groups_scenario(prefix, check_walking)


def check_walking(collectd):
    h.check_equal(capabilities(collectd.process.pid) >> CAP_DAC_READ_SEARCH
                  & 1, 0, "collectd's CAP_DAC_READ_SEARCH")
    lines = cgroup_log_lines(collectd)
    h.check(len(lines) == 1 and "[info]" in lines[0] and
            WALKING_INFO in lines[0],
            "expected one INFO %r, got %r" % (WALKING_INFO, lines))
    h.log(lines[0].strip())


# --------------------------------------------------------------------------
# removed


def removed():
    with World() as world:
        tree = world.tree
        world.listeners()
        g = {name: tree.make(name) for name in
             ("gone_before", "gone_after", "kept", "parking")}
        first = world.process(g["gone_before"])
        gone_ports = set(first.call("connect", port=SERVER_PORT,
                                    count=2)["ports"])
        gone_id = tree.id_of(g["gone_before"])
        tree.move(first.pid, g["parking"])
        tree.remove(g["gone_before"])
        second = world.process(g["gone_after"])
        second.call("connect", port=SERVER_PORT)
        world.process(g["kept"]).call("connect", port=SERVER_PORT)
        unreachable = {s.local_port: s.cgroup for s in h.ss_with_cgroups()
                       if s.local_port in gone_ports}
        h.check_equal(unreachable, dict.fromkeys(
            gone_ports, "unreachable:%x" % gone_id),
            "ss --cgroup of a removed group's sockets")
        usage = kernel_usage(POOL)
        h.check_equal(sorted((owner, len(ports)) for (owner, _), ports
                             in usage.items()),
                      sorted([("unknown", 2), (g["gone_after"], 1),
                              (g["kept"], 1)]), "ss --cgroup")
        built_at = time.time()
        collectd = start(world, [])
        samples = h.wait_for_fresh_read(collectd, built_at)
        check_usage(samples, tree, usage, "gone_before removed")

        tree.move(second.pid, g["parking"])
        tree.remove(g["gone_after"])
        changed_at = time.time()
        usage = kernel_usage(POOL)
        h.check_equal(sorted((owner, len(ports)) for (owner, _), ports
                             in usage.items()),
                      sorted([("unknown", 3), (g["kept"], 1)]),
                      "ss --cgroup after gone_after was removed")
        samples = h.wait_for_read_after(collectd, changed_at)
        check_usage(samples, tree, usage, "gone_after removed")
        gone_after = (h.cgroup_instances({0: g["gone_after"]})[0], "")
        check_dropped_once(collectd, samples, changed_at, {gone_after: 0.0},
                           "gone_after, removed")
        check_no_errors(collectd)


# --------------------------------------------------------------------------
# top


def check_dropped_once(collectd, samples, since, dropped, what):
    """Each dropped series ({key: value}) was dispatched by a read after
    since, before the latest one, and the next read does not send it
    again."""
    success_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
    found = h.cgroup_values(samples)
    stamps = {}
    for key, value in dropped.items():
        h.check(key in found, "%s: %r not served; served: %r"
                % (what, key, sorted(found)))
        got, ts = found[key]
        h.check_equal(got, value, "%s: %r sent once more" % (what, key))
        h.check(since * 1000 < ts < success_ms,
                "%s: %r not dispatched by a read after the change and "
                "before the latest (timestamp %r, change %.0f, latest %r)"
                % (what, key, ts, since * 1000, success_ms))
        stamps[key] = ts
    later = h.wait_for_fresh_read(collectd, success_ms / 1000.0)
    found = h.cgroup_values(later)
    for key, ts in stamps.items():
        h.check_equal(found.get(key), (dropped[key], ts),
                      "%s: %r at the next read (not sent again)" % (what, key))
    return later


def observe_reads(collectd, since, reads):
    """{read's timestamp (ms): {key: used}} of the cgroup series of the
    reads that start after since, scraped every 0.1 s until `reads` of them
    were seen (write_prometheus serves a read's values until the next
    read's replace them)."""
    seen = {}
    deadline = time.monotonic() + reads * 2 + 5
    while time.monotonic() < deadline:
        samples = h.scrape()
        success = h.sample(samples, h.SCRAPE_SUCCESS)[1]
        for key, (value, ts) in h.cgroup_values(samples).items():
            if ts > since * 1000:
                seen.setdefault(ts, {})[key] = value
        if len([ts for ts in seen if ts < success]) >= reads:
            break
        time.sleep(0.1)
    return seen


def top_zero_and_one(world, g, a, b):
    """TopCgroups 0, then TopCgroups 1 with drop-outs, the last of them
    sharing its name with the group that took the top."""
    a_ports = a.call("connect", port=SERVER_PORT, count=3)["ports"]
    b_ports = b.call("connect", port=SERVER_PORT, count=2)["ports"]
    built_at = time.time()
    collectd = start(world, ["TopCgroups 0"])
    samples = h.wait_for_read_after(collectd, built_at)
    h.check_pool_values(samples, 5, TOTAL, "TopCgroups 0")
    h.check_equal(h.cgroup_values(samples), {}, "TopCgroups 0: series")
    collectd.stop()
    name = {key: h.cgroup_instances({0: g[key]})[0] for key in ("a", "b")}
    collectd = start(world, ["TopCgroups 1"])
    samples = h.wait_for_fresh_read(collectd, built_at)
    h.check_equal(h.cgroup_values(samples).keys(), {(name["a"], "")},
                  "TopCgroups 1: served")
    h.check_equal(latest_read_values(samples), {(name["a"], ""): 3.0},
                  "TopCgroups 1: a alone")

    a.call("close", ports=a_ports[1:])
    changed_at = time.time()
    samples = h.wait_for_read_after(collectd, changed_at)
    h.check_equal(latest_read_values(samples), {(name["b"], ""): 2.0},
                  "TopCgroups 1: b on top after a closed 2")
    check_dropped_once(collectd, samples, changed_at,
                       {(name["a"], ""): 1.0}, "a, dropped out")

    b.call("close", ports=b_ports)
    changed_at = time.time()
    samples = h.wait_for_read_after(collectd, changed_at)
    h.check_equal(latest_read_values(samples), {(name["a"], ""): 1.0},
                  "TopCgroups 1: a back after b closed all")
    check_dropped_once(collectd, samples, changed_at,
                       {(name["b"], ""): 0.0}, "b, gone")

    # x_y (made first) and x/y are both named "<base>_x_y".
    tree = world.tree
    clash = h.cgroup_instances({0: g["x_y"]})[0]
    world.process(g["x_y"]).call("connect", port=SERVER_PORT, count=2)
    changed_at = time.time()
    samples = h.wait_for_read_after(collectd, changed_at)
    h.check_equal(latest_read_values(samples), {(clash, ""): 2.0},
                  "TopCgroups 1: x_y on top")
    check_dropped_once(collectd, samples, changed_at,
                       {(name["a"], ""): 1.0}, "a, dropped out again")
    world.process(g["x/y"]).call("connect", port=SERVER_PORT, count=3)
    changed_at = time.time()
    # The read that sends x_y once more reports both: x/y, of the larger
    # id, must get -<id> in it, or one of the two values is lost.
    suffixed = "%s-%d" % (clash, tree.id_of(g["x/y"]))
    reads = observe_reads(collectd, changed_at, 3)
    dropping = [ts for ts in sorted(reads) if reads[ts].get((clash, "")) == 2.0]
    h.check(dropping, "no read after x/y took the top sent x_y's 2: %r"
            % reads)
    h.check_equal(reads[dropping[-1]], {(clash, ""): 2.0, (suffixed, ""): 3.0},
                  "TopCgroups 1: the read that dropped x_y for x/y")
    check_no_errors(collectd)
    collectd.stop()
    a.call("reset_all")


def top_default(world):
    """Default TopCgroups: 10 of 11 groups, a tie broken by id."""
    tree = world.tree
    # g10's directory is made after g11's: g11 has the smaller id.
    names = ["g%02d" % i for i in range(1, 10)] + ["g11", "g10"]
    g = {name: tree.make("many/" + name) for name in names}
    counts = dict(zip(["g%02d" % i for i in range(1, 10)], range(12, 3, -1)))
    counts.update(g10=2, g11=2)
    h.check(tree.id_of(g["g11"]) < tree.id_of(g["g10"]), "g11's id first")
    mover = world.process(g["g10"])
    for name in sorted(counts):  # g10 makes its sockets before g11
        tree.move(mover.pid, g[name])
        mover.call("connect", port=SERVER_PORT, count=counts[name])
    built_at = time.time()
    usage = kernel_usage(POOL)
    h.check_equal({owner: len(ports) for (owner, _), ports in usage.items()},
                  {g[name]: n for name, n in counts.items()}, "ss --cgroup")
    del usage[(g["g10"], "")]
    collectd = start(world, [])
    samples = h.wait_for_fresh_read(collectd, built_at)
    check_usage(samples, tree, usage, "default TopCgroups",
                used=sum(counts.values()))
    h.check_equal(len(h.cgroup_values(samples)), 10, "series served")
    check_no_errors(collectd)
    collectd.stop()
    mover.call("reset_all")


def top():
    with World() as world:
        world.listeners()
        top_default(world)
        g = {name: world.tree.make(name) for name in ("a", "b", "x_y", "x/y")}
        top_zero_and_one(world, g, world.process(g["a"]),
                         world.process(g["b"]))


# --------------------------------------------------------------------------
# netns


def netns():
    with World() as world:
        tree = world.tree
        world.listeners()
        name, path = h.create_visible_namespace("cgother", OTHER_RANGE)
        world.callback(h.delete_namespace, name)
        g = {group: tree.make(group) for group in ("o", "s")}
        there = world.process(g["o"], netns_path=path)
        there.call("listen", port=SERVER_PORT)
        there.call("connect", port=SERVER_PORT, count=2)
        there.call("time_wait", port=TIME_WAIT_PORT)
        world.process(g["s"]).call("connect", port=SERVER_PORT)
        with h.in_network_namespace(path):
            other_usage = kernel_usage(h.pool_of(OTHER_RANGE, ""))
        own_usage = kernel_usage(POOL)
        h.check_equal({key: len(ports) for key, ports in other_usage.items()},
                      {(g["o"], ""): 2, ("time_wait", ""): 1},
                      "ss --cgroup in %s" % name)
        h.check_equal({key: len(ports) for key, ports in own_usage.items()},
                      {(g["s"], ""): 1}, "ss --cgroup here")
        built_at = time.time()
        collectd = start(world, ['NetNamespace "%s"' % path])
        samples = h.wait_for_fresh_hosts(collectd, [h.HOSTNAME,
                                                    h.host_of(name)],
                                         built_at)
        check_usage(h.host_view(samples, h.HOSTNAME), tree, own_usage,
                    "own namespace")
        check_usage(h.host_view(samples, h.host_of(name)), tree, other_usage,
                    "namespace %s" % name, pool_total=20)
        check_no_errors(collectd)


# --------------------------------------------------------------------------
# no_cgroup2


def v1_only_proc_root(tmp):
    """A ProcRoot whose self/mountinfo has no cgroup2 mount; its sys and net
    are the real ones of whoever reads them."""
    fixtures = os.environ.get("FIXTURES_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    root = tmp.join("proc")
    os.makedirs(os.path.join(root, "self"))
    shutil.copy(os.path.join(fixtures, "proc", "cgroup_v1_only", "self",
                             "mountinfo"), os.path.join(root, "self"))
    os.symlink("/proc/sys", os.path.join(root, "sys"))
    os.symlink("/proc/self/net", os.path.join(root, "net"))
    return root


def check_all_unknown(world, options, info, what):
    built_at = time.time()
    collectd = start(world, options)
    samples = h.wait_for_read_after(collectd, built_at)
    usage = kernel_usage(POOL)
    unknown = set().union(*[ports for (owner, _), ports in usage.items()
                            if owner != "time_wait"])
    time_wait = usage[("time_wait", "")]
    expected = {("unknown", ""): float(len(unknown))}
    expected[(TIME_WAIT_WITHOUT_OWNERS, "")] = expected.get(
        (TIME_WAIT_WITHOUT_OWNERS, ""), 0.0) + len(time_wait)
    h.check_equal(latest_read_values(samples), expected,
                  "%s: %s" % (what, h.CGROUP_USED))
    h.check_pool_values(samples, len(unknown | time_wait), TOTAL, what)
    samples = h.wait_for_read_after(collectd, time.time())
    lines = cgroup_log_lines(collectd)
    h.check(len(lines) == 1 and "[info]" in lines[0] and
            info in lines[0],
            "%s: expected one INFO with %r, got %r" % (what, info, lines))
    h.log("%s: %s" % (what, lines[0].strip()))
    check_no_errors(collectd)
    collectd.stop()


def no_cgroup2():
    with World() as world:
        world.listeners()
        a = world.process(world.tree.make("a"))
        a.call("connect", port=SERVER_PORT, count=2)
        tw = world.process(world.tree.make("t")).call(
            "time_wait", port=TIME_WAIT_PORT)["ports"][0]
        wait_for_ss_state(tw, "TIME-WAIT")
        proc_root = v1_only_proc_root(world.tmp)
        check_all_unknown(world, ['Source "netlink"',
                                  'ProcRoot "%s"' % proc_root],
                          CGROUP_LOG + proc_root + "/self/mountinfo: " +
                          NO_MOUNT_INFO, "no cgroup2 mount")
        check_all_unknown(world, ['Source "proc"',
                                  'ProcRoot "%s"' % proc_root], PROC_INFO,
                          "Source proc, no cgroup2 mount")
        check_all_unknown(world, ['Source "proc"'], PROC_INFO, "Source proc")


if __name__ == "__main__":
    h.run_scenarios_seeing_cgroups(
        {"groups": groups, "groups_walking": groups_walking,
         "removed": removed, "top": top, "netns": netns,
         "no_cgroup2": no_cgroup2},
        port_range=PORT_RANGE, reserved_ports="")
