"""Network namespaces and the scenarios run in them.

A test script calls run_scenarios() with its scenarios.  Each scenario runs in
a network namespace of its own: the script (outside, as root) creates the
namespace, sets the port sysctls in it, and re-executes itself inside it with
`ip netns exec NS /usr/bin/python3 <script> <scenario>`.  Inside, the scenario
function makes its sockets, starts collectd (which inherits the namespace),
scrapes write_prometheus over 127.0.0.1 and compares with `ss`.  Outside, the
namespace is deleted and anything left running in it is killed, whatever
happened inside.

More namespaces, made from inside a scenario (issue 10): a scenario runs in
`ip netns exec`'s mount namespace, where a new /run/netns bind mount would
stay private (outside, only an empty file would show).  So these are added
in the mount namespace of the script outside, the scenario's parent, and
reach the scenario's by propagation.  They are named after that script's
pid, so that it can delete whatever a scenario left behind.

Scenarios that see the cgroup2 mount (issue 11): `ip netns exec` runs a
scenario in a mount namespace of its own with a fresh /sys, which hides
every cgroup mount.  run_scenarios_seeing_cgroups enters each scenario's
namespace with `nsenter --net=/run/netns/NAME` instead: only the network
namespace is the scenario's, the mounts are the script's (/proc/net and
/proc/sys/net follow the reader's network namespace, so ss and sysctl see
the scenario's as before).  The script (nsenter execs, so it is the
scenario's parent) removes after each scenario every cgroup it made.
"""

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

from .base import (EXIT_FAIL, EXIT_PASS, EXIT_SKIP, PYTHON, TestFailure,
                   TestSkip, collectd_bin, fail, log, plugin_so_path, run,
                   stock_plugin_dir)
from .cgroups import cgroup2_mount, remove_test_cgroups

__all__ = ["INSIDE_NS_FLAG", "NETNS_NAME_VAR", "SCENARIO_TIMEOUT_S",
           "preflight", "create_namespace", "configure_namespace",
           "kill_namespace_processes", "delete_namespace", "namespace_name",
           "run_scenario_in_namespace", "run_inside", "run_scenarios",
           "CLONE_NEWNET", "CLONE_NEWUTS", "outer_mount_namespace",
           "shared_namespace_name", "create_shared_namespace",
           "delete_shared_namespace", "delete_shared_namespaces",
           "in_network_namespace", "namespace_inode",
           "run_scenarios_seeing_cgroups", "create_visible_namespace"]


INSIDE_NS_FLAG = "EP_TEST_INSIDE_NETNS"
NETNS_NAME_VAR = "EP_TEST_NETNS"


SCENARIO_TIMEOUT_S = 120


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
    # TIME_WAIT reuse off (Linux's default, 2, takes over loopback TIME_WAIT
    # ports after a second): a test's TIME_WAIT sockets then hold their
    # ports against connect() whatever their age, as ss shows them.
    # test_tw_reuse.py sets it per scenario.
    run(in_ns + ["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=0"])


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
