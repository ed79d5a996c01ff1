//! Drives the real `mule` binary from tests: one command at a time, or a long-running process
//! (a node, a robot) whose stdout lines are read as they come, killed if the test fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

pub const DEADLINE: Duration = Duration::from_secs(30);
pub const MULE: &str = env!("CARGO_BIN_EXE_mule");

pub fn mule(dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(MULE)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()?)
}

pub fn ok_stdout(out: Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "mule failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A `mule node` process, killed if the test fails.
pub struct NodeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl NodeProcess {
    /// `mule node` on loopback without mDNS, with `extra` flags.
    pub fn start(dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let mut args = vec!["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
        args.extend_from_slice(extra);
        Self::spawn(dir, &args)
    }

    /// `mule <args>` with stdout read line by line (a node, a robot).
    pub fn spawn(dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(MULE)
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The first `listening on ...` address printed.
    pub fn listen_addr(&self) -> anyhow::Result<String> {
        self.printed("listening on ")
    }

    /// The rest of the next line printed that starts with `prefix`.
    pub fn printed(&self, prefix: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("node printed no `{prefix}` line"))?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.to_owned());
            }
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(Instant::now() < deadline, "node did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `mule inbox --json` (the CLI has no push notification) until `pred` holds.
pub fn wait_inbox(
    dir: &Path,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let inbox: Vec<serde_json::Value> =
            serde_json::from_str(&ok_stdout(mule(dir, &["inbox", "--json"])?)?)?;
        if pred(&inbox) {
            return Ok(inbox);
        }
        anyhow::ensure!(Instant::now() < deadline, "inbox never matched: {inbox:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
