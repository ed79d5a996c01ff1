//! The sync task of one peer and its passes: read what to offer, diff it, push what the peer
//! lacks, record the outcomes; between passes wait for news, a retry time or the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use libp2p::PeerId;
use rand::Rng;
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tracing::Instrument;

use super::plan::{self, Candidate, Outcome};
use super::{push, MESSAGE_CONCURRENCY};
use crate::message::{now_ms, MessageId};
use crate::node::backoff;
use crate::node::counters::Counters;
use crate::node::ctx::Ctx;
use crate::protocol::{diff, Code};
use crate::store::Delivery;

/// How long a sender waits before offering again messages the peer said another sender
/// claimed (plus up to half as much jitter). Short: the claimer has usually delivered by then,
/// and if it vanished its claim lapses after `CLAIM_TTL` (10 s) at the receiver.
const CLAIMED_RETRY_MS: u64 = 1_000;

/// How a pass ended.
struct Pass {
    connection_failed: bool,
    /// The peer answered `rate-limit-exceeded`: the pass stopped sending at once.
    rate_limited: bool,
    /// Something was delivered in this pass.
    delivered: bool,
    next_retry_ms: Option<u64>,
}

impl Pass {
    fn broken() -> Self {
        Self {
            connection_failed: true,
            rate_limited: false,
            delivered: false,
            next_retry_ms: None,
        }
    }

    fn rate_limited() -> Self {
        Self {
            connection_failed: false,
            rate_limited: true,
            delivered: false,
            next_retry_ms: None,
        }
    }
}

/// Why a pass stopped early.
enum Cut {
    /// The connection broke or the peer answered nonsense.
    Broken,
    /// The peer is refusing us for our request rate.
    RateLimited,
}

impl From<Cut> for Pass {
    fn from(cut: Cut) -> Self {
        match cut {
            Cut::Broken => Pass::broken(),
            Cut::RateLimited => Pass::rate_limited(),
        }
    }
}

/// Whether `outcome` is the peer refusing us for our request rate.
fn is_rate_limit(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Transient(plan::Trouble::Refused(e)) if e.code == Code::RateLimitExceeded
    )
}

/// What wakes the task between passes.
enum Wake {
    /// Do a pass (a full one if `full`).
    Pass { full: bool },
    /// The peer connected afresh: forget the backoff, retry everything now.
    Fresh,
    /// Stop.
    Stop,
}

/// Runs until `stop` turns true (peer deselected, node shutting down). `fresh` fires when the
/// peer connects again (it restarted or came back in range).
pub(in crate::node) async fn run(
    ctx: Arc<Ctx>,
    peer: PeerId,
    mut stop: watch::Receiver<bool>,
    fresh: Arc<Notify>,
) {
    let span = tracing::info_span!("sync", %peer);
    async move {
        let mut news = ctx.news.subscribe();
        let mut full_pass = true;
        // A new task is a fresh start: messages waiting for a retry time go at once.
        let mut retry_all = true;
        let mut backlog: Vec<MessageId> = Vec::new();
        let mut failures = 0u32;
        // Passes in a row the peer cut short with `rate-limit-exceeded`.
        let mut limited = 0u32;
        // When the earliest message that waits (a retry time, or claimed by another sender)
        // is due. A full pass recomputes it; a pass over new messages only can move it earlier
        // but must not forget what the last full pass found.
        let mut retry_at: Option<u64> = None;
        while !*stop.borrow() {
            let ids = (!full_pass).then(|| std::mem::take(&mut backlog));
            let pass = pass(&ctx, peer, ids, std::mem::take(&mut retry_all)).await;
            ctx.set_queue(peer, 0);
            if full_pass {
                retry_at = pass.next_retry_ms;
            } else if let Some(at) = pass.next_retry_ms {
                plan::earliest(&mut retry_at, at);
            }
            let wake_at = if pass.connection_failed {
                failures = failures.saturating_add(1);
                let delay = backoff::delay(failures - 1, rand::thread_rng().gen());
                tracing::debug!(?delay, "peer unreachable; backing off");
                Some(tokio::time::Instant::now() + delay)
            } else if pass.rate_limited {
                // The pause grows only while the peer takes nothing at all.
                if pass.delivered {
                    limited = 0;
                }
                let pause = backoff::rate_limit_pause(limited, rand::thread_rng().gen());
                limited = limited.saturating_add(1);
                tracing::debug!(?pause, "peer is refusing us for our rate; pausing");
                Some(tokio::time::Instant::now() + pause)
            } else {
                failures = 0;
                limited = 0;
                retry_at.map(|at| {
                    tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now_ms()))
                })
            };
            let waiting = Waiting {
                stop: &mut stop,
                fresh: &fresh,
                news: &mut news,
                backlog: &mut backlog,
            };
            let backing_off = pass.connection_failed || pass.rate_limited;
            match waiting.wait(wake_at, backing_off).await {
                Wake::Stop => break,
                Wake::Fresh => {
                    tracing::debug!("peer connected afresh; retrying now");
                    failures = 0;
                    limited = 0;
                    full_pass = true;
                    retry_all = true;
                    backlog.clear();
                }
                Wake::Pass { full } => {
                    full_pass = full;
                    if full {
                        backlog.clear();
                    }
                }
            }
        }
        ctx.remove_queue(peer);
        tracing::debug!("sync stopped");
    }
    .instrument(span)
    .await
}

/// What the task waits on between passes.
struct Waiting<'a> {
    stop: &'a mut watch::Receiver<bool>,
    fresh: &'a Notify,
    news: &'a mut broadcast::Receiver<MessageId>,
    backlog: &'a mut Vec<MessageId>,
}

impl Waiting<'_> {
    /// Waits for new messages, a retry time, a fresh connection, or the end. While backing off
    /// from a broken connection, new messages only join the backlog; the next pass is a full one.
    async fn wait(self, wake_at: Option<tokio::time::Instant>, backing_off: bool) -> Wake {
        let mut full = false;
        loop {
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = self.stop.changed() => return Wake::Stop,
                _ = self.fresh.notified() => return Wake::Fresh,
                _ = sleep => return Wake::Pass { full: true },
                received = self.news.recv() => match received {
                    Ok(id) => {
                        self.backlog.push(id);
                        while let Ok(id) = self.news.try_recv() {
                            self.backlog.push(id);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => full = true,
                    Err(broadcast::error::RecvError::Closed) => return Wake::Stop,
                },
            }
            if !backing_off {
                return Wake::Pass { full };
            }
        }
    }
}

/// Diffs and pushes either everything (`ids == None`) or just the given new messages;
/// `retry_all` offers messages waiting for their retry time too (the peer connected afresh).
async fn pass(ctx: &Arc<Ctx>, peer: PeerId, ids: Option<Vec<MessageId>>, retry_all: bool) -> Pass {
    let now = now_ms();
    let key = crate::node::ctx::peer_key(&peer);
    let rows = match ids {
        None => ctx.store.deliveries_for(key, now).await,
        Some(ids) => ctx.store.with_delivery(ids, key).await,
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the store for a sync pass");
            return Pass::broken();
        }
    };
    let due = if retry_all { u64::MAX } else { now };
    let candidates = plan::candidates(rows, due, |s| ctx.should_offer(&peer, s));
    let mut result = Pass {
        connection_failed: false,
        rate_limited: false,
        delivered: false,
        next_retry_ms: candidates.next_retry_ms,
    };
    if candidates.now.is_empty() {
        return result;
    }
    ctx.set_queue(peer, candidates.now.len());
    let Lacking {
        push: mut lacking,
        claimed,
    } = match lacking(ctx, peer, candidates.now).await {
        Ok(found) => found,
        Err(cut) => return cut.into(),
    };
    if claimed > 0 {
        // Another peer is pushing these to it: ask again soon (by then it usually has them).
        let jitter = rand::thread_rng().gen_range(0..=CLAIMED_RETRY_MS / 2);
        tracing::debug!(
            claimed,
            "messages claimed by another sender; offering them later"
        );
        plan::earliest(
            &mut result.next_retry_ms,
            now_ms().saturating_add(CLAIMED_RETRY_MS + jitter),
        );
    }
    plan::in_creation_order(&mut lacking);
    prefetch_small(ctx, &mut lacking).await;
    let (cut, delivered) = push_all(ctx, peer, lacking, &mut result.next_retry_ms).await;
    result.delivered = delivered;
    match cut {
        None => {}
        Some(Cut::Broken) => {
            result.connection_failed = true;
            let _ = ctx.net.report_error(peer).await;
        }
        Some(Cut::RateLimited) => result.rate_limited = true,
    }
    result
}

/// What the diffs of a pass found.
struct Lacking {
    /// What the peer lacks and claimed for us: push it.
    push: Vec<Candidate>,
    /// What another peer is pushing to it right now: offer again later.
    claimed: usize,
}

/// Diffs in batches; keeps only what the peer lacks and records what it holds as delivered.
/// Stops when the peer could not be asked or refuses us for our rate.
async fn lacking(ctx: &Ctx, peer: PeerId, candidates: Vec<Candidate>) -> Result<Lacking, Cut> {
    let mut found = Lacking {
        push: Vec::new(),
        claimed: 0,
    };
    let mut candidates = candidates.into_iter().peekable();
    while candidates.peek().is_some() {
        let batch: Vec<Candidate> = candidates.by_ref().take(diff::MAX_IDS).collect();
        let ids = batch.iter().map(Candidate::id).collect();
        let states = match ctx.net.diff(peer, diff::Request::claiming(ids)).await {
            Ok(diff::Response::States(states)) if states.len() == batch.len() => states,
            // A receiver without claims answers the original form.
            Ok(diff::Response::Has(has)) if has.len() == batch.len() => has
                .into_iter()
                .map(|has| {
                    if has {
                        diff::State::Has
                    } else {
                        diff::State::Lacks
                    }
                })
                .collect(),
            Ok(diff::Response::Error(e)) if e.code == Code::RateLimitExceeded => {
                tracing::debug!(error = %e, "diff refused for our rate");
                return Err(Cut::RateLimited);
            }
            Ok(other) => {
                tracing::debug!(?other, "unusable diff answer");
                return Err(Cut::Broken);
            }
            Err(e) => {
                // Counts towards making the peer bad: a peer that never answers a diff (gone,
                // or not a mule node at all) is eventually replaced in the ring.
                tracing::debug!(error = %e, "diff failed");
                let _ = ctx.net.report_error(peer).await;
                return Err(Cut::Broken);
            }
        };
        let mut already = Vec::new();
        for (candidate, state) in batch.into_iter().zip(states) {
            match state {
                diff::State::Has => {
                    already.push((candidate.id(), Delivery::Sent { at_ms: now_ms() }));
                }
                diff::State::Lacks => found.push.push(candidate),
                diff::State::Claimed => found.claimed += 1,
            }
        }
        ctx.record_all(peer, already).await;
    }
    Ok(found)
}

/// Reads the small contents of the whole pass in one go.
async fn prefetch_small(ctx: &Ctx, lacking: &mut [Candidate]) {
    let inline: Vec<(u64, MessageId)> = lacking
        .iter()
        .filter(|c| c.stored.inline)
        .map(|c| (c.stored.header.created_ms, c.id()))
        .collect();
    match ctx.store.inline_contents(inline).await {
        Ok(contents) => {
            let mut contents = contents.into_iter();
            for c in lacking.iter_mut().filter(|c| c.stored.inline) {
                c.content = contents.next().flatten();
            }
        }
        // Each push then reads its own content (and reports the error if it persists).
        Err(e) => tracing::warn!(error = %e, "cannot read small contents in one batch"),
    }
}

type Done = Vec<(Candidate, Outcome)>;

/// Pushes everything the peer lacks (small messages in batches, the rest in chunks) with
/// [`MESSAGE_CONCURRENCY`] requests in flight, recording outcomes as they come. Stops sending
/// when the connection breaks or the peer refuses us for our rate, and says which, and whether
/// anything was delivered.
async fn push_all(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    lacking: Vec<Candidate>,
    next_retry_ms: &mut Option<u64>,
) -> (Option<Cut>, bool) {
    let stopped = Arc::new(Stopped::default());
    // The window bounds bytes in flight to this peer (push_window chunks' worth), counted in
    // KiB: a 1 KiB message takes one unit, a full chunk takes chunk_size / 1024 of them.
    let window_units = plan::window_units(ctx.config.push_window, ctx.config.chunk_size);
    let window = Arc::new(Semaphore::new(window_units));
    let total = lacking.len();
    let (small, large): (Vec<Candidate>, Vec<Candidate>) =
        lacking.into_iter().partition(Candidate::is_whole);
    let mut jobs: Vec<BoxFuture<'static, Done>> = Vec::new();
    for batch in plan::batches(small) {
        let (ctx, stopped, window) = (ctx.clone(), stopped.clone(), window.clone());
        jobs.push(Box::pin(async move {
            if stopped.any() {
                return batch.into_iter().map(|c| (c, Outcome::Skipped)).collect();
            }
            let done = push::batch(&ctx, peer, batch, &window, window_units).await;
            for (_, outcome) in &done {
                stopped.note(outcome);
            }
            done
        }));
    }
    for mut candidate in large {
        let (ctx, stopped, window) = (ctx.clone(), stopped.clone(), window.clone());
        jobs.push(Box::pin(async move {
            let outcome = if stopped.any() {
                Outcome::Skipped
            } else {
                let content = candidate.content.take();
                push::one(
                    &ctx,
                    peer,
                    &candidate.stored,
                    content,
                    &window,
                    window_units,
                )
                .await
            };
            stopped.note(&outcome);
            vec![(candidate, outcome)]
        }));
    }
    record_outcomes(ctx, peer, jobs, total, next_retry_ms).await;
    (stopped.cut(), stopped.delivered.load(Ordering::Relaxed))
}

/// What the jobs of a pass learned: whether to stop sending, and why (set by whichever job
/// learns it first), and whether anything was delivered.
#[derive(Default)]
struct Stopped {
    broken: AtomicBool,
    rate_limited: AtomicBool,
    /// Not a reason to stop: whether any job delivered.
    delivered: AtomicBool,
}

impl Stopped {
    fn note(&self, outcome: &Outcome) {
        if matches!(outcome, Outcome::Delivered { .. }) {
            self.delivered.store(true, Ordering::Relaxed);
        } else if matches!(outcome, Outcome::Connection(_)) {
            self.broken.store(true, Ordering::Relaxed);
        } else if is_rate_limit(outcome) {
            self.rate_limited.store(true, Ordering::Relaxed);
        }
    }

    fn any(&self) -> bool {
        self.cut().is_some()
    }

    fn cut(&self) -> Option<Cut> {
        if self.broken.load(Ordering::Relaxed) {
            Some(Cut::Broken)
        } else if self.rate_limited.load(Ordering::Relaxed) {
            Some(Cut::RateLimited)
        } else {
            None
        }
    }
}

/// Runs the push jobs and records their outcomes in batches (one commit for many messages),
/// beside the pushes so that a commit never stalls the next batch.
async fn record_outcomes(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    jobs: Vec<BoxFuture<'static, Done>>,
    total: usize,
    next_retry_ms: &mut Option<u64>,
) {
    let mut outcomes = stream::iter(jobs)
        .buffer_unordered(MESSAGE_CONCURRENCY)
        .ready_chunks(MESSAGE_CONCURRENCY)
        .map(|chunks| chunks.into_iter().flatten().collect::<Vec<_>>());
    let mut left = total;
    let mut recording = tokio::task::JoinSet::new();
    while let Some(done) = outcomes.next().await {
        left = left.saturating_sub(done.len());
        ctx.set_queue(peer, left);
        let mut states = Vec::with_capacity(done.len());
        for (candidate, outcome) in done {
            let id = candidate.id();
            log_outcome(ctx, &id, &outcome);
            let jitter = rand::thread_rng().gen();
            let Some(state) = plan::delivery(outcome, candidate.attempts, now_ms(), jitter) else {
                continue;
            };
            if let Delivery::Retry {
                next_attempt_ms, ..
            } = state
            {
                plan::earliest(next_retry_ms, next_attempt_ms);
            }
            states.push((id, state));
        }
        let ctx = ctx.clone();
        recording.spawn(async move { ctx.record_all(peer, states).await });
    }
    while recording.join_next().await.is_some() {}
}

fn log_outcome(ctx: &Ctx, id: &MessageId, outcome: &Outcome) {
    match outcome {
        Outcome::Delivered { duplicate } => {
            if !duplicate {
                Counters::add(&ctx.counters.messages_sent, 1);
            }
            tracing::debug!(id = %id.short(), duplicate, "delivered");
        }
        Outcome::Fatal(reason) => {
            tracing::info!(id = %id.short(), %reason, "peer refused message");
        }
        Outcome::Transient(reason) => tracing::debug!(id = %id.short(), %reason, "will retry"),
        Outcome::Connection(reason) => {
            tracing::debug!(id = %id.short(), %reason, "connection failed")
        }
        Outcome::Skipped => {}
    }
}
