//! Expiry: removing messages past their lifespan, and partial transfers nobody is writing, with
//! their files and delivery state. Rows go first, files after (see `protocols/store.md`).

use redb::{ReadableTable, WriteTransaction};

use super::tables::{self, PartialRecord, Stored, BY_CREATED, DELIVERY, INLINE, MESSAGES, PARTIAL};
use super::{blocking, remove_if_exists, Error, Store};
use crate::message::MessageId;

/// What one scan found past its lifespan.
struct Expired {
    /// `(created_ms, id, inline)` of complete messages.
    messages: Vec<(u64, MessageId, bool)>,
    /// Ids of partial transfers.
    partial: Vec<MessageId>,
}

impl Store {
    /// Removes expired messages (and expired partial transfers that nobody is writing) with
    /// their files and delivery state. Returns how many messages were removed.
    pub async fn collect_expired(&self, now_ms: u64) -> Result<usize, Error> {
        let store = self.clone();
        let Expired { messages, partial } = blocking(move || store.find_expired(now_ms)).await?;
        let partial: Vec<MessageId> = {
            let active = self.active_lock();
            partial
                .into_iter()
                .filter(|id| !active.contains(id))
                .collect()
        };
        if messages.is_empty() && partial.is_empty() {
            return Ok(0);
        }
        let rows = messages.clone();
        let dead_partial = partial.clone();
        self.inner
            .writer
            .write(move |txn| {
                for (created, id, _) in &rows {
                    remove_message_rows(txn, *created, id.as_bytes())?;
                }
                let mut table = txn.open_table(PARTIAL)?;
                for id in &dead_partial {
                    table.remove(id.as_bytes().as_slice())?;
                }
                Ok(())
            })
            .await?;
        let store = self.clone();
        let count = messages.len();
        blocking(move || {
            // Rows are gone; files without rows are garbage (and swept at start-up if we crash here).
            for (_, id, inline) in &messages {
                if !inline {
                    remove_if_exists(&store.content_path(id))?;
                }
            }
            for id in &partial {
                remove_if_exists(&store.partial_path(id))?;
            }
            Ok(())
        })
        .await?;
        if count > 0 {
            tracing::info!(count, "collected expired messages");
        }
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
                messages.push((stored.header.created_ms, stored.header.id, stored.inline));
            }
        }
        let mut partial = Vec::new();
        for row in read.open_table(PARTIAL)?.iter()? {
            let (_, value) = row?;
            let record: PartialRecord = tables::decode(value.value())?;
            if record.header.expires_ms() < now_ms {
                partial.push(record.header.id);
            }
        }
        Ok(Expired { messages, partial })
    }
}

/// Removes a complete message's rows in every table (message, creation order, inline content,
/// delivery state towards every peer) in `txn`. Its content file, if any, is the caller's.
pub(super) fn remove_message_rows(
    txn: &WriteTransaction,
    created: u64,
    key: &[u8],
) -> Result<(), Error> {
    txn.open_table(MESSAGES)?.remove(key)?;
    txn.open_table(BY_CREATED)?.remove((created, key))?;
    txn.open_table(INLINE)?.remove(key)?;
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
    Ok(())
}
