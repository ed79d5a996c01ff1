"""What was sent and who got it: the records the measurement is made of.

Turning a node's `mule list --json` output into deliveries is pure, so the
rules for trusting a node's own clock can be tested without any node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass
class SentMessage:
    """One broadcast the sender made, with wall-clock times around `mule send`."""

    index: int
    id: str
    length: int
    send_started: float  # unix seconds
    send_finished: float


@dataclass
class Delivery:
    """The first time the script knows `node` held `message`."""

    node: int
    message: str
    at: float  # unix seconds
    hops: int
    from_node_clock: bool  # True: node's received_ms; False: time of the poll


def record_listing(deliveries: dict[tuple[int, str], Delivery], node: int, listing: Iterable[dict],
                   messages: Iterable[SentMessage], polled_at: float) -> None:
    """Add to `deliveries` the messages of `messages` that `listing` shows `node` holds.

    The node's own `received_ms` is used when it reports one, clamped to
    [send start, poll time]; otherwise the poll time.  Hops are the length
    of the entry's `hops` list, -1 when it has none.  A delivery already
    recorded is kept (the first sighting wins).
    """
    wanted = {m.id: m for m in messages}
    for entry in listing:
        message_id = str(entry.get("id", "")).lower()
        if message_id not in wanted or (node, message_id) in deliveries:
            continue
        received_ms = entry.get("received_ms")
        from_clock = isinstance(received_ms, (int, float)) and received_ms > 0
        at = received_ms / 1000 if from_clock else polled_at
        at = min(max(at, wanted[message_id].send_started), polled_at)
        hops = entry.get("hops")
        deliveries[(node, message_id)] = Delivery(
            node, message_id, at, len(hops) if isinstance(hops, list) else -1, from_clock)


def holds_all(deliveries: dict[tuple[int, str], Delivery], node: int,
              messages: Iterable[SentMessage]) -> bool:
    """True once `node` has been seen holding every message."""
    return all((node, m.id) in deliveries for m in messages)
