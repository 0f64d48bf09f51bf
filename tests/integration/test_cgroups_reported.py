"""Who holds the ports (issue 11): ephemeral_ports_cgroup used per cgroup.

What every scenario here shares is in cgroups_scene.py's docstring.

Scenario "removed": gone_before's process made 2 clients, moved out, and
the group was removed before collectd started; gone_after (1 client) is
removed after a read reported it; kept keeps 1.  ss shows the removed
groups' sockets as unreachable; they count under unknown, and gone_after,
which dropped out, is sent once more with 0.

Scenario "top": default TopCgroups (10) first, then TopCgroups 0: no cgroup
series at all (a: 3, b: 2; pool used 5).  TopCgroups 1: a alone; a closes 2
(RST) and b (2) takes the top, a is sent once more with 1 and not again; b
closes all and is sent once more with 0, a is back; x_y (2) takes the top,
then x/y (3), named like it: the read that sends x_y once more sends both,
x/y as -<id> (scraped every 0.1 s to see that read), and collectd never
refuses a value as a second one under an identifier ("uc_update: Value too
old").  The default: eleven groups from one process moved between them,
nine of 12..4 ports and two of 2: the one made first (smaller id) is
reported, not the one that made its sockets first."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from cgroups_scene import (  # noqa: E402
    POOL, PORT_RANGE, SERVER_PORT, TOTAL, World, check_no_errors, check_usage,
    kernel_usage, latest_read_values, start)


def removed():
    with World() as world:
        tree = world.tree
        world.listeners()
        g = {name: tree.make(name) for name in
             ("gone_before", "gone_after", "kept", "parking")}
        first = world.process(g["gone_before"])
        gone_ports = set(first.call("connect", port=SERVER_PORT,
                                    count=2)["ports"])
        gone_id = tree.id_of(g["gone_before"])
        tree.move(first.pid, g["parking"])
        tree.remove(g["gone_before"])
        second = world.process(g["gone_after"])
        second.call("connect", port=SERVER_PORT)
        world.process(g["kept"]).call("connect", port=SERVER_PORT)
        unreachable = {s.local_port: s.cgroup for s in h.ss_with_cgroups()
                       if s.local_port in gone_ports}
        h.check_equal(unreachable, dict.fromkeys(
            gone_ports, "unreachable:%x" % gone_id),
            "ss --cgroup of a removed group's sockets")
        usage = kernel_usage(POOL)
        h.check_equal(sorted((owner, len(ports)) for (owner, _), ports
                             in usage.items()),
                      sorted([("unknown", 2), (g["gone_after"], 1),
                              (g["kept"], 1)]), "ss --cgroup")
        built_at = time.time()
        collectd = start(world, [])
        samples = h.wait_for_fresh_read(collectd, built_at)
        check_usage(samples, tree, usage, "gone_before removed")

        tree.move(second.pid, g["parking"])
        tree.remove(g["gone_after"])
        changed_at = time.time()
        usage = kernel_usage(POOL)
        h.check_equal(sorted((owner, len(ports)) for (owner, _), ports
                             in usage.items()),
                      sorted([("unknown", 3), (g["kept"], 1)]),
                      "ss --cgroup after gone_after was removed")
        samples = h.wait_for_read_after(collectd, changed_at)
        check_usage(samples, tree, usage, "gone_after removed")
        gone_after = (h.cgroup_instances({0: g["gone_after"]})[0], "")
        check_dropped_once(collectd, samples, changed_at, {gone_after: 0.0},
                           "gone_after, removed")
        check_no_errors(collectd)


def check_dropped_once(collectd, samples, since, dropped, what):
    """Each dropped series ({key: value}) was dispatched by a read after
    since, before the latest one, and the next read does not send it
    again."""
    success_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
    found = h.cgroup_values(samples)
    stamps = {}
    for key, value in dropped.items():
        h.check(key in found, "%s: %r not served; served: %r"
                % (what, key, sorted(found)))
        got, ts = found[key]
        h.check_equal(got, value, "%s: %r sent once more" % (what, key))
        h.check(since * 1000 < ts < success_ms,
                "%s: %r not dispatched by a read after the change and "
                "before the latest (timestamp %r, change %.0f, latest %r)"
                % (what, key, ts, since * 1000, success_ms))
        stamps[key] = ts
    later = h.wait_for_fresh_read(collectd, success_ms / 1000.0)
    found = h.cgroup_values(later)
    for key, ts in stamps.items():
        h.check_equal(found.get(key), (dropped[key], ts),
                      "%s: %r at the next read (not sent again)" % (what, key))
    return later


def observe_reads(collectd, since, reads):
    """{read's timestamp (ms): {key: used}} of the cgroup series of the
    reads that start after since, scraped every 0.1 s until `reads` of them
    were seen (write_prometheus serves a read's values until the next
    read's replace them)."""
    seen = {}
    deadline = time.monotonic() + reads * 2 + 5
    while time.monotonic() < deadline:
        samples = h.scrape()
        success = h.sample(samples, h.SCRAPE_SUCCESS)[1]
        for key, (value, ts) in h.cgroup_values(samples).items():
            if ts > since * 1000:
                seen.setdefault(ts, {})[key] = value
        if len([ts for ts in seen if ts < success]) >= reads:
            break
        time.sleep(0.1)
    return seen


def top_zero_and_one(world, g, a, b):
    """TopCgroups 0, then TopCgroups 1 with drop-outs, the last of them
    sharing its name with the group that took the top."""
    a_ports = a.call("connect", port=SERVER_PORT, count=3)["ports"]
    b_ports = b.call("connect", port=SERVER_PORT, count=2)["ports"]
    built_at = time.time()
    collectd = start(world, ["TopCgroups 0"])
    samples = h.wait_for_read_after(collectd, built_at)
    h.check_pool_values(samples, 5, TOTAL, "TopCgroups 0")
    h.check_equal(h.cgroup_values(samples), {}, "TopCgroups 0: series")
    collectd.stop()
    name = {key: h.cgroup_instances({0: g[key]})[0] for key in ("a", "b")}
    collectd = start(world, ["TopCgroups 1"])
    samples = h.wait_for_fresh_read(collectd, built_at)
    h.check_equal(h.cgroup_values(samples).keys(), {(name["a"], "")},
                  "TopCgroups 1: served")
    h.check_equal(latest_read_values(samples), {(name["a"], ""): 3.0},
                  "TopCgroups 1: a alone")

    a.call("close", ports=a_ports[1:])
    changed_at = time.time()
    samples = h.wait_for_read_after(collectd, changed_at)
    h.check_equal(latest_read_values(samples), {(name["b"], ""): 2.0},
                  "TopCgroups 1: b on top after a closed 2")
    check_dropped_once(collectd, samples, changed_at,
                       {(name["a"], ""): 1.0}, "a, dropped out")

    b.call("close", ports=b_ports)
    changed_at = time.time()
    samples = h.wait_for_read_after(collectd, changed_at)
    h.check_equal(latest_read_values(samples), {(name["a"], ""): 1.0},
                  "TopCgroups 1: a back after b closed all")
    check_dropped_once(collectd, samples, changed_at,
                       {(name["b"], ""): 0.0}, "b, gone")

    # x_y (made first) and x/y are both named "<base>_x_y".
    tree = world.tree
    clash = h.cgroup_instances({0: g["x_y"]})[0]
    world.process(g["x_y"]).call("connect", port=SERVER_PORT, count=2)
    changed_at = time.time()
    samples = h.wait_for_read_after(collectd, changed_at)
    h.check_equal(latest_read_values(samples), {(clash, ""): 2.0},
                  "TopCgroups 1: x_y on top")
    check_dropped_once(collectd, samples, changed_at,
                       {(name["a"], ""): 1.0}, "a, dropped out again")
    world.process(g["x/y"]).call("connect", port=SERVER_PORT, count=3)
    changed_at = time.time()
    # The read that sends x_y once more reports both: x/y, of the larger
    # id, must get -<id> in it, or one of the two values is lost.
    suffixed = "%s-%d" % (clash, tree.id_of(g["x/y"]))
    reads = observe_reads(collectd, changed_at, 3)
    dropping = [ts for ts in sorted(reads) if reads[ts].get((clash, "")) == 2.0]
    h.check(dropping, "no read after x/y took the top sent x_y's 2: %r"
            % reads)
    h.check_equal(reads[dropping[-1]], {(clash, ""): 2.0, (suffixed, ""): 3.0},
                  "TopCgroups 1: the read that dropped x_y for x/y")
    check_no_errors(collectd)
    collectd.stop()
    a.call("reset_all")


def top_default(world):
    """Default TopCgroups: 10 of 11 groups, a tie broken by id."""
    tree = world.tree
    # g10's directory is made after g11's: g11 has the smaller id.
    names = ["g%02d" % i for i in range(1, 10)] + ["g11", "g10"]
    g = {name: tree.make("many/" + name) for name in names}
    counts = dict(zip(["g%02d" % i for i in range(1, 10)], range(12, 3, -1)))
    counts.update(g10=2, g11=2)
    h.check(tree.id_of(g["g11"]) < tree.id_of(g["g10"]), "g11's id first")
    mover = world.process(g["g10"])
    for name in sorted(counts):  # g10 makes its sockets before g11
        tree.move(mover.pid, g[name])
        mover.call("connect", port=SERVER_PORT, count=counts[name])
    built_at = time.time()
    usage = kernel_usage(POOL)
    h.check_equal({owner: len(ports) for (owner, _), ports in usage.items()},
                  {g[name]: n for name, n in counts.items()}, "ss --cgroup")
    del usage[(g["g10"], "")]
    collectd = start(world, [])
    samples = h.wait_for_fresh_read(collectd, built_at)
    check_usage(samples, tree, usage, "default TopCgroups",
                used=sum(counts.values()))
    h.check_equal(len(h.cgroup_values(samples)), 10, "series served")
    check_no_errors(collectd)
    collectd.stop()
    mover.call("reset_all")


def top():
    with World() as world:
        world.listeners()
        top_default(world)
        g = {name: world.tree.make(name) for name in ("a", "b", "x_y", "x/y")}
        top_zero_and_one(world, g, world.process(g["a"]),
                         world.process(g["b"]))


if __name__ == "__main__":
    h.run_scenarios_seeing_cgroups(
        {"removed": removed, "top": top},
        port_range=PORT_RANGE, reserved_ports="")
