"""The scene of the netlink fault tests (test_faults_*.py): the fault shim
preloaded into collectd, its log of dump requests, the test's clients and
the checks of a read's values and log lines.

What every scenario of those files shares:

Netlink faults come from tests/faults/netlink_fault.so, preloaded into
collectd (after the sanitizer runtime, when EP_COLLECTD_PRELOAD sets one).
Its mode is read from a control file at every call, so a scenario switches
it while collectd runs; it logs each sock_diag dump request and each
injected fault, with a timestamp, to a file.  Port range 40000-40019, none
reserved (pool of 20); the test holds a listener on 127.0.0.1:9000 and
three clients of it (three pool ports).
"""

import os
import time

import harness as h
import test_read_failure as rf


PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
SERVER_PORT = 9000
CLIENTS = 3
NETLINK_OPEN_PORTS = {SERVER_PORT: 1, h.PROMETHEUS_PORT: 1}
# Requests 0.3 s apart belong to different reads (Interval 1 s; a read's
# dumps take microseconds).
READ_GAP_S = 0.3


def shim_path():
    path = os.environ.get("EP_NETLINK_FAULT_SO")
    if not path:
        raise h.TestSkip("EP_NETLINK_FAULT_SO is not set")
    if not os.path.isfile(path):
        h.fail("EP_NETLINK_FAULT_SO=%s does not exist (make check builds it)"
               % path)
    return path


class NetlinkFault:
    def __init__(self, tmp, mode="off"):
        self.control = tmp.join("netlink_fault.control")
        self.log = tmp.join("netlink_fault.log")
        self.set(mode)

    def set(self, mode):
        h.write_file_atomically(self.control, mode + "\n")

    def mode(self):
        return h.read_text(self.control).strip()

    def env(self):
        preload = (os.environ.get("EP_COLLECTD_PRELOAD", "") + " "
                   + shim_path()).strip()
        return {"LD_PRELOAD": preload, "EP_FAULT_CONTROL": self.control,
                "EP_FAULT_LOG": self.log}

    def events(self):
        """[(event, unix time)] in order: "request" or a fault's name."""
        found = []
        for line in h.read_text(self.log).splitlines():
            name, _, stamp = line.partition(" ")
            found.append((name, float(stamp)))
        return found

    def reads(self):
        """The events grouped into reads: [[event names]]."""
        groups = []
        last = None
        for name, stamp in self.events():
            if last is None or stamp - last > READ_GAP_S:
                groups.append([])
            groups[-1].append(name)
            last = stamp
        return groups


def request_count(group):
    return group.count("request")


def interrupted_requests(group):
    """How many of the group's requests got at least one interrupted
    datagram (a fault event before the next request)."""
    count = 0
    for i, name in enumerate(group):
        if name == "request":
            rest = group[i + 1:]
            until = rest.index("request") if "request" in rest else len(rest)
            if any(n.startswith("dump_intr") for n in rest[:until]):
                count += 1
    return count


# --------------------------------------------------------------------------
# Real sockets for the netlink scenarios


class Clients:
    def __init__(self):
        self.sockets = []
        server = h.listener(SERVER_PORT)
        self.sockets.append(server)
        for _ in range(CLIENTS):
            self.sockets.append(h.client(SERVER_PORT))
            self.sockets.append(server.accept()[0])

    def pool_ports(self):
        return {h.local_port(s) for s in self.sockets} & POOL

    def close(self):
        for sock in self.sockets:
            h.close_with_reset(sock)


def check_netlink_values(samples, clients, what):
    held = clients.pool_ports()
    h.check_equal(len(held), CLIENTS, "%s: pool ports the test holds" % what)
    h.check_equal(h.ss_pool_ports(POOL), held,
                  "%s: in-pool ports, ss -tan vs the test" % what)
    h.check_pool_values(samples, len(held), TOTAL, what)
    h.check_equal(h.open_port_values(samples), NETLINK_OPEN_PORTS,
                  "%s: instance_open_ports" % what)


def log_lines(collectd, severity):
    return h.plugin_log_lines(collectd.log_lines(), severity)


def check_log(collectd, what, errors=0, warnings=0, recovered=0):
    for severity, count in (("error", errors), ("warning", warnings)):
        found = log_lines(collectd, severity)
        h.check_equal(len(found), count, "%s: plugin %s lines (%r)"
                      % (what, severity.upper(), found))
    found = rf.recovered_lines(collectd.log_lines())
    h.check_equal(len(found), recovered,
                  "%s: \"recovered\" lines (%r)" % (what, found))


def check_only_scrape_success(samples, what):
    h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 0.0,
                  "%s: %s" % (what, h.SCRAPE_SUCCESS))
    others = [h.format_key(k) for k in h.ephemeral_series(samples)
              if k[0] != h.SCRAPE_SUCCESS]
    h.check_equal(others, [], "%s: series other than %s"
                  % (what, h.SCRAPE_SUCCESS))


def next_read(collectd):
    """The scrape of a read that started at least a second from now."""
    return h.wait_for_fresh_read(collectd, time.time() + 1)


# A fault here lasts two or three reads, so the series refreshed before it
# would expire (collectd's Timeout: 2 intervals) just as it ends, and
# collectd's expiry can then delete from write_prometheus a value that the
# first read after the fault has just dispatched: uc_check_timeout calls the
# "missing" callbacks after releasing the cache lock, without looking again.
# Seen once under load ("udp missing, restored": ports 22 and 8080 absent).
# test_read_failure covers expiry; here nothing expires (h.NO_EXPIRY).


def netlink_collectd(tmp, source, fault):
    block = h.plugin_block(['Source "%s"' % source])
    return h.Collectd(tmp, block, extra_env=fault.env(),
                      extra_config=h.NO_EXPIRY)
