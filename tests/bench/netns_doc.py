"""The text of docs/BENCHMARKS.md's namespace part, filled in by
netns_report.py."""

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

{rounds} rounds, each floor, list, floor, all, collector, floor, floor
without bound-only sockets, own, floor of the own namespace alone, with the
same pods; then all but {node_pods} pods go and the node runs floor, all,
floor, all, ... Absolute figures are medians over the rounds; ratios and
shares are taken within a round, each collectd run against the mean of the
floors just before and after it, then their median (the machine's other
work drifts over minutes). "Per pod" is the read with the pods minus the
read of collectd's own namespace alone, over {count}.

{operators}

Where the time of a read goes (medians of differences between readers run
one after the other in a round, so the shares need not add up to 100%, and
a small one can come out below zero as noise):

{split}

### Targets

{targets}

### Details

Every measurement in the order it ran (CPU per read, ms; collectd: the read
thread; floor: its dumps):

{rounds_table}

{node_rounds}

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
  gone, and the descriptors it holds between reads. "Per pod" is the heap
  with the pods minus the heap after they went, over {count}: what the
  first read of another namespace allocates and keeps is not per pod.
  collectd's VmRSS grows more than that heap: a pod adds {series} series
  here (its pool, {listeners} open ports, {dests} destinations, its cgroup,
  scrape_success), each an entry in collectd's value cache and values on
  its write queue at every read.
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
