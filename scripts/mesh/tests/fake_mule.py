#!/usr/bin/env python3
"""A stand-in for the `mule` binary, so the whole mesh-test flow can run in tests.

It implements only the CLI surface mesh-test uses (id, node, status, send,
list) and nothing of the protocol: `node` listens on its TCP port on
127.0.0.1 until SIGTERM and answers `status` and `list` on its control socket
(`<data-dir>/control.sock`, one JSON line each way, as the real node), `send`
drops the message into a directory shared by every data dir of the run, and
`list` shows node n<i> a message 0.02*i seconds after it was sent, as if it
had come over i % 3 relays.

Knobs (environment): FAKE_MULE_DROP=<i> never delivers anything to node i;
FAKE_MULE_CRASH=1 makes `node` exit with code 3 before listening.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import select
import signal
import socket
import sys
import time
from pathlib import Path

DELAY_PER_INDEX_S = 0.02


def peer_id_of(data_dir: Path) -> str:
    """A stable, distinct fake peer id per data dir."""
    return "12D3KooW" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:44]


def node_index(data_dir: Path) -> int:
    """mesh-test names data dirs n0, n1, ..."""
    return int(data_dir.name.lstrip("n"))


def shared_dir(data_dir: Path) -> Path:
    """Where sent messages are visible to every node of the run."""
    path = data_dir.parent / "fake-net"
    path.mkdir(exist_ok=True)
    return path


def cmd_id(args: argparse.Namespace) -> int:
    print(json.dumps({"peer_id": peer_id_of(args.data_dir)}))
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    import os
    if os.environ.get("FAKE_MULE_CRASH") == "1":
        print("fake crash before listening", file=sys.stderr)
        return 3
    port = int(args.listen[0].split("/tcp/")[1].split("/")[0])
    server = socket.create_server(("127.0.0.1", port))
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(str(args.data_dir / "control.sock"))
    control.listen(64)
    running = args.data_dir / "running"
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    (args.data_dir / "bootstrap.json").write_text(json.dumps(args.bootstrap))
    running.write_text("1")
    print(f"peer id: {peer_id_of(args.data_dir)}", flush=True)
    for addr in args.listen:
        print(f"listening on {addr}", flush=True)
    while not stop:
        try:
            ready, _, _ = select.select([server, control], [], [], 0.1)
        except InterruptedError:
            continue
        for sock in ready:
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                if sock is control:
                    answer_control(conn, args.data_dir)
    running.unlink()
    (args.data_dir / "control.sock").unlink()
    return 0


def answer_control(conn: socket.socket, data_dir: Path) -> None:
    """One control request: `status` or `list`, answered as the real node does."""
    conn.settimeout(2)
    request = conn.makefile("rb").readline()
    cmd = json.loads(request).get("cmd")
    if cmd == "status":
        answer = {"status": status_of(data_dir)}
    elif cmd == "list":
        answer = {"messages": visible(data_dir)}
    else:
        answer = {"error": f"fake mule: no {cmd!r} on the control socket"}
    conn.sendall(json.dumps(answer).encode() + b"\n")


def visible(data_dir: Path) -> list[dict]:
    """The messages node n<i> holds now (the sender holds its own at once)."""
    import os
    index = node_index(data_dir)
    if os.environ.get("FAKE_MULE_DROP") == str(index):
        return []
    now = time.time()
    entries = []
    for path in sorted(shared_dir(data_dir).glob("*.json")):
        sent = json.loads(path.read_text())
        own = sent["sender"] == index
        arrives = sent["at"] + (0 if own else DELAY_PER_INDEX_S * index)
        if arrives <= now:
            entries.append({"id": sent["id"].upper(), "received_ms": int(arrives * 1000),
                            "hops": [] if own else ["relay"] * (index % 3)})
    return entries


def cmd_status(args: argparse.Namespace) -> int:
    if not (args.data_dir / "running").exists():
        print("error: no node is running on this data dir", file=sys.stderr)
        return 1
    print(json.dumps(status_of(args.data_dir)))
    return 0


def status_of(data_dir: Path) -> dict:
    """What `mule status --json` prints for this fake node."""
    held = len(visible(data_dir))
    return {
        "connected_peers": ["peer"], "selected_peers": ["peer"], "known_peers": 2,
        "counters": {"content_transfers": held, "duplicates": 0, "bytes_sent": 100 * held,
                     "bytes_received": 100 * held, "messages_sent": held, "messages_received": held,
                     "rejections": {"too_big": 0}},
    }


def cmd_send(args: argparse.Namespace) -> int:
    content = args.text.encode() if args.text is not None else args.file.read_bytes()
    message_id = hashlib.sha256(content).hexdigest()
    record = {"id": message_id, "at": time.time(), "sender": node_index(args.data_dir)}
    (shared_dir(args.data_dir) / f"{message_id}.json").write_text(json.dumps(record))
    print(f"sent message {message_id}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print(json.dumps(visible(args.data_dir)))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="mule")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("id", "status", "list"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("--json", action="store_true")
    node = sub.add_parser("node")
    node.add_argument("--data-dir", type=Path, required=True)
    node.add_argument("--max-active-peers")
    node.add_argument("--listen", action="append", default=[])
    node.add_argument("--bootstrap", action="append", default=[])
    node.add_argument("--no-mdns", action="store_true")
    node.add_argument("--max-hops")
    send = sub.add_parser("send")
    send.add_argument("--data-dir", type=Path, required=True)
    send.add_argument("--text")
    send.add_argument("--file", type=Path)
    send.add_argument("--lifespan")
    args = parser.parse_args()
    handlers = {"id": cmd_id, "node": cmd_node, "status": cmd_status, "send": cmd_send,
                "list": cmd_list}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
