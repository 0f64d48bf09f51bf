"""Who holds the ports (issue 11): ephemeral_ports_cgroup used per cgroup.

What every scenario here shares is in cgroups_scene.py's docstring.

Scenario "no_cgroup2": a: 2 clients, t: 1 TIME_WAIT.  ProcRoot points at a
directory whose self/mountinfo is tests/fixtures/proc/cgroup_v1_only (its
sys and net lead to the real ones): with Source "netlink", a's ports count
under unknown and one INFO names the missing mount; with Source "proc"
(that ProcRoot, then the real /proc) the same, with one INFO saying
/proc/net has no owners.  TIME_WAIT sockets count under time_wait in every
case (TIME_WAIT_WITHOUT_OWNERS)."""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from cgroups_scene import (  # noqa: E402
    CGROUP_LOG, NO_MOUNT_INFO, POOL, PORT_RANGE, PROC_INFO, SERVER_PORT,
    TIME_WAIT_PORT, TIME_WAIT_WITHOUT_OWNERS, TOTAL, World, cgroup_log_lines,
    check_no_errors, kernel_usage, latest_read_values, start,
    wait_for_ss_state)


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
        {"no_cgroup2": no_cgroup2},
        port_range=PORT_RANGE, reserved_ports="")
