//! Pushing content to one peer: one message in chunks (resuming where the receiver stands,
//! with a window of chunks in flight), or many small messages whole in one batch request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::{FuturesOrdered, StreamExt};
use libp2p::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::plan::{self, classify, Candidate, Outcome, Trouble};
use super::stream::{self, STREAM_BUFFER};
use super::MAX_RESTARTS;
use crate::message::{Header, MessageId};
use crate::net::RequestError;
use crate::node::counters::Counters;
use crate::node::ctx::Ctx;
use crate::node::transfers::Direction;
use crate::protocol::{push, Code, Frame, WireError};
use crate::store::{Stored, READ_AHEAD};

/// Window bytes one `/mule/push/2` stream takes: about what it holds in memory (the buffers
/// read ahead and the one being written).
const STREAM_WINDOW: usize = (READ_AHEAD + 1) * STREAM_BUFFER;

/// Pushes one message. A message larger than one chunk goes over `/mule/push/2` on one stream
/// when the peer speaks it; otherwise (and for one-chunk messages): resume offset (for
/// multi-chunk messages), then chunks with up to `window` requests in flight to this peer,
/// restarting at the receiver's offset if told to.
pub(super) async fn one(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    stored: &Stored,
    mut content: Option<Vec<u8>>,
    window: &Arc<Semaphore>,
    window_units: usize,
) -> Outcome {
    if let Err(e) = ctx.auth.push_request(&peer, std::time::Instant::now()) {
        return Outcome::Transient(Trouble::OutRate(e));
    }
    let header = Arc::new(ctx.outgoing_header(stored));
    let len = header.length;
    let chunk = ctx.config.chunk_size.clamp(1, push::MAX_CHUNK) as u64;
    let key = (header.id, peer, Direction::Out);
    if len > chunk && ctx.config.push2 {
        // One stream carries it all; it takes a few chunks' worth of the window, so that only
        // a few such streams run to one peer at once.
        let units = plan::units(STREAM_WINDOW as u64, window_units);
        let Ok(_permit) = window.clone().acquire_many_owned(units).await else {
            return Outcome::Transient(Trouble::WindowClosed);
        };
        if let Some(outcome) = stream::push(ctx, peer, &header).await {
            ctx.transfers().end(&key);
            return outcome;
        }
        tracing::debug!(%peer, "peer lacks /mule/push/2; pushing chunks");
    }
    let mut next = 0;
    if len > chunk {
        match resume_offset(ctx, peer, header.id).await {
            Ok(n) => next = n.min(len),
            Err(outcome) => return outcome,
        }
    }
    let mut chunks = Chunks {
        ctx,
        peer,
        header,
        chunk,
        window,
    };
    let outcome = chunks.all(next, &mut content).await;
    ctx.transfers().end(&key);
    outcome
}

impl Chunks<'_> {
    /// Sends from `next`, restarting where the receiver asks, at most [`MAX_RESTARTS`] times.
    async fn all(&mut self, mut next: u64, content: &mut Option<Vec<u8>>) -> Outcome {
        let len = self.header.length;
        for _ in 0..=MAX_RESTARTS {
            match self.send_from(next, content).await {
                Sent::Done(outcome) => return outcome,
                Sent::Restart { have } if have > len => {
                    return Outcome::Transient(Trouble::RestartLoop { have })
                }
                Sent::Restart { have } => {
                    tracing::debug!(id = %self.header.id.short(), have, "resuming at the receiver's offset");
                    next = have;
                }
            }
        }
        Outcome::Transient(Trouble::RestartLoop { have: next })
    }
}

/// Asks the receiver how many bytes of the message it holds.
async fn resume_offset(ctx: &Ctx, peer: PeerId, id: MessageId) -> Result<u64, Outcome> {
    let request = Frame::Ok(push::Request::ResumeOffset { id });
    match ctx.net.push(peer, request).await {
        Ok(push::Response::Offset(n)) => {
            tracing::debug!(id = %id.short(), offset = n, "receiver holds");
            Ok(n)
        }
        Ok(push::Response::Error(e)) => Err(classify(e)),
        Ok(push::Response::Batch(_)) => Err(Outcome::Transient(Trouble::Unusable(
            "a batch to resume-offset",
        ))),
        Err(e) => Err(Outcome::Connection(e)),
    }
}

/// How one run of chunks ended.
enum Sent {
    Done(Outcome),
    /// The receiver asked to continue at `have`.
    Restart {
        have: u64,
    },
}

type ChunkAnswer = Result<push::Response, RequestError>;

/// The chunks of one message on their way to one peer.
struct Chunks<'a> {
    ctx: &'a Arc<Ctx>,
    peer: PeerId,
    header: Arc<Header>,
    chunk: u64,
    window: &'a Arc<Semaphore>,
}

impl Chunks<'_> {
    /// Sends chunks from `offset` to the end, keeping the window full, and handles the answers
    /// in order.
    async fn send_from(&mut self, offset: u64, content: &mut Option<Vec<u8>>) -> Sent {
        let len = self.header.length;
        let mut inflight = FuturesOrdered::new();
        // Set by a chunk task that failed, before it frees its window slot: whoever takes that
        // slot sees it and sends nothing more, so at most one window of chunks is ever lost.
        let failed = Arc::new(AtomicBool::new(false));
        let mut offset = offset;
        // A receiver holding every byte (it crashed before finishing) completes on an empty
        // chunk at the end; so does an empty message.
        let mut final_empty = offset == len;
        loop {
            while offset < len || final_empty {
                let n = self.chunk.min(len - offset);
                let Some(permit) = self.permit(n, inflight.is_empty()).await else {
                    if inflight.is_empty() {
                        return Sent::Done(Outcome::Transient(Trouble::WindowClosed));
                    }
                    break;
                };
                if failed.load(Ordering::Acquire) {
                    break;
                }
                let prefetched = content
                    .take()
                    .filter(|c| offset == 0 && c.len() as u64 == n);
                let data = match prefetched {
                    Some(d) => d,
                    None => match self.ctx.store.read_range(self.header.id, offset, n).await {
                        Ok(d) => d,
                        Err(e) => return Sent::Done(Outcome::Transient(Trouble::Read(e))),
                    },
                };
                inflight.push_back(self.spawn_chunk(offset, data, permit, failed.clone()));
                offset += n;
                final_empty = false;
            }
            let Some(joined) = inflight.next().await else {
                return Sent::Done(Outcome::Transient(Trouble::Unusable("nothing to a push")));
            };
            if let Ok(Ok(push::Response::Offset(held))) = &joined {
                let key = (self.header.id, self.peer, Direction::Out);
                let now = std::time::Instant::now();
                self.ctx.transfers().progress(key, *held, len, now);
            }
            match answer(joined, len) {
                Some(sent) => return sent,
                None => continue,
            }
        }
    }

    /// A window slot for `n` bytes: waits for one when nothing is in flight (`must`), else
    /// takes one only if it is free. `None`: no slot now (or the window closed).
    async fn permit(&self, n: u64, must: bool) -> Option<OwnedSemaphorePermit> {
        let units = plan::units(n, usize::MAX);
        if must {
            self.window.clone().acquire_many_owned(units).await.ok()
        } else {
            self.window.clone().try_acquire_many_owned(units).ok()
        }
    }

    fn spawn_chunk(
        &self,
        offset: u64,
        data: Vec<u8>,
        permit: OwnedSemaphorePermit,
        failed: Arc<AtomicBool>,
    ) -> JoinHandle<ChunkAnswer> {
        Counters::add(&self.ctx.counters.bytes_sent, data.len() as u64);
        let request = push::Request::Chunk {
            header: Box::new((*self.header).clone()),
            offset,
            data,
        };
        let net = self.ctx.net.clone();
        let peer = self.peer;
        tokio::spawn(async move {
            let r = net.push(peer, Frame::Ok(request)).await;
            if !matches!(r, Ok(push::Response::Offset(_))) {
                failed.store(true, Ordering::Release);
            }
            drop(permit);
            r
        })
    }
}

/// What the answer to one chunk means: `None` to go on, or how the run ends.
fn answer(joined: Result<ChunkAnswer, tokio::task::JoinError>, len: u64) -> Option<Sent> {
    let outcome = match joined {
        Err(e) => Outcome::Transient(Trouble::Task(e)),
        Ok(Err(e)) => Outcome::Connection(e),
        Ok(Ok(push::Response::Offset(n))) if n >= len => Outcome::Delivered { duplicate: false },
        Ok(Ok(push::Response::Offset(_))) => return None,
        Ok(Ok(push::Response::Error(WireError {
            code: Code::IncorrectOffset { have },
            ..
        }))) => return Some(Sent::Restart { have }),
        Ok(Ok(push::Response::Error(e))) => classify(e),
        Ok(Ok(push::Response::Batch(_))) => {
            Outcome::Transient(Trouble::Unusable("a batch to a chunk"))
        }
    };
    Some(Sent::Done(outcome))
}

/// Pushes small messages whole, several per request: one request per message would cap a peer
/// at the few thousand requests per second a libp2p request-response stream pair manages.
pub(super) async fn batch(
    ctx: &Arc<Ctx>,
    peer: PeerId,
    mut batch: Vec<Candidate>,
    window: &Arc<Semaphore>,
    window_units: usize,
) -> Vec<(Candidate, Outcome)> {
    // Batches count against the same byte window as chunks.
    let bytes: u64 = batch.iter().map(|c| c.stored.header.length).sum();
    let units = plan::units(bytes, window_units);
    let Ok(_permit) = window.clone().acquire_many_owned(units).await else {
        return batch
            .into_iter()
            .map(|c| (c, Outcome::Transient(Trouble::WindowClosed)))
            .collect();
    };
    if let Err(e) = ctx.auth.push_request(&peer, std::time::Instant::now()) {
        return batch
            .into_iter()
            .map(|c| (c, Outcome::Transient(Trouble::OutRate(e.clone()))))
            .collect();
    }
    let mut messages = Vec::with_capacity(batch.len());
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
    let outcomes: Vec<Outcome> = match answer {
        Ok(push::Response::Batch(items)) if items.len() == batch.len() => items
            .into_iter()
            .map(|item| item.map_or(Outcome::Delivered { duplicate: false }, classify))
            .collect(),
        Ok(push::Response::Error(e)) => batch.iter().map(|_| classify(e.clone())).collect(),
        Ok(_) => batch
            .iter()
            .map(|_| Outcome::Transient(Trouble::Unusable("a batch answer that does not fit")))
            .collect(),
        Err(e) => batch
            .iter()
            .map(|_| Outcome::Connection(e.clone()))
            .collect(),
    };
    batch.into_iter().zip(outcomes).collect()
}
