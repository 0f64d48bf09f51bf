"""Sockets the tests make, always on 127.0.0.1 / ::1: in the test's own
process, or in a SocketProcess (another process, so that it can sit in a
cgroup or a network namespace of its own).
"""

import contextlib
import errno
import json
import os
import select
import socket
import subprocess
import time

from .base import PYTHON, TestFailure, fail
from .ss import ss_ports_in_state, ss_tcp

__all__ = ["LOOPBACK", "listener", "client", "local_port", "make_time_wait",
           "is_address_not_available", "SOCKET_PROCESS_CODE", "SocketProcess"]


LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def listener(port, family=socket.AF_INET, backlog=128):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK[family], port))
    sock.listen(backlog)
    return sock


def client(port, family=socket.AF_INET, bind_port=None):
    """A connection to the loopback listener on port; returns the socket.
    Raises OSError (e.g. EADDRNOTAVAIL) when connect() fails."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if bind_port is not None:
            sock.bind((LOOPBACK[family], bind_port))
        sock.connect((LOOPBACK[family], port))
    except OSError:
        sock.close()
        raise
    return sock


def local_port(sock):
    return sock.getsockname()[1]


def make_time_wait(listening, port, family=socket.AF_INET, bind_port=None):
    """A connection to the listener, closed client first: the client end
    stays in TIME_WAIT, holding its local port without a file descriptor.
    Returns that port once ss shows it in TIME-WAIT."""
    client_end = client(port, family, bind_port)
    server_end = listening.accept()[0]
    time_wait_port = local_port(client_end)
    client_end.close()
    server_end.close()
    deadline = time.monotonic() + 5
    while time_wait_port not in ss_ports_in_state("TIME-WAIT"):
        if time.monotonic() > deadline:
            fail("port %d never showed TIME-WAIT in ss: %r"
                 % (time_wait_port, ss_tcp()))
        time.sleep(0.05)
    return time_wait_port


def is_address_not_available(error):
    return isinstance(error, OSError) and error.errno == errno.EADDRNOTAVAIL


# The program of a SocketProcess: makes sockets on 127.0.0.1 / ::1 as told,
# one JSON request per line on stdin, one JSON answer per line on stdout.
# It dies with its parent (PR_SET_PDEATHSIG) or when stdin closes.
SOCKET_PROCESS_CODE = r"""
import ctypes, json, os, signal, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent gone")
if sys.argv[2]:
    fd = os.open(sys.argv[2], os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        sys.exit("setns: " + os.strerror(ctypes.get_errno()))
    os.close(fd)
ADDRESS = {4: (socket.AF_INET, "127.0.0.1"), 6: (socket.AF_INET6, "::1")}
kept = {}

def keep(sock):
    kept[sock.fileno()] = sock
    return sock.fileno()

def make(family, kind):
    af, address = ADDRESS[family]
    sock = socket.socket(af, kind)
    if af == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock, address

def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()

def listener(port, family=4):
    sock, address = make(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    return sock

def op_listen(port, family=4):
    return {"id": keep(listener(port, family))}

def op_connect(port, count=1, family=4):
    ports = []
    for _ in range(count):
        sock, address = make(family, socket.SOCK_STREAM)
        sock.connect((address, port))
        keep(sock)
        ports.append(sock.getsockname()[1])
    return {"ports": ports}

def op_accept(id, count):
    for _ in range(count):
        keep(kept[id].accept()[0])
    return {}

def op_bind(port=0, family=4, udp=False):
    sock, address = make(family, socket.SOCK_DGRAM if udp
                         else socket.SOCK_STREAM)
    sock.bind((address, port))
    return {"id": keep(sock), "port": sock.getsockname()[1]}

def op_udp_connect(port, family=4):
    sock, address = make(family, socket.SOCK_DGRAM)
    sock.connect((address, port))
    return {"id": keep(sock), "port": sock.getsockname()[1]}

def op_close(ids=None, ports=None):
    for fd, sock in list(kept.items()):
        if (ids is not None and fd in ids) or (
                ports is not None and sock.type == socket.SOCK_STREAM and
                sock.getsockname()[1] in ports):
            reset(kept.pop(fd))
    return {}

def op_reset_all():
    for fd in list(kept):
        reset(kept.pop(fd))
    return {}

def op_time_wait(port, count=1):
    # Closed client first: the client end stays in TIME_WAIT.
    listening = listener(port)
    ports = []
    for _ in range(count):
        sock, address = make(4, socket.SOCK_STREAM)
        sock.connect((address, port))
        server = listening.accept()[0]
        ports.append(sock.getsockname()[1])
        sock.close()
        server.recv(1)
        server.close()
    listening.close()
    return {"ports": ports}

def op_fin_wait2(port):
    # Closed client first, the server end kept open: the orphaned client
    # end waits in FIN_WAIT2.
    listening = listener(port)
    sock, address = make(4, socket.SOCK_STREAM)
    sock.connect((address, port))
    keep(listening.accept()[0])
    keep(listening)
    local = sock.getsockname()[1]
    sock.close()
    return {"port": local}

print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    try:
        answer = {"ok": globals()["op_" + request.pop("op")](**request)}
    except OSError as error:
        answer = {"errno": error.errno, "error": str(error)}
    print(json.dumps(answer), flush=True)
"""


class SocketProcess:
    """A process that makes sockets when told (SOCKET_PROCESS_CODE), in
    the network namespace at netns_path (default: the current one).  Move
    it into a cgroup before it makes any: a socket belongs to the group of
    the process that made it, for good."""

    def __init__(self, netns_path=""):
        self.process = subprocess.Popen(
            [PYTHON, "-c", SOCKET_PROCESS_CODE, str(os.getpid()),
             netns_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self._expect_line("ready")

    def _read_line(self, timeout=10):
        ready = select.select([self.process.stdout], [], [], timeout)[0]
        return self.process.stdout.readline() if ready else ""

    def _expect_line(self, expected):
        line = self._read_line()
        if line.strip() != expected:
            self.stop(reset=False)
            fail("socket process %d: expected %r, got %r; stderr: %s"
                 % (self.pid, expected, line, self.process.stderr.read()))

    def call(self, op, **args):
        """Runs op_<op>(**args) in the process; returns its answer (a
        dict).  Raises OSError with its errno when the call failed there."""
        request = dict(args, op=op)
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            fail("socket process %d is gone: %s"
                 % (self.pid, self.process.stderr.read()))
        line = self._read_line()
        if not line:
            fail("socket process %d did not answer %r: %s"
                 % (self.pid, request, self.process.stderr.read()
                    if self.process.poll() is not None else "(still runs)"))
        answer = json.loads(line)
        if "errno" in answer:
            raise OSError(answer["errno"], "%s: %s" % (op, answer["error"]))
        return answer["ok"]

    def stop(self, reset=True):
        """Ends the process, its sockets reset first (no TIME_WAIT)."""
        if self.process.poll() is None and reset:
            with contextlib.suppress(OSError, TestFailure, ValueError):
                self.call("reset_all")
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout,
                       self.process.stderr):
            with contextlib.suppress(OSError):
                stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
