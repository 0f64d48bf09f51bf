"""Faults, with the real collectd: sock_diag dumps interrupted
(NLM_F_DUMP_INTR).

What every scenario here shares is in faults_scene.py's docstring.

  dump_intr_once: one received datagram carries NLM_F_DUMP_INTR.  The read
    that saw it makes 3 dump requests instead of 2 (the interrupted
    listener dump, then both dumps again), dispatches exact values with
    scrape_success 1, and nothing is logged.
  dump_intr_always (Source "netlink"): every datagram is interrupted.  Each
    read gives up after exactly 3 requests (3 attempts, each stopping at
    its first, interrupted, dump): scrape_success 0, one ERROR saying
    "interrupted"; collectd keeps running, and recovers (exact values, one
    "recovered") when the interruptions stop.
  dump_intr_always_auto: the same with Source "auto" falls back to /proc
    for good with one WARNING: exact values, scrape_success 1, and no dump
    request after the fallback even once netlink works again."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from faults_scene import (  # noqa: E402
    Clients, NetlinkFault, PORT_RANGE, check_log, check_netlink_values,
    interrupted_requests, log_lines, netlink_collectd, next_read,
    request_count)


def dump_intr_once():
    with h.TempDir() as tmp:
        fault = NetlinkFault(tmp)
        clients = Clients()
        try:
            with netlink_collectd(tmp, "netlink", fault) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "before")

                fault.set("dump_intr_once")
                deadline = time.monotonic() + 10
                while fault.mode() != "off":
                    h.check(time.monotonic() < deadline,
                            "the shim never interrupted a dump")
                    time.sleep(0.05)
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "after the retry")
                samples = next_read(collectd)
                check_netlink_values(samples, clients, "a later read")
                check_log(collectd, "after the interrupted dump")

                reads = fault.reads()
                hit = [g for g in reads if "dump_intr_once" in g]
                h.check_equal(len(hit), 1, "reads with an interruption")
                h.log("requests per read: %r"
                      % [request_count(g) for g in reads])
                h.check_equal(hit[0].count("dump_intr_once"), 1,
                              "interrupted datagrams")
                h.check_equal(request_count(hit[0]), 3,
                              "dump requests of the interrupted read")
                h.check_equal(interrupted_requests(hit[0]), 1,
                              "interrupted requests of that read")
                after = reads[reads.index(hit[0]) + 1:]
                h.check(after, "no read after the interrupted one")
                h.check_equal([request_count(g) for g in after],
                              [2] * len(after),
                              "dump requests of the reads after")
        finally:
            clients.close()


def dump_intr_always():
    with h.TempDir() as tmp:
        fault = NetlinkFault(tmp)
        clients = Clients()
        try:
            with netlink_collectd(tmp, "netlink", fault) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "before")

                fault.set("dump_intr_always")
                samples = h.wait_for_fresh_read(collectd, time.time())
                h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 0.0,
                              "%s while interrupted" % h.SCRAPE_SUCCESS)
                samples = next_read(collectd)
                h.check_equal(h.value_of(samples, h.SCRAPE_SUCCESS), 0.0,
                              "%s while interrupted, later" % h.SCRAPE_SUCCESS)
                check_log(collectd, "while interrupted", errors=1)
                error = log_lines(collectd, "error")[0]
                h.check("interrupted (table changed)" in error,
                        "ERROR does not say interrupted: %r" % error)

                fault.set("off")
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "after")
                check_log(collectd, "after", errors=1, recovered=1)

                hit = [g for g in fault.reads() if "dump_intr_always" in g]
                h.log("interrupted reads, requests each: %r"
                      % [request_count(g) for g in hit])
                h.check(len(hit) >= 2, "interrupted reads: %r" % hit)
                h.check_equal([(request_count(g), interrupted_requests(g))
                               for g in hit], [(3, 3)] * len(hit),
                              "(requests, interrupted requests) per "
                              "interrupted read")
        finally:
            clients.close()


def dump_intr_always_auto():
    with h.TempDir() as tmp:
        fault = NetlinkFault(tmp)
        clients = Clients()
        try:
            with netlink_collectd(tmp, "auto", fault) as collectd:
                collectd.start_and_wait_ready()
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "before")

                fault.set("dump_intr_always")
                samples = h.wait_for_fresh_read(collectd, time.time())
                check_netlink_values(samples, clients, "after the fallback")
                fault.set("off")
                fell_back = fault.events()[-1][1]
                samples = next_read(collectd)
                check_netlink_values(samples, clients, "fault over")
                check_log(collectd, "Source auto", warnings=1)
                warning = log_lines(collectd, "warning")[0]
                h.check("interrupted" in warning and "from now on" in warning,
                        "WARNING: %r" % warning)
                later = [name for name, stamp in fault.events()
                         if stamp > fell_back]
                h.check_equal(later, [], "shim events after the fallback")
                h.log("Source auto, dump always interrupted: %r" % warning)
        finally:
            clients.close()


if __name__ == "__main__":
    h.run_scenarios({
        "dump_intr_once": dump_intr_once,
        "dump_intr_always": dump_intr_always,
        "dump_intr_always_auto": dump_intr_always_auto,
    }, port_range=PORT_RANGE, reserved_ports="")
