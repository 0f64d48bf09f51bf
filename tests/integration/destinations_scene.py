"""The scene of the per-destination tests (test_destinations*.py): the
sockets a scenario keeps, the destination series read out of a scrape,
and what they must be.

What every scenario of those files shares:

Port range 40000-40019 (a pool of 20, none reserved) in every scenario.  For
each (local address, remote address, remote port) of connected TCP sockets
with a pool local port, used = those sockets (on ports not held
exclusively) + the pool ports held exclusively (listeners, bound-only).
"""

import socket

import harness as h


PORT_RANGE = (40000, 40019)
POOL = h.pool_of(PORT_RANGE, "")
TOTAL = 20
MAX_CONNECT_ATTEMPTS = 100


class Sockets:
    """Every socket a scenario makes, closed at the end."""

    def __init__(self):
        self.all = []

    def keep(self, sock):
        self.all.append(sock)
        return sock

    def listener(self, port, family=socket.AF_INET, backlog=128):
        return self.keep(h.listener(port, family, backlog))

    def connect(self, listening, port, family=socket.AF_INET):
        """A client to listening (on port) and its accepted end; returns
        the client."""
        client = self.keep(h.client(port, family))
        self.keep(listening.accept()[0])
        return client

    def close(self):
        for sock in self.all:
            sock.close()


def remote4(port):
    return "127.0.0.1:%d" % port


def ratio(used):
    return h.format_ratio(used / TOTAL)


def destination_values(samples):
    """{(remote, local): (used, usage_ratio, time_wait)}"""
    found = h.destination_samples(samples)
    result = {}
    for key, fields in found.items():
        h.check(set(fields) == {"used", "usage_ratio", "time_wait"},
                "destination %r has only %r" % (key, sorted(fields)))
        result[key] = (fields["used"][0], fields["usage_ratio"][0],
                       fields["time_wait"][0])
    return result


def expected_destinations(used_by_key, time_wait_by_key=None):
    """What destination_values must be; time_wait 0 unless given."""
    time_wait_by_key = time_wait_by_key or {}
    return {key: (float(used), ratio(used),
                  float(time_wait_by_key.get(key, 0)))
            for key, used in used_by_key.items()}


def check_fresh(samples, keys, since, what):
    """The used series of each key was dispatched by a read after since."""
    found = h.destination_samples(samples)
    for key in keys:
        timestamp = found[key]["used"][1]
        h.check(timestamp is not None and timestamp > since * 1000,
                "%s: destination %r not dispatched by the latest read "
                "(timestamp %r, expected after %.0f)"
                % (what, key, timestamp, since * 1000))


# --------------------------------------------------------------------------
# exhaustion


def connect_until_exhausted(sockets, listening, port):
    clients = []
    for _ in range(MAX_CONNECT_ATTEMPTS):
        try:
            clients.append(sockets.connect(listening, port))
        except OSError as error:
            if h.is_address_not_available(error):
                return clients
            h.fail("connect() to %d failed with %r, expected EADDRNOTAVAIL "
                   "after %d connections" % (port, error, len(clients)))
    h.fail("connect() to %d still succeeded after %d attempts"
           % (port, MAX_CONNECT_ATTEMPTS))
