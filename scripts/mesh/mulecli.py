"""Short-lived `mule` commands (id, status, list, send) run against a node's data dir.

Sends and identities go through the CLI, so they are exactly what a user
does; the repeated polls of a run use `control.ControlSocket` instead (one
process per poll of 200 nodes would dominate the timing). Every failure
becomes a `CliError` with the command and the last line of its stderr.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from .errors import CliError
from .procs import REAPER, Node

MESSAGE_ID_RE = re.compile(r"\b[0-9a-fA-F]{64}\b")
"""`mule send` prints the new message's id as 64 hex digits."""


class MuleCli:
    """Runs short-lived `mule` commands (id, send, list, status)."""

    def __init__(self, binary: str, timeout: float) -> None:
        self.binary = binary
        self.timeout = timeout

    def run(self, *args: str) -> str:
        """Run `mule ARGS`, return stdout; raise CliError on failure."""
        proc = subprocess.Popen(
            [self.binary, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        REAPER.track_cli(proc)
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CliError(f"`mule {args[0]}` timed out after {self.timeout:g}s") from None
        finally:
            REAPER.untrack_cli(proc)
        if proc.returncode != 0:
            detail = err.strip().splitlines()[-1] if err.strip() else "(no stderr)"
            raise CliError(f"`mule {args[0]}` exited with {proc.returncode}: {detail}")
        return out

    def run_json(self, *args: str) -> Any:
        """Run `mule ARGS` and parse its stdout as JSON."""
        out = self.run(*args)
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise CliError(f"`mule {args[0]}` printed invalid JSON ({exc}): {out[:200]!r}") from None

    def identity(self, data_dir: Path) -> str:
        """Create (or read) the identity in `data_dir`; its peer id."""
        ident = self.run_json("id", "--data-dir", str(data_dir), "--json")
        peer_id = ident.get("peer_id") if isinstance(ident, dict) else None
        if not peer_id:
            raise CliError(f"`mule id` output has no peer_id: {ident!r}")
        return peer_id

    def status(self, node: Node) -> dict:
        """The node's `mule status --json` object."""
        status = self.run_json("status", "--data-dir", str(node.data_dir), "--json")
        if not isinstance(status, dict):
            raise CliError(f"`mule status` did not print an object: {status!r:.200}")
        return status

    def list_messages(self, node: Node) -> list[dict]:
        """The messages in the node's store, as `mule list --json` entries."""
        listing = self.run_json("list", "--data-dir", str(node.data_dir), "--json")
        if isinstance(listing, dict):  # tolerate {"messages": [...]}
            listing = listing.get("messages", [])
        if not isinstance(listing, list):
            raise CliError(f"`mule list` did not print an array: {listing!r:.200}")
        return [m for m in listing if isinstance(m, dict)]

    def send(self, node: Node, content_args: list[str], lifespan: str | None) -> str:
        """Broadcast one message from the node; its id in lower case."""
        args = ["send", "--data-dir", str(node.data_dir), *content_args]
        if lifespan:
            args += ["--lifespan", lifespan]
        out = self.run(*args)
        match = MESSAGE_ID_RE.search(out)
        if not match:
            raise CliError(f"`mule send` did not print a message id: {out[:200]!r}")
        return match.group(0).lower()
