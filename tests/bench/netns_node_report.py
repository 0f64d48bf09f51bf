"""docs/BENCHMARKS.md's busy-node part (netns_node.py's results): its own
section, between <!-- netns-node:begin --> and <!-- netns-node:end -->."""

import statistics
import textwrap

from netns_world import DESTINATIONS, LISTENERS, SLEEPERS_PER_POD


def median(values):
    return statistics.median(values)


def msf(ns):
    return "{:,.1f}".format(ns / 1e6)


def wrap(text):
    return "\n\n".join(textwrap.fill(p, 76) for p in text.split("\n\n"))


def floor_of(o, key, part):
    return o[key][part]["cpu_ns_per_read"]


def run_figures(run):
    """One collectd run: its reads' CPU (ns), the gauge's (ns), wall (s)."""
    return (run["reader_ns"], [g * 1e9 for g in run["gauge_cpu_s"]],
            run["gauge_wall_s"])


def summarize(phase, cycle):
    rounds = phase["rounds"]
    s = {"name": phase["name"], "child_ehash": phase["child_ehash"],
         "pod_ehash": phase["pod_ehash_entries"],
         "processes": phase["processes"]}
    floors = [o[k] for o in rounds for k in ("floor_a", "floor_b", "floor_c")
              if k in o]
    # In the order they ran: floor_a, b, c of a round.
    s["floor"] = median([f["node"]["cpu_ns_per_read"] for f in floors])
    s["floor_setns"] = median([f["node"]["cpu_ns_all_per_read"]
                               for f in floors])
    s["floor_own"] = median([f["own"]["cpu_ns_per_read"] for f in floors])
    s["floor_sockets"] = floors[0]["node"]["sockets"]
    s["floor_per_pod"] = (s["floor"] - s["floor_own"]) / phase["pods"]
    # The floor of a read under NetNamespaceInterval: the own namespace
    # every read, each pod once a cycle.
    s["floor_cycle"] = s["floor_own"] + (s["floor"] - s["floor_own"]) / cycle
    kernel = [f["tcp_sockets"] for f in floors] + [
        o[k]["tcp_sockets"] for o in rounds for k in ("every", "interval")
        if k in o]
    s["kernel_sockets"] = (min(kernel), max(kernel))
    every = [run_figures(o["every"]) for o in rounds]
    s["every_rounds"] = [median(r) for r, _, _ in every]
    s["every"] = median([x for r, _, _ in every for x in r])
    s["every_gauge"] = median([x for _, g, _ in every for x in g])
    s["every_wall"] = median([x for _, _, w in every for x in w])
    s["every_max"] = max(x for r, _, _ in every for x in r)
    s["every_ratios"] = [
        median(o["every"]["reader_ns"]) /
        ((floor_of(o, "floor_a", "node") + floor_of(o, "floor_b", "node"))
         / 2) for o in rounds]
    s["every_ratio"] = median(s["every_ratios"])
    pairs = [(r, g) for o in rounds for k in ("every", "interval") if k in o
             for r, g in zip(*run_figures(o[k])[:2])]
    s["gauge_vs_reader"] = median([g / r for r, g in pairs])
    s["gauge_minus_reader"] = median([abs(g - r) for r, g in pairs])
    s["floors_in_order"] = [f["node"]["cpu_ns_per_read"] for f in floors]
    s["own_floors_in_order"] = [f["own"]["cpu_ns_per_read"] for f in floors]
    s["namespaces"] = sorted({o[k]["namespaces"] for o in rounds
                              for k in ("every", "interval") if k in o})
    s["infos"] = rounds[0]["every"]["infos"]
    if "interval" in rounds[0]:
        cyc = [run_figures(o["interval"]) for o in rounds]
        # CPU per interval over whole cycles: the mean of the cycle's reads.
        s["interval_rounds"] = [statistics.mean(r) for r, _, _ in cyc]
        s["interval"] = median(s["interval_rounds"])
        s["interval_gauge"] = median([statistics.mean(g) for _, g, _ in cyc])
        s["interval_max"] = max(x for r, _, _ in cyc for x in r)
        s["interval_max_gauge"] = max(x for _, g, _ in cyc for x in g)
        s["interval_min"] = min(x for r, _, _ in cyc for x in r)
        s["interval_reads"] = [r for r, _, _ in cyc]
        s["interval_wall_max"] = max(x for _, _, w in cyc for x in w)
        s["first_read"] = median([o["interval"]["first_read"][1] * 1e9
                                  for o in rounds])
        s["interval_ratio"] = median(
            [statistics.mean(o["interval"]["reader_ns"]) /
             ((floor_of(o, "floor_b", "own") + floor_of(o, "floor_c", "own"))
              / 2 + ((floor_of(o, "floor_b", "node") +
                      floor_of(o, "floor_c", "node")) / 2 -
                     (floor_of(o, "floor_b", "own") +
                      floor_of(o, "floor_c", "own")) / 2) / cycle)
             for o in rounds])
        # What reading a pod costs the plugin: the reads saved per read
        # (every pod every read against once a cycle) over their count.
        s["per_pod"] = ((s["every"] - s["interval"]) /
                        (phase["pods"] * (1 - 1 / cycle)))
    return s


def share(ns, interval):
    return "%.1f%%" % (100 * ns / 1e9 / interval)


def node_part(data):
    node = data["node"]
    cycle, interval = node["cycle"], node["interval"]
    for p in data["phases"]:
        p["pods"] = data["count"]
    ph = [summarize(p, cycle) for p in data["phases"]]
    sh = ph[0]
    own = ph[1] if len(ph) > 1 else None
    m = data["machine"]
    cd_version, git = data["versions"]
    sockets = sockets_per_pod = data["sockets"]
    connections = (sockets - LISTENERS) // 2
    rows = [
        ("CPU per interval: `AllNetNamespaces true` alone (every pod every "
         "read), median read", msf(sh["every"]), share(sh["every"], interval),
         msf(own["every"]) if own else "-",
         share(own["every"], interval) if own else "-"),
        ("CPU per interval: with `NetNamespaceInterval %g` (mean over whole "
         "%d-read cycles)" % (node["netns_interval"], cycle),
         msf(sh["interval"]), share(sh["interval"], interval), "", ""),
        ("the dearest single read of those cycles", msf(sh["interval_max"]),
         share(sh["interval_max"], interval), "", ""),
        ("the first read (meets every pod, reads them all)",
         msf(sh["first_read"]), "", "", ""),
        ("plugin's gauge `read_cpu_seconds`: every read / cycle mean",
         "%s / %s" % (msf(sh["every_gauge"]), msf(sh["interval_gauge"])), "",
         msf(own["every_gauge"]) if own else "-", ""),
        ("plugin's gauge `read_seconds` (wall), every read",
         "{:,.1f}".format(sh["every_wall"] * 1e3), "",
         "{:,.1f}".format(own["every_wall"] * 1e3) if own else "-", ""),
        ("floor: the dumps, own namespace + %d pods" % data["count"],
         msf(sh["floor"]), "", msf(own["floor"]) if own else "-", ""),
        ("floor: the same with setns, socket and sysctls",
         msf(sh["floor_setns"]), "", msf(own["floor_setns"]) if own else "-",
         ""),
        ("floor of a read under NetNamespaceInterval (own + pods / %d)"
         % cycle, msf(sh["floor_cycle"]), "", "", ""),
        ("floor: collectd's own namespace alone", msf(sh["floor_own"]), "",
         msf(own["floor_own"]) if own else "-", ""),
        ("**plugin / floor**: every read; under NetNamespaceInterval",
         "%.2f; %.2f" % (sh["every_ratio"], sh["interval_ratio"]), "",
         "%.2f" % own["every_ratio"] if own else "-", ""),
        ("per pod and read: plugin (from the two settings); floor",
         "%s; %s" % ("%.2f" % (sh["per_pod"] / 1e6),
                     "%.2f" % (sh["floor_per_pod"] / 1e6)), "",
         "-; %.2f" % (own["floor_per_pod"] / 1e6) if own else "-", ""),
        ("gauge `read_cpu_seconds` / schedstat, per read (median)",
         "%.3f" % sh["gauge_vs_reader"], "",
         "%.3f" % own["gauge_vs_reader"] if own else "-", ""),
        ("TCP sockets in the kernel (slabinfo), lowest - highest",
         "{:,} - {:,}".format(*sh["kernel_sockets"]), "",
         "{:,} - {:,}".format(*own["kernel_sockets"]) if own else "-", ""),
        ("pods' `tcp_ehash_entries` (negative: the global table)",
         "{:,}".format(sh["pod_ehash"]), "",
         "{:,}".format(own["pod_ehash"]) if own else "-", ""),
        ("namespaces each run reported, each scrape_success 1",
         "/".join(map(str, sh["namespaces"])), "",
         "/".join(map(str, own["namespaces"])) if own else "-", ""),
    ]
    head = ("| CPU time of collectd's read thread, ms | pods share the "
            "global table | of a core at Interval %g | pods made with "
            "`tcp_child_ehash_entries` %d | of a core |\n"
            "|---|---:|---:|---:|---:|\n" % (interval,
                                             own["child_ehash"] if own
                                             else 0))
    table = head + "\n".join("| %s | %s | %s | %s | %s |" % r for r in rows)

    def rnd(values):
        return " ".join("%.0f" % (v / 1e6) for v in values)

    details = ["- pods share the global table, every read, per round (ms, "
               "median of the round's %d reads): %s; dearest read %s"
               % (node["reads"], rnd(sh["every_rounds"]),
                  msf(sh["every_max"]))]
    for i, reads in enumerate(sh["interval_reads"]):
        details.append("- NetNamespaceInterval, round %d, read by read "
                       "(ms): %s; mean %s" % (i + 1, rnd(reads),
                                             msf(statistics.mean(reads))))
    if own:
        details.append("- pods with tables of their own, every read, per "
                       "round: %s; dearest read %s"
                       % (rnd(own["every_rounds"]), msf(own["every_max"])))
    details.append("- plugin / floor, every read, per round (each against "
                   "the floors just before and after it): %s"
                   % " ".join("%.2f" % r for r in sh["every_ratios"]))
    for p in ph:
        details.append("- floors in the order they ran, %s (ms): own "
                       "namespace + pods %s; own namespace alone %s"
                       % (p["name"], rnd(p["floors_in_order"]),
                          " ".join("%.1f" % (v / 1e6)
                                   for v in p["own_floors_in_order"])))
    drift = []
    for p in ph:
        low, high = min(p["floors_in_order"]), max(p["floors_in_order"])
        kernel = p["kernel_sockets"]
        if kernel[1] > 1.2 * data["count"] * sockets_per_pod:
            drift.append(
                "%s: other work on the machine added up to {:,} TCP "
                "sockets to the kernel during the phase (slabinfo: {:,} - "
                "{:,}); they are in the global tables every shared walk and "
                "every bind-table walk meets".format(
                    kernel[1] - data["count"] * sockets_per_pod, *kernel)
                % p["name"])
        if high > 1.2 * low:
            drift.append("%s: the floor drifted from %s to %s ms within the "
                         "phase" % (p["name"], msf(low), msf(high)))
    if drift:
        details.append("- drift: " + "; ".join(drift) + ". Ratios are "
                       "taken against the floors measured just before and "
                       "after each run.")
    saved = 1 - sh["interval"] / sh["every"]
    own_saved = 1 - own["every"] / sh["every"] if own else 0
    reading = """\
**Reading.** With `AllNetNamespaces true` alone, every read walks the
kernel's shared socket tables once per pod, and each walk meets every one
of the node's {kernel:,} sockets: {every} ms of CPU per read, {every_share}
of a core at Interval {interval:g} ({per_pod:.2f} ms a pod). With
`NetNamespaceInterval {nni:g}` each pod is read once per {cycle}-read
cycle, in a slot of its own: {cyc} ms per interval on average over whole
cycles ({cyc_share} of a core), {saved:.0%} less; the dearest read of a
cycle costs {cmax} ms, so the cost is spread rather than bunched. What
remains each read is collectd's own namespace ({own_floor} ms of
dumps at the floor) and 1/{cycle} of the pods; the per-pod cost itself is
unchanged (a pod's read still walks the whole shared table), so the
saving is the pods' part times {skipped}: {expected} ms a read expected
from the every-read figure, {cyc} measured. Only the first read, which
meets every pod, reads them all at once ({first} ms).

Pods created after `net.ipv4.tcp_child_ehash_entries = {ce}` has been set
in the node's namespace get an established table of their own: the same
node then costs {own_every} ms per read with every pod every read
({own_saved:.0%} less than sharing the table), {own_pp:.2f} ms a pod at
the floor against {sh_pp:.2f}; what stays per pod is mostly the kernel's
walk of its bind table for bound-only sockets (as [Many network
namespaces](#many-network-namespaces) measured), which stays global and so
grows with every socket on the node. The two
combine (not measured; the own-tables read with its pods' part divided by
the cycle): about {ce_nni} ms per interval.

The plugin's own gauge (`collectd_ephemeral_port_exporter_read_cpu_seconds`,
CLOCK_THREAD_CPUTIME_ID from the collector's start to its end) agrees with
the scheduler's count for the read thread (`schedstat`, the whole read
callback) within {gauge_diff} ms a read (median; the median ratio
{gauge:.3f}): what the gauge leaves out is the glue around the collector
and its own dispatch, so an operator can take the gauge for the read's
cost. Its wall-clock twin `read_seconds` was {wall_pct:+.0%} on the CPU
time for a read of every pod ({wall} against {every} ms): the read thread
waiting for a core that other work held.
""".format(kernel=sh["kernel_sockets"][1], every=msf(sh["every"]),
           every_share=share(sh["every"], interval), interval=interval,
           per_pod=sh["per_pod"] / 1e6, nni=node["netns_interval"],
           cycle=cycle, cyc=msf(sh["interval"]),
           skipped="%d/%d" % (cycle - 1, cycle),
           expected=msf(sh["floor_own"] + (sh["every"] - sh["floor_own"]) /
                        cycle),
           cyc_share=share(sh["interval"], interval), saved=saved,
           cmax=msf(sh["interval_max"]), own_floor=msf(sh["floor_own"]),
           first=msf(sh["first_read"]),
           ce=own["child_ehash"] if own else 0,
           own_every=msf(own["every"]) if own else "-",
           own_saved=own_saved,
           own_pp=own["floor_per_pod"] / 1e6 if own else 0,
           sh_pp=sh["floor_per_pod"] / 1e6,
           ce_nni=msf(own["floor_own"] + (own["every"] - own["floor_own"]) /
                      cycle) if own else "-",
           gauge=sh["gauge_vs_reader"],
           gauge_diff="%.3f" % (sh["gauge_minus_reader"] / 1e6),
           wall="{:,.1f}".format(sh["every_wall"] * 1e3),
           wall_pct=sh["every_wall"] * 1e9 / sh["every"] - 1)
    header = [
        "Date: %s; this run took %.1f minutes" % (data["date"],
                                                  data["minutes"]),
        "Machine: %s, %d cores, Linux %s; load average (1, 5, 15 min) %s "
        "before the run, %s after (2 cores shared with other engineers' "
        "integration tests)" % (m["cpu"], m["cores"], m["kernel"],
                                data["load_before"], data["load_after"]),
        "%s; plugin: source tree `%s)" % (cd_version, git),
        "Load: %d pods, each a network namespace under /run/netns (`ip netns "
        "add`) with %d TCP sockets: %d loopback connections from "
        "kernel-chosen ports to %d destinations on 127.0.0.1 (both ends), "
        "plus %d listeners, held by its own load generator; %d sleepers in "
        "each; %s processes in all. %s TCP sockets in the pods; collectd "
        "runs in the namespace the pods are created from (the node's host "
        "namespace)." % (data["count"], sockets, connections, DESTINATIONS,
                         LISTENERS, SLEEPERS_PER_POD,
                         "{:,}".format(sh["processes"]),
                         "{:,}".format(data["count"] * sockets)),
        "collectd: `Interval %g`, `ReadThreads 1`, `<Plugin "
        "ephemeral_ports>` with `AllNetNamespaces true`, and for (b) "
        "`NetNamespaceInterval %g` (every pod read every %d reads). %s"
        % (interval, node["netns_interval"], cycle,
           "collectd's default interval, not shortened: a read of every pod "
           "takes seconds here, and the read-by-read measurement needs the "
           "read thread idle between reads." if interval == 10 else
           "A shorter interval than collectd's default 10 s, with the same "
           "%d-read cycle: the CPU of a read does not depend on the "
           "interval, only its share of a core does (given here for this "
           "interval)." % cycle),
        "Reproduce: `make bench-node` (root), that is `tests/bench/run_bench "
        "--netns-only --netns-interval %g --node-interval %g --netns-count "
        "%d --netns-sockets %d ...` (`tests/bench/run_bench --help`)."
        % (node["netns_interval"], interval, data["count"], sockets),
    ]
    method = """\
- **Rounds**: %d rounds of floor, (a) every read, floor, (b)
  NetNamespaceInterval, floor with the same pods; then the pods go, are
  made again with `tcp_child_ehash_entries` set, and %d rounds of floor,
  (a), floor. (a) is measured over %d reads after %d start-up reads; (b)
  over %d whole cycles (%d reads) after its first %d reads (the first
  reads every pod).
- **CPU per read**: the scheduler's `sum_exec_runtime` of collectd's one
  read thread (`/proc/PID/task/TID/schedstat`), sampled when the thread is
  still just after each read, whose end is the plugin's cost gauge (the
  last value it dispatches) reaching the csv plugin: read by read, the read
  callback and its dispatches included. Beside it, that read's own gauge.
- **Floor**: `floor -m netns` (tests/bench/floor_netns.c) over collectd's
  namespace and the %d pods, as in [Many network
  namespaces](#many-network-namespaces): per namespace the plugin's two
  dumps, the cheapest that give the same answer; with setns, a socket and
  the sysctls in the second figure. The floor of a read under
  NetNamespaceInterval is computed: the own namespace plus the pods' part
  over the cycle.
- **Every pod was read**: each collectd run writes every namespace's
  `scrape_success`; the run fails unless all %d namespaces were read, each
  with 1, and collectd logged no ERROR.
""" % (data["phases"][0]["rounds"].__len__(),
       len(data["phases"][1]["rounds"]) if own else 0, node["reads"],
       node["skip_every"], node["cycles"], node["cycles"] * cycle,
       node["skip_interval"], data["count"], data["count"] + 1)
    text = "## A busy node: 200 pods, 100,000 sockets (issue 19, item 6)\n\n"
    text = text.replace("200", "{:,}".format(data["count"]), 1).replace(
        "100,000", "{:,}".format(data["count"] * sockets), 1)
    text += wrap(
        "What `AllNetNamespaces true` costs a Kubernetes-like node per "
        "collectd interval, every pod read every interval (the default) "
        "against `NetNamespaceInterval`, measured by `make bench-node` "
        "(tests/bench/netns_node.py, run by run_bench; this section only). "
        "CPU time (user + system) of collectd's read thread per read, in "
        "milliseconds, and as a share of one core.") + "\n\n"
    text += "\n".join("- " + h for h in header) + "\n\n"
    text += table + "\n\n"
    text += "\n".join(details) + "\n\n"
    text += wrap(reading.strip()) + "\n\n"
    text += method
    return text
