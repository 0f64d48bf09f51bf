"""docs/BENCHMARKS.md's namespace part (netns_bench.py's results)."""

import textwrap

from benchlib import ms
from netns_doc import DOC, HEADER_ITEMS
from netns_summary import NS, summarize
from netns_world import DESTINATIONS, LISTENERS, SLEEPERS_PER_POD

NETNS_HEADER = "## Many network namespaces"
PLUGIN_VS_FLOOR = 1.15
DISCOVERY_SHARE = 0.10
HEAP_PER_NETNS = 4096  # "a few KiB at most"
HEAP_GIVEN_BACK = 4096  # what may stay after every namespace went


def kib(nbytes):
    return "{:,.1f} KiB".format(nbytes / 1024)


def span(pair):
    low, high = pair
    return "{:,}".format(low) if low == high else "{:,} - {:,}".format(
        low, high)


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
         lambda p: ms(p["floor_no_bound"])),
        ("floor, own namespace alone: the dumps",
         lambda p: ms(p["floor_own"])),
        ("**plugin / floor** (`NetNamespace`)",
         lambda p: "%.2f" % p["ratio_list"]),
        ("plugin / floor with setns, socket and sysctls",
         lambda p: "%.2f" % p["ratio_list_setns"]),
        ("**discovery**: `AllNetNamespaces` against `NetNamespace`",
         lambda p: "%+.1f%%" % (100 * p["discovery"])),
        ("per pod: plugin (`AllNetNamespaces`, own namespace subtracted)",
         lambda p: ms(p["per_pod"])),
        ("per pod: floor dumps", lambda p: ms(p["floor_per_pod"])),
        ("whole collectd (all threads, idle subtracted): own / list / all",
         lambda p: " / ".join(ms(p[k + "_process"])
                              for k in ("own", "list", "all"))),
        ("collectd VmRSS (KiB): own / list / all",
         lambda p: " / ".join("{:,}".format(p[k + "_rss_kib"])
                              for k in ("own", "list", "all"))),
        ("collectd VmHWM, its peak (KiB): own / list / all",
         lambda p: " / ".join("{:,}".format(p[k + "_hwm_kib"])
                              for k in ("own", "list", "all"))),
        ("TCP sockets in the kernel, every namespace's (slabinfo; lowest "
         "- highest)", lambda p: span(p["tcp_sockets"])),
        ("node of %s pods: plugin, `AllNetNamespaces true`" % node_pods,
         lambda p: ms(p["node_all"]) if "node_all" in p else "-"),
        ("node of %s pods: floor, the dumps" % node_pods,
         lambda p: ms(p["node_floor"]) if "node_all" in p else "-"),
        ("node of %s pods: plugin / floor" % node_pods,
         lambda p: "%.2f" % p["node_ratio"] if "node_all" in p else "-"),
        ("node of %s pods: TCP sockets in the kernel" % node_pods,
         lambda p: span(p["node_tcp_sockets"]) if "node_all" in p else "-"),
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
    """Every measurement, in the order they ran."""
    lines = ["| phase, round | floor | list | floor | all | collector "
             "| floor | no bound | own | floor own |",
             "|---|" + "---:|" * 9]
    for p in phases:
        for i, o in enumerate(p["rounds"]):
            cells = [ms(o["floor_a"][NS]), ms(o["list"]["reader_ns"]),
                     ms(o["floor_b"][NS]), ms(o["all"]["reader_ns"]),
                     ms(o["collector"]["cpu_ns"]) if "collector" in o
                     else "-", ms(o["floor_c"][NS]),
                     ms(o["floor_no_bound"][NS]), ms(o["own"]["reader_ns"]),
                     ms(o["floor_own"][NS])]
            lines.append("| %d, %d | %s |" % (p["child_ehash"], i + 1,
                                               " | ".join(cells)))
    return "\n".join(lines)


def node_rounds_text(phases):
    lines = []
    for p in phases:
        if "node_rounds" not in p:
            continue
        n = p["node_rounds"]
        runs = []
        for i, f in enumerate(n["floor"]):
            runs.append("floor " + ms(f[NS]))
            if i < len(n["all"]):
                runs.append("**all %s**" % ms(n["all"][i]["reader_ns"]))
        lines.append("- tcp_child_ehash_entries %d, node of %d pods: %s"
                     % (p["child_ehash"], p["node_pods"], ", ".join(runs)))
    return "\n".join(textwrap.fill(line, 76, subsequent_indent="  ")
                     for line in lines)


def split_table(phases):
    """Where a read with AllNetNamespaces spends its CPU: differences
    between the readers measured one after the other in each round."""
    if any("collector" not in p for p in phases):
        return "(Without the heap driver the split is not measured.)"
    rows = [
        ("the kernel's walks for the dumps, bound-only sockets left out",
         "walks_no_bound"),
        ("the kernel's walks of its bind table (bound-only sockets)",
         "walks_bind"),
        ("setns, socket and sysctls per namespace", "setns"),
        ("the collector's own work, discovery included", "collector_own"),
        ("collectd: the glue and dispatching the values", "collectd_glue"),
        ("**the read** (`AllNetNamespaces`, read thread)", "all"),
    ]
    lines = ["| ms per read | " + " | ".join(
        "tcp_child_ehash_entries %d" % p["child_ehash"] for p in phases)
        + " |", "|---|" + "---:|" * len(phases)]
    for name, key in rows:
        lines.append("| %s | %s |" % (name, " | ".join(
            "%s (%.0f%%)" % (ms(p[key]), 100 * p[key] / p["all"])
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
                                      kib((n["inuse"] - a["inuse"]) / count)))
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
        ratio = p["ratio_list"]
        rows.append(("plugin <= %.2f x floor%s" % (PLUGIN_VS_FLOOR, what),
                     "%.2f (rounds: %s)" % (ratio, " ".join(
                         "%.2f" % r["ratio_list"] for r in p["per_round"])),
                     ratio <= PLUGIN_VS_FLOOR))
        share = p["discovery"]
        rows.append(("discovery adds <= %d%%%s" % (100 * DISCOVERY_SHARE,
                                                   what),
                     "%+.1f%% (rounds: %s)" % (100 * share, " ".join(
                         "%+.1f%%" % (100 * r["discovery"])
                         for r in p["per_round"])),
                     share <= DISCOVERY_SHARE))
    heaps = [p for p in phases if "heap_before" in p]
    for p in heaps:
        # Against the heap after the pods went: what the first read of
        # another namespace allocates once is not per namespace.
        _, n, a = heap_figures(p)
        rows.append(("heap <= %s per namespace (tcp_child_ehash_entries %d)"
                     % (kib(HEAP_PER_NETNS), p["child_ehash"]),
                     kib((n - a) / count), (n - a) / count <= HEAP_PER_NETNS))
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
    return pods, p["own"] + pods * p["per_pod"], None


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
        "pods, {big_one} ms with {count} (up to {node_sockets:,} and "
        "{sockets_all:,} TCP sockets in the kernel): the read grows with "
        "pods times sockets."
    ).format(pods=pods, sockets=sockets, total=ms(total),
             pct=100 * total / 1e10,
             buckets=abs(shared["pod_ehash_entries"]),
             one=ms(one) if one else "?",
             big_one=ms(shared["all"] / (count + 1)), count=count,
             node_sockets=shared.get("node_tcp_sockets", [0, 0])[1],
             sockets_all=shared["tcp_sockets"][1])
    if len(phases) > 1:
        own = phases[1]
        own_pods, own_total, own_one = node_cost(own, count)
        bind = own["walks_bind"] / (count + 1)
        para += (
            " Set `net.ipv4.tcp_child_ehash_entries = {v}` in the node's "
            "own namespace, where the container runtime creates the pods' "
            "namespaces (a file in /etc/sysctl.d, before the pods start), "
            "and every pod created after that gets an established table of "
            "its own: the node with {pods} pods then costs {total} ms per "
            "read, {saved:.0f}% less ({one} ms a namespace, whatever the "
            "other pods hold). Pods created "
            "before keep the global table until they are recreated. What "
            "stays is mostly the kernel's "
            "walk of its bind table for bound-only sockets ({bind} ms a "
            "namespace), which is global whatever the sysctl says. A table "
            "of its own costs the kernel 8 bytes a bucket per pod and never "
            "grows: size it to a pod's connections (a pod with many "
            "thousands wants more buckets)."
        ).format(v=own["child_ehash"], pods=own_pods, total=ms(own_total),
                 saved=100 * (1 - own_total / total),
                 one=ms(own_one) if own_one else "?", bind=ms(bind))
    return textwrap.fill(para, 76)


def netns_part(result):
    count = result["count"]
    phases = [summarize(p, count) for p in result["phases"]]
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
        "node_rounds": node_rounds_text(phases),
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
        node_pods=phases[0].get("node_pods", "-"),
        series=3 + LISTENERS + DESTINATIONS, **text)
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
