"""Turning `mule list --json` output into deliveries."""

import unittest

from mesh.deliveries import Delivery, SentMessage, holds_all, record_listing

A = "a" * 64
B = "b" * 64


class RecordListingTest(unittest.TestCase):
    def setUp(self):
        self.messages = [SentMessage(0, A, 5, 100.0, 100.1), SentMessage(1, B, 5, 100.2, 100.3)]
        self.deliveries = {}

    def record(self, node, listing, polled_at=110.0):
        record_listing(self.deliveries, node, listing, self.messages, polled_at)

    def test_uses_the_nodes_clock_and_counts_hops(self):
        self.record(1, [{"id": A.upper(), "received_ms": 101500, "hops": ["x", "y"]}])
        self.assertEqual(self.deliveries, {(1, A): Delivery(1, A, 101.5, 2, True)})

    def test_node_clock_is_clamped_to_send_and_poll_times(self):
        self.record(1, [{"id": A, "received_ms": 50_000, "hops": []},
                        {"id": B, "received_ms": 999_000_000, "hops": []}])
        self.assertEqual(self.deliveries[(1, A)].at, 100.0)
        self.assertEqual(self.deliveries[(1, B)].at, 110.0)
        self.assertTrue(self.deliveries[(1, A)].from_node_clock)

    def test_without_a_usable_clock_the_poll_time_counts(self):
        self.record(1, [{"id": A}, {"id": B, "received_ms": 0, "hops": "??"}], polled_at=105.0)
        self.assertEqual(self.deliveries[(1, A)], Delivery(1, A, 105.0, -1, False))
        self.assertEqual(self.deliveries[(1, B)], Delivery(1, B, 105.0, -1, False))

    def test_unknown_ids_and_entries_without_id_are_ignored(self):
        self.record(2, [{"id": "c" * 64, "received_ms": 101000}, {"received_ms": 101000}, {}])
        self.assertEqual(self.deliveries, {})

    def test_first_sighting_wins(self):
        self.record(1, [{"id": A, "received_ms": 101000}])
        self.record(1, [{"id": A, "received_ms": 102000}], polled_at=120.0)
        self.assertEqual(self.deliveries[(1, A)].at, 101.0)
        self.record(2, [{"id": A, "received_ms": 102000}])
        self.assertEqual(self.deliveries[(2, A)].at, 102.0)

    def test_empty_listing(self):
        self.record(1, [])
        self.assertEqual(self.deliveries, {})


class HoldsAllTest(unittest.TestCase):
    def test_needs_every_message(self):
        messages = [SentMessage(0, A, 5, 0.0, 0.0), SentMessage(1, B, 5, 0.0, 0.0)]
        deliveries = {(1, A): Delivery(1, A, 1.0, 0, True)}
        self.assertFalse(holds_all(deliveries, 1, messages))
        deliveries[(1, B)] = Delivery(1, B, 1.0, 0, True)
        self.assertTrue(holds_all(deliveries, 1, messages))
        self.assertFalse(holds_all(deliveries, 2, messages))

    def test_nothing_sent_is_trivially_held(self):
        self.assertTrue(holds_all({}, 1, []))


if __name__ == "__main__":
    unittest.main()
