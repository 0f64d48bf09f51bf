"""The cgroups a scenario makes: the cgroup2 mount as mountinfo says, groups
made under <mount>/ept-test-<script pid>/ (or at the top, in a ledger), and
their removal, whatever still runs in them.
"""

import contextlib
import os
import re
import signal
import tempfile
import time

from .base import TestSkip, check, check_equal, fail, log, read_text

__all__ = ["cgroup2_mount", "cgroup_of", "cgroup_ledger",
           "remove_test_cgroups", "cgroup_id", "TestCgroups"]


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
