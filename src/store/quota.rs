//! The store's quota ([`super::Config::max_bytes`]): how many content bytes it holds, making
//! room by eviction, and refusing what cannot fit.
//!
//! What counts: the declared length of every complete message and of every partial transfer
//! (its `partial-1` row reserves the whole message, however few bytes have arrived), so the
//! bytes a transfer will still write are promised before the first one lands. The index's own
//! overhead (headers, redb pages) is not counted.
//!
//! The count lives in memory and is recomputed from the index at every open
//! (`protocols/store.md`, "Quota and eviction"): nothing about it is on disk, so no crash can
//! leave it out of step with the rows, and an older mule writing to the same store cannot make it
//! stale. In memory it never lags behind the index: a new message reserves its bytes before its
//! row is committed (and gives them back if the commit fails), and removed rows give theirs back
//! only after their commit, counting only rows the commit actually removed.

use std::fmt;

use redb::ReadableTable;

use super::evict::{self, Candidate};
use super::tables::{self, Delivery, PartialRecord, Stored, DELIVERY, MESSAGES, PARTIAL};
use super::{blocking, Error, Offset, Store};
use crate::message::{Header, MessageId};

/// The quota and how much of it is used, for `mule status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Content bytes of complete messages plus declared bytes of transfers in progress.
    pub used: u64,
    /// [`super::Config::max_bytes`].
    pub quota: u64,
}

/// Why a message does not fit in the quota even after every message that may go went: it is
/// larger than the quota itself, or the room is held by this node's own unsent messages (never
/// evicted, the store is their only copy) and by transfers in progress. Transient unless the
/// message is larger than the quota: room comes back as messages are delivered, expire or
/// finish arriving. Nothing was stored and nothing was evicted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Full {
    /// The new message's declared length.
    pub length: u64,
    /// Quota in use when it was refused.
    pub used: u64,
    /// The quota.
    pub quota: u64,
    /// Bytes of this node's own unexpired messages that no peer has yet.
    pub own_unsent: u64,
    /// Declared bytes of transfers in progress (partial messages).
    pub reserved: u64,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (length, quota) = (Size(self.length), Size(self.quota));
        if self.length > self.quota {
            return write!(
                f,
                "store is full: a {length} message is larger than the whole {quota} quota; raise --max-store-bytes"
            );
        }
        write!(
            f,
            "store is full: {} of {quota} quota used, {} of it by this node's own unsent messages and {} by transfers in progress, so a {length} message does not fit; raise --max-store-bytes or wait for them to be delivered",
            Size(self.used),
            Size(self.own_unsent),
            Size(self.reserved),
        )
    }
}

/// A byte count as a person reads it: `512 B`, `1.2 GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        let tenths = (value * 10.0).round() / 10.0;
        if tenths.fract() == 0.0 {
            write!(f, "{tenths:.0} {}", UNITS[unit])
        } else {
            write!(f, "{tenths:.1} {}", UNITS[unit])
        }
    }
}

/// The in-memory count of quota in use.
#[derive(Debug, Default)]
pub(super) struct Meter(std::sync::Mutex<u64>);

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // A poisoned lock only means a panic elsewhere; the number is still valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(&self) -> u64 {
        *self.lock()
    }

    pub(super) fn set(&self, used: u64) {
        *self.lock() = used;
    }

    /// Takes `bytes` if they fit under `quota`.
    fn try_add(&self, bytes: u64, quota: u64) -> bool {
        let mut used = self.lock();
        match used.checked_add(bytes) {
            Some(with) if with <= quota => {
                *used = with;
                true
            }
            _ => false,
        }
    }

    /// Counts bytes that are on disk already, quota or not (a row that a removal did not
    /// find after all).
    pub(super) fn add(&self, bytes: u64) {
        let mut used = self.lock();
        *used = used.saturating_add(bytes);
    }

    /// Gives back bytes whose rows are gone.
    pub(super) fn sub(&self, bytes: u64) {
        let mut used = self.lock();
        *used = used.saturating_sub(bytes);
    }
}

/// Bytes taken from the quota for a message about to be written; given back on drop unless
/// [`Reservation::keep`] says the commit that needs them happened.
#[derive(Debug)]
pub(super) struct Reservation {
    store: Store,
    bytes: u64,
}

impl Reservation {
    /// The rows holding these bytes are committed: they stay counted.
    pub(super) fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.store.inner.meter.sub(self.bytes);
        }
    }
}

/// Eviction runs at most this often per admission: when another admission took the room freed
/// in between, the next round evicts again.
const ROUNDS: usize = 3;
/// Eviction frees this fraction of the quota beyond what the newcomer needs (when it can),
/// so that a stream of messages arriving at a full store does not scan the index once each.
const HEADROOM_DIVISOR: u64 = 64;

/// Writer slots of partial transfers taken for their eviction; released when dropped.
struct Claimed {
    store: Store,
    taken: Vec<(MessageId, u64)>,
}

impl Claimed {
    fn ids(&self) -> impl Iterator<Item = (MessageId, u64)> + '_ {
        self.taken.iter().copied()
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let mut active = self.store.active_lock();
        for (id, _) in &self.taken {
            active.remove(id);
        }
    }
}

/// What one scan found: the evictable view of every complete message and of every partial
/// transfer nobody writes, and the quota all partial transfers reserve.
struct Scan {
    candidates: Vec<Candidate>,
    /// `(created_ms, inline)` of each candidate, in the same order, for removal.
    rows: Vec<(u64, bool)>,
    reserved: u64,
}

impl Store {
    /// The quota and how much of it is in use.
    pub fn usage(&self) -> Usage {
        Usage {
            used: self.inner.meter.get(),
            quota: self.inner.config.max_bytes,
        }
    }

    /// Bytes still free on the disk holding the store: what open transfers may still write
    /// there. A node checks the declared bytes its open transfers still expect against this.
    pub async fn free_disk_bytes(&self) -> Result<u64, Error> {
        let dir = self.inner.dir.clone();
        blocking(move || super::disk::free_bytes(&dir).map_err(Error::io(&dir))).await
    }

    /// Makes room for `header`'s message without keeping it: the check a node makes before it
    /// opens a slot for a transfer, so that a message that cannot fit is refused before any
    /// byte arrives. A message already partly (or wholly) held needs no room.
    pub async fn make_room(&self, header: &Header) -> Result<(), Error> {
        match self.reserve(header.id, header.length).await {
            Ok(_) | Err(Error::AlreadyStored(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes `length` bytes of the quota for message `id`, evicting what may go if they do not
    /// fit (`protocols/store.md`, "Quota and eviction"). Fails with [`Error::QuotaFull`] when
    /// they cannot fit, having evicted nothing. Before evicting it checks that the message is
    /// new: a duplicate fails with [`Error::AlreadyStored`] and one partly held already holds
    /// its bytes (an empty reservation), so neither evicts anything.
    pub(super) async fn reserve(&self, id: MessageId, length: u64) -> Result<Reservation, Error> {
        let quota = self.inner.config.max_bytes;
        let taken = |store: &Store| Reservation {
            store: store.clone(),
            bytes: length,
        };
        if self.inner.meter.try_add(length, quota) {
            return Ok(taken(self));
        }
        match self.offset(id).await? {
            Offset::Complete => return Err(Error::AlreadyStored(id)),
            Offset::Partial(_) => {
                return Ok(Reservation {
                    store: self.clone(),
                    bytes: 0,
                })
            }
            Offset::Unknown => {}
        }
        // One eviction at a time: two would both evict for the same shortfall.
        let _evicting = self.inner.evicting.lock().await;
        let mut last = None;
        for _ in 0..ROUNDS {
            if self.inner.meter.try_add(length, quota) {
                return Ok(taken(self));
            }
            let now_ms = crate::message::now_ms();
            let store = self.clone();
            let scan = blocking(move || store.scan_for_eviction()).await?;
            let used = self.inner.meter.get();
            let full = |own_unsent| Full {
                length,
                used,
                quota,
                own_unsent,
                reserved: scan.reserved,
            };
            if length > quota {
                return Err(Error::QuotaFull(full(own_unsent(&scan, now_ms))));
            }
            let need = used.saturating_add(length).saturating_sub(quota);
            let headroom = need.saturating_add(quota / HEADROOM_DIVISOR);
            let chosen = match evict::plan(&scan.candidates, headroom, now_ms) {
                Ok(ids) => ids,
                Err(_) => match evict::plan(&scan.candidates, need, now_ms) {
                    Ok(ids) => ids,
                    Err(short) => return Err(Error::QuotaFull(full(short.own_unsent))),
                },
            };
            last = Some(full(own_unsent(&scan, now_ms)));
            let chosen: std::collections::HashSet<MessageId> = chosen.into_iter().collect();
            let (mut rows, mut partial) = (Vec::new(), Vec::new());
            for (c, &(created, inline)) in scan.candidates.iter().zip(&scan.rows) {
                if !chosen.contains(&c.id) {
                    continue;
                }
                if c.partial {
                    partial.push((c.id, c.length));
                } else {
                    rows.push(super::expiry::Row {
                        id: c.id,
                        created_ms: created,
                        inline,
                        length: c.length,
                    });
                }
            }
            // A partial transfer is taken like a writer takes it, so no transfer can resume it
            // while it goes; one that resumed since the scan stays.
            let claimed = self.claim(partial);
            // Logged before the removal, so a log reader can tell an evicted message from a
            // lost one even if the node dies before the removal commits (scripts/crash-loop).
            for row in &rows {
                tracing::info!(id = %row.id, length = row.length, "evicting message");
            }
            for (id, length) in claimed.ids() {
                tracing::info!(id = %id, length, "evicting partial transfer");
            }
            let evicted = self.remove(rows, claimed.ids().collect()).await?;
            drop(claimed);
            tracing::info!(evicted, length, "evicted messages to make room");
        }
        if self.inner.meter.try_add(length, quota) {
            return Ok(taken(self));
        }
        let fallback = Full {
            length,
            used: self.inner.meter.get(),
            quota,
            own_unsent: 0,
            reserved: 0,
        };
        Err(Error::QuotaFull(last.unwrap_or(fallback)))
    }

    /// Takes the writer slots of these partial transfers (those nobody holds), until the
    /// returned guard is dropped.
    fn claim(&self, partial: Vec<(MessageId, u64)>) -> Claimed {
        let mut active = self.active_lock();
        let taken = partial
            .into_iter()
            .filter(|(id, _)| active.insert(*id))
            .collect();
        Claimed {
            store: self.clone(),
            taken,
        }
    }

    /// Every complete message and every partial transfer nobody is writing as eviction sees
    /// them, and the bytes all partial transfers reserve (one read snapshot).
    fn scan_for_eviction(&self) -> Result<Scan, Error> {
        let read = self.begin_read()?;
        let messages = read.open_table(MESSAGES)?;
        let delivery = read.open_table(DELIVERY)?;
        let own = self.inner.config.own_key;
        let mut scan = Scan {
            candidates: Vec::new(),
            rows: Vec::new(),
            reserved: 0,
        };
        for row in messages.iter()? {
            let (key, value) = row?;
            let stored: Stored = tables::decode(value.value())?;
            let header = &stored.header;
            let mine = own.is_none_or(|k| k == header.sender);
            let own_unsent = mine && !delivered(&delivery, key.value())?;
            scan.candidates.push(Candidate {
                id: header.id,
                length: header.length,
                partial: false,
                expires_ms: header.expires_ms(),
                own_unsent,
            });
            scan.rows.push((header.created_ms, stored.inline));
        }
        let mut partial = Vec::new();
        for row in read.open_table(PARTIAL)?.iter()? {
            let (_, value) = row?;
            let record: PartialRecord = tables::decode(value.value())?;
            scan.reserved = scan.reserved.saturating_add(record.header.length);
            partial.push(record.header);
        }
        // Only transfers nobody is writing may go (checked again when they are removed).
        let active = self.active_lock();
        for header in partial.iter().filter(|h| !active.contains(&h.id)) {
            scan.candidates.push(Candidate {
                id: header.id,
                length: header.length,
                partial: true,
                expires_ms: header.expires_ms(),
                own_unsent: false,
            });
            scan.rows.push((header.created_ms, false));
        }
        Ok(scan)
    }

    /// The quota in use according to the index: declared lengths of complete messages and
    /// partial transfers. Run at open, after recovery, before the store is shared.
    pub(super) fn measure(&self) -> Result<u64, Error> {
        let read = self.begin_read()?;
        let mut used = 0u64;
        for row in read.open_table(MESSAGES)?.iter()? {
            let (_, value) = row?;
            let stored: Stored = tables::decode(value.value())?;
            used = used.saturating_add(stored.header.length);
        }
        for row in read.open_table(PARTIAL)?.iter()? {
            let (_, value) = row?;
            let record: PartialRecord = tables::decode(value.value())?;
            used = used.saturating_add(record.header.length);
        }
        Ok(used)
    }
}

/// Whether any peer is recorded as having message `key`.
fn delivered(
    delivery: &redb::ReadOnlyTable<(&'static [u8], &'static [u8]), &'static [u8]>,
    key: &[u8],
) -> Result<bool, Error> {
    for row in delivery.range((key, &[][..])..)? {
        let (k, v) = row?;
        if k.value().0 != key {
            break;
        }
        if matches!(tables::decode(v.value())?, Delivery::Sent { .. }) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Bytes of own unsent messages that are still live at `now_ms`.
fn own_unsent(scan: &Scan, now_ms: u64) -> u64 {
    scan.candidates
        .iter()
        .filter(|c| c.own_unsent && c.expires_ms >= now_ms)
        .fold(0, |sum, c| sum.saturating_add(c.length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(Size(0).to_string(), "0 B");
        assert_eq!(Size(1023).to_string(), "1023 B");
        assert_eq!(Size(1024).to_string(), "1 KiB");
        assert_eq!(Size(1536).to_string(), "1.5 KiB");
        assert_eq!(Size(1 << 30).to_string(), "1 GiB");
        assert_eq!(Size((12 << 30) / 10).to_string(), "1.2 GiB");
    }

    #[test]
    fn a_full_store_says_what_holds_the_room() {
        let full = Full {
            length: 1 << 20,
            used: (12 << 30) / 10,
            quota: 1 << 30,
            own_unsent: (12 << 30) / 10,
            reserved: 0,
        };
        assert_eq!(
            full.to_string(),
            "store is full: 1.2 GiB of 1 GiB quota used, 1.2 GiB of it by this node's own unsent \
             messages and 0 B by transfers in progress, so a 1 MiB message does not fit; raise \
             --max-store-bytes or wait for them to be delivered"
        );
        let too_big = Full {
            length: 2 << 30,
            ..full
        };
        assert_eq!(
            too_big.to_string(),
            "store is full: a 2 GiB message is larger than the whole 1 GiB quota; raise --max-store-bytes"
        );
    }
}
