"""The numbers of the summary, computed from plain records.

Pure functions (no processes, no clocks) so that every figure the report
prints can be checked against hand-computed values.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable

from .deliveries import Delivery, SentMessage


def fraction_time(times: list[float], total: int, fraction: float) -> float | None:
    """Earliest time at which `fraction` of `total` pairs were covered."""
    needed = math.ceil(fraction * total - 1e-9)
    if total == 0 or needed == 0:
        return 0.0
    if len(times) < needed:
        return None
    return times[needed - 1]


def rounded(value: float | None, digits: int = 3) -> float | None:
    """round(), letting None (not measured) through."""
    return None if value is None else round(value, digits)


def relative_times(deliveries: Iterable[Delivery], t0: float) -> list[float]:
    """Delivery times in seconds since `t0`, sorted, never negative."""
    return sorted(max(0.0, d.at - t0) for d in deliveries)


def hop_histogram(deliveries: Iterable[Delivery]) -> dict[str, int]:
    """Deliveries per hop count, keys as strings in ascending hop order."""
    hops: dict[int, int] = {}
    for d in deliveries:
        hops[d.hops] = hops.get(d.hops, 0) + 1
    return {str(h): hops[h] for h in sorted(hops)}


def coverage_ratio(deliveries: int, total: int) -> float:
    """Fraction of (node, message) pairs delivered; 1.0 when nothing was due."""
    return round(deliveries / total, 6) if total else 1.0


def duplicate_ratio(transfers: int, deliveries: int) -> float | None:
    """Content transfers beyond the first per delivery (None without deliveries)."""
    return round((transfers - deliveries) / deliveries, 6) if deliveries else None


def rss_summary(rss: list[int | None]) -> dict:
    """Max and mean of the peak RSS values that could be read, plus all of them."""
    known = [r for r in rss if r is not None]
    return {
        "max": max(known) if known else None,
        "mean": round(statistics.fmean(known), 1) if known else None,
        "per_node": rss,
    }


def per_message(messages: Iterable[SentMessage], deliveries: Iterable[Delivery],
                receivers: int) -> list[dict]:
    """Send duration and coverage times of each message (full only if all `receivers` got it)."""
    deliveries = list(deliveries)
    rows = []
    for m in messages:
        times = sorted(d.at - m.send_started for d in deliveries if d.message == m.id)
        rows.append({
            "id": m.id,
            "send_s": rounded(m.send_finished - m.send_started),
            "delivered": len(times),
            "first_coverage_s": rounded(times[0]) if times else None,
            "full_coverage_s": rounded(times[-1]) if times and len(times) == receivers else None,
        })
    return rows
