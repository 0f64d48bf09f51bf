"""Faults, with the real collectd: /proc files that are missing, empty,
truncated, oversized, growing or out of range.

Port range 40000-40019, none reserved (pool of 20).

/proc faults use Source "proc" on a ProcRoot the test writes (the tables of
test_read_failure.py, plus udp/udp6), Protocol "tcp" "udp":

  proc_files: one collectd; for each case the test breaks one file, waits
    for a read that started after, asserts the case's outcome exactly,
    restores the files and asserts the exact values again.  See CASES:
    "exact" cases (a missing tcp6/udp6 = no IPv6; a missing or empty
    reserved list = none reserved; range "1 65535") give exact values, and
    "fail" cases give scrape_success 0 and nothing else, with one ERROR
    naming the reason, then one "recovered".
  tcp_growing: a thread appends copies of one socket line to net/tcp while
    collectd reads it, pausing mid-line, until both outcomes were seen.  The copies change no value, so every
    successful read must show exactly the fixture's values; a read that
    catches a half-written line must fail with "truncated last line" (and
    nothing else); collectd never crashes.  The counts are printed."""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import test_read_failure as rf  # noqa: E402
from faults_scene import PORT_RANGE, check_log, log_lines  # noqa: E402


GROWING_MAX_S = 15


UDP_HEADER = ("   sl  local_address rem_address   st tx_queue rx_queue tr "
              "tm->when retrnsmt   uid  timeout inode ref pointer drops")
UDP_CLOSE = 0x07
UDP4_TABLE = [
    (socket.AF_INET, "0.0.0.0", 5353, "0.0.0.0", 0, UDP_CLOSE),
    (socket.AF_INET, "127.0.0.1", 40002, "0.0.0.0", 0, UDP_CLOSE),
    (socket.AF_INET, "127.0.0.1", 40004, "127.0.0.1", 53, rf.ESTABLISHED),
]
UDP6_TABLE = [
    (socket.AF_INET6, "::1", 40006, "::1", 53, rf.ESTABLISHED),
]
VALID_RANGE = (40000, 40019)


class ProcTree(rf.ProcRoot):
    """test_read_failure's ProcRoot plus net/udp and net/udp6."""

    def __init__(self, tmp):
        self.udp_path = tmp.join("procroot", "net", "udp")
        self.udp6_path = tmp.join("procroot", "net", "udp6")
        super().__init__(tmp)

    def write_valid(self):
        super().write_valid()
        h.write_file_atomically(self.udp_path,
                                rf.proc_tcp_text(UDP4_TABLE, UDP_HEADER))
        h.write_file_atomically(self.udp6_path,
                                rf.proc_tcp_text(UDP6_TABLE, UDP_HEADER))


def tcp4_text():
    return rf.proc_tcp_text(rf.TCP4_TABLE, rf.TCP4_HEADER, rf.TCP4_LINE_WIDTH)


def with_last_tcp4_line(change):
    lines = tcp4_text().splitlines()
    return "\n".join(lines[:-1] + [change(lines[-1])])


class Expect:
    """What a read must show: exact values from tables, or a failure."""

    def __init__(self, tcp=None, udp=None, port_range=VALID_RANGE,
                 reserved=rf.RESERVED_TEXT, reason=None):
        self.tcp = rf.TCP4_TABLE + rf.TCP6_TABLE if tcp is None else tcp
        self.udp = UDP4_TABLE + UDP6_TABLE if udp is None else udp
        self.port_range = port_range
        self.reserved = reserved
        self.reason = reason


def replace(path_of, text):
    return lambda root: h.write_file_atomically(path_of(root), text)


def remove(path_of):
    return lambda root: os.unlink(path_of(root))


def tcp(root):
    return root.tcp_path


def tcp6(root):
    return root.tcp6_path


def udp(root):
    return root.udp_path


def udp6(root):
    return root.udp6_path


def range_file(root):
    return root.range_path


def reserved_file(root):
    return root.reserved_path


MALFORMED_RANGE = "malformed port range"
CASES = [
    ("tcp6 missing (no IPv6)", remove(tcp6), Expect(tcp=rf.TCP4_TABLE)),
    ("udp6 missing (no IPv6)", remove(udp6), Expect(udp=UDP4_TABLE)),
    ("udp missing", remove(udp), Expect(reason="net/udp: cannot open")),
    ("reserved list missing", remove(reserved_file), Expect(reserved="")),
    ("reserved list empty", replace(reserved_file, ""), Expect(reserved="")),
    ("reserved list a newline", replace(reserved_file, "\n"),
     Expect(reserved="")),
    ("tcp empty", replace(tcp, ""),
     Expect(reason="line 0: empty file, no header line")),
    ("tcp6 empty", replace(tcp6, ""),
     Expect(reason="line 0: empty file, no header line")),
    ("tcp header only", replace(tcp, rf.TCP4_HEADER + "\n"),
     Expect(tcp=rf.TCP6_TABLE)),
    ("tcp truncated mid-line", replace(tcp, tcp4_text()[:-60]),
     Expect(reason="line 11: truncated last line")),
    ("tcp line cut short", replace(tcp, with_last_tcp4_line(
        lambda line: line[:60]) + "\n"),
     Expect(reason="line 11: missing fields")),
    ("tcp line over 4 KiB", replace(tcp, with_last_tcp4_line(
        lambda line: line.ljust(5000)) + "\n"),
     Expect(reason="line 11: line longer than 4 KiB")),
    ("range \"60999 32768\" (reversed)", replace(range_file, "60999 32768\n"),
     Expect(reason=MALFORMED_RANGE)),
    ("range \"0 0\"", replace(range_file, "0 0\n"),
     Expect(reason=MALFORMED_RANGE)),
    ("range \"1 65535\"", replace(range_file, "1\t65535\n"),
     Expect(port_range=(1, 65535))),
    ("range \"65536 70000\"", replace(range_file, "65536 70000\n"),
     Expect(reason=MALFORMED_RANGE)),
    ("range empty", replace(range_file, ""), Expect(reason=MALFORMED_RANGE)),
]


def expected_pool_values(table, expect):
    pool = h.pool_of(expect.port_range, expect.reserved)
    used = len({entry[2] for entry in table} & pool)
    return used, len(pool)


def check_proc_values(samples, expect, what):
    used, total = expected_pool_values(expect.tcp, expect)
    h.check_pool_values(samples, used, total, what + ", tcp")
    udp_used, udp_total = expected_pool_values(expect.udp, expect)
    for name, value in (("used", udp_used), ("total", udp_total),
                        ("available", udp_total - udp_used),
                        ("usage_ratio", h.format_ratio(udp_used / udp_total))):
        h.check_equal(h.value_of(samples, "collectd_ephemeral_ports_" + name,
                                 ephemeral_ports="udp"),
                      value, "%s, udp %s" % (what, name))
    by_type = h.open_port_values_by_type(samples)
    for kind, wanted in (("", {entry[2] for entry in expect.tcp
                               if entry[5] == rf.LISTEN}),
                         ("udp", {entry[2] for entry in expect.udp
                                  if entry[4] == 0})):
        open_now = {port for port, value in by_type.get(kind, {}).items()
                    if value == 1}
        h.check_equal(open_now, wanted,
                      "%s, open %s ports" % (what, kind or "tcp"))
    return used, total


def proc_collectd(tmp, root):
    block = h.plugin_block(['Source "proc"', 'ProcRoot "%s"' % root.path,
                            'Protocol "tcp" "udp"'])
    return h.Collectd(tmp, block, extra_config=h.NO_EXPIRY)


def proc_files():
    outcomes = []
    with h.TempDir() as tmp:
        root = ProcTree(tmp)
        with proc_collectd(tmp, root) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, time.time())
            check_proc_values(samples, Expect(), "valid files")
            failures = 0
            for name, inject, expect in CASES:
                fault_at = time.time()
                inject(root)
                samples = h.wait_for_fresh_read(collectd, fault_at)
                if expect.reason is None:
                    used, total = check_proc_values(samples, expect, name)
                    outcome = "exact: used %d of %d" % (used, total)
                else:
                    failures += 1
                    h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 0.0,
                                  "%s: %s" % (name, h.SCRAPE_SUCCESS))
                    # Earlier values stay served until they expire; none
                    # may be newer than the fault.
                    h.check_equal(rf.series_dispatched_after(
                        samples, (fault_at + h.FRESH_READ_MARGIN_S) * 1000.0),
                        [], "%s: series dispatched during the fault" % name)
                    errors = log_lines(collectd, "error")
                    h.check_equal(len(errors), failures,
                                  "%s: ERROR lines so far (%r)"
                                  % (name, errors))
                    h.check(expect.reason in errors[-1],
                            "%s: ERROR %r does not say %r"
                            % (name, errors[-1], expect.reason))
                    outcome = "scrape_success 0: %s" % errors[-1].split(
                        "ephemeral_ports plugin: ")[-1]
                outcomes.append((name, outcome))
                root.write_valid()
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_proc_values(samples, Expect(), name + ", restored")
                check_log(collectd, name + ", restored", errors=failures,
                          recovered=failures)
    for name, outcome in outcomes:
        h.log("%-32s -> %s" % (name, outcome))


def tcp_growing():
    with h.TempDir() as tmp:
        root = ProcTree(tmp)
        copy = rf.proc_tcp_line(99, rf.TCP4_TABLE[4], 20099).ljust(
            rf.TCP4_LINE_WIDTH) + "\n"
        stop = threading.Event()
        appended = [0]

        def append_lines():
            fd = os.open(root.tcp_path, os.O_WRONLY | os.O_APPEND)
            try:
                while not stop.is_set():
                    # Half a line, a pause, then the rest: about a third
                    # of the time the file ends mid-line.
                    os.write(fd, copy[:70].encode())
                    time.sleep(0.001)
                    os.write(fd, copy[70:].encode())
                    appended[0] += 1
                    time.sleep(0.002)
            finally:
                os.close(fd)

        with proc_collectd(tmp, root) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, time.time())
            check_proc_values(samples, Expect(), "before growing")
            writer = threading.Thread(target=append_lines)
            started = time.time()
            writer.start()
            reads = {}
            try:
                # Until both outcomes were seen (or 15 s): a third of the
                # reads fail, so 15 s without a success is as good as
                # impossible, and one without a failure merely unlucky.
                while time.time() - started < GROWING_MAX_S and not (
                        len(reads) >= 3 and 0.0 in reads.values() and
                        1.0 in reads.values()):
                    samples = h.scrape()
                    value, stamp = h.sample(samples, h.SCRAPE_SUCCESS)
                    if stamp is not None and stamp / 1000.0 > started + h.FRESH_READ_MARGIN_S and \
                            stamp not in reads:
                        time.sleep(h.SETTLE_S)
                        samples = h.scrape()
                        if h.sample(samples, h.SCRAPE_SUCCESS)[1] == stamp:
                            reads[stamp] = value
                            if value == 1.0:
                                check_proc_values(samples, Expect(),
                                                  "while growing")
                    time.sleep(0.1)
            finally:
                stop.set()
                writer.join()
            h.check(collectd.process.poll() is None, "collectd died")
            ok = sum(1 for v in reads.values() if v == 1.0)
            failed = sum(1 for v in reads.values() if v == 0.0)
            h.log("growing net/tcp: %d lines appended (%d bytes), %d reads: "
                  "%d exact, %d scrape_success 0"
                  % (appended[0], os.path.getsize(root.tcp_path),
                     len(reads), ok, failed))
            h.check(len(reads) >= 3 and ok >= 1,
                    "reads while growing: %r" % reads)
            for line in log_lines(collectd, "error"):
                h.check("truncated last line" in line,
                        "unexpected ERROR while growing: %r" % line)
            h.check_equal(log_lines(collectd, "warning"), [], "WARNINGs")
            root.write_valid()
            samples = h.wait_for_fresh_read(collectd, time.time())
            check_proc_values(samples, Expect(), "after growing")


if __name__ == "__main__":
    h.run_scenarios({
        "proc_files": proc_files,
        "tcp_growing": tcp_growing,
    }, port_range=PORT_RANGE, reserved_ports="")
