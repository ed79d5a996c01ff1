//! Storing messages: whole ones in memory ([`Store::put`]), and the start of resumable transfers
//! ([`Store::begin_write`]). Both end in [`insert_message`], the one place a message becomes
//! visible.

use redb::{ReadableTable, WriteTransaction};

use super::tables::{self, Delivery, BY_CREATED, DELIVERY, INLINE, MESSAGES, PARTIAL};
use super::{Error, PeerKey, Store, Stored, Transfer};
use crate::message::{content_digest, Header, MessageId};

impl Store {
    /// Stores a complete message whose content is in memory, checking length and sha256.
    /// Small contents are stored inline in one group commit; larger ones go through a file.
    pub async fn put(&self, header: Header, content: Vec<u8>) -> Result<Stored, Error> {
        self.put_from(header, content, None).await
    }

    /// [`Store::put`] for a message received from `from`: the same commit records that peer as
    /// having it, so it is never pushed back.
    pub async fn put_from(
        &self,
        header: Header,
        content: Vec<u8>,
        from: Option<PeerKey>,
    ) -> Result<Stored, Error> {
        let id = header.id;
        if content.len() as u64 != header.length {
            return Err(Error::Incomplete {
                held: content.len() as u64,
                length: header.length,
            });
        }
        if content.len() as u64 > self.inner.config.inline_max {
            let mut transfer = self.begin_write_from(header, from).await?;
            transfer.append(0, content).await?;
            return transfer.finish().await;
        }
        if content_digest(&content) != header.sha256 {
            return Err(Error::ContentMismatch(id));
        }
        let stored = Stored {
            header,
            received_ms: crate::message::now_ms(),
            inline: true,
        };
        let record = tables::encode(&stored)?;
        let (header, received_ms) = (stored.header.clone(), stored.received_ms);
        let reservation = self.reserve(id, stored.header.length).await?;
        let replaced_partial = self
            .inner
            .writer
            .write(move |txn| {
                let replaced = insert_message(txn, &header, &record, Some(&content))?;
                record_source(txn, &header.id, from.as_ref(), received_ms)?;
                Ok(replaced)
            })
            .await?;
        // A partial row it replaced had reserved these bytes already.
        if !replaced_partial {
            reservation.keep();
        }
        tracing::debug!(id = %id.short(), "stored message inline");
        Ok(stored)
    }

    /// Starts (or resumes) receiving a message. Fails with [`Error::AlreadyStored`] if it is
    /// complete, [`Error::Busy`] if another transfer is writing it.
    pub async fn begin_write(&self, header: Header) -> Result<Transfer, Error> {
        Transfer::begin(self.clone(), header, None).await
    }

    /// [`Store::begin_write`] for a message received from `from` (see [`Store::put_from`]).
    pub async fn begin_write_from(
        &self,
        header: Header,
        from: Option<PeerKey>,
    ) -> Result<Transfer, Error> {
        Transfer::begin(self.clone(), header, from).await
    }
}

/// Inserts a complete message's rows (and removes its partial row) in `txn`.
/// Fails with [`Error::AlreadyStored`] if it is already there. Returns whether a partial row was
/// removed: its reservation of the quota now counts for the complete message.
pub(super) fn insert_message(
    txn: &WriteTransaction,
    header: &Header,
    record: &[u8],
    inline: Option<&[u8]>,
) -> Result<bool, Error> {
    let key = header.id.as_bytes().as_slice();
    let mut messages = txn.open_table(MESSAGES)?;
    if messages.get(key)?.is_some() {
        return Err(Error::AlreadyStored(header.id));
    }
    messages.insert(key, record)?;
    txn.open_table(BY_CREATED)?
        .insert((header.created_ms, key), ())?;
    if let Some(content) = inline {
        txn.open_table(INLINE)?
            .insert((header.created_ms, key), content)?;
    }
    let replaced = txn.open_table(PARTIAL)?.remove(key)?.is_some();
    Ok(replaced)
}

/// Marks the peer a message came from as having it, in the transaction that stores it.
pub(super) fn record_source(
    txn: &WriteTransaction,
    id: &MessageId,
    from: Option<&PeerKey>,
    at_ms: u64,
) -> Result<(), Error> {
    if let Some(peer) = from {
        let value = tables::encode(&Delivery::Sent { at_ms })?;
        txn.open_table(DELIVERY)?.insert(
            (id.as_bytes().as_slice(), peer.as_bytes()),
            value.as_slice(),
        )?;
    }
    Ok(())
}
