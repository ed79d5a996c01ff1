//! One sync task per selected peer: diff what the peer lacks, push it in creation order, record
//! the outcome in the store, back off on transient failures, and follow new messages as they come.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, FuturesOrdered, StreamExt};
use libp2p::PeerId;
use rand::Rng;
use tokio::sync::{broadcast, watch, Semaphore};
use tracing::Instrument;

use super::{backoff, Ctx};
use crate::message::{now_ms, MessageId};
use crate::node::counters::Counters;
use crate::protocol::{diff, push, Code, Frame, WireError};
use crate::store::{Delivery, Stored};

/// Messages pushed to one peer concurrently (lets the receiver group-commit small messages).
pub(super) const MESSAGE_CONCURRENCY: usize = 64;
/// Most content bytes in one batch request (the request limit is a little over 1 MiB).
const BATCH_BYTES: usize = 512 * 1024;
/// Unit of the push window, in bytes.
const WINDOW_UNIT: usize = 1024;
/// Restarts of one push after `incorrect-offset` before it counts as a transient failure.
pub(super) const MAX_RESTARTS: u32 = 3;

/// How one push ended.
#[derive(Debug)]
enum Outcome {
    /// The peer has it now (or had it: `duplicate`).
    Delivered { duplicate: bool },
    /// The peer will never take it.
    Fatal(String),
    /// Worth retrying later.
    Transient(String),
    /// The connection failed; stop this pass.
    Connection(String),
    /// Not attempted (the pass was aborted).
    Skipped,
}

fn classify(e: WireError) -> Outcome {
    match e.code {
        Code::AlreadySeen => Outcome::Delivered { duplicate: true },
        ref c if c.is_fatal() => Outcome::Fatal(e.to_string()),
        _ => Outcome::Transient(e.to_string()),
    }
}

/// A message to offer, with what we knew of its delivery to this peer.
struct Candidate {
    stored: Stored,
    attempts: u32,
    /// The content, when it is small and was read with the batch.
    content: Option<Vec<u8>>,
}

/// Runs until `stop` turns true (peer deselected, node shutting down).
pub(super) async fn run(ctx: Arc<Ctx>, peer: PeerId, mut stop: watch::Receiver<bool>) {
    let span = tracing::info_span!("sync", %peer);
    async move {
        let mut news = ctx.news.subscribe();
        let mut full_pass = true;
        let mut backlog: Vec<MessageId> = Vec::new();
        let mut failures = 0u32;
        'passes: loop {
            if *stop.borrow() {
                break;
            }
            let ids = if full_pass {
                None
            } else {
                Some(std::mem::take(&mut backlog))
            };
            full_pass = false;
            let pass = pass(&ctx, peer, ids).await;
            ctx.set_queue(peer, 0);
            let wake_at = if pass.connection_failed {
                failures += 1;
                let delay = backoff::delay(failures - 1, rand::thread_rng().gen());
                tracing::debug!(?delay, "peer unreachable; backing off");
                Some(tokio::time::Instant::now() + delay)
            } else {
                failures = 0;
                pass.next_retry_ms.map(|at| {
                    tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now_ms()))
                })
            };
            // Wait for new messages, a retry time, or the end. While backing off from a broken
            // connection, new messages only join the backlog; the next pass is a full one.
            loop {
                let sleep = async {
                    match wake_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = stop.changed() => break 'passes,
                    _ = sleep => {
                        full_pass = true;
                        break;
                    }
                    received = news.recv() => match received {
                        Ok(id) => {
                            backlog.push(id);
                            while let Ok(id) = news.try_recv() {
                                backlog.push(id);
                            }
                            if !pass.connection_failed {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            full_pass = true;
                            if !pass.connection_failed {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => break 'passes,
                    },
                }
            }
            if full_pass {
                backlog.clear();
            }
        }
        ctx.remove_queue(peer);
        tracing::debug!("sync stopped");
    }
    .instrument(span)
    .await
}

struct Pass {
    connection_failed: bool,
    next_retry_ms: Option<u64>,
}

/// Diffs and pushes either everything (`ids == None`) or just the given new messages.
async fn pass(ctx: &Arc<Ctx>, peer: PeerId, ids: Option<Vec<MessageId>>) -> Pass {
    let mut result = Pass {
        connection_failed: false,
        next_retry_ms: None,
    };
    let now = now_ms();
    let peer_bytes = crate::store::PeerKey::from(peer.to_bytes());
    let rows = match ids {
        None => ctx.store.deliveries_for(peer_bytes.clone(), now).await,
        Some(ids) => ctx.store.with_delivery(ids, peer_bytes.clone()).await,
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the store for a sync pass");
            result.connection_failed = true;
            return result;
        }
    };
    let mut candidates = Vec::new();
    for (stored, state) in rows {
        let attempts = match state {
            Some(s) if s.is_final() => continue,
            Some(Delivery::Retry {
                attempts,
                next_attempt_ms,
                ..
            }) => {
                if next_attempt_ms > now {
                    let next = result.next_retry_ms.get_or_insert(next_attempt_ms);
                    *next = (*next).min(next_attempt_ms);
                    continue;
                }
                attempts
            }
            _ => 0,
        };
        if ctx.should_offer(&peer, &stored) {
            candidates.push(Candidate {
                stored,
                attempts,
                content: None,
            });
        }
    }
    if candidates.is_empty() {
        return result;
    }
    ctx.set_queue(peer, candidates.len());

    // Diff in batches; keep only what the peer lacks, in creation order.
    let mut lacking: Vec<Candidate> = Vec::new();
    let mut candidates = candidates.into_iter().peekable();
    while candidates.peek().is_some() {
        let batch: Vec<Candidate> = candidates.by_ref().take(diff::MAX_IDS).collect();
        let ids = batch.iter().map(|c| c.stored.header.id).collect();
        let has = match ctx.net.diff(peer, diff::Request { ids }).await {
            Ok(diff::Response::Has(has)) if has.len() == batch.len() => has,
            Ok(other) => {
                tracing::debug!(?other, "unusable diff answer");
                result.connection_failed = true;
                return result;
            }
            Err(e) => {
                // Counts towards making the peer bad: a peer that never answers a diff (gone,
                // or not a mule node at all) is eventually replaced in the ring.
                tracing::debug!(error = %e, "diff failed");
                let _ = ctx.net.report_error(peer).await;
                result.connection_failed = true;
                return result;
            }
        };
        let mut already = Vec::new();
        for (candidate, has) in batch.into_iter().zip(has) {
            if has {
                already.push((
                    candidate.stored.header.id,
                    Delivery::Sent { at_ms: now_ms() },
                ));
            } else {
                lacking.push(candidate);
            }
        }
        ctx.record_all(peer, already).await;
    }
    lacking.sort_by_key(|c| (c.stored.header.created_ms, c.stored.header.id));
    // Small contents for the whole batch in one read.
    let inline: Vec<MessageId> = lacking
        .iter()
        .filter(|c| c.stored.inline)
        .map(|c| c.stored.header.id)
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

    let broken = Arc::new(AtomicBool::new(false));
    // The window bounds bytes in flight to this peer (push_window chunks' worth), counted in
    // KiB: a 1 KiB message takes one unit, a full chunk takes chunk_size / 1024 of them.
    let window_units =
        ctx.config.push_window.max(1) * ctx.config.chunk_size.max(WINDOW_UNIT) / WINDOW_UNIT;
    let window = Arc::new(Semaphore::new(window_units));
    // Small messages whose content was read with the batch go whole, many per request; the
    // rest go one by one in chunks.
    let (mut small, large): (Vec<Candidate>, Vec<Candidate>) = lacking.into_iter().partition(|c| {
        c.content
            .as_ref()
            .is_some_and(|d| d.len() as u64 == c.stored.header.length)
    });
    let mut batches: Vec<Vec<Candidate>> = Vec::new();
    let mut bytes = 0usize;
    for c in small.drain(..) {
        let size = c.stored.header.length as usize + 1024;
        let full = batches
            .last()
            .is_none_or(|b| b.len() >= push::MAX_BATCH || bytes + size > BATCH_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = batches.last_mut() {
            b.push(c);
        }
    }
    let total = batches.iter().map(Vec::len).sum::<usize>() + large.len();
    type Done = Vec<(Candidate, Outcome)>;
    let mut jobs: Vec<futures::future::BoxFuture<'static, Done>> = Vec::new();
    for batch in batches {
        let (ctx, broken, window) = (ctx.clone(), broken.clone(), window.clone());
        jobs.push(Box::pin(async move {
            if broken.load(Ordering::Relaxed) {
                return batch.into_iter().map(|c| (c, Outcome::Skipped)).collect();
            }
            let done = push_batch(&ctx, peer, batch, &window, window_units).await;
            if done
                .iter()
                .any(|(_, o)| matches!(o, Outcome::Connection(_)))
            {
                broken.store(true, Ordering::Relaxed);
            }
            done
        }));
    }
    for mut candidate in large {
        let (ctx, broken, window) = (ctx.clone(), broken.clone(), window.clone());
        jobs.push(Box::pin(async move {
            let outcome = if broken.load(Ordering::Relaxed) {
                Outcome::Skipped
            } else {
                let content = candidate.content.take();
                push_one(&ctx, peer, &candidate.stored, content, &window).await
            };
            if matches!(outcome, Outcome::Connection(_)) {
                broken.store(true, Ordering::Relaxed);
            }
            vec![(candidate, outcome)]
        }));
    }
    // Outcomes are recorded in batches: one commit for many messages.
    let mut outcomes = stream::iter(jobs)
        .buffer_unordered(MESSAGE_CONCURRENCY)
        .ready_chunks(MESSAGE_CONCURRENCY)
        .map(|chunks| chunks.into_iter().flatten().collect::<Vec<_>>());
    let mut left = total;
    // Recording runs beside the pushes: a commit never stalls the next batch.
    let mut recording = tokio::task::JoinSet::new();
    while let Some(done) = outcomes.next().await {
        left -= done.len();
        ctx.set_queue(peer, left);
        let mut states = Vec::with_capacity(done.len());
        for (candidate, outcome) in done {
            let id = candidate.stored.header.id;
            let state = match outcome {
                Outcome::Delivered { duplicate } => {
                    if !duplicate {
                        Counters::add(&ctx.counters.messages_sent, 1);
                    }
                    tracing::debug!(id = %id.short(), duplicate, "delivered");
                    Delivery::Sent { at_ms: now_ms() }
                }
                Outcome::Fatal(reason) => {
                    tracing::info!(id = %id.short(), %reason, "peer refused message");
                    Delivery::Failed {
                        reason,
                        at_ms: now_ms(),
                    }
                }
                Outcome::Transient(reason) | Outcome::Connection(reason) => {
                    let attempts = candidate.attempts + 1;
                    let delay = backoff::delay(attempts - 1, rand::thread_rng().gen());
                    let next_attempt_ms = now_ms() + delay.as_millis() as u64;
                    let next = result.next_retry_ms.get_or_insert(next_attempt_ms);
                    *next = (*next).min(next_attempt_ms);
                    Delivery::Retry {
                        attempts,
                        next_attempt_ms,
                        last_error: reason,
                    }
                }
                Outcome::Skipped => continue,
            };
            states.push((id, state));
        }
        let ctx = ctx.clone();
        recording.spawn(async move { ctx.record_all(peer, states).await });
    }
    while recording.join_next().await.is_some() {}
    if broken.load(Ordering::Relaxed) {
        result.connection_failed = true;
        let _ = ctx.net.report_error(peer).await;
    }
    result
}

/// Pushes one message: resume offset (for multi-chunk messages), then chunks with up to
/// `window` requests in flight to this peer, restarting at the receiver's offset if told to.
async fn push_one(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    stored: &Stored,
    mut content: Option<Vec<u8>>,
    window: &Arc<Semaphore>,
) -> Outcome {
    let header = ctx.outgoing_header(stored);
    let id = header.id;
    let len = header.length;
    let chunk = ctx.config.chunk_size.clamp(1, push::MAX_CHUNK) as u64;
    let mut next = 0;
    if len > chunk {
        match ctx
            .net
            .push(peer, Frame::Ok(push::Request::ResumeOffset { id }))
            .await
        {
            Ok(push::Response::Offset(n)) => {
                tracing::debug!(id = %id.short(), offset = n, "receiver holds");
                next = n.min(len)
            }
            Ok(push::Response::Error(e)) => return classify(e),
            Ok(push::Response::Batch(_)) => {
                return Outcome::Transient("peer answered a batch to resume-offset".into())
            }
            Err(e) => return Outcome::Connection(e.to_string()),
        }
    }
    let header = Arc::new(header);
    let mut restarts = 0;
    'restart: loop {
        let mut inflight = FuturesOrdered::new();
        // Set by a chunk task that failed, before it frees its window slot: whoever takes that
        // slot sees it and sends nothing more, so at most one window of chunks is ever lost.
        let failed = Arc::new(AtomicBool::new(false));
        let mut offset = next;
        // A receiver holding every byte (it crashed before finishing) completes on an empty
        // chunk at the end; so does an empty message.
        let mut final_empty = offset == len;
        loop {
            // Fill the window.
            while offset < len || final_empty {
                // With nothing in flight, wait for the window; otherwise take a slot if free.
                let n = chunk.min(len - offset);
                let units = (n as usize).div_ceil(WINDOW_UNIT).max(1) as u32;
                let permit = if inflight.is_empty() {
                    match window.clone().acquire_many_owned(units).await {
                        Ok(p) => p,
                        Err(_) => return Outcome::Transient("push window closed".into()),
                    }
                } else {
                    match window.clone().try_acquire_many_owned(units) {
                        Ok(p) => p,
                        Err(_) => break,
                    }
                };
                if failed.load(Ordering::Acquire) {
                    break;
                }
                let prefetched = content
                    .take()
                    .filter(|c| offset == 0 && c.len() as u64 == n);
                let data = match prefetched {
                    Some(d) => d,
                    None => match ctx.store.read_range(id, offset, n).await {
                        Ok(d) => d,
                        Err(e) => return Outcome::Transient(format!("cannot read content: {e}")),
                    },
                };
                let request = push::Request::Chunk {
                    header: Box::new((*header).clone()),
                    offset,
                    data,
                };
                let net = ctx.net.clone();
                let failed = failed.clone();
                Counters::add(&ctx.counters.bytes_sent, n);
                inflight.push_back(tokio::spawn(async move {
                    let r = net.push(peer, Frame::Ok(request)).await;
                    if !matches!(r, Ok(push::Response::Offset(_))) {
                        failed.store(true, Ordering::Release);
                    }
                    drop(permit);
                    r
                }));
                offset += n;
                final_empty = false;
            }
            let Some(joined) = inflight.next().await else {
                return Outcome::Transient("push ended without an answer".into());
            };
            match joined {
                Err(e) => return Outcome::Transient(format!("push task failed: {e}")),
                Ok(Err(e)) => return Outcome::Connection(e.to_string()),
                Ok(Ok(push::Response::Offset(n))) if n >= len => {
                    return Outcome::Delivered { duplicate: false }
                }
                Ok(Ok(push::Response::Offset(_))) => {}
                Ok(Ok(push::Response::Error(WireError {
                    code: Code::IncorrectOffset { have },
                    ..
                }))) => {
                    restarts += 1;
                    if restarts > MAX_RESTARTS || have > len {
                        return Outcome::Transient(format!("peer keeps asking for offset {have}"));
                    }
                    tracing::debug!(id = %id.short(), have, "resuming at the receiver's offset");
                    next = have;
                    // Let the requests still in flight finish; their answers no longer matter.
                    drop(inflight);
                    continue 'restart;
                }
                Ok(Ok(push::Response::Error(e))) => return classify(e),
                Ok(Ok(push::Response::Batch(_))) => {
                    return Outcome::Transient("peer answered a batch to a chunk".into())
                }
            }
        }
    }
}

/// Pushes small messages whole, several per request: one request per message would cap a peer
/// at the few thousand requests per second a libp2p request-response stream pair manages.
async fn push_batch(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    batch: Vec<Candidate>,
    window: &Arc<Semaphore>,
    window_units: usize,
) -> Vec<(Candidate, Outcome)> {
    // Batches count against the same byte window as chunks.
    let bytes: u64 = batch.iter().map(|c| c.stored.header.length).sum();
    let units = (bytes as usize)
        .div_ceil(WINDOW_UNIT)
        .clamp(1, window_units) as u32;
    let Ok(_permit) = window.clone().acquire_many_owned(units).await else {
        return batch
            .into_iter()
            .map(|c| (c, Outcome::Transient("push window closed".into())))
            .collect();
    };
    let mut messages = Vec::with_capacity(batch.len());
    let mut batch = batch;
    for c in batch.iter_mut() {
        let header = ctx.outgoing_header(&c.stored);
        let data = c.content.take().unwrap_or_default();
        Counters::add(&ctx.counters.bytes_sent, data.len() as u64);
        messages.push(push::Whole { header, data });
    }
    let answer = ctx
        .net
        .push(peer, Frame::Ok(push::Request::Batch(messages)))
        .await;
    match answer {
        Ok(push::Response::Batch(items)) if items.len() == batch.len() => batch
            .into_iter()
            .zip(items)
            .map(|(c, item)| {
                let outcome = match item {
                    None => Outcome::Delivered { duplicate: false },
                    Some(e) => classify(e),
                };
                (c, outcome)
            })
            .collect(),
        Ok(push::Response::Error(e)) => {
            let outcome = || classify(e.clone());
            batch.into_iter().map(|c| (c, outcome())).collect()
        }
        Ok(other) => batch
            .into_iter()
            .map(|c| {
                (
                    c,
                    Outcome::Transient(format!("unusable batch answer {other:?}")),
                )
            })
            .collect(),
        Err(e) => batch
            .into_iter()
            .map(|c| (c, Outcome::Connection(e.to_string())))
            .collect(),
    }
}
