"""Least privilege: collectd runs as nobody:nogroup, with no capabilities.

Inside the namespace, collectd is started through `setpriv --reuid nobody
--regid nogroup --clear-groups` (its temp dir is handed to nobody; the
copied plugins are world-readable).  The test checks in /proc/<pid>/status
that all of collectd's uids and gids are 65534 and its effective and
permitted capability sets are empty.  sock_diag dumps need no privilege,
so with Source "auto" the plugin stays on netlink: no WARNING, no ERROR,
and no INFO about a bound-only blind spot (the plugin tells from the
kernel's release whether bound-only sockets are dumped).

Sockets (port range 40000-40019, none reserved: a pool of 20): a listener
on 127.0.0.1:9000 with three clients, and a TCP socket bound to 40009 that
neither listens nor connects.  After a fresh read: used == 4 (ss -tan
shows the three client ports; the bound-only one it cannot show, and
neither can /proc/net/tcp, so 4 also proves the values came from netlink),
instance_open_ports exactly {9000, 9103}, scrape_success 1, and the
per-cgroup series exactly unknown 4: `ip netns exec` hides the cgroup2
mount, so no owner can be named (collectd logs one INFO saying so).

Scenario "unprivileged_all_namespaces": the same, with AllNetNamespaces
true and another namespace (`ip netns add`, made by the test) on the host.
collectd's own namespace reads exactly as above, with exactly today's
series; other namespaces get no value but scrape_success 0; and after 4
reads the plugin has logged exactly one ERROR, the one that says entering
another namespace needs CAP_SYS_ADMIN.
"""

import os
import grp
import pwd
import shutil
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
SERVER_PORT = 9000
BOUND_ONLY_PORT = 40009
CLIENTS = 3
USER, GROUP = "nobody", "nogroup"
CAP_MESSAGE = ("ephemeral_ports plugin: other network namespaces cannot be "
               "measured: entering one needs CAP_SYS_ADMIN (")

def drop_privileges_prefix():
    if shutil.which("setpriv") is None:
        raise h.TestSkip("setpriv (util-linux) not installed")
    try:
        uid = pwd.getpwnam(USER).pw_uid
        gid = grp.getgrnam(GROUP).gr_gid
    except KeyError as error:
        raise h.TestSkip("no user/group %s:%s: %s" % (USER, GROUP, error))
    prefix = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
              "--clear-groups", "--inh-caps=-all"]
    return prefix, uid, gid


def hand_over(path, uid, gid):
    for directory, _, files in os.walk(path):
        os.chown(directory, uid, gid)
        for name in files:
            os.chown(os.path.join(directory, name), uid, gid)


def status_fields(pid):
    fields = {}
    for line in h.read_text("/proc/%d/status" % pid).splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def check_unprivileged(pid, uid, gid):
    fields = status_fields(pid)
    h.check_equal(fields.get("Uid"), [str(uid)] * 4, "collectd's uids")
    h.check_equal(fields.get("Gid"), [str(gid)] * 4, "collectd's gids")
    h.check_equal(fields.get("Groups"), [], "collectd's groups")
    for key in ("CapEff", "CapPrm"):
        h.check_equal(int(fields[key][0], 16), 0, "collectd's %s" % key)


def own_sockets():
    """The socket mix; returns (sockets, the bound-only one)."""
    sockets = []
    try:
        # Bound first, so that no client can have taken its port.
        bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets.append(bound)
        bound.bind(("127.0.0.1", BOUND_ONLY_PORT))
        server = h.listener(SERVER_PORT)
        sockets.append(server)
        for _ in range(CLIENTS):
            sockets.append(h.client(SERVER_PORT))
            sockets.append(server.accept()[0])
    except BaseException:
        close_all(sockets)
        raise
    return sockets, bound


def close_all(sockets):
    for sock in sockets:
        h.close_with_reset(sock)


def check_own_reading(samples, sockets, bound, what):
    client_ports = {h.local_port(s) for s in sockets if s is not bound} & POOL
    h.check_equal(len(client_ports), CLIENTS, "client pool ports")
    h.check_equal(h.ss_pool_ports(POOL), client_ports,
                  "in-pool ports in ss -tan")
    h.check_pool_values(samples, CLIENTS + 1, TOTAL, what)
    h.check_equal(h.open_port_values(samples),
                  {SERVER_PORT: 1, h.PROMETHEUS_PORT: 1},
                  "instance_open_ports " + what)
    # `ip netns exec` hides the cgroup2 mount (check_no_cgroup2_info): no
    # owner can be named, every pool port counts under "unknown".
    h.check_equal({key: value for key, (value, _)
                   in h.cgroup_values(samples).items()},
                  {("unknown", ""): float(CLIENTS + 1)},
                  "%s %s" % (h.CGROUP_USED, what))


def unprivileged_auto():
    prefix, uid, gid = drop_privileges_prefix()
    with h.TempDir() as tmp:
        block = h.plugin_block(['Source "auto"'])
        sockets, bound = own_sockets()
        try:
            with h.Collectd(tmp, block, command_prefix=prefix) as collectd:
                hand_over(tmp.path, uid, gid)
                collectd.start_and_wait_ready()
                check_unprivileged(collectd.process.pid, uid, gid)
                samples = h.wait_for_fresh_read(collectd, time.time())
                h.check_no_cgroup2_info(collectd)
                check_own_reading(samples, sockets, bound, "as nobody")
                lines = collectd.log_lines()
                for severity in ("error", "warning"):
                    h.check_equal(h.plugin_log_lines(lines, severity), [],
                                  "plugin %s lines" % severity.upper())
                blind = [line for line in lines
                         if "hold ports that are not counted" in line]
                h.check_equal(blind, [], "bound-only blind-spot INFO lines")
                h.log("collectd ran as %s:%s, status %r" % (
                    USER, GROUP, {k: v for k, v in
                                  status_fields(collectd.process.pid).items()
                                  if k in ("Uid", "Gid", "CapEff")}))
        finally:
            close_all(sockets)


def own_series_keys():
    """Every series today's plugin serves for this socket mix."""
    def key(name, **labels):
        labels["instance"] = h.HOSTNAME
        return (name, tuple(sorted(labels.items())))
    destination = {"ephemeral_ports_destination": "127.0.0.1:%d"
                   % SERVER_PORT, "type": "127.0.0.1"}
    return ({key(name) for name in h.POOL_METRICS + (h.SCRAPE_SUCCESS,)
             + h.READ_COST}
            | {key(h.OPEN_PORTS, instance_open=str(port))
               for port in (SERVER_PORT, h.PROMETHEUS_PORT)}
            | {key(name, **destination)
               for name in (h.DESTINATION_USED, h.DESTINATION_RATIO,
                            h.DESTINATION_TIME_WAIT)}
            | {key(h.CGROUP_USED, ephemeral_ports_cgroup="unknown")})


def unprivileged_all_namespaces():
    prefix, uid, gid = drop_privileges_prefix()
    other = h.shared_namespace_name("unpriv")
    with h.TempDir() as tmp:
        block = h.plugin_block(['Source "auto"', "AllNetNamespaces true"])
        sockets, bound = own_sockets()
        try:
            h.create_shared_namespace(other, (41000, 41009))
            with h.Collectd(tmp, block, command_prefix=prefix) as collectd:
                hand_over(tmp.path, uid, gid)
                collectd.start_and_wait_ready()
                check_unprivileged(collectd.process.pid, uid, gid)
                samples = h.wait_for_fresh_read(collectd, time.time())
                own = h.host_view(samples, h.HOSTNAME)
                h.check_no_cgroup2_info(collectd)
                check_own_reading(own, sockets, bound, "as nobody")
                # Three reads more: still one ERROR.
                samples = h.wait_for_fresh_read(collectd, time.time() + 2)
                own = h.host_view(samples, h.HOSTNAME)
                check_own_reading(own, sockets, bound, "as nobody, later")
                h.check_equal(sorted(h.ephemeral_series(own)),
                              sorted(own_series_keys()),
                              "collectd's own series")
                others = sorted(
                    "%s=%r" % (h.format_key(key), samples[key][0])
                    for key in h.ephemeral_series(samples)
                    if dict(key[1]).get("instance") != h.HOSTNAME and
                    (key[0] != h.SCRAPE_SUCCESS or samples[key][0] != 0))
                h.check_equal(others, [], "values of other namespaces")
                errors = h.plugin_log_lines(collectd.log_lines(), "error")
                h.check_equal(len(errors), 1, "plugin ERROR lines: %r"
                              % errors)
                h.check(CAP_MESSAGE in errors[0],
                        "the ERROR line does not say %r: %r"
                        % (CAP_MESSAGE, errors[0]))
                h.log("as nobody: %s; other hosts served (scrape_success 0):"
                      " %d" % (errors[0].strip(),
                               len(h.hosts_served(samples) - {h.HOSTNAME})))
        finally:
            close_all(sockets)
            h.delete_shared_namespace(other)


if __name__ == "__main__":
    try:
        h.run_scenarios({"unprivileged_auto": unprivileged_auto,
                         "unprivileged_all_namespaces":
                             unprivileged_all_namespaces},
                        port_range=PORT_RANGE, reserved_ports="")
    finally:
        h.delete_shared_namespaces()
