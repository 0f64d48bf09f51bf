"""Scraping write_prometheus: an HTTP client that takes no ephemeral port,
the exposition format parsed, and waiting for a read that started after a
change.
"""

import re
import socket
import struct
import time

from .base import HOSTNAME, fail

__all__ = ["PROMETHEUS_PORT", "SCRAPE_CLIENT_PORTS", "FRESH_READ_MARGIN_S",
           "SETTLE_S", "next_scrape_client_port", "close_with_reset",
           "connect_from_fixed_port", "http_get", "http_get_metrics",
           "parse_labels", "parse_prometheus_text", "scrape", "host_labels",
           "SCRAPE_SUCCESS", "sample", "value_of", "format_key",
           "ephemeral_series", "wait_for_fresh_read", "wait_for_read_after",
           "hosts_served", "scrape_success_stamp", "wait_for_fresh_hosts"]


PROMETHEUS_PORT = 9103
# Scrape clients bind to fixed ports here, outside every test's port range,
# rotating so that no (client, server) tuple is reused quickly.
SCRAPE_CLIENT_PORTS = range(31000, 32000)

# A read counts as "fresh" when its scrape_success timestamp is at least this
# much later than the moment the test finished changing the sockets.  A read
# scans in microseconds, so a read stamped this late started after the change.
FRESH_READ_MARGIN_S = 0.25
# After a fresh scrape_success, wait this long and scrape again.  The plugin
# dispatches scrape_success last, so the read's other values were queued
# before it, and with one write thread (collectd_base_config) they reached
# write_prometheus before it too; the pause lets a scrape that caught the
# next read mid-dispatch pass.
SETTLE_S = 0.2


_next_scrape_port = [0]


def next_scrape_client_port():
    index = _next_scrape_port[0] % len(SCRAPE_CLIENT_PORTS)
    _next_scrape_port[0] += 1
    return SCRAPE_CLIENT_PORTS[index]


def close_with_reset(sock):
    """Close without leaving TIME_WAIT behind (SO_LINGER 0 sends RST)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def connect_from_fixed_port(port, timeout):
    """A TCP connection to 127.0.0.1:port from a client port outside every
    test's range, so that it takes no ephemeral port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.settimeout(timeout)
        sock.bind(("127.0.0.1", next_scrape_client_port()))
        sock.connect(("127.0.0.1", port))
    except OSError:
        close_with_reset(sock)
        raise
    return sock


def http_get(port, path, timeout=5.0):
    """GET http://127.0.0.1:port/path; returns (status code, body)."""
    sock = connect_from_fixed_port(port, timeout)
    try:
        sock.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                      "Accept: text/plain\r\nConnection: close\r\n\r\n"
                      % path).encode())
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        close_with_reset(sock)
    response = b"".join(chunks).decode("utf-8", "replace")
    head, _, body = response.partition("\r\n\r\n")
    status_line = head.split("\r\n", 1)[0]
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        fail("GET %s answered %r" % (path, status_line))
    return int(fields[1]), body


def http_get_metrics(timeout=5.0):
    status, body = http_get(PROMETHEUS_PORT, "/metrics", timeout)
    if status != 200:
        fail("scrape answered %d" % status)
    return body


_SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r'\s+(?P<value>\S+)(?:\s+(?P<timestamp>-?\d+))?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _unescape_label_value(text):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), text)


def parse_labels(text):
    labels = []
    position = 0
    text = (text or "").strip()
    while position < len(text):
        match = _LABEL_RE.match(text, position)
        if not match:
            fail("cannot parse labels %r" % text)
        labels.append((match.group(1), _unescape_label_value(match.group(2))))
        position = match.end()
    return tuple(sorted(labels))


def parse_prometheus_text(body):
    """{(name, sorted label tuple): (value, timestamp_ms or None)}"""
    samples = {}
    for line in body.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE_RE.match(line)
        if not match:
            fail("cannot parse exposition line %r" % line)
        key = (match.group("name"), parse_labels(match.group("labels")))
        timestamp = match.group("timestamp")
        samples[key] = (float(match.group("value")),
                        int(timestamp) if timestamp is not None else None)
    return samples


def scrape():
    return parse_prometheus_text(http_get_metrics())


def host_labels(**labels):
    labels["instance"] = HOSTNAME
    return tuple(sorted(labels.items()))


SCRAPE_SUCCESS = "collectd_ephemeral_port_exporter_scrape_success"


def sample(samples, name, **labels):
    """(value, timestamp_ms) of one series, or None when it is absent."""
    return samples.get((name, host_labels(**labels)))


def value_of(samples, name, **labels):
    found = sample(samples, name, **labels)
    if found is None:
        fail("series %s%r missing from the scrape; series present: %s"
             % (name, labels, sorted(format_key(k) for k in samples
                                     if k[0].startswith("collectd_"))))
    return found[0]


def format_key(key):
    name, labels = key
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels))


def ephemeral_series(samples):
    """The keys of every series the plugin makes."""
    prefixes = ("collectd_ephemeral_port", "collectd_instance_open")
    return [key for key in samples if key[0].startswith(prefixes)]


def wait_for_fresh_read(collectd, since, timeout=15.0):
    """Scrapes until scrape_success was dispatched by a read that started
    after `since` (a time.time()), then returns a scrape taken once that
    read's other values have landed too."""
    threshold_ms = (since + FRESH_READ_MARGIN_S) * 1000.0
    deadline = time.monotonic() + timeout
    last_seen = None
    while time.monotonic() < deadline:
        if collectd.process.poll() is not None:
            fail("collectd exited with status %d\n%s"
                 % (collectd.process.returncode, collectd.diagnostics()))
        found = sample(scrape(), SCRAPE_SUCCESS)
        last_seen = found
        if found is not None and found[1] is not None and \
                found[1] > threshold_ms:
            time.sleep(SETTLE_S)
            return scrape()
        time.sleep(0.1)
    fail("no fresh read within %.0f s: %s is %r, wanted a timestamp after "
         "%.0f ms" % (timeout, SCRAPE_SUCCESS, last_seen, threshold_ms))


def wait_for_read_after(collectd, since, timeout=15.0):
    """Like wait_for_fresh_read, but returns the scrape of the read that
    follows the first fresh one.  Reads of one plugin never overlap, so that
    read's scan started after the first fresh read had dispatched, hence
    after `since`, however long a loaded machine stalls a read between its
    scan and its dispatch."""
    first = wait_for_fresh_read(collectd, since, timeout)
    first_ms = sample(first, SCRAPE_SUCCESS)[1]
    # wait_for_fresh_read wants a timestamp above since + margin.
    return wait_for_fresh_read(
        collectd, first_ms / 1000.0 - FRESH_READ_MARGIN_S + 0.0005, timeout)


def hosts_served(samples):
    """The instance label of every series the plugin makes."""
    return {dict(key[1]).get("instance") for key in ephemeral_series(samples)}


def scrape_success_stamp(samples, host):
    """The timestamp (ms) of host's scrape_success, 0 when absent."""
    found = samples.get((SCRAPE_SUCCESS, (("instance", host),)))
    return found[1] if found and found[1] is not None else 0


def wait_for_fresh_hosts(collectd, hosts, since, timeout=15.0):
    """wait_for_fresh_read for several hosts: scrapes until each host's
    scrape_success was dispatched by a read that started after `since`."""
    threshold_ms = (since + FRESH_READ_MARGIN_S) * 1000.0
    deadline = time.monotonic() + timeout
    while True:
        if collectd.process.poll() is not None:
            fail("collectd exited with status %d\n%s"
                 % (collectd.process.returncode, collectd.diagnostics()))
        samples = scrape()
        stale = [host for host in hosts
                 if scrape_success_stamp(samples, host) <= threshold_ms]
        if not stale:
            time.sleep(SETTLE_S)
            return scrape()
        if time.monotonic() > deadline:
            fail("no fresh read of %s within %.0f s (after %.0f ms); "
                 "hosts served: %s" % (stale, timeout, threshold_ms,
                                       sorted(hosts_served(samples))))
        time.sleep(0.1)
