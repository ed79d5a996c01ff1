//! Answers inbound requests: authorise, validate, write through the store, reply.
//!
//! Each request runs as its own task. Chunks of one message may arrive out of order (requests on
//! one connection run in parallel), so a [`Slot`] per message in transfer holds the open
//! [`Transfer`] and lets an early chunk wait, briefly and boundedly, for the bytes before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tokio::sync::watch;
use tracing::Instrument;

use super::auth::{Action, Denied};
use super::{Ctx, NodeEvent};
use crate::message::{Header, MessageId, ValidationError};
use crate::net::Inbound;
use crate::node::counters::Counters;
use crate::protocol::{diff, names, push, repo, Code, Frame, WireError};
use crate::store::{self, Offset, Transfer};

/// How far ahead of the held bytes a chunk may start and still be waited for.
pub(super) const REORDER_WINDOW: u64 = 64 * push::MAX_CHUNK as u64;
/// How long an early chunk waits for the bytes before it.
pub(super) const REORDER_WAIT: Duration = Duration::from_secs(10);
/// A transfer with no chunk for this long is closed (its bytes stay, for resuming).
pub(super) const SLOT_IDLE: Duration = Duration::from_secs(30);

/// One message being received from one peer.
struct Slot {
    peer: PeerId,
    /// The validated header the transfer was admitted with; the headers of later chunks are
    /// ignored, so a chunk cannot swap in other signed fields under the same id.
    header: Header,
    transfer: tokio::sync::Mutex<Option<Transfer>>,
    progress: watch::Sender<Progress>,
    last_active: Mutex<Instant>,
}

/// Bytes held, and a generation that a `resume-offset` bumps: chunks still waiting from before
/// the resume are stale (the sender will resend them) and must not be written after it.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    held: u64,
    generation: u64,
}

impl Slot {
    fn held(&self) -> u64 {
        self.progress.borrow().held
    }

    fn set_held(&self, held: u64) {
        self.progress.send_modify(|p| p.held = held);
    }
}

/// The inbound side of a node.
pub(super) struct Handler {
    ctx: Arc<Ctx>,
    slots: Mutex<HashMap<MessageId, Arc<Slot>>>,
}

fn err(code: Code, message: impl Into<String>) -> WireError {
    WireError::new(code, message)
}

fn validation_code(e: &ValidationError) -> Code {
    match e {
        ValidationError::TooManyHops { .. } => Code::TooManyHops,
        ValidationError::TooBig { .. } => Code::TooBig,
        ValidationError::Expired { .. } => Code::Expired,
        ValidationError::FromTheFuture { .. } => Code::NotYetValid,
        ValidationError::InvalidSignature
        | ValidationError::IdMismatch { .. }
        | ValidationError::BadSenderKey => Code::InvalidSignature,
        _ => Code::BadRequest,
    }
}

fn denied(e: Denied) -> WireError {
    match e {
        Denied::RateLimited(..) => err(Code::RateLimitExceeded, e.to_string()),
        _ => err(Code::NotAuthorized, e.to_string()),
    }
}

fn store_error(e: store::Error) -> WireError {
    match e {
        store::Error::AlreadyStored(_) => err(Code::AlreadySeen, e.to_string()),
        store::Error::Busy(_) => err(Code::Busy, e.to_string()),
        store::Error::IncorrectOffset { have, .. } => {
            err(Code::IncorrectOffset { have }, e.to_string())
        }
        store::Error::TooLong { .. } => err(Code::BadRequest, e.to_string()),
        store::Error::ContentMismatch(_) => err(Code::ContentMismatch, e.to_string()),
        store::Error::NotFound(_) => err(Code::NotFound, e.to_string()),
        store::Error::OutOfRange { .. } => err(Code::BadRequest, e.to_string()),
        // Our own trouble (disk, shutdown): the peer may retry later.
        other => {
            tracing::error!(error = %other, "store failure while serving a request");
            err(Code::Busy, "receiver storage failure; retry later")
        }
    }
}

impl Handler {
    pub(super) fn new(ctx: Arc<Ctx>) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            slots: Mutex::new(HashMap::new()),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes transfers that stalled; their partial bytes stay in the store for resuming.
    pub(super) fn reap_idle(&self, now: Instant) {
        self.slots().retain(|id, slot| {
            let idle =
                now.duration_since(*slot.last_active.lock().unwrap_or_else(|p| p.into_inner()));
            let keep = idle < SLOT_IDLE;
            if !keep {
                tracing::debug!(id = %id.short(), peer = %slot.peer, "closing stalled transfer");
            }
            keep
        });
    }

    /// Serves one request; spawned per request by the node.
    pub(super) async fn handle(self: Arc<Self>, peer: PeerId, inbound: Inbound) {
        let net = self.ctx.net.clone();
        let span = tracing::debug_span!("inbound", %peer);
        async move {
            let result = match inbound {
                Inbound::Diff(frame, ch) => {
                    let r = self.diff(peer, frame).await;
                    let r = self
                        .account(r)
                        .map_or_else(diff::Response::Error, diff::Response::Has);
                    net.respond_diff(ch, r).await
                }
                Inbound::Push(frame, ch) => {
                    let r = self.push(peer, frame).await;
                    let r = self.account(r).unwrap_or_else(push::Response::Error);
                    net.respond_push(ch, r).await
                }
                Inbound::Repo(frame, ch) => {
                    let r = self.repo(peer, frame).await;
                    let r = self.account(r).unwrap_or_else(repo::Response::Error);
                    net.respond_repo(ch, r).await
                }
                // This node has no names yet: it answers every exchange with none.
                Inbound::Names(_, ch) => net.respond_names(ch, names::Response::empty()).await,
            };
            if result.is_err() {
                tracing::debug!("network gone before the response could be sent");
            }
        }
        .instrument(span)
        .await
    }

    /// Counts refusals by code (already-seen counts as a duplicate).
    fn account<T>(&self, r: Result<T, WireError>) -> Result<T, WireError> {
        if let Err(e) = &r {
            match e.code {
                Code::AlreadySeen => Counters::add(&self.ctx.counters.duplicates, 1),
                _ => self.ctx.counters.reject(e.code.name()),
            }
            tracing::debug!(code = e.code.name(), message = %e.message, "request refused");
        }
        r
    }

    /// Unwraps a decoded request. Bytes that are not a request at all count against the peer
    /// in ring selection; requests refused by policy (limits, validation) do not.
    fn frame<T>(&self, peer: PeerId, frame: Frame<T>) -> Result<T, WireError> {
        if !matches!(frame, Frame::Ok(_)) {
            let net = self.ctx.net.clone();
            tokio::spawn(async move { net.report_error(peer).await });
        }
        match frame {
            Frame::Ok(t) => Ok(t),
            Frame::Malformed(why) => {
                Err(err(Code::BadRequest, format!("malformed request: {why}")))
            }
            Frame::TooBig { limit } => Err(err(
                Code::TooBig,
                format!("request over the limit of {limit} bytes"),
            )),
        }
    }

    async fn diff(
        &self,
        peer: PeerId,
        frame: Frame<diff::Request>,
    ) -> Result<Vec<bool>, WireError> {
        self.ctx.auth.inbound(&peer, Action::Diff).map_err(denied)?;
        let request = self.frame(peer, frame)?;
        if request.ids.len() > diff::MAX_IDS {
            return Err(err(
                Code::BadRequest,
                format!(
                    "{} ids offered; at most {} per request",
                    request.ids.len(),
                    diff::MAX_IDS
                ),
            ));
        }
        self.ctx.store.has(request.ids).await.map_err(store_error)
    }

    async fn repo(
        &self,
        peer: PeerId,
        frame: Frame<repo::Request>,
    ) -> Result<repo::Response, WireError> {
        self.ctx.auth.inbound(&peer, Action::Repo).map_err(denied)?;
        match self.frame(peer, frame)? {
            repo::Request::Manifest { after, limit } => {
                let limit = limit.clamp(1, repo::MAX_PAGE) as usize;
                let after = after.map(|c| (c.created_ms, c.id));
                let page = self
                    .ctx
                    .store
                    .manifest(after, limit, crate::message::now_ms())
                    .await
                    .map_err(store_error)?;
                let next = (page.len() == limit)
                    .then(|| page.last())
                    .flatten()
                    .map(|s| repo::Cursor {
                        created_ms: s.header.created_ms,
                        id: s.header.id,
                    });
                Ok(repo::Response::Manifest {
                    headers: page.into_iter().map(|s| s.header).collect(),
                    next,
                })
            }
            repo::Request::Pull { id, offset, length } => {
                if length > repo::MAX_PULL {
                    return Err(err(
                        Code::TooBig,
                        format!(
                            "pull of {length} bytes; at most {} per request",
                            repo::MAX_PULL
                        ),
                    ));
                }
                let data = self
                    .ctx
                    .store
                    .read_range(id, offset, length)
                    .await
                    .map_err(store_error)?;
                Ok(repo::Response::Chunk(data))
            }
        }
    }

    async fn push(
        &self,
        peer: PeerId,
        frame: Frame<push::Request>,
    ) -> Result<push::Response, WireError> {
        self.ctx.auth.inbound(&peer, Action::Push).map_err(denied)?;
        match self.frame(peer, frame)? {
            push::Request::ResumeOffset { id } => self
                .resume_offset(peer, id)
                .await
                .map(push::Response::Offset),
            push::Request::Chunk {
                header,
                offset,
                data,
            } => self
                .chunk(peer, *header, offset, data)
                .await
                .map(push::Response::Offset),
            push::Request::Batch(messages) => self.batch(peer, messages).await,
        }
    }

    /// Stores each message of a batch as if it came alone; they share group commits.
    async fn batch(
        &self,
        peer: PeerId,
        messages: Vec<push::Whole>,
    ) -> Result<push::Response, WireError> {
        if messages.len() > push::MAX_BATCH {
            return Err(err(
                Code::BadRequest,
                format!(
                    "batch of {} messages; at most {}",
                    messages.len(),
                    push::MAX_BATCH
                ),
            ));
        }
        let results = futures::future::join_all(messages.into_iter().map(|m| async move {
            let r = if m.data.len() as u64 != m.header.length {
                Err(err(
                    Code::BadRequest,
                    format!(
                        "batched message carries {} of {} bytes",
                        m.data.len(),
                        m.header.length
                    ),
                ))
            } else {
                self.chunk(peer, m.header, 0, m.data).await.map(|_| ())
            };
            self.account(r).err()
        }))
        .await;
        Ok(push::Response::Batch(results))
    }

    async fn resume_offset(&self, peer: PeerId, id: MessageId) -> Result<u64, WireError> {
        let slot = self.slots().get(&id).cloned();
        if let Some(slot) = slot {
            // Only the slot's owner restarts its transfer; anyone else only learns the offset.
            if slot.peer == peer {
                slot.progress.send_modify(|p| p.generation += 1);
            }
            return Ok(slot.held());
        }
        match self.ctx.store.offset(id).await.map_err(store_error)? {
            Offset::Complete => Err(err(
                Code::AlreadySeen,
                format!("message {id} is already stored"),
            )),
            Offset::Partial(n) => Ok(n),
            Offset::Unknown => Ok(0),
        }
    }

    /// Checks a header before any of its content is accepted.
    fn admit(&self, header: &Header) -> Result<(), WireError> {
        header
            .validate(crate::message::now_ms(), &self.ctx.config.limits)
            .map_err(|e| err(validation_code(&e), e.to_string()))?;
        self.ctx.auth.sender(header).map_err(denied)?;
        let for_me = header.is_broadcast() || header.recipient == self.ctx.peer_id.to_string();
        if !self.ctx.config.relay && !for_me {
            return Err(err(
                Code::NoRoute,
                format!(
                    "this node does not relay; message is for {}",
                    header.recipient
                ),
            ));
        }
        Ok(())
    }

    async fn chunk(
        &self,
        peer: PeerId,
        header: Header,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, WireError> {
        let id = header.id;
        if data.len() > push::MAX_CHUNK {
            return Err(err(
                Code::TooBig,
                format!("chunk of {} bytes; at most {}", data.len(), push::MAX_CHUNK),
            ));
        }
        let existing = self.slots().get(&id).cloned();
        let slot = match existing {
            Some(slot) => slot,
            None => {
                self.admit(&header)?;
                let whole = offset == 0 && data.len() as u64 == header.length;
                if whole && header.length <= self.ctx.config.store.inline_max {
                    // The common case: a small message in one request, one group commit.
                    let len = data.len() as u64;
                    let stored = self
                        .ctx
                        .store
                        .put_from(header, data, Some(peer.to_bytes()))
                        .await
                        .map_err(store_error)?;
                    Counters::add(&self.ctx.counters.content_transfers, 1);
                    Counters::add(&self.ctx.counters.bytes_received, len);
                    self.stored(peer, stored).await;
                    return Ok(len);
                }
                let mut slots = self.slots();
                let slot = slots.entry(id).or_insert_with(|| {
                    Arc::new(Slot {
                        peer,
                        header,
                        transfer: tokio::sync::Mutex::new(None),
                        progress: watch::channel(Progress::default()).0,
                        last_active: Mutex::new(Instant::now()),
                    })
                });
                slot.clone()
            }
        };
        if slot.peer != peer {
            return Err(err(
                Code::Busy,
                format!("message {id} is being received from another peer"),
            ));
        }
        *slot.last_active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();

        // Open the store's transfer before any offset check, so a resumed transfer starts
        // from the bytes the store already holds.
        {
            let mut guard = slot.transfer.lock().await;
            if guard.is_none() {
                let opened = self
                    .ctx
                    .store
                    .begin_write_from(slot.header.clone(), Some(peer.to_bytes()))
                    .await;
                match opened {
                    Ok(t) => {
                        Counters::add(&self.ctx.counters.content_transfers, 1);
                        slot.set_held(t.offset());
                        *guard = Some(t);
                    }
                    Err(e) => {
                        self.slots().remove(&id);
                        return Err(store_error(e));
                    }
                }
            }
        }

        // Wait (boundedly) for the chunks before this one, unless a resume makes it stale.
        let Progress { held, generation } = *slot.progress.borrow();
        if offset > held {
            let incorrect = |have| {
                err(
                    Code::IncorrectOffset { have },
                    format!("incorrect offset (got {offset}, have {have})"),
                )
            };
            if offset - held > REORDER_WINDOW {
                return Err(incorrect(held));
            }
            let mut rx = slot.progress.subscribe();
            let waited = rx.wait_for(|p| p.held >= offset || p.generation != generation);
            let reached = tokio::time::timeout(REORDER_WAIT, waited)
                .await
                .is_ok_and(|r| r.is_ok());
            let now = *slot.progress.borrow();
            if !reached || now.generation != generation {
                return Err(incorrect(now.held));
            }
        }

        let mut guard = slot.transfer.lock().await;
        let Some(transfer) = guard.as_mut() else {
            return Err(err(Code::Busy, "transfer closed"));
        };
        let len = data.len() as u64;
        let next = transfer.append(offset, data).await.map_err(store_error)?;
        slot.set_held(next);
        Counters::add(&self.ctx.counters.bytes_received, len);
        let _ = self.ctx.events.send(NodeEvent::Chunk {
            id,
            peer,
            offset: next,
        });
        if !transfer.is_complete() {
            return Ok(next);
        }
        let Some(transfer) = guard.take() else {
            return Err(err(Code::Busy, "transfer closed"));
        };
        self.slots().remove(&id);
        drop(guard);
        let stored = transfer.finish().await.map_err(store_error)?;
        self.stored(peer, stored).await;
        Ok(next)
    }

    /// A message from `peer` is stored complete.
    async fn stored(&self, peer: PeerId, stored: store::Stored) {
        let id = stored.header.id;
        Counters::add(&self.ctx.counters.messages_received, 1);
        // The store recorded the peer as having it (same commit): it is never pushed back.
        tracing::debug!(id = %id.short(), hops = stored.header.hops.len(), "received message");
        self.ctx.announce(id, Some(peer));
    }
}
