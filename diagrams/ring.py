#!/usr/bin/env python3
"""Generate diagrams/ring-selection.dot: mule's ring selection, computed rather than hand-drawn.

The selection rule mirrors `select` in src/net/ring/select.rs:

  * put all known peer ids and our own id on one ring, sorted;
  * with N ring members and ourselves at position i, if there are at most L other peers
    (or L == 0) take them all;
  * otherwise, for n in 0..L, start at (i + 2^n) mod N and walk forward to the first peer that
    is not ourselves, not already picked and not bad; if only bad peers remain, take the first
    of them anyway (a bad peer beats no peer).

Three panels, laid out with neato and fixed positions (pos="x,y!"):
  a) node n0 with L = 4 picks n1, n2, n4, n8 (distances 1, 2, 4, 8);
  b) every node's picks with L = 4, all edges faint: the overlay is connected, and the
     computed diameter is printed under the panel;
  c) the same as a) while n4 keeps failing: distance 4 lands on n4, the walk moves on to n5.

Usage: python3 diagrams/ring.py [OUTPUT.dot]   (standard library only; default: stdout)
"""

from __future__ import annotations

import math
import sys
from collections import deque
from typing import Callable, Iterable

N_NODES = 13  # ring members, already sorted by peer id; labelled n0..n12 by ring position
LIMIT = 4  # L for the pictures
DEFAULT_LIMIT = 2  # mule's default peer limit, for the caption

# colours shared with the other diagrams
SELF_FILL, SELF_LINE = "#FFE3C2", "#E07B00"
PICK_FILL, PICK_LINE = "#D5F0D5", "#2E8B57"
BAD_FILL, BAD_LINE = "#FDECEA", "#C62828"
NODE_FILL, NODE_LINE = "#EEF3FB", "#6B8BC3"
ROUND_COLOURS = ["#3B6FB6", "#2E8B57", "#7E57C2", "#C2185B", "#B35F00", "#00838F"]


def select(me: int, peers: Iterable[int], limit: int,
           is_bad: Callable[[int], bool] = lambda _p: False) -> list[tuple[int, int]]:
    """Ring selection for `me`. Returns (peer, round) pairs in selection order."""
    ring = sorted(set(peers) | {me})
    n = len(ring)
    i = ring.index(me)
    if limit == 0 or n - 1 <= limit:
        return [(ring[(i + k) % n], k - 1) for k in range(1, n)]
    bad = [is_bad(p) for p in ring]
    taken = [False] * n
    taken[i] = True
    picked: list[tuple[int, int]] = []
    distance = 1
    for rnd in range(limit):
        start = (i + distance) % n
        walk = [(start + k) % n for k in range(n)]
        j = next((j for j in walk if not taken[j] and not bad[j]), None)
        if j is None:
            j = next((j for j in walk if not taken[j]), None)
        if j is None:
            break
        taken[j] = True
        picked.append((ring[j], rnd))
        distance = (distance * 2) % n
    return picked


def overlay(nodes: list[int], limit: int) -> dict[int, list[tuple[int, int]]]:
    return {v: select(v, nodes, limit) for v in nodes}


def diameter(edges: dict[int, list[tuple[int, int]]]) -> int | None:
    """Longest shortest path along selections (directed); None if not strongly connected."""
    worst = 0
    for src in edges:
        dist = {src: 0}
        queue = deque([src])
        while queue:
            v = queue.popleft()
            for w, _ in edges[v]:
                if w not in dist:
                    dist[w] = dist[v] + 1
                    queue.append(w)
        if len(dist) != len(edges):
            return None
        worst = max(worst, max(dist.values()))
    return worst


# ----------------------------------------------------------------------------- drawing

RADIUS = 1.95  # inches
PANEL_GAP = 5.4  # distance between panel centres, inches


def position(k: int, cx: float) -> tuple[float, float]:
    """Ring position k, clockwise from the top."""
    angle = math.pi / 2 - 2 * math.pi * k / N_NODES
    return cx + RADIUS * math.cos(angle), RADIUS * math.sin(angle)


def chord_label(a: int, b: int, cx: float, inset: float = 0.24) -> tuple[float, float]:
    """A spot beside the middle of chord a-b, moved towards the ring's centre."""
    (ax, ay), (bx, by) = position(a, cx), position(b, cx)
    mx, my = (ax + bx) / 2, (ay + by) / 2
    dx, dy = cx - mx, -my
    length = math.hypot(dx, dy)
    if length < 1e-9:  # a diameter: step sideways instead
        dx, dy, length = -(by - ay), bx - ax, math.hypot(bx - ax, by - ay)
    return mx + inset * dx / length, my + inset * dy / length


def html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(out: list[str], prefix: str, cx: float, title: str, caption: str,
          styles: dict[int, tuple[str, str, str]], edges: list[tuple[int, int, int, str, str]],
          notes: list[tuple[float, float, str, str]]) -> None:
    """One ring. styles: node -> (fill, line, extra label); edges: (from, to, round, alpha, label)."""
    out.append(f"  // ---- panel {prefix}")
    out.append(f'  {prefix}_ring [pos="{cx:.3f},0!", shape=circle, width={2 * RADIUS:.3f}, '
               f'fixedsize=true, label="", style=dashed, color="#C9D3E3", penwidth=1.2];')
    out.append(f'  {prefix}_title [pos="{cx:.3f},{RADIUS + 0.75:.3f}!", shape=plaintext, style="", fixedsize=false, '
               f'fontsize=13, label=<{title}>];')
    out.append(f'  {prefix}_caption [pos="{cx:.3f},{-RADIUS - 0.85:.3f}!", shape=plaintext, style="", fixedsize=false, '
               f'fontsize=10, fontcolor="#444444", label=<{caption}>];')
    for k in range(N_NODES):
        x, y = position(k, cx)
        fill, line, extra = styles.get(k, (NODE_FILL, NODE_LINE, ""))
        pen = 2 if k in styles else 1.2
        text = f"<b>n{k}</b>" if k in styles else f"n{k}"
        if extra:
            text += f'<br/><font point-size="8">{extra}</font>'
        out.append(f'  {prefix}_n{k} [pos="{x:.3f},{y:.3f}!", label=<{text}>, '
                   f'fillcolor="{fill}", color="{line}", penwidth={pen}];')
    for a, b, rnd, alpha, text in edges:
        colour = ROUND_COLOURS[rnd % len(ROUND_COLOURS)] + alpha
        attrs = [f'color="{colour}"']
        if alpha:
            attrs += ["penwidth=1.1", "arrowsize=0.45"]
        else:
            attrs += ["penwidth=2.4", "arrowsize=0.8"]
        if text:
            attrs.append(f'label=<<font color="{ROUND_COLOURS[rnd]}"><b>{text}</b></font>>')
        out.append(f"  {prefix}_n{a} -> {prefix}_n{b} [{', '.join(attrs)}];")
    for i, (x, y, text, colour) in enumerate(notes):
        out.append(f'  {prefix}_note{i} [pos="{x:.3f},{y:.3f}!", shape=plaintext, style="", fixedsize=false, fontsize=9, '
                   f'fontcolor="{colour}", label=<{text}>];')


def main() -> None:
    nodes = list(range(N_NODES))
    me = 0

    plain = select(me, nodes, LIMIT)
    assert [p for p, _ in plain] == [1, 2, 4, 8], plain
    bad_peer = 4
    skipping = select(me, nodes, LIMIT, lambda p: p == bad_peer)
    assert [p for p, _ in skipping] == [1, 2, 5, 8], skipping

    full = overlay(nodes, LIMIT)
    diam = diameter(full)
    diam_default = diameter(overlay(nodes, DEFAULT_LIMIT))
    assert diam is not None and diam_default is not None, "overlay must be connected"
    n_edges = sum(len(v) for v in full.values())

    out: list[str] = []
    out.append("// GENERATED by diagrams/ring.py — edit that script, not this file.")
    out.append("// Render: scripts/diagrams   (or: neato -Tsvg diagrams/ring-selection.dot -o diagrams/ring-selection.svg)")
    out.append("digraph ring_selection {")
    out.append('  graph [layout=neato, splines=false, outputorder=nodesfirst, fontname="Helvetica", '
               'fontsize=20, labelloc=t, pad=0.3,')
    out.append("         label=<<b>ring selection — which peers a node syncs with</b><br/>"
               '<font point-size="12" color="#555555">sort all known peer ids into a ring, place '
               "yourself on it, pick the peers at distances 1, 2, 4, …, 2<sup>L−1</sup>; walk "
               "forward past peers already picked or failing</font><br/> >];")
    out.append('  node [fontname="Helvetica", fontsize=11, shape=circle, style=filled, width=0.46, '
               'fixedsize=true, margin=0];')
    out.append('  edge [fontname="Helvetica", fontsize=10, arrowsize=0.7];')

    distances = ", ".join(str(2 ** r) for r in range(LIMIT))

    # a) n0 picks with L = 4
    styles = {me: (SELF_FILL, SELF_LINE, "self")}
    edges = []
    for peer, rnd in plain:
        styles[peer] = (PICK_FILL, PICK_LINE, "")
        edges.append((me, peer, rnd, "", ""))
    notes = []
    for peer, rnd in plain:
        x, y = chord_label(me, peer, 0.0)
        notes.append((x, y, f"<b>d={2 ** rnd}</b>", ROUND_COLOURS[rnd]))
    picked = ", ".join(f"n{p}" for p, _ in plain)
    panel(out, "a", 0.0,
          f"<b>a)</b> n0 with L = {LIMIT}",
          f"distances {distances} → picks <b>{picked}</b>",
          styles, edges, notes)

    # b) everyone's picks
    edges = [(v, p, rnd, "59", "") for v in nodes for p, rnd in full[v]]
    panel(out, "b", PANEL_GAP,
          f"<b>b)</b> every node, L = {LIMIT}",
          f"{n_edges} sync links; the overlay is connected:<br/>"
          f"any node reaches any other in ≤ {diam} hops<br/>"
          f"(with mule's default L = {DEFAULT_LIMIT}: ≤ {diam_default} hops)",
          {}, edges, [])

    # c) a failing peer is skipped
    styles = {me: (SELF_FILL, SELF_LINE, "self"), bad_peer: (BAD_FILL, BAD_LINE, "failing")}
    edges = []
    for peer, rnd in skipping:
        styles[peer] = (PICK_FILL, PICK_LINE, "")
        edges.append((me, peer, rnd, "", ""))
    notes = []
    for peer, rnd in skipping:
        x, y = chord_label(me, peer, 2 * PANEL_GAP)
        notes.append((x, y, f"<b>d={2 ** rnd}</b>", ROUND_COLOURS[rnd]))
    # the walk from the landing spot to the next usable peer
    out_walk = (f'  c_n{bad_peer} -> c_n{bad_peer + 1} [color="{BAD_LINE}", style=dashed, '
                f'penwidth=1.6, arrowsize=0.7];')
    bx, by = position(bad_peer, 2 * PANEL_GAP)
    nx, ny = position(bad_peer + 1, 2 * PANEL_GAP)
    notes.append(((bx + nx) / 2 + 0.62, (by + ny) / 2, "walk<br/>forward", BAD_LINE))
    picked = ", ".join(f"n{p}" for p, _ in skipping)
    panel(out, "c", 2 * PANEL_GAP,
          f"<b>c)</b> n0 with L = {LIMIT}, n{bad_peer} keeps failing",
          f"d=4 lands on n{bad_peer}, the walk moves on → picks <b>{picked}</b>",
          styles, edges, notes)
    out.append(out_walk)

    # legend
    cells = "".join(
        f'<td><font color="{ROUND_COLOURS[r]}"><b>━▶</b></font></td>'
        f'<td align="left">d = {2 ** r} (round {r})</td><td> </td>'
        for r in range(LIMIT))
    out.append(f'  legend [pos="{PANEL_GAP:.3f},{-RADIUS - 1.75:.3f}!", shape=plaintext, style="", fixedsize=false, '
               'fixedsize=false, style="", fontsize=10, label=<'
               '<table border="1" color="#CCCCCC" cellborder="0" cellspacing="2" cellpadding="3" bgcolor="white"><tr>'
               f'<td bgcolor="{SELF_FILL}" border="1" color="{SELF_LINE}">  </td><td align="left">self</td><td> </td>'
               f'<td bgcolor="{PICK_FILL}" border="1" color="{PICK_LINE}">  </td><td align="left">picked</td><td> </td>'
               f'<td bgcolor="{BAD_FILL}" border="1" color="{BAD_LINE}">  </td><td align="left">failing peer</td><td> </td>'
               f"{cells}</tr></table>>];")
    out.append("}")

    text = "\n".join(out) + "\n"
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
