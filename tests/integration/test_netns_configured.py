"""NetNamespace (issue 10): the namespaces named in the configuration.

What every scenario here shares is in netns_scene.py's docstring.

Scenario "configured": NetNamespace only (AllNetNamespaces at its default,
false): E and F by /run/netns path, F again by /proc/<pid of a process in
F>/ns/net, a held one by /proc/PID/ns/net, collectd's own by /run/netns
and by /proc/<pid of a process in it>/ns/net.
Exactly those hosts are served, each once.  Then a regular file is
bind-mounted over /run/netns/E (in the scenario's mount namespace only):
E reads scrape_success 0 and nothing else under its own host, one ERROR
'network namespace "E": ...' however many reads, while F, the held one and
collectd's own read as before; unmounted, E reads its values again and one
INFO says "reading recovered"."""

import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from netns_scene import (OWN_RANGE, Options, Scene, WATCHED, check_hosts,
                         check_reading, clients_of, dispatched_after,
                         errors_naming, successive_reads)  # noqa: E402


ERROR_PREFIX = 'ephemeral_ports plugin: network namespace "%s": '
RECOVERED = ERROR_PREFIX + "reading recovered"


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


if __name__ == "__main__":
    try:
        h.run_scenarios({"configured": configured},
                        port_range=OWN_RANGE, reserved_ports="")
    finally:
        h.delete_shared_namespaces()
