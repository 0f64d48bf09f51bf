"""The plugin under valgrind's memcheck for 200+ reads of a moving table.

collectd runs under `valgrind --leak-check=full --xml=yes` at Interval 0.1
with every series on (TCP and UDP, open ports with a WatchPort and an
IgnorePort, TopDestinations, ReportStates) while a churn thread opens and
closes connections, listeners and UDP sockets and changes the port range
every 2 s.  Once the csv plugin has recorded at least 200 reads (each read
dispatches scrape_success once, all 1), the test stops collectd with
SIGTERM, so collectd runs its shutdown and the plugin's shutdown callback,
and valgrind does its leak check at exit.

From valgrind's XML the test fails on:
- any error (invalid read or write, uninitialised value, bad free, ...)
  with a frame of ours in any of its stacks (the access and, with
  --track-origins, where the value came from), and
- any definitely, indirectly or possibly lost block whose allocation stack
  has a frame of ours, and
- any block still reachable at exit that was allocated on the plugin's
  behalf (its shutdown callback frees what it allocated; blocks collectd
  allocates while the plugin registers itself are collectd's).
"Ours" is exactly: the frame's <obj> is the ephemeral_ports.so collectd
loaded (the core is linked into it).  --keep-debuginfo=yes keeps frames
attributable even if the object were unloaded before the leak check.
Findings without a frame of ours (collectd's, libc's, the stock plugins')
are listed, not failed on.  valgrind's exit status must agree with its XML.

Runs three times: Source "netlink", Source "proc", and "namespaces":
netlink with AllNetNamespaces and ReportNat on while a second thread makes
and removes a network namespace (with a listener and a client in it) about
every 0.4 s, so that targets are born, read and freed hundreds of times;
the csv files must show that namespaces were read, and every NAT
scrape_success of collectd's own namespace is 1.
"""

import collections
import os
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
import long_runs as lr  # noqa: E402

RANGE_EVERY_S = 2.0
INTERVAL_S = 0.1
MIN_READS = 200
READS_TIMEOUT_S = 150
SHUTDOWN_TIMEOUT_S = 90
SCENARIO_TIMEOUT_S = 360
VALGRIND_ERROR_EXIT = 99
PLUGIN_OBJECT = "ephemeral_ports.so"
# valgrind's default --errors-for-leak-kinds: what counts for the exit code.
EXIT_CODE_LEAK_KINDS = ("Leak_DefinitelyLost", "Leak_PossiblyLost")


def valgrind_command(xml_path):
    return ["valgrind", "--tool=memcheck",
            "--error-exitcode=%d" % VALGRIND_ERROR_EXIT,
            "--leak-check=full", "--show-leak-kinds=all",
            "--track-origins=yes", "--keep-debuginfo=yes",
            "--num-callers=40", "--xml=yes", "--xml-file=%s" % xml_path]


def plugin_options(source):
    return ['Source "%s"' % source, 'Protocol "tcp" "udp"', "WatchPort 22",
            "IgnorePort 40020", "TopDestinations 3", "ReportStates true"]


NAMESPACE_OPTIONS = ["AllNetNamespaces true", "ReportNat true"]


class NamespaceChurn:
    """Makes and removes one namespace after another, each with a listener
    and a client on loopback inside, until stopped."""

    def __init__(self):
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.made = 0

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stopping.is_set():
            name = h.shared_namespace_name("mc%d" % (self.made % 4))
            path = h.create_shared_namespace(name, (41000, 41009))
            try:
                with h.in_network_namespace(path):
                    server = h.listener(9000)
                    client = h.client(9000)
                self.made += 1
                self.stopping.wait(0.4)
                client.close()
                server.close()
            finally:
                h.delete_shared_namespace(name)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)


def namespace_hosts(tmp):
    prefix = h.HOSTNAME + ":"
    return [d for d in os.listdir(tmp.join("csv")) if d.startswith(prefix)]


# --------------------------------------------------------------------------
# valgrind's XML

Finding = collections.namedtuple("Finding", "kind what frames")


def frame_text(frame):
    def field(name):
        node = frame.find(name)
        return node.text if node is not None else None
    where = field("file")
    if where is not None:
        where = "%s:%s" % (where, field("line"))
    return "%s (%s)" % (field("fn") or field("ip"),
                        where or field("obj") or "?")


def parse_valgrind_xml(path):
    """[Finding] of every <error>: kind, what, and every frame of every
    stack as (obj, text)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, FileNotFoundError) as error:
        h.fail("valgrind XML %s unreadable: %s" % (path, error))
    states = [node.text for node in root.iter("state")]
    h.check("FINISHED" in states,
            "valgrind did not finish its run (states %r)" % states)
    findings = []
    for error in root.findall("error"):
        kind = error.findtext("kind")
        what = error.findtext("what") or error.findtext("xwhat/text") or ""
        frames = []
        auxwhat = iter(node.text for node in error.findall("auxwhat"))
        for number, stack in enumerate(error.findall("stack")):
            if number > 0:  # e.g. where an uninitialised value came from
                frames.append(("", "-- %s" % next(auxwhat, "")))
            frames.extend((frame.findtext("obj") or "", frame_text(frame))
                          for frame in stack.iter("frame"))
        findings.append(Finding(kind, what, frames))
    return findings


def is_ours(obj, plugin_path):
    return os.path.realpath(obj) == os.path.realpath(plugin_path) if obj \
        else False


def has_our_frame(finding, plugin_path):
    return any(is_ours(obj, plugin_path) for obj, _ in finding.frames)


def allocated_by_us(finding, plugin_path):
    """Whether a block was allocated on the plugin's behalf: walking its
    allocation stack outwards from valgrind's allocator, a frame of ours
    comes before any frame of collectd's binary (libraries in between, such
    as libc's strdup or libmnl, allocate for whoever called them)."""
    collectd = os.path.realpath(h.collectd_bin())
    for obj, _ in finding.frames:
        if "/vgpreload_" in obj:
            continue
        if is_ours(obj, plugin_path):
            return True
        if obj and os.path.realpath(obj) == collectd:
            return False
    return False


def is_failure(finding, plugin_path):
    """Any error with a frame of ours; a lost block with a frame of ours
    in its allocation stack; a block still reachable at exit that the
    plugin allocated (its shutdown callback should have freed it)."""
    if finding.kind == "Leak_StillReachable":
        return allocated_by_us(finding, plugin_path)
    return has_our_frame(finding, plugin_path)


def describe(finding, plugin_path, frames=6):
    lines = ["  %s: %s" % (finding.kind, finding.what)]
    for obj, text in finding.frames[:frames]:
        lines.append("    %s %s" % ("OURS" if is_ours(obj, plugin_path)
                                    else "    ", text))
    return "\n".join(lines)


def judge_findings(findings, plugin_path, exit_status):
    """Lists every finding; fails on ours; checks the exit status."""
    ours, theirs = [], []
    for finding in findings:
        (ours if has_our_frame(finding, plugin_path) else theirs).append(
            finding)
    h.log("valgrind: %d findings, %d with a frame of %s"
          % (len(findings), len(ours), PLUGIN_OBJECT))
    for finding in theirs:
        if finding.kind == "Leak_StillReachable":
            h.log("not ours: %s, from %s" % (finding.what, " <- ".join(
                text for _, text in finding.frames[1:4])))
        else:
            h.log("not ours:\n" + describe(finding, plugin_path))
    failing = [f for f in ours if is_failure(f, plugin_path)]
    for finding in ours:
        h.log("OURS%s:\n%s" % (
            "" if finding in failing else " (allocated by collectd)",
            describe(finding, plugin_path, frames=12)))
    counted = [f for f in findings if not f.kind.startswith("Leak_") or
               f.kind in EXIT_CODE_LEAK_KINDS]
    h.check_equal(exit_status, VALGRIND_ERROR_EXIT if counted else 0,
                  "valgrind's exit status (%d findings that count for it)"
                  % len(counted))
    h.check(not failing, "%d valgrind findings in %s:\n%s"
            % (len(failing), PLUGIN_OBJECT,
               "\n".join(describe(f, plugin_path, 12) for f in failing)))


# --------------------------------------------------------------------------
# The run


def check_reads(tmp):
    reads = lr.read_series(tmp, "ephemeral_port_exporter")
    h.check(len(reads) >= MIN_READS,
            "only %d reads recorded, wanted %d" % (len(reads), MIN_READS))
    failed = [stamp for stamp, values in reads if values != [1.0]]
    h.check(not failed, "scrape_success not 1 at %d reads, first %r"
            % (len(failed), failed[:5]))
    return reads


def stop_with_sigterm(collectd):
    """SIGTERM, and the exit status once valgrind has done its leak check."""
    started = time.monotonic()
    collectd.process.terminate()
    try:
        status = collectd.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        h.fail("collectd under valgrind did not exit within %d s of SIGTERM"
               % SHUTDOWN_TIMEOUT_S)
    h.log("collectd exited %d, %.1f s after SIGTERM"
          % (status, time.monotonic() - started))
    return status


def memcheck_scenario(source, namespaces=False):
    def scenario():
        if shutil.which("valgrind") is None:
            raise h.TestSkip("valgrind is not installed")
        with h.TempDir() as tmp:
            xml_path = tmp.join("valgrind.xml")
            options = plugin_options(source)
            if namespaces:
                options += NAMESPACE_OPTIONS
            collectd = h.Collectd(
                tmp, h.plugin_block(options),
                interval=INTERVAL_S, extra_plugins=("csv",),
                extra_config=lr.csv_config(tmp),
                command_prefix=valgrind_command(xml_path))
            plugin_path = os.path.join(collectd.plugin_dir, PLUGIN_OBJECT)
            with collectd:
                collectd.start_and_wait_ready(timeout=90)
                churn = lr.Churn(lr.CHURN_RANGES, RANGE_EVERY_S).start()
                netns_churn = NamespaceChurn().start() if namespaces else None
                started = time.monotonic()
                try:
                    lr.wait_for_reads(collectd, tmp, MIN_READS + 10,
                                      READS_TIMEOUT_S)
                finally:
                    churn.stop()
                    if netns_churn is not None:
                        netns_churn.stop()
                run_s = time.monotonic() - started
                status = stop_with_sigterm(collectd)
                h.check_equal(
                    h.plugin_log_lines(collectd.log_lines(), "error"), [],
                    "plugin ERROR lines")
            reads = check_reads(tmp)
            if namespaces:
                hosts = namespace_hosts(tmp)
                h.log("namespaces made: %d; read under %d hosts"
                      % (netns_churn.made, len(hosts)))
                h.check(netns_churn.made >= 20 and len(hosts) >= 4,
                        "namespaces made %d, hosts in csv %r"
                        % (netns_churn.made, hosts))
                nat = lr.read_series(tmp, "ephemeral_port_exporter", "nat")
                h.check(len(nat) >= MIN_READS and
                        all(values == [1.0] for _, values in nat),
                        "NAT scrape_success: %d reads, not all 1" % len(nat))
            h.log("Source %s: %d reads in %.1f s under memcheck; churn: %s"
                  % (source, len(reads), run_s, churn.summary()))
            h.check(churn.counts["range changes"] >= 3,
                    "only %d range changes" % churn.counts["range changes"])
            judge_findings(parse_valgrind_xml(xml_path), plugin_path, status)
    return scenario


if __name__ == "__main__":
    h.run_scenarios({"netlink": memcheck_scenario("netlink"),
                     "proc": memcheck_scenario("proc"),
                     "namespaces": memcheck_scenario("netlink", True)},
                    port_range=lr.CHURN_RANGES[0],
                    reserved_ports=lr.RESERVED_PORTS,
                    timeout=SCENARIO_TIMEOUT_S)
