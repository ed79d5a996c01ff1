"""One call per node on a thread pool, with failures returned instead of raised.

Hundreds of `mule` CLI calls or `ip` commands run side by side; one failing
call must not hide the results (or failures) of the others.
"""

from __future__ import annotations

from typing import Any, Callable


def capture(fn: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, Exception | None]]:
    """Wrap fn so that a thread pool returns (result, error) instead of raising."""

    def wrapped(item: Any) -> tuple[Any, Exception | None]:
        try:
            return fn(item), None
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            return None, exc

    return wrapped
