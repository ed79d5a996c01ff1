//! `small`: many small messages A → B, durably stored at B, against the store alone. Two ways:
//! - end to end: A's `send` calls (sign + store) while A already pushes to B;
//! - relay: A holds every message before it meets B (a data mule arriving), timed from the dial
//!   to the last one stored at B: the receiving rate issue 12 asks 10,000 msgs/s of.
//!
//! - `MULE_BENCH_SMALL_COUNT` (default 10000), `MULE_BENCH_SMALL_BYTES` (default 1 KiB),
//!   `MULE_BENCH_SMALL_CONCURRENCY` (default 64): `send` calls in flight at A.
//! - `MULE_BENCH_SMALL_RUNS` (default 3): runs, baseline and mule alternating; medians reported.
//!
//! Baseline: `Store::put` of the same number of pre-signed messages into a fresh store with the
//! same concurrency: the local durable-write ceiling. Goal: ≥ 5,000 messages/s end to end.
//!
//! Both nodes and the baseline store run with the redb cache a `mule node` has (64 MiB;
//! `MULE_BENCH_CACHE_BYTES` overrides it). With the 4 MiB cache of the many-node benches, the
//! index of 10,000 messages no longer fits, and every insert reads pages back from the OS.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{Goal, Record};
use futures::{stream, StreamExt, TryStreamExt};
use mule::identity::Identity;
use mule::message::{now_ms, Draft};
use mule::node::{Content, NodeEvent};
use mule::store::Store;
use tokio::sync::broadcast;

const BENCH: &str = "small";
const LIFESPAN: Duration = Duration::from_secs(3600);

fn main() -> anyhow::Result<()> {
    common::init_tracing();
    let count = common::env_u64("MULE_BENCH_SMALL_COUNT", 10_000) as usize;
    let size = common::env_u64("MULE_BENCH_SMALL_BYTES", 1024) as usize;
    let concurrency = common::env_u64("MULE_BENCH_SMALL_CONCURRENCY", 64).max(1) as usize;
    let runs = common::env_u64("MULE_BENCH_SMALL_RUNS", 3).max(1) as usize;
    let rt = common::runtime()?;
    rt.block_on(async move {
        let tmp = tempfile::tempdir().context("tempdir")?;

        // Baseline and mule alternate, so that load from elsewhere hits both alike.
        let mut stores = Vec::with_capacity(runs);
        let mut mules = Vec::with_capacity(runs);
        let mut relays = Vec::with_capacity(runs);
        let mut sign_s = 0.0;
        for run in 0..runs {
            progress!(
                "run {}/{runs}: Store::put of {count} x {size} B, {concurrency} in flight",
                run + 1
            );
            let (store_rate, s) = store_alone(count, size, concurrency, tmp.path()).await?;
            sign_s = s;
            progress!("  {store_rate:.0} msgs/s (signing beforehand took {s:.2} s)");
            progress!(
                "run {}/{runs}: mule {count} x {size} B A -> B, {concurrency} sends in flight",
                run + 1
            );
            let m = mule_small(count, size, concurrency, tmp.path()).await?;
            progress!(
                "  all sent in {:.2} s, all stored at B in {:.2} s: {:.0} msgs/s",
                m.sent.as_secs_f64(),
                m.end_to_end.as_secs_f64(),
                count as f64 / m.end_to_end.as_secs_f64(),
            );
            progress!(
                "run {}/{runs}: relay, A holds {count} x {size} B, then dials B",
                run + 1
            );
            let r = mule_relay(count, size, concurrency, tmp.path()).await?;
            progress!(
                "  all stored at B {:.2} s after the dial: {:.0} msgs/s",
                r.as_secs_f64(),
                count as f64 / r.as_secs_f64()
            );
            stores.push(store_rate);
            mules.push(m);
            relays.push(r);
        }
        let all_relays: Vec<f64> = relays
            .iter()
            .map(|r| (count as f64 / r.as_secs_f64()).round())
            .collect();
        relays.sort();
        let relay = relays[relays.len() / 2];
        let round = |x: f64| x.round();
        let all_rates: Vec<f64> = mules
            .iter()
            .map(|m| round(count as f64 / m.end_to_end.as_secs_f64()))
            .collect();
        let all_stores: Vec<f64> = stores.iter().copied().map(round).collect();
        stores.sort_by(f64::total_cmp);
        let store_rate = stores[stores.len() / 2];
        mules.sort_by_key(|m| m.end_to_end);
        let m = &mules[mules.len() / 2];
        let mut sends: Vec<Duration> = mules.iter().map(|m| m.sent).collect();
        sends.sort();
        let sent = sends[sends.len() / 2];
        let rate = count as f64 / m.end_to_end.as_secs_f64();
        progress!(
            "median: {rate:.0} msgs/s end to end, store alone {store_rate:.0} msgs/s (ratio {:.2})",
            rate / store_rate
        );

        let knobs = common::pair_config(tmp.path());
        let ctx = |r: Record| {
            r.ctx("push_window", knobs.push_window as u64)
                .ctx("cache_bytes", knobs.store.cache_bytes as u64)
                .ctx("count", count as u64)
                .ctx("bytes", size as u64)
                .ctx("concurrency", concurrency as u64)
        };
        ctx(Record::new(BENCH, "end_to_end_rate", rate, "msgs/s"))
            .baseline(
                store_rate,
                "Store::put alone, fresh store, same concurrency (durable)",
            )
            .goal(Goal::ValueAtLeast(5000.0))
            .ctx("end_to_end_s", m.end_to_end.as_secs_f64())
            .ctx("first_stored_at_b_ms", m.first.as_secs_f64() * 1e3)
            .ctx("events_lagged", m.lagged)
            .ctx("runs", runs as u64)
            .ctx("all_msgs_s", all_rates)
            .ctx("all_baseline_msgs_s", all_stores.clone())
            .emit();
        ctx(Record::new(
            BENCH,
            "send_rate",
            count as f64 / sent.as_secs_f64(),
            "msgs/s",
        ))
        .baseline(
            store_rate,
            "Store::put alone, fresh store, same concurrency (durable)",
        )
        .ctx(
            "what",
            "node.send calls at A (sign + store), while A also pushes to B",
        )
        .ctx("sent_s", sent.as_secs_f64())
        .emit();
        ctx(Record::new(
            BENCH,
            "relay_rate",
            count as f64 / relay.as_secs_f64(),
            "msgs/s",
        ))
        .baseline(
            store_rate,
            "Store::put alone, fresh store, same concurrency (durable)",
        )
        .goal(Goal::ValueAtLeast(10_000.0))
        .ctx(
            "what",
            "A holds every message before it dials B; dial to the last one durable at B",
        )
        .ctx("relay_s", relay.as_secs_f64())
        .ctx("all_msgs_s", all_relays)
        .emit();
        ctx(Record::new(BENCH, "store_put_rate", store_rate, "msgs/s"))
            .ctx("what", "baseline alone: Store::put of pre-signed messages")
            .ctx("signing_s", sign_s)
            .ctx("all_msgs_s", all_stores)
            .emit();
        Ok(())
    })
}

/// Puts `count` pre-signed messages into a fresh store; returns (msgs/s, signing seconds).
async fn store_alone(
    count: usize,
    size: usize,
    concurrency: usize,
    tmp: &std::path::Path,
) -> anyhow::Result<(f64, f64)> {
    let identity = Identity::generate();
    let t = Instant::now();
    let messages = (0..count)
        .map(|i| {
            let content = common::random_bytes(size, i as u64 + 1);
            let header = Draft {
                recipient: mule::message::BROADCAST.into(),
                // Stamped when signed, as `send` does.
                created_ms: now_ms(),
                lifespan_ms: LIFESPAN.as_millis() as u64,
                chains: Vec::new(),
            }
            .sign(&identity, &content)?;
            anyhow::Ok((header, content))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sign_s = t.elapsed().as_secs_f64();
    // The same store settings as the nodes' (cache included).
    let config = common::pair_config(tmp).store;
    let dir = tempfile::tempdir_in(tmp)?;
    let store = Store::open(dir.path().join("store"), config).await?;
    let t = Instant::now();
    stream::iter(messages)
        .map(|(header, content)| {
            let store = store.clone();
            async move { store.put(header, content).await }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let elapsed = t.elapsed();
    let held = store.len().await?;
    if held != count as u64 {
        bail!("store holds {held} messages, expected {count}");
    }
    store.close().await?;
    Ok((count as f64 / elapsed.as_secs_f64(), sign_s))
}

struct MuleSmall {
    sent: Duration,
    first: Duration,
    end_to_end: Duration,
    lagged: u64,
}

async fn mule_small(
    count: usize,
    size: usize,
    concurrency: usize,
    tmp: &std::path::Path,
) -> anyhow::Result<MuleSmall> {
    let dirs = tempfile::tempdir_in(tmp)?;
    let (a, addrs) = common::start_node(common::pair_config(&dirs.path().join("a"))).await?;
    let mut config_b = common::pair_config(&dirs.path().join("b"));
    config_b.net.bootstrap = addrs;
    let (b, _) = common::start_node(config_b).await?;
    common::wait_selected(&[a.clone(), b.clone()], &[1, 1], Duration::from_secs(30)).await?;

    let payloads: Vec<Vec<u8>> = (0..count)
        .map(|i| common::random_bytes(size, i as u64 + 1))
        .collect();
    let events = b.subscribe();
    let counter = tokio::spawn(count_stored(events, count));
    let recipient = b.peer_id().to_string();
    let t0 = Instant::now();
    send_all(&a, &recipient, payloads, concurrency).await?;
    let sent = t0.elapsed();
    progress!("  A: all {count} sent after {:.2} s", sent.as_secs_f64());
    let (first, last, lagged) = all_stored(&b, counter, count).await?;
    common::shutdown_all(vec![a, b]).await;
    Ok(MuleSmall {
        sent,
        first: first - t0,
        end_to_end: last - t0,
        lagged,
    })
}

/// Sends every payload from `a` to `recipient` with `concurrency` sends in flight.
async fn send_all(
    a: &mule::node::Node,
    recipient: &str,
    payloads: Vec<Vec<u8>>,
    concurrency: usize,
) -> anyhow::Result<()> {
    stream::iter(payloads)
        .map(|p| {
            let (a, recipient) = (a.clone(), recipient.to_owned());
            async move { a.send(recipient, Content::Bytes(p), LIFESPAN).await }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(())
}

/// Waits for `counter` (see [`count_stored`]) and checks that `b` holds all `count` messages.
async fn all_stored(
    b: &mule::node::Node,
    counter: tokio::task::JoinHandle<anyhow::Result<(Instant, Instant, u64)>>,
    count: usize,
) -> anyhow::Result<(Instant, Instant, u64)> {
    let times = tokio::time::timeout(common::timeout(), counter)
        .await
        .context("B did not store every message in time")???;
    let held = b.store().len().await?;
    if held < count as u64 {
        bail!("B holds {held} messages, expected {count}");
    }
    Ok(times)
}

/// A holds `count` messages for B before the two meet; returns the time from A's dial to the
/// last message durable at B.
async fn mule_relay(
    count: usize,
    size: usize,
    concurrency: usize,
    tmp: &std::path::Path,
) -> anyhow::Result<Duration> {
    let dirs = tempfile::tempdir_in(tmp)?;
    let (a, _) = common::start_node(common::pair_config(&dirs.path().join("a"))).await?;
    let (b, b_addrs) = common::start_node(common::pair_config(&dirs.path().join("b"))).await?;
    let payloads = (0..count)
        .map(|i| common::random_bytes(size, i as u64 + 1))
        .collect();
    send_all(&a, &b.peer_id().to_string(), payloads, concurrency).await?;
    let counter = tokio::spawn(count_stored(b.subscribe(), count));
    let t0 = Instant::now();
    for addr in b_addrs {
        a.net().dial(addr).await?;
    }
    let (_, last, _) = all_stored(&b, counter, count).await?;
    common::shutdown_all(vec![a, b]).await;
    Ok(last - t0)
}

/// Counts `Stored { from: Some(_) }` until `count`; returns (first, last, events lost to lag).
/// A lag means the counter fell behind the node's event buffer; the lost events are counted as
/// stores (nothing else is emitted at B in this bench) and reported.
async fn count_stored(
    mut events: broadcast::Receiver<NodeEvent>,
    count: usize,
) -> anyhow::Result<(Instant, Instant, u64)> {
    let mut seen = 0usize;
    let mut lagged = 0u64;
    let mut first = None;
    let mut last_report = Instant::now();
    while seen < count {
        match events.recv().await {
            Ok(NodeEvent::Stored { from: Some(_), .. }) => {
                seen += 1;
                first.get_or_insert_with(Instant::now);
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                seen += n as usize;
                lagged += n;
            }
            Err(broadcast::error::RecvError::Closed) => bail!("B stopped after {seen} messages"),
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            progress!("  B: {seen} stored");
            last_report = Instant::now();
        }
    }
    let last = Instant::now();
    Ok((first.unwrap_or(last), last, lagged))
}
