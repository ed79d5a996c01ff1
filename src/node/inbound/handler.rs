//! One task per inbound request: diff, repository and push requests, and their answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libp2p::PeerId;
use tracing::Instrument;

use super::claims::Claims;
use super::codes::{denied, err, store_error};
use super::slot::Slot;
use crate::message::MessageId;
use crate::net::Inbound;
use crate::node::counters::Counters;
use crate::node::ctx::Ctx;
use crate::node::exchange;
use crate::node::transfers::Direction;
use crate::protocol::{diff, names, push, repo, Code, Frame, WireError};
use crate::store::Offset;

/// The inbound side of a node.
pub(in crate::node) struct Handler {
    pub(super) ctx: Arc<Ctx>,
    pub(super) slots: Mutex<HashMap<MessageId, Arc<Slot>>>,
    claims: Mutex<Claims>,
}

impl Handler {
    pub(in crate::node) fn new(ctx: Arc<Ctx>) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            slots: Mutex::new(HashMap::new()),
            claims: Mutex::new(Claims::default()),
        })
    }

    pub(super) fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes transfers that stalled; their partial bytes stay in the store for resuming.
    pub(in crate::node) fn reap_idle(&self, now: Instant) {
        self.slots().retain(|id, slot| {
            let idle = slot.activity().idle(now);
            if idle {
                tracing::debug!(id = %id.short(), peer = %slot.peer, "closing stalled transfer");
                let key = (*id, slot.peer, Direction::In);
                self.ctx.transfers().end(&key);
            }
            !idle
        });
    }

    /// Serves one request; spawned per request by the node.
    pub(in crate::node) async fn handle(self: Arc<Self>, peer: PeerId, inbound: Inbound) {
        let net = self.ctx.net.clone();
        let span = tracing::debug_span!("inbound", %peer);
        async move {
            let result = match inbound {
                Inbound::Diff(frame, ch) => {
                    let r = self.diff(peer, frame).await;
                    let r = self.account(r).unwrap_or_else(diff::Response::Error);
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
                Inbound::Names(frame, ch) => {
                    let r = self.names(peer, frame);
                    let r = self.account(r).unwrap_or_else(|_| names::Response::empty());
                    let sent = net.respond_names(ch, r).await;
                    exchange::update_trust(&self.ctx, &[peer]).await;
                    sent
                }
            };
            if result.is_err() {
                tracing::debug!("network gone before the response could be sent");
            }
        }
        .instrument(span)
        .await
    }

    /// Answers `busy` without looking at the request: the node serves as many requests as it
    /// can hold at once, and the peer retries later.
    pub(in crate::node) async fn refuse_busy(self: Arc<Self>, peer: PeerId, inbound: Inbound) {
        let busy = || {
            err(
                Code::Busy,
                "receiver is serving too many requests; retry later",
            )
        };
        self.ctx.counters.reject(Code::Busy.name());
        tracing::debug!(%peer, "inbound request refused: at capacity");
        let net = &self.ctx.net;
        let _ = match inbound {
            Inbound::Diff(_, ch) => net.respond_diff(ch, diff::Response::Error(busy())).await,
            Inbound::Push(_, ch) => net.respond_push(ch, push::Response::Error(busy())).await,
            Inbound::Repo(_, ch) => net.respond_repo(ch, repo::Response::Error(busy())).await,
            Inbound::Names(_, ch) => net.respond_names(ch, names::Response::empty()).await,
        };
    }

    /// Block list, flood guard and `in` list for a request of `peer`. A peer that keeps
    /// asking after being refused for its rate is cut off for a while ([`crate::node::cooldown`]).
    pub(super) fn admit_peer(&self, peer: PeerId) -> Result<(), WireError> {
        let Err(denial) = self.ctx.auth.inbound(&peer) else {
            return Ok(());
        };
        if denial.is_transient() {
            if let Some(duration) = self.ctx.auth.strike(&peer, std::time::Instant::now()) {
                Counters::add(&self.ctx.counters.peers_cooled_down, 1);
                let net = self.ctx.net.clone();
                tokio::spawn(async move { net.cool_down(peer, duration).await });
            }
        }
        Err(denied(denial))
    }

    /// Counts refusals by code (already-seen counts as a duplicate).
    pub(super) fn account<T>(&self, r: Result<T, WireError>) -> Result<T, WireError> {
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

    /// A names exchange: record the names the peer proves, answer with ours. Everyone may ask
    /// (it is how a caller proves its names), within the block list and the flood guard.
    fn names(
        &self,
        peer: PeerId,
        frame: Frame<names::Request>,
    ) -> Result<names::Response, WireError> {
        self.ctx.auth.not_blocked(&peer).map_err(denied)?;
        let request = self.frame(peer, frame)?;
        exchange::learn(&self.ctx, peer, request.chains());
        Ok(exchange::own_chains(&self.ctx))
    }

    async fn diff(
        &self,
        peer: PeerId,
        frame: Frame<diff::Request>,
    ) -> Result<diff::Response, WireError> {
        self.admit_peer(peer)?;
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
        let held = self
            .ctx
            .store
            .has(request.ids.clone())
            .await
            .map_err(store_error)?;
        // Claims are taken for every asker (an old sender that cannot hear `claimed` still
        // pushes what it was told is lacking), but only reported to those who asked.
        let now = Instant::now();
        let states: Vec<diff::State> = {
            let slots = self.slots();
            let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
            request
                .ids
                .iter()
                .zip(&held)
                .map(|(id, &held)| {
                    let receiving = slots.get(id).map(|slot| slot.peer);
                    claims.answer(peer, *id, held, receiving, now)
                })
                .collect()
        };
        Ok(if request.claim {
            diff::Response::States(states)
        } else {
            diff::Response::Has(held)
        })
    }

    async fn repo(
        &self,
        peer: PeerId,
        frame: Frame<repo::Request>,
    ) -> Result<repo::Response, WireError> {
        self.admit_peer(peer)?;
        match self.frame(peer, frame)? {
            repo::Request::Manifest { after, limit } => self.manifest(after, limit).await,
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

    /// One page of the manifest: complete, unexpired messages in creation order.
    async fn manifest(
        &self,
        after: Option<repo::Cursor>,
        limit: u32,
    ) -> Result<repo::Response, WireError> {
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

    async fn push(
        &self,
        peer: PeerId,
        frame: Frame<push::Request>,
    ) -> Result<push::Response, WireError> {
        self.admit_peer(peer)?;
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
}
