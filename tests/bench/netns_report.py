"""docs/BENCHMARKS.md's namespace part (netns_bench.py's results)."""

import datetime

from benchlib import machine, ms, versions
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
    rows = [
        ("plugin, its own namespace only", lambda p: ms(p["own"])),
        ("plugin, %d `NetNamespace`" % count, lambda p: ms(p["list"])),
        ("plugin, `AllNetNamespaces true`", lambda p: ms(p["all"])),
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
        ("namespaces each read covered (checked: every one scrape_success 1)",
         lambda p: "%d / %d" % (p["verified"]["list"],
                                p["verified"]["all"])),
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
    lines = ["| phase | own | list | all | floor dumps | floor, own alone |",
             "|---|---:|---:|---:|---:|---:|"]
    for p in phases:
        r = p["rounds"]
        lines.append("| tcp_child_ehash_entries %d | %s |" % (
            p["child_ehash"], " | ".join(
                " ".join(ms(m["reader_ns"]) for m in r[k])
                for k in ("own", "list", "all")) + " | " + " | ".join(
                " ".join(ms(f["cpu_ns_per_read"]) for f in r[k])
                for k in ("floor", "floor_own"))))
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
        if "heap_before" in p:
            b, n, a = (p[k]["inuse"] for k in ("heap_before", "heap_pods",
                                               "heap_after"))
            rows.append(("heap <= %s per namespace%s" % (
                kib(HEAP_PER_NETNS), what), kib((n - b) / count),
                (n - b) / count <= HEAP_PER_NETNS))
            rows.append(("heap given back when the namespaces go%s" % what,
                         "%s after, %s before" % (kib(a), kib(b)),
                         a - b <= HEAP_GIVEN_BACK))
    cycles = [p["heap_after"]["inuse"] for p in phases if "heap_after" in p]
    if len(cycles) > 1:
        rows.append(("nothing stays behind from cycle to cycle of pods",
                     " / ".join(kib(c) for c in cycles) + " after each",
                     max(cycles) - min(cycles) <= HEAP_GIVEN_BACK))
    lines = ["| target (%d pods) | figure | result |" % count,
             "|---|---:|---|"]
    for name, figure, ok in rows:
        lines.append("| %s | %s | %s |" % (name, figure,
                                            "PASS" if ok else "MISS"))
    return "\n".join(lines)


def operators_text(phases, count):
    """What a node with 100 pods costs per read, either way."""
    text = []
    pods = 100
    for p in phases:
        one = per_pod(p, "all", count)
        total = p["own"] + pods * one
        text.append((p["child_ehash"], one, total))
    shared = text[0]
    para = (
        "**For operators.** With `AllNetNamespaces true`, every pod's "
        "namespace costs a read about {one} ms of CPU here, because each "
        "namespace's dumps walk the kernel's whole established table, "
        "whoever's sockets are in it. A node with {pods} pods therefore "
        "costs about {total} ms of CPU per read ({pct:.1f}% of one core at "
        "a 10 s interval)."
    ).format(one=ms(shared[1]), pods=pods, total=ms(shared[2]),
             pct=100 * shared[2] / 1e10)
    if len(text) > 1:
        own = text[1]
        para += (
            " With `net.ipv4.tcp_child_ehash_entries = {v}` set in the "
            "node's own namespace (where the container runtime creates the "
            "pods' namespaces: /etc/sysctl.d, before the pods start) every "
            "new pod gets an established table of its own; a pod then costs "
            "{one} ms and the node with {pods} pods {total} ms per read: "
            "the sysctl saves {saved:.0f}% of the read. Pods created "
            "before it was set keep sharing the global table until they "
            "are recreated. The kernel keeps its bind and listening tables "
            "global either way (the dumps without bound-only sockets above "
            "show what the bind table's walk costs), and each table of its "
            "own costs the kernel {v} buckets of 8 bytes per namespace."
        ).format(v=own[0], one=ms(own[1]), pods=pods, total=ms(own[2]),
                 saved=100 * (1 - own[2] / shared[2]))
    return para


DOC = """{header}

What one read costs when the plugin measures other network namespaces too
(issue 10: containers, pods), measured by `make bench` (tests/bench/,
netns_bench.py). CPU time (user + system) per read, in milliseconds.

- Date: {date}
- Machine: {cpu}, {cores} cores, Linux {kernel}; load average {load_before}
  before, {load_after} after (other work shared the machine)
- {collectd}; plugin: source tree `{git})
- Load: {count} pods, each a network namespace under /run/netns with
  {sockets} TCP sockets: {connections} loopback connections from
  kernel-chosen ports (the namespace's default range) to {dests}
  destinations on 127.0.0.1, plus {listeners} listeners; {per_pod}
  processes in each (load generator, its worker, {sleepers} sleepers);
  {processes:,} processes in all, collectd among them. collectd runs in a
  namespace of its own, the one the pods are created from (a node's host
  namespace).
- Reproduce: `make bench BENCH_FLAGS=--netns-only` (as root; this run took
  {minutes:.1f} minutes); `--netns-count`, `--processes`, `--child-ehash`
  change the scenario.

### Results

{results}

Medians of {rounds} rounds run own, list, all, floor, floor alone, own,
... with the same pods. "Per pod" is the read with the pods minus the read
of collectd's own namespace alone, over {count}.

{operators}

### Targets

{targets}

### Details

Every round (CPU per read, ms; plugin: the read thread):

{rounds_table}

{heap}

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
- **Heap**: tests/bench/heap_driver.c runs the plugin's collector
  (`collector_new`/`collector_read`, no collectd) with `AllNetNamespaces
  true` and reports glibc's `mallinfo2()` bytes in use (uordblks + hblkhd)
  after {heap_reads} reads at 0 pods, with the pods, and after they are
  gone, and the descriptors it holds between reads.
- **`net.ipv4.tcp_child_ehash_entries`**: the kernel reads it when a
  network namespace is created (clone or unshare with CLONE_NEWNET), from
  the namespace of the task that creates it; the new namespace's own value
  starts at 0, and namespaces created before keep the global table. So the
  benchmark sets it in collectd's namespace, creates the pods from there,
  and puts the old value back at once; the pods' `tcp_ehash_entries`
  (positive: a table of their own) shows it took.
"""


def netns_part(args, result):
    phases = result["phases"]
    count = result["count"]
    info = machine()
    collectd_version, git = versions(args)
    heap = heap_table(phases, count, args.heap_reads)
    heap_text = ("Heap of the collector alone (heap_driver, "
                 "`AllNetNamespaces true`):\n\n" + heap) if heap else \
        "(The heap driver was not run: no `--heap-driver`.)"
    text = {
        "results": results_table(phases, count),
        "targets": targets_table(phases, count),
        "rounds_table": rounds_table(phases),
        "operators": operators_text(phases, count),
    }
    doc = DOC.format(
        header=NETNS_HEADER, date=datetime.date.today().isoformat(),
        cpu=info["cpu"], cores=info["cores"], kernel=info["kernel"],
        load_before=result["load_before"], load_after=result["load_after"],
        collectd=collectd_version, git=git, count=count,
        sockets=result["sockets"],
        connections=(result["sockets"] - LISTENERS) // 2,
        dests=DESTINATIONS, listeners=LISTENERS,
        per_pod=2 + SLEEPERS_PER_POD, sleepers=SLEEPERS_PER_POD,
        processes=max(p["processes"] for p in phases), minutes=result["minutes"],
        rounds=args.rounds, heap=heap_text, heap_reads=args.heap_reads,
        **text)
    for key in ("results", "targets", "operators", "rounds_table"):
        print()
        print(text[key])
    if heap:
        print()
        print(heap)
    return doc
