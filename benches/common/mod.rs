//! Shared helpers for the `harness = false` benches: result records, settings from the
//! environment, in-process nodes and waits with deadlines.
//!
//! Every bench prints one JSON object per result on stdout (see [`Record`]) and its progress on
//! stderr, so `scripts/bench` can collect stdout as JSON lines.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use mule::node::{Config, Node, NodeEvent};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

/// Progress on stderr (stdout is reserved for the JSON records).
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {{
        eprintln!("[{}] {}", env!("CARGO_CRATE_NAME"), format!($($arg)*));
    }};
}

/// Every wait in the benches ends by this deadline unless `MULE_BENCH_TIMEOUT_S` says otherwise.
pub fn timeout() -> Duration {
    Duration::from_secs(env_u64("MULE_BENCH_TIMEOUT_S", 600))
}

/// An integer setting from the environment. Accepts a binary suffix: `256M`, `256MiB`, `1G`, `4k`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => match parse_size(&v) {
            Some(n) => n,
            None => {
                eprintln!(
                    "{name}={v:?} is not a number (suffixes k, M, G allowed); using {default}"
                );
                default
            }
        },
        Err(_) => default,
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// A boolean setting: `0`, `false`, `no`, `off` are false.
pub fn env_bool(name: &str, default: bool) -> bool {
    match std::env::var(name) {
        Ok(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off" | ""
        ),
        Err(_) => default,
    }
}

/// `git rev-parse --short HEAD` (plus `-dirty` if the tree has changes), if git is there.
pub fn git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(dir)
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    Some(commit)
}

/// Which side of a comparison a goal applies to.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// `value >= x`
    ValueAtLeast(f64),
    /// `value <= x`
    ValueAtMost(f64),
    /// `ratio >= x`
    RatioAtLeast(f64),
}

/// One result line.
#[derive(Debug)]
pub struct Record {
    fields: Map<String, Value>,
    value: f64,
    baseline: Option<f64>,
    goal: Option<Goal>,
}

impl Record {
    /// A result of `bench`: `metric` = `value` `unit`.
    pub fn new(bench: &str, metric: &str, value: f64, unit: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("bench".into(), json!(bench));
        fields.insert("metric".into(), json!(metric));
        fields.insert("value".into(), json!(round(value)));
        fields.insert("unit".into(), json!(unit));
        Self {
            fields,
            value,
            baseline: None,
            goal: None,
        }
    }

    /// The baseline measured in the same run; `ratio = value / baseline`.
    pub fn baseline(mut self, value: f64, name: &str) -> Self {
        self.baseline = Some(value);
        self.fields.insert("baseline_name".into(), json!(name));
        self
    }

    /// The goal this result is held to.
    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal);
        self
    }

    /// Context for reading the number (sizes, counts, settings).
    pub fn ctx(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Prints the record as one JSON line on stdout.
    pub fn emit(mut self) {
        let ratio = self.baseline.filter(|b| *b != 0.0).map(|b| self.value / b);
        self.fields
            .insert("baseline_value".into(), json!(self.baseline.map(round)));
        self.fields.entry("baseline_name").or_insert(Value::Null);
        self.fields.insert("ratio".into(), json!(ratio.map(round)));
        let (goal, met) = match self.goal {
            None => (Value::Null, Value::Null),
            Some(Goal::ValueAtLeast(x)) => (json!(format!("value >= {x}")), json!(self.value >= x)),
            Some(Goal::ValueAtMost(x)) => (json!(format!("value <= {x}")), json!(self.value <= x)),
            Some(Goal::RatioAtLeast(x)) => {
                (json!(format!("ratio >= {x}")), json!(ratio.map(|r| r >= x)))
            }
        };
        self.fields.insert("goal".into(), goal);
        self.fields.insert("goal_met".into(), met);
        self.fields.insert("commit".into(), json!(git_commit()));
        // Other work on this machine skews every number: record how busy it was.
        self.fields.insert("load1".into(), json!(load1()));
        self.fields
            .insert("unix_time".into(), json!(mule::message::now_ms() / 1000));
        let line = Value::Object(self.fields).to_string();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The 1-minute load average (runnable + uninterruptible tasks), from /proc/loadavg.
pub fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Four significant decimals are plenty and keep the lines short.
fn round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    (x * 10_000.0).round() / 10_000.0
}

/// Logs to stderr; `RUST_LOG` overrides the default `warn`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A multi-threaded runtime as the `mule` binary builds it (one worker per core).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// MB/s, with MB = 10^6 bytes.
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// A loopback test node's settings with a small redb cache (4 MiB), for benches that run many
/// nodes in one process. See [`configured`] for the knobs.
#[allow(dead_code)] // not every bench uses every helper
pub fn node_config(dir: &Path) -> Config {
    configured(dir, 4 << 20)
}

/// A loopback node's settings with the store cache a `mule node` runs with (64 MiB), for benches
/// of one pair of nodes: their rates are what a user's node gets.
#[allow(dead_code)]
pub fn pair_config(dir: &Path) -> Config {
    configured(dir, mule::store::Config::default().cache_bytes)
}

/// Test node settings with a redb cache of `cache_bytes` unless `MULE_BENCH_CACHE_BYTES` says
/// otherwise; `MULE_BENCH_PUSH_WINDOW` and `MULE_BENCH_CHUNK_SIZE` override the push settings.
fn configured(dir: &Path, cache_bytes: usize) -> Config {
    let mut config = Config::for_tests(dir);
    config.store.cache_bytes = env_u64("MULE_BENCH_CACHE_BYTES", cache_bytes as u64) as usize;
    // Benches measure throughput, not eviction: a bulk payload may be larger than the default
    // store quota.
    config.store.max_bytes = u64::MAX;
    // Knobs for experiments; the defaults are the node's.
    config.push_window = env_u64("MULE_BENCH_PUSH_WINDOW", config.push_window as u64) as usize;
    config.chunk_size = env_u64("MULE_BENCH_CHUNK_SIZE", config.chunk_size as u64) as usize;
    config
}

#[allow(unused_imports)] // not every bench uses every helper
pub use mule::testing::{shutdown_all, start_node, Arrival};

/// Waits until every node has selected at least `min` peers (each its own minimum).
pub async fn wait_selected(nodes: &[Node], min: &[usize], within: Duration) -> anyhow::Result<()> {
    let nodes: Vec<&Node> = nodes.iter().collect();
    mule::testing::wait_all_selected(&nodes, min, within).await
}

/// Waits for `id` at `node`, reporting progress every 10 % of `length`.
pub async fn wait_stored(
    node: &Node,
    events: &mut broadcast::Receiver<NodeEvent>,
    id: mule::message::MessageId,
    length: u64,
    within: Duration,
) -> anyhow::Result<Arrival> {
    let mut next_report = length / 10;
    mule::testing::wait_stored_with(node, events, id, within, |offset| {
        if length >= 10 && offset >= next_report {
            progress!("  received {} %", offset * 100 / length);
            next_report = offset + length / 10;
        }
    })
    .await
}

/// Fills `path` with `len` pseudo-random bytes (xorshift; incompressible enough, ~GB/s).
pub fn write_random_file(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
    );
    let mut state = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// Pseudo-random bytes in memory.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Open file descriptors of this process.
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// A `kB` field of /proc/self/status (VmRSS, VmHWM), in MiB.
pub fn self_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}
