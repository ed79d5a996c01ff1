"""Listening ports for every node, chosen before any node starts.

Bootstrap addresses name a port, so a node's port must be known before the
node that bootstraps from it is launched.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from .errors import SetupError

PORT_FLOOR = 10000
"""Lowest port picked when no --base-port is given (well above the privileged range)."""


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections (Linux default if unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(port: int, udp: bool) -> bool:
    """True if TCP (and with `udp` also UDP) `port` can be bound on 127.0.0.1 now."""
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def pick_ports(count: int, base_port: int | None, udp: bool, rng: random.Random) -> list[int]:
    """Ports for every node, known before any node starts.

    With --base-port: base, base+1, ... (all must be free).  Otherwise free
    ports are picked *below* the kernel's ephemeral range, so that the nodes'
    own outgoing connections cannot grab a port before its node listens on it.
    """
    if base_port is not None:
        return fixed_ports(count, base_port, udp)
    low, _ = ephemeral_port_range()
    if low - PORT_FLOOR < count * 3:
        return pick_ports_from_kernel(count, udp)
    ports: list[int] = []
    candidate = rng.randrange(PORT_FLOOR, low - count * 2)
    while len(ports) < count and candidate < low:
        if port_is_free(candidate, udp):
            ports.append(candidate)
        candidate += 1
    if len(ports) < count:
        return pick_ports_from_kernel(count, udp)
    return ports


def fixed_ports(count: int, base_port: int, udp: bool) -> list[int]:
    """base, base+1, ...: refused if any is above 65535 or already taken."""
    ports = list(range(base_port, base_port + count))
    if ports[-1] > 65535:
        raise SetupError(f"--base-port {base_port} + {count} nodes exceeds 65535")
    taken = [p for p in ports if not port_is_free(p, udp)]
    if taken:
        raise SetupError(f"ports already in use: {taken[:10]} (choose another --base-port)")
    return ports


def pick_ports_from_kernel(count: int, udp: bool) -> list[int]:
    """Fallback: bind port 0 (holding every socket until all are chosen)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if udp:
                usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(usock)
                try:
                    usock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports
