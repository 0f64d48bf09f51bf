"""TCP sockets by state: collectd_ephemeral_ports_state_sockets (ReportStates).

Port range 40000-40019 (a pool of 20, none reserved).  With ReportStates
true the test builds, on pool ports, a socket in every state ss can show:
- listen: listeners on 40005 and 40006;
- established: 3 clients to 9000, and the client of the deferred accept;
- syn_recv: 40006 has TCP_DEFER_ACCEPT, so it drops the handshake's final
  ACK and its request socket stays SYN_RECV;
- syn_sent: a non-blocking connect to 9100, whose accept queue (backlog 0)
  is full, so its SYN is dropped;
- close_wait: a client whose server end closed first;
- fin_wait2: a client that closed first, its server end staying open;
- fin_wait1, closing, last_ack: clients to 9002 whose send queue holds data
  the server end never reads (zero window), so their FIN stays
  unacknowledged: shutdown(SHUT_WR) (fin_wait1); the same, then the server
  end's FIN (closing); the server end's FIN first, then shutdown(SHUT_WR)
  (last_ack);
- time_wait: 2 clients to 9001 that closed first, then their server ends.
The server ends (9000, 9001, 9002, 9100) and the client that fills 9100's
queue (bound to 30001) lie outside the pool.

After a fresh read it asserts all 11 state series exactly (established 4,
syn_sent 1, syn_recv 1, fin_wait1 1, fin_wait2 1, time_wait 2, close 0,
close_wait 1, last_ack 1, listen 2, closing 1), each equal to the ss -tan
count of sockets with an in-pool local port in that state, each dispatched
by the latest read, and the global used against ss -tan.  ("close" is the
state of bound-only sockets, which this ss cannot show: test_bound_only.py.)
"""

import errno
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402

PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
ESTABLISHED = 3
TIME_WAITS = 2
LISTENER_IN_POOL = 40005
FULL_QUEUE_PORT = 9100
DEFER_ACCEPT_PORT = 40006  # a listener in the pool: its SYN_RECV is too
BLOCKED_PORT = 9002  # its server ends never read: a zero window
SMALL_BUFFER = 4096
QUEUE_FILLER_PORT = 30001  # outside the pool and the scrape client ports

# established: 3 + the client of the deferred accept; listen: 40005, 40006.
EXPECTED = {"established": ESTABLISHED + 1, "syn_sent": 1, "syn_recv": 1,
            "fin_wait1": 1, "fin_wait2": 1, "time_wait": TIME_WAITS,
            "close": 0, "close_wait": 1, "last_ack": 1, "listen": 2,
            "closing": 1}


def wait_for_state(port, state):
    """Waits until ss -tan shows local port `port` in `state`."""
    deadline = time.monotonic() + 5
    while True:
        states = [s.state for s in h.ss_tcp() if s.local_port == port]
        if state in states:
            return
        if time.monotonic() > deadline:
            h.fail("port %d never reached %s in ss: %r"
                   % (port, state, h.ss_tcp()))
        time.sleep(0.02)


class Mix:
    def __init__(self):
        self.sockets = []

    def keep(self, sock):
        self.sockets.append(sock)
        return sock

    def build(self):
        # In-pool listeners first, before any connect() can take the port.
        self.keep(h.listener(LISTENER_IN_POOL))
        deferred = self.keep(h.listener(DEFER_ACCEPT_PORT))
        deferred.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 30)
        main = self.keep(h.listener(9000))
        time_wait_listener = self.keep(h.listener(9001))
        self.keep(h.listener(FULL_QUEUE_PORT, backlog=0))

        for _ in range(ESTABLISHED):
            self.keep(h.client(9000))
            self.keep(main.accept()[0])

        # CLOSE_WAIT: the server end closes; the client (pool port) got the
        # FIN and does not close.
        client = self.keep(h.client(9000))
        server_end = main.accept()[0]
        server_end.close()
        wait_for_state(h.local_port(client), "CLOSE-WAIT")

        # FIN_WAIT2: the client closes; the server end got the FIN, acks it
        # and stays open (CLOSE_WAIT on 9000, outside the pool).
        client = h.client(9000)
        self.keep(main.accept()[0])
        port = h.local_port(client)
        client.close()
        wait_for_state(port, "FIN-WAIT-2")

        # SYN_SENT: 9100's accept queue (backlog 0) holds one connection
        # that is never accepted, so the kernel drops the next SYN.
        self.keep(h.client(FULL_QUEUE_PORT, bind_port=QUEUE_FILLER_PORT))
        syn_sent = self.keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        syn_sent.setblocking(False)
        status = syn_sent.connect_ex(("127.0.0.1", FULL_QUEUE_PORT))
        h.check_equal(status, errno.EINPROGRESS, "non-blocking connect()")
        wait_for_state(h.local_port(syn_sent), "SYN-SENT")

        # SYN_RECV on a pool port: with TCP_DEFER_ACCEPT the listener drops
        # the handshake's final ACK (it carries no data), so its request
        # socket stays SYN_RECV while the client is ESTABLISHED.
        client = self.keep(h.client(DEFER_ACCEPT_PORT))
        wait_for_state(DEFER_ACCEPT_PORT, "SYN-RECV")

        # FIN_WAIT1, CLOSING and LAST_ACK: the client's FIN waits behind
        # data its server end never reads (zero window), so it stays
        # unacknowledged.
        blocked = self.keep(h.listener(BLOCKED_PORT))
        # A small receive buffer, inherited by the accepted ends: the
        # window closes quickly.
        blocked.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        client, server_end = self.blocked_pair(blocked)
        client.shutdown(socket.SHUT_WR)
        wait_for_state(h.local_port(client), "FIN-WAIT-1")

        client, server_end = self.blocked_pair(blocked)
        client.shutdown(socket.SHUT_WR)
        wait_for_state(h.local_port(client), "FIN-WAIT-1")
        server_end.shutdown(socket.SHUT_WR)  # the FIN crosses the client's
        wait_for_state(h.local_port(client), "CLOSING")

        client, server_end = self.blocked_pair(blocked, server_fin=True)
        client.shutdown(socket.SHUT_WR)
        wait_for_state(h.local_port(client), "LAST-ACK")

        # TIME_WAIT, last and to a destination of their own, so that no
        # later connect() can take one over.
        for _ in range(TIME_WAITS):
            client = h.client(9001)
            server_end = time_wait_listener.accept()[0]
            port = h.local_port(client)
            client.close()
            server_end.close()
            wait_for_state(port, "TIME-WAIT")

    def blocked_pair(self, listening, server_fin=False):
        """A client to listening whose send queue holds data the server end
        never reads.  With server_fin, the server end has sent its FIN
        first (the client is in CLOSE_WAIT)."""
        client = self.keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        client.connect(("127.0.0.1", BLOCKED_PORT))
        server_end = self.keep(listening.accept()[0])
        if server_fin:
            server_end.shutdown(socket.SHUT_WR)
            wait_for_state(h.local_port(client), "CLOSE-WAIT")
        client.setblocking(False)
        sent = 0
        for _ in range(100000):
            try:
                sent += client.send(b"x" * SMALL_BUFFER)
            except BlockingIOError:
                break
        else:
            h.fail("the client's send queue never filled (%d bytes sent)"
                   % sent)
        h.check(sent > 0, "nothing sent")
        return client, server_end

    def close(self):
        for sock in self.sockets:
            h.close_with_reset(sock)


def states():
    block = h.plugin_block(["ReportStates true"])
    with h.TempDir() as tmp, h.Collectd(tmp, block) as collectd:
        mix = Mix()
        try:
            mix.build()
            built_at = time.time()
            # Sockets first, collectd after: no read can see them half built.
            collectd.start_and_wait_ready()
            samples = h.wait_for_fresh_read(collectd, built_at)
            ss_counts = h.ss_state_counts(POOL)
            h.check_equal(ss_counts, EXPECTED,
                          "in-pool sockets per state in ss -tan")
            h.check_equal(h.state_values(samples),
                          {state: float(n) for state, n in EXPECTED.items()},
                          "ephemeral_ports_state_sockets")
            for state in h.TCP_STATES:
                _, timestamp = h.sample(samples, h.STATE_SOCKETS,
                                        ephemeral_ports_state=state)
                h.check(timestamp > built_at * 1000,
                        "state %s not dispatched by the latest read" % state)
            h.check_pool_values(samples, len(h.ss_pool_ports(POOL)), TOTAL,
                                "global vs ss -tan")
            h.log("states: %s" % ", ".join(
                "%s %d" % (state, EXPECTED[state]) for state in h.TCP_STATES))
            h.check_equal(
                h.plugin_log_lines(collectd.log_lines(), "error"), [],
                "plugin ERROR lines")
        finally:
            mix.close()


if __name__ == "__main__":
    h.run_scenarios({"states": states}, port_range=PORT_RANGE,
                    reserved_ports="")
