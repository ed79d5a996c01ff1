"""Option parsing: defaults, checks and the manual in --help."""

import argparse
import contextlib
import io
import unittest

from mesh.cli import build_parser, non_negative_int, parse_args, positive_float, positive_int


def parse_error(argv):
    """The exit code and stderr of a rejected command line."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parse_args(argv)
    except SystemExit as exc:
        return exc.code, err.getvalue()
    raise AssertionError(f"{argv} was accepted")


class TypesTest(unittest.TestCase):
    def test_bounds(self):
        self.assertEqual(positive_int("1"), 1)
        self.assertEqual(non_negative_int("0"), 0)
        self.assertEqual(positive_float("0.5"), 0.5)
        with self.assertRaisesRegex(argparse.ArgumentTypeError, "must be >= 1, got 0"):
            positive_int("0")
        with self.assertRaisesRegex(argparse.ArgumentTypeError, "must be >= 0, got -1"):
            non_negative_int("-1")
        with self.assertRaisesRegex(argparse.ArgumentTypeError, "must be > 0, got 0.0"):
            positive_float("0")
        with self.assertRaises(ValueError):
            positive_int("x")


class ParseTest(unittest.TestCase):
    def test_defaults(self):
        args = parse_args([])
        self.assertEqual((args.nodes, args.topology, args.zones, args.max_active_peers), (32, "star", 4, 2))
        self.assertEqual((args.messages, args.size, args.sender, args.lifespan), (1, 1024, None, None))
        self.assertEqual((args.timeout, args.formation_timeout, args.start_timeout), (120.0, 60.0, 20.0))
        self.assertEqual((args.start_batch, args.poll_interval, args.workers, args.cli_timeout),
                         (16, 0.2, 16, 15.0))
        self.assertEqual((args.mule, args.out, args.keep, args.netns, args.quic), (None, None, False, False, False))
        self.assertEqual(args.node_arg, [])
        self.assertFalse(args.seed_given)
        self.assertTrue(0 <= args.seed < 2**31)

    def test_short_options_and_repeats(self):
        args = parse_args(["-n", "5", "-t", "zones", "-L", "0", "-m", "3", "-s", "9", "--seed", "7",
                           "--sender", "4", "--node-arg=--a", "--node-arg", "b"])
        self.assertEqual((args.nodes, args.topology, args.max_active_peers), (5, "zones", 0))
        self.assertEqual((args.messages, args.size, args.seed, args.sender), (3, 9, 7, 4))
        self.assertTrue(args.seed_given)
        self.assertEqual(args.node_arg, ["--a", "b"])

    def test_rejections(self):
        code, err = parse_error(["--nodes", "1"])
        self.assertEqual(code, 2)
        self.assertIn("mesh-test: error: --nodes must be at least 2", err)
        code, err = parse_error(["--nodes", "3", "--sender", "3"])
        self.assertEqual(code, 2)
        self.assertIn("--sender 3 is not a node index (0..2)", err)
        code, err = parse_error(["--topology", "ring"])
        self.assertEqual(code, 2)
        self.assertIn("invalid choice: 'ring'", err)
        code, err = parse_error(["--timeout", "0"])
        self.assertIn("must be > 0, got 0.0", err)

    def test_netns_ignores_the_topology_and_says_so(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            parse_args(["--netns", "--topology", "chain"])
        self.assertIn("note: --netns uses mDNS discovery; --topology is ignored", err.getvalue())


class HelpTest(unittest.TestCase):
    def test_manual(self):
        text = build_parser().format_help()
        self.assertTrue(text.startswith("usage: mesh-test [-h] [--nodes N]"))
        self.assertIn("What it measures", text)
        self.assertIn("full_coverage_s", text)
        self.assertNotIn("Package layout", text)  # the package doc after "Outputs" stays out
        self.assertIn("exit codes: 0 full coverage", text)
        for group in ("mesh:", "traffic:", "timing:", "files:"):
            self.assertIn(f"\n{group}\n", text)


if __name__ == "__main__":
    unittest.main()
