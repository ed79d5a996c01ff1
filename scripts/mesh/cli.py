"""The command line of scripts/mesh-test: options, their checks, and exit codes.

`main` is the only place that turns exceptions into exit codes and makes
sure cleanup runs, whatever ends the run.
"""

from __future__ import annotations

import argparse
import random
import signal
from concurrent.futures import ThreadPoolExecutor

from . import __doc__ as PACKAGE_DOC
from .errors import Interrupted, SetupError
from .files import find_mule
from .netns import NetnsLab
from .payload import TEXT_SIZE_LIMIT
from .procs import REAPER, install_signal_handlers
from .progress import log, start_clock
from .run import MeshTest
from .topology import TOPOLOGIES

EPILOG = """outputs:
  stdout            one JSON summary (also OUT/summary.json)
  OUT/coverage.svg  coverage of (node, message) pairs vs seconds since the first send
  OUT/details.json  per-node status/RSS, per-message send times, every delivery
  OUT/logs/         stderr/stdout of nodes that failed (only on failure)

topologies (bootstrap edges; nodes never use mDNS unless --netns):
  star    every node bootstraps from node 0
  chain   node i bootstraps from node i-1
  zones   node i is in zones i mod Z and (i+1) mod Z and bootstraps from the
          lowest-index earlier node of each of its zones (always connected)

exit codes: 0 full coverage, 1 timed out / nodes died, 2 setup error,
            130 Ctrl-C, 143 SIGTERM (128+signal)

examples:
  cargo build --release && scripts/mesh-test
  scripts/mesh-test --nodes 200 --topology zones --zones 8 --max-active-peers 3 --seed 7
  scripts/mesh-test --nodes 50 --messages 20 --size 65536 --topology chain --timeout 300
  sudo scripts/mesh-test --netns --nodes 24          # one network namespace per node, mDNS on
"""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_mesh_options(parser: argparse.ArgumentParser) -> None:
    """Options shaping the mesh: size, topology and what every node is told."""
    mesh = parser.add_argument_group("mesh")
    mesh.add_argument("--nodes", "-n", type=positive_int, metavar="N", default=32, help="number of nodes (default 32)")
    mesh.add_argument("--topology", "-t", choices=list(TOPOLOGIES), default="star",
                      metavar="{star,chain,zones}",
                      help="bootstrap topology (default star)")
    mesh.add_argument("--zones", type=positive_int, metavar="Z", default=4, help="zone count for --topology zones (default 4)")
    mesh.add_argument("--max-active-peers", "-L", type=non_negative_int, metavar="L", default=2,
                      help="passed to every node as --max-active-peers (default 2)")
    mesh.add_argument("--max-hops", type=non_negative_int, metavar="H", default=None,
                      help="passed to every node as --max-hops (default: node's own default)")
    mesh.add_argument("--quic", action="store_true",
                      help="also listen on QUIC (/udp/PORT/quic-v1); bootstrap stays TCP")
    mesh.add_argument("--base-port", type=positive_int, metavar="PORT", default=None,
                      help="node i listens on BASE+i (default: free ports below the ephemeral range)")
    mesh.add_argument("--netns", action="store_true",
                      help="root only: one network namespace per node (mule-ns-<i>, 10.77.x.y/16) on a "
                           "private bridge mulebr0; nodes listen on 0.0.0.0 with mDNS on and no bootstrap")
    mesh.add_argument("--node-arg", action="append", default=[], metavar="ARG",
                      help="extra argument for every `mule node` (repeatable, e.g. --node-arg=--foo)")
    mesh.add_argument("--rust-log", default=None, metavar="FILTER",
                      help="RUST_LOG for the nodes (default: $RUST_LOG, else info)")


def add_traffic_options(parser: argparse.ArgumentParser) -> None:
    """Options shaping what is sent, and by whom."""
    traffic = parser.add_argument_group("traffic")
    traffic.add_argument("--messages", "-m", type=positive_int, metavar="M", default=1, help="messages to send (default 1)")
    traffic.add_argument("--size", "-s", type=positive_int, metavar="BYTES", default=1024,
                         help=f"payload bytes per message (default 1024; <= {TEXT_SIZE_LIMIT} sent "
                              f"as --text, larger as --file)")
    traffic.add_argument("--seed", type=int, metavar="S", default=None,
                         help="seeds the choice of sender and the contents (default: random, reported)")
    traffic.add_argument("--sender", type=non_negative_int, metavar="K", default=None,
                         help="index of the sending node (default: drawn from --seed if given, else 0)")
    traffic.add_argument("--lifespan", metavar="DURATION", default=None, help="passed to `mule send --lifespan` (e.g. 24h)")


def add_timing_options(parser: argparse.ArgumentParser) -> None:
    """Timeouts, polling and parallelism."""
    timing = parser.add_argument_group("timing")
    timing.add_argument("--timeout", type=positive_float, metavar="SECONDS", default=120.0,
                        help="seconds after the first send to wait for full coverage (default 120)")
    timing.add_argument("--formation-timeout", type=positive_float, metavar="SECONDS", default=60.0,
                        help="seconds after all nodes listen to wait for every node to have a peer (default 60)")
    timing.add_argument("--start-timeout", type=positive_float, metavar="SECONDS", default=20.0,
                        help="seconds a node may take to print `listening on` (default 20)")
    timing.add_argument("--start-batch", type=positive_int, metavar="B", default=16,
                        help="max nodes starting at the same time (default 16)")
    timing.add_argument("--poll-interval", type=positive_float, metavar="SECONDS", default=0.2,
                        help="seconds between polling rounds (default 0.2)")
    timing.add_argument("--workers", type=positive_int, metavar="W", default=16,
                        help="parallel `mule status/list` calls (default 16)")
    timing.add_argument("--cli-timeout", type=positive_float, metavar="SECONDS", default=15.0,
                        help="seconds before a single CLI call is abandoned (default 15)")


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """Where the binary is and where results go."""
    output = parser.add_argument_group("files")
    output.add_argument("--mule", metavar="PATH", default=None,
                        help="mule binary (default: REPO/target/release/mule, else `mule` on PATH)")
    output.add_argument("--out", metavar="DIR", default=None,
                        help="output directory (default ./mesh-test-out/<timestamp>/)")
    output.add_argument("--keep", action="store_true", help="keep the temp dir with data dirs and logs")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; its --help is the tool's manual."""
    parser = argparse.ArgumentParser(
        prog="mesh-test", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(PACKAGE_DOC or "").split("Outputs")[0].strip(), epilog=EPILOG)
    add_mesh_options(parser)
    add_traffic_options(parser)
    add_timing_options(parser)
    add_file_options(parser)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and cross-check the options; draws the seed when none is given."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nodes < 2:
        parser.error("--nodes must be at least 2")
    if args.sender is not None and args.sender >= args.nodes:
        parser.error(f"--sender {args.sender} is not a node index (0..{args.nodes - 1})")
    args.seed_given = args.seed is not None
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    if args.netns and args.topology != "star":
        log("note: --netns uses mDNS discovery; --topology is ignored")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one measurement; the process exit code (see the epilog)."""
    start_clock()
    args = parse_args(argv)
    install_signal_handlers()
    pool = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="mule-cli")
    try:
        if args.netns:
            NetnsLab.check_prerequisites()
        mule = find_mule(args.mule)
        return MeshTest(args, mule, pool).run()
    except SetupError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted (SIGINT), cleaning up")
        return 128 + signal.SIGINT
    except Interrupted as exc:
        log(f"interrupted ({exc}), cleaning up")
        return 128 + exc.signum
    finally:
        REAPER.cleanup()
        pool.shutdown(wait=False, cancel_futures=True)
