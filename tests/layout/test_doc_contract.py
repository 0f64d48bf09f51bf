"""The docs kept true to what ships, by a machine, where a machine can tell.

- Every data source of every type in src/ephemeral_ports.types.db (what the
  plugin dispatches) is named in docs/metrics.md's row of that type and in
  the man page's line for it, so that a new data source cannot ship
  undocumented, nor a removed one stay documented.
- Every alert of contrib/prometheus/ephemeral_ports.rules.yml is named in
  docs/receivers.md, and docs/receivers.md names no alert the rules lack.
- No page claims that the plugin binds a port to probe the kernel (it
  decides from the kernel's release; the claim drifted into README once).

Before looking at the tree, each check runs on a small tree that breaks
it, so that it cannot silently pass.  Needs EP_TOP_DIR (make check sets it;
else ../.. from here).
"""

import os
import re
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_doc_links import pages  # noqa: E402  (README.md and docs/*.md)

EXIT_PASS, EXIT_FAIL = 0, 1
TYPES_DB = "src/ephemeral_ports.types.db"
METRICS = "docs/metrics.md"
MAN_PAGE = "docs/collectd-ephemeral_ports.5"
RULES = "contrib/prometheus/ephemeral_ports.rules.yml"
RECEIVERS = "docs/receivers.md"
ALERT = re.compile(r"^\s*-\s*alert:\s*(\w+)\s*$", re.M)
NAMED_ALERT = re.compile(r"`((?:EphemeralPorts|Collectd|Watched)\w+)`")
PROBE_CLAIM = re.compile(r"\bbinds?\b[^.]{0,80}\b(?:probe|find out)\b", re.I)


def read(top, path):
    with open(os.path.join(top, path)) as handle:
        return handle.read()


def types(top):
    """{type: [data source, ...]} of the shipped types.db."""
    found = {}
    for line in read(top, TYPES_DB).splitlines():
        if line.strip() and not line.startswith("#"):
            name, spec = line.split(None, 1)
            found[name] = [ds.split(":")[0].strip() for ds in spec.split(",")]
    return found


def data_source_problems(top):
    problems = []
    rows = [line for line in read(top, METRICS).splitlines()
            if line.startswith("| `")]
    man = read(top, MAN_PAGE)
    for name, sources in types(top).items():
        row = [r for r in rows if r.split("|")[1].strip().startswith(
            "`%s/%s" % (name, name)) or re.match(
            r"\| `%s-[^/]*/%s" % (name, name), r)]
        cells = " ".join(r.split("|")[1] for r in row)
        man_lines = re.findall(r'^\.BR %s " ([^"(]*)"' % re.escape(name),
                               man, re.M)
        # ".BR type " ds, ds, plugin instance " nat": the names only.
        man_sources = {ds.strip() for text in man_lines
                       for ds in text.split(",")
                       if re.fullmatch(r"\w+", ds.strip())}
        for ds in sources:
            if not re.search(r"`%s`" % re.escape(ds), cells):
                problems.append("%s: %s's data source %s is not in its row"
                                % (METRICS, name, ds))
            if ds not in man_sources:
                problems.append("%s: %s's data source %s is not on its "
                                ".BR line" % (MAN_PAGE, name, ds))
        for ds in man_sources - set(sources):
            problems.append("%s: %s has no data source %s (types.db)"
                            % (MAN_PAGE, name, ds))
    return problems


def alert_problems(top):
    shipped = set(ALERT.findall(read(top, RULES)))
    named = set(NAMED_ALERT.findall(read(top, RECEIVERS)))
    return (["%s: alert %s is not described" % (RECEIVERS, a)
             for a in sorted(shipped - named)]
            + ["%s: names alert %s, which %s lacks" % (RECEIVERS, a, RULES)
               for a in sorted(named - shipped)])


def probe_problems(top):
    problems = []
    for path in pages(top):
        page = read(top, path)
        for match in PROBE_CLAIM.finditer(page):
            text = page[max(0, match.start() - 30):match.end()]
            if not re.search(r"\bnever\b|\bnothing\b|\bnot\b", text, re.I):
                problems.append("%s: claims the plugin binds to probe: %r"
                                % (path, text))
    return problems


def problems_of(top):
    return data_source_problems(top) + alert_problems(top) + probe_problems(
        top)


def write(top, path, text):
    os.makedirs(os.path.dirname(os.path.join(top, path)), exist_ok=True)
    with open(os.path.join(top, path), "w") as handle:
        handle.write(text)


def broken_tree(top):
    """A tree that breaks each rule once."""
    write(top, TYPES_DB, "ephemeral_ports_destination\tused:GAUGE:0:U, "
          "time_wait:GAUGE:0:U\n")
    write(top, METRICS, "| `ephemeral_ports_destination-<r>/"
          "ephemeral_ports_destination-<l>` `used` | x |\n")
    write(top, MAN_PAGE, '.BR ephemeral_ports_destination " used, gone"\n')
    write(top, RULES, "  - alert: EphemeralPortsShipped\n")
    write(top, RECEIVERS, "`EphemeralPortsRemoved` fires.\n")
    write(top, "README.md", "At start the plugin binds a pool port to "
          "probe the kernel.\n")


def main():
    top = os.environ.get("EP_TOP_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with tempfile.TemporaryDirectory() as broken:
        broken_tree(broken)
        found = problems_of(broken)
        expected = 6  # time_wait twice, gone, two alerts, the probe claim
        if len(found) != expected:
            print("FAIL: the checker found %d problems in the broken tree, "
                  "not %d: %r" % (len(found), expected, found))
            return EXIT_FAIL
    found = problems_of(top)
    for problem in found:
        print("FAIL: " + problem)
    if found:
        return EXIT_FAIL
    print("PASS: %d types' data sources documented in %s and %s; %d alerts "
          "in %s; no probe claim" % (len(types(top)), METRICS, MAN_PAGE,
                                     len(ALERT.findall(read(top, RULES))),
                                     RECEIVERS))
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
