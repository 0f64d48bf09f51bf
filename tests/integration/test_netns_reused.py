"""A namespace's inode handed to the next one (issue 19, found by the churn
test): the kernel gives a destroyed network namespace's nsfs inode to the
next new namespace at once, so the inode alone does not tell a pod from
its replacement.  The plugin tells them apart by the namespace's cookie
(SO_NETNS_COOKIE, Linux 5.14+, never used twice).

What every scenario here shares is in netns_scene.py's docstring.

Scenario "inode_reused": collectd (Interval 3, AllNetNamespaces true,
NetNamespaceName choosing the test's namespaces) reads namespace A (two
clients of a listener).  Right after a read that served A, the test
deletes A, waits until the kernel destroyed it (its veth end vanishes),
and makes B (one client) before the next read, until B has A's inode (the
kernel reuses it; up to five tries).  Then, within two reads: B is served
under its own name with exactly what ss inside it says, and A's series are
gone from write_prometheus (none left once they went stale), with no
ERROR.  Before the fix B was served as A for as long as it lived.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from netns_scene import (OWN_RANGE, Options, Scene, check_reading,
                         clients_of)  # noqa: E402
from test_netns_come_and_go import wait_until_freed  # noqa: E402

INTERVAL = 3.0
TRIES = 5


def make(scene, tag, port_range, clients):
    """A named namespace with clients, and the veth end whose going says
    the kernel destroyed it."""
    ns = scene.named(tag, port_range).build(clients_of(9000, clients))
    made = len(scene.namespaces)
    return ns, scene.veth(ns, "eptr%d-%d" % (os.getpid() % 100000, made))


def served_hosts(samples):
    return {host for host in h.hosts_served(samples) if host != h.HOSTNAME}


def inode_reused():
    options = Options()
    scene = Scene()
    try:
        a, veth = make(scene, "reusea", (41000, 41009), 2)
        block = h.plugin_block(["AllNetNamespaces true",
                                'NetNamespaceName "/^ept-reuse[ab][0-9]*-/"'])
        with h.TempDir() as tmp, h.Collectd(tmp, block,
                                            interval=INTERVAL) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_hosts(collectd, [a.host], time.time(),
                                             timeout=3 * INTERVAL)
            check_reading(samples, a, options, "A")
            for attempt in range(TRIES):
                # Just after a read: the next one is INTERVAL away.
                h.wait_for_fresh_hosts(collectd, [h.HOSTNAME], time.time(),
                                       timeout=3 * INTERVAL)
                gone_at = time.time()
                old = a
                scene.drop(old)
                wait_until_freed(old, veth, collectd, gone_at)
                b, veth = make(scene, "reuseb%d" % attempt, (42000, 42009), 1)
                made_in = time.time() - gone_at
                h.log("try %d: A inode %d, B inode %d, B made %.2f s after A "
                      "went" % (attempt, old.inode, b.inode, made_in))
                if b.inode == old.inode and made_in < INTERVAL - 0.5:
                    break
                a = b  # try again with this one as the old
            else:
                h.fail("the kernel never gave the new namespace the old one's "
                       "inode in %d tries" % TRIES)
            samples = h.wait_for_fresh_hosts(collectd, [b.host], time.time(),
                                             timeout=3 * INTERVAL)
            check_reading(samples, b, options, "B, on A's inode")
            h.check(old.host not in served_hosts(samples) or
                    h.scrape_success_stamp(samples, old.host) / 1000.0
                    < gone_at, "A served from a read after it went: %r"
                    % sorted(served_hosts(samples)))
            # collectd drops a value Timeout (2) intervals after its last
            # read, at its next check (one interval): up to 3 after.
            deadline = time.monotonic() + 4 * INTERVAL
            while old.host in served_hosts(h.scrape()):
                h.check(time.monotonic() < deadline,
                        "A still served %.0f s after it went"
                        % (time.time() - gone_at))
                time.sleep(0.2)
            h.check_equal(sorted(served_hosts(h.scrape())), [b.host],
                          "other namespaces served")
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")
            h.log("FIGURES: B (inode %d, A's) served under its own name; A "
                  "gone from the scrape %.1f s after it went"
                  % (b.inode, time.time() - gone_at))
    finally:
        scene.close()


if __name__ == "__main__":
    try:
        h.run_scenarios({"inode_reused": inode_reused}, port_range=OWN_RANGE)
    finally:
        h.delete_shared_namespaces()
