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
    in_ns = ["ip", "netns", "exec", name]
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
