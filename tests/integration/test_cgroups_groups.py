"""Who holds the ports (issue 11): ephemeral_ports_cgroup used per cgroup.

What every scenario here shares is in cgroups_scene.py's docstring.

Scenario "groups": Protocol tcp udp, TopCgroups 20.  The test's own group
(named "root" when it is the root) holds 1 client; a: 3 clients (made, then
the process moves to "moved": they stay a's); b: bound-only 127.0.0.1:40060
and one kernel-chosen, an IPv6 client, UDP bound and UDP connected; c:
bound-only [::1]:40060 (a port two groups hold counts for each) and 2
clients to a listener on pool port 40050 made in "listener", whose process
then moves to "moved", accepts them and closes the listener: the accepted
sockets alone hold 40050, for "listener"; one process moved from group to
group making one client in each: a path over 127 bytes ending in
"/svc.service", one whose last component alone is longer (UTF-8), x_y and
x/y (both named "ept-test-<pid>_x_y": the larger id gets -<id>), and
/time_wait and /unknown right under the mount (named like the pseudo
groups: -<id>); t: 2 TIME_WAIT (time_wait); f: an orphaned FIN_WAIT2
socket (unknown when the kernel made it a time-wait mini socket, as ss
shows, else f).  "moved" and t hold no pool port and are not reported.
The first read after collectd starts is exact, as is the next, and nothing
about cgroups is logged.

Scenario "groups_walking": the same, collectd started without
CAP_DAC_READ_SEARCH (setpriv drops it from its bounding and inheritable
sets): paths are found by walking the tree, the counts are the same, and
exactly one INFO says so."""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from cgroups_scene import (  # noqa: E402
    CAP_DAC_READ_SEARCH, DEEP, DEEP_UTF8, FIN_WAIT_PORT, POOL,
    POOL_LISTENER_PORT, PORT_RANGE, SERVER_PORT, SHARED_PORT, TIME_WAIT_PORT,
    UDP_PEER_PORT, WALKING_INFO, World, cgroup_log_lines, check_no_errors,
    check_usage, kernel_usage, start, wait_for_ss_state)


def build_groups(world):
    """Makes the groups and sockets of "groups"; returns (bound-only
    sockets, {owner: ports} by the test's own bookkeeping, UDP's)."""
    tree = world.tree
    world.listeners()
    g = {name: tree.make(name) for name in (
        "listener", "a", "b", "c", "moved", "x_y", "x/y", "t", "f", DEEP,
        DEEP_UTF8)}
    for name in h.CGROUP_PSEUDO_NAMES:
        g["/" + name] = tree.make(name, top_level=True)
    own_group = h.cgroup_of()

    listening = world.process(g["listener"])
    listener_id = listening.call("listen", port=POOL_LISTENER_PORT)["id"]
    b = world.process(g["b"])
    b.call("bind", port=SHARED_PORT)
    picked = b.call("bind")["port"]
    b_tcp = {SHARED_PORT, picked} | set(
        b.call("connect", port=SERVER_PORT, family=6)["ports"])
    b_udp = {b.call("bind", udp=True)["port"],
             b.call("udp_connect", port=UDP_PEER_PORT)["port"]}
    c = world.process(g["c"])
    c.call("bind", port=SHARED_PORT, family=6)
    c_tcp = {SHARED_PORT} | set(
        c.call("connect", port=POOL_LISTENER_PORT, count=2)["ports"])
    tree.move(listening.pid, g["moved"])
    listening.call("accept", id=listener_id, count=2)
    listening.call("close", ids=[listener_id])
    a = world.process(g["a"])
    a_tcp = set(a.call("connect", port=SERVER_PORT, count=3)["ports"])
    tree.move(a.pid, g["moved"])
    mover = world.process(g[DEEP])
    one_each = {}
    for name in (DEEP, DEEP_UTF8, "x_y", "x/y", "/time_wait", "/unknown"):
        tree.move(mover.pid, g[name])
        one_each[g[name]] = set(mover.call("connect",
                                           port=SERVER_PORT)["ports"])
    time_waits = set(world.process(g["t"]).call(
        "time_wait", port=TIME_WAIT_PORT, count=2)["ports"])
    fin_wait = world.process(g["f"]).call("fin_wait2", port=FIN_WAIT_PORT)
    own_client = world.own(h.client(SERVER_PORT))
    for port in time_waits:
        wait_for_ss_state(port, "TIME-WAIT")
    wait_for_ss_state(fin_wait["port"], "FIN-WAIT-2")

    # An orphaned FIN_WAIT2 socket is a time-wait mini socket without an
    # owner, unless the ACK found the socket locked (ss tells which).
    # (connect() reuses local ports across destinations: pick it by state.)
    fin_wait_sock = [s for s in h.ss_with_cgroups()
                     if s.local_port == fin_wait["port"] and
                     s.state == "FIN-WAIT-2"][0]
    fin_wait_owner = g["f"] if fin_wait_sock.cgroup else "unknown"
    h.log("orphaned FIN_WAIT2 socket %d: %s" % (fin_wait["port"],
                                               fin_wait_sock.cgroup))
    tcp = dict(one_each)
    tcp.update({own_group: {h.local_port(own_client)}, g["a"]: a_tcp,
                g["b"]: b_tcp, g["c"]: c_tcp,
                g["listener"]: {POOL_LISTENER_PORT},
                "time_wait": time_waits, fin_wait_owner: {fin_wait["port"]}})
    h.check_equal({len(tcp[g["a"]]), len(tcp[g["b"]]), len(tcp[g["c"]]),
                   len(b_udp)}, {3, 2}, "bookkeeping: a, b, c 3 ports each, "
                  "b 2 UDP")
    bound_only = [(g["b"], SHARED_PORT), (g["b"], picked),
                  (g["c"], SHARED_PORT)]
    return bound_only, tcp, {g["b"]: b_udp}


def check_kernel_agrees(bound_only, tcp, udp):
    usage = kernel_usage(POOL, bound_only)
    bookkept = {(owner, ""): ports for owner, ports in tcp.items()}
    bookkept.update({(owner, "udp"): ports for owner, ports in udp.items()})
    h.check_equal(usage, bookkept, "ss --cgroup (and the bound-only "
                  "sockets) against the test's bookkeeping")
    return usage


def groups_scenario(command_prefix=(), check_collectd=None):
    with World() as world:
        bound_only, tcp, udp = build_groups(world)
        usage = check_kernel_agrees(bound_only, tcp, udp)
        built_at = time.time()
        collectd = start(world, ['Protocol "tcp" "udp"', "TopCgroups 20"],
                         command_prefix)
        samples = h.wait_for_fresh_read(collectd, built_at)
        expected = check_usage(samples, world.tree, usage, "first read")
        h.log("served: %s" % sorted(expected.items()))
        samples = h.wait_for_read_after(collectd, built_at)
        check_usage(samples, world.tree, usage, "a later read")
        check_no_errors(collectd)
        if check_collectd is not None:
            check_collectd(collectd)


def groups():
    groups_scenario(check_collectd=lambda collectd: h.check_equal(
        cgroup_log_lines(collectd), [], "cgroup log lines"))


def capabilities(pid):
    for line in h.read_text("/proc/%d/status" % pid).splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    h.fail("no CapEff in /proc/%d/status" % pid)


def groups_walking():
    if shutil.which("setpriv") is None:
        raise h.TestSkip("setpriv (util-linux) not installed")
    prefix = ["setpriv", "--inh-caps=-dac_read_search",
              "--bounding-set=-dac_read_search"]
    groups_scenario(prefix, check_walking)


def check_walking(collectd):
    h.check_equal(capabilities(collectd.process.pid) >> CAP_DAC_READ_SEARCH
                  & 1, 0, "collectd's CAP_DAC_READ_SEARCH")
    lines = cgroup_log_lines(collectd)
    h.check(len(lines) == 1 and "[info]" in lines[0] and
            WALKING_INFO in lines[0],
            "expected one INFO %r, got %r" % (WALKING_INFO, lines))
    h.log(lines[0].strip())


if __name__ == "__main__":
    h.run_scenarios_seeing_cgroups(
        {"groups": groups, "groups_walking": groups_walking},
        port_range=PORT_RANGE, reserved_ports="")
