"""Summary statistics computed from delivery records."""

import unittest

from mesh.deliveries import Delivery, SentMessage
from mesh.stats import (coverage_ratio, duplicate_ratio, fraction_time, hop_histogram, per_message,
                        relative_times, rounded, rss_summary)


def delivery(node, message, at, hops=1, clock=True):
    return Delivery(node=node, message=message, at=at, hops=hops, from_node_clock=clock)


class FractionTimeTest(unittest.TestCase):
    def test_picks_the_time_the_needed_pair_arrived(self):
        times = [1.0, 2.0, 3.0, 4.0]
        self.assertEqual(fraction_time(times, 4, 0.5), 2.0)
        self.assertEqual(fraction_time(times, 4, 0.9), 4.0)
        self.assertEqual(fraction_time(times, 4, 1.0), 4.0)
        self.assertEqual(fraction_time(times, 10, 0.25), 3.0)  # ceil(2.5) = 3rd pair

    def test_exact_fractions_do_not_round_up(self):
        # 0.9 * 10 is 9.000000000000002 in floats: still the 9th pair.
        times = [float(i) for i in range(1, 11)]
        self.assertEqual(fraction_time(times, 10, 0.9), 9.0)

    def test_not_reached(self):
        self.assertIsNone(fraction_time([1.0], 4, 0.5))
        self.assertIsNone(fraction_time([], 4, 0.5))

    def test_nothing_due_is_reached_at_once(self):
        self.assertEqual(fraction_time([], 0, 0.5), 0.0)
        self.assertEqual(fraction_time([], 4, 0.0), 0.0)


class SmallFiguresTest(unittest.TestCase):
    def test_rounded(self):
        self.assertEqual(rounded(1.23456), 1.235)
        self.assertEqual(rounded(1.23456, 1), 1.2)
        self.assertIsNone(rounded(None))

    def test_coverage_ratio(self):
        self.assertEqual(coverage_ratio(3, 4), 0.75)
        self.assertEqual(coverage_ratio(1, 3), 0.333333)
        self.assertEqual(coverage_ratio(0, 4), 0.0)
        self.assertEqual(coverage_ratio(0, 0), 1.0)

    def test_duplicate_ratio(self):
        self.assertEqual(duplicate_ratio(10, 8), 0.25)
        self.assertEqual(duplicate_ratio(8, 8), 0.0)
        self.assertIsNone(duplicate_ratio(5, 0))

    def test_relative_times_sorted_and_never_negative(self):
        ds = [delivery(1, "a", 103.5), delivery(2, "a", 99.0), delivery(3, "a", 101.25)]
        self.assertEqual(relative_times(ds, 100.0), [0.0, 1.25, 3.5])
        self.assertEqual(relative_times([], 100.0), [])

    def test_hop_histogram_orders_hops_numerically(self):
        ds = [delivery(i, "a", 0.0, hops=h) for i, h in enumerate([10, 2, 2, -1, 0, 10, 10])]
        histogram = hop_histogram(ds)
        self.assertEqual(histogram, {"-1": 1, "0": 1, "2": 2, "10": 3})
        self.assertEqual(list(histogram), ["-1", "0", "2", "10"])
        self.assertEqual(hop_histogram([]), {})

    def test_rss_summary(self):
        self.assertEqual(rss_summary([100, None, 200]),
                         {"max": 200, "mean": 150.0, "per_node": [100, None, 200]})
        self.assertEqual(rss_summary([1, 2, 2]), {"max": 2, "mean": 1.7, "per_node": [1, 2, 2]})
        self.assertEqual(rss_summary([None, None]), {"max": None, "mean": None, "per_node": [None, None]})
        self.assertEqual(rss_summary([]), {"max": None, "mean": None, "per_node": []})


class PerMessageTest(unittest.TestCase):
    def setUp(self):
        self.messages = [SentMessage(0, "a", 10, 100.0, 100.25), SentMessage(1, "b", 10, 101.0, 101.5)]

    def test_full_and_partial_messages(self):
        ds = [delivery(1, "a", 100.5), delivery(2, "a", 102.0), delivery(1, "b", 101.75)]
        rows = per_message(self.messages, ds, receivers=2)
        self.assertEqual(rows, [
            {"id": "a", "send_s": 0.25, "delivered": 2, "first_coverage_s": 0.5, "full_coverage_s": 2.0},
            {"id": "b", "send_s": 0.5, "delivered": 1, "first_coverage_s": 0.75, "full_coverage_s": None},
        ])

    def test_undelivered_message(self):
        rows = per_message(self.messages[:1], [], receivers=2)
        self.assertEqual(rows, [{"id": "a", "send_s": 0.25, "delivered": 0,
                                 "first_coverage_s": None, "full_coverage_s": None}])

    def test_no_receivers_and_no_messages(self):
        self.assertEqual(per_message([], [delivery(1, "a", 1.0)], receivers=3), [])
        rows = per_message(self.messages[:1], [], receivers=0)
        self.assertIsNone(rows[0]["full_coverage_s"])


if __name__ == "__main__":
    unittest.main()
