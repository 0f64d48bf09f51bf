"""Faults, with the real collectd: the sock_diag socket unavailable, and
no pool port ever bound by the plugin.

What every scenario here shares is in faults_scene.py's docstring.

  netlink_socket_auto, netlink_bind_auto: socket() / bind() of the
    sock_diag socket fails (EACCES) and Source is "auto": collectd reads
    /proc instead, with exactly one WARNING, no ERROR, exact values, and
    never sends a dump request.
  netlink_socket_netlink, netlink_bind_netlink: the same with Source
    "netlink": every read dispatches scrape_success 0 and nothing else,
    one ERROR; when the fault ends, the next read has the exact values and
    one INFO "recovered".
  nat_socket: ReportNat true with socket() of the ctnetlink socket failing
    (EACCES): the NAT part's scrape_success 0 and no conntrack counter, one
    ERROR naming NAT and why, no ctnetlink request; the socket tables'
    values exact and their scrape_success 1.  When the fault ends, one INFO
    "NAT: reading recovered", and the part reads again (scrape_success 1,
    insert_failed and drop).
  binds_no_port: with the last pool port the only free one, collectd runs
    three reads with netlink working; the shim's log of every AF_INET/6
    bind() in collectd shows write_prometheus's 9103 and nothing else (the
    plugin finds out whether the kernel dumps bound-only sockets from its
    release, not by binding a test socket), and the last port is still
    free for the test's connect()."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import test_read_failure as rf  # noqa: E402
from faults_scene import (  # noqa: E402
    Clients, NetlinkFault, POOL, PORT_RANGE, SERVER_PORT, TOTAL, check_log,
    check_netlink_values, check_only_scrape_success, log_lines,
    netlink_collectd, next_read)


def netlink_unavailable_auto(mode):
    def scenario():
        with h.TempDir() as tmp:
            fault = NetlinkFault(tmp, mode)
            clients = Clients()
            try:
                with netlink_collectd(tmp, "auto", fault) as collectd:
                    collectd.start_and_wait_ready()
                    samples = h.wait_for_fresh_read(collectd, time.time())
                    check_netlink_values(samples, clients, "first read")
                    samples = next_read(collectd)
                    check_netlink_values(samples, clients, "later read")
                    check_log(collectd, "Source auto", warnings=1)
                    warning = log_lines(collectd, "warning")[0]
                    h.check("sock_diag: %s: Permission denied" % mode
                            in warning and "reading" in warning,
                            "WARNING does not say why and what instead: %r"
                            % warning)
                    names = [name for name, _ in fault.events()]
                    h.check(mode in names and "request" not in names,
                            "shim events: %r" % names)
                    h.log("%s, Source auto: %r" % (mode, warning))
            finally:
                clients.close()
    return scenario


def netlink_unavailable_netlink(mode):
    def scenario():
        with h.TempDir() as tmp:
            fault = NetlinkFault(tmp, mode)
            clients = Clients()
            try:
                with netlink_collectd(tmp, "netlink", fault) as collectd:
                    collectd.start_and_wait_ready()
                    samples = h.wait_for_fresh_read(collectd, time.time())
                    check_only_scrape_success(samples, "first read")
                    samples = next_read(collectd)
                    check_only_scrape_success(samples, "later read")
                    check_log(collectd, "during the fault", errors=1)
                    error = log_lines(collectd, "error")[0]
                    h.check("sock_diag: %s: Permission denied" % mode
                            in error, "ERROR does not say why: %r" % error)
                    h.log("%s, Source netlink: %r" % (mode, error))

                    fault.set("off")
                    samples = h.wait_for_fresh_read(collectd, time.time())
                    check_netlink_values(samples, clients, "after the fault")
                    check_log(collectd, "after the fault", errors=1,
                              recovered=1)
            finally:
                clients.close()
    return scenario


def nat_part_values(samples):
    return {field: value
            for field, (value, _) in h.nat_part_samples(samples).items()}


def nat_socket():
    with h.TempDir() as tmp:
        fault = NetlinkFault(tmp, "ct_socket")
        clients = Clients()
        try:
            block = h.plugin_block(["ReportNat true"])
            with h.Collectd(tmp, block, extra_env=fault.env(),
                            extra_config=h.NO_EXPIRY) as collectd:
                collectd.start_and_wait_ready()
                h.wait_for_fresh_read(collectd, time.time())
                samples = next_read(collectd)
                check_netlink_values(samples, clients, "during the NAT fault")
                h.check_equal(nat_part_values(samples),
                              {"scrape_success": 0.0},
                              "NAT part during the fault")
                check_log(collectd, "during the NAT fault", errors=1)
                error = log_lines(collectd, "error")[0]
                h.check("NAT: " in error and "Permission denied" in error,
                        "ERROR does not say what and why: %r" % error)
                names = [name for name, _ in fault.events()]
                h.check("ct_socket" in names and "ct_dump" not in names
                        and "ct_stats" not in names,
                        "shim events during the NAT fault: %r" % names)
                fault.set("off")
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "after the NAT fault")
                part = nat_part_values(samples)
                h.check_equal((sorted(part), part["scrape_success"]),
                              (["drop", "insert_failed", "scrape_success"],
                               1.0), "NAT part after the fault")
                check_log(collectd, "after the NAT fault", errors=1,
                          recovered=1)
                info = rf.recovered_lines(collectd.log_lines())[0]
                h.check("NAT: reading recovered" in info,
                        "the recovery INFO is not the NAT part's: %r" % info)
                h.log("nat_socket: %r, then %r" % (error.strip(),
                                                   info.strip()))
        finally:
            clients.close()


def binds_no_port():
    with h.TempDir() as tmp:
        fault = NetlinkFault(tmp, "off")
        bind_log = tmp.join("binds.log")
        held = []
        try:
            free_port = max(POOL)
            for port in sorted(POOL - {free_port}):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            block = h.plugin_block([])
            env = dict(fault.env(), EP_BIND_LOG=bind_log)
            with h.Collectd(tmp, block, extra_env=env,
                            extra_config=h.NO_EXPIRY) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_fresh_read(collectd, time.time())
                h.check_pool_values(samples, TOTAL - 1, TOTAL,
                                    "one pool port free")
                for _ in range(2):
                    next_read(collectd)
                h.check_equal(h.read_text(bind_log).split(),
                              [str(h.PROMETHEUS_PORT)],
                              "ports collectd bound (AF_INET/AF_INET6)")
                listening = h.listener(SERVER_PORT)
                held.append(listening)
                client = h.client(SERVER_PORT)
                held.append(client)
                h.check_equal(h.local_port(client), free_port,
                              "the port connect() got")
                check_log(collectd, "binds_no_port")
        finally:
            for sock in held:
                sock.close()


if __name__ == "__main__":
    h.run_scenarios({
        "netlink_socket_auto": netlink_unavailable_auto("socket"),
        "netlink_bind_auto": netlink_unavailable_auto("bind"),
        "netlink_socket_netlink": netlink_unavailable_netlink("socket"),
        "netlink_bind_netlink": netlink_unavailable_netlink("bind"),
        "nat_socket": nat_socket,
        "binds_no_port": binds_no_port,
    }, port_range=PORT_RANGE, reserved_ports="")
