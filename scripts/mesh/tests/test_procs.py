"""Node records and the command lines nodes are started with (no process is spawned)."""

import tempfile
import unittest
from pathlib import Path

from mesh.procs import Node, NodeOptions, node_command, node_env


def node(index=1, **kwargs):
    base = Path("/tmp/mule-mesh-x")
    return Node(index=index, data_dir=base / f"n{index}", stdout_log=base / f"n{index}.stdout.log",
                stderr_log=base / f"n{index}.stderr.log", port=4100 + index, **kwargs)


class NodeTest(unittest.TestCase):
    def test_addresses(self):
        n = node(2, peer_id="12D3KooWabc")
        self.assertEqual(n.label, "node 2")
        self.assertEqual(n.tcp_addr(), "/ip4/127.0.0.1/tcp/4102")
        self.assertEqual(n.bootstrap_addr(), "/ip4/127.0.0.1/tcp/4102/p2p/12D3KooWabc")
        self.assertEqual(n.listen_addrs(False), ["/ip4/127.0.0.1/tcp/4102"])
        self.assertEqual(n.listen_addrs(True), ["/ip4/127.0.0.1/tcp/4102", "/ip4/127.0.0.1/udp/4102/quic-v1"])

    def test_inside_a_namespace_it_listens_everywhere(self):
        n = node(0, netns="mule-ns-0", host="10.77.0.1")
        self.assertEqual(n.listen_addrs(False), ["/ip4/0.0.0.0/tcp/4100"])
        self.assertEqual(n.tcp_addr(), "/ip4/10.77.0.1/tcp/4100")

    def test_not_launched(self):
        n = node()
        self.assertIsNone(n.pid)
        self.assertFalse(n.is_alive())
        self.assertIsNone(n.read_peak_rss())

    def test_check_announced_reads_stdout(self):
        with tempfile.TemporaryDirectory() as tmp:
            n = node()
            n.stdout_log = Path(tmp) / "out.log"
            self.assertFalse(n.check_announced())  # no log yet
            n.stdout_log.write_text("peer id: X\n")
            self.assertFalse(n.check_announced())
            n.stdout_log.write_text("peer id: X\nlistening on /ip4/127.0.0.1/tcp/1\n"
                                    "noise\nlistening on /ip4/127.0.0.1/udp/1/quic-v1\n")
            self.assertTrue(n.check_announced())
            self.assertEqual(n.announced_addrs, ["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/1/quic-v1"])


class CommandTest(unittest.TestCase):
    def test_minimal(self):
        cmd = node_command("mule", node(0), [], NodeOptions(max_active_peers=2))
        self.assertEqual(cmd, ["mule", "node", "--data-dir", "/tmp/mule-mesh-x/n0", "--max-active-peers",
                               "2", "--listen", "/ip4/127.0.0.1/tcp/4100", "--no-mdns"])

    def test_everything(self):
        options = NodeOptions(max_active_peers=0, quic=True, max_hops=0, extra_args=["--foo", "1"])
        cmd = node_command("/bin/mule", node(3), ["/a", "/b"], options)
        self.assertEqual(cmd, [
            "/bin/mule", "node", "--data-dir", "/tmp/mule-mesh-x/n3", "--max-active-peers", "0",
            "--listen", "/ip4/127.0.0.1/tcp/4103", "--listen", "/ip4/127.0.0.1/udp/4103/quic-v1",
            "--bootstrap", "/a", "--bootstrap", "/b", "--no-mdns", "--max-hops", "0", "--foo", "1"])

    def test_namespaced_with_mdns(self):
        n = node(4, netns="mule-ns-4", host="10.77.0.5")
        cmd = node_command("mule", n, [], NodeOptions(max_active_peers=2, mdns=True))
        self.assertEqual(cmd[:5], ["ip", "netns", "exec", "mule-ns-4", "mule"])
        self.assertNotIn("--no-mdns", cmd)
        self.assertIn("/ip4/0.0.0.0/tcp/4104", cmd)


class EnvTest(unittest.TestCase):
    def test_rust_log_precedence(self):
        self.assertEqual(node_env(None, {"A": "1"}), {"A": "1", "RUST_LOG": "info"})
        self.assertEqual(node_env(None, {"RUST_LOG": "debug"})["RUST_LOG"], "debug")
        self.assertEqual(node_env("mule=trace", {"RUST_LOG": "debug"})["RUST_LOG"], "mule=trace")

    def test_does_not_change_the_given_environment(self):
        base = {"PATH": "/bin"}
        node_env("warn", base)
        self.assertEqual(base, {"PATH": "/bin"})


if __name__ == "__main__":
    unittest.main()
