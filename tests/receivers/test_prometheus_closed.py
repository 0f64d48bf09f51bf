"""The real Prometheus with the shipped contrib/prometheus configuration:
ports that close.

What every scenario here shares is in prometheus_scene.py's docstring.

Scenario "closed_port": an unwatched listener that closes is stored as
exactly one 0 sample (write_prometheus's timestamp, however often
Prometheus scrapes), a closed watched port as a 0 per read: what
WatchedPortClosed tells them apart by.  Once collectd stops, its series stay
queryable (no staleness markers for series with timestamps)."""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from prometheus_scene import (  # noqa: E402
    PORT_RANGE, UNWATCHED, WATCHED_CLOSED, check_prometheus_itself, query,
    raw_samples, require_skip_conditions, start_prometheus, wait_stored_after)


def closed_port_scenario():
    """A port that stops listening is reported once with 0: with exported
    timestamps Prometheus stores exactly one 0 however often it scrapes,
    while a closed watched port gets a 0 per read (WatchedPortClosed tells
    them apart by that).  When collectd stops, its series stay queryable
    (no staleness markers for series with timestamps)."""
    require_skip_conditions()
    block = h.plugin_block(["WatchPort %d" % WATCHED_CLOSED])
    # No expiry: write_prometheus keeps serving the one 0 (same timestamp)
    # to every scrape, which must still store it once.
    with h.TempDir() as tmp, \
            h.Collectd(tmp, block, extra_config=h.NO_EXPIRY) as collectd:
        listening = h.listener(UNWATCHED)
        try:
            collectd.start_and_wait_ready()
            with start_prometheus(tmp) as prometheus:
                unwatched = 'instance_open_ports{port="%d"}' % UNWATCHED
                watched = 'instance_open_ports{port="%d"}' % WATCHED_CLOSED
                wait_stored_after(unwatched, 0)
                listening.close()
                closed_at = time.time()
                samples = h.wait_for_fresh_read(collectd, closed_at)
                for _ in range(3):
                    read_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
                    samples = h.wait_for_fresh_read(collectd,
                                                    read_ms / 1000.0)
                last_read_ms = h.sample(samples, h.SCRAPE_SUCCESS)[1]
                wait_stored_after(watched, last_read_ms - 1)
                # Two scrapes a read: any re-stored 0 would show.
                time.sleep(2.0)
                stored = raw_samples(unwatched)
                zeros = [(t, v) for t, v in stored if v == 0]
                h.check_equal(len(zeros), 1,
                              "0 samples stored for the unwatched port "
                              "%d after it closed: %r" % (UNWATCHED, stored))
                h.check(zeros[0][0] > closed_at * 1000 and
                        zeros == stored[-1:],
                        "the 0 of %d is the last sample, after the close: "
                        "%r" % (UNWATCHED, stored))
                watched_stored = raw_samples(watched)
                h.check_equal({v for _, v in watched_stored}, {0.0},
                              "values of the watched closed port")
                h.check(len(watched_stored) >= 5,
                        "watched port: %d samples, expected one per read"
                        % len(watched_stored))
                h.log("FIGURES: after the close, %d samples of the "
                      "unwatched port (one 0), %d samples (all 0) of the "
                      "watched closed port"
                      % (len(stored), len(watched_stored)))
                collectd.stop()
                deadline = time.monotonic() + 15
                while not query('up{job="collectd"} == 0')["result"]:
                    h.check(time.monotonic() < deadline,
                            "Prometheus never saw collectd down")
                    time.sleep(0.1)
                result = query(h.SCRAPE_SUCCESS.replace("collectd_", "", 1))
                h.check_equal([r["value"][1] for r in result["result"]],
                              ["1"], "scrape_success right after collectd "
                              "stopped (no staleness marker)")
                check_prometheus_itself(prometheus)
        finally:
            listening.close()


if __name__ == "__main__":
    h.run_scenarios({"closed_port": closed_port_scenario},
                    port_range=PORT_RANGE, reserved_ports="")
