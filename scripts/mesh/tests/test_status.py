"""Reading `mule status --json` objects."""

import unittest

from mesh.status import count_of, describe_status, is_formed, sum_counter, sum_rejections


class CountOfTest(unittest.TestCase):
    def test_shapes(self):
        self.assertEqual(count_of(["a", "b"]), 2)
        self.assertEqual(count_of({"a": 1}), 1)
        self.assertEqual(count_of(3), 3)
        self.assertEqual(count_of(2.9), 2)
        self.assertEqual(count_of([]), 0)

    def test_missing_or_odd_values_count_zero(self):
        self.assertEqual(count_of(None), 0)
        self.assertEqual(count_of("12"), 0)


class FormedTest(unittest.TestCase):
    def test_needs_a_peer_and_a_known_peer(self):
        self.assertTrue(is_formed({"connected_peers": ["p"], "known_peers": ["p"]}, 1))
        self.assertTrue(is_formed({"selected_peers": 1, "known_peers": 1}, 1))
        self.assertFalse(is_formed({"connected_peers": ["p"], "known_peers": []}, 1))
        self.assertFalse(is_formed({"known_peers": 4}, 1))
        self.assertFalse(is_formed({}, 1))

    def test_with_no_active_peers_required_a_known_peer_is_enough(self):
        # --max-active-peers 0 gives min_peers = 0.
        self.assertTrue(is_formed({"known_peers": 1}, 0))
        self.assertFalse(is_formed({}, 0))

    def test_describe(self):
        self.assertEqual(describe_status({"connected_peers": ["a", "b"], "selected_peers": 1}),
                         "connected=2 selected=1 known=0")


class SumsTest(unittest.TestCase):
    def test_sum_counter_skips_missing_statuses(self):
        statuses = [{"counters": {"duplicates": 2}}, None, {"counters": {}}, {},
                    {"counters": {"duplicates": 5}}]
        self.assertEqual(sum_counter(statuses, "duplicates"), 7)
        self.assertEqual(sum_counter(statuses, "bytes_sent"), 0)
        self.assertEqual(sum_counter([], "duplicates"), 0)

    def test_sum_rejections(self):
        statuses = [{"counters": {"rejections": {"too_big": 1, "expired": 2}}},
                    {"counters": {"rejections": {"expired": 3, "bad_sig": 0}}},
                    {"counters": {"rejections": None}}, {"counters": {"rejections": [1]}}, None]
        self.assertEqual(sum_rejections(statuses), {"too_big": 1, "expired": 5, "bad_sig": 0})
        self.assertEqual(list(sum_rejections(statuses)), ["too_big", "expired", "bad_sig"])
        self.assertEqual(sum_rejections([]), {})


if __name__ == "__main__":
    unittest.main()
