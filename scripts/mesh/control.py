"""Questions to a running node over its control socket, without a process per question.

Polling 200 nodes through `mule status` / `mule list` starts 200 processes
per round, and on two cores that, not the network, set the pace of a large
run. The node answers the same JSON the CLI prints (`src/control/mod.rs`: one
JSON request line per connection on `<data-dir>/control.sock`, one JSON line
back, externally tagged: `{"status": {...}}`, `{"messages": [...]}` or
`{"error": "..."}`), so the script asks it directly for the questions it
repeats; `mule send` and `mule id` still go through the CLI.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from .errors import CliError
from .procs import Node

SOCKET = "control.sock"
"""The socket's file name in a data dir (`control::SOCKET`)."""

MAX_RESPONSE = 256 << 20
"""Longest answer read, as the CLI's client (`control::MAX_RESPONSE`)."""


class ControlSocket:
    """Asks nodes `status` and `list` over their control sockets."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def ask(self, data_dir: Path, request: dict, answer_key: str) -> Any:
        """Send one request; return the value under `answer_key`, or raise CliError."""
        path = str(Path(data_dir) / SOCKET)
        what = request.get("cmd", "?")
        chunks: list[bytes] = []
        size = 0
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(path)
                sock.sendall(json.dumps(request).encode() + b"\n")
                while True:
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > MAX_RESPONSE:
                        raise CliError(f"control `{what}`: answer over {MAX_RESPONSE} bytes")
                    chunks.append(chunk)
        except OSError as exc:
            raise CliError(f"control `{what}` on {path} failed: {exc}") from None
        try:
            answer = json.loads(b"".join(chunks))
        except json.JSONDecodeError as exc:
            raise CliError(f"control `{what}`: invalid JSON ({exc})") from None
        if not isinstance(answer, dict) or len(answer) != 1:
            raise CliError(f"control `{what}`: unexpected answer {answer!r:.200}")
        if "error" in answer:
            raise CliError(f"control `{what}`: {answer['error']}")
        if answer_key not in answer:
            raise CliError(f"control `{what}`: expected {answer_key!r}, got {answer!r:.200}")
        return answer[answer_key]

    def status(self, node: Node) -> dict:
        """The node's status (what `mule status --json` prints)."""
        status = self.ask(node.data_dir, {"cmd": "status"}, "status")
        if not isinstance(status, dict):
            raise CliError(f"control status: not an object: {status!r:.200}")
        return status

    def list_messages(self, node: Node) -> list[dict]:
        """The node's complete messages (what `mule list --json` prints)."""
        listing = self.ask(node.data_dir, {"cmd": "list"}, "messages")
        if not isinstance(listing, list):
            raise CliError(f"control list: not an array: {listing!r:.200}")
        return [m for m in listing if isinstance(m, dict)]
