"""What a finished run leaves behind: the summary, details.json and coverage.svg.

The contract of the summary (key names, order, rounding) lives here, so the
flow in `run` only decides when to write it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Protocol

from .chart import chart_notes, chart_subtitle, chart_title, render_coverage_svg
from .stats import (coverage_ratio, duplicate_ratio, fraction_time, hop_histogram, per_message,
                    relative_times, rounded, rss_summary)
from .deliveries import Delivery, SentMessage
from .procs import Node
from .status import sum_counter, sum_rejections


class MeshTest(Protocol):
    """What a report reads of a finished run (`run.MeshTest` is one), so that this module
    does not import the flow that calls it."""

    args: argparse.Namespace
    nodes: list[Node]
    messages: list[SentMessage]
    deliveries: dict[tuple[int, str], Delivery]
    dead_nodes: set[int]
    sender_index: int
    out_dir: Path
    timed_out: bool
    coverage_ended: float

    @property
    def sender(self) -> Node: ...

    @property
    def total_pairs(self) -> int: ...

    def unclean_exits(self) -> list[Node]: ...


def delivery_times(test: MeshTest) -> list[float]:
    """Every delivery in seconds since the first send, sorted."""
    return relative_times(test.deliveries.values(), test.messages[0].send_started)


def summary(test: MeshTest, formation_s: float) -> dict:
    """The JSON summary printed on stdout and written to summary.json."""
    args = test.args
    total = test.total_pairs
    times = delivery_times(test)
    deliveries = len(test.deliveries)
    full = deliveries == total
    statuses = [n.final_status for n in test.nodes]
    transfers = sum_counter(statuses, "content_transfers")
    return {
        "nodes": args.nodes,
        "max_active_peers": args.max_active_peers,
        "topology": "netns-mdns" if args.netns else args.topology,
        "messages": len(test.messages),
        "size": args.size,
        "seed": args.seed,
        "formation_s": rounded(formation_s),
        "first_coverage_s": rounded(times[0]) if times else None,
        "full_coverage_s": rounded(times[-1]) if full and times else None,
        "coverage": coverage_ratio(deliveries, total),
        "hop_histogram": hop_histogram(test.deliveries.values()),
        "content_transfers": transfers,
        "deliveries": deliveries,
        "duplicates": sum_counter(statuses, "duplicates"),
        "duplicate_ratio": duplicate_ratio(transfers, deliveries),
        "bytes_on_wire": sum_counter(statuses, "bytes_sent"),
        "peak_rss_kib": rss_summary([n.peak_rss_kib for n in test.nodes]),
        "timed_out": test.timed_out,
        # Extras beyond the core contract.
        "zones": args.zones if args.topology == "zones" and not args.netns else None,
        "quic": args.quic,
        "sender": test.sender_index,
        "sender_peer_id": test.sender.peer_id,
        "coverage_50_s": rounded(fraction_time(times, total, 0.5)),
        "coverage_90_s": rounded(fraction_time(times, total, 0.9)),
        "bytes_received": sum_counter(statuses, "bytes_received"),
        "messages_sent": sum_counter(statuses, "messages_sent"),
        "messages_received": sum_counter(statuses, "messages_received"),
        "rejections": sum_rejections(statuses),
        "times_from_node_clock": sum(d.from_node_clock for d in test.deliveries.values()),
        "dead_nodes": sorted(test.dead_nodes),
        "unclean_exits": [n.index for n in test.unclean_exits()],
        "status_missing": [n.index for n in test.nodes if n.final_status is None],
        "per_message": per_message(test.messages, test.deliveries.values(), args.nodes - 1),
        "out_dir": str(test.out_dir),
    }


def chart_end(test: MeshTest, full: bool, times: list[float]) -> float:
    """Where the chart's curve ends: the last delivery, or when watching stopped."""
    if full:
        return times[-1] if times else 0.0  # the curve stays at 100% afterwards
    return max(test.coverage_ended - test.messages[0].send_started, times[-1] if times else 0.0)


def write_chart(test: MeshTest, summary: dict) -> Path:
    """OUT/coverage.svg; returns its path."""
    times = delivery_times(test)
    x_end = chart_end(test, summary["full_coverage_s"] is not None, times)
    svg = render_coverage_svg(times, test.total_pairs, x_end, chart_title(summary),
                              chart_subtitle(summary), chart_notes(summary),
                              timeout_at=test.args.timeout if test.timed_out else None)
    path = test.out_dir / "coverage.svg"
    path.write_text(svg, encoding="utf-8")
    return path


def write_details(test: MeshTest) -> None:
    """OUT/details.json: every node, every message and every delivery."""
    t0 = test.messages[0].send_started
    details = {
        "nodes": [{
            "index": n.index, "peer_id": n.peer_id, "port": n.port, "host": n.host,
            "netns": n.netns, "bootstrap_from": n.bootstrap_from,
            "announced_addrs": n.announced_addrs, "peak_rss_kib": n.peak_rss_kib,
            "exit_code": n.exit_code, "final_status": n.final_status,
        } for n in test.nodes],
        "messages": [{"index": m.index, "id": m.id, "length": m.length,
                      "send_started_unix": m.send_started, "send_finished_unix": m.send_finished}
                     for m in test.messages],
        "deliveries": [{"node": d.node, "message": d.message, "t_s": round(d.at - t0, 4),
                        "hops": d.hops, "from_node_clock": d.from_node_clock}
                       for d in sorted(test.deliveries.values(), key=lambda d: d.at)],
    }
    (test.out_dir / "details.json").write_text(json.dumps(details, indent=1) + "\n")
