"""Output directories, log tails, payloads and the binary lookup."""

import os
import random
import tempfile
import unittest
from datetime import datetime
from pathlib import Path

from mesh.errors import SetupError
from mesh.files import find_mule, make_out_dir, tail
from mesh.payload import TEXT_SIZE_LIMIT, make_payload


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name).resolve()
        self.addCleanup(self._tmp.cleanup)


class OutDirTest(TempDirTest):
    def test_requested_dir_is_created(self):
        out = make_out_dir(str(self.tmp / "a" / "b"))
        self.assertEqual(out, self.tmp / "a" / "b")
        self.assertTrue(out.is_dir())
        self.assertEqual(make_out_dir(str(out)), out)  # existing is fine

    def test_default_is_a_fresh_timestamped_dir(self):
        cwd = os.getcwd()
        os.chdir(self.tmp)
        self.addCleanup(os.chdir, cwd)
        now = datetime(2026, 1, 2, 3, 4, 5)
        first = make_out_dir(None, now)
        second = make_out_dir(None, now)
        third = make_out_dir(None, now)
        self.assertEqual(first, self.tmp / "mesh-test-out" / "20260102-030405")
        self.assertEqual(second, self.tmp / "mesh-test-out" / "20260102-030405-2")
        self.assertEqual(third, self.tmp / "mesh-test-out" / "20260102-030405-3")


class TailTest(TempDirTest):
    def test_last_lines(self):
        log = self.tmp / "n.log"
        log.write_text("".join(f"line {i}\n" for i in range(100)))
        self.assertEqual(tail(log, 3), "line 97\nline 98\nline 99")
        self.assertEqual(len(tail(log).splitlines()), 15)

    def test_reads_only_the_end_of_big_logs(self):
        log = self.tmp / "big.log"
        log.write_bytes(b"x" * 100_000 + b"\nlast\n")
        self.assertEqual(tail(log, 1), "last")

    def test_empty_and_missing(self):
        (self.tmp / "empty.log").write_text("")
        self.assertEqual(tail(self.tmp / "empty.log"), "(empty log)")
        self.assertEqual(tail(self.tmp / "missing.log"), "(no log)")


class FindMuleTest(TempDirTest):
    def test_explicit_executable(self):
        exe = self.tmp / "mule"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
        self.assertEqual(find_mule(str(exe)), str(exe))

    def test_explicit_but_not_executable(self):
        plain = self.tmp / "mule"
        plain.write_text("")
        plain.chmod(0o644)
        for bad in (str(plain), str(self.tmp / "missing")):
            with self.assertRaisesRegex(SetupError, "not an executable file"):
                find_mule(bad)


class PayloadTest(TempDirTest):
    def test_small_payloads_are_text_of_the_exact_size(self):
        for size in (1, TEXT_SIZE_LIMIT):
            args, length = make_payload(random.Random(1), size, 0, self.tmp)
            self.assertEqual(args[0], "--text")
            self.assertEqual(len(args[1].encode()), size)
            self.assertEqual(length, size)
        self.assertEqual(list(self.tmp.iterdir()), [])

    def test_large_payloads_go_through_a_file(self):
        args, length = make_payload(random.Random(1), TEXT_SIZE_LIMIT + 1, 7, self.tmp)
        self.assertEqual(args, ["--file", str(self.tmp / "payload-7.bin")])
        self.assertEqual((self.tmp / "payload-7.bin").stat().st_size, TEXT_SIZE_LIMIT + 1)
        self.assertEqual(length, TEXT_SIZE_LIMIT + 1)

    def test_same_seed_same_contents(self):
        a = make_payload(random.Random(42), 64, 0, self.tmp)
        b = make_payload(random.Random(42), 64, 0, self.tmp)
        c = make_payload(random.Random(43), 64, 0, self.tmp)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)


if __name__ == "__main__":
    unittest.main()
