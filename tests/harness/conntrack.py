"""The truth from conntrack and nftables, for the NAT tests: rules loaded
with nft, the conntrack table and its statistics, and the NAT usage the
plugin should count from them.
"""

import re
import shutil
import subprocess

from .base import TestSkip, check, fail, run
from .series import nat_destination_label

__all__ = ["NAT_TOOLS", "require_nat_tools", "nft_load", "nft_counters",
           "ConntrackEntry", "conntrack_output", "conntrack_entries",
           "conntrack_stat_sums", "conntrack_nat_usage"]


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
