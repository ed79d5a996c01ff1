"""The `mule node` processes: what is known about each, how it is launched,
and how every one of them is stopped again whatever happens to the script.

Cleanup is the part that must never be skipped (a leaked node keeps ports,
namespaces and CPU), so the Reaper here is reached from `finally`, from
atexit and, through `Interrupted`, from the signal handlers.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import Interrupted
from .netns import NetnsLab
from .progress import log

LISTENING_RE = re.compile(r"listening on (\S+)")
"""A node prints this line for every address it listens on."""
PEER_ID_RE = re.compile(r"peer id:\s*(\S+)")
"""A node prints its peer id on startup; it must match what `mule id` said."""
ANNOUNCE_GRACE_S = 2.0
"""How long a node may listen without printing `listening on` before TCP is probed."""


@dataclass
class Node:
    """One `mule node` process and everything the script knows about it."""

    index: int
    data_dir: Path
    stdout_log: Path
    stderr_log: Path
    port: int = 0
    host: str = "127.0.0.1"
    netns: str | None = None
    peer_id: str = ""
    bootstrap_from: list[int] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    launched_at: float | None = None
    announced_addrs: list[str] = field(default_factory=list)
    final_status: dict | None = None
    peak_rss_kib: int | None = None
    exit_code: int | None = None

    @property
    def label(self) -> str:
        """How progress lines name this node."""
        return f"node {self.index}"

    @property
    def pid(self) -> int | None:
        """The process id once launched."""
        return self.proc.pid if self.proc else None

    def is_alive(self) -> bool:
        """Launched and not yet exited."""
        return self.proc is not None and self.proc.poll() is None

    def tcp_addr(self) -> str:
        """The TCP multiaddr other nodes dial."""
        return f"/ip4/{self.host}/tcp/{self.port}"

    def bootstrap_addr(self) -> str:
        """The multiaddr, with peer id, that nodes bootstrapping from this one get."""
        return f"{self.tcp_addr()}/p2p/{self.peer_id}"

    def listen_addrs(self, quic: bool) -> list[str]:
        """What this node is told to listen on (every interface inside a namespace)."""
        host = "0.0.0.0" if self.netns else self.host
        addrs = [f"/ip4/{host}/tcp/{self.port}"]
        if quic:
            addrs.append(f"/ip4/{host}/udp/{self.port}/quic-v1")
        return addrs

    def read_stdout(self) -> str:
        """Everything the node printed so far ('' if the log is unreadable)."""
        try:
            return self.stdout_log.read_text(errors="replace")
        except OSError:
            return ""

    def check_announced(self) -> bool:
        """Parse the node's stdout; True once it printed a `listening on` line."""
        text = self.read_stdout()
        self.announced_addrs = LISTENING_RE.findall(text)
        printed_id = PEER_ID_RE.search(text)
        if printed_id and self.peer_id and printed_id.group(1) != self.peer_id:
            log(f"warning: {self.label} printed peer id {printed_id.group(1)}, "
                f"but `mule id` said {self.peer_id}")
        return bool(self.announced_addrs)

    def read_peak_rss(self) -> int | None:
        """VmHWM (peak resident set size) in KiB from /proc, None if unavailable."""
        if not self.is_alive():
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return None


@dataclass
class NodeOptions:
    """The settings every `mule node` of one run shares."""

    max_active_peers: int
    quic: bool = False
    mdns: bool = False
    max_hops: int | None = None
    extra_args: list[str] = field(default_factory=list)
    rust_log: str | None = None


def node_command(mule: str, node: Node, bootstrap_addrs: list[str], options: NodeOptions) -> list[str]:
    """The full command line that starts `node` (inside its namespace, if any)."""
    cmd = [mule, "node", "--data-dir", str(node.data_dir),
           "--max-active-peers", str(options.max_active_peers)]
    for addr in node.listen_addrs(options.quic):
        cmd += ["--listen", addr]
    for addr in bootstrap_addrs:
        cmd += ["--bootstrap", addr]
    if not options.mdns:
        cmd.append("--no-mdns")
    if options.max_hops is not None:
        cmd += ["--max-hops", str(options.max_hops)]
    cmd += options.extra_args
    if node.netns:
        cmd = ["ip", "netns", "exec", node.netns] + cmd
    return cmd


def node_env(rust_log: str | None, base: dict[str, str]) -> dict[str, str]:
    """The nodes' environment: --rust-log wins, then $RUST_LOG, then `info`."""
    env = dict(base)
    if rust_log:
        env["RUST_LOG"] = rust_log
    else:
        env.setdefault("RUST_LOG", "info")
    return env


def launch(node: Node, cmd: list[str], env: dict[str, str]) -> None:
    """Start the node with its output going to its log files."""
    with open(node.stdout_log, "wb") as out, open(node.stderr_log, "wb") as err:
        node.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            env=env, start_new_session=True, preexec_fn=die_with_parent_hook())
    node.launched_at = time.monotonic()


def is_ready(node: Node) -> bool:
    """True once the node listens (announced on stdout, or accepting TCP)."""
    if node.check_announced():
        return True
    # Fallback for a node that listens but does not announce it on stdout.
    if node.netns is None and time.monotonic() - node.launched_at > ANNOUNCE_GRACE_S:
        try:
            socket.create_connection((node.host, node.port), timeout=0.2).close()
        except OSError:
            return False
        log(f"warning: {node.label} accepts TCP but printed no `listening on` line")
        return True
    return False


class Reaper:
    """Tracks everything the script starts and undoes it exactly once.

    Called from `finally`, from atexit and (indirectly) from signal handlers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cli_procs: set[subprocess.Popen] = set()
        self.nodes: list[Node] = []
        self.temp_dir: Path | None = None
        self.keep_temp = False
        self.netns: NetnsLab | None = None
        self._hurry = False
        self._done = False

    def track_cli(self, proc: subprocess.Popen) -> None:
        """Remember a running CLI call so cleanup can kill it."""
        with self._lock:
            self._cli_procs.add(proc)

    def untrack_cli(self, proc: subprocess.Popen) -> None:
        """Forget a CLI call that has finished."""
        with self._lock:
            self._cli_procs.discard(proc)

    def _on_signal_during_cleanup(self, signum: int, _frame: Any) -> None:
        log(f"{signal.Signals(signum).name} during cleanup: killing nodes now")
        self._hurry = True

    def stop_nodes(self, grace: float = 5.0) -> None:
        """SIGTERM every live node, wait up to `grace` seconds, then SIGKILL."""
        live = [n for n in self.nodes if n.is_alive()]
        for node in live:
            try:
                node.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(n.is_alive() for n in live) and time.monotonic() < deadline and not self._hurry:
            time.sleep(0.05)
        stubborn = [n for n in live if n.is_alive()]
        if stubborn:
            log(f"{len(stubborn)} node(s) still running after SIGTERM, sending SIGKILL: "
                + ", ".join(str(n.index) for n in stubborn[:20]))
        for node in stubborn:
            try:
                node.proc.kill()
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        """Wait for every launched node and record its exit code."""
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"warning: {node.label} (pid {node.pid}) did not die")
            if node.exit_code is None:
                node.exit_code = node.proc.returncode

    def cleanup(self) -> None:
        """Kill CLI calls, stop nodes, delete namespaces and the temp dir (once)."""
        with self._lock:
            if self._done:
                return
            self._done = True
            cli_procs = list(self._cli_procs)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                signal.signal(signum, self._on_signal_during_cleanup)
            except ValueError:  # not in the main thread
                pass
        for proc in cli_procs:
            if proc.poll() is None:
                proc.kill()
        self.stop_nodes()
        if self.netns:
            self.netns.teardown()
        if self.temp_dir and self.temp_dir.exists():
            if self.keep_temp:
                log(f"kept data dirs and logs in {self.temp_dir}")
            else:
                shutil.rmtree(self.temp_dir, ignore_errors=True)


REAPER = Reaper()
"""The one Reaper of this process (signal handlers and atexit need a global)."""


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """Turn SIGINT/SIGTERM/SIGHUP into `Interrupted` and clean up at exit."""
    # SIGINT explicitly too: Python leaves it ignored if started with SIG_IGN
    # (e.g. as a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)
    atexit.register(REAPER.cleanup)


@functools.cache
def die_with_parent_hook() -> Callable[[], None] | None:
    """preexec_fn making a child get SIGTERM if this script dies (even by SIGKILL).

    Nodes run in their own session (so a terminal Ctrl-C reaches only this
    script, which then shuts them down in order); this is the safety net for
    the case where the script cannot clean up.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return hook
