"""The coverage chart: a self-contained SVG step plot of delivered pairs over time.

Hand-written SVG keeps the script free of plotting libraries; everything
here is pure (numbers in, text out) so the drawing can be tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

WIDTH, HEIGHT = 900, 520
LEFT, RIGHT, TOP, BOTTOM = 80, 40, 84, 64


def nice_step(span: float, target_ticks: int = 8) -> float:
    """A tick spacing of 1, 2, 2.5 or 5 times a power of ten giving about `target_ticks` ticks."""
    raw = max(span, 1e-9) / target_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * magnitude >= raw:
            return multiple * magnitude
    return 10 * magnitude


def format_tick(value: float) -> str:
    """A tick label without float noise (0.30000000000000004 -> 0.3)."""
    return f"{round(value, 6):g}"


@dataclass
class Frame:
    """Where the plot area sits and how seconds and fractions map onto it."""

    x_max: float
    step: float
    left: int = LEFT
    top: int = TOP
    plot_w: int = WIDTH - LEFT - RIGHT
    plot_h: int = HEIGHT - TOP - BOTTOM

    @classmethod
    def for_end(cls, x_end: float) -> Frame:
        """A frame whose x axis reaches a round number just past `x_end`."""
        span = x_end * 1.05 if x_end > 0 else 1.0
        step = nice_step(span)
        return cls(x_max=step * math.ceil(span / step), step=step)

    def sx(self, t: float) -> float:
        """x pixel of `t` seconds (clamped to the axis)."""
        return self.left + min(max(t, 0.0), self.x_max) / self.x_max * self.plot_w

    def sy(self, fraction: float) -> float:
        """y pixel of a coverage fraction."""
        return self.top + (1 - fraction) * self.plot_h


def header(title: str, subtitle: str) -> list[str]:
    """The svg element, background, title and subtitle."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="32" text-anchor="middle" font-size="19" font-weight="bold" '
        f'fill="#222">{xml_escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="56" text-anchor="middle" font-size="13" fill="#555">'
        f'{xml_escape(subtitle)}</text>',
    ]


def grid(f: Frame) -> list[str]:
    """Grid lines with tick labels: seconds along x, every 10% along y."""
    parts = []
    top, bottom, left, right = f.top, f.top + f.plot_h, f.left, f.left + f.plot_w
    for k in range(int(round(f.x_max / f.step)) + 1):
        t = k * f.step
        x = f.sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e6e6e6"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 20}" text-anchor="middle" font-size="12" '
                     f'fill="#333">{format_tick(t)}</text>')
    for pct in range(0, 101, 10):
        y = f.sy(pct / 100)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
                     f'fill="#333">{pct}%</text>')
    return parts


def axes(f: Frame) -> list[str]:
    """Both axes and their labels."""
    top, bottom, left, right = f.top, f.top + f.plot_h, f.left, f.left + f.plot_w
    middle_y = f.top + f.plot_h / 2
    return [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333" stroke-width="1.5"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333" stroke-width="1.5"/>',
        f'<text x="{left + f.plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle" font-size="14" '
        f'fill="#222">seconds since first send</text>',
        f'<text x="22" y="{middle_y}" text-anchor="middle" font-size="14" fill="#222" '
        f'transform="rotate(-90 22 {middle_y})">coverage (% of node × message pairs)</text>',
    ]


def curve_points(f: Frame, times: list[float], total: int, x_end: float) -> list[tuple[float, float]]:
    """Pixel corners of the step function: up one pair at each delivery time."""
    covered = 0
    points = [(f.sx(0), f.sy(0))]
    for t in times:
        covered += 1
        x = f.sx(t)
        points.append((x, points[-1][1]))
        points.append((x, f.sy(covered / total if total else 1.0)))
    points.append((f.sx(f.x_max if covered == total else x_end), points[-1][1]))
    return points


def curve(f: Frame, times: list[float], total: int, x_end: float) -> list[str]:
    """The coverage step line with a light area under it."""
    points = curve_points(f, times, total, x_end)
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return [
        f'<polygon points="{path} {points[-1][0]:.1f},{f.sy(0):.1f}" fill="#4c78a8" fill-opacity="0.15"/>',
        f'<polyline points="{path}" fill="none" stroke="#2f5f98" stroke-width="2.2" '
        f'stroke-linejoin="round"/>',
    ]


def timeout_marker(f: Frame, timeout_at: float) -> list[str]:
    """A dashed red line where the coverage phase gave up."""
    x = f.sx(timeout_at)
    return [
        f'<line x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{f.top + f.plot_h}" stroke="#c0392b" '
        f'stroke-width="1.5" stroke-dasharray="6 4"/>',
        f'<text x="{x - 6:.1f}" y="{f.top + 16}" text-anchor="end" font-size="13" '
        f'fill="#c0392b">timeout</text>',
    ]


def notes_box(f: Frame, notes: list[str]) -> list[str]:
    """Notes in the lower right (a rising curve leaves that corner empty)."""
    box_w, line_h = 230, 19
    box_h = line_h * len(notes) + 12
    bx, by = f.left + f.plot_w - box_w - 12, f.top + f.plot_h - box_h - 12
    parts = [f'<rect x="{bx}" y="{by}" width="{box_w}" height="{box_h}" rx="4" fill="white" '
             f'fill-opacity="0.9" stroke="#bbb"/>']
    for k, note in enumerate(notes):
        parts.append(f'<text x="{bx + 10}" y="{by + 20 + k * line_h}" font-size="13" fill="#222">'
                     f'{xml_escape(note)}</text>')
    return parts


def render_coverage_svg(times: list[float], total: int, x_end: float, title: str,
                        subtitle: str, notes: list[str], timeout_at: float | None) -> str:
    """Step chart of covered (node, message) pairs vs seconds since the first send."""
    f = Frame.for_end(x_end)
    parts = header(title, subtitle) + grid(f) + axes(f) + curve(f, times, total, x_end)
    if timeout_at is not None:
        parts += timeout_marker(f, timeout_at)
    if notes:
        parts += notes_box(f, notes)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def format_seconds(value: float | None) -> str:
    """`1.23 s`, or an em dash for a time that was never reached."""
    return "—" if value is None else f"{value:.2f} s"


def chart_notes(summary: dict) -> list[str]:
    """The notes box: when the first copy, 50%, 90% and 100% were reached."""
    return [f"first copy: {format_seconds(summary['first_coverage_s'])}",
            f"50% covered: {format_seconds(summary['coverage_50_s'])}",
            f"90% covered: {format_seconds(summary['coverage_90_s'])}",
            f"100% covered: {format_seconds(summary['full_coverage_s'])}",
            f"final coverage: {100 * summary['coverage']:.1f}%"]


def chart_title(summary: dict) -> str:
    """Title naming the mesh: size, active-peer limit and topology."""
    return (f"mule mesh coverage — N={summary['nodes']}, L={summary['max_active_peers']}, "
            f"topology={summary['topology']}")


def chart_subtitle(summary: dict) -> str:
    """Subtitle naming the traffic: messages, size, sender, seed and formation time."""
    return (f"{summary['messages']} message(s) × {summary['size']} B from node {summary['sender']}, "
            f"seed {summary['seed']}, mesh formed in {summary['formation_s']:.2f} s")
