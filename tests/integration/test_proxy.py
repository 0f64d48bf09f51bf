"""A real proxy as the judge: HAProxy's own count of failed upstream
connects against the plugin's per-destination usage_ratio.

What the scene shares is in tw_reuse_scene.py's docstring.  Here: a 6-port
pool, tcp_tw_reuse 2 (Linux's default), tcp_tw_reuse_delay 5000 ms; a real
HTTP/1.1 backend (Python's http.server, keep-alive) on 127.0.0.1:9000;
HAProxy 2.6 (Debian's) on 127.0.0.1:8000 in front of it, `mode tcp`,
`retries 0`; curl as the client, from ports 30000-30999 (outside the pool),
one request per connection.

Why `mode tcp`: curl closes first; HAProxy passes the close on to the
server side as a FIN of its own (shutw), so it closes its upstream
connection first and that socket ends in TIME_WAIT on a pool port, the
case of a busy proxy.  `mode http` would hide what this test is about
(measured here with the same backend and curl): by default HAProxy keeps
its server connections alive and reuses them, and with
`option http-server-close` it closes them with a reset (the backend sees
ECONNRESET), so neither leaves TIME_WAIT on its side.  HAProxy counts each upstream connect()
that fails in the server's `econ` (its stats socket, `show stat`), and
logs "no free ports".

Phase "below": 4 requests 2 s apart (0.5/s, below pool / delay = 1.2/s).
Each succeeds, econ stays 0, and the read after each reports usage_ratio
below 1 for 127.0.0.1:9000 (reuse keeps connect() working: the TIME_WAIT
ports older than 5 s are taken over).

Phase "above": once those are older than the delay, 12 requests at once
(far above 1.2/s): 6 succeed, 6 fail (curl gets the connection closed,
econ rises by 6); the read after the burst reports usage_ratio 1, and one
more request fails too (econ 7).  Then, once the delay has passed, the
read reports below 1 and a request succeeds again (econ stays 7).

The other upstream the issue asks for, one that is not loopback, would
need traffic to an address outside 127/8 and ::1, which the tests may not
send: test_tw_reuse.py and the unit suite cover that branch of the rule."""

import os
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # siblings, then harness/
import harness as h  # noqa: E402
from tw_reuse_scene import (  # noqa: E402
    DELAY_MS, PORT_RANGE, SERVER_PORT, TOTAL, destination, key_of,
    set_reuse)


PROXY_PORT = 8000
CLIENT_PORTS = "30000-30999"
KEY = key_of(socket.AF_INET)

BACKEND = r'''
import http.server, socketserver
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client side closes
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
Server(("127.0.0.1", %d), Handler).serve_forever()
''' % SERVER_PORT

HAPROXY_CONFIG = """global
  stats socket %(socket)s mode 600 level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  retries 0
frontend fe
  bind 127.0.0.1:%(proxy)d
  default_backend be
backend be
  server backend 127.0.0.1:%(server)d
"""


class Proxy(h.Daemon):
    """HAProxy in the foreground, with its stats socket in tmp."""

    def __init__(self, tmp):
        self.socket_path = tmp.join("haproxy.sock")
        config = tmp.join("haproxy.cfg")
        with open(config, "w") as handle:
            handle.write(HAPROXY_CONFIG % {"socket": self.socket_path,
                                           "proxy": PROXY_PORT,
                                           "server": SERVER_PORT})
        h.Daemon.__init__(self, ["haproxy", "-f", config, "-db"],
                          tmp.join("haproxy.log"))

    def wait_ready(self):
        """Until the stats socket is there and the frontend listens: not
        by connecting, which would make an upstream connection from a pool
        port."""
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket_path) or \
                PROXY_PORT not in h.ss_listening_ports():
            if self.process.poll() is not None or \
                    time.monotonic() > deadline:
                h.fail("haproxy did not start\n%s" % self.diagnostics())
            time.sleep(0.05)
        return self

    def failed_connects(self):
        """The server's econ: upstream connect()s that failed."""
        stats = socket.socket(socket.AF_UNIX)
        stats.connect(self.socket_path)
        stats.sendall(b"show stat\n")
        text = b""
        while True:
            chunk = stats.recv(65536)
            if not chunk:
                break
            text += chunk
        stats.close()
        lines = text.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            fields = dict(zip(header, line.split(",")))
            if fields.get("pxname") == "be" and \
                    fields.get("svname") == "backend":
                return int(fields["econ"] or 0)
        h.fail("no backend line in haproxy's stats: %r" % lines)


def request():
    """One request through the proxy: True when it got its 200."""
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
         "--local-port", CLIENT_PORTS, "--max-time", "3",
         "http://127.0.0.1:%d/" % PROXY_PORT],
        capture_output=True, text=True)
    return result.stdout == "200"


def ratio_after(collectd, since, what):
    used, ratio, time_wait = destination(
        h.wait_for_fresh_read(collectd, since), KEY)
    h.log("%s: %s used %d/%d, usage_ratio %g, time_wait %d"
          % (what, KEY[0], used, TOTAL, ratio, time_wait))
    return ratio


def below(collectd, proxy):
    for i in range(4):
        sent = time.time()
        h.check(request(), "below pool / delay: request %d failed: %s"
                % (i + 1, proxy.output_text()))
        h.check_equal(proxy.failed_connects(), 0,
                      "below pool / delay: haproxy's failed connects")
        ratio = ratio_after(collectd, sent, "below, request %d" % (i + 1))
        h.check(ratio < 1, "below pool / delay: usage_ratio %g while the "
                "proxy connects" % ratio)
        time.sleep(max(0.0, sent + 2.0 - time.time()))
    return sent


def above(collectd, proxy, last_below):
    time.sleep(max(0.0, last_below + DELAY_MS / 1000 + 0.5 - time.time()))
    burst = time.time()
    outcomes = [request() for _ in range(2 * TOTAL)]
    h.check_equal(outcomes, [True] * TOTAL + [False] * TOTAL,
                  "above pool / delay: the burst's requests")
    h.check_equal(proxy.failed_connects(), TOTAL,
                  "above pool / delay: haproxy's failed connects")
    ratio = ratio_after(collectd, burst, "above, after the burst")
    h.check_equal(ratio, 1.0, "above pool / delay: usage_ratio while the "
                  "proxy fails")
    h.check(not request(), "above pool / delay: a request after the read "
            "succeeded")
    h.check_equal(proxy.failed_connects(), TOTAL + 1,
                  "above pool / delay: haproxy's failed connects")
    h.check(time.time() < burst + DELAY_MS / 1000 - 0.5,
            "the read and the request after the burst took too long")
    h.check("no free ports" in proxy.output_text(),
            "haproxy's log does not say why: %s" % proxy.output_text())

    recovered = burst + DELAY_MS / 1000 + 0.5
    time.sleep(max(0.0, recovered - time.time()))
    ratio = ratio_after(collectd, recovered, "after the delay")
    h.check(ratio < 1, "after the delay: usage_ratio %g" % ratio)
    h.check(request(), "after the delay: a request failed")
    h.check_equal(proxy.failed_connects(), TOTAL + 1,
                  "after the delay: haproxy's failed connects")
    h.log("FIGURES: haproxy mode tcp, pool %d, delay %d ms: 4 requests at "
          "0.5/s all succeed, usage_ratio < 1 at every read; a burst of %d: "
          "%d succeed, %d fail (econ %d), usage_ratio 1, the next fails "
          "(econ %d); after the delay < 1 and requests succeed"
          % (TOTAL, DELAY_MS, 2 * TOTAL, TOTAL, TOTAL, TOTAL, TOTAL + 1))


def proxy_scenario():
    for tool in ("haproxy", "curl"):
        if shutil.which(tool) is None:
            raise h.TestSkip("%s is not installed (Debian package %s)"
                             % (tool, tool))
    set_reuse(2)
    with h.TempDir() as tmp, \
            h.Daemon([sys.executable, "-c", BACKEND],
                     tmp.join("backend.log")) as backend, \
            Proxy(tmp) as proxy, \
            h.Collectd(tmp, h.plugin_block([])) as collectd:
        # From a fixed port outside the pool, closed with a reset.
        backend.start().wait_listening(SERVER_PORT)
        proxy.start().wait_ready()
        collectd.start_and_wait_ready()
        above(collectd, proxy, below(collectd, proxy))


if __name__ == "__main__":
    h.run_scenarios({"haproxy": proxy_scenario}, port_range=PORT_RANGE)
