"""Running collectd: its configuration, the built plugin and the stock ones
copied beside it, the foreground process and its log; other daemons the
tests start (receivers).
"""

import os
import re
import shutil
import subprocess
import time

from .base import (HOSTNAME, collectd_bin, fail, plugin_so_path, read_text,
                   stock_plugin_dir)
from .prometheus import (PROMETHEUS_PORT, close_with_reset,
                         connect_from_fixed_port, scrape)

__all__ = ["NO_EXPIRY", "plugin_block", "collectd_base_config",
           "collectd_config", "copy_plugins", "SANITIZER_REPORT",
           "sanitizer_report", "ForegroundProcess", "Collectd", "Daemon",
           "plugin_log_lines"]


# extra_config for h.Collectd: collectd never expires a value (its Timeout
# is 2 intervals by default), so write_prometheus keeps serving a value
# that a read dispatched once.
NO_EXPIRY = "Timeout 3600\n"


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


def plugin_log_lines(lines, severity):
    """The log lines of the plugin (containing "ephemeral_ports plugin:")
    with the given severity ("error", "warning", "info", ...)."""
    tag = "[%s]" % severity
    return [line for line in lines
            if tag in line and "ephemeral_ports plugin:" in line]
