"""The exceptions that decide how a run ends (and so its exit code).

Kept apart so that every module can raise them without importing the flow.
"""

from __future__ import annotations

import signal


class SetupError(Exception):
    """Something went wrong before the measurement could complete (exit code 2)."""


class Interrupted(BaseException):
    """Raised by the signal handlers so that `finally` blocks run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class CliError(Exception):
    """A `mule` CLI call failed (non-zero exit, timeout or unparsable output)."""
