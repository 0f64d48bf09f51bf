"""The test's own rules: exit statuses, checks that fail a scenario, the
environment the automake harness sets, logging, commands, temp dirs.
"""

import os
import shutil
import subprocess
import tempfile
import time

__all__ = ["EXIT_PASS", "EXIT_FAIL", "EXIT_SKIP", "PYTHON", "HOSTNAME",
           "TestFailure", "TestSkip", "fail", "check", "check_equal",
           "plugin_so_path", "collectd_bin", "stock_plugin_dir", "log", "run",
           "TempDir", "write_file_atomically", "read_text"]


EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_SKIP = 77

PYTHON = "/usr/bin/python3"


HOSTNAME = "eptest"


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


def run(argv, check_status=True, **kwargs):
    result = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)
    if check_status and result.returncode != 0:
        fail("%s failed (%d): %s" % (" ".join(argv), result.returncode,
                                     result.stdout.strip()))
    return result


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


def read_text(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""
