"""Shared machinery for the ephemeral_ports integration tests.

A test script calls run_scenarios() with its scenarios.  Each scenario runs in
a network namespace of its own: the script (outside, as root) creates the
namespace, sets the port sysctls in it, and re-executes itself inside it with
`ip netns exec NS /usr/bin/python3 <script> <scenario>`.  Inside, the scenario
function makes its sockets, starts collectd (which inherits the namespace),
scrapes write_prometheus over 127.0.0.1 and compares with `ss`.  Outside, the
namespace is deleted and anything left running in it is killed, whatever
happened inside.

Environment (set by the automake test harness):
  EP_PLUGIN_SO               the built ephemeral_ports.so
  COLLECTD_BIN               collectd (default /usr/sbin/collectd)
  COLLECTD_STOCK_PLUGIN_DIR  where write_prometheus.so and logfile.so live
  FIXTURES_DIR               tests/fixtures (unused: tests that need a
                             ProcRoot write one in their temp dir)
  EP_KEEP_TMP=1              keep the temp dirs (for debugging)
  EP_COLLECTD_PRELOAD        LD_PRELOAD for collectd (a sanitizer runtime
                             when the plugin is built with sanitizers)
"""

import contextlib
import ctypes
import errno
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_SKIP = 77

PYTHON = "/usr/bin/python3"
INSIDE_NS_FLAG = "EP_TEST_INSIDE_NETNS"
NETNS_NAME_VAR = "EP_TEST_NETNS"

HOSTNAME = "eptest"
PROMETHEUS_PORT = 9103
# Scrape clients bind to fixed ports here, outside every test's port range,
# rotating so that no (client, server) tuple is reused quickly.
SCRAPE_CLIENT_PORTS = range(31000, 32000)

# A read counts as "fresh" when its scrape_success timestamp is at least this
# much later than the moment the test finished changing the sockets.  A read
# scans in microseconds, so a read stamped this late started after the change.
FRESH_READ_MARGIN_S = 0.25
# After a fresh scrape_success, wait this long and scrape again.  The plugin
# dispatches scrape_success last, so the read's other values were queued
# before it, and with one write thread (collectd_base_config) they reached
# write_prometheus before it too; the pause lets a scrape that caught the
# next read mid-dispatch pass.
SETTLE_S = 0.2

# extra_config for h.Collectd: collectd never expires a value (its Timeout
# is 2 intervals by default), so write_prometheus keeps serving a value
# that a read dispatched once.
NO_EXPIRY = "Timeout 3600\n"

SCENARIO_TIMEOUT_S = 120


class TestFailure(Exception):
    """An assertion of the test failed."""


class TestSkip(Exception):
    """The test cannot run here."""


def fail(message):
    raise TestFailure(message)


def check(condition, message):
    if not condition:
        fail(message)


def check_equal(got, expected, what):
    if got != expected:
        fail("%s: expected %r, got %r" % (what, expected, got))


# --------------------------------------------------------------------------
# Environment


def plugin_so_path():
    path = os.environ.get("EP_PLUGIN_SO")
    if not path:
        raise TestSkip("EP_PLUGIN_SO is not set")
    if not os.path.isfile(path):
        fail("EP_PLUGIN_SO=%s does not exist" % path)
    return path


def collectd_bin():
    return os.environ.get("COLLECTD_BIN", "/usr/sbin/collectd")


def stock_plugin_dir():
    return os.environ.get("COLLECTD_STOCK_PLUGIN_DIR", "/usr/lib/collectd")


def log(message):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), message), flush=True)


# --------------------------------------------------------------------------
# Namespaces and scenario driving


def run(argv, check_status=True, **kwargs):
    result = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)
    if check_status and result.returncode != 0:
        fail("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                     result.stdout.strip()))
    return result


def preflight():
    """Raises TestSkip when this machine cannot run the tests."""
    if os.geteuid() != 0:
        raise TestSkip("needs root for ip netns")
    if shutil.which("ip") is None or shutil.which("ss") is None:
        raise TestSkip("needs iproute2 (ip, ss)")
    if not os.access(collectd_bin(), os.X_OK):
        raise TestSkip("collectd not found at %s" % collectd_bin())
    for name in ("write_prometheus.so", "logfile.so"):
        if not os.path.isfile(os.path.join(stock_plugin_dir(), name)):
            raise TestSkip("%s not found in %s" % (name, stock_plugin_dir()))
    plugin_so_path()


def create_namespace(name, port_range, reserved_ports):
    delete_namespace(name)
    run(["ip", "netns", "add", name])
    configure_namespace(["ip", "netns", "exec", name], port_range,
                        reserved_ports)


def configure_namespace(in_ns, port_range, reserved_ports):
    """Loopback up with its addresses and the port sysctls set, in the
    namespace that the command prefix in_ns runs programs in."""
    run(in_ns + ["ip", "link", "set", "lo", "up"])
    # write_prometheus's getaddrinfo uses AI_ADDRCONFIG: it needs a
    # non-loopback address of each family to listen.  Nothing is ever sent
    # to these documentation addresses.
    run(in_ns + ["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"])
    run(in_ns + ["ip", "-6", "addr", "add", "2001:db8::1/128", "dev", "lo",
                 "nodad"])
    run(in_ns + ["sysctl", "-q", "-w",
                 "net.ipv4.ip_local_port_range=%d %d" % port_range])
    run(in_ns + ["sysctl", "-q", "-w",
                 "net.ipv4.ip_local_reserved_ports=%s" % reserved_ports])


def kill_namespace_processes(name):
    result = run(["ip", "netns", "pids", name], check_status=False)
    for word in result.stdout.split():
        if word.isdigit():
            try:
                os.kill(int(word), signal.SIGKILL)
            except ProcessLookupError:
                pass


def delete_namespace(name):
    if not os.path.exists(os.path.join("/run/netns", name)):
        return
    kill_namespace_processes(name)
    run(["ip", "netns", "del", name], check_status=False)


def namespace_name(script, scenario):
    base = os.path.basename(script).replace("test_", "").replace(".py", "")
    return "ept-%s-%s-%d" % (base[:12], scenario[:16], os.getpid())


def run_scenario_in_namespace(script, scenario, port_range, reserved_ports,
                              timeout=SCENARIO_TIMEOUT_S):
    name = namespace_name(script, scenario)
    log("scenario %s: namespace %s" % (scenario, name))
    started = time.monotonic()
    try:
        create_namespace(name, port_range, reserved_ports)
        env = dict(os.environ)
        env[INSIDE_NS_FLAG] = "1"
        env[NETNS_NAME_VAR] = name
        try:
            status = subprocess.run(
                ["ip", "netns", "exec", name, PYTHON, os.path.abspath(script),
                 scenario],
                env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            log("FAIL: scenario %s timed out after %d s" % (scenario, timeout))
            status = EXIT_FAIL
    finally:
        delete_namespace(name)
    log("scenario %s: %s in %.1f s" % (
        scenario, {EXIT_PASS: "PASS", EXIT_SKIP: "SKIP"}.get(status, "FAIL"),
        time.monotonic() - started))
    return status


def run_inside(scenarios):
    scenario = sys.argv[1]
    try:
        scenarios[scenario]()
    except TestSkip as skip:
        log("SKIP: %s" % skip)
        return EXIT_SKIP
    except TestFailure as failure:
        log("FAIL (%s): %s" % (scenario, failure))
        return EXIT_FAIL
    return EXIT_PASS


def _terminate_on_sigterm(signum, frame):
    raise SystemExit(EXIT_FAIL)


def run_scenarios(scenarios, port_range=(40000, 40019), reserved_ports="",
                  timeout=SCENARIO_TIMEOUT_S):
    """Entry point of a test script: runs each scenario (name -> function)
    in a fresh namespace, and exits with the automake status.  timeout is
    per scenario (seconds)."""
    script = sys.argv[0]
    if os.environ.get(INSIDE_NS_FLAG):
        sys.exit(run_inside(scenarios))
    signal.signal(signal.SIGTERM, _terminate_on_sigterm)
    try:
        preflight()
    except TestSkip as skip:
        print("SKIP: %s" % skip)
        sys.exit(EXIT_SKIP)
    except TestFailure as failure:
        print("FAIL: %s" % failure)
        sys.exit(EXIT_FAIL)
    statuses = [run_scenario_in_namespace(script, name, port_range,
                                          reserved_ports, timeout)
                for name in scenarios]
    if any(s not in (EXIT_PASS, EXIT_SKIP) for s in statuses):
        sys.exit(EXIT_FAIL)
    if any(s == EXIT_SKIP for s in statuses):
        sys.exit(EXIT_SKIP)
    sys.exit(EXIT_PASS)


# --------------------------------------------------------------------------
# More namespaces, made from inside a scenario (issue 10)
#
# A scenario runs in `ip netns exec`'s mount namespace, where a new
# /run/netns bind mount would stay private (outside, only an empty file
# would show).  So these are added in the mount namespace of the script
# outside, the scenario's parent, and reach the scenario's by propagation.
# They are named after that script's pid, so that it can delete whatever a
# scenario left behind.

CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000


def outer_mount_namespace():
    path = "/proc/%d/ns/mnt" % os.getppid()
    if os.stat(path).st_ino == os.stat("/proc/self/ns/mnt").st_ino:
        fail("the scenario's parent shares its mount namespace: not run "
             "by run_scenarios?")
    return path


def shared_namespace_name(tag):
    return "ept-%s-%d" % (tag, os.getppid())


def create_shared_namespace(name, port_range, reserved_ports=""):
    """An `ip netns add` namespace that every process sees, with loopback
    up and its own port sysctls; delete it with delete_shared_namespace."""
    run(["nsenter", "--mount=" + outer_mount_namespace(), "--", "ip",
         "netns", "add", name])
    configure_namespace(["ip", "netns", "exec", name], port_range,
                        reserved_ports)
    return os.path.join("/run/netns", name)


def delete_shared_namespace(name):
    if not os.path.exists(os.path.join("/run/netns", name)):
        return
    kill_namespace_processes(name)
    run(["nsenter", "--mount=" + outer_mount_namespace(), "--", "ip",
         "netns", "del", name], check_status=False)


def delete_shared_namespaces():
    """Outside only: deletes the shared namespaces a scenario of this
    script left behind (killed by its timeout, say)."""
    if os.environ.get(INSIDE_NS_FLAG) or not os.path.isdir("/run/netns"):
        return
    suffix = "-%d" % os.getpid()
    for name in os.listdir("/run/netns"):
        if name.startswith("ept-") and name.endswith(suffix):
            log("deleting leftover namespace %s" % name)
            delete_namespace(name)


def _setns(fd, kind):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, kind) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "setns: %s" % os.strerror(error))


@contextlib.contextmanager
def _in_namespace(name, kind, path):
    own = os.open("/proc/thread-self/ns/" + name, os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target, kind)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own, kind)
    finally:
        os.close(own)


@contextlib.contextmanager
def in_network_namespace(path, uts_path=None):
    """Runs the body with this thread in the network namespace at path
    (None: where it is): sockets made there belong to it, and programs
    started there (ss, sysctl, ip) run in it.  With uts_path, in that UTS
    namespace too, so that whoever looks at the process meanwhile sees the
    hostname of the namespace's own processes.  Python 3.11 has no
    os.setns."""
    with contextlib.ExitStack() as stack:
        if path is not None:
            stack.enter_context(_in_namespace("net", CLONE_NEWNET, path))
        if uts_path is not None:
            stack.enter_context(_in_namespace("uts", CLONE_NEWUTS, uts_path))
        yield


def namespace_inode(path):
    return os.stat(path).st_ino


# --------------------------------------------------------------------------
# Temp dirs


class TempDir:
    def __init__(self, prefix="eptest-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        if os.environ.get("EP_KEEP_TMP"):
            log("keeping %s" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False


def write_file_atomically(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".new"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.rename(temporary, path)


# --------------------------------------------------------------------------
# collectd


def plugin_block(options):
    """`<Plugin ephemeral_ports>` with one option line per entry."""
    body = "".join("  %s\n" % line for line in options)
    return "<Plugin ephemeral_ports>\n%s</Plugin>\n" % body


def collectd_base_config(tmp, interval=1, plugin_dir=None):
    """Global options and the logfile plugin (collectd.log in tmp); without
    plugin_dir, collectd's compiled-in plugin directory.  One write thread:
    writers get value lists in dispatch order, so a served scrape_success
    means its read's other values were served before it (with collectd's
    default 5, a thread can stall holding an earlier value list)."""
    return (
        'Hostname "%s"\n' % HOSTNAME
        + "FQDNLookup false\n"
        + "Interval %g\n" % interval
        + "WriteThreads 1\n"
        + 'BaseDir "%s"\n' % tmp.path
        + 'PIDFile "%s"\n' % tmp.join("collectd.pid")
        + ('PluginDir "%s"\n' % plugin_dir if plugin_dir else "")
        + "\n"
        + "LoadPlugin logfile\n"
        + "<Plugin logfile>\n"
        + '  LogLevel "info"\n'
        + '  File "%s"\n' % tmp.join("collectd.log")
        + "  Timestamp true\n"
        + "  PrintSeverity true\n"
        + "</Plugin>\n"
        + "\n")


def collectd_config(tmp, plugin_dir, ephemeral_ports_block,
                    write_prometheus_options=(), interval=1, extra_config=""):
    wp_body = "".join("  %s\n" % line for line in
                      ['Port "%d"' % PROMETHEUS_PORT]
                      + list(write_prometheus_options))
    return (
        collectd_base_config(tmp, interval, plugin_dir)
        + "LoadPlugin ephemeral_ports\n"
        + ephemeral_ports_block
        + "\n"
        + "LoadPlugin write_prometheus\n"
        + "<Plugin write_prometheus>\n" + wp_body + "</Plugin>\n"
        + extra_config)


def copy_plugins(plugin_dir, extra_plugins=()):
    """collectd refuses symlinked plugins: copy them.  extra_plugins names
    more stock plugins, e.g. "write_graphite"."""
    os.makedirs(plugin_dir, exist_ok=True)
    shutil.copy(plugin_so_path(), os.path.join(plugin_dir,
                                               "ephemeral_ports.so"))
    for name in ("write_prometheus", "logfile") + tuple(extra_plugins):
        shutil.copy(os.path.join(stock_plugin_dir(), name + ".so"),
                    os.path.join(plugin_dir, name + ".so"))


SANITIZER_REPORT = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")


def sanitizer_report(output):
    """The part of collectd's output from the first ASan, LSan or UBSan
    report on (the plugin is built with --enable-sanitizers), or ""."""
    match = SANITIZER_REPORT.search(output)
    return output[output.rfind("\n", 0, match.start()) + 1:] if match else ""


class ForegroundProcess:
    """A program the test runs in the foreground, in the current namespace,
    its stdout and stderr in one file."""

    def __init__(self, argv, output_path, env=None, cwd=None):
        self.argv = list(argv)
        self.output_path = output_path
        self.env = env
        self.cwd = cwd
        self.process = None
        self._output = None

    def start(self):
        self._output = open(self.output_path, "w")
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._output,
            stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        return self

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()

    def output_text(self):
        return read_text(self.output_path)

    def diagnostics(self):
        return "--- %s output ---\n%s--- end ---" % (
            self.argv[0], self.output_text())

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is not None:
            print(self.diagnostics(), flush=True)
        return False


class Collectd(ForegroundProcess):
    """One collectd process with the built plugin, the stock
    write_prometheus and logfile, and any extra_plugins, copied to tmp."""

    def __init__(self, tmp, ephemeral_ports_block,
                 write_prometheus_options=(), interval=1, extra_config="",
                 extra_plugins=(), command_prefix=(), extra_env=None):
        """command_prefix runs collectd under another program (valgrind);
        extra_env adds to collectd's environment."""
        self.plugin_dir = tmp.join("plugins")
        copy_plugins(self.plugin_dir, extra_plugins)
        self.setup(tmp, collectd_config(tmp, self.plugin_dir,
                                        ephemeral_ports_block,
                                        write_prometheus_options, interval,
                                        extra_config),
                   command_prefix, extra_env)

    def setup(self, tmp, config_text, command_prefix=(), extra_env=None):
        """Writes config_text as collectd.conf in tmp; the log goes to
        collectd.log there (see collectd_base_config)."""
        self.tmp = tmp
        self.config_path = tmp.join("collectd.conf")
        self.log_path = tmp.join("collectd.log")
        env = dict(os.environ)
        preload = os.environ.get("EP_COLLECTD_PRELOAD")
        if preload:
            env["LD_PRELOAD"] = preload
        env.update(extra_env or {})
        with open(self.config_path, "w") as handle:
            handle.write(config_text)
        ForegroundProcess.__init__(
            self, list(command_prefix) + [collectd_bin(), "-f", "-C",
                                          self.config_path],
            tmp.join("collectd.out"), env)

    def run_to_exit(self, timeout):
        """Starts collectd and waits for it to exit; returns its status, or
        None when it was still running after timeout (it is then stopped)."""
        self.start()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.stop()

    def start_and_wait_ready(self, timeout=20):
        """Starts collectd and waits until write_prometheus answers."""
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail("collectd exited with status %d at startup\n%s"
                     % (self.process.returncode, self.diagnostics()))
            try:
                scrape()
                return self
            except OSError:
                time.sleep(0.1)
        fail("write_prometheus did not answer within %d s\n%s"
             % (timeout, self.diagnostics()))

    def stop(self):
        ForegroundProcess.stop(self)
        if self._output is None:
            return
        report = sanitizer_report(self.output_text())
        if report:
            fail("collectd printed a sanitizer report:\n%s" % report)

    def log_text(self):
        return read_text(self.log_path)

    def log_lines(self):
        return self.log_text().splitlines()

    def diagnostics(self):
        return ("--- collectd stdout/stderr ---\n%s--- collectd.log ---\n%s"
                "--- end ---" % (self.output_text(), self.log_text()))


class Daemon(ForegroundProcess):
    """A server the test starts (a receiver such as Prometheus or
    carbon-cache), its output in log_path."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        ForegroundProcess.__init__(self, argv, log_path, env, cwd)
        self.log_path = log_path

    def wait_listening(self, port, timeout=30):
        """Waits until 127.0.0.1:port accepts a TCP connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail("%s exited with status %d at startup\n%s"
                     % (self.argv[0], self.process.returncode,
                        self.diagnostics()))
            try:
                close_with_reset(connect_from_fixed_port(port, 1.0))
                return self
            except OSError:
                time.sleep(0.1)
        fail("%s did not listen on %d within %d s\n%s"
             % (self.argv[0], port, timeout, self.diagnostics()))


def read_text(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def plugin_log_lines(lines, severity):
    """The log lines of the plugin (containing "ephemeral_ports plugin:")
    with the given severity ("error", "warning", "info", ...)."""
    tag = "[%s]" % severity
    return [line for line in lines
            if tag in line and "ephemeral_ports plugin:" in line]


# --------------------------------------------------------------------------
# Scraping write_prometheus

_next_scrape_port = [0]


def next_scrape_client_port():
    index = _next_scrape_port[0] % len(SCRAPE_CLIENT_PORTS)
    _next_scrape_port[0] += 1
    return SCRAPE_CLIENT_PORTS[index]


def close_with_reset(sock):
    """Close without leaving TIME_WAIT behind (SO_LINGER 0 sends RST)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def connect_from_fixed_port(port, timeout):
    """A TCP connection to 127.0.0.1:port from a client port outside every
    test's range, so that it takes no ephemeral port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.settimeout(timeout)
        sock.bind(("127.0.0.1", next_scrape_client_port()))
        sock.connect(("127.0.0.1", port))
    except OSError:
        close_with_reset(sock)
        raise
    return sock


def http_get(port, path, timeout=5.0):
    """GET http://127.0.0.1:port/path; returns (status code, body)."""
    sock = connect_from_fixed_port(port, timeout)
    try:
        sock.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                      "Accept: text/plain\r\nConnection: close\r\n\r\n"
                      % path).encode())
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        close_with_reset(sock)
    response = b"".join(chunks).decode("utf-8", "replace")
    head, _, body = response.partition("\r\n\r\n")
    status_line = head.split("\r\n", 1)[0]
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        fail("GET %s answered %r" % (path, status_line))
    return int(fields[1]), body


def http_get_metrics(timeout=5.0):
    status, body = http_get(PROMETHEUS_PORT, "/metrics", timeout)
    if status != 200:
        fail("scrape answered %d" % status)
    return body


_SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r'\s+(?P<value>\S+)(?:\s+(?P<timestamp>-?\d+))?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _unescape_label_value(text):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), text)


def parse_labels(text):
    labels = []
    position = 0
    text = (text or "").strip()
    while position < len(text):
        match = _LABEL_RE.match(text, position)
        if not match:
            fail("cannot parse labels %r" % text)
        labels.append((match.group(1), _unescape_label_value(match.group(2))))
        position = match.end()
    return tuple(sorted(labels))


def parse_prometheus_text(body):
    """{(name, sorted label tuple): (value, timestamp_ms or None)}"""
    samples = {}
    for line in body.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE_RE.match(line)
        if not match:
            fail("cannot parse exposition line %r" % line)
        key = (match.group("name"), parse_labels(match.group("labels")))
        timestamp = match.group("timestamp")
        samples[key] = (float(match.group("value")),
                        int(timestamp) if timestamp is not None else None)
    return samples


def scrape():
    return parse_prometheus_text(http_get_metrics())


def host_labels(**labels):
    labels["instance"] = HOSTNAME
    return tuple(sorted(labels.items()))


SCRAPE_SUCCESS = "collectd_ephemeral_port_exporter_scrape_success"
POOL_METRICS = ("collectd_ephemeral_ports_used",
                "collectd_ephemeral_ports_total",
                "collectd_ephemeral_ports_available",
                "collectd_ephemeral_ports_usage_ratio")
OPEN_PORTS = "collectd_instance_open_ports"


def sample(samples, name, **labels):
    """(value, timestamp_ms) of one series, or None when it is absent."""
    return samples.get((name, host_labels(**labels)))


def value_of(samples, name, **labels):
    found = sample(samples, name, **labels)
    if found is None:
        fail("series %s%r missing from the scrape; series present: %s"
             % (name, labels, sorted(format_key(k) for k in samples
                                     if k[0].startswith("collectd_"))))
    return found[0]


def format_key(key):
    name, labels = key
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels))


def open_port_values(samples):
    """{port: value} of every collectd_instance_open_ports series."""
    ports = {}
    for (name, labels), (value, _) in samples.items():
        if name != OPEN_PORTS:
            continue
        label_map = dict(labels)
        check(label_map.get("instance") == HOSTNAME and
              set(label_map) == {"instance", "instance_open"},
              "unexpected labels on %s: %r" % (OPEN_PORTS, labels))
        ports[int(label_map["instance_open"])] = value
    return ports


def ephemeral_series(samples):
    """The keys of every series the plugin makes."""
    prefixes = ("collectd_ephemeral_port", "collectd_instance_open")
    return [key for key in samples if key[0].startswith(prefixes)]


def wait_for_fresh_read(collectd, since, timeout=15.0):
    """Scrapes until scrape_success was dispatched by a read that started
    after `since` (a time.time()), then returns a scrape taken once that
    read's other values have landed too."""
    threshold_ms = (since + FRESH_READ_MARGIN_S) * 1000.0
    deadline = time.monotonic() + timeout
    last_seen = None
    while time.monotonic() < deadline:
        if collectd.process.poll() is not None:
            fail("collectd exited with status %d\n%s"
                 % (collectd.process.returncode, collectd.diagnostics()))
        found = sample(scrape(), SCRAPE_SUCCESS)
        last_seen = found
        if found is not None and found[1] is not None and \
                found[1] > threshold_ms:
            time.sleep(SETTLE_S)
            return scrape()
        time.sleep(0.1)
    fail("no fresh read within %.0f s: %s is %r, wanted a timestamp after "
         "%.0f ms" % (timeout, SCRAPE_SUCCESS, last_seen, threshold_ms))


def format_ratio(value):
    """How write_prometheus prints a gauge ("%.15g"), back as a float."""
    return float("%.15g" % value)


def check_pool_values(samples, used, total, what=""):
    """Asserts used/total/available/usage_ratio exactly."""
    prefix = (what + ": ") if what else ""
    check_equal(value_of(samples, "collectd_ephemeral_ports_used"), used,
                prefix + "collectd_ephemeral_ports_used")
    check_equal(value_of(samples, "collectd_ephemeral_ports_total"), total,
                prefix + "collectd_ephemeral_ports_total")
    check_equal(value_of(samples, "collectd_ephemeral_ports_available"),
                total - used, prefix + "collectd_ephemeral_ports_available")
    check_equal(value_of(samples, "collectd_ephemeral_ports_usage_ratio"),
                format_ratio(used / total),
                prefix + "collectd_ephemeral_ports_usage_ratio")
    check_equal(value_of(samples, SCRAPE_SUCCESS), 1.0, prefix + SCRAPE_SUCCESS)


# --------------------------------------------------------------------------
# ss


class SsSocket:
    def __init__(self, state, local_address, local_port, peer_address,
                 peer_port):
        self.state = state
        self.local_address = local_address
        self.local_port = local_port
        self.peer_address = peer_address
        self.peer_port = peer_port

    def __repr__(self):
        return "%s %s:%d -> %s:%s" % (self.state, self.local_address,
                                      self.local_port, self.peer_address,
                                      self.peer_port)


def _split_endpoint(text):
    address, _, port = text.rpartition(":")
    return address, (int(port) if port.isdigit() else None)


def ss_tcp():
    """`ss -Htan` in the current namespace, parsed.  (No ss state filter:
    with one, ss leaves out the State column.)"""
    return _ss_table("-Htan")


def _ss_table(flags):
    result = run(["ss", flags])
    sockets = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local_address, local_port = _split_endpoint(fields[3])
        peer_address, peer_port = _split_endpoint(fields[4])
        sockets.append(SsSocket(fields[0], local_address, local_port,
                                peer_address, peer_port))
    return sockets


def ss_pool_ports(pool):
    """Distinct local ports of ss -tan that lie in the pool."""
    return {s.local_port for s in ss_tcp() if s.local_port in pool}


def ss_listening_ports():
    return {s.local_port for s in ss_tcp() if s.state == "LISTEN"}


def ss_ports_in_state(state):
    """Local ports of sockets in an ss state ("TIME-WAIT", "ESTAB", ...)."""
    return {s.local_port for s in ss_tcp() if s.state == state}


# --------------------------------------------------------------------------
# Port ranges


def parse_port_list(text):
    """"40005,40010-40011" -> {40005, 40010, 40011}"""
    ports = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        low, _, high = item.partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def pool_of(port_range, reserved_text):
    low, high = port_range
    return set(range(low, high + 1)) - parse_port_list(reserved_text)


def current_pool():
    """The pool from the namespace's sysctls."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
        low, high = (int(word) for word in handle.read().split())
    with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as handle:
        return pool_of((low, high), handle.read())


# --------------------------------------------------------------------------
# Sockets the tests make (always on 127.0.0.1 / ::1)

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def listener(port, family=socket.AF_INET, backlog=128):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK[family], port))
    sock.listen(backlog)
    return sock


def client(port, family=socket.AF_INET, bind_port=None):
    """A connection to the loopback listener on port; returns the socket.
    Raises OSError (e.g. EADDRNOTAVAIL) when connect() fails."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if bind_port is not None:
            sock.bind((LOOPBACK[family], bind_port))
        sock.connect((LOOPBACK[family], port))
    except OSError:
        sock.close()
        raise
    return sock


def local_port(sock):
    return sock.getsockname()[1]


def make_time_wait(listening, port, family=socket.AF_INET, bind_port=None):
    """A connection to the listener, closed client first: the client end
    stays in TIME_WAIT, holding its local port without a file descriptor.
    Returns that port once ss shows it in TIME-WAIT."""
    client_end = client(port, family, bind_port)
    server_end = listening.accept()[0]
    time_wait_port = local_port(client_end)
    client_end.close()
    server_end.close()
    deadline = time.monotonic() + 5
    while time_wait_port not in ss_ports_in_state("TIME-WAIT"):
        if time.monotonic() > deadline:
            fail("port %d never showed TIME-WAIT in ss: %r"
                 % (time_wait_port, ss_tcp()))
        time.sleep(0.05)
    return time_wait_port


def is_address_not_available(error):
    return isinstance(error, OSError) and error.errno == errno.EADDRNOTAVAIL


# --------------------------------------------------------------------------
# Helpers for the per-destination, UDP and state series

DESTINATION_USED = "collectd_ephemeral_ports_destination_used"
DESTINATION_RATIO = "collectd_ephemeral_ports_destination_usage_ratio"
STATE_SOCKETS = "collectd_ephemeral_ports_state_sockets"

# The states the plugin reports, in its order, and how ss -tan names them.
TCP_STATES = ("established", "syn_sent", "syn_recv", "fin_wait1",
              "fin_wait2", "time_wait", "close", "close_wait", "last_ack",
              "listen", "closing")
SS_STATE_NAMES = {"ESTAB": "established", "SYN-SENT": "syn_sent",
                  "SYN-RECV": "syn_recv", "FIN-WAIT-1": "fin_wait1",
                  "FIN-WAIT-2": "fin_wait2", "TIME-WAIT": "time_wait",
                  "UNCONN": "close", "CLOSE-WAIT": "close_wait",
                  "LAST-ACK": "last_ack", "LISTEN": "listen",
                  "CLOSING": "closing"}


def series_of(samples, name):
    """[(label dict without instance, value, timestamp_ms)] of every series
    with this name (checking that instance is the test host)."""
    found = []
    for (key_name, labels), (value, timestamp) in samples.items():
        if key_name != name:
            continue
        label_map = dict(labels)
        check(label_map.pop("instance", None) == HOSTNAME,
              "unexpected instance on %s: %r" % (name, labels))
        found.append((label_map, value, timestamp))
    return found


def destination_samples(samples):
    """{(remote, local): {"used": (value, ts), "usage_ratio": (value, ts)}}
    of every per-destination series."""
    result = {}
    for name, field in ((DESTINATION_USED, "used"),
                        (DESTINATION_RATIO, "usage_ratio")):
        for labels, value, timestamp in series_of(samples, name):
            check(set(labels) == {"ephemeral_ports_destination", "type"},
                  "unexpected labels on %s: %r" % (name, labels))
            key = (labels["ephemeral_ports_destination"], labels["type"])
            result.setdefault(key, {})[field] = (value, timestamp)
    return result


def state_values(samples):
    """{state: sockets} of every collectd_ephemeral_ports_state_sockets."""
    states = {}
    for labels, value, _ in series_of(samples, STATE_SOCKETS):
        check(set(labels) == {"ephemeral_ports_state"},
              "unexpected labels on %s: %r" % (STATE_SOCKETS, labels))
        states[labels["ephemeral_ports_state"]] = value
    return states


def open_port_values_by_type(samples):
    """{type: {port: value}} of every collectd_instance_open_ports series;
    type is "" for TCP (no type label) and "udp" for UDP."""
    result = {}
    for labels, value, _ in series_of(samples, OPEN_PORTS):
        check(set(labels) in ({"instance_open"}, {"instance_open", "type"}),
              "unexpected labels on %s: %r" % (OPEN_PORTS, labels))
        kind = labels.get("type", "")
        result.setdefault(kind, {})[int(labels["instance_open"])] = value
    return result


def ss_udp():
    """`ss -Huan` in the current namespace, parsed like ss_tcp()."""
    return _ss_table("-Huan")


def ss_state_counts(pool):
    """{plugin state name: sockets} of ss -tan sockets with an in-pool local
    port, with every reported state present (0 when none)."""
    counts = dict.fromkeys(TCP_STATES, 0)
    for sock in ss_tcp():
        if sock.local_port not in pool:
            continue
        check(sock.state in SS_STATE_NAMES,
              "ss state %r unknown to the test: %r" % (sock.state, sock))
        counts[SS_STATE_NAMES[sock.state]] += 1
    return counts


def ss_destination_counts(pool):
    """{(remote, local): sockets} of ss -tan connected sockets with an
    in-pool local port, labelled the way the plugin labels destinations
    ("127.0.0.1:9000" / "[::1]:9000", "127.0.0.1" / "::1").  Sockets whose
    local port also has a listener are left out (held exclusively)."""
    table = ss_tcp()
    listening = {s.local_port for s in table if s.state == "LISTEN"}
    counts = {}
    for sock in table:
        if sock.local_port not in pool or sock.peer_port is None or \
                sock.local_port in listening:
            continue
        key = ("%s:%d" % (sock.peer_address, sock.peer_port),
               sock.local_address.strip("[]"))
        counts[key] = counts.get(key, 0) + 1
    return counts


def wait_for_read_after(collectd, since, timeout=15.0):
    """Like wait_for_fresh_read, but returns the scrape of the read that
    follows the first fresh one.  Reads of one plugin never overlap, so that
    read's scan started after the first fresh read had dispatched, hence
    after `since`, however long a loaded machine stalls a read between its
    scan and its dispatch."""
    first = wait_for_fresh_read(collectd, since, timeout)
    first_ms = sample(first, SCRAPE_SUCCESS)[1]
    # wait_for_fresh_read wants a timestamp above since + margin.
    return wait_for_fresh_read(
        collectd, first_ms / 1000.0 - FRESH_READ_MARGIN_S + 0.0005, timeout)


# --------------------------------------------------------------------------
# Series of other network namespaces (host "<Hostname>:<name>")


def host_of(namespace_name):
    return "%s:%s" % (HOSTNAME, namespace_name)


def host_view(samples, host):
    """The series of one host, relabelled as the test host's, so that
    value_of, check_pool_values, destination_samples, state_values, ... read
    them."""
    view = {}
    for (name, labels), found in samples.items():
        label_map = dict(labels)
        if label_map.get("instance") != host:
            continue
        label_map["instance"] = HOSTNAME
        view[(name, tuple(sorted(label_map.items())))] = found
    return view


def hosts_served(samples):
    """The instance label of every series the plugin makes."""
    return {dict(key[1]).get("instance") for key in ephemeral_series(samples)}


def scrape_success_stamp(samples, host):
    """The timestamp (ms) of host's scrape_success, 0 when absent."""
    found = samples.get((SCRAPE_SUCCESS, (("instance", host),)))
    return found[1] if found and found[1] is not None else 0


def wait_for_fresh_hosts(collectd, hosts, since, timeout=15.0):
    """wait_for_fresh_read for several hosts: scrapes until each host's
    scrape_success was dispatched by a read that started after `since`."""
    threshold_ms = (since + FRESH_READ_MARGIN_S) * 1000.0
    deadline = time.monotonic() + timeout
    while True:
        if collectd.process.poll() is not None:
            fail("collectd exited with status %d\n%s"
                 % (collectd.process.returncode, collectd.diagnostics()))
        samples = scrape()
        stale = [host for host in hosts
                 if scrape_success_stamp(samples, host) <= threshold_ms]
        if not stale:
            time.sleep(SETTLE_S)
            return scrape()
        if time.monotonic() > deadline:
            fail("no fresh read of %s within %.0f s (after %.0f ms); "
                 "hosts served: %s" % (stale, timeout, threshold_ms,
                                       sorted(hosts_served(samples))))
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Scenarios that see the cgroup2 mount, the cgroups they make, and
# processes that make sockets in them (issue 11)
#
# `ip netns exec` runs a scenario in a mount namespace of its own with a
# fresh /sys, which hides every cgroup mount.  run_scenarios_seeing_cgroups
# enters each scenario's namespace with `nsenter --net=/run/netns/NAME`
# instead: only the network namespace is the scenario's, the mounts are the
# script's (/proc/net and /proc/sys/net follow the reader's network
# namespace, so ss and sysctl see the scenario's as before).  The script
# (nsenter execs, so it is the scenario's parent) removes after each
# scenario every cgroup it made, killing what still runs in them: those
# under <cgroup2 mount>/ept-test-<script pid>/, and any other path the
# scenario wrote to the script's ledger file before making it.

import json  # noqa: E402
import select  # noqa: E402

CGROUP_USED = "collectd_ephemeral_ports_cgroup_used"
# What collectd logs, once, where it sees no cgroup2 mount (under `ip netns
# exec`, which mounts a fresh /sys): no owner can be named.
NO_CGROUP2_INFO = ('ephemeral_ports plugin: cgroup: /proc/self/mountinfo: '
                   'no cgroup2 mount: every pool port counts under '
                   '"unknown", a TIME_WAIT socket\'s under "time_wait"')


def unnamed_owners(pool, time_wait, unknown, udp_held):
    """The per-cgroup series {(group, type): ports} where no owner can be
    named, after checking the test's own sets against ss -tan: time_wait
    the in-pool TIME-WAIT ports, unknown the other in-pool ports (TCP),
    udp_held the in-pool UDP ports.  A group holding no port is not
    reported."""
    table = ss_tcp()
    check_equal({s.local_port for s in table if s.local_port in pool
                 and s.state == "TIME-WAIT"}, time_wait,
                "in-pool TIME-WAIT ports in ss -tan")
    check_equal({s.local_port for s in table if s.local_port in pool
                 and s.state != "TIME-WAIT"}, unknown,
                "in-pool ports of other states in ss -tan")
    return {key: n for key, n in ((("unknown", ""), len(unknown)),
                                  (("time_wait", ""), len(time_wait)),
                                  (("unknown", "udp"), len(udp_held)))
            if n > 0}


def check_no_cgroup2_info(collectd):
    """The premise of every test that expects all owners under unknown and
    time_wait: collectd said, once, that it sees no cgroup2 mount."""
    lines = [line for line in plugin_log_lines(collectd.log_lines(), "info")
             if NO_CGROUP2_INFO in line]
    check_equal(len(lines), 1, "INFO lines saying %r" % NO_CGROUP2_INFO)
CGROUP_PSEUDO_NAMES = ("unknown", "time_wait")
CGROUP_NAME_MAX = 127  # collectd's instance fields


def run_scenarios_seeing_cgroups(scenarios, port_range=(40000, 40019),
                                 reserved_ports="",
                                 timeout=SCENARIO_TIMEOUT_S):
    """run_scenarios, with each scenario entered by nsenter (see above),
    and SKIP without nsenter or a cgroup2 mount.  EP_SCENARIOS=a,b runs
    only those (when debugging)."""
    script = sys.argv[0]
    if os.environ.get(INSIDE_NS_FLAG):
        sys.exit(run_inside(scenarios))
    signal.signal(signal.SIGTERM, _terminate_on_sigterm)
    try:
        preflight()
        if shutil.which("nsenter") is None:
            raise TestSkip("needs nsenter (util-linux)")
        if cgroup2_mount() is None:
            raise TestSkip("no cgroup2 mount in /proc/self/mountinfo")
    except TestSkip as skip:
        print("SKIP: %s" % skip)
        sys.exit(EXIT_SKIP)
    statuses = []
    only = os.environ.get("EP_SCENARIOS")
    for scenario in scenarios:
        if only and scenario not in only.split(","):
            continue
        name = namespace_name(script, scenario)
        log("scenario %s: namespace %s (nsenter)" % (scenario, name))
        started = time.monotonic()
        status = EXIT_FAIL
        try:
            create_namespace(name, port_range, reserved_ports)
            env = dict(os.environ, **{INSIDE_NS_FLAG: "1",
                                      NETNS_NAME_VAR: name})
            status = subprocess.run(
                ["nsenter", "--net=" + os.path.join("/run/netns", name),
                 "--", PYTHON, os.path.abspath(script), scenario],
                env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            log("FAIL: scenario %s timed out after %d s" % (scenario, timeout))
        finally:
            delete_namespace(name)
            delete_shared_namespaces()
            remove_test_cgroups(os.getpid())
        log("scenario %s: %s in %.1f s" % (
            scenario, {EXIT_PASS: "PASS", EXIT_SKIP: "SKIP"}.get(
                status, "FAIL"), time.monotonic() - started))
        statuses.append(status)
    if any(s not in (EXIT_PASS, EXIT_SKIP) for s in statuses):
        sys.exit(EXIT_FAIL)
    sys.exit(EXIT_SKIP if EXIT_SKIP in statuses else EXIT_PASS)


def create_visible_namespace(tag, port_range, reserved_ports=""):
    """From a scenario run by run_scenarios_seeing_cgroups: an `ip netns`
    namespace every process sees (the scenario shares the script's mounts),
    named like create_shared_namespace's, so the script deletes it if the
    scenario does not.  Returns (name, path)."""
    name = shared_namespace_name(tag)
    create_namespace(name, port_range, reserved_ports)
    return name, os.path.join("/run/netns", name)


def _unescape_mountinfo(text):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def cgroup2_mount():
    """(mount point, mounted root) of the cgroup2 hierarchy from
    /proc/self/mountinfo, the whole hierarchy's mount first; None without
    one.  Never assumed: these machines mount it at /sys/fs/cgroup/unified."""
    found = []
    for line in read_text("/proc/self/mountinfo").splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split()
        if after.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            found.append((_unescape_mountinfo(fields[4]),
                          _unescape_mountinfo(fields[3])))
    found.sort(key=lambda mount: mount[1] != "/")
    return found[0] if found else None


def cgroup_of(pid="self"):
    """The process's cgroup v2 path ("/" for the root)."""
    for line in read_text("/proc/%s/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return line[3:]
    fail("no cgroup v2 line in /proc/%s/cgroup" % pid)


def cgroup_ledger(owner):
    return os.path.join(tempfile.gettempdir(), "ept-cgroups-%d" % owner)


def _empty_and_remove(directory):
    """Kills every process in directory's cgroup and removes it."""
    deadline = time.monotonic() + 10
    while True:
        pids = [int(word) for word in
                read_text(os.path.join(directory, "cgroup.procs")).split()]
        if not pids:
            break
        for pid in pids:
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            log("cannot empty cgroup %s: %s" % (directory, pids))
            return
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(directory)


def remove_test_cgroups(owner):
    """Removes the cgroups the scenarios of script owner made, deepest
    first, and its ledger."""
    mount = cgroup2_mount()
    ledger = cgroup_ledger(owner)
    tops = [line for line in read_text(ledger).splitlines() if line]
    if mount is not None:
        tops.append(os.path.join(mount[0], "ept-test-%d" % owner))
    for top in tops:
        if not os.path.isdir(top):
            continue
        for directory, _, _ in os.walk(top, topdown=False):
            _empty_and_remove(directory)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(ledger)


def cgroup_id(directory):
    """A cgroup's id, as sock_diag reports it: its kernfs inode number (the
    8-byte file handle too, on 64-bit hosts)."""
    return os.stat(directory).st_ino


class TestCgroups:
    """The cgroups of one scenario: under <mount>/ept-test-<script pid>/,
    or with top_level, right under the mount (names that equal a pseudo
    group's).  Paths are given and returned relative to the cgroup2 root,
    as the kernel and `ss --cgroup` name them."""

    def __init__(self):
        mount = cgroup2_mount()
        if mount is None:
            raise TestSkip("no cgroup2 mount")
        self.mount, self.mount_root = mount
        self.owner = os.getppid()
        self.base = self.path("ept-test-%d" % self.owner)

    def path(self, relative):
        """The path of a group of the mount, relative to the cgroup2 root."""
        root = self.mount_root.rstrip("/")
        return "%s/%s" % (root, relative.strip("/"))

    def directory(self, path):
        """Where the group at path (relative to the cgroup2 root) is."""
        root = self.mount_root.rstrip("/")
        check(path.startswith(root + "/"), "%s is outside the mount" % path)
        return self.mount + path[len(root):]

    def make(self, relative, top_level=False):
        """Makes the group (and its parents); returns its path."""
        path = self.path(relative) if top_level else \
            self.base + "/" + relative.strip("/")
        directory = self.directory(path)
        if top_level:
            if os.path.exists(directory):
                raise TestSkip("cgroup %s exists already" % path)
            with open(cgroup_ledger(self.owner), "a") as ledger:
                ledger.write(directory + "\n")
        os.makedirs(directory, exist_ok=True)
        return path

    def move(self, pid, path):
        """Moves the process into the group at path."""
        with open(os.path.join(self.directory(path), "cgroup.procs"),
                  "w") as procs:
            procs.write("%d\n" % pid)
        check_equal(cgroup_of(pid), path, "cgroup of process %d" % pid)

    def remove(self, path):
        os.rmdir(self.directory(path))

    def id_of(self, path):
        return cgroup_id(self.directory(path))

    def cleanup(self):
        remove_test_cgroups(self.owner)


def _fnv1a64(data):
    value = 0xcbf29ce484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001b3) & 0xffffffffffffffff
    return value


def cgroup_cut_name(path):
    """A path as cgroup_names.h fits it in 127 bytes: unchanged when it
    fits, else "..." + 16 hex digits of its FNV-1a hash + its longest end
    that starts at a "/" and fits in the 108 bytes left (else the last 108
    bytes from a UTF-8 character's start)."""
    data = path.encode()
    if len(data) <= CGROUP_NAME_MAX:
        return path
    prefix = "...%016x" % _fnv1a64(data)
    tail = data[len(data) - (CGROUP_NAME_MAX - len(prefix)):]
    if b"/" in tail:
        tail = tail[tail.index(b"/"):]
    else:
        while tail and tail[0] & 0xc0 == 0x80:
            tail = tail[1:]
    return prefix + tail.decode()


def collectd_escape(name):
    """What plugin_dispatch_values makes of a name field: a leading "/"
    dropped, every other "/" turned into "_", "/" alone into "root"."""
    if name == "/":
        return "root"
    return (name[1:] if name.startswith("/") else name).replace("/", "_")


def cgroup_instances(paths_by_id):
    """{id: plugin_instance} for groups reported together: each path cut
    and escaped; a name that a pseudo group or a group of smaller id has
    gets "-<id>" (cut to fit)."""
    names = {group: collectd_escape(cgroup_cut_name(path))
             for group, path in paths_by_id.items()}
    result = {}
    for group, name in names.items():
        if name in CGROUP_PSEUDO_NAMES or any(
                other < group and other_name == name
                for other, other_name in names.items()):
            suffix = "-%d" % group
            name = name.encode()[:CGROUP_NAME_MAX - len(suffix)].decode(
                errors="ignore") + suffix
        result[group] = name
    return result


def cgroup_values(samples):
    """{(plugin_instance, type): (value, timestamp_ms)} of every
    collectd_ephemeral_ports_cgroup_used series of the test host; type is
    "" for TCP, "udp" for UDP."""
    found = {}
    for labels, value, timestamp in series_of(samples, CGROUP_USED):
        check(set(labels) in ({"ephemeral_ports_cgroup"},
                              {"ephemeral_ports_cgroup", "type"}),
              "unexpected labels on %s: %r" % (CGROUP_USED, labels))
        kind = labels.get("type", "")
        check(kind in ("", "udp"), "type %r on %s" % (kind, CGROUP_USED))
        found[(labels["ephemeral_ports_cgroup"], kind)] = (value, timestamp)
    return found


class SsCgroupSocket(SsSocket):
    def __init__(self, fields, cgroup):
        local_address, local_port = _split_endpoint(fields[3])
        peer_address, peer_port = _split_endpoint(fields[4])
        SsSocket.__init__(self, fields[0], local_address, local_port,
                          peer_address, peer_port)
        self.cgroup = cgroup  # a path, "unreachable:<hex id>", or None


def ss_with_cgroups(protocol="tcp"):
    """`ss -Htan --cgroup` (or -Huan) in the current namespace, parsed: each
    socket with the cgroup ss names (None when the kernel sent none:
    TIME_WAIT and request sockets)."""
    result = run(["ss", "-Htan" if protocol == "tcp" else "-Huan",
                  "--cgroup"])
    sockets = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        cgroup = next((word[len("cgroup:"):] for word in fields[5:]
                       if word.startswith("cgroup:")), None)
        sockets.append(SsCgroupSocket(fields, cgroup))
    return sockets


def ss_cgroup_has_cgroup_option():
    """Whether this ss prints cgroups (iproute2 5.9 and later)."""
    return "--cgroup" in run(["ss", "--help"], check_status=False).stdout


# The program of a SocketProcess: makes sockets on 127.0.0.1 / ::1 as told,
# one JSON request per line on stdin, one JSON answer per line on stdout.
# It dies with its parent (PR_SET_PDEATHSIG) or when stdin closes.
SOCKET_PROCESS_CODE = r"""
import ctypes, json, os, signal, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent gone")
if sys.argv[2]:
    fd = os.open(sys.argv[2], os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        sys.exit("setns: " + os.strerror(ctypes.get_errno()))
    os.close(fd)
ADDRESS = {4: (socket.AF_INET, "127.0.0.1"), 6: (socket.AF_INET6, "::1")}
kept = {}

def keep(sock):
    kept[sock.fileno()] = sock
    return sock.fileno()

def make(family, kind):
    af, address = ADDRESS[family]
    sock = socket.socket(af, kind)
    if af == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock, address

def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()

def listener(port, family=4):
    sock, address = make(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    return sock

def op_listen(port, family=4):
    return {"id": keep(listener(port, family))}

def op_connect(port, count=1, family=4):
    ports = []
    for _ in range(count):
        sock, address = make(family, socket.SOCK_STREAM)
        sock.connect((address, port))
        keep(sock)
        ports.append(sock.getsockname()[1])
    return {"ports": ports}

def op_accept(id, count):
    for _ in range(count):
        keep(kept[id].accept()[0])
    return {}

def op_bind(port=0, family=4, udp=False):
    sock, address = make(family, socket.SOCK_DGRAM if udp
                         else socket.SOCK_STREAM)
    sock.bind((address, port))
    return {"id": keep(sock), "port": sock.getsockname()[1]}

def op_udp_connect(port, family=4):
    sock, address = make(family, socket.SOCK_DGRAM)
    sock.connect((address, port))
    return {"id": keep(sock), "port": sock.getsockname()[1]}

def op_close(ids=None, ports=None):
    for fd, sock in list(kept.items()):
        if (ids is not None and fd in ids) or (
                ports is not None and sock.type == socket.SOCK_STREAM and
                sock.getsockname()[1] in ports):
            reset(kept.pop(fd))
    return {}

def op_reset_all():
    for fd in list(kept):
        reset(kept.pop(fd))
    return {}

def op_time_wait(port, count=1):
    # Closed client first: the client end stays in TIME_WAIT.
    listening = listener(port)
    ports = []
    for _ in range(count):
        sock, address = make(4, socket.SOCK_STREAM)
        sock.connect((address, port))
        server = listening.accept()[0]
        ports.append(sock.getsockname()[1])
        sock.close()
        server.recv(1)
        server.close()
    listening.close()
    return {"ports": ports}

def op_fin_wait2(port):
    # Closed client first, the server end kept open: the orphaned client
    # end waits in FIN_WAIT2.
    listening = listener(port)
    sock, address = make(4, socket.SOCK_STREAM)
    sock.connect((address, port))
    keep(listening.accept()[0])
    keep(listening)
    local = sock.getsockname()[1]
    sock.close()
    return {"port": local}

print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    try:
        answer = {"ok": globals()["op_" + request.pop("op")](**request)}
    except OSError as error:
        answer = {"errno": error.errno, "error": str(error)}
    print(json.dumps(answer), flush=True)
"""


class SocketProcess:
    """A process that makes sockets when told (SOCKET_PROCESS_CODE), in
    the network namespace at netns_path (default: the current one).  Move
    it into a cgroup before it makes any: a socket belongs to the group of
    the process that made it, for good."""

    def __init__(self, netns_path=""):
        self.process = subprocess.Popen(
            [PYTHON, "-c", SOCKET_PROCESS_CODE, str(os.getpid()),
             netns_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self._expect_line("ready")

    def _read_line(self, timeout=10):
        ready = select.select([self.process.stdout], [], [], timeout)[0]
        return self.process.stdout.readline() if ready else ""

    def _expect_line(self, expected):
        line = self._read_line()
        if line.strip() != expected:
            self.stop(reset=False)
            fail("socket process %d: expected %r, got %r; stderr: %s"
                 % (self.pid, expected, line, self.process.stderr.read()))

    def call(self, op, **args):
        """Runs op_<op>(**args) in the process; returns its answer (a
        dict).  Raises OSError with its errno when the call failed there."""
        request = dict(args, op=op)
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            fail("socket process %d is gone: %s"
                 % (self.pid, self.process.stderr.read()))
        line = self._read_line()
        if not line:
            fail("socket process %d did not answer %r: %s"
                 % (self.pid, request, self.process.stderr.read()
                    if self.process.poll() is not None else "(still runs)"))
        answer = json.loads(line)
        if "errno" in answer:
            raise OSError(answer["errno"], "%s: %s" % (op, answer["error"]))
        return answer["ok"]

    def stop(self, reset=True):
        """Ends the process, its sockets reset first (no TIME_WAIT)."""
        if self.process.poll() is None and reset:
            with contextlib.suppress(OSError, TestFailure, ValueError):
                self.call("reset_all")
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout,
                       self.process.stderr):
            with contextlib.suppress(OSError):
                stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# --------------------------------------------------------------------------
# NAT (issue 12): nftables rules, the conntrack table, the NAT series

NAT_METRICS = ("collectd_ephemeral_ports_nat_used",
               "collectd_ephemeral_ports_nat_total",
               "collectd_ephemeral_ports_nat_usage_ratio")
CONNTRACK_COUNTERS = {
    "insert_failed": "collectd_ephemeral_ports_conntrack_insert_failed_total",
    "drop": "collectd_ephemeral_ports_conntrack_drop_total"}
NAT_TOOLS = {"nft": "nftables", "conntrack": "conntrack"}


def require_nat_tools():
    for tool, package in NAT_TOOLS.items():
        if shutil.which(tool) is None:
            raise TestSkip("needs %s (Debian package %s)" % (tool, package))


def nft_load(ruleset, prefix=()):
    """Loads an nftables ruleset (`nft -f` syntax) in the namespace that the
    command prefix runs programs in (the current one without a prefix)."""
    result = subprocess.run(list(prefix) + ["nft", "-f", "-"], input=ruleset,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode != 0:
        fail("nft -f failed (%d): %s\n%s" % (result.returncode,
                                             result.stdout.strip(), ruleset))


def nft_counters(family, table, chain, prefix=()):
    """The packet counts of the counters in one chain, in rule order."""
    listing = run(list(prefix) + ["nft", "list", "chain", family, table,
                                  chain]).stdout
    return [int(n) for n in re.findall(r"counter packets (\d+)", listing)]


class ConntrackEntry:
    """One line of `conntrack -L`: protocol, and the original and reply
    tuples, each (source, destination, source port, destination port)."""

    def __init__(self, protocol, original, reply):
        self.protocol = protocol
        self.original = original
        self.reply = reply

    def source_translated(self):
        """The plugin's rule: the reply's destination differs from the
        original source (address or port)."""
        return (self.reply[1], self.reply[3]) != \
            (self.original[0], self.original[2])

    def __repr__(self):
        return "%s %s -> reply %s" % (self.protocol, self.original,
                                      self.reply)


def conntrack_output(argv, prefix=()):
    """stdout of `conntrack ARGV...` (it writes its summary to stderr,
    which must not land among the entries)."""
    result = subprocess.run(list(prefix) + ["conntrack"] + list(argv),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if result.returncode != 0:
        fail("conntrack %s failed (%d): %s" % (" ".join(argv),
                                               result.returncode,
                                               result.stderr.strip()))
    return result.stdout


def conntrack_entries(prefix=()):
    """The TCP and UDP entries of `conntrack -L` (both families)."""
    entries = []
    for line in conntrack_output(["-L"], prefix).splitlines():
        words = line.split()
        if not words or words[0] not in ("tcp", "udp"):
            continue
        fields = {"src": [], "dst": [], "sport": [], "dport": []}
        for word in words:
            name, _, value = word.partition("=")
            if name in fields:
                fields[name].append(value)
        check(all(len(values) == 2 for values in fields.values()),
              "conntrack -L line without two tuples: %r" % line)
        tuples = [(fields["src"][i], fields["dst"][i], int(fields["sport"][i]),
                   int(fields["dport"][i])) for i in (0, 1)]
        entries.append(ConntrackEntry(words[0], tuples[0], tuples[1]))
    return entries


def conntrack_stat_sums(prefix=()):
    """`conntrack -S` summed over the CPUs: {"insert_failed": n, ...}."""
    sums = {}
    for line in conntrack_output(["-S"], prefix).splitlines():
        for name, value in re.findall(r"(\w+)=(\d+)", line):
            if name != "cpu":
                sums[name] = sums.get(name, 0) + int(value)
    return sums


def nat_destination_label(protocol, address, port):
    """The plugin_instance of a NAT key: "127.0.0.1:8080", "[::1]:8080",
    "udp:127.0.0.1:5353"."""
    endpoint = ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)
    return ("udp:" if protocol == "udp" else "") + endpoint


def conntrack_nat_usage(entries, port_range):
    """{(destination label, translated source): used} as the plugin counts
    from these entries: the source-translated ones whose translated port
    lies in port_range ((low, high)), per key."""
    usage = {}
    for entry in entries:
        if not entry.source_translated() or \
                not port_range[0] <= entry.reply[3] <= port_range[1]:
            continue
        key = (nat_destination_label(entry.protocol, entry.reply[0],
                                     entry.reply[2]), entry.reply[1])
        usage[key] = usage.get(key, 0) + 1
    return usage


def nat_samples(samples, instance=HOSTNAME):
    """{(destination, source): {"used": (value, ts), "total": ...,
    "usage_ratio": ...}} of the ephemeral_ports_nat series of one host."""
    result = {}
    for name in NAT_METRICS:
        field = name[len("collectd_ephemeral_ports_nat_"):]
        for (key_name, labels), found in samples.items():
            label_map = dict(labels)
            if key_name != name or label_map.get("instance") != instance:
                continue
            check(set(label_map) == {"ephemeral_ports_nat", "type",
                                     "instance"},
                  "unexpected labels on %s: %r" % (name, labels))
            key = (label_map["ephemeral_ports_nat"], label_map["type"])
            result.setdefault(key, {})[field] = found
    return result


def nat_values(samples, instance=HOSTNAME):
    """{(destination, source): (used, total, usage_ratio)}"""
    result = {}
    for key, fields in nat_samples(samples, instance).items():
        check(set(fields) == {"used", "total", "usage_ratio"},
              "NAT key %r has only %r" % (key, sorted(fields)))
        result[key] = tuple(fields[f][0]
                            for f in ("used", "total", "usage_ratio"))
    return result


def expected_nat_values(usage, total):
    """nat_values' form of {key: used} with the pool size total."""
    return {key: (float(used), float(total), format_ratio(used / total))
            for key, used in usage.items()}


def nat_part_samples(samples, instance=HOSTNAME):
    """{"scrape_success": (value, ts), "insert_failed": ..., "drop": ...}:
    the NAT part's scrape_success and the conntrack counters present."""
    found = {"scrape_success": samples.get((SCRAPE_SUCCESS, tuple(sorted(
        {"ephemeral_port_exporter": "nat", "instance": instance}.items()))))}
    for field, name in CONNTRACK_COUNTERS.items():
        found[field] = samples.get((name, (("instance", instance),)))
    return {field: value for field, value in found.items()
            if value is not None}
