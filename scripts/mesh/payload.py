"""Message contents of an exact size, reproducible from the run's seed.

Small payloads go on the command line (`--text`), larger ones through a file
(`--file`), because argv is limited and the CLI reads files as bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

TEXT_SIZE_LIMIT = 256  # payloads up to this size are sent with --text, larger ones with --file
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
"""Characters of --text payloads: one byte each in UTF-8, safe on any command line."""


def make_payload(rng: random.Random, size: int, index: int, work_dir: Path) -> tuple[list[str], int]:
    """CLI arguments carrying a payload of exactly `size` bytes."""
    if size <= TEXT_SIZE_LIMIT:
        text = "".join(rng.choices(ALPHABET, k=size))
        return ["--text", text], size
    path = work_dir / f"payload-{index}.bin"
    path.write_bytes(rng.randbytes(size))
    return ["--file", str(path)], size
