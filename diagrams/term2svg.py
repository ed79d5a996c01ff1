#!/usr/bin/env python3
"""Render a terminal capture with colours (`tmux capture-pane -e -p`) as an SVG.

Standard library only. Reads the capture on stdin, writes the SVG on stdout:

    tmux capture-pane -e -p -t chat | python3 diagrams/term2svg.py --title "mule chat" > chat.svg

Understands the SGR escapes tmux writes: reset, bold, reverse, the 16 colours, 256-colour and
true-colour foregrounds and backgrounds. Wide characters (CJK, most emoji) take two cells.
"""

import argparse
import html
import re
import sys
import unicodedata

CELL_W = 8.4
CELL_H = 18
FONT = 14
PAD = 12
BAR = 26
FG = "#d0d0d0"
BG = "#1c1c1c"
# xterm's 16 colours
PALETTE = [
    "#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
    "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
]
SGR = re.compile(r"\x1b\[([0-9;:]*)m")
OTHER_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def colour256(n):
    """The hex colour of xterm 256-colour index n."""
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (level, level, level)


class Style:
    """The SGR state of a cell."""

    def __init__(self):
        self.fg = None
        self.bg = None
        self.bold = False
        self.reverse = False

    def copy(self):
        s = Style()
        s.fg, s.bg, s.bold, s.reverse = self.fg, self.bg, self.bold, self.reverse
        return s

    def apply(self, params):
        codes = [int(p) if p else 0 for p in re.split("[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                self.__init__()
            elif c == 1:
                self.bold = True
            elif c == 22:
                self.bold = False
            elif c == 7:
                self.reverse = True
            elif c == 27:
                self.reverse = False
            elif 30 <= c <= 37:
                self.fg = PALETTE[c - 30]
            elif 90 <= c <= 97:
                self.fg = PALETTE[c - 90 + 8]
            elif c == 39:
                self.fg = None
            elif 40 <= c <= 47:
                self.bg = PALETTE[c - 40]
            elif 100 <= c <= 107:
                self.bg = PALETTE[c - 100 + 8]
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    value = colour256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    value = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                    i += 4
                else:
                    value = None
                if c == 38:
                    self.fg = value
                else:
                    self.bg = value
            i += 1

    def colours(self):
        fg, bg = self.fg or FG, self.bg or BG
        if self.reverse:
            fg, bg = bg, fg
        return fg, bg


def width(ch):
    """Cells a character takes."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def parse(text):
    """Rows of (column, character, style) cells."""
    rows = []
    style = Style()
    for line in text.rstrip("\n").split("\n"):
        cells = []
        col = 0
        pos = 0
        while pos < len(line):
            m = SGR.match(line, pos)
            if m:
                style.apply(m.group(1))
                pos = m.end()
                continue
            m = OTHER_ESCAPE.match(line, pos)
            if m:
                pos = m.end()
                continue
            ch = line[pos]
            cells.append((col, ch, style.copy()))
            col += width(ch)
            pos += 1
        rows.append(cells)
    return rows


def render(rows, title, cols):
    """The SVG text of the rows."""
    w = PAD * 2 + cols * CELL_W
    h = BAR + PAD * 2 + len(rows) * CELL_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
        f'font-size="{FONT}">',
        f'<rect width="100%" height="100%" rx="8" fill="{BG}"/>',
        f'<rect width="100%" height="{BAR}" rx="8" fill="#3a3a3a"/>',
        f'<rect y="{BAR - 8}" width="100%" height="8" fill="#3a3a3a"/>',
    ]
    for i, colour in enumerate(["#ff5f57", "#febc2e", "#28c840"]):
        out.append(f'<circle cx="{PAD + 6 + i * 20}" cy="{BAR / 2}" r="6" fill="{colour}"/>')
    out.append(
        f'<text x="{w / 2:.0f}" y="{BAR / 2 + 5}" fill="#bbbbbb" text-anchor="middle">'
        f"{html.escape(title)}</text>"
    )
    top = BAR + PAD
    for r, cells in enumerate(rows):
        y = top + r * CELL_H
        for col, ch, style in cells:
            fg, bg = style.colours()
            if bg != BG:
                out.append(
                    f'<rect x="{PAD + col * CELL_W:.1f}" y="{y}" '
                    f'width="{CELL_W * width(ch) + 0.5:.1f}" height="{CELL_H}" fill="{bg}"/>'
                )
        # Text in runs of one style, each cell placed at its column.
        run = []
        for cell in cells + [None]:
            same = (
                cell is not None
                and run
                and (cell[2].colours()[0], cell[2].bold) == (run[0][2].colours()[0], run[0][2].bold)
                and cell[0] == run[-1][0] + width(run[-1][1])
            )
            if run and not same:
                text = "".join(c for _, c, _ in run)
                if text.strip():
                    fg = run[0][2].colours()[0]
                    weight = ' font-weight="bold"' if run[0][2].bold else ""
                    cells_wide = sum(width(c) for _, c, _ in run)
                    # textLength pins each run to its cells, whatever the viewer's font.
                    out.append(
                        f'<text x="{PAD + run[0][0] * CELL_W:.1f}" y="{y + CELL_H - 5}" '
                        f'textLength="{cells_wide * CELL_W:.1f}" lengthAdjust="spacingAndGlyphs" '
                        f'fill="{fg}"{weight} xml:space="preserve">{html.escape(text)}</text>'
                    )
                run = []
            if cell is not None:
                run.append(cell)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--title", default="")
    parser.add_argument("--cols", type=int, default=120)
    args = parser.parse_args()
    sys.stdout.write(render(parse(sys.stdin.read()), args.title, args.cols))


if __name__ == "__main__":
    main()
