"""Configuration errors make collectd refuse to start.

`collectd -t` does not run plugin config callbacks, so each bad config is
started for real (`collectd -f -C conf`, with a timeout): collectd must exit
with status 1, and its log or output must hold an ERROR line that names the
option and the offending value.  A good config using every option must start
and serve values (which also proves the harness's config is valid).

Scenario "bad_netns_paths": NetNamespace with a path that does not exist,
a regular file, a namespace of another type (/proc/self/ns/uts), a
directory, a bad path after a good one, and a number; AllNetNamespaces
with a non-boolean.  Each refuses to start the same way, naming the option
and the path or value.

Scenario "bad_top_cgroups": TopCgroups -1, 1001 (above the 1000 maximum),
2.5, "ten" and true: each refuses to start the same way; 0 and 1000 start.

Scenarios "nat_port_range", "top_nat_destinations", "report_nat": the NAT
options' bad values refuse to start the same way; their limits start and
the NAT part reads.

Scenario "netns_names": NetNamespaceName with a malformed regex, an empty
name, an empty regex ("//"), a number, or without AllNetNamespaces true,
and IgnoreSelected with a non-boolean: each refuses to start, and the
plugin's only ERROR line is exactly the one expected (it names the option,
and the value where there is one).  With one `ip netns` namespace made
besides collectd's: "AllNetNamespaces true", NetNamespaceName "/./" and
"IgnoreSelected true" (every name ignored) start and serve collectd's own
namespace alone, under the plain host; NetNamespaceName with that
namespace's name serves exactly the plain host and that one; IgnoreSelected
without NetNamespaceName starts too.
"""

import contextlib
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

EXIT_TIMEOUT_S = 20

# (option lines, option name, offending value as the message shows it;
# None when only the option name is expected, as for an unknown option)
BAD_CONFIGS = [
    (["NoSuchOption 1"], "NoSuchOption", None),
    (["Source \"foo\""], "Source", "foo"),
    (["ReportOpenPorts \"maybe\""], "ReportOpenPorts", "maybe"),
    (["Protocol \"sctp\""], "Protocol", "sctp"),
    (["Protocol 6"], "Protocol", "6"),
    (["TopDestinations -1"], "TopDestinations", "-1"),
    (["TopDestinations 1001"], "TopDestinations", "1001"),
    (["TopDestinations 2.5"], "TopDestinations", "2.5"),
    (["TopDestinations \"ten\""], "TopDestinations", "ten"),
    (["ReportStates \"yes\""], "ReportStates", "yes"),
] + [
    (["%s %s" % (option, text)], option, value)
    for option in ("WatchPort", "IgnorePort")
    for text, value in (("0", "0"), ("70000", "70000"), ('"10-5"', "10-5"),
                        ('"abc"', "abc"), ('"70000"', "70000"),
                        ('"0-5"', "0-5"))
]

# NetNamespace must name a network namespace when collectd starts.
THIS_FILE = os.path.abspath(__file__)  # a regular file
BAD_NETNS_CONFIGS = [
    (['NetNamespace "/nonexistent"'], "NetNamespace", "/nonexistent"),
    (['NetNamespace "%s"' % THIS_FILE], "NetNamespace", THIS_FILE),
    (['NetNamespace "/proc/self/ns/uts"'], "NetNamespace",
     "/proc/self/ns/uts"),
    (['NetNamespace "/proc/self/ns"'], "NetNamespace", "/proc/self/ns"),
    (['NetNamespace "/proc/self/ns/net"', 'NetNamespace "/nonexistent"'],
     "NetNamespace", "/nonexistent"),
    (["NetNamespace 5"], "NetNamespace", "5"),
    (['AllNetNamespaces "maybe"'], "AllNetNamespaces", "maybe"),
]

GOOD_CONFIG = ['Source "auto"', 'ProcRoot "/proc"', "ReportOpenPorts true",
               'WatchPort 22 443 "8000-8010"', "WatchPort 1 65535",
               'IgnorePort 5353 "60000-60100"', 'Protocol "tcp" "udp"',
               "TopDestinations 5", "ReportStates true"]


def mentions_value(line, value):
    """value appears in line as a whole token (0 must not match 40000)."""
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(value),
                     line) is not None


def error_lines(collectd):
    from_log = [line for line in collectd.log_lines() if "[error]" in line]
    from_output = [line for line in collectd.output_text().splitlines()
                   if "error" in line.lower()]
    return from_log + from_output


@contextlib.contextmanager
def refused_at_start(options):
    """Runs collectd with these plugin options to its exit, which must be
    status 1 within EXIT_TIMEOUT_S; yields it and what it ran, for the
    caller's checks of its lines. On a failure, its diagnostics."""
    what = "config %r" % options
    with h.TempDir() as tmp:
        collectd = h.Collectd(tmp, h.plugin_block(options))
        status = collectd.run_to_exit(EXIT_TIMEOUT_S)
        try:
            h.check(status is not None,
                    "%s: collectd still running after %d s"
                    % (what, EXIT_TIMEOUT_S))
            h.check_equal(status, 1, "%s: exit status" % what)
            yield collectd, what
        except h.TestFailure:
            print(collectd.diagnostics(), flush=True)
            raise


def check_bad_config(options, option_name, value):
    with refused_at_start(options) as (collectd, what):
        naming = [line for line in error_lines(collectd)
                  if option_name in line and
                  (value is None or mentions_value(line, value))]
        h.check(naming, "%s: no ERROR line names %s%s"
                % (what, option_name,
                   "" if value is None else " and %r" % value))
        h.log("%s -> exit 1: %s" % (what, naming[0].strip()))


def check_each(cases, check):
    """check(*case) for every case, then one failure naming those that
    failed."""
    failures = []
    for case in cases:
        try:
            check(*case)
        except h.TestFailure as failure:
            h.log("FAIL: %s" % failure)
            failures.append(str(failure))
    if failures:
        h.fail("%d of %d bad configs not rejected as specified:\n  %s"
               % (len(failures), len(cases), "\n  ".join(failures)))


def check_bad_configs(configs):
    check_each(configs, check_bad_config)


def bad_configs():
    check_bad_configs(BAD_CONFIGS)


def bad_netns_paths():
    check_bad_configs(BAD_NETNS_CONFIGS)


def bad_top_cgroups():
    check_bad_configs([(["TopCgroups %s" % text], "TopCgroups", value)
                       for text, value in (("-1", "-1"), ("1001", "1001"),
                                           ("2.5", "2.5"), ('"ten"', "ten"),
                                           ("true", "true"))])
    for limit in (0, 1000):
        with h.TempDir() as tmp:
            block = h.plugin_block(["TopCgroups %d" % limit])
            with h.Collectd(tmp, block) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_fresh_read(collectd, time.time())
                h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 1.0,
                              "TopCgroups %d: %s" % (limit, h.SCRAPE_SUCCESS))
                h.check_equal(h.plugin_log_lines(collectd.log_lines(),
                                                 "error"), [],
                              "TopCgroups %d: plugin ERROR lines" % limit)


def good_config():
    with h.TempDir() as tmp:
        with h.Collectd(tmp, h.plugin_block(GOOD_CONFIG)) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, time.time())
            h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 1.0,
                          h.SCRAPE_SUCCESS)
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "plugin ERROR lines")
            udp_open = {key: sample for key, sample in samples.items()
                        if key[0] == h.OPEN_PORTS and ("type", "udp") in key[1]}
            tcp_samples = {key: sample for key, sample in samples.items()
                           if key not in udp_open}
            ports = h.open_port_values(tcp_samples)
            for port in (22, 443, 1, 65535, 8000, 8010):
                h.check_equal(ports.get(port), 0.0,
                              "watched closed port %d" % port)
            h.check_equal(ports.get(h.PROMETHEUS_PORT), 1.0,
                          "write_prometheus's listener")
            udp_ports = {int(dict(labels)["instance_open"]): value
                         for (_, labels), (value, _) in udp_open.items()}
            h.check_equal(udp_ports.get(22), 0.0, "watched closed UDP port 22")
            h.check_equal(udp_ports.get(5353), None, "ignored UDP port 5353")


# --------------------------------------------------------------------------
# NAT options (issue 12)


def accept_nat(options):
    """collectd starts with these NAT options and the NAT part reads."""
    with h.TempDir() as tmp:
        block = h.plugin_block(["ReportNat true"] + options)
        with h.Collectd(tmp, block) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, time.time())
            h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 1.0,
                          h.SCRAPE_SUCCESS)
            h.check_equal(h.nat_part_samples(samples).get(
                "scrape_success", (None,))[0], 1.0,
                "%r: the NAT part's scrape_success" % options)
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "%r: plugin ERROR lines" % options)
            h.log("%r -> started, NAT part read" % options)


def nat_port_range():
    """NatPortRange "LOW-HIGH": bad text, LOW > HIGH, 0, above 65535 or not
    a string refuse to start; the widest and a one-port range start."""
    check_bad_configs([(["NatPortRange %s" % text], "NatPortRange", value)
                for text, value in (
                    ('"abc"', "abc"), ('"10-5"', "10-5"), ('"0-5"', "0-5"),
                    ('"0"', "0"), ('"1024-70000"', "1024-70000"),
                    ('"70000"', "70000"), ('"1024-"', "1024-"),
                    ('"-5"', "-5"), ('"1024 - 2000"', "1024 - 2000"),
                    ('""', '""'), ("1024", "1024"),
                    ('"1-2" "3-4"', "1-2"))])
    accept_nat(['NatPortRange "1-65535"'])
    accept_nat(['NatPortRange "41000-41000"'])


def top_nat_destinations():
    """TopNatDestinations N: 0..1000, a whole number; 0 and 1000 start."""
    check_bad_configs([(["TopNatDestinations %s" % text], "TopNatDestinations",
                 value)
                for text, value in (("-1", "-1"), ("1001", "1001"),
                                    ("2.5", "2.5"), ('"ten"', "ten"),
                                    ("true", None))])
    accept_nat(["TopNatDestinations 0"])
    accept_nat(["TopNatDestinations 1000"])


def report_nat():
    """ReportNat true|false: anything else refuses to start."""
    check_bad_configs([(['ReportNat "maybe"'], "ReportNat", "maybe"),
                (["ReportNat 1"], "ReportNat", "1")])
    accept_nat([])


# --------------------------------------------------------------------------
# NetNamespaceName and IgnoreSelected

ALL = "AllNetNamespaces true"
NAME_EXPECTED = 'a namespace name or "/regex/"'
# (option lines, the plugin's one ERROR message, after its log prefix)
BAD_NETNS_NAME_CONFIGS = [
    ([ALL, 'NetNamespaceName "/a(/"'],
     'NetNamespaceName: invalid value "/a(/" (expected %s: a malformed '
     'regular expression: Unmatched ( or \\()' % NAME_EXPECTED),
    ([ALL, 'NetNamespaceName "blue" "/x{2,1}/"'],
     'NetNamespaceName: invalid value "/x{2,1}/" (expected %s: a malformed '
     'regular expression: Invalid content of \\{\\})' % NAME_EXPECTED),
    ([ALL, 'NetNamespaceName ""'],
     'NetNamespaceName: invalid value "" (expected %s: an empty name)'
     % NAME_EXPECTED),
    ([ALL, 'NetNamespaceName "//"'],
     'NetNamespaceName: invalid value "//" (expected %s: an empty regular '
     'expression)' % NAME_EXPECTED),
    ([ALL, 'NetNamespaceName "blue" 5'],
     "NetNamespaceName: invalid value 5 (expected %s)" % NAME_EXPECTED),
    (['NetNamespaceName "blue"'],
     "NetNamespaceName selects among the namespaces that AllNetNamespaces "
     "finds, and AllNetNamespaces is not true"),
    (["AllNetNamespaces false", 'NetNamespaceName "/^cni-/"',
      "IgnoreSelected true"],
     "NetNamespaceName selects among the namespaces that AllNetNamespaces "
     "finds, and AllNetNamespaces is not true"),
    (['IgnoreSelected "maybe"'],
     'IgnoreSelected: invalid value "maybe" (expected true or false)'),
    ([ALL, 'NetNamespaceName "blue"', "IgnoreSelected 1"],
     "IgnoreSelected: invalid value 1 (expected true or false)"),
]

LOG_PREFIX_RE = re.compile(r"^\[[^\]]*\] \[error\] ")


def check_exact_error(options, message):
    """collectd exits 1 at start, says the config failed, and the plugin
    logs exactly one ERROR, "ephemeral_ports plugin: " + message."""
    with refused_at_start(options) as (collectd, what):
        h.check("Parsing the config file failed" in collectd.output_text(),
                "%s: collectd did not say the config failed" % what)
        lines = [LOG_PREFIX_RE.sub("", line) for line in
                 h.plugin_log_lines(collectd.log_lines(), "error")]
        h.check_equal(lines, ["ephemeral_ports plugin: " + message],
                      "%s: the plugin's ERROR lines" % what)
        h.log("%s -> exit 1: %s" % (what, lines[0]))


def netns_names():
    check_each(BAD_NETNS_NAME_CONFIGS, check_exact_error)
    # One namespace besides collectd's is surely there to be found.
    name = h.shared_namespace_name("names")
    h.create_shared_namespace(name, (41000, 41009))
    try:
        # "/./" matches every name: with IgnoreSelected true no namespace
        # that AllNetNamespaces finds is read, whatever else this machine
        # runs; an exact name selects that one alone.
        for options, hosts in (
                ([ALL, 'NetNamespaceName "/./"', "IgnoreSelected true"],
                 [h.HOSTNAME]),
                ([ALL, 'NetNamespaceName "%s"' % name],
                 [h.HOSTNAME, h.host_of(name)]),
                (["IgnoreSelected false"], [h.HOSTNAME])):
            accept_netns_names(options, hosts)
    finally:
        h.delete_shared_namespace(name)


def accept_netns_names(options, hosts):
    """collectd starts with these options and serves exactly these hosts,
    each with scrape_success 1."""
    with h.TempDir() as tmp:
        with h.Collectd(tmp, h.plugin_block(options)) as collectd:
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_hosts(collectd, hosts, time.time())
            h.check_equal(sorted(h.hosts_served(samples)), sorted(hosts),
                          "%r: hosts served" % options)
            for host in hosts:
                h.check_equal(
                    h.value_of(h.host_view(samples, host), h.SCRAPE_SUCCESS),
                    1.0, "%r: %s of %s" % (options, h.SCRAPE_SUCCESS, host))
            h.check_equal(h.plugin_log_lines(collectd.log_lines(), "error"),
                          [], "%r: plugin ERROR lines" % options)
            h.log("%r -> started, hosts %s" % (options, ", ".join(hosts)))


# --------------------------------------------------------------------------
# NetNamespaceInterval

INTERVAL_EXPECTED = "seconds, 0 or 0.001..86400"
BAD_NETNS_INTERVAL_CONFIGS = [
    ([ALL, "NetNamespaceInterval -1"],
     "NetNamespaceInterval: invalid value -1 (expected %s)"
     % INTERVAL_EXPECTED),
    ([ALL, "NetNamespaceInterval 0.0005"],
     "NetNamespaceInterval: invalid value 0.0005 (expected %s)"
     % INTERVAL_EXPECTED),
    ([ALL, "NetNamespaceInterval 86401"],
     "NetNamespaceInterval: invalid value 86401 (expected %s)"
     % INTERVAL_EXPECTED),
    ([ALL, 'NetNamespaceInterval "60"'],
     'NetNamespaceInterval: invalid value "60" (expected %s)'
     % INTERVAL_EXPECTED),
    ([ALL, "NetNamespaceInterval 60 120"],
     "NetNamespaceInterval: invalid value 60 (expected %s)"
     % INTERVAL_EXPECTED),
    (["NetNamespaceInterval 60"],
     "NetNamespaceInterval applies to other network namespaces, and "
     "neither NetNamespace nor AllNetNamespaces true names any"),
]


def netns_interval():
    """Bad values are refused exactly; good ones start collectd and say,
    at Interval 1, the interval that applies when it is not the one
    written."""
    check_each(BAD_NETNS_INTERVAL_CONFIGS, check_exact_error)
    for value, severity, said in (
            ("2.5", "info", "NetNamespaceInterval 2.5: other network "
             "namespaces are read every 3 reads, every 3 s"),
            ("0.5", "warning", "NetNamespaceInterval 0.5 is shorter than "
             "the read interval (1 s): other network namespaces are read "
             "at every read"),
            ("3", None, None)):
        options = [ALL, "NetNamespaceInterval %s" % value]
        with h.TempDir() as tmp:
            with h.Collectd(tmp, h.plugin_block(options)) as collectd:
                collectd.start_and_wait_ready()
                h.wait_for_fresh_read(collectd, time.time())
                lines = [re.sub(r"^\[[^\]]*\] ", "", line)
                         for line in collectd.log_lines()
                         if "plugin: NetNamespaceInterval" in line]
                h.check_equal(
                    lines, ["[%s] ephemeral_ports plugin: %s" % (severity,
                                                                 said)]
                    if said else [], "%r: what the plugin says of it"
                    % options)
                h.log("%r -> started: %r" % (options, lines))


if __name__ == "__main__":
    try:
        h.run_scenarios({"bad_configs": bad_configs,
                         "bad_netns_paths": bad_netns_paths,
                         "bad_top_cgroups": bad_top_cgroups,
                         "good_config": good_config,
                         "nat_port_range": nat_port_range,
                         "top_nat_destinations": top_nat_destinations,
                         "report_nat": report_nat,
                         "netns_names": netns_names,
                         "netns_interval": netns_interval})
    finally:
        h.delete_shared_namespaces()
