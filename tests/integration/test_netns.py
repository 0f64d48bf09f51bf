"""Every network namespace (issue 10): NetNamespace and AllNetNamespaces.

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

Scenario "all_namespaces": AllNetNamespaces true, also NetNamespace naming
collectd's own namespace (/run/netns/<scenario ns>, /proc/self/ns/net) and
one it finds anyway; Protocol tcp udp, ReportStates true, WatchPort 5399,
IgnorePort 5355.  Namespaces: A 41000-41009 (bound-only 41005, 3 clients
and a TIME_WAIT to 9000, an ignored listener, UDP bound, connected and
ignored), B 42000-42019 minus 42003,42010-42011 (IPv6 clients, a listener on
a pool port), C 43000-43009 exhausted (connect() until EADDRNOTAVAIL: ratio
1, its destination too), U held by a process with UTS hostname
ept-uts-<pid>.  Each reads exactly as ss inside it says; collectd's own
namespace appears once, plainly.

Scenario "names": AllNetNamespaces true.  V, held by a process with the
host's UTS hostname, is netns-<inode>; W, held by one whose UTS hostname
is the name of an `ip netns` namespace made before it, is
<that name>-<inode>; X, held by a process with the host's hostname and
entered later by one with a UTS hostname of its own, has that hostname.

Scenario "configured": NetNamespace only (AllNetNamespaces at its default,
false): E and F by /run/netns path, F again by /proc/<pid of a process in
F>/ns/net, a held one by /proc/PID/ns/net, collectd's own by /run/netns
and by /proc/<pid of a process in it>/ns/net.
Exactly those hosts are served, each once.  Then a regular file is
bind-mounted over /run/netns/E (in the scenario's mount namespace only):
E reads scrape_success 0 and nothing else under its own host, one ERROR
'network namespace "E": ...' however many reads, while F, the held one and
collectd's own read as before; unmounted, E reads its values again and one
INFO says "reading recovered".

Scenario "come_and_go": AllNetNamespaces true, with the csv plugin (every
read's values, with their times).  A named namespace D and a held one made
after collectd started appear at the next read.  Between reads collectd
holds no namespace descriptor, no more sockets than before they existed,
and every thread is in its own namespace.  Then their sockets close, the
holder is killed and D deleted: no read after that reports them,
write_prometheus stops serving them once they go stale (2 intervals), and
the kernel really frees them (the veth end the test put in each vanishes
from collectd's namespace, which happens only when the namespace is
destroyed; /proc is searched for anything still referring to its inode).
"""

import ctypes
import errno
import fcntl
import os
import re
import select
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

OWN_RANGE = (40000, 40019)
WATCHED = 5399
IGNORED = 5355
UDP_PEER_PORT = 9999  # connect() on UDP sends nothing; no one listens here
MAX_CONNECT_ATTEMPTS = 100
ERROR_PREFIX = 'ephemeral_ports plugin: network namespace "%s": '
RECOVERED = ERROR_PREFIX + "reading recovered"
EXPIRY_TIMEOUT_S = 10.0
FREED_TIMEOUT_S = 15.0
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
        return name

    def close(self):
        for namespace in self.namespaces:
            namespace.close()
        for holder in self.holders:
            holder.stop()
        for name in self.shared:
            h.delete_shared_namespace(name)
        for name in self.veths:
            h.run(["ip", "link", "del", name], check_status=False)


# --------------------------------------------------------------------------
# Checks


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
        h.DESTINATION_RATIO, h.CGROUP_USED} | (
            {h.STATE_SOCKETS} if options.states else set())
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


# --------------------------------------------------------------------------
# What collectd holds between reads.  A read of several namespaces takes
# tens to hundreds of milliseconds on a loaded machine, and meanwhile the
# plugin may hold its way home and a netlink socket in the namespace it
# reads; between reads it must hold neither.  So collectd is sampled every
# HOLDING_SPACING_S for two intervals: whatever it holds for a whole
# interval without a break, it holds between reads.

INTERVAL_S = 1.0
HOLDING_WINDOW_S, HOLDING_SPACING_S = 2.0, 0.02
PIDFD_GETFD = 438  # the syscall's number (x86_64 and arm64 alike)
SIOCGSKNS = 0x894C  # ioctl: a socket's network namespace, as a descriptor
_libc = ctypes.CDLL(None, use_errno=True)


def socket_facts(pidfd, fd):
    """(local TCP/UDP port or None, network namespace) of a socket of
    another process, from a duplicate of its descriptor; None when it
    closed meanwhile."""
    copy = _libc.syscall(PIDFD_GETFD, pidfd, fd, 0)
    if copy < 0:
        error = ctypes.get_errno()
        if error == errno.ENOSYS:
            raise h.TestSkip("no pidfd_getfd (Linux 5.6+)")
        return None
    try:
        namespace_fd = fcntl.ioctl(copy, SIOCGSKNS)
        namespace = os.readlink("/proc/self/fd/%d" % namespace_fd)
        os.close(namespace_fd)
        sock = socket.socket(fileno=copy)
        copy = -1  # sock owns it now
        port = (sock.getsockname()[1]
                if sock.family in (socket.AF_INET, socket.AF_INET6) else None)
        sock.close()
    finally:
        if copy >= 0:
            os.close(copy)
    return port, namespace


def holdings(pid):
    """What collectd holds now: its sockets other than write_prometheus's
    (TCP on PROMETHEUS_PORT), those in another namespace, its namespace
    descriptors, and its threads in another namespace."""
    own = os.readlink("/proc/self/ns/net")
    sample = {"time": time.monotonic(), "sockets": 0, "foreign sockets": [],
              "namespace descriptors": [], "threads elsewhere": []}
    pidfd = os.pidfd_open(pid)
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                continue  # closed while we looked
            if target.startswith("net:["):
                sample["namespace descriptors"].append(target)
            if not target.startswith("socket:["):
                continue
            facts = socket_facts(pidfd, int(fd))
            if facts is None or facts[0] == h.PROMETHEUS_PORT:
                continue
            sample["sockets"] += 1
            if facts[1] != own:
                sample["foreign sockets"].append("%s in %s" % (target,
                                                               facts[1]))
    finally:
        os.close(pidfd)
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            net = os.readlink("/proc/%d/task/%s/ns/net" % (pid, task))
        except FileNotFoundError:
            continue
        if net != own:
            sample["threads elsewhere"].append("%s in %s" % (task, net))
    return sample


def longest_hold(samples, kind):
    """The longest time (s) through which every sample held `kind`."""
    longest, since = 0.0, None
    for sample in samples:
        if not sample[kind]:
            since = None
            continue
        since = sample["time"] if since is None else since
        longest = max(longest, sample["time"] - since + HOLDING_SPACING_S)
    return longest


def check_holds_nothing(collectd, baseline_sockets, what):
    """Between reads collectd holds no namespace descriptor, no socket in
    another namespace, no thread elsewhere, and its socket count (the
    fewest seen; write_prometheus's aside) stays at baseline_sockets
    (None: returns it)."""
    samples = []
    deadline = time.monotonic() + HOLDING_WINDOW_S
    while time.monotonic() < deadline:
        samples.append(holdings(collectd.process.pid))
        time.sleep(HOLDING_SPACING_S)
    held = {kind: longest_hold(samples, kind)
            for kind in ("foreign sockets", "namespace descriptors",
                         "threads elsewhere")}
    for kind, seconds in held.items():
        h.check(seconds < INTERVAL_S, "%s: collectd held %s for %.2f s on "
                "end: %r" % (what, kind, seconds,
                             [s[kind] for s in samples if s[kind]][-3:]))
    sockets = min(sample["sockets"] for sample in samples)
    if baseline_sockets is not None:
        h.check_equal(sockets, baseline_sockets,
                      "%s: collectd's sockets between reads" % what)
    h.log("%s: between reads collectd holds %d sockets (write_prometheus's "
          "aside) and no namespace; held on end at most: %s" % (
              what, sockets, ", ".join("%s %.2f s" % item
                                       for item in held.items())))
    return sockets


def referrers(inode):
    """Whatever in /proc still refers to the network namespace inode."""
    link = "net:[%d]" % inode
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            paths = ["/proc/%s/task/%s/ns/net" % (pid, task)
                     for task in os.listdir("/proc/%s/task" % pid)]
            paths += ["/proc/%s/fd/%s" % (pid, fd)
                      for fd in os.listdir("/proc/%s/fd" % pid)]
        except OSError:
            continue  # gone, or a kernel thread's
        for path in paths:
            try:
                if os.readlink(path) == link:
                    found.append(path)
            except OSError:
                pass
    if link in h.read_text("/proc/self/mountinfo"):
        found.append("a mount in the scenario's mount namespace")
    return found


def link_exists(name):
    return h.run(["ip", "link", "show", name],
                 check_status=False).returncode == 0


def wait_until_freed(namespace, veth, collectd, gone_at):
    """The kernel destroys the namespace, and its veth end with it, once
    nothing holds it; returns when (time.time()).  Another program on the
    machine that entered it (a benchmark walking every namespace) may hold
    it a while: that is logged, with what /proc showed right after."""
    left = referrers(namespace.inode)
    h.check(not any(path.startswith("/proc/%d/" % collectd.process.pid)
                    for path in left),
            "collectd still refers to %s: %r" % (namespace.name, left))
    deadline = time.monotonic() + FREED_TIMEOUT_S
    while link_exists(veth):
        if time.monotonic() > deadline:
            h.fail("namespace %s (inode %d) not freed %.0f s after it was "
                   "deleted; referring to it: %r (right after: %r)"
                   % (namespace.name, namespace.inode, FREED_TIMEOUT_S,
                      referrers(namespace.inode), left))
        time.sleep(0.05)
    freed_at = time.time()
    h.log("%s freed %.2f s after it went away (its veth went with it); right "
          "after, %s" % (namespace.name, freed_at - gone_at,
                         "nothing referred to it" if not left else
                         "these referred to inode %d: %r" % (namespace.inode,
                                                            left)))
    return freed_at


# --------------------------------------------------------------------------
# csv: every read of every host, with its time


def csv_config(tmp):
    return ("LoadPlugin csv\n<Plugin csv>\n  DataDir \"%s\"\n"
            "  StoreRates false\n</Plugin>\n" % tmp.join("csv"))


def csv_read_times(tmp, host):
    """The time of every scrape_success csv wrote for host."""
    directory = tmp.join("csv", host, "ephemeral_port_exporter")
    times = []
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    for name in names:
        lines = h.read_text(os.path.join(directory, name)).split("\n")
        # lines[0] is the header; the last is empty or being written.
        times += [float(line.split(",")[0]) for line in lines[1:-1]]
    return times


def wait_for_own_reads(tmp, collectd, after, count):
    deadline = time.monotonic() + 15
    while len([t for t in csv_read_times(tmp, h.HOSTNAME) if t > after]) \
            < count:
        h.check(collectd.process.poll() is None, "collectd exited")
        h.check(time.monotonic() < deadline, "no %d reads after %.3f in the "
                "csv" % (count, after))
        time.sleep(0.2)


# --------------------------------------------------------------------------
# Socket mixes


def build_own(ns):
    listening = ns.listen(9000)
    ns.connect(listening, 9000, count=2)
    ns.udp(5353)


def build_a(ns):
    # Explicit binds first, so that no client can have taken their ports.
    ns.bind_only(41005)
    ns.udp(5353)
    ns.udp(IGNORED)
    ns.udp(41002)
    listening = ns.listen(9000)
    ns.listen(IGNORED)
    ns.connect(listening, 9000, count=3)
    ns.udp(peer_port=UDP_PEER_PORT)
    ns.udp(peer_port=UDP_PEER_PORT, family=socket.AF_INET6)
    h.make_time_wait(listening, 9000)


def build_b(ns):
    in_pool = ns.listen(42019)
    ns.connect(in_pool, 42019)
    listening = ns.listen(9001, socket.AF_INET6)
    ns.connect(listening, 9001, count=2, family=socket.AF_INET6)


def build_exhausted(ns):
    listening = ns.keep(h.listener(9000, backlog=4 * len(ns.pool)))
    ns.exhaust(listening, 9000)


def clients_of(port, count, family=socket.AF_INET):
    def build(ns):
        ns.connect(ns.listen(port, family), port, count, family)
    return build


# --------------------------------------------------------------------------
# Scenarios


def all_namespaces():
    options = Options(udp=True, states=True, watch=(WATCHED,),
                      ignore=(IGNORED,))
    scene = Scene()
    try:
        scene.own.build(build_own)
        a = scene.named("nsa", (41000, 41009)).build(build_a)
        scene.named("nsb", (42000, 42019), "42003,42010-42011").build(build_b)
        c = scene.named("nsc", (43000, 43009)).build(build_exhausted)
        scene.held(h.shared_namespace_name("uts"),
                   (44000, 44009)).build(clients_of(9000, 2))
        built_at = time.time()
        block = h.plugin_block(
            ["AllNetNamespaces true",
             'NetNamespace "/run/netns/%s"' % scene.own.name,
             'NetNamespace "/proc/self/ns/net"',
             'NetNamespace "%s"' % a.path] + options.lines())
        with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
            collectd.start_and_wait_ready()
            hosts = [ns.host for ns in scene.namespaces]
            samples = h.wait_for_fresh_hosts(collectd, hosts, built_at)
            h.check_no_cgroup2_info(collectd)
            for ns in scene.namespaces:
                check_reading(samples, ns, options, "AllNetNamespaces")
            view = h.host_view(samples, c.host)
            h.check_equal(h.value_of(view, "collectd_ephemeral_ports_"
                                     "usage_ratio"), 1.0, "C usage_ratio")
            h.check_equal(
                {key: v["usage_ratio"][0]
                 for key, v in h.destination_samples(view).items()},
                {("127.0.0.1:9000", "127.0.0.1"): 1.0},
                "C destination usage_ratio")
            check_hosts(samples, scene)
            h.check_equal(errors_naming(collectd, scene.namespaces), [],
                          "plugin ERROR lines about these namespaces")
            h.log("hosts: %s" % ", ".join(sorted(
                host for host in h.hosts_served(samples)
                if is_of_scene(host, scene))))
    finally:
        scene.close()


def names():
    options = Options()
    scene = Scene()
    try:
        scene.own.build(clients_of(9000, 1))
        a = scene.named("nsn", (41000, 41009)).build(clients_of(9000, 1))
        scene.held("", (45000, 45009)).build(
            clients_of(9002, 1, socket.AF_INET6))
        scene.held(a.name, (46000, 46009), clash=True).build(
            clients_of(9000, 1))
        later = scene.held("", (47000, 47009)).build(clients_of(9000, 1))
        hostname = h.shared_namespace_name("later")
        scene.holder(hostname, enter_path=later.path)
        later.rename(hostname)
        built_at = time.time()
        block = h.plugin_block(["AllNetNamespaces true"])
        with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
            collectd.start_and_wait_ready()
            hosts = [ns.host for ns in scene.namespaces]
            try:
                samples = h.wait_for_fresh_hosts(collectd, hosts, built_at)
            except h.TestFailure:
                check_hosts(h.scrape(), scene)  # says which name is wrong
                raise
            h.check_no_cgroup2_info(collectd)
            for ns in scene.namespaces:
                check_reading(samples, ns, options, "named")
            check_hosts(samples, scene)
    finally:
        scene.close()


def configured():
    options = Options(watch=(WATCHED,))
    scene = Scene()
    mounted = []
    try:
        scene.own.build(clients_of(9000, 1))
        e = scene.named("nse", (47000, 47009)).build(clients_of(9000, 1))
        f = scene.named("nsf", (48000, 48009), "48005").build(
            clients_of(9000, 2, socket.AF_INET6))
        in_f = scene.holder(enter_path=f.path)
        in_own = scene.holder(enter_path="/proc/self/ns/net")
        held = scene.held(h.shared_namespace_name("utsf"),
                          (49000, 49009)).build(clients_of(9001, 1))
        paths = [e.path, f.path, in_f.path, held.path,
                 "/run/netns/" + scene.own.name, in_own.path]
        block = h.plugin_block(['NetNamespace "%s"' % path for path in paths]
                               + options.lines())
        with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
            built_at = time.time()
            collectd.start_and_wait_ready()
            hosts = [ns.host for ns in scene.namespaces]
            samples = h.wait_for_fresh_hosts(collectd, hosts, built_at)
            h.check_no_cgroup2_info(collectd)
            for ns in scene.namespaces:
                check_reading(samples, ns, options, "NetNamespace")
            check_hosts(samples, scene, only_these=True)
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")

            blocker = tmp.join("not-a-namespace")
            h.write_file_atomically(blocker, "")
            h.run(["mount", "--bind", blocker, e.path])
            mounted.append(e.path)
            fault_at = time.time()
            fault_ms = (fault_at + h.FRESH_READ_MARGIN_S) * 1000.0
            healthy = [ns for ns in scene.namespaces if ns is not e]
            for samples in successive_reads(collectd, hosts, fault_at, 3):
                view = h.host_view(samples, e.host)
                h.check_equal(h.value_of(view, h.SCRAPE_SUCCESS), 0.0,
                              "E's scrape_success, not enterable")
                h.check_equal(dispatched_after(view, fault_ms), [],
                              "E's series dispatched while it cannot be "
                              "entered")
                for ns in healthy:
                    check_reading(samples, ns, options, "while E fails")
            lines = errors_naming(collectd, [e])
            h.check_equal(len(lines), 1, "ERROR lines about E: %r" % lines)
            h.check(re.search(re.escape(ERROR_PREFIX % e.name) + r"\S",
                              lines[0]),
                    "ERROR line about E without its reason: %r" % lines[0])
            h.check_equal(errors_naming(collectd, healthy), [],
                          "ERROR lines about the others")
            h.log("E not enterable: %s" % lines[0].strip())

            h.run(["umount", e.path])
            mounted.remove(e.path)
            repaired_at = time.time()
            for samples in successive_reads(collectd, hosts, repaired_at, 2):
                for ns in scene.namespaces:
                    check_reading(samples, ns, options, "after E recovered")
            log_lines = collectd.log_lines()
            recovered = [line for line in log_lines
                         if (RECOVERED % e.name) in line]
            h.check_equal(len(recovered), 1, "recovery lines: %r" % recovered)
            h.check("[info]" in recovered[0], "recovery not logged at INFO: "
                    "%r" % recovered[0])
            h.check_equal(len(errors_naming(collectd, [e])), 1,
                          "ERROR lines about E after it recovered")
    finally:
        for path in mounted:
            h.run(["umount", path], check_status=False)
        scene.close()


def come_and_go():
    options = Options()
    scene = Scene()
    block = h.plugin_block(["AllNetNamespaces true"])
    try:
        scene.own.build(clients_of(9000, 1))
        with h.TempDir() as tmp, \
                h.Collectd(tmp, block, extra_plugins=("csv",),
                           extra_config=csv_config(tmp)) as collectd:
            collectd.start_and_wait_ready()
            h.wait_for_read_after(collectd, time.time())
            baseline = check_holds_nothing(collectd, None, "before")

            d = scene.named("nsd", (50000, 50009))
            held = scene.held(h.shared_namespace_name("utsd"), (51000, 51009))
            exist_at = time.time()
            d.build(clients_of(9000, 2))
            held.build(clients_of(9000, 1, socket.AF_INET6))
            veths = {d: scene.veth(d, "ept-vd"), held: scene.veth(held,
                                                                 "ept-vu")}
            built_at = time.time()
            hosts = [ns.host for ns in scene.namespaces]
            samples = h.wait_for_fresh_hosts(collectd, hosts, built_at)
            h.check_no_cgroup2_info(collectd)
            for ns in scene.namespaces:
                check_reading(samples, ns, options, "made after the start")
            check_hosts(samples, scene)
            first_own = min(t for t in csv_read_times(tmp, h.HOSTNAME)
                            if t > exist_at + h.FRESH_READ_MARGIN_S)
            for ns in (d, held):
                times = csv_read_times(tmp, ns.host)
                h.check(times, "no csv rows of %s" % ns.host)
                first = min(times)
                h.check(first < first_own + 0.5,
                        "%s first read at %.3f, the first read after it "
                        "existed at %.3f" % (ns.host, first, first_own))
            check_holds_nothing(collectd, baseline, "with 2 more namespaces")

            h.wait_for_fresh_read(collectd, time.time())  # right after one
            for ns in (d, held):
                ns.close()
            held.holder.stop()
            h.delete_shared_namespace(d.name)
            gone_at = time.time()
            h.check(not os.path.exists(d.path), "%s still there" % d.path)
            # Freed, it is gone for sure: no read that starts later may
            # report it.
            gone = max(wait_until_freed(ns, veths[ns], collectd, gone_at)
                       for ns in (d, held)) + h.FRESH_READ_MARGIN_S
            wait_for_own_reads(tmp, collectd, gone, 2)
            for ns in (d, held):
                late = [t for t in csv_read_times(tmp, ns.host) if t > gone]
                h.check_equal(late, [], "reads of %s after it went away at "
                              "%.3f (reads of collectd's own since: %r)"
                              % (ns.host, gone_at,
                                 [t for t in csv_read_times(tmp, h.HOSTNAME)
                                  if t > gone_at - 1]))
            deadline = time.monotonic() + EXPIRY_TIMEOUT_S
            while {d.host, held.host} & h.hosts_served(h.scrape()):
                h.check(time.monotonic() < deadline, "%s still served %.0f s "
                        "after they went away" % (
                            sorted({d.host, held.host} &
                                   h.hosts_served(h.scrape())),
                            EXPIRY_TIMEOUT_S))
                time.sleep(0.25)
            h.log("gone namespaces unserved %.1f s after they went away"
                  % (time.time() - gone_at))
            check_holds_nothing(collectd, baseline, "after they went away")
            h.check_equal(errors_naming(collectd, [d, held]), [],
                          "ERROR lines about namespaces that went away")
    finally:
        scene.close()


if __name__ == "__main__":
    try:
        h.run_scenarios({"all_namespaces": all_namespaces,
                         "names": names,
                         "configured": configured,
                         "come_and_go": come_and_go},
                        port_range=OWN_RANGE, reserved_ports="")
    finally:
        h.delete_shared_namespaces()
