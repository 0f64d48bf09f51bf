"""Port exhaustion: every pool port held.

In a namespace with port range 40000-40019 (20 ports, none reserved), the
test connects to a listener on 127.0.0.1:9000 without bind() until connect()
fails with EADDRNOTAVAIL, the failure the plugin exists to warn about.  After
a fresh read it asserts used == total == 20, available == 0 and
usage_ratio == 1, and that ss -tan shows 20 distinct in-range local ports.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
SERVER_PORT = 9000
MAX_CONNECT_ATTEMPTS = 100


def connect_until_exhausted(listening):
    """Connects until EADDRNOTAVAIL; returns the client sockets."""
    clients = []
    for _ in range(MAX_CONNECT_ATTEMPTS):
        try:
            clients.append(h.client(SERVER_PORT))
        except OSError as error:
            if h.is_address_not_available(error):
                return clients
            h.fail("connect() failed with %r, expected EADDRNOTAVAIL "
                   "after %d connections" % (error, len(clients)))
    h.fail("connect() still succeeded after %d attempts"
           % MAX_CONNECT_ATTEMPTS)


def exhaustion():
    with h.TempDir() as tmp:
        with h.Collectd(tmp, h.plugin_block([])) as collectd:
            collectd.start_and_wait_ready()
            h.check_equal(h.current_pool(), POOL, "namespace pool")
            listening = h.listener(SERVER_PORT, backlog=4 * TOTAL)
            clients = connect_until_exhausted(listening)
            try:
                exhausted_at = time.time()
                client_ports = {h.local_port(c) for c in clients}
                h.check_equal(client_ports, POOL,
                              "local ports of the successful connects")
                h.check_equal(len(clients), TOTAL, "successful connects")
                samples = h.wait_for_fresh_read(collectd, exhausted_at)
                ss_ports = h.ss_pool_ports(POOL)
                h.check_equal(len(ss_ports), TOTAL,
                              "distinct in-range local ports in ss -tan")
                h.check_pool_values(samples, TOTAL, TOTAL, "exhausted")
                h.check_equal(
                    h.value_of(samples, "collectd_ephemeral_ports_available"),
                    0.0, "available")
                h.check_equal(
                    h.value_of(samples,
                               "collectd_ephemeral_ports_usage_ratio"),
                    1.0, "usage_ratio")
            finally:
                for sock in clients:
                    sock.close()
                listening.close()


if __name__ == "__main__":
    h.run_scenarios({"exhaustion": exhaustion}, port_range=PORT_RANGE,
                    reserved_ports="")
