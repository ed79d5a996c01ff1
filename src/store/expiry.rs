//! Expiry: removing messages past their lifespan, and partial transfers nobody is writing, with
//! their files and delivery state. Rows go first, files after (see `protocols/store.md`); quota
//! eviction ([`super::quota`]) removes messages the same way, through [`Store::remove`].

use redb::{ReadableTable, WriteTransaction};

use super::tables::{self, PartialRecord, Stored, BY_CREATED, DELIVERY, INLINE, MESSAGES, PARTIAL};
use super::{blocking, remove_if_exists, Error, Store};
use crate::message::MessageId;

/// A complete message to remove, with what its removal needs and frees.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) id: MessageId,
    pub(super) created_ms: u64,
    /// Whether its content is in the index (else `content/<id>`).
    pub(super) inline: bool,
    /// Its declared length: the quota its removal frees.
    pub(super) length: u64,
}

/// What one scan found past its lifespan.
struct Expired {
    /// Complete messages.
    messages: Vec<Row>,
    /// Partial transfers, with their declared lengths.
    partial: Vec<(MessageId, u64)>,
}

impl Store {
    /// Removes expired messages (and expired partial transfers that nobody is writing) with
    /// their files and delivery state. Returns how many messages were removed.
    pub async fn collect_expired(&self, now_ms: u64) -> Result<usize, Error> {
        let store = self.clone();
        let Expired { messages, partial } = blocking(move || store.find_expired(now_ms)).await?;
        let partial: Vec<(MessageId, u64)> = {
            let active = self.active_lock();
            partial
                .into_iter()
                .filter(|(id, _)| !active.contains(id))
                .collect()
        };
        if messages.is_empty() && partial.is_empty() {
            return Ok(0);
        }
        let count = self.remove(messages, partial).await?;
        if count > 0 {
            tracing::info!(count, "collected expired messages");
        }
        Ok(count)
    }

    /// Removes complete messages and partial transfers, rows first (one commit), then files, the
    /// order that keeps a crash harmless (`protocols/store.md`, section 4). The quota gets back
    /// the bytes of the rows the commit actually removed: a row already gone (collected, or
    /// evicted meanwhile) frees nothing twice. Returns how many messages were removed.
    pub(super) async fn remove(
        &self,
        messages: Vec<Row>,
        partial: Vec<(MessageId, u64)>,
    ) -> Result<usize, Error> {
        let rows = messages.clone();
        let dead_partial = partial.clone();
        let (removed, freed) = self
            .inner
            .writer
            .write(move |txn| {
                let (mut removed, mut freed) = (Vec::new(), 0u64);
                for row in &rows {
                    if remove_message_rows(txn, row.created_ms, row.id.as_bytes())? {
                        removed.push(row.id);
                        freed = freed.saturating_add(row.length);
                    }
                }
                let mut table = txn.open_table(PARTIAL)?;
                for (id, length) in &dead_partial {
                    if table.remove(id.as_bytes().as_slice())?.is_some() {
                        freed = freed.saturating_add(*length);
                    }
                }
                Ok((removed, freed))
            })
            .await?;
        self.inner.meter.sub(freed);
        let store = self.clone();
        let count = removed.len();
        blocking(move || {
            // Rows are gone; files without rows are garbage (and swept at start-up if we crash here).
            for row in messages.iter().filter(|r| removed.contains(&r.id)) {
                if !row.inline {
                    remove_if_exists(&store.content_path(&row.id))?;
                }
            }
            for (id, _) in &partial {
                remove_if_exists(&store.partial_path(id))?;
            }
            Ok(())
        })
        .await?;
        Ok(count)
    }

    /// Scans for complete messages and partial transfers that expired before `now_ms`.
    fn find_expired(&self, now_ms: u64) -> Result<Expired, Error> {
        let read = self.begin_read()?;
        let mut messages = Vec::new();
        for row in read.open_table(MESSAGES)?.iter()? {
            let (_, value) = row?;
            let stored: Stored = tables::decode(value.value())?;
            if stored.header.expires_ms() < now_ms {
                messages.push(Row {
                    id: stored.header.id,
                    created_ms: stored.header.created_ms,
                    inline: stored.inline,
                    length: stored.header.length,
                });
            }
        }
        let mut partial = Vec::new();
        for row in read.open_table(PARTIAL)?.iter()? {
            let (_, value) = row?;
            let record: PartialRecord = tables::decode(value.value())?;
            if record.header.expires_ms() < now_ms {
                partial.push((record.header.id, record.header.length));
            }
        }
        Ok(Expired { messages, partial })
    }
}

/// Removes a complete message's rows in every table (message, creation order, inline content,
/// delivery state towards every peer) in `txn`. Its content file, if any, is the caller's.
/// Returns whether the message row was there.
pub(super) fn remove_message_rows(
    txn: &WriteTransaction,
    created: u64,
    key: &[u8],
) -> Result<bool, Error> {
    let existed = txn.open_table(MESSAGES)?.remove(key)?.is_some();
    txn.open_table(BY_CREATED)?.remove((created, key))?;
    txn.open_table(INLINE)?.remove((created, key))?;
    let mut delivery = txn.open_table(DELIVERY)?;
    let peers: Vec<Vec<u8>> = delivery
        .range((key, &[][..])..)?
        .map_while(|row| match row {
            Ok((k, _)) if k.value().0 == key => Some(Ok(k.value().1.to_vec())),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    for peer in &peers {
        delivery.remove((key, peer.as_slice()))?;
    }
    Ok(existed)
}
