"""Reading the JSON objects `mule status --json` prints.

The fields have changed shape over time (lists of peers or plain counts), so
every read goes through `count_of` and a missing field counts as zero.
"""

from __future__ import annotations

from typing import Any, Iterable


def count_of(value: Any) -> int:
    """Status fields may be lists of peers or plain numbers."""
    if isinstance(value, (list, dict)):
        return len(value)
    if isinstance(value, (int, float)):
        return int(value)
    return 0


def is_formed(status: dict, min_peers: int) -> bool:
    """A node counts as part of the mesh once it has peers and knows of one."""
    peers = max(count_of(status.get("selected_peers")), count_of(status.get("connected_peers")))
    return peers >= min_peers and count_of(status.get("known_peers")) >= 1


def describe_status(status: dict) -> str:
    """One line saying why a node does not count as formed yet."""
    return (f"connected={count_of(status.get('connected_peers'))} "
            f"selected={count_of(status.get('selected_peers'))} "
            f"known={count_of(status.get('known_peers'))}")


def sum_counter(statuses: Iterable[dict | None], name: str) -> int:
    """One counter summed over every node (nodes without a status count zero)."""
    return sum(count_of((status or {}).get("counters", {}).get(name)) for status in statuses)


def sum_rejections(statuses: Iterable[dict | None]) -> dict[str, int]:
    """Rejections per reason, summed over every node, in order of first appearance."""
    total: dict[str, int] = {}
    for status in statuses:
        reasons = (status or {}).get("counters", {}).get("rejections") or {}
        if isinstance(reasons, dict):
            for reason, n in reasons.items():
                total[reason] = total.get(reason, 0) + count_of(n)
    return total
