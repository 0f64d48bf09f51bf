"""Who holds the ports (issue 11): ephemeral_ports_cgroup used per cgroup.

What every scenario here shares is in cgroups_scene.py's docstring.

Scenario "netns": NetNamespace names another namespace (range 41000-41019)
where a process in group o holds 2 clients and a TIME_WAIT socket; the own
namespace's group s holds 1.  Each namespace reports only its own groups,
o under host "eptest:<name>", checked against ss inside it."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from cgroups_scene import (  # noqa: E402
    OTHER_RANGE, POOL, PORT_RANGE, SERVER_PORT, TIME_WAIT_PORT, World,
    check_no_errors, check_usage, kernel_usage, start)


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


if __name__ == "__main__":
    h.run_scenarios_seeing_cgroups(
        {"netns": netns},
        port_range=PORT_RANGE, reserved_ports="")
