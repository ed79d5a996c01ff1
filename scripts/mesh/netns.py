"""The --netns lab: one network namespace per node on a private bridge.

It lets nodes find each other by mDNS as on a real LAN while nothing is
connected to the host's interfaces; creation and teardown live here so the
flow never has to know about `ip` commands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

from .errors import SetupError
from .parallel import capture
from .progress import log

BRIDGE_NS = "mule-bridge"
"""Namespace holding the bridge, so the bridge is not visible on the host."""
BRIDGE = "mulebr0"
"""The bridge every node's veth is attached to."""
NODE_NS_PREFIX = "mule-ns-"
"""Node i runs in namespace NODE_NS_PREFIX + i; stale ones are found by this prefix."""
MAX_NETNS_NODES = 65533
"""Node addresses run from 10.77.0.1 to 10.77.255.253 in the /16."""


def node_ns(index: int) -> str:
    """Name of node `index`'s namespace."""
    return f"{NODE_NS_PREFIX}{index}"


def node_ip(index: int) -> str:
    """Address of node `index` on the private /16 (10.77.0.1, 10.77.0.2, ...)."""
    host = index + 1
    if host > MAX_NETNS_NODES:
        raise SetupError(f"--netns supports at most {MAX_NETNS_NODES} nodes")
    return f"10.77.{host // 256}.{host % 256}"


class NetnsLab:
    """A private L2 segment: bridge in its own namespace, one namespace per node.

    Nothing is connected to the host's interfaces, so traffic never leaves
    the namespaces this script creates.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.created: list[str] = []

    @staticmethod
    def check_prerequisites() -> None:
        """Fail early (before any node exists) without root or iproute2."""
        if os.geteuid() != 0:
            raise SetupError("--netns needs root (network namespaces); run with sudo")
        if not shutil.which("ip"):
            raise SetupError("--netns needs the `ip` command (iproute2)")

    @staticmethod
    def ip(*args: str) -> None:
        """Run `ip ARGS`; a failure is a setup error quoting ip's message."""
        result = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SetupError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")

    def remove_stale(self) -> None:
        """Delete namespaces left behind by an earlier run that could not clean up."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        stale = [n for n in names if n.startswith(NODE_NS_PREFIX) or n == BRIDGE_NS]
        if stale:
            log(f"removing {len(stale)} stale namespaces from an earlier run")
            self.delete(stale)

    def create(self, pool: ThreadPoolExecutor) -> None:
        """The bridge, then every node's namespace in parallel."""
        self.remove_stale()
        self.ip("netns", "add", BRIDGE_NS)
        self.created.append(BRIDGE_NS)
        self.ip("-n", BRIDGE_NS, "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0")
        self.ip("-n", BRIDGE_NS, "link", "set", BRIDGE, "up")
        results = list(pool.map(capture(self.create_node_ns), range(self.count)))
        errors = [err for _, err in results if err]
        if errors:
            raise SetupError(f"creating namespaces failed: {errors[0]}")

    def create_node_ns(self, index: int) -> None:
        """One node's namespace, wired to the bridge with a veth pair."""
        ns, veth = node_ns(index), f"mb{index}"
        self.ip("netns", "add", ns)
        self.created.append(ns)
        self.ip("-n", BRIDGE_NS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip("-n", BRIDGE_NS, "link", "set", veth, "master", BRIDGE, "up")
        self.ip("-n", ns, "link", "set", "lo", "up")
        self.ip("-n", ns, "addr", "add", f"{node_ip(index)}/16", "dev", "eth0")
        self.ip("-n", ns, "link", "set", "eth0", "up")
        # mDNS multicast needs a route; it stays on this private segment.
        self.ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")

    @staticmethod
    def delete(names: Iterable[str]) -> None:
        """Delete namespaces in one `ip -batch` call, ignoring ones already gone."""
        batch = "".join(f"netns delete {name}\n" for name in names)
        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True,
                       capture_output=True)

    def teardown(self) -> None:
        """Delete everything this lab created, newest first; safe to call twice."""
        if self.created:
            log(f"deleting {len(self.created)} network namespaces")
            self.delete(reversed(self.created))
            self.created.clear()
