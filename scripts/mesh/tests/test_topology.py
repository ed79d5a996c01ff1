"""Bootstrap plans: who dials whom before the mesh forms."""

import unittest

from mesh.errors import SetupError
from mesh.topology import (TOPOLOGIES, bootstrap_plan, check_connected, connected_parts,
                           zone_bootstrap, zones_of)


class ZonesTest(unittest.TestCase):
    def test_each_node_is_in_two_neighbouring_zones(self):
        self.assertEqual(zones_of(0, 4), {0, 1})
        self.assertEqual(zones_of(3, 4), {3, 0})
        self.assertEqual(zones_of(5, 4), {1, 2})

    def test_a_single_zone_holds_everyone(self):
        self.assertEqual(zones_of(7, 1), {0})
        self.assertEqual([zone_bootstrap(i, 1) for i in range(4)], [[], [0], [0], [0]])

    def test_zone_bootstrap_picks_lowest_earlier_node_per_zone(self):
        # Z=4: node 4 is in zones {0, 1}; node 0 is the first in both.
        self.assertEqual(zone_bootstrap(4, 4), [0])
        # node 2 is in zones {2, 3}: node 1 is in {1, 2}, nobody earlier in 3.
        self.assertEqual(zone_bootstrap(2, 4), [1])
        # node 3 is in zones {3, 0}: node 0 is in 0, node 2 is in 3.
        self.assertEqual(zone_bootstrap(3, 4), [0, 2])
        self.assertEqual(zone_bootstrap(0, 4), [])


class PlanTest(unittest.TestCase):
    def test_star(self):
        self.assertEqual(bootstrap_plan("star", 4, 4), [[], [0], [0], [0]])

    def test_chain(self):
        self.assertEqual(bootstrap_plan("chain", 4, 4), [[], [0], [1], [2]])

    def test_zones(self):
        # Z=3: zones {0,1}, {1,2}, {2,0}, {0,1}, {1,2}, {2,0}; zone 0 starts at
        # node 0, zone 1 at node 0, zone 2 at node 1.
        self.assertEqual(bootstrap_plan("zones", 6, 3), [[], [0], [0, 1], [0], [0, 1], [0, 1]])

    def test_mdns_has_no_bootstrap(self):
        self.assertEqual(bootstrap_plan("mdns", 3, 4), [[], [], []])

    def test_a_single_node_bootstraps_from_nobody(self):
        for topology in (*TOPOLOGIES, "mdns"):
            self.assertEqual(bootstrap_plan(topology, 1, 4), [[]], topology)

    def test_unknown_topology_is_a_setup_error(self):
        with self.assertRaisesRegex(SetupError, "unknown topology 'ring'"):
            bootstrap_plan("ring", 3, 4)

    def test_every_user_topology_is_connected(self):
        for topology in TOPOLOGIES:
            for count in (1, 2, 3, 17, 64):
                for zones in (1, 2, 5, 8, 100):
                    plan = bootstrap_plan(topology, count, zones)
                    self.assertEqual(len(plan), count)
                    self.assertEqual(connected_parts(plan), 1, (topology, count, zones))
                    self.assertTrue(all(s < i for i, sources in enumerate(plan) for s in sources))


class ConnectedTest(unittest.TestCase):
    def test_counts_parts(self):
        self.assertEqual(connected_parts([]), 0)
        self.assertEqual(connected_parts([[], [], []]), 3)
        self.assertEqual(connected_parts([[], [0], [], [2]]), 2)
        self.assertEqual(connected_parts([[], [0], [], [2, 1]]), 1)

    def test_check_connected_refuses_islands(self):
        check_connected([[], [0], [1]])
        check_connected([[]])
        with self.assertRaisesRegex(SetupError, "3 disconnected parts"):
            check_connected(bootstrap_plan("mdns", 3, 4))


if __name__ == "__main__":
    unittest.main()
