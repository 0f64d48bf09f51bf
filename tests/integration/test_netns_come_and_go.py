"""AllNetNamespaces (issue 10): namespaces that appear and go away while
collectd runs, and what collectd holds meanwhile.

What every scenario here shares is in netns_scene.py's docstring.

Scenario "come_and_go": AllNetNamespaces true, with the csv plugin (every
read's values, with their times).  A named namespace D and a held one made
after collectd started appear at the next read.  Between reads collectd
holds no namespace descriptor, no more sockets than before they existed,
and every thread is in its own namespace.  Then their sockets close, the
holder is killed and D deleted: no read after that reports them,
write_prometheus stops serving them once they go stale (2 intervals), and
the kernel really frees them (the veth end the test put in each vanishes
from collectd's namespace, which happens only when the namespace is
destroyed; /proc is searched for anything still referring to its inode)."""

import ctypes
import errno
import fcntl
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import long_runs as lr  # noqa: E402
from netns_scene import (OWN_RANGE, Options, Scene, check_hosts, check_reading,
                         clients_of, errors_naming)  # noqa: E402


EXPIRY_TIMEOUT_S = 10.0
FREED_TIMEOUT_S = 15.0


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
        for fd, target in lr.descriptors(pid):
            if target.startswith("net:["):
                sample["namespace descriptors"].append(target)
            if not target.startswith("socket:["):
                continue
            facts = socket_facts(pidfd, fd)
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
        h.run_scenarios({"come_and_go": come_and_go},
                        port_range=OWN_RANGE, reserved_ports="")
    finally:
        h.delete_shared_namespaces()
