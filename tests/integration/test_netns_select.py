"""Choosing the namespaces AllNetNamespaces reads: NetNamespaceName and
IgnoreSelected (collectd's interface-plugin convention: exact names and
"/regex/", POSIX extended, unanchored).

What every scenario here shares is in netns_scene.py's docstring.  The
namespaces of both scenarios, each with a pool of its own and one
connection to a listener: PICK, RXA, RXB, OTHER, CONF (`ip netns`
namespaces ept-<tag>-<pid>), UTS (held by a process whose UTS hostname is
ept-uts-<pid>) and INODE (held by a process with the host's hostname:
netns-<inode>).  The selection, the same in both:
`NetNamespaceName "ept-pick-<pid>" "/-rx[ab]-<pid>$/"` (an exact name and
a regex that matches inside the name) and `NetNamespaceName "<collectd's
own namespace's name>"` (a second line).

Scenario "selected": AllNetNamespaces true, the selection, and NetNamespace
naming CONF, which the selection leaves out.  Reported, each exactly as ss
inside it says: PICK, RXA, RXB, and CONF (configured paths are always
read); collectd's own namespace under the plain host only.  OTHER, UTS and
INODE are absent from the scrape, at two successive reads.

Scenario "ignored": the same with IgnoreSelected true, and NetNamespace
naming RXB, which the selection ignores.  Reported: OTHER, UTS, INODE, CONF
and RXB (configured); collectd's own namespace under the plain host only
(ignored by name, still read as itself).  PICK and RXA are absent.

Other tests' namespaces may show up: the checks are on the test's own, by
name."""

import os
import socket
import sys
import time
import types

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from netns_scene import (OWN_RANGE, Options, Scene, check_hosts,
                         check_reading, clients_of, errors_naming,
                         is_of_scene, successive_reads)  # noqa: E402


def build_scene(scene):
    """The namespaces, by tag; collectd's own has a connection too."""
    scene.own.build(clients_of(9000, 1))
    made = {"own": scene.own}
    for tag, port_range in (("pick", (41000, 41009)),
                            ("rxa", (42000, 42009)),
                            ("rxb", (43000, 43009)),
                            ("other", (44000, 44009)),
                            ("conf", (45000, 45009))):
        made[tag] = scene.named(tag, port_range).build(clients_of(9000, 1))
    made["uts"] = scene.held(h.shared_namespace_name("uts"),
                             (46000, 46009)).build(clients_of(9000, 1))
    made["inode"] = scene.held("", (47000, 47009)).build(
        clients_of(9001, 1, socket.AF_INET6))
    return made


def selection_lines(made):
    """The same selection in both scenarios."""
    return ['NetNamespaceName "%s" "/-rx[ab]-%d$/"'
            % (made["pick"].name, os.getppid()),
            'NetNamespaceName "%s"' % made["own"].name]


def check_selection(scenario, ignore_selected, configured, reported, absent):
    """Runs collectd with the selection (IgnoreSelected as given) and a
    NetNamespace line for the namespace tagged configured; the namespaces
    tagged reported (collectd's own always among them) are read, those
    tagged absent are not, at two successive reads."""
    options = Options()
    scene = Scene()
    try:
        made = build_scene(scene)
        h.check_equal(sorted(made), sorted(reported + absent),
                      "the scenario's namespaces")
        built_at = time.time()
        block = h.plugin_block(
            ["AllNetNamespaces true"] + selection_lines(made)
            + (["IgnoreSelected true"] if ignore_selected else [])
            + ['NetNamespace "%s"' % made[configured].path]
            + options.lines())
        with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
            collectd.start_and_wait_ready()
            shown = [made[tag] for tag in reported]
            hosts = [ns.host for ns in shown]
            shown_only = types.SimpleNamespace(namespaces=shown,
                                               own=scene.own)
            for index, samples in enumerate(
                    successive_reads(collectd, hosts, built_at, 2)):
                what = "%s, read %d" % (scenario, index + 1)
                if index == 0:
                    h.check_no_cgroup2_info(collectd)
                    for ns in shown:
                        check_reading(samples, ns, options, scenario)
                served = h.hosts_served(samples)
                h.check_equal(
                    sorted(host for host in served
                           if is_of_scene(host, scene)),
                    sorted(hosts), what + ": hosts of the test's namespaces")
                check_hosts(samples, shown_only)
                for tag in absent:
                    ns = made[tag]
                    for name in (ns.name, "netns-%d" % ns.inode):
                        h.check(h.host_of(name) not in served,
                                "%s: %s (%s) served as %s" % (
                                    what, tag, ns.name, h.host_of(name)))
                h.log("%s: hosts %s" % (what, ", ".join(sorted(
                    host for host in served if is_of_scene(host, scene)))))
            h.check_equal(errors_naming(collectd, scene.namespaces), [],
                          "plugin ERROR lines about these namespaces")
    finally:
        scene.close()


def selected():
    check_selection("selected", False, "conf",
                    ["own", "pick", "rxa", "rxb", "conf"],
                    ["other", "uts", "inode"])


def ignored():
    check_selection("ignored", True, "rxb",
                    ["own", "other", "uts", "inode", "conf", "rxb"],
                    ["pick", "rxa"])


if __name__ == "__main__":
    try:
        h.run_scenarios({"selected": selected, "ignored": ignored},
                        port_range=OWN_RANGE, reserved_ports="")
    finally:
        h.delete_shared_namespaces()
