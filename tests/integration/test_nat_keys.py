"""NAT ports from conntrack (issue 12): which entries count, under which
key, and the default range.

What every scenario here shares is in nat_scene.py's docstring.

  not_counted      untranslated flows, an identity `snat to 127.0.0.1` and
                   a DNAT-only flow (output chain `dnat to 127.0.0.1:8083`),
                   all in conntrack -L, beside one SNAT flow: only the SNAT
                   flow's key is reported.
  dnat_snat        DNAT 127.0.0.5:9090 -> 127.0.0.1:8083, then SNAT: counted
                   under the post-DNAT destination, with a direct flow to
                   127.0.0.1:8083 in the same key.
  default_range    no NatPortRange (1024-65535, total 64512) and a rule
                   without ports: nf_nat keeps a unique source port and
                   moves a clashing one within its class (below 1024: into
                   600-1023, from 1024: into 1024-65535); only ports of the
                   range count."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from nat_scene import (  # noqa: E402
    DEFAULT_NAT_RANGE, PORT_RANGE, SNAT_RANGE, key, range_option, run_simple)


NOT_COUNTED_RULES = """
table ip nat {
  chain out {
    type nat hook output priority -100;
    ip daddr 127.0.0.5 tcp dport 9090 dnat to 127.0.0.1:8083
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8086 snat to 127.0.0.1
    ip daddr 127.0.0.1 tcp dport 8080 snat to 127.0.0.3:41000-41004
  }
}
"""


def not_counted():
    def build(flows):
        listeners = {port: flows.listener(port)
                     for port in (8080, 8083, 8085, 8086)}
        for _ in range(2):
            flows.tcp(listeners[8085], "127.0.0.1", 8085)  # no rule
            flows.tcp(listeners[8086], "127.0.0.1", 8086)  # identity SNAT
            flows.tcp(listeners[8083], "127.0.0.5", 9090)  # DNAT only
        flows.tcp(listeners[8080], "127.0.0.1", 8080)      # SNAT

    _, entries = run_simple(NOT_COUNTED_RULES, [range_option(SNAT_RANGE)],
                            SNAT_RANGE, build, {key("127.0.0.1:8080"): 1},
                            "not_counted")
    kinds = sorted((e.original[1], e.original[3], e.reply[0], e.reply[2],
                    e.source_translated()) for e in entries
                   if e.original[3] in (8080, 8085, 8086, 9090))
    h.check_equal(kinds, sorted(
        [("127.0.0.1", 8080, "127.0.0.1", 8080, True)]
        + [("127.0.0.1", 8085, "127.0.0.1", 8085, False)] * 2
        + [("127.0.0.1", 8086, "127.0.0.1", 8086, False)] * 2
        + [("127.0.0.5", 9090, "127.0.0.1", 8083, False)] * 2),
        "conntrack -L: (destination, reply source, translated) of the flows")


DNAT_SNAT_RANGE = (44000, 44004)
DNAT_SNAT_RULES = """
table ip nat {
  chain out {
    type nat hook output priority -100;
    ip daddr 127.0.0.5 tcp dport 9090 dnat to 127.0.0.1:8083
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8083 snat to 127.0.0.3:44000-44004
  }
}
"""


def dnat_snat():
    def build(flows):
        listening = flows.listener(8083)
        for _ in range(3):
            flows.tcp(listening, "127.0.0.5", 9090)
        flows.tcp(listening, "127.0.0.1", 8083)

    _, entries = run_simple(DNAT_SNAT_RULES, [range_option(DNAT_SNAT_RANGE)],
                            DNAT_SNAT_RANGE, build,
                            {key("127.0.0.1:8083"): 4}, "dnat_snat")
    h.check_equal(sorted("%s:%d" % e.original[1::2] for e in entries
                         if e.source_translated()),
                  ["127.0.0.1:8083"] + ["127.0.0.5:9090"] * 3,
                  "original destinations of the translated entries")


# --------------------------------------------------------------------------
# default_range

DEFAULT_RULES = """
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 127.0.0.1 tcp dport 8080 snat to 127.0.0.3
  }
}
"""


def default_range():
    # Two clients from each fixed port, from 127.0.0.1 and 127.0.0.2: both
    # map to 127.0.0.3, so the second must move.
    fixed = [("127.0.0.1", 700), ("127.0.0.2", 700), ("127.0.0.1", 1500),
             ("127.0.0.2", 1500)]

    def build(flows):
        listening = flows.listener(8080)
        for source in fixed:
            flows.tcp(listening, "127.0.0.1", 8080, bind=source)
        for _ in range(2):
            flows.tcp(listening, "127.0.0.1", 8080)  # ports of 40000-40019

    _, entries = run_simple(DEFAULT_RULES, [], DEFAULT_NAT_RANGE, build,
                            {key("127.0.0.1:8080"): 4}, "default_range")
    translated = {(e.original[0], e.original[2]): e.reply[3]
                  for e in entries if e.source_translated()}
    h.check_equal(len(translated), 6, "translated entries")
    for address, port in fixed:
        moved = translated[(address, port)]
        if address == "127.0.0.1":
            h.check_equal(moved, port, "%s:%d kept its port" % (address, port))
            continue
        low, high = (600, 1023) if port < 1024 else (1024, 65535)
        h.check(low <= moved <= high and moved != port,
                "%s:%d clashed and moved to %d, expected %d-%d"
                % (address, port, moved, low, high))
    h.log("default_range: 127.0.0.2:700 moved to %d (600-1023, not counted),"
          " 127.0.0.2:1500 to %d (counted); total 64512"
          % (translated[("127.0.0.2", 700)], translated[("127.0.0.2", 1500)]))


if __name__ == "__main__":
    h.run_scenarios({"not_counted": not_counted, "dnat_snat": dnat_snat,
                     "default_range": default_range},
                    port_range=PORT_RANGE, reserved_ports="")
