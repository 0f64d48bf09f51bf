"""The .deb, built from a clean export and run the way an operator runs it.

Run by `make check-package` (root), not by `make check`: a package build
runs `make check` itself (unit suites only), and this test builds a package.

Outside any namespace: unpacks the `make dist` tarball (EP_DIST_TARBALL) in
a temp dir and builds the package there with `dpkg-buildpackage -us -uc -b`,
in an environment of its own (no MAKEFLAGS or TESTS from the make that runs
this test), checks that the build ran the unit suites and nothing else and
that lintian finds no error or warning, and installs the package with
dpkg -i while a policy-rc.d forbids starting any service. It checks the
installed files by exact path, the conffile, and that `man -w` finds the man
page.

Then, in a network namespace with port range 40000-40019 and 40010 reserved
(pool of 19), it starts the system's /usr/sbin/collectd with a config made
the way Debian's /etc/collectd/collectd.conf is: global settings first and,
at the end, `<Include "/etc/collectd/collectd.conf.d"> Filter "*.conf"`.
It also Includes the packaged write_prometheus example, just as an operator
who copies it into collectd.conf.d would. No PluginDir, no TypesDB: collectd's
compiled-in defaults, so the plugin comes from the package's
/usr/lib/collectd/ephemeral_ports.so, configured by the package's conffile.
(The system's own collectd.conf, when there is one, is not started: it loads
rrdtool and syslog, which would write into /var/lib/collectd and the system
log, and its PIDFile is the service's.)  It opens a listener on 8080 and one
connection to it from an ephemeral port, and asserts the scrape exactly.

Finally it purges the package if it was not installed before, and checks
that every path the package owns is as it was before the test.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))  # tests/: harness/
import harness as h  # noqa: E402

PACKAGE = "collectd-ephemeral-ports"
COLLECTD = "/usr/sbin/collectd"
CONF_D = "/etc/collectd/collectd.conf.d"
CONFFILE = CONF_D + "/ephemeral_ports.conf"
INSTALLED_SO = "/usr/lib/collectd/ephemeral_ports.so"
DOC_DIR = "/usr/share/doc/" + PACKAGE
WRITE_PROMETHEUS_EXAMPLE = DOC_DIR + "/examples/write_prometheus.conf"
MAN_PAGE = "/usr/share/man/man5/collectd-ephemeral_ports.5.gz"
# The pages of docs/ that README.md links to (debian/docs).
USER_DOCS = ("metrics.md", "configuration.md", "cgroups.md", "containers.md",
             "nat.md", "receivers.md", "install.md", "development.md")
DOCS_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "..", "docs")


def installed_doc(name):
    """Where a page of docs/ lands: dh_compress gzips a doc larger than
    4 KiB (`find -size +4k`, which rounds up to whole KiB)."""
    size = os.path.getsize(os.path.join(DOCS_SOURCE, name))
    return "%s/%s%s" % (DOC_DIR, name, ".gz" if (size + 1023) // 1024 > 4
                        else "")


INSTALLED_FILES = {installed_doc(name) for name in USER_DOCS} | {
    CONFFILE,
    INSTALLED_SO,
    "/usr/share/collectd/ephemeral_ports.types.db",
    DOC_DIR + "/README.Debian",
    DOC_DIR + "/README.md.gz",
    DOC_DIR + "/changelog.gz",
    DOC_DIR + "/copyright",
    WRITE_PROMETHEUS_EXAMPLE,
    MAN_PAGE,
}
# Directories the package may create, to check they are gone again.
PACKAGE_DIRECTORIES = (CONF_D, DOC_DIR, DOC_DIR + "/examples",
                       "/usr/share/collectd")
POLICY_RC_D = "/usr/sbin/policy-rc.d"

PORT_RANGE = (40000, 40019)
RESERVED = "40010"
POOL = h.pool_of(PORT_RANGE, RESERVED)
TOTAL = 19
SERVER_PORT = 8080


def log_tail(path, lines=60):
    return "\n".join(h.read_text(path).splitlines()[-lines:])


# --------------------------------------------------------------------------
# Outside the namespace: build, install, purge


def package_preflight():
    """Raises TestSkip when this machine cannot build and install the .deb
    without touching what is already there."""
    if os.geteuid() != 0:
        raise h.TestSkip("needs root to install the package")
    tarball = os.environ.get("EP_DIST_TARBALL")
    if not tarball:
        raise h.TestSkip("EP_DIST_TARBALL is not set: run make check-package")
    if not os.path.isfile(tarball):
        h.fail("EP_DIST_TARBALL=%s does not exist" % tarball)
    for tool in ("dpkg-buildpackage", "dpkg-checkbuilddeps", "lintian",
                 "man"):
        if shutil.which(tool) is None:
            raise h.TestSkip("%s not found (install dpkg-dev, lintian, "
                             "man-db)" % tool)
    if not os.access(COLLECTD, os.X_OK):
        raise h.TestSkip("%s not found: install collectd-core" % COLLECTD)
    status = package_status()
    if status not in ("installed", "not-installed"):
        raise h.TestSkip("%s is in dpkg state %r; purge it first"
                         % (PACKAGE, status))
    if status == "not-installed":
        unowned = [path for path in sorted(INSTALLED_FILES)
                   if os.path.lexists(path)]
        if unowned:
            raise h.TestSkip("files of the package exist but no package owns "
                             "them (make install?); the test would replace "
                             "and then delete them: %s" % " ".join(unowned))
    return tarball


def package_status():
    """dpkg's state of the package: "installed", "not-installed",
    "unpacked", "config-files", ..."""
    result = h.run(["dpkg-query", "-W", "-f=${db:Status-Status}", PACKAGE],
                   check_status=False)
    if result.returncode != 0:
        return "not-installed"  # unknown to dpkg
    return result.stdout.strip()


def build_environment():
    """The build must not see the make that runs this test: its MAKEFLAGS
    (jobserver, TESTS=tests/package/test_deb.py) would reach debian/rules."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "LC_ALL": "C.UTF-8",
            "DEB_BUILD_OPTIONS": "parallel=%d" % (os.cpu_count() or 1)}


def build_deb(tmp, tarball):
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp.path)
    (source_dir,) = [entry.path for entry in os.scandir(tmp.path)
                     if entry.is_dir()]
    env = build_environment()
    result = h.run(["dpkg-checkbuilddeps"], check_status=False,
                   cwd=source_dir, env=env)
    if result.returncode != 0:
        raise h.TestSkip(result.stdout.strip())
    build_log = tmp.join("dpkg-buildpackage.log")
    started = time.monotonic()
    with open(build_log, "w") as output:
        status = subprocess.run(
            ["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=source_dir,
            env=env, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT).returncode
    h.log("dpkg-buildpackage: status %d in %.1f s"
          % (status, time.monotonic() - started))
    if status != 0:
        h.fail("dpkg-buildpackage failed:\n%s" % log_tail(build_log))
    check_build_ran_unit_tests_only(build_log)
    debs = [entry.path for entry in os.scandir(tmp.path)
            if entry.name.startswith(PACKAGE + "_")
            and entry.name.endswith(".deb")]
    h.check_equal(len(debs), 1, "built %s_*.deb files" % PACKAGE)
    h.log("built %s" % os.path.basename(debs[0]))
    check_lintian(debs[0])
    return debs[0], source_dir


def check_lintian(deb):
    """No error or warning; info and pedantic tags are shown in the log."""
    result = h.run(["lintian", "--info", "--display-info", "--pedantic",
                    "--fail-on", "error,warning", deb], check_status=False)
    h.log("lintian: status %d\n%s" % (result.returncode,
                                       result.stdout.strip()))
    h.check_equal(result.returncode, 0, "lintian status")


def check_build_ran_unit_tests_only(build_log):
    ran = [line.split(":", 1)[1].strip()
           for line in h.read_text(build_log).splitlines()
           if line.startswith(("PASS: ", "FAIL: ", "SKIP: ", "ERROR: ",
                               "XFAIL: ", "XPASS: "))]
    h.check(ran, "the package build ran no tests:\n%s" % "\n".join(ran))
    others = [test for test in ran if not test.startswith("tests/unit/")]
    h.check_equal(others, [], "tests other than the unit suites in the "
                              "package build")


class ServicesForbidden:
    """A policy-rc.d that exits 101 for the duration (invoke-rc.d and
    deb-systemd-invoke then start no service), unless one is there already."""

    def __enter__(self):
        self.ours = not os.path.lexists(POLICY_RC_D)
        if self.ours:
            with open(POLICY_RC_D, "w") as handle:
                handle.write("#!/bin/sh\nexit 101\n")
            os.chmod(POLICY_RC_D, 0o755)
        return self

    def __exit__(self, *exc):
        if self.ours:
            os.remove(POLICY_RC_D)
        return False


def dpkg(*args):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with ServicesForbidden():
        return h.run(["dpkg", "--force-confdef", "--force-confold"]
                     + list(args), stdin=subprocess.DEVNULL, env=env)


def path_states():
    return {path: os.path.lexists(path)
            for path in sorted(INSTALLED_FILES) + list(PACKAGE_DIRECTORIES)}


def check_installed_files(source_dir):
    listed = h.run(["dpkg-query", "-L", PACKAGE]).stdout.split()
    files = {path for path in listed if not os.path.isdir(path)}
    h.check_equal(sorted(files), sorted(INSTALLED_FILES),
                  "files installed by %s" % PACKAGE)
    conffiles = h.run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE])
    h.check_equal([line.split()[0] for line in conffiles.stdout.splitlines()
                   if line.strip()], [CONFFILE], "conffiles")
    for installed, source in (
            (CONFFILE, "collectd.conf.d/ephemeral_ports.conf"),
            ("/usr/share/collectd/ephemeral_ports.types.db",
             "src/ephemeral_ports.types.db"),
            (WRITE_PROMETHEUS_EXAMPLE, "contrib/write_prometheus.conf")):
        h.check_equal(h.read_text(installed),
                      h.read_text(os.path.join(source_dir, source)),
                      "%s vs the source's %s" % (installed, source))
    with open(INSTALLED_SO, "rb") as handle:
        h.check_equal(handle.read(4), b"\x7fELF", INSTALLED_SO)
    man = h.run(["man", "-w", "collectd-ephemeral_ports"])
    h.check_equal(man.stdout.strip(), MAN_PAGE, "man -w")
    rendered = subprocess.run(
        ["man", "--warnings", "-P", "cat", "collectd-ephemeral_ports"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    h.check_equal(rendered.stderr, "", "man --warnings")
    h.check("collectd.conf(5)" in rendered.stdout,
            "the man page renders without SEE ALSO collectd.conf(5)")


def note_system_config():
    """What a restart of the service would read (the test does not start it)."""
    main = "/etc/collectd/collectd.conf"
    if not os.path.exists(main):
        h.log("no %s here (collectd-core alone ships none)" % main)
    elif '<Include "%s">' % CONF_D in h.read_text(main):
        h.log("%s includes %s: a restart loads the plugin" % (main, CONF_D))
    else:
        h.log("NOTE: %s does not include %s: the plugin is enabled only "
              "after adding that Include" % (main, CONF_D))


# --------------------------------------------------------------------------
# Inside the namespace: collectd from the installed files


def installed_collectd_config(tmp):
    """Shaped like Debian's collectd.conf: no PluginDir and no TypesDB (the
    compiled-in defaults), conf.d included last."""
    return (h.collectd_base_config(tmp)
            + 'Include "%s"\n' % WRITE_PROMETHEUS_EXAMPLE
            + "\n"
            + '<Include "%s">\n' % CONF_D
            + '  Filter "*.conf"\n'
            + "</Include>\n")


class InstalledCollectd(h.Collectd):
    """The system's collectd with a config of the test's own; plugins and
    types.db from collectd's compiled-in defaults."""

    def __init__(self, tmp):
        self.setup(tmp, installed_collectd_config(tmp))


def mapped_files(pid):
    with open("/proc/%d/maps" % pid) as handle:
        return {line.split()[-1] for line in handle
                if len(line.split()) >= 6}


def installed_package_scenario():
    os.environ["COLLECTD_BIN"] = COLLECTD  # the system's, not a test build
    with h.TempDir() as tmp:
        with InstalledCollectd(tmp) as collectd:
            collectd.start_and_wait_ready()
            h.check(INSTALLED_SO in mapped_files(collectd.process.pid),
                    "collectd did not load %s" % INSTALLED_SO)
            h.check_equal(h.current_pool(), POOL, "namespace pool")
            listening = h.listener(SERVER_PORT)
            connection = h.client(SERVER_PORT)
            accepted = listening.accept()[0]
            try:
                opened_at = time.time()
                samples = h.wait_for_fresh_read(collectd, opened_at)
                h.check(h.local_port(connection) in POOL,
                        "client port %d outside the pool"
                        % h.local_port(connection))
                h.check_pool_values(samples, 1, TOTAL, "installed package")
                h.check_equal(h.ss_pool_ports(POOL),
                              {h.local_port(connection)}, "ss pool ports")
                h.check_equal(h.open_port_values(samples),
                              {SERVER_PORT: 1, h.PROMETHEUS_PORT: 1},
                              "instance_open_ports (ReportOpenPorts default)")
                destinations = h.destination_samples(samples)
                h.check_equal(
                    {key: values["used"][0]
                     for key, values in destinations.items()},
                    {("127.0.0.1:%d" % SERVER_PORT, "127.0.0.1"): 1.0},
                    "per-destination used (TopDestinations default)")
                h.check_equal(h.state_values(samples), {},
                              "state series (ReportStates default false)")
                h.check_equal(
                    h.plugin_log_lines(collectd.log_lines(), "error"), [],
                    "plugin ERROR lines")
            finally:
                for sock in (connection, accepted, listening):
                    h.close_with_reset(sock)


SCENARIOS = {"installed": installed_package_scenario}


def run_scenarios_status():
    # preflight() of the harness checks the plugin the scenario uses.
    os.environ["EP_PLUGIN_SO"] = INSTALLED_SO
    os.environ["COLLECTD_BIN"] = COLLECTD
    try:
        h.run_scenarios(SCENARIOS, port_range=PORT_RANGE,
                        reserved_ports=RESERVED)
    except SystemExit as done:
        return done.code
    return h.EXIT_FAIL


def main():
    if os.environ.get(h.INSIDE_NS_FLAG):
        h.run_scenarios(SCENARIOS, port_range=PORT_RANGE,
                        reserved_ports=RESERVED)
    try:
        tarball = package_preflight()
    except h.TestSkip as skip:
        print("SKIP: %s" % skip)
        return h.EXIT_SKIP
    installed_before = package_status() == "installed"
    before = path_states()
    status = h.EXIT_FAIL
    with h.TempDir(prefix="eptest-deb-") as tmp:
        try:
            deb, source_dir = build_deb(tmp, tarball)
            dpkg("-i", deb)
            h.log("installed %s" % PACKAGE)
            check_installed_files(source_dir)
            note_system_config()
            status = run_scenarios_status()
        except h.TestSkip as skip:
            print("SKIP: %s" % skip)
            status = h.EXIT_SKIP
        except h.TestFailure as failure:
            print("FAIL: %s" % failure)
            status = h.EXIT_FAIL
        finally:
            # Whatever state a failed dpkg -i left it in.
            if not installed_before and \
                    package_status() != "not-installed":
                dpkg("--purge", PACKAGE)
                h.log("purged %s" % PACKAGE)
    if not installed_before:
        after = path_states()
        changed = {path: (before[path], after[path]) for path in before
                   if before[path] != after[path]}
        if changed:
            print("FAIL: paths not as found after the purge "
                  "(existed before, after): %r" % changed)
            status = h.EXIT_FAIL
    return status


if __name__ == "__main__":
    sys.exit(main())
