"""ControlSocket against a tiny Unix-socket server that answers like a node."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import unittest
from pathlib import Path

from mesh.control import ControlSocket
from mesh.errors import CliError


class FakeNode:
    """Serves one canned answer per connection on `<dir>/control.sock`, recording requests."""

    def __init__(self, data_dir: Path, answer: bytes) -> None:
        self.data_dir = data_dir
        self.requests: list[dict] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(data_dir / "control.sock"))
        self.server.listen(4)
        self.answer = answer
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.requests.append(json.loads(conn.makefile("rb").readline()))
                conn.sendall(self.answer)

    def close(self) -> None:
        self.server.close()


class ControlSocketTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def serve(self, answer: object) -> FakeNode:
        raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode() + b"\n"
        node = FakeNode(self.dir, raw)
        self.addCleanup(node.close)
        return node

    def test_status_and_list_answers(self) -> None:
        node = self.serve({"status": {"peer_id": "12D3KooWx", "connected_peers": []}})
        status = ControlSocket(2).status(node)
        self.assertEqual(status["peer_id"], "12D3KooWx")
        self.assertEqual(node.requests, [{"cmd": "status"}])

    def test_list_keeps_objects_only(self) -> None:
        node = self.serve({"messages": [{"id": "ab"}, 3, {"id": "cd"}]})
        self.assertEqual(ControlSocket(2).list_messages(node), [{"id": "ab"}, {"id": "cd"}])
        self.assertEqual(node.requests, [{"cmd": "list"}])

    def test_error_answer_is_a_cli_error(self) -> None:
        node = self.serve({"error": "store is closed"})
        with self.assertRaisesRegex(CliError, "store is closed"):
            ControlSocket(2).status(node)

    def test_wrong_answer_kind_and_bad_json(self) -> None:
        node = self.serve({"messages": []})
        with self.assertRaisesRegex(CliError, "expected 'status'"):
            ControlSocket(2).status(node)
        node.answer = b"{not json"
        with self.assertRaisesRegex(CliError, "invalid JSON"):
            ControlSocket(2).status(node)

    def test_no_node_running(self) -> None:
        class Nobody:
            data_dir = self.dir
        with self.assertRaisesRegex(CliError, "control `status` on .* failed"):
            ControlSocket(2).status(Nobody())


if __name__ == "__main__":
    unittest.main()
