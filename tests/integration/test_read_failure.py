"""Read failures and recovery, with Source "proc" on a fixture ProcRoot.

The test writes a ProcRoot in its temp dir: sys/net/ipv4/ip_local_port_range
("40000 40019"), ip_local_reserved_ports ("40005,40010-40011", pool of 17)
and net/tcp, net/tcp6 in the kernel's format, with a known socket table.

Each scenario: collectd starts on the valid fixture, and a fresh read shows
the exact values computed from the table.  Then a fault is injected (range
file replaced by "abc", range file removed, or net/tcp removed).  The reads
during the fault must dispatch scrape_success 0 and nothing else, keep the
1 s interval (the read callback returns 0, no back-off), and log exactly one
ERROR line.  Then the file is restored: the next read dispatches
scrape_success 1 and the exact values again, and exactly one INFO line says
"recovered".

How "nothing else" is asserted: write_prometheus keeps serving a series
after its last update until collectd's missing-value timeout (Timeout 2 x
Interval) makes it delete the series; StalenessDelta in 5.12 only decides
whether a timestamp is printed, it never drops anything.  So the test
asserts, exactly, that (1) during the fault no plugin series other than
scrape_success is ever stamped later than the fault (nothing new was
dispatched), and (2) within a few intervals all of them are gone from the
scrape (collectd saw them missing, so nothing kept them alive).
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

RANGE_TEXT = "40000\t40019\n"
RESERVED_TEXT = "40005,40010-40011\n"
POOL = h.pool_of((40000, 40019), RESERVED_TEXT)
TOTAL = 17

# Kernel TCP states as /proc/net/tcp prints them.
ESTABLISHED, SYN_SENT, FIN_WAIT2, TIME_WAIT, CLOSE_WAIT, LISTEN = (
    0x01, 0x02, 0x05, 0x06, 0x08, 0x0A)

# (family, local address, local port, remote address, remote port, state)
TCP4_TABLE = [
    (socket.AF_INET, "0.0.0.0", 22, "0.0.0.0", 0, LISTEN),
    (socket.AF_INET, "127.0.0.1", 9000, "0.0.0.0", 0, LISTEN),
    (socket.AF_INET, "127.0.0.1", 40001, "0.0.0.0", 0, LISTEN),
    (socket.AF_INET, "127.0.0.1", 40005, "0.0.0.0", 0, LISTEN),  # reserved
    (socket.AF_INET, "127.0.0.1", 40003, "127.0.0.1", 9000, ESTABLISHED),
    (socket.AF_INET, "127.0.0.1", 9000, "127.0.0.1", 40003, ESTABLISHED),
    (socket.AF_INET, "127.0.0.1", 40007, "127.0.0.1", 9000, TIME_WAIT),
    (socket.AF_INET, "127.0.0.1", 40010, "127.0.0.1", 9000,
     ESTABLISHED),  # reserved
    (socket.AF_INET, "127.0.0.1", 39999, "127.0.0.1", 9000,
     ESTABLISHED),  # below the range
    (socket.AF_INET, "127.0.0.1", 40000, "127.0.0.1", 9000,
     SYN_SENT),  # low edge
]
TCP6_TABLE = [
    (socket.AF_INET6, "::", 40019, "::", 0, LISTEN),  # high edge
    (socket.AF_INET6, "::1", 40003, "::1", 9000,
     ESTABLISHED),  # same port as an IPv4 socket: counted once
    (socket.AF_INET6, "::1", 40012, "::1", 9000, ESTABLISHED),
    (socket.AF_INET6, "::1", 40020, "::1", 9000,
     CLOSE_WAIT),  # above the range
    (socket.AF_INET6, "::ffff:127.0.0.1", 40013, "::ffff:127.0.0.1", 9000,
     FIN_WAIT2),
    (socket.AF_INET6, "::1", 8080, "::", 0, LISTEN),
]

EXPECTED_USED = 7  # 40000 40001 40003 40007 40012 40013 40019
EXPECTED_OPEN = {22: 1, 9000: 1, 40001: 1, 40005: 1, 40019: 1, 8080: 1}

# Interval 1 s: 4 or 5 reads in this window.  A back-off would double the
# interval after each failed read (reads at +2 s, +6 s), leaving at most 2;
# a scrape loop stalled past one read still sees at least 3.
FAULT_OBSERVATION_S = 4.0
EXPIRY_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------
# The fixture ProcRoot

TCP4_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr "
               "tm->when retrnsmt   uid  timeout inode")
TCP6_HEADER = ("  sl  local_address                         remote_address"
               "                        st tx_queue rx_queue tr tm->when "
               "retrnsmt   uid  timeout inode")
TCP4_LINE_WIDTH = 149  # the kernel pads /proc/net/tcp lines to this


def proc_hex_address(family, address):
    """An address as /proc/net/tcp* prints it: 32-bit words in host
    (little-endian) order."""
    packed = socket.inet_pton(family, address)
    return "".join(packed[i:i + 4][::-1].hex().upper()
                   for i in range(0, len(packed), 4))


def proc_tcp_line(slot, entry, inode):
    family, local, lport, remote, rport, state = entry
    endpoints = "%s:%04X %s:%04X %02X" % (
        proc_hex_address(family, local), lport,
        proc_hex_address(family, remote), rport, state)
    if state == TIME_WAIT:  # timewait sockets have a shorter line
        tail = "00000000:00000000 03:00000F9E 00000000     0        0 0 3 " \
               "0000000000000000"
    else:
        tail = ("00000000:00000000 00:00000000 00000000     0        0 %d 1 "
                "0000000000000000 100 0 0 10 0" % inode)
    return "%4d: %s %s" % (slot, endpoints, tail)


def proc_tcp_text(table, header, pad_to=None):
    lines = [header] + [proc_tcp_line(slot, entry, 10000 + slot)
                        for slot, entry in enumerate(table)]
    if pad_to:
        lines = [line.ljust(pad_to) for line in lines]
    return "".join(line + "\n" for line in lines)


class ProcRoot:
    def __init__(self, tmp):
        self.path = tmp.join("procroot")
        self.range_path = os.path.join(self.path, "sys/net/ipv4/"
                                       "ip_local_port_range")
        self.reserved_path = os.path.join(self.path, "sys/net/ipv4/"
                                          "ip_local_reserved_ports")
        self.tcp_path = os.path.join(self.path, "net/tcp")
        self.tcp6_path = os.path.join(self.path, "net/tcp6")
        self.write_valid()

    def write_valid(self):
        h.write_file_atomically(self.range_path, RANGE_TEXT)
        h.write_file_atomically(self.reserved_path, RESERVED_TEXT)
        h.write_file_atomically(self.tcp_path,
                                proc_tcp_text(TCP4_TABLE, TCP4_HEADER,
                                              TCP4_LINE_WIDTH))
        h.write_file_atomically(self.tcp6_path,
                                proc_tcp_text(TCP6_TABLE, TCP6_HEADER))


def expected_used_from_table():
    return {entry[2] for entry in TCP4_TABLE + TCP6_TABLE} & POOL


def expected_open_from_table():
    return {entry[2]: 1 for entry in TCP4_TABLE + TCP6_TABLE
            if entry[5] == LISTEN}


# --------------------------------------------------------------------------
# Checks


def check_fixture_values(samples, what):
    h.check_equal(len(expected_used_from_table()), EXPECTED_USED,
                  "used computed from the fixture table")
    h.check_equal(expected_open_from_table(), EXPECTED_OPEN,
                  "open ports computed from the fixture table")
    h.check_pool_values(samples, EXPECTED_USED, TOTAL, what)
    h.check_equal(h.open_port_values(samples), EXPECTED_OPEN,
                  "%s: instance_open_ports" % what)


def recovered_lines(lines):
    return [line for line in lines
            if "ephemeral_ports plugin:" in line and "recovered" in line]


def check_log_counts(collectd, errors, recovered, what):
    lines = collectd.log_lines()
    h.check_equal(len(h.plugin_log_lines(lines, "error")), errors,
                  "%s: number of plugin ERROR lines (%r)"
                  % (what, h.plugin_log_lines(lines, "error")))
    found = recovered_lines(lines)
    h.check_equal(len(found), recovered,
                  "%s: number of \"recovered\" lines (%r)" % (what, found))
    for line in found:
        h.check("[info]" in line, "recovery not logged at INFO: %r" % line)


def wait_for_failed_read(collectd, since):
    samples = h.wait_for_fresh_read(collectd, since)
    h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 0.0,
                  "%s during the fault" % h.SCRAPE_SUCCESS)
    return samples


def series_dispatched_after(samples, after_ms):
    """Plugin series (other than scrape_success) stamped after after_ms."""
    return sorted(h.format_key(key) for key in h.ephemeral_series(samples)
                  if key[0] != h.SCRAPE_SUCCESS and
                  (samples[key][1] is None or samples[key][1] > after_ms))


def observe_fault(collectd, fault_at):
    """Scrapes through FAULT_OBSERVATION_S of the fault: every read
    dispatches scrape_success 0 and nothing else, at the normal interval."""
    # A read stamped this late started after the fault was injected.
    fault_ms = (fault_at + h.FRESH_READ_MARGIN_S) * 1000.0
    read_times = set()
    deadline = time.monotonic() + FAULT_OBSERVATION_S
    while time.monotonic() < deadline:
        samples = h.scrape()
        value, timestamp_ms = h.sample(samples, h.SCRAPE_SUCCESS) or (None, 0)
        if timestamp_ms > fault_ms:
            h.check_equal(value, 0.0, "%s during the fault" % h.SCRAPE_SUCCESS)
            read_times.add(timestamp_ms)
        h.check_equal(series_dispatched_after(samples, fault_ms), [],
                      "series dispatched during the fault")
        time.sleep(0.2)
    h.check(len(read_times) >= 3,
            "reads during the fault not at the 1 s interval (back-off?): "
            "scrape_success timestamps %r" % sorted(read_times))


def wait_until_values_expire(collectd):
    """Nothing refreshes the plugin's value series during the fault, so
    collectd's missing-value timeout removes them from write_prometheus."""
    deadline = time.monotonic() + EXPIRY_TIMEOUT_S
    while True:
        samples = h.scrape()
        remaining = [h.format_key(k) for k in h.ephemeral_series(samples)
                     if k[0] != h.SCRAPE_SUCCESS]
        if not remaining:
            h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 0.0,
                          h.SCRAPE_SUCCESS)
            return
        if time.monotonic() > deadline:
            h.fail("series still served %.0f s into the fault, so something "
                   "kept dispatching them: %s" % (EXPIRY_TIMEOUT_S,
                                                  remaining))
        time.sleep(0.25)


# --------------------------------------------------------------------------
# Scenarios


def replace_range_with_garbage(proc_root):
    h.write_file_atomically(proc_root.range_path, "abc\n")


def remove_range_file(proc_root):
    os.unlink(proc_root.range_path)


def remove_tcp_table(proc_root):
    os.unlink(proc_root.tcp_path)


def failure_scenario(inject_fault):
    def scenario():
        with h.TempDir() as tmp:
            proc_root = ProcRoot(tmp)
            block = h.plugin_block(['Source "proc"',
                                    'ProcRoot "%s"' % proc_root.path])
            with h.Collectd(tmp, block) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_fixture_values(samples, "before the fault")
                check_log_counts(collectd, 0, 0, "before the fault")

                fault_at = time.time()
                inject_fault(proc_root)
                wait_for_failed_read(collectd, fault_at)
                observe_fault(collectd, fault_at)
                wait_until_values_expire(collectd)
                check_log_counts(collectd, 1, 0, "during the fault")

                proc_root.write_valid()
                repaired_at = time.time()
                samples = h.wait_for_fresh_read(collectd, repaired_at)
                check_fixture_values(samples, "after recovery")
                samples = h.wait_for_fresh_read(collectd, time.time() + 1)
                check_fixture_values(samples, "after recovery, later read")
                check_log_counts(collectd, 1, 1, "after recovery")
    return scenario


if __name__ == "__main__":
    h.run_scenarios({
        "range_garbage": failure_scenario(replace_range_with_garbage),
        "range_missing": failure_scenario(remove_range_file),
        "tcp_missing": failure_scenario(remove_tcp_table),
    }, port_range=(40000, 40019), reserved_ports="")
