"""docs/BENCHMARKS.md's namespace part (netns_bench.py's results)."""

import textwrap

from benchlib import ms
from netns_world import DESTINATIONS, LISTENERS, SLEEPERS_PER_POD

NETNS_HEADER = "## Many network namespaces"
PLUGIN_VS_FLOOR = 1.15
DISCOVERY_SHARE = 0.10
HEAP_PER_NETNS = 4096  # "a few KiB at most"
HEAP_GIVEN_BACK = 4096  # what may stay after every namespace went


def kib(nbytes):
    return "{:,.1f} KiB".format(nbytes / 1024)


def per_pod(phase, key, count):
    return (phase[key] - phase[key + "_own" if key.startswith("floor")
                                else "own"]) / count


def results_table(phases, count):
    node_pods = phases[0].get("node_pods", "-")
    rows = [
        ("plugin, its own namespace only", lambda p: ms(p["own"])),
        ("plugin, %d `NetNamespace`" % count, lambda p: ms(p["list"])),
        ("plugin, `AllNetNamespaces true`", lambda p: ms(p["all"])),
        ("collector alone (heap_driver, `AllNetNamespaces`, no collectd)",
         lambda p: ms(p["collector"]) if "collector" in p else "-"),
        ("floor: the dumps (own namespace + %d)" % count,
         lambda p: ms(p["floor"])),
        ("floor: setns, socket, sysctls and the dumps",
         lambda p: ms(p["floor_all"])),
        ("floor: the dumps without bound-only sockets",
         lambda p: ms(p["floor_no_bound"]["cpu_ns_per_read"])),
        ("floor, own namespace alone: the dumps",
         lambda p: ms(p["floor_own"])),
        ("**plugin / floor** (`NetNamespace`)",
         lambda p: "%.2f" % (p["list"] / p["floor"])),
        ("plugin / floor with setns, socket and sysctls",
         lambda p: "%.2f" % (p["list"] / p["floor_all"])),
        ("**discovery**: `AllNetNamespaces` / `NetNamespace` - 1",
         lambda p: "%+.1f%%" % (100 * (p["all"] / p["list"] - 1))),
        ("per pod: plugin (`AllNetNamespaces`, own namespace subtracted)",
         lambda p: ms(per_pod(p, "all", count))),
        ("per pod: floor dumps",
         lambda p: ms(per_pod(p, "floor", count))),
        ("whole collectd (all threads, idle subtracted): own / list / all",
         lambda p: " / ".join(ms(p[k + "_process"])
                              for k in ("own", "list", "all"))),
        ("collectd VmRSS (KiB): own / list / all",
         lambda p: " / ".join("{:,}".format(p[k + "_rss_kib"])
                              for k in ("own", "list", "all"))),
        ("collectd VmHWM, its peak (KiB): own / list / all",
         lambda p: " / ".join("{:,}".format(p[k + "_hwm_kib"])
                              for k in ("own", "list", "all"))),
        ("TCP sockets in the kernel, every namespace's (slabinfo)",
         lambda p: "{:,}".format(p["tcp_sockets"])),
        ("node of %s pods: plugin, `AllNetNamespaces true`" % node_pods,
         lambda p: ms(p["node_all"]) if "node_all" in p else "-"),
        ("node of %s pods: floor, the dumps" % node_pods,
         lambda p: ms(p["node_floor"]) if "node_all" in p else "-"),
        ("node of %s pods: plugin / floor" % node_pods,
         lambda p: "%.2f" % (p["node_all"] / p["node_floor"])
         if "node_all" in p else "-"),
        ("node of %s pods: TCP sockets in the kernel" % node_pods,
         lambda p: "{:,}".format(p["node_tcp_sockets"])
         if "node_all" in p else "-"),
        ("namespaces a read covered: list / all / node (each checked: "
         "scrape_success 1)",
         lambda p: "%d / %d" % (p["verified"]["list"],
                                p["verified"]["all"])
         + (" / %d" % p["node_verified"] if "node_verified" in p else "")),
        ("pods' `tcp_ehash_entries` (negative: the global table's)",
         lambda p: "{:,}".format(p["pod_ehash_entries"])),
    ]
    lines = ["| CPU per read, ms | " + " | ".join(
        "pods made with `tcp_child_ehash_entries` = %d" % p["child_ehash"]
        for p in phases) + " |", "|---|" + "---:|" * len(phases)]
    for name, cell in rows:
        lines.append("| %s | %s |" % (name, " | ".join(cell(p)
                                                      for p in phases)))
    return "\n".join(lines)


def rounds_table(phases):
    lines = ["| phase | own | list | all | collector | floor dumps "
             "| floor, own alone |", "|---|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        r = p["rounds"]
        cells = [" ".join(ms(m["reader_ns"]) for m in r[k])
                 for k in ("own", "list", "all")]
        cells.append(" ".join(ms(c["cpu_ns"]) for c in r.get("collector", []))
                     or "-")
        cells += [" ".join(ms(f["cpu_ns_per_read"]) for f in r[k])
                  for k in ("floor", "floor_own")]
        lines.append("| tcp_child_ehash_entries %d | %s |"
                     % (p["child_ehash"], " | ".join(cells)))
        if "node_rounds" in p:
            n = p["node_rounds"]
            lines.append("| the same, node of %d pods | - | - | %s | - | %s "
                         "| - |" % (p["node_pods"], " ".join(
                             ms(m["reader_ns"]) for m in n["all"]),
                             " ".join(ms(f["cpu_ns_per_read"])
                                      for f in n["floor"])))
    return "\n".join(lines)


def split_table(phases):
    """Where a read with AllNetNamespaces spends its CPU, from the
    differences between the readers measured."""
    if any("collector" not in p for p in phases):
        return "(Without the heap driver the split is not measured.)"
    rows = [
        ("the kernel's walks for the dumps, bound-only sockets left out",
         lambda p: p["floor_no_bound"]["cpu_ns_per_read"]),
        ("the kernel's walks of its bind table (bound-only sockets)",
         lambda p: p["floor"] - p["floor_no_bound"]["cpu_ns_per_read"]),
        ("setns, socket and sysctls per namespace",
         lambda p: p["floor_all"] - p["floor"]),
        ("the collector's own work, discovery included",
         lambda p: p["collector"] - p["floor_all"]),
        ("collectd: the glue and dispatching the values",
         lambda p: p["all"] - p["collector"]),
        ("**the read** (`AllNetNamespaces`, read thread)",
         lambda p: p["all"]),
    ]
    lines = ["| ms per read | " + " | ".join(
        "tcp_child_ehash_entries %d" % p["child_ehash"] for p in phases)
        + " |", "|---|" + "---:|" * len(phases)]
    for name, value in rows:
        lines.append("| %s | %s |" % (name, " | ".join(
            "%s (%.0f%%)" % (ms(value(p)), 100 * value(p) / p["all"])
            for p in phases)))
    return "\n".join(lines)


def heap_table(phases, count, reads):
    lines = ["| phase | 0 pods | %d pods | 0 pods again | per pod |" % count,
             "|---|---:|---:|---:|---:|"]
    for p in phases:
        if "heap_before" not in p:
            continue
        b, n, a = p["heap_before"], p["heap_pods"], p["heap_after"]
        lines.append("| tcp_child_ehash_entries %d: heap in use | %s | %s "
                     "| %s | %s |" % (p["child_ehash"], kib(b["inuse"]),
                                      kib(n["inuse"]), kib(a["inuse"]),
                                      kib((n["inuse"] - b["inuse"]) / count)))
        lines.append("| descriptors open between reads | %d | %d | %d | |"
                     % (b["fds"], n["fds"], a["fds"]))
        lines.append("| readings per read (failed) | %d (%d) | %d (%d) "
                     "| %d (%d) | |" % (b["targets"], b["failed"],
                                        n["targets"], n["failed"],
                                        a["targets"], a["failed"]))
        lines.append("| WARNINGs and ERRORs logged in the %d reads | %d | %d "
                     "| %d | |" % (reads, b["logged"], n["logged"],
                                   a["logged"]))
    return "\n".join(lines) if len(lines) > 2 else None


def heap_figures(phase):
    return tuple(phase[k]["inuse"] for k in ("heap_before", "heap_pods",
                                             "heap_after"))


def targets_table(phases, count):
    rows = []
    for p in phases:
        what = " (tcp_child_ehash_entries %d)" % p["child_ehash"]
        ratio = p["list"] / p["floor"]
        rows.append(("plugin <= %.2f x floor%s" % (PLUGIN_VS_FLOOR, what),
                     "%.2f (%s / %s ms)" % (ratio, ms(p["list"]),
                                            ms(p["floor"])),
                     ratio <= PLUGIN_VS_FLOOR))
        share = p["all"] / p["list"] - 1
        rows.append(("discovery adds <= %d%%%s" % (100 * DISCOVERY_SHARE,
                                                   what),
                     "%+.1f%% (%s / %s ms)" % (100 * share, ms(p["all"]),
                                               ms(p["list"])),
                     share <= DISCOVERY_SHARE))
    heaps = [p for p in phases if "heap_before" in p]
    for p in heaps:
        b, n, _ = heap_figures(p)
        rows.append(("heap <= %s per namespace (tcp_child_ehash_entries %d)"
                     % (kib(HEAP_PER_NETNS), p["child_ehash"]),
                     kib((n - b) / count), (n - b) / count <= HEAP_PER_NETNS))
    if heaps:
        # The last cycle of pods: what the first read of any other
        # namespace allocates once is in its "before" already.
        b, _, a = heap_figures(heaps[-1])
        rows.append(("heap given back when the pods go (cycle %d of pods)"
                     % len(heaps), "%s after, %s before" % (kib(a), kib(b)),
                     a - b <= HEAP_GIVEN_BACK))
        fds = [p[k]["fds"] for p in heaps
               for k in ("heap_before", "heap_pods", "heap_after")]
        rows.append(("descriptors held between reads do not grow with the "
                     "pods", " / ".join(str(f) for f in fds),
                     max(fds) == min(fds)))
    lines = ["| target (%d pods) | figure | result |" % count,
             "|---|---:|---|"]
    for name, figure, ok in rows:
        lines.append("| %s | %s | %s |" % (name, figure,
                                            "PASS" if ok else "MISS"))
    return "\n".join(lines)


def heap_note(phases):
    heaps = [p for p in phases if "heap_before" in p]
    if len(heaps) < 2:
        return ""
    first = heaps[0]["heap_after"]["inuse"] - heaps[0]["heap_before"]["inuse"]
    later = [p["heap_after"]["inuse"] - p["heap_before"]["inuse"]
             for p in heaps[1:]]
    return ("The first cycle of pods leaves %s on the heap, the next %s: "
            "allocated once, by the first read of another namespace, not "
            "per namespace." % (kib(first), " and ".join(kib(x)
                                                          for x in later)))


def node_cost(p, count):
    """(pods, ms of CPU per read, ms per namespace) of the node measured
    at NODE_PODS pods, else estimated from COUNT pods (marked "about")."""
    if "node_all" in p:
        return p["node_pods"], p["node_all"], p["node_all"] / (
            p["node_pods"] + 1)
    pods = 100
    return pods, p["own"] + pods * per_pod(p, "all", count), None


def operators_text(phases, count, sockets):
    """What a node with 100 pods costs per read, either way."""
    shared = phases[0]
    pods, total, one = node_cost(shared, count)
    para = (
        "**For operators.** A node with {pods} pods of {sockets} sockets "
        "each costs {total} ms of CPU per read with `AllNetNamespaces "
        "true` here, {pct:.1f}% of one core at collectd's default 10 s "
        "interval. Each namespace's dumps walk the kernel's whole shared "
        "established table, {buckets:,} buckets and every socket in it "
        "whichever namespace it belongs to, so a pod costs more the more "
        "sockets the whole node holds: {one} ms a namespace with {pods} "
        "pods, {big_one} ms with {count} (about {node_sockets:,} and "
        "{sockets_all:,} TCP sockets in the kernel): the read grows with "
        "pods times sockets."
    ).format(pods=pods, sockets=sockets, total=ms(total),
             pct=100 * total / 1e10,
             buckets=abs(shared["pod_ehash_entries"]),
             one=ms(one) if one else "?",
             big_one=ms(shared["all"] / (count + 1)), count=count,
             node_sockets=shared.get("node_tcp_sockets", 0),
             sockets_all=shared["tcp_sockets"])
    if len(phases) > 1:
        own = phases[1]
        own_pods, own_total, own_one = node_cost(own, count)
        bind = (own["floor"] - own["floor_no_bound"]["cpu_ns_per_read"]) / \
            (count + 1)
        para += (
            " Set `net.ipv4.tcp_child_ehash_entries = {v}` in the node's "
            "own namespace, where the container runtime creates the pods' "
            "namespaces (a file in /etc/sysctl.d, before the pods start), "
            "and every pod created after that gets an established table of "
            "its own: the node with {pods} pods then costs {total} ms per "
            "read, {saved:.0f}% less ({one} ms a namespace, {big_one} ms "
            "with {count} pods). Pods created before keep the global table "
            "until they are recreated. What stays is mostly the kernel's "
            "walk of its bind table for bound-only sockets ({bind} ms a "
            "namespace), which is global whatever the sysctl says. A table "
            "of its own costs the kernel 8 bytes a bucket per pod and never "
            "grows: size it to a pod's connections (a pod with many "
            "thousands wants more buckets)."
        ).format(v=own["child_ehash"], pods=own_pods, total=ms(own_total),
                 saved=100 * (1 - own_total / total),
                 one=ms(own_one) if own_one else "?",
                 big_one=ms(own["all"] / (count + 1)), count=count,
                 bind=ms(bind))
    return textwrap.fill(para, 76)


HEADER_ITEMS = [
    "Date: {date}",
    "Machine: {cpu}, {cores} cores, Linux {kernel}; load average (1, 5, "
    "15 min) {load_before} before the run, {load_after} after: other work "
    "shared the machine",
    "{collectd}; plugin: source tree `{git})",
    "Load: {count} pods, each a network namespace under /run/netns with "
    "{sockets} TCP sockets: {connections} loopback connections from "
    "kernel-chosen ports (the namespace's default range) to {dests} "
    "destinations on 127.0.0.1, plus {listeners} listeners; {per_pod} "
    "processes in each (load generator, its worker, {sleepers} sleepers); "
    "{processes:,} processes in all, collectd among them. collectd runs in "
    "a namespace of its own, the one the pods are created from (a node's "
    "host namespace).",
    "Reproduce: `make bench BENCH_FLAGS=--netns-only` (as root; this run "
    "took {minutes:.1f} minutes); `--netns-count`, `--processes` and "
    "`--child-ehash` change the scenario.",
]

DOC = """{header}

What one read costs when the plugin measures other network namespaces too
(issue 10: containers, pods), measured by `make bench` (tests/bench/,
netns_bench.py). CPU time (user + system) per read, in milliseconds.

{header_items}

### Results

{results}

Medians of {rounds} rounds run own, list, all, collector, floor, floor
alone, own, ... with the same pods; then all but {node_pods} pods go and
the node rounds run all, floor, all, ... "Per pod" is the read with the
pods minus the read of collectd's own namespace alone, over {count}.

{operators}

Where the time of a read goes (differences of the medians above, so a
small share can come out below zero as noise):

{split}

### Targets

{targets}

### Details

Every round (CPU per read, ms; plugin: the read thread):

{rounds_table}

{heap}

{heap_note}

### Method

- **The machine**: run_bench starts netns_bench.py as the first process
  of PID, mount and network namespaces of its own (`unshare --pid --mount
  --net --fork --mount-proc`). /proc then lists exactly the benchmark's
  {processes:,} processes (the other work on the machine is not in the
  plugin's discovery walk), /run/netns is a tmpfs of its own, and when the
  benchmark ends, however it ends, the kernel ends every process in it and
  the pods' namespaces with the mount namespace that names them.
- **The plugin**: collectd with `ReadThreads 1` as in the socket part,
  read thread's CPU per read from schedstat, sampled in the idle gap after
  two reads; interval about five times a read. Three configurations: none
  (collectd's own namespace only), a `NetNamespace` line for each pod, and
  `AllNetNamespaces true` (discovery: /run/netns, /var/run/docker/netns
  and every /proc/PID/ns/net at each read). Before the rounds, a short run
  of each of the last two writes every namespace's `scrape_success`: the
  benchmark stops unless every pod is read, each with 1, and collectd logs
  no ERROR.
- **Floor**: `floor -m netns` (tests/bench/floor_netns.c) reads each
  namespace as the plugin must, holding nothing in it between reads: open
  its path, setns, open a sock_diag socket, read `ip_local_port_range` and
  `ip_local_reserved_ports`, setns back, then the plugin's two dumps over
  that socket (LISTEN only, every port; every other state including
  bound-only, filtered by the kernel to the range; both `TCPDIAG_GETSOCK`,
  one walk for both families), close; collectd's own namespace without
  setns, its socket kept. "The dumps" is the CPU of the dumps alone, the
  floor of the target; the other figure includes everything.
- **Collector and heap**: tests/bench/heap_driver.c runs the plugin's
  collector (`collector_new`/`collector_read`, no collectd) with
  `AllNetNamespaces true`, one process through both phases. In each round
  it makes as many reads as collectd does and reports their CPU (its own
  clock): the read without collectd's glue and dispatching. Around the
  rounds it reports glibc's `mallinfo2()` bytes in use (uordblks + hblkhd)
  after {heap_reads} reads at 0 pods, with the pods, and after they are
  gone, and the descriptors it holds between reads.
- **Where the time goes**: differences between the readers measured in
  the same rounds: the floor without and with bound-only sockets, the
  floor with and without setns, the collector against the whole floor, and
  collectd against the collector.
- **`net.ipv4.tcp_child_ehash_entries`**: the kernel reads it when a
  network namespace is created (clone or unshare with CLONE_NEWNET), from
  the namespace of the task that creates it; the new namespace's own value
  starts at 0, and namespaces created before keep the global table. So the
  benchmark sets it in collectd's namespace, creates the pods from there,
  and puts the old value back at once; the pods' `tcp_ehash_entries`
  (positive: a table of their own) shows it took. The kernel rounds the
  value up to a power of two, and a namespace's table does not grow
  later.
"""


def netns_part(result):
    phases = result["phases"]
    count = result["count"]
    info = result["machine"]
    collectd_version, git = result["versions"]
    heap = heap_table(phases, count, result["heap_reads"])
    heap_text = ("Heap of the collector alone (heap_driver, "
                 "`AllNetNamespaces true`):\n\n" + heap) if heap else \
        "(The heap driver was not run: no `--heap-driver`.)"
    text = {
        "results": results_table(phases, count),
        "targets": targets_table(phases, count),
        "rounds_table": rounds_table(phases),
        "operators": operators_text(phases, count, result["sockets"]),
        "split": split_table(phases),
    }
    facts = dict(
        header=NETNS_HEADER, date=result["date"], cpu=info["cpu"],
        cores=info["cores"], kernel=info["kernel"],
        load_before=result["load_before"], load_after=result["load_after"],
        collectd=collectd_version, git=git, count=count,
        sockets=result["sockets"],
        connections=(result["sockets"] - LISTENERS) // 2,
        dests=DESTINATIONS, listeners=LISTENERS,
        per_pod=2 + SLEEPERS_PER_POD, sleepers=SLEEPERS_PER_POD,
        processes=max(p["processes"] for p in phases),
        minutes=result["minutes"], rounds=result["rounds"], heap=heap_text,
        heap_note=textwrap.fill(heap_note(phases), 76),
        heap_reads=result["heap_reads"],
        node_pods=phases[0].get("node_pods", "-"), **text)
    facts["header_items"] = "\n".join(
        textwrap.fill(item.format(**facts), 76, initial_indent="- ",
                      subsequent_indent="  ", break_on_hyphens=False)
        for item in HEADER_ITEMS)
    doc = DOC.format(**facts)
    for key in ("results", "split", "targets", "operators",
                "rounds_table"):
        print()
        print(text[key])
    if heap:
        print()
        print(heap)
    return doc
