"""The truth from ss: its TCP and UDP tables parsed, with cgroups where ss
prints them, and counted the way the plugin's series count.
"""

from .base import check, run

__all__ = ["SsSocket", "ss_tcp", "ss_pool_ports", "ss_listening_ports",
           "ss_ports_in_state", "TCP_STATES", "SS_STATE_NAMES", "ss_udp",
           "ss_state_counts", "ss_destination_counts", "SsCgroupSocket",
           "ss_with_cgroups", "ss_cgroup_has_cgroup_option"]


class SsSocket:
    def __init__(self, state, local_address, local_port, peer_address,
                 peer_port):
        self.state = state
        self.local_address = local_address
        self.local_port = local_port
        self.peer_address = peer_address
        self.peer_port = peer_port

    def __repr__(self):
        return "%s %s:%d -> %s:%s" % (self.state, self.local_address,
                                      self.local_port, self.peer_address,
                                      self.peer_port)


def _split_endpoint(text):
    address, _, port = text.rpartition(":")
    return address, (int(port) if port.isdigit() else None)


def ss_tcp():
    """`ss -Htan` in the current namespace, parsed.  (No ss state filter:
    with one, ss leaves out the State column.)"""
    return _ss_table("-Htan")


def _ss_table(flags):
    result = run(["ss", flags])
    sockets = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local_address, local_port = _split_endpoint(fields[3])
        peer_address, peer_port = _split_endpoint(fields[4])
        sockets.append(SsSocket(fields[0], local_address, local_port,
                                peer_address, peer_port))
    return sockets


def ss_pool_ports(pool):
    """Distinct local ports of ss -tan that lie in the pool."""
    return {s.local_port for s in ss_tcp() if s.local_port in pool}


def ss_listening_ports():
    return {s.local_port for s in ss_tcp() if s.state == "LISTEN"}


def ss_ports_in_state(state):
    """Local ports of sockets in an ss state ("TIME-WAIT", "ESTAB", ...)."""
    return {s.local_port for s in ss_tcp() if s.state == state}


# The states the plugin reports, in its order, and how ss -tan names them.
TCP_STATES = ("established", "syn_sent", "syn_recv", "fin_wait1",
              "fin_wait2", "time_wait", "close", "close_wait", "last_ack",
              "listen", "closing")
SS_STATE_NAMES = {"ESTAB": "established", "SYN-SENT": "syn_sent",
                  "SYN-RECV": "syn_recv", "FIN-WAIT-1": "fin_wait1",
                  "FIN-WAIT-2": "fin_wait2", "TIME-WAIT": "time_wait",
                  "UNCONN": "close", "CLOSE-WAIT": "close_wait",
                  "LAST-ACK": "last_ack", "LISTEN": "listen",
                  "CLOSING": "closing"}


def ss_udp():
    """`ss -Huan` in the current namespace, parsed like ss_tcp()."""
    return _ss_table("-Huan")


def ss_state_counts(pool):
    """{plugin state name: sockets} of ss -tan sockets with an in-pool local
    port, with every reported state present (0 when none)."""
    counts = dict.fromkeys(TCP_STATES, 0)
    for sock in ss_tcp():
        if sock.local_port not in pool:
            continue
        check(sock.state in SS_STATE_NAMES,
              "ss state %r unknown to the test: %r" % (sock.state, sock))
        counts[SS_STATE_NAMES[sock.state]] += 1
    return counts


def ss_destination_counts(pool, state=None):
    """{(remote, local): sockets} of ss -tan connected sockets with an
    in-pool local port, labelled the way the plugin labels destinations
    ("127.0.0.1:9000" / "[::1]:9000", "127.0.0.1" / "::1").  Sockets whose
    local port also has a listener are left out (held exclusively).  With
    state ("TIME-WAIT"), only the sockets in that ss state."""
    table = ss_tcp()
    listening = {s.local_port for s in table if s.state == "LISTEN"}
    counts = {}
    for sock in table:
        if sock.local_port not in pool or sock.peer_port is None or \
                sock.local_port in listening or \
                (state is not None and sock.state != state):
            continue
        key = ("%s:%d" % (sock.peer_address, sock.peer_port),
               sock.local_address.strip("[]"))
        counts[key] = counts.get(key, 0) + 1
    return counts


class SsCgroupSocket(SsSocket):
    def __init__(self, fields, cgroup):
        local_address, local_port = _split_endpoint(fields[3])
        peer_address, peer_port = _split_endpoint(fields[4])
        SsSocket.__init__(self, fields[0], local_address, local_port,
                          peer_address, peer_port)
        self.cgroup = cgroup  # a path, "unreachable:<hex id>", or None


def ss_with_cgroups(protocol="tcp"):
    """`ss -Htan --cgroup` (or -Huan) in the current namespace, parsed: each
    socket with the cgroup ss names (None when the kernel sent none:
    TIME_WAIT and request sockets)."""
    result = run(["ss", "-Htan" if protocol == "tcp" else "-Huan",
                  "--cgroup"])
    sockets = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        cgroup = next((word[len("cgroup:"):] for word in fields[5:]
                       if word.startswith("cgroup:")), None)
        sockets.append(SsCgroupSocket(fields, cgroup))
    return sockets


def ss_cgroup_has_cgroup_option():
    """Whether this ss prints cgroups (iproute2 5.9 and later)."""
    return "--cgroup" in run(["ss", "--help"], check_status=False).stdout
