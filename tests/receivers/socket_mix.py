"""The sockets the Graphite and InfluxDB tests send through collectd: TCP
clients over IPv4 and IPv6 to one server, a port in TIME_WAIT, and one
unconnected and one connected UDP socket."""

import socket

import harness as h

SERVER_PORT = 9000
TIME_WAIT_SERVER_PORT = 9001
UDP_PEER_PORT = 9999  # connect() on UDP sends nothing; no one listens here
V4_CLIENTS = 2
V6_CLIENTS = 1


class SocketMix:
    def __init__(self, pool, udp_unconnected_port):
        self.pool = pool
        self.udp_unconnected_port = udp_unconnected_port
        self.sockets = []
        self.tcp = []
        self.time_wait_port = None

    def keep(self, sock):
        self.sockets.append(sock)
        return sock

    def build(self):
        self.udp_unconnected = self.keep(
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.udp_unconnected.bind(("127.0.0.1", self.udp_unconnected_port))
        self.udp_connected = self.keep(
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.udp_connected.connect(("127.0.0.1", UDP_PEER_PORT))
        listen4 = self.keep(h.listener(SERVER_PORT, socket.AF_INET))
        listen6 = self.keep(h.listener(SERVER_PORT, socket.AF_INET6))
        time_wait_listener = self.keep(h.listener(TIME_WAIT_SERVER_PORT))
        for family, listening, count in ((socket.AF_INET, listen4, V4_CLIENTS),
                                         (socket.AF_INET6, listen6,
                                          V6_CLIENTS)):
            for _ in range(count):
                self.tcp.append(self.keep(h.client(SERVER_PORT, family)))
                self.keep(listening.accept()[0])
        self.time_wait_port = h.make_time_wait(time_wait_listener,
                                               TIME_WAIT_SERVER_PORT)

    def tcp_pool_ports(self):
        return ({h.local_port(s) for s in self.tcp}
                | {self.time_wait_port}) & self.pool

    def udp_pool_ports(self):
        return {h.local_port(self.udp_unconnected),
                h.local_port(self.udp_connected)} & self.pool

    def close(self):
        for sock in self.sockets:
            sock.close()
