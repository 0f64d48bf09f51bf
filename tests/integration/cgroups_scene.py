"""The scene of the cgroup tests (test_cgroups_*.py): what the kernel says
each group holds, the series the plugin must send for it, and the World
of groups, socket processes and collectd a scenario builds.

What every scenario of those files shares:

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
"""

import contextlib
import socket
import time

import harness as h


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
