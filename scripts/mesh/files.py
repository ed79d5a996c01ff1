"""Where things are on disk: the `mule` binary, the output directory, log tails.

Path rules that a user may need to predict live in one place.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from .errors import SetupError
from .progress import log

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
"""The repository checkout this package lives in (scripts/mesh/ -> repo)."""
OUT_ROOT = Path("mesh-test-out")
"""Default parent of output directories, relative to the current directory."""


def find_mule(explicit: str | None) -> str:
    """--mule if given, else the release build, else `mule` on PATH, else the debug build."""
    if explicit:
        path = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
        if not path or not os.access(path, os.X_OK):
            raise SetupError(f"--mule {explicit}: not an executable file")
        return str(Path(path).resolve())
    release = REPO_ROOT / "target" / "release" / "mule"
    if release.is_file() and os.access(release, os.X_OK):
        return str(release)
    on_path = shutil.which("mule")
    if on_path:
        return on_path
    debug = REPO_ROOT / "target" / "debug" / "mule"
    if debug.is_file() and os.access(debug, os.X_OK):
        log(f"warning: using the debug build {debug}; numbers will be pessimistic")
        return str(debug)
    raise SetupError(f"mule binary not found (looked for {release} and `mule` on PATH); "
                     f"build it with `cargo build --release` or pass --mule PATH")


def make_out_dir(requested: str | None, now: datetime | None = None) -> Path:
    """--out if given, else a new ./mesh-test-out/<timestamp>[-k]/; created, absolute."""
    if requested:
        out = Path(requested)
    else:
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        out = OUT_ROOT / stamp
        suffix = 2
        while out.exists():
            out = OUT_ROOT / f"{stamp}-{suffix}"
            suffix += 1
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve()


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log (reading at most its last 16 KiB)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
