"""The whole mesh-test flow, end to end, against fake_mule.py instead of `mule`.

These tests start real processes (the script and its fake nodes, listening
on 127.0.0.1 only) and check the exit code, the files and the numbers of
each way a run can end.  Every run is bounded by a subprocess timeout.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2]
MESH_TEST = SCRIPTS / "mesh-test"
FAKE_MULE = Path(__file__).resolve().parent / "fake_mule.py"
RUN_LIMIT_S = 90


class FlowTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="mesh-flow-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = Path(self._tmp.name)
        self.out = self.tmp / "out"

    def run_mesh(self, *extra, **fake_env):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_MULE_")}
        env.update(fake_env, TMPDIR=str(self.tmp))
        cmd = [sys.executable, str(MESH_TEST), "--mule", str(FAKE_MULE), "--out", str(self.out),
               "--poll-interval", "0.05", "--formation-timeout", "30", "--start-timeout", "30",
               "--cli-timeout", "20", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=RUN_LIMIT_S)

    def assert_cleaned_up(self, stderr):
        temp_dir = re.search(r"temp dir: (\S+);", stderr).group(1)
        self.assertFalse(Path(temp_dir).exists(), temp_dir)

    def test_full_coverage(self):
        result = self.run_mesh("--nodes", "4", "--topology", "chain", "--messages", "2",
                               "--size", "300", "--seed", "11", "--sender", "0", "--timeout", "30")
        self.assertEqual(result.returncode, 0, result.stderr)
        summary = json.loads(result.stdout)
        self.assertEqual(summary, json.loads((self.out / "summary.json").read_text()))
        self.assertEqual((summary["nodes"], summary["topology"], summary["messages"], summary["size"]),
                         (4, "chain", 2, 300))
        self.assertEqual((summary["seed"], summary["sender"], summary["coverage"]), (11, 0, 1.0))
        self.assertEqual((summary["deliveries"], summary["timed_out"]), (6, False))
        self.assertIsNotNone(summary["full_coverage_s"])
        self.assertLessEqual(summary["first_coverage_s"], summary["full_coverage_s"])
        # fake_mule: node i gets each message over i % 3 relays.
        self.assertEqual(summary["hop_histogram"], {"0": 2, "1": 2, "2": 2})
        # Every node (the sender too) reports one transfer per message held.
        self.assertEqual((summary["content_transfers"], summary["duplicate_ratio"]), (8, 0.333333))
        self.assertEqual(summary["bytes_on_wire"], 800)
        self.assertEqual(summary["rejections"], {"too_big": 0})
        self.assertEqual((summary["dead_nodes"], summary["unclean_exits"], summary["status_missing"]),
                         ([], [], []))
        self.assertEqual([m["delivered"] for m in summary["per_message"]], [3, 3])
        details = json.loads((self.out / "details.json").read_text())
        self.assertEqual([n["bootstrap_from"] for n in details["nodes"]], [[], [0], [1], [2]])
        self.assertEqual([n["exit_code"] for n in details["nodes"]], [0, 0, 0, 0])
        self.assertEqual(len(details["deliveries"]), 6)
        self.assertEqual(ET.parse(self.out / "coverage.svg").getroot().tag, "{http://www.w3.org/2000/svg}svg")
        self.assertFalse((self.out / "logs").exists())
        self.assert_cleaned_up(result.stderr)

    def test_missing_deliveries_time_out(self):
        result = self.run_mesh("--nodes", "4", "--sender", "0", "--timeout", "2", FAKE_MULE_DROP="2")
        self.assertEqual(result.returncode, 1, result.stderr)
        summary = json.loads(result.stdout)
        self.assertTrue(summary["timed_out"])
        self.assertIsNone(summary["full_coverage_s"])
        self.assertEqual((summary["deliveries"], summary["coverage"]), (2, 0.666667))
        self.assertIn("coverage timed out: 2/3 deliveries; 1 node(s) incomplete: 2", result.stderr)
        self.assertTrue((self.out / "logs" / "node-2.stdout.log").is_file())
        self.assertIn(">timeout</text>", (self.out / "coverage.svg").read_text())
        self.assert_cleaned_up(result.stderr)

    def test_node_dying_at_startup_is_a_setup_error(self):
        result = self.run_mesh("--nodes", "3", FAKE_MULE_CRASH="1")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn("error: node 0 exited with code 3 during startup", result.stderr)
        self.assertIn("fake crash before listening", (self.out / "logs" / "node-0.stderr.log").read_text())
        self.assert_cleaned_up(result.stderr)


if __name__ == "__main__":
    unittest.main()
