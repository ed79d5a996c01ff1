"""The experiment flow: set up, start nodes, wait for the mesh, send, watch, stop.

This is the only module that sequences the phases; each phase reports
progress on stderr and turns what goes wrong into a `SetupError` (or, in the
coverage phase, into a timed-out result), while the pieces it drives
(processes, CLI, ports, namespaces, statistics) live in their own modules.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from . import procs, report
from .deliveries import Delivery, SentMessage, holds_all, record_listing
from .errors import CliError, SetupError
from .files import make_out_dir, tail
from .control import ControlSocket
from .mulecli import MuleCli
from .netns import BRIDGE, BRIDGE_NS, NetnsLab, node_ip, node_ns
from .parallel import capture
from .payload import make_payload
from .ports import pick_ports
from .procs import REAPER, Node, NodeOptions
from .progress import log
from .status import describe_status, is_formed
from .topology import bootstrap_plan, check_connected

REPORT_EVERY_S = 2.0
"""Seconds between progress lines while starting nodes and forming the mesh."""
SOCKET_PATH_WARN_LEN = 80
"""Data dir paths longer than this may push the control socket past 108 bytes."""


class MeshTest:
    """One measurement: set up, start nodes, form, send, watch, report."""

    def __init__(self, args: argparse.Namespace, mule: str, pool: ThreadPoolExecutor) -> None:
        self.args = args
        self.pool = pool
        self.cli = MuleCli(mule, args.cli_timeout)
        self.control = ControlSocket(args.cli_timeout)
        self.mule = mule
        self.rng = random.Random(args.seed)
        self.sender_index = args.sender if args.sender is not None else (
            self.rng.randrange(args.nodes) if args.seed_given else 0)
        self.out_dir = make_out_dir(args.out)
        self.work_dir = Path(tempfile.mkdtemp(prefix="mule-mesh-"))
        REAPER.temp_dir = self.work_dir
        REAPER.keep_temp = args.keep
        self.options = NodeOptions(
            max_active_peers=args.max_active_peers, quic=args.quic, mdns=args.netns,
            max_hops=args.max_hops, extra_args=args.node_arg, rust_log=args.rust_log)
        self.nodes: list[Node] = []
        self.launch_started = 0.0
        self.messages: list[SentMessage] = []
        self.deliveries: dict[tuple[int, str], Delivery] = {}
        self.dead_nodes: set[int] = set()
        self.timed_out = False
        self.coverage_ended = 0.0  # unix time the coverage phase ended

    # ---- helpers ----------------------------------------------------------

    @property
    def sender(self) -> Node:
        """The node every message is sent from."""
        return self.nodes[self.sender_index]

    @property
    def total_pairs(self) -> int:
        """(node, message) pairs to deliver: every node but the sender, every message."""
        return (self.args.nodes - 1) * len(self.messages)

    def parallel(self, fn: Callable[[Node], Any], nodes: list[Node]) -> list[tuple[Node, Any, Exception | None]]:
        """fn on every node via the pool: (node, result, error) in node order."""
        results = self.pool.map(capture(fn), nodes)
        return [(node, value, err) for node, (value, err) in zip(nodes, results)]

    def report_nodes(self, nodes: list[Node], why: str, max_tails: int = 3) -> None:
        """Print log tails of failing nodes and copy their logs to OUT/logs."""
        if not nodes:
            return
        logs_dir = self.out_dir / "logs"
        logs_dir.mkdir(exist_ok=True)
        for node in nodes:
            for src, kind in ((node.stderr_log, "stderr"), (node.stdout_log, "stdout")):
                if src.exists():
                    shutil.copy(src, logs_dir / f"node-{node.index}.{kind}.log")
        for node in nodes[:max_tails]:
            print(f"--- {node.label} ({why}), last lines of {node.stderr_log.name} ---\n"
                  f"{tail(node.stderr_log)}", file=sys.stderr)
        log(f"logs of {len(nodes)} failing node(s) copied to {logs_dir}")

    def check_deaths(self) -> list[Node]:
        """Nodes that exited since the last check."""
        newly_dead = [n for n in self.nodes
                      if n.proc is not None and not n.is_alive() and n.index not in self.dead_nodes]
        for node in newly_dead:
            self.dead_nodes.add(node.index)
            node.exit_code = node.proc.returncode
            log(f"{node.label} exited unexpectedly with code {node.exit_code}")
        return newly_dead

    # ---- phases -----------------------------------------------------------

    def prepare(self) -> None:
        """Ports, bootstrap plan, data dirs, identities and (with --netns) namespaces."""
        args = self.args
        log(f"output directory: {self.out_dir}")
        log(f"temp dir: {self.work_dir}; mule binary: {self.mule}")
        if args.netns:
            REAPER.netns = NetnsLab(args.nodes)
            ports = [args.base_port or 4001] * args.nodes
        else:
            ports = pick_ports(args.nodes, args.base_port, args.quic, random.Random())
        plan = bootstrap_plan("mdns" if args.netns else args.topology, args.nodes, args.zones)
        if not args.netns:
            check_connected(plan)
        for i in range(args.nodes):
            node = Node(index=i, data_dir=self.work_dir / f"n{i}",
                        stdout_log=self.work_dir / f"n{i}.stdout.log",
                        stderr_log=self.work_dir / f"n{i}.stderr.log",
                        port=ports[i], bootstrap_from=plan[i])
            if args.netns:
                node.netns, node.host = node_ns(i), node_ip(i)
            node.data_dir.mkdir()
            self.nodes.append(node)
        REAPER.nodes = self.nodes
        if len(str(self.nodes[-1].data_dir)) > SOCKET_PATH_WARN_LEN:
            log(f"warning: data dir paths are long ({self.nodes[-1].data_dir}); the control "
                f"socket path may exceed the 108-byte Unix socket limit; set TMPDIR shorter")
        self.create_identities()
        if REAPER.netns:
            log(f"creating {args.nodes} network namespaces on bridge {BRIDGE} in {BRIDGE_NS}")
            REAPER.netns.create(self.pool)

    def create_identities(self) -> None:
        """`mule id` in every data dir; peer ids must be distinct."""
        log(f"creating {len(self.nodes)} identities with `mule id`")
        failures = []
        for node, peer_id, err in self.parallel(lambda n: self.cli.identity(n.data_dir), self.nodes):
            if err:
                failures.append(f"{node.label}: {err}")
            else:
                node.peer_id = peer_id
        if failures:
            raise SetupError("`mule id` failed for " + "; ".join(failures[:5]))
        if len({n.peer_id for n in self.nodes}) != len(self.nodes):
            raise SetupError("`mule id` returned duplicate peer ids for different data dirs")

    def node_command(self, node: Node) -> list[str]:
        """The command starting `node`, bootstrapping from its planned sources."""
        sources = [self.nodes[source].bootstrap_addr() for source in node.bootstrap_from]
        return procs.node_command(self.mule, node, sources, self.options)

    def launch(self, node: Node) -> None:
        """Start one node with the run's environment."""
        env = procs.node_env(self.options.rust_log, dict(os.environ))
        procs.launch(node, self.node_command(node), env)

    def start_nodes(self) -> None:
        """Launch nodes in parallel batches, each once its bootstrap sources listen.

        At most --start-batch nodes are starting (launched but not yet
        listening) at any time.  For `star` that is node 0 and then everyone
        in batches; for `chain` it is necessarily one after the other.
        """
        args = self.args
        layout = "netns, mDNS" if args.netns else args.topology
        log(f"starting {args.nodes} nodes ({layout}, batches of {args.start_batch})")
        self.launch_started = time.monotonic()
        pending = list(range(args.nodes))
        starting: set[int] = set()
        ready: set[int] = set()
        last_report = 0.0
        while pending or starting:
            waiting = []
            for i in pending:
                node = self.nodes[i]
                if len(starting) < args.start_batch and all(s in ready for s in node.bootstrap_from):
                    self.launch(node)
                    starting.add(i)
                else:
                    waiting.append(i)
            pending = waiting
            for i in sorted(starting):
                if self.check_started(self.nodes[i]):
                    starting.discard(i)
                    ready.add(i)
            if time.monotonic() - last_report > REPORT_EVERY_S:
                last_report = time.monotonic()
                log(f"  {len(ready)}/{args.nodes} nodes listening")
            time.sleep(0.01)
        dead = self.check_deaths()
        if dead:
            self.report_nodes(dead, "exited after startup")
            raise SetupError(f"{len(dead)} node(s) exited right after starting")
        log(f"all {args.nodes} nodes listening after {time.monotonic() - self.launch_started:.1f}s")

    def check_started(self, node: Node) -> bool:
        """True once a launched node listens; a setup error if it died or took too long."""
        if procs.is_ready(node):
            return True
        if not node.is_alive():
            self.report_nodes([node], "exited during startup")
            raise SetupError(f"{node.label} exited with code {node.proc.returncode} "
                             f"during startup (command: {' '.join(self.node_command(node))})")
        if time.monotonic() - node.launched_at > self.args.start_timeout:
            self.report_nodes([node], "did not start")
            raise SetupError(f"{node.label} printed no `listening on` line within "
                             f"{self.args.start_timeout:g}s")
        return False

    def wait_for_formation(self) -> float:
        """Poll every node's status until each has a peer; return formation time."""
        args = self.args
        min_peers = min(args.max_active_peers, 1)
        unformed = list(self.nodes)
        last_seen: dict[int, str] = {}
        deadline = time.monotonic() + args.formation_timeout
        last_report = 0.0
        while True:
            still = []
            for node, status, err in self.parallel(self.control.status, unformed):
                if err:
                    last_seen[node.index] = f"status failed: {err}"
                    still.append(node)
                elif is_formed(status, min_peers):
                    last_seen.pop(node.index, None)
                else:
                    last_seen[node.index] = describe_status(status)
                    still.append(node)
            unformed = still
            if not unformed:
                break
            self.check_formation_failed(unformed, last_seen, deadline)
            if time.monotonic() - last_report > REPORT_EVERY_S:
                last_report = time.monotonic()
                log(f"  formation: {args.nodes - len(unformed)}/{args.nodes} nodes connected")
            time.sleep(args.poll_interval)
        formation = time.monotonic() - self.launch_started
        log(f"mesh formed {formation:.2f}s after the first launch")
        return formation

    def check_formation_failed(self, unformed: list[Node], last_seen: dict[int, str],
                               deadline: float) -> None:
        """A setup error if a node died or the formation deadline passed."""
        dead = self.check_deaths()
        if dead:
            self.report_nodes(dead, "exited during formation")
            raise SetupError(f"{len(dead)} node(s) exited before the mesh formed: "
                             + ", ".join(str(n.index) for n in dead))
        if time.monotonic() > deadline:
            self.report_nodes(unformed, "not connected")
            listing = "; ".join(f"node {n.index} ({n.peer_id}): {last_seen.get(n.index)}"
                                for n in unformed[:20])
            more = f" ... and {len(unformed) - 20} more" if len(unformed) > 20 else ""
            raise SetupError(f"mesh did not form within {self.args.formation_timeout:g}s; "
                             f"{len(unformed)} node(s) not connected: {listing}{more}")

    def send_messages(self) -> None:
        """Send --messages payloads from the sender, recording when each send ran."""
        args = self.args
        payloads = [make_payload(self.rng, args.size, j, self.work_dir) for j in range(args.messages)]
        log(f"sending {args.messages} message(s) of {args.size} bytes from node {self.sender_index} "
            f"({self.sender.peer_id})")
        for j, (content_args, length) in enumerate(payloads):
            started = time.time()
            try:
                message_id = self.cli.send(self.sender, content_args, args.lifespan)
            except CliError as exc:
                raise SetupError(f"sending message {j} failed: {exc}") from None
            self.messages.append(SentMessage(j, message_id, length, started, time.time()))
        if len({m.id for m in self.messages}) != len(self.messages):
            raise SetupError("`mule send` returned the same id for different messages")

    def poll_listing(self, node: Node) -> float:
        """One listing of `node`'s messages, recording new deliveries; the poll time."""
        listing = self.control.list_messages(node)
        polled_at = time.time()
        record_listing(self.deliveries, node.index, listing, self.messages, polled_at)
        return polled_at

    def node_complete(self, node: Node) -> bool:
        """True once `node` was seen holding every message."""
        return holds_all(self.deliveries, node.index, self.messages)

    def wait_for_coverage(self) -> None:
        """Poll the listings of incomplete nodes until all hold every message."""
        args = self.args
        total = self.total_pairs
        deadline = self.messages[0].send_started + args.timeout
        incomplete = [n for n in self.nodes if n is not self.sender]
        errors: dict[int, str] = {}
        last_report = 0.0
        log(f"waiting for {total} deliveries (timeout {args.timeout:g}s)")
        while incomplete:
            round_started = time.monotonic()
            for node, _, err in self.parallel(self.poll_listing, incomplete):
                if err:
                    errors[node.index] = str(err)
            incomplete = [n for n in incomplete if not self.node_complete(n)]
            if not incomplete:
                break
            self.check_deaths()
            if all(n.index in self.dead_nodes for n in incomplete):
                log("every node still missing messages has exited; giving up")
                break
            if time.time() > deadline:
                self.timed_out = True
                break
            if time.monotonic() - last_report > 1.0:
                last_report = time.monotonic()
                done = len(self.deliveries)
                log(f"  coverage {done}/{total} ({100 * done / total:.1f}%), "
                    f"{args.nodes - 1 - len(incomplete)}/{args.nodes - 1} nodes complete")
            time.sleep(max(0.0, args.poll_interval - (time.monotonic() - round_started)))
        self.coverage_ended = time.time()
        self.log_coverage_end(incomplete, errors)

    def log_coverage_end(self, incomplete: list[Node], errors: dict[int, str]) -> None:
        """Say how the coverage phase ended; keep the logs of incomplete nodes."""
        done, total = len(self.deliveries), self.total_pairs
        if incomplete:
            reason = "timed out" if self.timed_out else "stopped"
            log(f"coverage {reason}: {done}/{total} deliveries; {len(incomplete)} node(s) incomplete: "
                + ", ".join(str(n.index) for n in incomplete[:30]))
            for node in incomplete[:5]:
                if node.index in errors:
                    log(f"  last `mule list` error on {node.label}: {errors[node.index]}")
            self.report_nodes(incomplete, "missing messages")
        else:
            log(f"full coverage: {done}/{total} deliveries")

    def collect_final_stats(self) -> None:
        """Counters from every node, then peak RSS, just before shutdown."""
        log("collecting final status and peak RSS from every node")
        alive = [n for n in self.nodes if n.is_alive()]
        for node, status, err in self.parallel(self.control.status, alive):
            if err:
                log(f"warning: final status of {node.label} failed: {err}")
            else:
                node.final_status = status
        for node in self.nodes:
            node.peak_rss_kib = node.read_peak_rss()

    def unclean_exits(self) -> list[Node]:
        """Nodes that were alive until shutdown but did not exit with 0."""
        return [n for n in self.nodes if n.index not in self.dead_nodes and n.exit_code not in (0, None)]

    def stop_nodes(self) -> None:
        """SIGTERM every node (SIGKILL after a grace period) and note unclean exits."""
        log(f"stopping {len(self.nodes)} nodes")
        REAPER.stop_nodes(grace=5.0)
        unclean = self.unclean_exits()
        if unclean:
            log(f"warning: {len(unclean)} node(s) did not exit cleanly after SIGTERM: "
                + ", ".join(f"{n.index} (code {n.exit_code})" for n in unclean[:20]))

    # ---- entry point ------------------------------------------------------

    def run(self) -> int:
        """Every phase in order; 0 on full coverage, 1 otherwise."""
        self.prepare()
        self.start_nodes()
        formation_s = self.wait_for_formation()
        self.send_messages()
        self.wait_for_coverage()
        self.collect_final_stats()
        self.stop_nodes()
        summary = report.summary(self, formation_s)
        text = json.dumps(summary, indent=2)
        (self.out_dir / "summary.json").write_text(text + "\n")
        chart = report.write_chart(self, summary)
        report.write_details(self)
        log(f"wrote {self.out_dir / 'summary.json'}, {chart} and details.json")
        print(text, flush=True)
        return 0 if summary["full_coverage_s"] is not None else 1
