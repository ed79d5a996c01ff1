//! `flood`: fairness under a flood. One peer (the flooder) pushes valid small messages to a
//! receiver as fast as it can, far above the rate the receiver's access list gives it, while
//! another peer (the victim) sends its own messages at a steady pace through its node. Reports
//! the victim's end-to-end latency percentiles (its `send` returning → stored at the receiver)
//! under the flood against the same measurement without the flood, in the same run, and what
//! became of the flooder's requests (admitted, refused `rate-limit-exceeded`, `busy`, failed at
//! the connection — the receiver cuts off a peer that goes on past its refusals, see
//! `protocols/errors.md` 2.2 — or other).
//!
//! - `MULE_BENCH_FLOOD_MESSAGES` (default 200): victim messages per phase.
//! - `MULE_BENCH_FLOOD_INTERVAL_MS` (default 20): the victim's pace.
//! - `MULE_BENCH_FLOOD_RATE` (default 50): the flooder's access-list rate, requests per second.
//! - `MULE_BENCH_FLOOD_CONCURRENCY` (default 64): flooder requests in flight.
//! - `MULE_BENCH_FLOOD_RETRY_MS` (default 10): how long a flooder task waits after a request
//!   failed at the connection (once the receiver cut it off) before it sends the next.
//!
//! Goal: the victim's p99 under flood within 2× the baseline's p99 (a report, not a test: the
//! machine is shared). Phases: baseline, flood, baseline again (load elsewhere shows up as a
//! difference between the two baselines).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::{Goal, Record};
use mule::identity::Identity;
use mule::message::{now_ms, Draft, MessageId};
use mule::node::{Content, NodeEvent};
use mule::protocol::{push, Code, Frame};
use mule::testing::{start_as, wait_selected, TestNode};
use tokio::sync::broadcast;

const BENCH: &str = "flood";
const LIFESPAN: Duration = Duration::from_secs(3600);
/// Bytes of every message, victim's and flooder's.
const SIZE: usize = 512;

fn main() -> anyhow::Result<()> {
    common::init_tracing();
    let messages = common::env_u64("MULE_BENCH_FLOOD_MESSAGES", 200).max(1) as usize;
    let interval = Duration::from_millis(common::env_u64("MULE_BENCH_FLOOD_INTERVAL_MS", 20));
    let rate = common::env_u64("MULE_BENCH_FLOOD_RATE", 50).max(1);
    let concurrency = common::env_u64("MULE_BENCH_FLOOD_CONCURRENCY", 64).max(1) as usize;
    let retry = Duration::from_millis(common::env_u64("MULE_BENCH_FLOOD_RETRY_MS", 10));
    common::runtime()?.block_on(async move {
        let flooder_id = Identity::generate();
        let victim_id = Identity::generate();
        // The receiver: the flooder gets `rate` requests per second, everyone else no limit.
        let dir = tempfile::tempdir()?;
        let acl = dir.path().join("access.toml");
        std::fs::write(
            &acl,
            format!(
                "[[in]]\nallow = [\"{}\"]\nrate = {rate}\n\n[[in]]\nallow = [\"*\"]\n",
                flooder_id.peer_id()
            ),
        )?;
        let receiver =
            start_as(Identity::generate(), dir, None, |c| configure(c, Some(acl))).await?;
        let victim = start_as(victim_id, tempfile::tempdir()?, Some(&receiver), |c| {
            configure(c, None)
        })
        .await?;
        let flooder = start_as(flooder_id, tempfile::tempdir()?, Some(&receiver), |c| {
            configure(c, None)
        })
        .await?;
        wait_selected(&receiver, 2).await?;
        wait_selected(&victim, 1).await?;
        wait_selected(&flooder, 1).await?;

        progress!("baseline: {messages} victim messages every {interval:?}, no flood");
        let before = victim_latencies(&victim, &receiver, messages, interval).await?;
        progress!(
            "flood: the flooder pushes with {concurrency} requests in flight (its rate: {rate}/s)"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let flood = tokio::spawn(flood(
            flooder.node.clone(),
            receiver.peer_id(),
            concurrency,
            retry,
            stop.clone(),
            tally.clone(),
        ));
        // Let the flood fill its window first, so every victim message meets it.
        let warm = Instant::now();
        while tally.answered() < concurrency as u64 * 4 && warm.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let flood_started = Instant::now();
        let at_start = tally.snapshot();
        let during = victim_latencies(&victim, &receiver, messages, interval).await?;
        let flood_secs = flood_started.elapsed().as_secs_f64();
        // The rates count the victim's phase only (the warm-up had the access list's initial
        // window to itself).
        let in_phase = tally.snapshot().since(&at_start);
        stop.store(true, Ordering::Release);
        flood.await.context("flood task")??;
        progress!("baseline again");
        let after = victim_latencies(&victim, &receiver, messages, interval).await?;

        let t = tally.snapshot();
        progress!(
            "flooder: {} requests, {} admitted, {} refused rate-limit-exceeded, {} busy, \
             {} failed at the connection, {} other; receiver cut it off {} times",
            t.sent,
            t.admitted,
            t.rate_limited,
            t.busy,
            t.failed,
            t.other,
            receiver.counters().peers_cooled_down,
        );
        let base = pooled(&before, &after);
        for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
            let b = percentile(&base, q);
            let v = percentile(&during, q);
            let mut r = Record::new(BENCH, &format!("victim_latency_{name}_ms"), v, "ms")
                .baseline(b, "same victim, no flood (before and after)")
                .ctx("victim_messages", messages as u64)
                .ctx("victim_interval_ms", interval.as_millis() as u64)
                .ctx("before_ms", percentile(&before, q))
                .ctx("after_ms", percentile(&after, q));
            if name == "p99" {
                r = r.goal(Goal::ValueAtMost(2.0 * b));
            }
            r.emit();
        }
        let max = during.iter().copied().fold(0.0, f64::max);
        Record::new(BENCH, "victim_latency_max_ms", max, "ms")
            .baseline(base.iter().copied().fold(0.0, f64::max), "no flood")
            .emit();
        // What the flooder asked for and what it got, per second of the victim's phase.
        for (metric, n) in [
            ("flooder_requests_per_s", in_phase.sent),
            ("flooder_admitted_per_s", in_phase.admitted),
        ] {
            Record::new(BENCH, metric, n as f64 / flood_secs, "requests/s")
                .baseline(rate as f64, "its access-list rate")
                .ctx("requests", in_phase.sent)
                .ctx("admitted", in_phase.admitted)
                .ctx("refused_rate_limit", in_phase.rate_limited)
                .ctx("refused_busy", in_phase.busy)
                .ctx("failed_cut_off", in_phase.failed)
                .ctx("other_errors", in_phase.other)
                .ctx("flood_seconds", flood_secs)
                .ctx("concurrency", concurrency as u64)
                .ctx("retry_after_failure_ms", retry.as_millis() as u64)
                .emit();
        }
        Record::new(
            BENCH,
            "flooder_cut_offs",
            receiver.counters().peers_cooled_down as f64,
            "count",
        )
        .emit();
        let refused = t.rate_limited + t.busy + t.failed;
        Record::new(
            BENCH,
            "flooder_refused_share",
            refused as f64 / t.sent.max(1) as f64,
            "fraction",
        )
        .ctx("refused", refused)
        .ctx("requests", t.sent)
        .emit();
        mule::testing::shutdown_all(vec![flooder.node, victim.node, receiver.node]).await;
        anyhow::Ok(())
    })
}

/// The benches' store settings on a test node's config (no quota: the flood's admitted
/// messages pile up), with an access-list file for the receiver.
fn configure(c: &mut mule::node::Config, acl: Option<std::path::PathBuf>) {
    let bench = common::node_config(Path::new("."));
    c.store.cache_bytes = bench.store.cache_bytes;
    c.store.max_bytes = bench.store.max_bytes;
    c.push_window = bench.push_window;
    c.chunk_size = bench.chunk_size;
    c.acl_file = acl;
}

/// Sends `n` messages from `victim`, one every `interval`, and returns each one's latency in
/// ms from `send` returning to the receiver's `Stored` event.
async fn victim_latencies(
    victim: &TestNode,
    receiver: &TestNode,
    n: usize,
    interval: Duration,
) -> anyhow::Result<Vec<f64>> {
    let mut events = receiver.subscribe();
    let mut sent_at: HashMap<MessageId, Instant> = HashMap::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(interval);
    let deadline = tokio::time::Instant::now() + common::timeout();
    let mut sent = 0;
    while latencies.len() < n {
        tokio::select! {
            _ = tick.tick(), if sent < n => {
                let body = format!("victim message {sent} {}", "v".repeat(SIZE)).into_bytes();
                let id = victim
                    .send(receiver.peer_id().to_string(), Content::Bytes(body), LIFESPAN)
                    .await?;
                sent_at.insert(id, Instant::now());
                sent += 1;
            }
            event = events.recv() => match event {
                Ok(NodeEvent::Stored { id, .. }) => {
                    if let Some(at) = sent_at.remove(&id) {
                        latencies.push(at.elapsed().as_secs_f64() * 1e3);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(k)) => {
                    anyhow::bail!("receiver events lagged by {k}: latencies would be lost")
                }
                Err(broadcast::error::RecvError::Closed) => anyhow::bail!("receiver stopped"),
            },
            _ = tokio::time::sleep_until(deadline) => {
                anyhow::bail!("{} of {n} victim messages arrived in time", latencies.len())
            }
        }
    }
    Ok(latencies)
}

/// What the flooder's requests got.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    admitted: AtomicU64,
    rate_limited: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    other: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Counts {
    sent: u64,
    admitted: u64,
    rate_limited: u64,
    busy: u64,
    failed: u64,
    other: u64,
}

impl Counts {
    /// The requests counted since `earlier`.
    fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            sent: self.sent - earlier.sent,
            admitted: self.admitted - earlier.admitted,
            rate_limited: self.rate_limited - earlier.rate_limited,
            busy: self.busy - earlier.busy,
            failed: self.failed - earlier.failed,
            other: self.other - earlier.other,
        }
    }
}

impl Tally {
    fn answered(&self) -> u64 {
        let s = self.snapshot();
        s.admitted + s.rate_limited + s.busy + s.failed + s.other
    }

    fn snapshot(&self) -> Counts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            sent: l(&self.sent),
            admitted: l(&self.admitted),
            rate_limited: l(&self.rate_limited),
            busy: l(&self.busy),
            failed: l(&self.failed),
            other: l(&self.other),
        }
    }
}

/// Messages the flooder signs before it starts, and cycles through: signing as it floods would
/// spend the shared cores on the flooder's side of the bench, which a flooder elsewhere would
/// not.
const FLOOD_POOL: usize = 4096;

/// Pushes validly signed single-chunk messages from `node` to `to` with `concurrency` requests
/// in flight until `stop`, tallying the answers. A task whose request fails at the connection
/// (the receiver cut the flooder off) waits `retry` before the next: a remote flooder would spin
/// on its own cores, not the bench's.
async fn flood(
    node: mule::node::Node,
    to: libp2p::PeerId,
    concurrency: usize,
    retry: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> anyhow::Result<()> {
    let identity = Identity::generate();
    let pool = (0..FLOOD_POOL)
        .map(|n| {
            let content = format!("flood {n} {}", "f".repeat(SIZE)).into_bytes();
            let header = Draft {
                recipient: "*".into(),
                created_ms: now_ms(),
                lifespan_ms: LIFESPAN.as_millis() as u64,
                chains: Vec::new(),
            }
            .sign(&identity, &content)?;
            anyhow::Ok(Frame::Ok(push::Request::Chunk {
                header: Box::new(header),
                offset: 0,
                data: content,
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Acquire) {
        while tasks.len() < concurrency {
            let request = pool[n % FLOOD_POOL].clone();
            n += 1;
            let net = node.net().clone();
            tally.sent.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let answer = net.push(to, request).await;
                if answer.is_err() {
                    tokio::time::sleep(retry).await;
                }
                answer
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let counter = match done.context("flood request task")? {
            Ok(push::Response::Offset(_)) | Ok(push::Response::Batch(_)) => &tally.admitted,
            Ok(push::Response::Error(e)) => match e.code {
                Code::RateLimitExceeded => &tally.rate_limited,
                Code::Busy => &tally.busy,
                _ => &tally.other,
            },
            Err(_) => &tally.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    tasks.abort_all();
    Ok(())
}

/// The samples of both baselines together.
fn pooled(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().chain(b).copied().collect()
}

/// The `q` quantile (nearest rank) of `samples`.
fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
