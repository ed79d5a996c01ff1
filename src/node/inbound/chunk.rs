//! The push of one message's content: admit its header, take the fast path for a small whole
//! message, or open a transfer slot that chunks (possibly out of order) fill until it completes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use libp2p::PeerId;
use tokio::sync::watch;

use super::codes::{denied, err, invalid, refused, store_error};
use super::handler::Handler;
use super::reorder::{self, Activity, Progress, Turn, REORDER_WAIT};
use super::slot::Slot;
use crate::message::Header;
use crate::node::counters::Counters;
use crate::node::ctx::peer_key;
use crate::node::transfers::Direction;
use crate::node::{relay, NodeEvent};
use crate::protocol::{Code, WireError};
use crate::store;

fn incorrect(offset: u64, have: u64) -> WireError {
    err(
        Code::IncorrectOffset { have },
        format!("incorrect offset (got {offset}, have {have})"),
    )
}

impl Handler {
    /// Checks a header before any of its content is accepted.
    pub(super) fn admit(&self, header: &Header) -> Result<(), WireError> {
        header
            .validate(crate::message::now_ms(), &self.ctx.config.limits)
            .map_err(|e| invalid(&e))?;
        self.ctx.auth.sender(header).map_err(denied)?;
        relay::accepts(
            header,
            &self.ctx.me,
            self.ctx.config.relay,
            crate::message::now_ms(),
        )
        .map_err(refused)
    }

    /// Handles one chunk (push.md 4.3); answers the offset held after it.
    pub(super) async fn chunk(
        &self,
        peer: PeerId,
        header: Header,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, WireError> {
        let id = header.id;
        let existing = self.slots().get(&id).cloned();
        let length = existing.as_ref().map_or(header.length, |s| s.header.length);
        reorder::check_chunk(offset, data.len(), length).map_err(|e| {
            let code = match e {
                reorder::BadChunk::TooBig { .. } => Code::TooBig,
                _ => Code::BadRequest,
            };
            err(code, e.to_string())
        })?;
        let (slot, data) = match existing {
            Some(slot) => (slot, data),
            None => match self.open_slot(peer, header, offset, data).await? {
                Opened::Stored(len) => return Ok(len),
                Opened::Slot(slot, data) => (slot, data),
            },
        };
        self.fill(peer, &slot, offset, data).await
    }

    /// A chunk for a message without a slot: the fast path for a small whole message, or a
    /// new slot owned by `peer`.
    async fn open_slot(
        &self,
        peer: PeerId,
        header: Header,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Opened, WireError> {
        self.admit(&header)?;
        let whole = offset == 0 && data.len() as u64 == header.length;
        if whole && header.length <= self.ctx.config.store.inline_max {
            // The common case: a small message in one request, one group commit.
            let len = data.len() as u64;
            let stored = self
                .ctx
                .store
                .put_from(header, data, Some(peer_key(&peer)))
                .await
                .map_err(store_error)?;
            Counters::add(&self.ctx.counters.content_transfers, 1);
            Counters::add(&self.ctx.counters.bytes_received, len);
            self.stored(peer, stored);
            return Ok(Opened::Stored(len));
        }
        let slot = self.new_slot(peer, header).await?;
        Ok(Opened::Slot(slot, data))
    }

    /// Opens a slot owned by `peer` for an admitted header (push.md 4.3 step 2.3), or finds the
    /// one that appeared meanwhile: takes the declared length from the quota first, and refuses
    /// (`busy`, `storage-full`) when the peer or the node has too much open.
    pub(super) async fn new_slot(
        &self,
        peer: PeerId,
        header: Header,
    ) -> Result<Arc<Slot>, WireError> {
        let id = header.id;
        let is_new = !self.slots().contains_key(&id);
        let free = if is_new {
            // The quota takes the whole declared length, by eviction if need be, before a slot
            // opens: a message that cannot fit is refused before any of its bytes arrive.
            self.ctx
                .store
                .make_room(&header)
                .await
                .map_err(store_error)?;
            self.ctx.store.free_disk_bytes().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot tell the free disk space; the quota alone limits transfers");
                u64::MAX
            })
        } else {
            u64::MAX
        };
        let mut slots = self.slots();
        if !slots.contains_key(&id) {
            let open = slots
                .values()
                .map(|s| (s.peer, s.header.length.saturating_sub(s.held())));
            reorder::may_open(open, &peer, header.length, free).map_err(|e| {
                let code = if e.is_space() {
                    Code::StorageFull
                } else {
                    Code::Busy
                };
                err(code, e.to_string())
            })?;
        }
        let slot = slots
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Slot {
                    peer,
                    header,
                    transfer: tokio::sync::Mutex::new(None),
                    progress: watch::channel(Progress::default()).0,
                    activity: Mutex::new(Activity::new(Instant::now())),
                })
            })
            .clone();
        Ok(slot)
    }

    /// Writes a chunk into its slot: open the store's transfer, wait for earlier chunks,
    /// append, and finish the message when every byte is held.
    async fn fill(
        &self,
        peer: PeerId,
        slot: &Arc<Slot>,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, WireError> {
        let id = slot.header.id;
        if slot.peer != peer {
            return Err(err(
                Code::Busy,
                format!("message {id} is being received from another peer"),
            ));
        }
        slot.activity().touch(Instant::now());
        self.open_transfer(peer, slot).await?;
        self.wait_turn(slot, offset).await?;

        let mut guard = slot.transfer.lock().await;
        let Some(transfer) = guard.as_mut() else {
            return Err(err(Code::Busy, "transfer closed"));
        };
        let len = data.len() as u64;
        let next = transfer.append(offset, data).await.map_err(store_error)?;
        self.progressed(slot, next, len);
        if !transfer.is_complete() {
            return Ok(next);
        }
        let Some(transfer) = guard.take() else {
            return Err(err(Code::Busy, "transfer closed"));
        };
        self.close_slot(slot);
        drop(guard);
        let stored = transfer.finish().await.map_err(store_error)?;
        self.stored(peer, stored);
        Ok(next)
    }

    /// Records that the slot's transfer now holds `held` bytes, `added` of them just now.
    pub(super) fn progressed(&self, slot: &Slot, held: u64, added: u64) {
        let (id, peer) = (slot.header.id, slot.peer);
        slot.set_held(held);
        let key = (id, peer, Direction::In);
        self.ctx
            .transfers()
            .progress(key, held, slot.header.length, Instant::now());
        Counters::add(&self.ctx.counters.bytes_received, added);
        let _ = self.ctx.events.send(NodeEvent::Chunk {
            id,
            peer,
            offset: held,
        });
    }

    /// Ends a slot's transfer (complete, or given up): the slot leaves the table unless another
    /// one has replaced it meanwhile.
    pub(super) fn close_slot(&self, slot: &Arc<Slot>) {
        let id = slot.header.id;
        let mut slots = self.slots();
        if slots.get(&id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&id);
        }
        drop(slots);
        self.ctx.transfers().end(&(id, slot.peer, Direction::In));
    }

    /// Opens the store's transfer on the slot's first chunk, before any offset check, so a
    /// resumed transfer starts from the bytes the store already holds. A slot whose transfer
    /// cannot open is dropped.
    pub(super) async fn open_transfer(&self, peer: PeerId, slot: &Slot) -> Result<(), WireError> {
        let mut guard = slot.transfer.lock().await;
        if guard.is_some() {
            return Ok(());
        }
        let opened = self
            .ctx
            .store
            .begin_write_from(slot.header.clone(), Some(peer_key(&peer)))
            .await;
        match opened {
            Ok(t) => {
                Counters::add(&self.ctx.counters.content_transfers, 1);
                slot.set_held(t.offset());
                *guard = Some(t);
                Ok(())
            }
            Err(e) => {
                self.slots().remove(&slot.header.id);
                Err(store_error(e))
            }
        }
    }

    /// Waits (boundedly) for the chunks before this one, unless a resume makes it stale.
    async fn wait_turn(&self, slot: &Slot, offset: u64) -> Result<(), WireError> {
        let arrived = *slot.progress.borrow();
        match arrived.turn(offset) {
            Turn::Write => return Ok(()),
            Turn::Reject { have } => return Err(incorrect(offset, have)),
            Turn::Wait => {}
        }
        let since = arrived.generation;
        let mut rx = slot.progress.subscribe();
        let waited = rx.wait_for(|p| p.wakes(offset, since));
        // A timeout or a closed channel both end in the check below.
        let _ = tokio::time::timeout(REORDER_WAIT, waited).await;
        let now = *slot.progress.borrow();
        match now.after_wait(offset, since) {
            Turn::Write => Ok(()),
            Turn::Reject { have } => Err(incorrect(offset, have)),
            Turn::Wait => Err(incorrect(offset, now.held)),
        }
    }

    /// A message from `peer` is stored complete.
    pub(super) fn stored(&self, peer: PeerId, stored: store::Stored) {
        let id = stored.header.id;
        Counters::add(&self.ctx.counters.messages_received, 1);
        // The store recorded the peer as having it (same commit): it is never pushed back.
        tracing::debug!(id = %id.short(), hops = stored.header.hops.len(), "received message");
        self.ctx.announce(id, Some(peer));
    }
}

/// What a chunk without a slot led to.
enum Opened {
    /// A small whole message, stored at once; its length.
    Stored(u64),
    /// A new slot, and the chunk's data still to write.
    Slot(Arc<Slot>, Vec<u8>),
}
