"""The pool of ephemeral ports: port lists as the sysctls write them, and the
pool of the current network namespace.
"""

__all__ = ["parse_port_list", "pool_of", "current_pool"]


def parse_port_list(text):
    """"40005,40010-40011" -> {40005, 40010, 40011}"""
    ports = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        low, _, high = item.partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def pool_of(port_range, reserved_text):
    low, high = port_range
    return set(range(low, high + 1)) - parse_port_list(reserved_text)


def current_pool():
    """The pool from the namespace's sysctls."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
        low, high = (int(word) for word in handle.read().split())
    with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as handle:
        return pool_of((low, high), handle.read())
