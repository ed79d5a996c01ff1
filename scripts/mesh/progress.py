"""Progress lines for people, on stderr, so that stdout stays pure JSON.

Every line carries the seconds since the run started (`start_clock`, called
first thing by the CLI; until then, since this module was imported).
"""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def start_clock() -> None:
    """Make progress times count from now (the start of the run)."""
    global _START
    _START = time.monotonic()


def log(message: str) -> None:
    """Human-readable progress, on stderr so stdout stays pure JSON."""
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)
