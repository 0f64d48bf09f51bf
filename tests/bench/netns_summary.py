"""The figures of one phase of the namespace benchmark, from its rounds.

Absolute figures are medians over the rounds. Ratios and shares are taken
within a round, each collectd run against the floors measured just before
and after it (netns_bench.py runs floor, list, floor, all, collector,
floor, ...), and then their median: the machine's other work drifts over
minutes, and what it adds to the shared table is in both sides of a ratio
taken that way.
"""

import statistics

NS = "cpu_ns_per_read"  # the floor's dumps
NS_ALL = "cpu_ns_all_per_read"  # the floor with setns, socket and sysctls


def median(values):
    return statistics.median(list(values))


def mean(a, b):
    return (a + b) / 2


def round_figures(o):
    """One round's ratios and split of the AllNetNamespaces read."""
    floor_list = mean(o["floor_a"][NS], o["floor_b"][NS])
    floor_all = mean(o["floor_b"][NS], o["floor_c"][NS])
    ratio_list = o["list"]["reader_ns"] / floor_list
    ratio_all = o["all"]["reader_ns"] / floor_all
    r = {
        "ratio_list": ratio_list,
        "ratio_list_setns": o["list"]["reader_ns"] / mean(
            o["floor_a"][NS_ALL], o["floor_b"][NS_ALL]),
        "ratio_all": ratio_all,
        "discovery": ratio_all / ratio_list - 1,
        "walks_no_bound": o["floor_no_bound"][NS],
        "walks_bind": o["floor_c"][NS] - o["floor_no_bound"][NS],
        "setns": o["floor_c"][NS_ALL] - o["floor_c"][NS],
    }
    if "collector" in o:
        r["collector_own"] = o["collector"]["cpu_ns"] - o["floor_c"][NS_ALL]
        r["collectd_glue"] = o["all"]["reader_ns"] - o["collector"]["cpu_ns"]
    return r


def summarize(phase, count):
    rounds = phase["rounds"]
    s = {"child_ehash": phase["child_ehash"],
         "pod_ehash_entries": phase["pod_ehash_entries"],
         "verified": phase["verified"], "tcp_sockets": phase["tcp_sockets"],
         "processes": phase["processes"]}
    for kind in ("own", "list", "all"):
        s[kind] = median(o[kind]["reader_ns"] for o in rounds)
        s[kind + "_process"] = median(o[kind]["process_ns"] for o in rounds)
        s[kind + "_rss_kib"] = max(o[kind]["rss_kib"] for o in rounds)
        s[kind + "_hwm_kib"] = max(o[kind]["hwm_kib"] for o in rounds)
    if all("collector" in o for o in rounds):
        s["collector"] = median(o["collector"]["cpu_ns"] for o in rounds)
    floors = [o[k] for o in rounds for k in ("floor_a", "floor_b", "floor_c")]
    s["floor"] = median(f[NS] for f in floors)
    s["floor_all"] = median(f[NS_ALL] for f in floors)
    s["floor_no_bound"] = median(o["floor_no_bound"][NS] for o in rounds)
    s["floor_own"] = median(o["floor_own"][NS] for o in rounds)
    per_round = [round_figures(o) for o in rounds]
    s["per_round"] = per_round
    for key in per_round[0]:
        s[key] = median(r[key] for r in per_round)
    s["per_pod"] = (s["all"] - s["own"]) / count
    s["floor_per_pod"] = (s["floor"] - s["floor_own"]) / count
    if "node_rounds" in phase:
        n = phase["node_rounds"]
        floors = [f[NS] for f in n["floor"]]
        ratios = [m["reader_ns"] / mean(floors[i], floors[i + 1])
                  for i, m in enumerate(n["all"])]
        s.update(node_pods=phase["node_pods"],
                 node_verified=phase["node_verified"],
                 node_tcp_sockets=phase["node_tcp_sockets"],
                 node_all=median(m["reader_ns"] for m in n["all"]),
                 node_floor=median(floors), node_ratio=median(ratios),
                 node_rounds=n)
    for key in ("heap_before", "heap_pods", "heap_after"):
        if key in phase:
            s[key] = phase[key]
    s["rounds"] = rounds
    return s
