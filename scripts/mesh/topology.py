"""Which node bootstraps from which: the shape of the mesh before it forms.

Pure functions over node indices, so a topology can be checked (and tested)
without starting a single process.
"""

from __future__ import annotations

from .errors import SetupError

TOPOLOGIES = ("star", "chain", "zones")
"""Topologies a user may choose; `mdns` (no bootstrap at all) is used by --netns."""


def zones_of(index: int, zones: int) -> set[int]:
    """The two zones node `index` belongs to (one when there is a single zone)."""
    return {index % zones, (index + 1) % zones}


def zone_bootstrap(index: int, zones: int) -> list[int]:
    """The lowest-index earlier node of each of this node's zones."""
    sources = set()
    for zone in zones_of(index, zones):
        for earlier in range(index):
            if zone in zones_of(earlier, zones):
                sources.add(earlier)
                break
    return sorted(sources)


def bootstrap_plan(topology: str, count: int, zones: int) -> list[list[int]]:
    """For each node, the indices of the nodes it bootstraps from."""
    if topology == "star":
        return [[]] + [[0] for _ in range(1, count)]
    if topology == "chain":
        return [[]] + [[i - 1] for i in range(1, count)]
    if topology == "zones":
        return [zone_bootstrap(i, zones) for i in range(count)]
    if topology == "mdns":
        return [[] for _ in range(count)]
    raise SetupError(f"unknown topology {topology!r}")


def connected_parts(plan: list[list[int]]) -> int:
    """How many disconnected parts the bootstrap graph has (edges undirected)."""
    parent = list(range(len(plan)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for node, sources in enumerate(plan):
        for source in sources:
            parent[find(node)] = find(source)
    return len({find(i) for i in range(len(plan))})


def check_connected(plan: list[list[int]]) -> None:
    """Refuse to run a bootstrap graph that leaves nodes unreachable."""
    parts = connected_parts(plan)
    if parts > 1:
        raise SetupError(f"bootstrap graph has {parts} disconnected parts")
