"""docs/BENCHMARKS.md's socket-count part (sockets_bench.py's results)."""

import datetime

from benchlib import machine, ms, versions
from sockets_bench import (EVERY_SIZE_TARGETS,
                           EVERY_SIZE_UP_TO, EXTRA_LISTENERS, FLOOR_VARIANTS,
                           OPEN_PORT_QUERY, PIPELINE, PORT_RANGE, TARGETS,
                           destinations_for)


def render(args, results, idle_rate):
    lines = []
    big = max(results, key=lambda r: r["sockets"])
    header = ("| sockets | this plugin (read thread) | tcpconns AllPortsSummary"
              " | plugin / tcpconns | shell pipeline | plugin / pipeline "
              "| filtered-dump floor | plugin / floor | unfiltered dump "
              "| cat /proc/net/tcp* |")
    lines.append(header)
    lines.append("|" + "---:|" * 10)
    for r in results:
        lines.append("| {:,} | {} | {} | {:.2f} | {} | {:.2f} | {} | {:.2f} "
                     "| {} | {} |".format(
                         r["sockets"], ms(r["plugin"]), ms(r["tcpconns"]),
                         r["plugin"] / r["tcpconns"], ms(r["pipeline"]),
                         r["plugin"] / r["pipeline"], ms(r["floor"]),
                         r["plugin"] / r["floor"], ms(r["floor_all"]),
                         ms(r["proc_cat"])))
    table = "\n".join(lines)

    lines = ["| sockets | plugin, whole collectd | tcpconns, whole collectd "
             "| plugin rounds (read thread) | tcpconns rounds (read thread) "
             "| plugin VmRSS / VmHWM (KiB) |", "|" + "---:|" * 6]
    for r in results:
        lines.append("| {:,} | {} | {} | {} | {} | {:,} / {:,} |".format(
            r["sockets"], ms(r["plugin_process"]), ms(r["tcpconns_process"]),
            " ".join(ms(m["reader_ns"]) for m in r["rounds"]["plugin"]),
            " ".join(ms(m["reader_ns"]) for m in r["rounds"]["tcpconns"]),
            r["plugin_rss_kib"], r["plugin_hwm_kib"]))
    detail = "\n".join(lines)

    lines = ["| dump (floor.c) | " + " | ".join(
        "{:,} sockets".format(r["sockets"]) for r in results) + " |",
        "|---|" + "---:|" * len(results)]
    lines.append("| filtered, every state incl. bound-only, one walk for "
                 "both families (**the floor**) | " + " | ".join(
                     ms(r["floor"]) + " (" + " ".join(
                         ms(f) for f in r["floor_rounds"]) + ")"
                     for r in results) + " |")
    for key, _, what in FLOOR_VARIANTS:
        lines.append("| %s | %s |" % (what, " | ".join(
            ms(r[key]) for r in results)))
    lines.append("| the floor, paced as the plugin's reads (`-p`, the "
                 "collectd interval between dumps): as cold as a read | "
                 + " | ".join(
                     ms(r["floor_paced"]) + " (" + " ".join(
                         ms(f) for f in r["floor_paced_rounds"]) + "), "
                     "plugin / paced floor %.2f" % (
                         r["plugin"] / r["floor_paced"])
                     for r in results) + " |")
    lines.append("| sockets the floor returns / distinct pool ports held | "
                 + " | ".join("{:,} / {:,}".format(r["floor_sockets"],
                                                  r["used_ports"])
                              for r in results) + " |")
    listen = "\n".join(lines)

    lines = ["| sockets | returned by the dump | (plugin - floor) per "
             "returned socket | (plugin - paced floor) per returned socket "
             "| replay: parse | replay: parse + count |", "|" + "---:|" * 6]
    for r in results:
        per = r["floor_sockets"] or 1
        lines.append("| {:,} | {:,} | {:,.0f} ns | {:,.0f} ns | {} | {} |".format(
            r["sockets"], r["floor_sockets"],
            (r["plugin"] - r["floor"]) / per,
            (r["plugin"] - r["floor_paced"]) / per,
            "%.1f ns" % r["replay_parse_ns"] if "replay_parse_ns" in r
            else "-",
            "%.1f ns" % r["replay_count_ns"] if "replay_count_ns" in r
            else "-"))
    own = "\n".join(lines)

    targets = []
    sized = [r for r in results if r["sockets"] <= EVERY_SIZE_UP_TO]
    for name, den, limit in EVERY_SIZE_TARGETS:
        if not sized:
            break
        ratios = [r["plugin"] / r[den] for r in sized]
        targets.append(("%s at %s sockets" % (name, " / ".join(
            format(r["sockets"], ",") for r in sized)),
            " / ".join("%.2f" % x for x in ratios),
            max(ratios) <= limit))
    for name, num, den, limit in TARGETS:
        ratio = big[num] / big[den]
        targets.append((name, "%.2f (%s / %s ms)" % (
            ratio, ms(big[num]), ms(big[den])), ratio <= limit))
    small = min(results, key=lambda r: r["sockets"])
    dispatch_ns = small["plugin"] - small.get("plugin_no_open_ports",
                                              small["plugin"])
    open_part = big[OPEN_PORT_QUERY] + max(dispatch_ns, 0)
    targets.append(("open-port part < 1 ms (100 listeners, %s sockets)"
                    % format(big["sockets"], ","),
                    "%s ms" % ms(open_part), open_part < 1e6))
    rss = next((r["rss"] for r in results if "rss" in r), None)
    if rss is not None:
        targets.append(("RSS after {:,} reads = RSS after {:,}".format(
            rss["long_reads"], rss["short_reads"]),
            "{:,} KiB vs {:,} KiB".format(rss["long_rss"], rss["short_rss"]),
            rss["long_rss"] <= rss["short_rss"]))
    hwms = [r["plugin_hwm_kib"] for r in results]
    targets.append(("peak RSS does not grow with the socket count",
                    " / ".join("{:,}".format(h) for h in hwms) + " KiB",
                    max(hwms) - min(hwms) <= 256))
    lines = ["| target (at %s sockets unless said) | figure | result |"
             % format(big["sockets"], ","), "|---|---:|---|"]
    for name, figure, ok in targets:
        lines.append("| %s | %s | %s |" % (name, figure,
                                            "PASS" if ok else "MISS"))
    target_table = "\n".join(lines)
    return table, detail, listen, own, target_table, dispatch_ns, rss


DOC = """# Benchmarks

What one read costs, measured by `make bench` (tests/bench/). Figures are CPU
time (user + system) per collection, in milliseconds; lower is better.

- Date: {date}
- Machine: {cpu}, {cores} cores, Linux {kernel}
- {collectd}; plugin: source tree `{git}), run with its default
  configuration
- Load: N TCP sockets in a private network namespace: N/2 loopback
  connections from kernel-chosen ports (range {lo}-{hi}) to {dests}
  destinations on 127.0.0.1 (half the sockets hold pool ports, the accepted
  half sit on the destination ports), plus {extra} listeners.
- Reproduce: `make bench BENCH_FLAGS=--sockets-only` (as root; this part
  took {minutes:.1f} minutes; a plain `make bench` also runs the
  [namespace part](#many-network-namespaces)), or
  `tests/bench/run_bench --help` for the parts.

## Results

{table}

Medians of {rounds} rounds for the two collectd plugins and the floor, run
A B floor, A B floor, ... in the same namespace; the pipeline and cat are
averaged over many runs.

## Targets

{targets}

## Details

Whole collectd process (all threads, collectd's idle rate of
{idle:.3f} ms/s subtracted) against the read thread alone, every round, and
the memory of collectd with the plugin:

{detail}

What the kernel's dumps cost (CPU per read: one dump per address family
unless said; the floor's rounds in brackets):

{listen}

The open-port part is the kernel cost of the query the plugin makes for
listening ports ("{open_query}" above) at {big:,}
sockets, plus what reporting the open ports adds to a read: {dispatch} ms
(the plugin with `ReportOpenPorts false` against the default at {small:,}
sockets, 100 listeners; a difference below zero is noise and counts as
0).

{rss_text}

The plugin's own share: what its read costs beyond the floor, per socket
the dump returns, against the floor back to back and paced as the reads;
and `tests/bench/replay.c`, the plugin's own code alone on the same dump
captured once (parse: the netlink walk and each socket's fields; count:
port sets, destination and cgroup tables as a read fills them; CPU ns per
socket, the datagrams copied fresh into the receive buffer first):

{own}

## Where the time goes

At {big:,} sockets the kernel's walk of its socket tables is the cost: a
perf profile of collectd during reads (taken by hand with `perf record`,
cpu-clock sampling as the VM has no
hardware counters) put 97% in the kernel (`tcp_diag_dump` 59%, the
inet_diag fill functions about 31%) and 2.6% in the plugin's own code
(parsing and counting; the section on the plugin's own share below
splits it). The plugin reads at {vs_floor:.2f} x
the floor. The floor cannot be cut further from user space: the
established table has no index by local port, so any dump walks every
socket in the namespace, and the bytecode filter only saves copying.
Counting bound-only sockets makes the kernel also walk its bind table:
{bound_cost} ms of the floor here (the floor against the same dump
without BOUND_INACTIVE). tcpconns copies every socket out but makes one
walk and no bind-table walk: the plugin, exact about bound-only ports,
pays for that walk and reads at {vs_tcpconns:.2f} x tcpconns.

## Method

- **This plugin and tcpconns**: a real collectd 5.12 with `ReadThreads 1`
  and one read plugin: the plugin with its default configuration, or
  tcpconns with `AllPortsSummary true` and `ListeningPorts false`. Every
  read runs on the one read thread; its CPU time is the scheduler's
  `sum_exec_runtime` from `/proc/PID/task/TID/schedstat` (nanoseconds). A
  `PostCache` filter chain passes one value per read (`scrape_success`,
  tcpconns' ESTABLISHED count) to the csv plugin and drops the rest, so the
  csv file counts the reads. The interval is about four times a read; the
  thread's CPU is sampled in the idle gap after read k0 and after read k1
  (checked still), and the figure is the difference over k1 - k0 reads: no
  start-up, no partial read. It includes the read callback and its
  `plugin_dispatch_values` calls (collectd copies each value list onto its
  write queue). The "whole collectd" figures add the write thread (filter
  chain, cache) and subtract collectd's idle CPU measured with the same
  configuration and no read plugin.
- **Shell pipeline**: the earlier exporter's way of counting used ports,
  run with `bash -c`; the CPU of bash, ss, awk, sort, uniq and wc together
  (`getrusage(RUSAGE_CHILDREN)`), after one warm-up run:

  ```
  {pipeline}
  ```

- **Floor**: tests/bench/floor.c, a minimal libmnl program making the
  cheapest dump that yields what a read needs: one `TCPDIAG_GETSOCK`
  request (the kernel answers it with IPv4 and IPv6 sockets from one walk
  of its tables), every TCP state including BOUND_INACTIVE, with
  `INET_DIAG_REQ_BYTECODE` keeping local ports within the range; it only
  counts the replies (32 KiB receive buffer, its own CPU clock). Its
  variants: without the bytecode (every socket is copied out; the
  "unfiltered dump" column); without BOUND_INACTIVE in the state mask (the
  kernel then skips its walk of the bind table; bound-only sockets are not
  seen); one `SOCK_DIAG_BY_FAMILY` dump per family (two walks);
  LISTEN | BOUND_INACTIVE with no filter; LISTEN alone (the plugin's query
  for open ports).
- **The plugin's read** (TCP, default configuration): a LISTEN-only
  request for both families (open ports, and listeners on pool ports as
  exclusive holders), then one request for every other state including
  BOUND_INACTIVE, filtered to the range: the floor's dump split in two so
  that listeners are known before any accepted socket is counted per
  destination.
- **Memory**: VmRSS and VmHWM from `/proc/PID/status` of collectd with the
  plugin at the end of each round (the largest is shown), and one long run
  at {small:,} sockets: VmRSS after {rss_short} reads against after
  {rss_long} reads ({rss_interval} s interval). VmRSS counts every page
  the allocator has touched, collectd's write queue in glibc's per-thread
  arenas included, so it can creep without a leak; whether the heap itself
  grows, `valgrind --tool=massif` on the same collectd tells.
"""


def destinations_text(sizes):
    """How many destinations the load had: one number, or one per size."""
    counts = [destinations_for(n) for n in sizes]
    if len(set(counts)) == 1:
        return str(counts[0])
    return "%s (at %s sockets)" % (" / ".join(str(c) for c in counts),
                                   " / ".join(format(n, ",") for n in sizes))


def big_result(results, key):
    """A figure of the largest socket count."""
    return max(results, key=lambda r: r["sockets"])[key]


def sockets_part(args, results, idle_rate, elapsed):
    """The document up to the namespace part; prints its tables."""
    table, detail, listen, own, targets, dispatch_ns, rss = render(
        args, results, idle_rate)
    info = machine()
    collectd_version, git = versions(args)
    if rss is not None:
        rss_text = ("Long run at {:,} sockets: VmRSS {:,} KiB (VmHWM {:,}) "
                    "after {:,} reads, {:,} KiB (VmHWM {:,}) after {:,}."
                    .format(min(args.sizes), rss["short_rss"],
                            rss["short_hwm"], rss["short_reads"],
                            rss["long_rss"], rss["long_hwm"],
                            rss["long_reads"]))
    else:
        rss_text = "(The long memory run was skipped.)"
    doc = DOC.format(
        date=datetime.date.today().isoformat(), cpu=info["cpu"],
        cores=info["cores"], kernel=info["kernel"],
        collectd=collectd_version, git=git, lo=PORT_RANGE[0],
        hi=PORT_RANGE[1],
        dests=destinations_text(args.sizes), extra=EXTRA_LISTENERS,
        minutes=elapsed / 60, table=table, rounds=args.rounds,
        targets=targets, idle=idle_rate / 1e6, detail=detail, listen=listen,
        own=own,
        dispatch=ms(dispatch_ns), small=min(args.sizes),
        open_query=next(w for k, _, w in FLOOR_VARIANTS
                        if k == OPEN_PORT_QUERY),
        big=max(args.sizes), rss_text=rss_text,
        pipeline=PIPELINE.format(lo=PORT_RANGE[0], hi=PORT_RANGE[1]),
        rss_short=100, rss_long="{:,}".format(args.rss_reads),
        rss_interval=args.rss_interval,
        vs_floor=big_result(results, "plugin") / big_result(results, "floor"),
        vs_tcpconns=(big_result(results, "plugin") /
                     big_result(results, "tcpconns")),
        bound_cost=ms(big_result(results, "floor") -
                      big_result(results, "floor_one_pass_no_bound")))
    print()
    print(table)
    print()
    print(targets)
    print()
    print(detail)
    print()
    print(listen)
    print()
    print(own)
    print()
    print(rss_text)
    return doc

