"""Port choice (binds sockets on 127.0.0.1 only) and namespace naming."""

import random
import socket
import unittest

from mesh.errors import SetupError
from mesh.netns import MAX_NETNS_NODES, node_ip, node_ns
from mesh.ports import PORT_FLOOR, ephemeral_port_range, fixed_ports, pick_ports, pick_ports_from_kernel, port_is_free


class PortsTest(unittest.TestCase):
    def test_a_bound_port_is_not_free(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            self.assertFalse(port_is_free(port, udp=False))
            with self.assertRaisesRegex(SetupError, f"ports already in use: \\[{port}\\]"):
                fixed_ports(1, port, udp=False)

    def test_base_port_past_the_end(self):
        with self.assertRaisesRegex(SetupError, "--base-port 65535 \\+ 2 nodes exceeds 65535"):
            fixed_ports(2, 65535, udp=False)

    def test_picked_ports_are_distinct_free_and_below_the_ephemeral_range(self):
        low, high = ephemeral_port_range()
        self.assertLess(low, high)
        ports = pick_ports(8, None, udp=True, rng=random.Random(3))
        self.assertEqual(len(set(ports)), 8)
        if low - PORT_FLOOR >= 8 * 3:
            self.assertTrue(all(PORT_FLOOR <= p < low for p in ports), ports)
        self.assertTrue(all(port_is_free(p, udp=True) for p in ports))

    def test_kernel_fallback(self):
        ports = pick_ports_from_kernel(5, udp=True)
        self.assertEqual(len(set(ports)), 5)
        self.assertEqual(pick_ports_from_kernel(0, udp=False), [])


class NetnsNamesTest(unittest.TestCase):
    def test_names_and_addresses(self):
        self.assertEqual(node_ns(7), "mule-ns-7")
        self.assertEqual(node_ip(0), "10.77.0.1")
        self.assertEqual(node_ip(254), "10.77.0.255")
        self.assertEqual(node_ip(255), "10.77.1.0")
        self.assertEqual(node_ip(MAX_NETNS_NODES - 1), "10.77.255.253")

    def test_too_many_nodes(self):
        with self.assertRaisesRegex(SetupError, "at most 65533 nodes"):
            node_ip(MAX_NETNS_NODES)


if __name__ == "__main__":
    unittest.main()
