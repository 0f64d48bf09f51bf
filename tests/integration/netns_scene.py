"""The scene of the network namespace tests (test_netns_*.py): the
namespaces a scenario makes (named, and unnamed ones held by a process),
the sockets in them, and the check that a namespace's series are exactly
what ss inside it says.

What every scenario of those files shares:

collectd runs in the scenario's namespace (range 40000-40019, named under
/run/netns by the harness): its own, reported under the plain host "eptest"
with exactly today's series.  Every other namespace is reported under
"eptest:<name>", each checked against `ss` run inside it (this thread enters
it with setns, so ss, sysctl and the sockets the test makes are its own):
pool (its own ip_local_port_range and reserved ports), scrape_success,
instance_open with WatchPort/IgnorePort, destinations, states, UDP, the
per-cgroup series (`ip netns exec` hides the cgroup2 mount from collectd,
which logs it once, so the pool ports count under "unknown", those of
TIME_WAIT sockets under "time_wait"), and bound-only sockets (which Debian
12's ss cannot show: the test adds the ones it made).  The test's
namespaces are `ip netns add` ones ("ept-<tag>-<pid>") and unnamed ones
held by a process (python: unshare(CLONE_NEWUTS), sethostname,
unshare(CLONE_NEWNET)).  Other tests' namespaces may show up under
AllNetNamespaces: the checks are on the test's own, by name.
"""

import os
import re
import select
import socket
import subprocess

import harness as h


OWN_RANGE = (40000, 40019)
WATCHED = 5399
IGNORED = 5355
UDP_PEER_PORT = 9999  # connect() on UDP sends nothing; no one listens here
MAX_CONNECT_ATTEMPTS = 100


# The process that holds an unnamed namespace.  It dies with the scenario
# (PR_SET_PDEATHSIG) or when its stdin closes.
HOLDER_CODE = r"""
import ctypes, os, signal, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def check(result, what):
    if result != 0:
        sys.exit("%s: %s" % (what, os.strerror(ctypes.get_errno())))
check(libc.prctl(1, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent gone")
hostname, enter = sys.argv[2], sys.argv[3]
if hostname:
    check(libc.unshare(0x04000000), "unshare(CLONE_NEWUTS)")
    socket.sethostname(hostname)
if enter:
    check(libc.setns(os.open(enter, os.O_RDONLY), 0x40000000), "setns")
else:
    check(libc.unshare(0x40000000), "unshare(CLONE_NEWNET)")
print("ready", flush=True)
sys.stdin.read()
"""


class Holder:
    """A process in a network namespace of its own (with a UTS hostname of
    its own when hostname is given), or in the one at enter_path."""

    def __init__(self, hostname="", enter_path=""):
        self.process = subprocess.Popen(
            [h.PYTHON, "-c", HOLDER_CODE, str(os.getpid()), hostname,
             enter_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        ready = select.select([self.process.stdout], [], [], 10)[0]
        line = self.process.stdout.readline() if ready else ""
        if line != "ready\n":
            self.process.kill()
            error = self.process.communicate()[1]
            h.fail("namespace holder did not start: %r %s" % (line, error))
        self.path = "/proc/%d/ns/net" % self.process.pid
        self.inode = h.namespace_inode(self.path)

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout,
                     self.process.stderr):
            pipe.close()


class Namespace:
    """One network namespace of a scenario: where it is (path, None for
    collectd's own), the name the plugin must give it, its pool, and the
    sockets the test made in it."""

    def __init__(self, name, path, port_range, reserved="", holder=None):
        self.path = path
        self.rename(name)
        self.inode = h.namespace_inode(path or "/proc/self/ns/net")
        self.pool = h.pool_of(port_range, reserved)
        self.holder = holder  # the process holding it, if unnamed
        # How `ip link ... netns X` names it.
        self.netns_arg = str(holder.process.pid) if holder else name
        # Entering a held namespace, the test takes its holder's UTS
        # namespace along: a process with the host's hostname in it could
        # give the namespace another name, were it the one the plugin sees.
        self.uts_path = ("/proc/%d/ns/uts" % holder.process.pid
                         if holder else None)
        self.sockets = []
        self.bound_only = set()  # pool ports of bound-only TCP sockets
        self.veths = []  # the ends of Scene.veth pairs outside it

    def rename(self, name):
        self.name = name
        self.host = h.HOSTNAME if self.path is None else h.host_of(name)

    def inside(self):
        return h.in_network_namespace(self.path, self.uts_path)

    def nsenter(self):
        """The command prefix that runs a program inside."""
        return (["ip", "netns", "exec", self.name] if self.holder is None
                else ["nsenter", "--net=" + self.path,
                      "--uts=" + self.uts_path])

    def build(self, builder):
        with self.inside():
            builder(self)
        return self

    # Socket makers, called by a builder (inside the namespace).

    def keep(self, sock):
        self.sockets.append(sock)
        return sock

    def listen(self, port, family=socket.AF_INET):
        return self.keep(h.listener(port, family))

    def connect(self, listening, port, count=1, family=socket.AF_INET):
        for _ in range(count):
            self.keep(h.client(port, family))
            self.keep(listening.accept()[0])

    def bind_only(self, port):
        sock = self.keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.bind(("127.0.0.1", port))
        self.bound_only.add(port)

    def udp(self, bind_port=None, peer_port=None, family=socket.AF_INET):
        sock = self.keep(socket.socket(family, socket.SOCK_DGRAM))
        if bind_port is not None:
            sock.bind((h.LOOPBACK[family], bind_port))
        if peer_port is not None:
            sock.connect((h.LOOPBACK[family], peer_port))

    def exhaust(self, listening, port):
        """Connects until connect() fails with EADDRNOTAVAIL."""
        for _ in range(MAX_CONNECT_ATTEMPTS):
            try:
                self.keep(h.client(port))
            except OSError as error:
                h.check(h.is_address_not_available(error),
                        "%s: connect() failed with %r, expected "
                        "EADDRNOTAVAIL" % (self.name, error))
                break
            self.keep(listening.accept()[0])
        else:
            h.fail("%s: connect() never failed" % self.name)
        held = {h.local_port(s) for s in self.sockets} & self.pool
        h.check_equal(held, self.pool, "%s: ports held when connect() "
                      "failed" % self.name)

    def close(self):
        for sock in self.sockets:
            if sock.type == socket.SOCK_STREAM:
                h.close_with_reset(sock)  # no TIME_WAIT left behind
            else:
                sock.close()
        self.sockets = []


class Scene:
    """Every namespace, holder and veth a scenario makes, undone by close()
    whatever happened."""

    def __init__(self):
        self.namespaces = []
        self.shared = []
        self.holders = []
        self.veths = []
        self.own = self.add(Namespace(os.environ[h.NETNS_NAME_VAR], None,
                                      OWN_RANGE))

    def add(self, namespace):
        self.namespaces.append(namespace)
        return namespace

    def named(self, tag, port_range, reserved=""):
        name = h.shared_namespace_name(tag)
        self.shared.append(name)
        path = h.create_shared_namespace(name, port_range, reserved)
        return self.add(Namespace(name, path, port_range, reserved))

    def holder(self, hostname="", enter_path=""):
        holder = Holder(hostname, enter_path)
        self.holders.append(holder)
        return holder

    def held(self, hostname, port_range, reserved="", clash=False):
        """An unnamed namespace held by a process; its name: the holder's
        UTS hostname (with -<inode> on a clash), else netns-<inode>."""
        holder = self.holder(hostname)
        name = hostname or "netns-%d" % holder.inode
        if clash:
            name += "-%d" % holder.inode
        namespace = Namespace(name, holder.path, port_range, reserved, holder)
        h.configure_namespace(namespace.nsenter(), port_range, reserved)
        return self.add(namespace)

    def veth(self, namespace, name):
        """A veth pair, down (it carries nothing), one end here and one in
        namespace: the kernel deletes both when that namespace is
        destroyed."""
        h.run(["ip", "link", "add", name, "type", "veth", "peer", "name",
               "ept0", "netns", namespace.netns_arg])
        self.veths.append(name)
        namespace.veths.append(name)
        return name

    def drop(self, namespace):
        """Undoes one namespace now, as close() does them all: its sockets
        closed, its holder stopped, its name deleted.  Its veth ends are
        left to the kernel, which deletes them when it destroys the
        namespace (a test may wait for that)."""
        namespace.close()
        self.namespaces.remove(namespace)
        if namespace.holder is not None:
            namespace.holder.stop()
            self.holders.remove(namespace.holder)
        if namespace.name in self.shared:
            h.delete_shared_namespace(namespace.name)
            self.shared.remove(namespace.name)
        for name in namespace.veths:
            self.veths.remove(name)

    def close(self):
        for namespace in self.namespaces:
            namespace.close()
        for holder in self.holders:
            holder.stop()
        for name in self.shared:
            h.delete_shared_namespace(name)
        for name in self.veths:
            h.run(["ip", "link", "del", name], check_status=False)


class Options:
    """The reading options of a scenario, for its config and its checks."""

    def __init__(self, udp=False, states=False, watch=(), ignore=()):
        self.udp, self.states = udp, states
        self.watch, self.ignore = set(watch), set(ignore)

    def lines(self):
        return ((['Protocol "tcp" "udp"'] if self.udp else [])
                + (["ReportStates true"] if self.states else [])
                + ["WatchPort %d" % p for p in sorted(self.watch)]
                + ["IgnorePort %d" % p for p in sorted(self.ignore)])

    def open_ports(self, open_now):
        expected = {port: 1 for port in open_now if port not in self.ignore}
        for port in self.watch:
            expected.setdefault(port, 0)
        return expected


def check_reading(samples, namespace, options, what):
    """namespace's series in samples are exactly what ss inside it says
    (plus the bound-only sockets the test made); returns TCP used."""
    what = "%s, %s" % (what, namespace.host)
    view = h.host_view(samples, namespace.host)
    pool, total = namespace.pool, len(namespace.pool)
    with namespace.inside():
        h.check_equal(h.current_pool(), pool, what + ": its own pool")
        tcp, udp = h.ss_tcp(), h.ss_udp()
        states = h.ss_state_counts(pool)
        destinations = h.ss_destination_counts(pool)
        time_wait = h.ss_destination_counts(pool, "TIME-WAIT")
    tcp_ports = {s.local_port for s in tcp if s.local_port in pool}
    h.check_equal(tcp_ports & namespace.bound_only, set(),
                  what + ": bound-only ports in ss -tan")
    used = len(tcp_ports | namespace.bound_only)
    h.check_pool_values(view, used, total, what)

    listening = {s.local_port for s in tcp if s.state == "LISTEN"}
    open_ports = h.open_port_values_by_type(view)
    h.check_equal(open_ports.get("", {}), options.open_ports(listening),
                  what + ": instance_open_ports")
    pool_keys = {key for key in view if key[0] in h.POOL_METRICS}
    h.check_equal(len(pool_keys), 4 * (1 + options.udp),
                  what + ": pool series %r" % sorted(pool_keys))
    if options.udp:
        udp_used = len({s.local_port for s in udp if s.local_port in pool})
        for field, expected in (
                ("used", udp_used), ("total", total),
                ("available", total - udp_used),
                ("usage_ratio", h.format_ratio(udp_used / total))):
            h.check_equal(h.value_of(view, "collectd_ephemeral_ports_"
                                     + field, ephemeral_ports="udp"),
                          expected, what + ": UDP " + field)
        unconnected = {s.local_port for s in udp if s.state == "UNCONN"}
        h.check_equal(open_ports.get("udp", {}),
                      options.open_ports(unconnected),
                      what + ": UDP instance_open_ports")

    exclusive = len(({p for p in listening if p in pool})
                    | namespace.bound_only)
    found = h.destination_samples(view)
    h.check_equal({key: v["used"][0] for key, v in found.items()},
                  {key: n + exclusive for key, n in destinations.items()},
                  what + ": destination used")
    h.check_equal({key: v["usage_ratio"][0] for key, v in found.items()},
                  {key: h.format_ratio((n + exclusive) / total)
                   for key, n in destinations.items()},
                  what + ": destination usage_ratio")
    h.check_equal({key: v["time_wait"][0] for key, v in found.items()},
                  {key: float(time_wait.get(key, 0)) for key in destinations},
                  what + ": destination time_wait")
    if options.states:
        states["close"] += len(namespace.bound_only)
        h.check_equal(h.state_values(view),
                      {state: float(n) for state, n in states.items()},
                      what + ": ephemeral_ports_state_sockets")
    h.check_equal({key: value for key, (value, _)
                   in h.cgroup_values(view).items()},
                  cgroup_usage(tcp, udp if options.udp else None, pool,
                               namespace.bound_only),
                  what + ": " + h.CGROUP_USED)
    families = set(h.POOL_METRICS) | {
        h.SCRAPE_SUCCESS, h.OPEN_PORTS, h.DESTINATION_USED,
        h.DESTINATION_RATIO, h.DESTINATION_TIME_WAIT, h.CGROUP_USED} | (
            {h.STATE_SOCKETS} if options.states else set())
    if namespace.path is None:  # the whole read's cost: collectd's own host
        families |= set(h.READ_COST)
        h.check_read_cost(view, what)
    h.check_equal({key[0] for key in view} - families, set(),
                  what + ": other series")
    return used


def cgroup_usage(tcp, udp, pool, bound_only):
    """{(plugin_instance, type): used} of the per-cgroup series, from ss -tan
    (and ss -uan, unless udp is None) and the bound-only ports.  `ip netns
    exec` gave collectd a /sys without the cgroup2 mount (h.NO_CGROUP2_INFO
    says so), and that is what it sees in every namespace it enters: no
    owner can be named, so every pool port counts under "unknown", a
    TIME_WAIT socket's under "time_wait" (a port held by both counts for
    each), a SYN_RECV one's under none (its listener holds its port).  A
    group holding no port is not reported."""
    unknown = {s.local_port for s in tcp if s.local_port in pool and
               s.state not in ("TIME-WAIT", "SYN-RECV")} | bound_only
    time_wait = {s.local_port for s in tcp
                 if s.local_port in pool and s.state == "TIME-WAIT"}
    usage = {("unknown", ""): len(unknown), ("time_wait", ""): len(time_wait)}
    if udp is not None:
        usage[("unknown", "udp")] = len({s.local_port for s in udp
                                         if s.local_port in pool})
    return {key: float(n) for key, n in usage.items() if n > 0}


def is_of_scene(host, scene):
    """host is the plain one or names a namespace of this run: every name
    the test gives ends with the outer script's pid (-<inode> may follow)."""
    if host == h.HOSTNAME:
        return True
    name = host[len(h.HOSTNAME) + 1:]
    return bool(re.match(r"^ept-[a-z0-9_-]+-%d(-\d+)?$" % os.getppid(), name)
                or name in {"netns-%d" % ns.inode for ns in scene.namespaces})


def check_hosts(samples, scene, only_these=False):
    """Each namespace of the scene under its host, once; collectd's own only
    under the plain host, whatever other names it has."""
    served = h.hosts_served(samples)
    expected = {ns.host for ns in scene.namespaces}
    h.check_equal(sorted(host for host in served if is_of_scene(host, scene)),
                  sorted(expected), "hosts of the scenario's namespaces")
    own = scene.own
    for name in (own.name, "netns-%d" % own.inode):
        h.check(h.host_of(name) not in served,
                "collectd's own namespace served again as %s" % name)
    h.check_equal([host for host in served
                   if host.endswith("-%d" % own.inode)], [],
                  "hosts named after collectd's own namespace's inode")
    if only_these:
        h.check_equal(sorted(served), sorted(expected), "hosts served")


def errors_naming(collectd, namespaces):
    return [line for line in h.plugin_log_lines(collectd.log_lines(), "error")
            if any('"%s"' % ns.name in line for ns in namespaces)]


def dispatched_after(view, after_ms):
    """The series other than scrape_success stamped after after_ms."""
    return sorted(h.format_key(key) for key, (_, stamp) in view.items()
                  if key[0] != h.SCRAPE_SUCCESS and
                  (stamp is None or stamp > after_ms))


def successive_reads(collectd, hosts, since, count):
    """The scrapes of `count` successive fresh reads of every host."""
    for _ in range(count):
        samples = h.wait_for_fresh_hosts(collectd, hosts, since)
        since = (max(h.scrape_success_stamp(samples, host) for host in hosts)
                 / 1000.0 - h.FRESH_READ_MARGIN_S + 0.0005)
        yield samples


def clients_of(port, count, family=socket.AF_INET):
    def build(ns):
        ns.connect(ns.listen(port, family), port, count, family)
    return build
