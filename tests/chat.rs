//! `mule chat` and `mule robot` through the real binary: the chat runs in tmux (a real
//! terminal) against a robot on loopback; a robot started and stopped by `!talk` / `!hush`; no
//! progress drawn when stderr is not a terminal.

mod process;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::Context;
use process::{mule, ok_stdout, wait_inbox, NodeProcess, DEADLINE, MULE};

/// A tmux server of the test's own (`-L`), killed with the test.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` when tmux is not installed.
    fn start(name: &str, command: &str) -> anyhow::Result<Option<Self>> {
        if Command::new("tmux").arg("-V").output().is_err() {
            return Ok(None);
        }
        let tmux = Self {
            socket: format!("mule-{name}-{}", std::process::id()),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "chat",
            command,
        ])?;
        anyhow::ensure!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Some(tmux))
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()?)
    }

    fn screen(&self) -> anyhow::Result<String> {
        let out = self.run(&["capture-pane", "-p", "-t", "chat"])?;
        anyhow::ensure!(
            out.status.success(),
            "capture-pane: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Types `text` and presses Enter.
    fn type_line(&self, text: &str) -> anyhow::Result<()> {
        self.run(&["send-keys", "-t", "chat", "-l", text])?;
        self.run(&["send-keys", "-t", "chat", "Enter"])?;
        Ok(())
    }

    /// Polls the screen until `pred` holds, within [`DEADLINE`].
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen()?;
            if pred(&screen) {
                return Ok(screen);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the chat never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// `mule robot` on loopback without mDNS, with `extra` flags.
fn robot(dir: &Path, extra: &[&str]) -> anyhow::Result<NodeProcess> {
    let mut args = vec!["robot", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
    args.extend_from_slice(extra);
    NodeProcess::spawn(dir, &args)
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn chat_in_a_terminal_pings_and_talks_with_a_robot() -> anyhow::Result<()> {
    let (dc, dr) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let robot = robot(dr.path(), &["--interval", "1s"])?;
    let addr = robot.listen_addr()?;
    // The shell writes the chat's exit status to a file once it has exited.
    let status_file = dc.path().join("exit-status");
    let chat = format!(
        "RUST_LOG=info {MULE} --data-dir {} chat --no-mdns --listen /ip4/127.0.0.1/tcp/0 \
         --bootstrap {addr}; echo $? > {}",
        quoted(dc.path()),
        quoted(&status_file)
    );
    let Some(tmux) = Tmux::start("chat", &chat)? else {
        eprintln!("skipped: tmux is not installed");
        return Ok(());
    };
    let screen = tmux.wait("the robot connected", |s| s.contains("· 1 peer ·"))?;
    assert!(
        screen.contains("this chat is open: every relay can read it"),
        "{screen}"
    );

    tmux.type_line("/ping")?;
    let screen = tmux.wait("a pong", |s| s.contains("pong: "))?;
    let pong = screen
        .lines()
        .find(|l| l.contains("pong: "))
        .context("no pong line")?;
    assert!(pong.contains("round trip, 1 hop out, 1 hop back"), "{pong}");
    assert!(pong.contains("[1 hop, "), "{pong}");

    tmux.type_line("!talk")?;
    let screen = tmux.wait("the robot talking", |s| s.contains("beep 2"))?;
    assert!(
        screen.contains("talking every 1s (!hush stops)"),
        "{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.contains(" me ") && l.contains("!talk")),
        "{screen}"
    );
    tmux.type_line("!hush")?;
    tmux.wait("the robot hushed", |s| {
        s.contains("hushed (!talk starts again)")
    })?;

    tmux.type_line("/debug")?;
    tmux.wait("the debug view", |s| {
        s.contains("connected 1:") && s.contains("counters:")
    })?;

    tmux.type_line("/quit")?;
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if status.ends_with('\n') {
                break status.trim().to_owned();
            }
        }
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(dc.path().join("chat.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            anyhow::bail!(
                "the chat did not quit:\n{}\nlast log lines (newest first):\n{}",
                tmux.screen()?,
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status,
        "0",
        "the chat exited with {status}:\n{}",
        tmux.screen()?
    );
    // The chat logged to its file, never over the screen.
    let log = std::fs::read_to_string(dc.path().join("chat.log"))?;
    assert!(log.contains("node started"), "{log}");
    assert!(robot.stop()?.success());
    Ok(())
}

#[test]
fn a_robot_talks_on_talk_and_stops_on_hush() -> anyhow::Result<()> {
    let (dn, dr) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let robot = robot(dr.path(), &["--interval", "300ms", "--text", "tick"])?;
    // It says whom it talks to first, then where it listens; quiet until told.
    assert_eq!(
        robot.printed("robot talking to ")?,
        "everyone (open: relays can read it)"
    );
    let addr = robot.listen_addr()?;
    let node = NodeProcess::start(dn.path(), &["--bootstrap", &addr])?;
    node.listen_addr()?;

    ok_stdout(mule(dn.path(), &["send", "--text", "!talk"])?)?;
    robot.printed("talking every 300ms")?;
    let texts = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    };
    wait_inbox(dn.path(), |v| texts(v).iter().any(|t| t == "tick 3"))?;

    ok_stdout(mule(dn.path(), &["send", "--text", "!hush"])?)?;
    let hushed = wait_inbox(dn.path(), |v| {
        texts(v).iter().any(|t| t == "hushed (!talk starts again)")
    })?;
    let said = texts(&hushed)
        .iter()
        .filter(|t| t.starts_with("tick "))
        .count();
    // Hushed: over five more intervals, nothing more is said (this wait is the point).
    std::thread::sleep(Duration::from_millis(1_500));
    let later = ok_stdout(mule(dn.path(), &["inbox", "--json"])?)?;
    let later: Vec<serde_json::Value> = serde_json::from_str(&later)?;
    assert_eq!(
        texts(&later)
            .iter()
            .filter(|t| t.starts_with("tick "))
            .count(),
        said,
        "the robot kept talking after !hush"
    );
    assert!(node.stop()?.success());
    assert!(robot.stop()?.success());
    Ok(())
}

#[test]
fn no_progress_is_drawn_off_a_terminal_and_quiet_is_accepted() -> anyhow::Result<()> {
    let d = tempfile::tempdir()?;
    let file = d.path().join("notes.bin");
    std::fs::write(&file, vec![7u8; 3 << 20])?;
    let path = file.to_str().context("path")?;
    for quiet in [false, true] {
        let mut args = vec!["send", "--file", path];
        if quiet {
            args.push("--quiet");
        }
        let out = mule(d.path(), &args)?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8(out.stdout)?.trim().len(), 64);
        // Only the offline notice: no spinner, no carriage returns, no escape sequences.
        assert!(!stderr.contains("sealing") && !stderr.contains('\r') && !stderr.contains('\x1b'));
        assert!(
            stderr.contains("no node running: message stored"),
            "{stderr}"
        );
    }
    // `mule chat` refuses to run without a terminal, saying what to use instead.
    let out = mule(d.path(), &["chat", "--no-mdns"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mule chat needs a terminal"), "{err}");
    Ok(())
}
