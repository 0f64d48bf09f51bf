"""Every network namespace (issue 10): NetNamespace and AllNetNamespaces.

What every scenario here shares is in netns_scene.py's docstring.

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
entered later by one with a UTS hostname of its own, has that hostname."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from netns_scene import (IGNORED, OWN_RANGE, Options, Scene, UDP_PEER_PORT,
                         WATCHED, check_hosts, check_reading, clients_of,
                         errors_naming, is_of_scene)  # noqa: E402


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


if __name__ == "__main__":
    try:
        h.run_scenarios({"all_namespaces": all_namespaces, "names": names},
                        port_range=OWN_RANGE, reserved_ports="")
    finally:
        h.delete_shared_namespaces()
