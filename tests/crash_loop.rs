//! The crash loop (issue 11): a real sending and a real receiving `mule node` process on
//! loopback, SIGKILLed at random points — while the receiver takes chunks, while the sender
//! pushes, around expiry collection, during eviction — and restarted, round after round. After
//! every kill and at the end it checks what the README promises:
//!
//! - nothing partial is visible: every message the receiver lists opens with its key and its
//!   plaintext has the sha256 of the file that was sent (checked on the store while the
//!   receiver is down, and `mule list --json` shows exactly the store's complete messages);
//! - nothing acknowledged is lost: a message once seen complete at the receiver is still there
//!   after a kill, unless it expired or the receiver logged `evicting message` for it (the
//!   store logs that before the removal commits, so a kill cannot hide an eviction);
//! - a resume re-sends at most one push window (for a `/mule/push/2` stream, what the receiver
//!   had queued plus one transport window, [`STREAM_RESUME_BOUND`]): per kill, from the counters of the node that
//!   stayed up (`mule status --json`), the bytes pushed beyond what the round's messages needed;
//! - delivery state is neither lost nor duplicated: every message ends up at the receiver (or
//!   expired, or evicted), listed once, and the sender's queue towards it drains to zero.
//!
//! `cargo test --test crash_loop` runs 3 rounds (CI). `scripts/crash-loop` runs many
//! (`CRASH_LOOP_ITERATIONS=300 scripts/crash-loop`); `CRASH_LOOP_SEED` replays a run. Figures are
//! printed as JSON lines on stdout (`--nocapture`); any violation fails the test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mule::content::keys::Keyring;
use mule::content::open::{open, Outcome};
use mule::identity::Identity;
use mule::store::{Config, Store};
use process::{mule, ok_stdout, MULE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod process;

/// Push chunk size of both nodes: small, so a message of a few hundred KiB is many chunks.
const CHUNK: u64 = 16 * 1024;
/// The sender's push window in chunks (`node::Config::push_window`'s default).
const WINDOW_CHUNKS: u64 = 16;
/// What a resume may re-send after a kill in the middle of a `/mule/push/2` stream (every
/// message over one chunk takes one): the receiver's queued buffers, at most
/// `SINK_DEPTH` + 1 of `STREAM_BUFFER` (1.25 MiB), plus one 256 KiB yamux stream window in the
/// transport (protocols/push.md 9.4). The `/1` bound, one push window, is smaller.
const STREAM_RESUME_BOUND: u64 =
    (mule::store::SINK_DEPTH as u64 + 1) * mule::protocol::push::DEFAULT_CHUNK as u64 + (256 << 10);
/// The receiver's store quota: a few rounds' worth, so eviction happens.
const QUOTA: u64 = 8 << 20;
/// Sizes of the large messages (many chunks each).
const LARGE: std::ops::Range<u64> = 300_000..2_000_000;
/// Lifespan of messages meant to outlive the run.
const LONG_LIFE: &str = "1h";
/// Every wait (start-up, a trigger, a round's delivery) ends in failure after this.
const DEADLINE: Duration = Duration::from_secs(60);
/// Polling period of the CLI views (the CLI has no notifications).
const POLL: Duration = Duration::from_millis(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Sender,
    Receiver,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

/// Where a round's kill lands.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// The receiver, while an inbound transfer is moving.
    Receive,
    /// The sender, while an outbound transfer is moving.
    Send,
    /// The receiver, around the expiry (and collection) of short-lived messages it holds.
    Expiry,
    /// The receiver, as soon as it logs that it is evicting a message for room.
    Evict,
    /// Either node, after a random delay.
    Anytime,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Receive => "receive",
            Kind::Send => "send",
            Kind::Expiry => "expiry",
            Kind::Evict => "evict",
            Kind::Anytime => "anytime",
        }
    }
}

/// A message the harness sent.
#[derive(Debug)]
struct Sent {
    round: usize,
    /// sha256 of the file sent (the plaintext the receiver must open to).
    plain_sha: [u8; 32],
    /// Bounds of its expiry (Unix ms): exact from the sender's list, or from the times around
    /// `mule send` if it expired before the list was read (a loaded machine). It may be gone
    /// only once `expires_hi` has passed, and must be listed while `expires_lo` has not.
    expires_lo: u64,
    expires_hi: u64,
    /// Content length on the wire (the ciphertext), if the sender's list showed it.
    length: Option<u64>,
}

/// One `mule node` process.
struct NodeProc {
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
}

impl NodeProc {
    fn start(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(MULE)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--log-format", "json", "node"])
            .args(&self.args)
            .env("RUST_LOG", "info,mule::store=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        // Up once its control socket answers.
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("node {} exited at start: {status}", self.dir.display());
                }
            }
            if status(&self.dir).is_ok() {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "node did not come up");
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL, no warning.
    fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn status(dir: &Path) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&ok_stdout(mule(
        dir,
        &["status", "--json"],
    )?)?)?)
}

fn counter(status: &Value, name: &str) -> anyhow::Result<u64> {
    status["counters"][name]
        .as_u64()
        .with_context(|| format!("no counter {name} in {status}"))
}

/// `mule list --json`: id -> (length, expires_ms).
fn list(dir: &Path) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let views: Vec<Value> = serde_json::from_str(&ok_stdout(mule(dir, &["list", "--json"])?)?)?;
    views
        .iter()
        .map(|v| {
            Ok((
                v["id"].as_str().context("no id")?.to_owned(),
                v["length"].as_u64().context("no length")?,
                v["expires_ms"].as_u64().context("no expires_ms")?,
            ))
        })
        .collect()
}

fn now_ms() -> u64 {
    mule::message::now_ms()
}

/// What the receiver's JSON log said so far: messages it stored (short ids) and evicted.
#[derive(Default)]
struct LogScan {
    offset: u64,
    stored_short: BTreeSet<String>,
    evicted: BTreeSet<String>,
    /// Partial transfers it evicted (their senders start over: no resume to measure).
    evicted_partial: BTreeSet<String>,
    /// `resuming partial message` lines: transfers a restart found half done.
    resumed: u64,
    partial_line: String,
}

impl LogScan {
    /// Reads what was appended since the last call; returns how many eviction lines it had.
    fn update(&mut self, path: &Path) -> anyhow::Result<usize> {
        let Ok(mut file) = File::open(path) else {
            return Ok(0);
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut text = String::new();
        let n = file.read_to_string(&mut text)?;
        self.offset += n as u64;
        let mut all = std::mem::take(&mut self.partial_line);
        all.push_str(&text);
        let mut evictions = 0;
        let mut lines: Vec<&str> = all.split('\n').collect();
        // The last piece has no newline yet (a line being written, or cut by a kill).
        let rest = lines.pop().unwrap_or_default().to_owned();
        for line in lines {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let fields = &v["fields"];
            if fields["message"] == "resuming partial message" {
                self.resumed += 1;
            }
            let (Some(msg), Some(id)) = (fields["message"].as_str(), fields["id"].as_str()) else {
                continue;
            };
            if msg.starts_with("stored message") {
                self.stored_short.insert(id.to_owned());
            } else if msg == "evicting message" {
                self.evicted.insert(id.to_owned());
                evictions += 1;
            } else if msg == "evicting partial transfer" {
                // Not acknowledged, so nothing is lost; but its sender starts over.
                self.evicted_partial.insert(id.to_owned());
                evictions += 1;
            }
        }
        self.partial_line = rest;
        Ok(evictions)
    }
}

/// The run's tallies, printed as the summary line.
#[derive(Default)]
struct Tally {
    kills: u64,
    kills_by_kind: BTreeMap<&'static str, u64>,
    triggers_missed: u64,
    kills_mid_transfer: u64,
    resent: Vec<u64>,
    unmeasured_resumes: u64,
    duplicates: u64,
    bytes_sent_total: u64,
    violations: Vec<String>,
}

struct Harness {
    rng: StdRng,
    tmp: tempfile::TempDir,
    sender: NodeProc,
    receiver: NodeProc,
    receiver_peer: String,
    receiver_identity: Identity,
    sent: HashMap<String, Sent>,
    /// Messages seen complete at the receiver (in its list or its log).
    acked: BTreeSet<String>,
    log: LogScan,
    tally: Tally,
    files: u64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn peer_of(dir: &Path) -> anyhow::Result<String> {
    let id: Value = serde_json::from_str(&ok_stdout(mule(dir, &["id", "--json"])?)?)?;
    Ok(id["peer_id"].as_str().context("no peer_id")?.to_owned())
}

impl Harness {
    fn new(seed: u64) -> anyhow::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let (a, b) = (tmp.path().join("sender"), tmp.path().join("receiver"));
        std::fs::create_dir_all(&a)?;
        std::fs::create_dir_all(&b)?;
        std::fs::create_dir_all(tmp.path().join("files"))?;
        let (a_peer, b_peer) = (peer_of(&a)?, peer_of(&b)?);
        let (a_port, b_port) = (free_port()?, free_port()?);
        let chunk = CHUNK.to_string();
        let common = |port: u16, other_port: u16, other: &str| -> Vec<String> {
            vec![
                "--no-mdns".into(),
                "--listen".into(),
                format!("/ip4/127.0.0.1/tcp/{port}"),
                "--bootstrap".into(),
                format!("/ip4/127.0.0.1/tcp/{other_port}/p2p/{other}"),
                "--chunk-size".into(),
                chunk.clone(),
            ]
        };
        let mut b_args = common(b_port, a_port, &a_peer);
        b_args.extend([
            "--max-store-bytes".into(),
            QUOTA.to_string(),
            "--collect-interval".into(),
            "1s".into(),
        ]);
        let receiver_identity = Identity::load(&b.join("identity.key"))?;
        Ok(Self {
            rng: StdRng::seed_from_u64(seed),
            sender: NodeProc {
                child: None,
                dir: a.clone(),
                args: common(a_port, b_port, &b_peer),
                log: tmp.path().join("sender.log"),
            },
            receiver: NodeProc {
                child: None,
                dir: b.clone(),
                args: b_args,
                log: tmp.path().join("receiver.log"),
            },
            tmp,
            receiver_peer: b_peer,
            receiver_identity,
            sent: HashMap::new(),
            acked: BTreeSet::new(),
            log: LogScan::default(),
            tally: Tally::default(),
            files: 0,
        })
    }

    fn node(&mut self, role: Role) -> &mut NodeProc {
        match role {
            Role::Sender => &mut self.sender,
            Role::Receiver => &mut self.receiver,
        }
    }

    fn violation(&mut self, text: String) {
        println!(
            "{}",
            serde_json::json!({"crash_loop": "violation", "what": text})
        );
        self.tally.violations.push(text);
    }

    /// Writes a random file of `len` bytes and sends it to the receiver.
    fn send(&mut self, round: usize, len: u64, lifespan: &str) -> anyhow::Result<String> {
        let mut body = vec![0u8; usize::try_from(len)?];
        self.rng.fill(&mut body[..]);
        self.files += 1;
        let path = self
            .tmp
            .path()
            .join("files")
            .join(format!("f{}", self.files));
        std::fs::write(&path, &body)?;
        let path_text = path.to_str().context("temp path is not UTF-8")?.to_owned();
        let life = u64::try_from(humantime::parse_duration(lifespan)?.as_millis())?;
        let before = now_ms();
        let id = ok_stdout(mule(
            &self.sender.dir,
            &[
                "send",
                "--to",
                &self.receiver_peer,
                "--file",
                &path_text,
                "--lifespan",
                lifespan,
            ],
        )?)?
        .trim()
        .to_owned();
        let after = now_ms();
        std::fs::remove_file(&path)?;
        let listed = list(&self.sender.dir)?
            .into_iter()
            .find(|(i, _, _)| *i == id);
        let (length, expires_lo, expires_hi) = match listed {
            Some((_, length, expires)) => (Some(length), expires, expires),
            None => (None, before + life, after + life),
        };
        self.sent.insert(
            id.clone(),
            Sent {
                round,
                plain_sha: Sha256::digest(&body).into(),
                expires_lo,
                expires_hi,
                length,
            },
        );
        Ok(id)
    }

    /// Marks what the receiver shows complete (its list, and its log) as acknowledged.
    fn observe_receiver(&mut self) -> anyhow::Result<Vec<(String, u64, u64)>> {
        self.log.update(&self.receiver.log)?;
        let listed = list(&self.receiver.dir)?;
        for (id, _, _) in &listed {
            self.acked.insert(id.clone());
        }
        let shorts = self.log.stored_short.clone();
        for id in self.sent.keys() {
            if shorts.contains(&id[..12]) {
                self.acked.insert(id.clone());
            }
        }
        Ok(listed)
    }

    /// Whether `id` may be absent from the receiver now: expired, or logged as evicted.
    fn may_be_gone(&self, id: &str, now_ms: u64) -> bool {
        self.sent
            .get(id)
            .is_some_and(|s| s.expires_hi < now_ms || self.log.evicted.contains(id))
    }

    /// With the receiver down: its store holds every acknowledged message (or a reason it may
    /// not), every complete message opens to the plaintext that was sent, and the CLI lists
    /// exactly those.
    fn verify_receiver_store(&mut self, when: &str) -> anyhow::Result<()> {
        self.log.update(&self.receiver.log)?;
        let dir = self.receiver.dir.clone();
        let keyring = Keyring::new(&self.receiver_identity, Vec::new())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (held, problems) = runtime.block_on(async {
            let store = Store::open(dir.join("store"), Config::default()).await?;
            let mut held = BTreeSet::new();
            let mut problems = Vec::new();
            for stored in store.manifest(None, usize::MAX, 0).await? {
                let id = stored.header.id.to_string();
                let (_, mut content) = store.read(stored.header.id).await?;
                let mut bytes = Vec::new();
                content.read_to_end(&mut bytes)?;
                if bytes.len() as u64 != stored.header.length
                    || <[u8; 32]>::from(Sha256::digest(&bytes)) != stored.header.sha256
                {
                    problems.push(format!("{when}: {id} is visible but incomplete or damaged"));
                }
                match self.sent.get(&id) {
                    None => problems.push(format!("{when}: {id} was never sent")),
                    Some(sent) => match plaintext_sha(bytes, &keyring) {
                        Ok(sha) if sha == sent.plain_sha => {}
                        Ok(_) => problems.push(format!("{when}: {id} opens to other bytes")),
                        Err(e) => problems.push(format!("{when}: {id} does not open: {e}")),
                    },
                }
                held.insert(id);
            }
            store.close().await?;
            anyhow::Ok((held, problems))
        })?;
        for p in problems {
            self.violation(p);
        }
        let now = now_ms();
        let lost: Vec<String> = self
            .acked
            .iter()
            .filter(|id| !held.contains(*id) && !self.may_be_gone(id, now))
            .cloned()
            .collect();
        for id in lost {
            self.violation(format!(
                "{when}: acknowledged {id} is gone (not expired, not evicted)"
            ));
        }
        // The CLI (reading the store without a node) shows exactly the complete, live ones.
        let listed = list(&dir)?;
        let listed_ids: Vec<&String> = listed.iter().map(|(id, _, _)| id).collect();
        let unique: BTreeSet<&String> = listed_ids.iter().copied().collect();
        if unique.len() != listed_ids.len() {
            self.violation(format!("{when}: mule list shows a message twice"));
        }
        let now = now_ms();
        for id in &unique {
            if !held.contains(*id) {
                self.violation(format!("{when}: mule list shows {id}, the store lacks it"));
            }
        }
        for id in &held {
            let live = self.sent.get(id).is_some_and(|s| s.expires_lo >= now);
            if live && !unique.contains(id) {
                self.violation(format!("{when}: live {id} is stored but not listed"));
            }
        }
        Ok(())
    }

    /// Waits until every message sent so far is at the receiver, expired or evicted, the
    /// receiver has no inbound transfer open and the sender's queue towards it is empty.
    fn quiesce(&mut self, round: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let listed = self.observe_receiver()?;
            let held: BTreeSet<&String> = listed.iter().map(|(id, _, _)| id).collect();
            let now = now_ms();
            let pending: Vec<&String> = self
                .sent
                .keys()
                .filter(|id| !held.contains(id) && !self.acked.contains(*id))
                .filter(|id| !self.may_be_gone(id, now))
                .collect();
            let a = status(&self.sender.dir)?;
            let b = status(&self.receiver.dir)?;
            let queue = a["queues"][&self.receiver_peer].as_u64();
            let inbound = b["transfers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["direction"] == "in"));
            if pending.is_empty() && queue == Some(0) && !inbound {
                return Ok(());
            }
            if Instant::now() > deadline {
                let pending = pending.len();
                self.violation(format!(
                    "round {round}: not settled in {DEADLINE:?}: {pending} messages undelivered, sender queue {queue:?}, inbound transfers {inbound}"
                ));
                bail!("the run is stuck");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits (bounded) for this round's kill point; false if it never came (the kill then
    /// lands wherever the wait ended).
    fn wait_trigger(&mut self, kind: Kind, round_ids: &[String]) -> anyhow::Result<bool> {
        // A transfer on loopback is over in a fraction of a second: give up on seeing it after
        // a random while, so the kill still lands at a random point near it.
        let patience = Duration::from_millis(self.rng.gen_range(50..600));
        let deadline = Instant::now()
            + match kind {
                Kind::Receive | Kind::Send => patience,
                _ => Duration::from_secs(15),
            };
        match kind {
            Kind::Receive | Kind::Send => {
                let (dir, direction) = match kind {
                    Kind::Receive => (self.receiver.dir.clone(), "in"),
                    _ => (self.sender.dir.clone(), "out"),
                };
                while Instant::now() < deadline {
                    let s = status(&dir)?;
                    let moving = s["transfers"].as_array().is_some_and(|t| {
                        t.iter()
                            .any(|t| t["direction"] == direction && t["done"].as_u64() > Some(0))
                    });
                    if moving {
                        let extra = self.rng.gen_range(0..60);
                        std::thread::sleep(Duration::from_millis(extra));
                        return Ok(true);
                    }
                    std::thread::sleep(POLL);
                }
                Ok(false)
            }
            Kind::Evict => {
                while Instant::now() < deadline {
                    if self.log.update(&self.receiver.log)? > 0 {
                        return Ok(true);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(false)
            }
            Kind::Expiry => {
                let first = round_ids
                    .iter()
                    .filter_map(|id| self.sent.get(id))
                    .map(|s| s.expires_lo)
                    .min()
                    .unwrap_or_else(now_ms);
                // Collection runs every second: land anywhere from just before the first
                // expiry to past the next collection.
                let at = first.saturating_sub(200) + self.rng.gen_range(0..1_600);
                let wait = at.saturating_sub(now_ms());
                std::thread::sleep(Duration::from_millis(wait));
                Ok(true)
            }
            Kind::Anytime => {
                let wait = self.rng.gen_range(0..1_500);
                std::thread::sleep(Duration::from_millis(wait));
                Ok(true)
            }
        }
    }

    fn round(&mut self, round: usize) -> anyhow::Result<()> {
        let kind = match self.rng.gen_range(0..5) {
            0 => Kind::Receive,
            1 => Kind::Send,
            2 => Kind::Expiry,
            3 => Kind::Evict,
            _ => Kind::Anytime,
        };
        let victim = match kind {
            Kind::Send => Role::Sender,
            Kind::Anytime if self.rng.gen_bool(0.5) => Role::Sender,
            _ => Role::Receiver,
        };
        let a0 = status(&self.sender.dir)?;
        let b0 = status(&self.receiver.dir)?;
        self.log.update(&self.receiver.log)?;

        // This round's messages: small ones (sent first) go in batches; large ones, sent last
        // so the kill meets them moving, take many chunks.
        let mut ids = Vec::new();
        let smalls = self
            .rng
            .gen_range(usize::from(matches!(kind, Kind::Expiry))..=4);
        for _ in 0..smalls {
            let len = self.rng.gen_range(100..30_000);
            // Short lives in expiry rounds (and now and then elsewhere), so collection and
            // expired-first eviction have something to do.
            let lifespan = if matches!(kind, Kind::Expiry) || self.rng.gen_bool(0.2) {
                format!("{}ms", self.rng.gen_range(1_500..3_000))
            } else {
                LONG_LIFE.to_owned()
            };
            ids.push(self.send(round, len, &lifespan)?);
        }
        let larges = match kind {
            Kind::Evict => {
                // Enough to push the receiver over its quota.
                let used = b0["store_used"].as_u64().unwrap_or(0);
                let need = (QUOTA + QUOTA / 4).saturating_sub(used);
                need.div_ceil(LARGE.end / 2).clamp(1, 8)
            }
            _ => self.rng.gen_range(1..=2),
        };
        for _ in 0..larges {
            let len = self.rng.gen_range(LARGE);
            ids.push(self.send(round, len, LONG_LIFE)?);
        }

        let hit = self.wait_trigger(kind, &ids)?;
        if !hit {
            self.tally.triggers_missed += 1;
        }
        self.node(victim).kill()?;
        self.tally.kills += 1;
        *self.tally.kills_by_kind.entry(kind.name()).or_default() += 1;

        // The counters of the node that stayed up tell what the resume cost.
        let mut b_at_restart = None;
        match victim {
            Role::Receiver => {
                self.verify_receiver_store(&format!("round {round} ({})", kind.name()))?
            }
            Role::Sender => {
                // Wait until the receiver has dropped the connection: nothing more arrives
                // from the dead sender after that.
                let deadline = Instant::now() + DEADLINE;
                let sender_peer = peer_of(&self.sender.dir)?;
                loop {
                    let b = status(&self.receiver.dir)?;
                    let connected = b["connected_peers"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|p| p == sender_peer.as_str()));
                    if !connected {
                        b_at_restart = Some(b);
                        break;
                    }
                    anyhow::ensure!(Instant::now() < deadline, "receiver kept the dead sender");
                    std::thread::sleep(POLL);
                }
            }
        }
        let resumed_before = self.log.resumed;
        self.node(victim).start()?;
        self.quiesce(round)?;
        // Whether the kill cut a transfer: the restarted receiver resumed a partial message,
        // or the receiver held a half-received one when the sender died.
        let mid_transfer = match &b_at_restart {
            None => self.log.resumed > resumed_before,
            Some(b) => b["transfers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["direction"] == "in")),
        };
        if mid_transfer {
            self.tally.kills_mid_transfer += 1;
        }

        let a1 = status(&self.sender.dir)?;
        let b1 = status(&self.receiver.dir)?;
        let lengths: Vec<Option<u64>> = ids
            .iter()
            .map(|id| self.sent.get(id).and_then(|s| s.length))
            .collect();
        let all_lengths_known = lengths.iter().all(Option::is_some);
        let round_bytes: u64 = lengths.iter().flatten().sum();
        let all_delivered = ids.iter().all(|id| self.acked.contains(id));
        let rejected = |s: &Value| {
            s["counters"]["rejections"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>())
        };
        let refusals = rejected(&b1)
            - if victim == Role::Receiver {
                0
            } else {
                rejected(&b0)
            };
        let resent = match (victim, &b_at_restart) {
            // Sender up throughout: everything it pushed beyond the round's bytes was re-sent.
            (Role::Receiver, _) => {
                (counter(&a1, "bytes_sent")? - counter(&a0, "bytes_sent")?).checked_sub(round_bytes)
            }
            // Receiver up throughout: the restarted sender needed only what the receiver lacked.
            (Role::Sender, Some(b_mid)) => {
                let held_before =
                    counter(b_mid, "bytes_received")? - counter(&b0, "bytes_received")?;
                counter(&a1, "bytes_sent")?.checked_sub(round_bytes.saturating_sub(held_before))
            }
            (Role::Sender, None) => None,
        };
        let window = STREAM_RESUME_BOUND.max(WINDOW_CHUNKS * CHUNK);
        let restarted = ids.iter().any(|id| self.log.evicted_partial.contains(id));
        let measured = all_delivered && all_lengths_known && refusals == 0 && !restarted;
        match (measured, resent) {
            (true, Some(r)) => {
                self.tally.resent.push(r);
                if r > window {
                    self.violation(format!(
                        "round {round}: the {} resumed re-sending {r} bytes, over one window ({window})",
                        victim.name()
                    ));
                }
            }
            _ => self.tally.unmeasured_resumes += 1,
        }
        let duplicates = counter(&b1, "duplicates")?
            - if victim == Role::Receiver {
                0
            } else {
                counter(&b0, "duplicates")?
            };
        self.tally.duplicates += duplicates;
        self.tally.bytes_sent_total += round_bytes;
        println!(
            "{}",
            serde_json::json!({
                "crash_loop": "round",
                "round": round,
                "kind": kind.name(),
                "killed": victim.name(),
                "trigger_hit": hit,
                "mid_transfer": mid_transfer,
                "messages": ids.len(),
                "bytes": round_bytes,
                "resent_bytes": if measured { resent } else { None },
                "window_bytes": window,
                "refusals": refusals,
                "duplicates": duplicates,
                "receiver_store_used": b1["store_used"],
                "evicted_so_far": self.log.evicted.len(),
            })
        );
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        // A last kill of the receiver, then the whole account.
        self.receiver.kill()?;
        self.tally.kills += 1;
        self.verify_receiver_store("final")?;
        let now = now_ms();
        let undelivered: Vec<String> = self
            .sent
            .keys()
            .filter(|id| !self.acked.contains(*id) && !self.may_be_gone(id, now))
            .cloned()
            .collect();
        for id in undelivered {
            self.violation(format!("final: {id} was never delivered"));
        }
        self.sender.kill()?;
        Ok(())
    }
}

/// Opens content sealed for the receiver and hashes the attachment's bytes.
fn plaintext_sha(content: Vec<u8>, keyring: &Keyring) -> anyhow::Result<[u8; 32]> {
    match open(std::io::Cursor::new(content), keyring)? {
        Outcome::Opened(mut opened) => {
            anyhow::ensure!(
                opened.head.as_ref().is_some_and(|h| h.attachment.is_some()),
                "no attachment"
            );
            let mut body = Vec::new();
            opened.body.read_to_end(&mut body)?;
            Ok(Sha256::digest(&body).into())
        }
        Outcome::ForSomeoneElse => bail!("sealed for someone else"),
    }
}

fn env_u64(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(
            v.trim().parse().with_context(|| format!("{name}={v}"))?,
        )),
        Err(_) => Ok(None),
    }
}

#[test]
fn crash_loop() -> anyhow::Result<()> {
    let iterations = env_u64("CRASH_LOOP_ITERATIONS")?.unwrap_or(3);
    // Fixed under `cargo test` so CI replays the same choices; the script picks a fresh one.
    let seed = env_u64("CRASH_LOOP_SEED")?.unwrap_or(11);
    println!(
        "{}",
        serde_json::json!({"crash_loop": "start", "seed": seed, "iterations": iterations,
            "chunk_bytes": CHUNK, "quota_bytes": QUOTA})
    );
    let started = Instant::now();
    let mut h = Harness::new(seed)?;
    let run = (|| {
        h.receiver.start()?;
        h.sender.start()?;
        for round in 0..iterations as usize {
            h.round(round)?;
        }
        h.finish()
    })();
    if run.is_err() || !h.tally.violations.is_empty() {
        // Keep both data dirs and both nodes' logs for a look.
        h.sender.kill()?;
        h.receiver.kill()?;
        let kept = std::mem::replace(&mut h.tmp, tempfile::tempdir()?).keep();
        println!(
            "{}",
            serde_json::json!({"crash_loop": "kept", "dir": kept.display().to_string()})
        );
    }
    run?;
    let resent = &h.tally.resent;
    let now = now_ms();
    let expired = h.sent.values().filter(|s| s.expires_hi < now).count();
    let rounds_sent: BTreeMap<usize, usize> = h.sent.values().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.round).or_default() += 1;
        m
    });
    println!(
        "{}",
        serde_json::json!({
            "crash_loop": "summary",
            "seed": seed,
            "iterations": iterations,
            "rounds_with_messages": rounds_sent.len(),
            "kills": h.tally.kills,
            "kills_by_kind": h.tally.kills_by_kind,
            "triggers_missed": h.tally.triggers_missed,
            "kills_mid_transfer": h.tally.kills_mid_transfer,
            "messages": h.sent.len(),
            "bytes": h.tally.bytes_sent_total,
            "delivered": h.acked.len(),
            "expired": expired,
            "evicted": h.log.evicted.len(),
            "resumes_measured": resent.len(),
            "resumes_unmeasured": h.tally.unmeasured_resumes,
            "resent_bytes_mean": if resent.is_empty() { 0 } else { resent.iter().sum::<u64>() / resent.len() as u64 },
            "resent_bytes_max": resent.iter().max(),
            "window_bytes": STREAM_RESUME_BOUND.max(WINDOW_CHUNKS * CHUNK),
            "duplicates": h.tally.duplicates,
            "violations": h.tally.violations.len(),
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    anyhow::ensure!(
        h.tally.violations.is_empty(),
        "{} violations (replay with CRASH_LOOP_SEED={seed}): {:#?}",
        h.tally.violations.len(),
        h.tally.violations
    );
    Ok(())
}
