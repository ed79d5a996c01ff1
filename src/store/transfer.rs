//! A resumable write of one message's content.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::Path;

use redb::ReadableTable;
use sha2::{Digest, Sha256};

use super::tables::{self, PartialRecord, MESSAGES, PARTIAL};
use super::write::{insert_message, record_source};
use super::{blocking, disk, Error, Offset, PeerKey, Store, Stored};
use crate::message::{Header, MessageId};

/// An open transfer: append chunks at the held offset, then [`Transfer::finish`].
///
/// Holding a `Transfer` reserves the message id: a second [`Store::begin_write`] for it gets
/// [`Error::Busy`] until this one is finished or dropped. Dropping it keeps the partial bytes,
/// so a later transfer resumes at [`Transfer::offset`].
#[derive(Debug)]
pub struct Transfer {
    pub(super) store: Store,
    pub(super) header: Header,
    pub(super) file: Option<fs::File>,
    pub(super) held: u64,
    pub(super) hasher: Option<Sha256>,
    /// The peer it comes from, recorded as having it when it is stored.
    from: Option<PeerKey>,
    /// Shared with a [`Sink`](super::Sink)'s writer thread, which may still be appending after
    /// the transfer is dropped: the id stays reserved until both are done.
    pub(super) active: std::sync::Arc<ActiveGuard>,
}

/// Releases the id's writer slot when the transfer ends, however it ends.
#[derive(Debug)]
pub(super) struct ActiveGuard {
    store: Store,
    id: MessageId,
}

impl ActiveGuard {
    /// Takes the id's writer slot, or says [`Error::Busy`] if a transfer (or an adoption)
    /// already holds it.
    pub(super) fn claim(store: &Store, id: MessageId) -> Result<Self, Error> {
        if !store.active_lock().insert(id) {
            return Err(Error::Busy(id));
        }
        Ok(Self {
            store: store.clone(),
            id,
        })
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.store.active_lock().remove(&self.id);
    }
}

impl Transfer {
    pub(super) async fn begin(
        store: Store,
        header: Header,
        from: Option<PeerKey>,
    ) -> Result<Self, Error> {
        let id = header.id;
        let guard = ActiveGuard::claim(&store, id)?;
        let record = tables::encode(&PartialRecord {
            header: header.clone(),
            started_ms: crate::message::now_ms(),
        })?;
        // A partial row reserves the whole declared length: a new one takes it from the quota
        // (evicting if need be) before it is registered; a resumed one holds it already.
        let reservation = match store.offset(id).await? {
            Offset::Complete => return Err(Error::AlreadyStored(id)),
            Offset::Partial(_) => None,
            Offset::Unknown => Some(store.reserve(id, header.length).await?),
        };
        // Register the partial row before any byte lands, so recovery keeps the file.
        let inserted = store
            .inner
            .writer
            .write(move |txn| {
                let key = id.as_bytes().as_slice();
                if txn.open_table(MESSAGES)?.get(key)?.is_some() {
                    return Err(Error::AlreadyStored(id));
                }
                let mut partial = txn.open_table(PARTIAL)?;
                if partial.get(key)?.is_some() {
                    return Ok(false);
                }
                partial.insert(key, record.as_slice())?;
                Ok(true)
            })
            .await?;
        match (inserted, reservation) {
            (true, Some(r)) => r.keep(),
            // The row was removed after the check (collected): it is back, and counts again.
            (true, None) => store.inner.meter.add(header.length),
            // The row appeared after the check: it holds the bytes already.
            (false, r) => drop(r),
        }
        let path = store.partial_path(&id);
        let length = header.length;
        let (file, held, hasher) = blocking(move || open_partial(&path, length)).await?;
        if held > 0 {
            tracing::debug!(id = %id.short(), held, "resuming partial message");
        }
        Ok(Self {
            store,
            header,
            file: Some(file),
            held,
            hasher: Some(hasher),
            from,
            active: std::sync::Arc::new(guard),
        })
    }

    /// Bytes held: the only offset [`Transfer::append`] accepts.
    pub fn offset(&self) -> u64 {
        self.held
    }

    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.held == self.header.length
    }

    /// Appends `data` at `offset`, which must equal [`Transfer::offset`]. Returns the new offset.
    pub async fn append(&mut self, offset: u64, data: Vec<u8>) -> Result<u64, Error> {
        if offset != self.held {
            return Err(Error::IncorrectOffset {
                got: offset,
                have: self.held,
            });
        }
        let end = offset.saturating_add(data.len() as u64);
        if end > self.header.length {
            return Err(Error::TooLong {
                end,
                length: self.header.length,
            });
        }
        if data.is_empty() {
            return Ok(self.held);
        }
        let (Some(file), Some(mut hasher)) = (self.file.take(), self.hasher.take()) else {
            return Err(Error::Shutdown);
        };
        let path = self.store.partial_path(&self.header.id);
        let store = self.store.clone();
        let (file, hasher) = blocking(move || {
            disk::write_content(&store.inner.config, &file, &data, offset)
                .map_err(Error::io(&path))?;
            hasher.update(&data);
            Ok((file, hasher))
        })
        .await?;
        self.file = Some(file);
        self.hasher = Some(hasher);
        self.held = end;
        Ok(end)
    }

    /// Verifies the sha256 and makes the message visible, atomically and durably.
    /// On a mismatch the partial data is discarded and [`Error::ContentMismatch`] returned.
    pub async fn finish(mut self) -> Result<Stored, Error> {
        let id = self.header.id;
        if !self.is_complete() {
            return Err(Error::Incomplete {
                held: self.held,
                length: self.header.length,
            });
        }
        let (Some(file), Some(hasher)) = (self.file.take(), self.hasher.take()) else {
            return Err(Error::Shutdown);
        };
        let store = self.store.clone();
        if <[u8; 32]>::from(hasher.finalize()) != self.header.sha256 {
            drop(file);
            self.discard().await?;
            return Err(Error::ContentMismatch(id));
        }
        let inline = self.header.length <= store.inner.config.inline_max;
        let partial = store.partial_path(&id);
        let content = store.content_path(&id);
        let content_dir = store.inner.dir.join(super::CONTENT_DIR);
        let inline_bytes = blocking(move || {
            if inline {
                let mut bytes = Vec::new();
                let mut file = file;
                file.read_exact_at_all(&mut bytes)
                    .map_err(Error::io(&partial))?;
                return Ok(Some(bytes));
            }
            file.sync_all().map_err(Error::io(&partial))?;
            drop(file);
            fs::rename(&partial, &content).map_err(Error::io(&content))?;
            crate::identity::sync_dir(&content_dir).map_err(Error::io(&content_dir))?;
            Ok(None)
        })
        .await?;
        let stored = Stored {
            header: self.header.clone(),
            received_ms: crate::message::now_ms(),
            inline,
        };
        let record = tables::encode(&stored)?;
        let header = self.header.clone();
        let from = self.from.take();
        let at_ms = stored.received_ms;
        let result = store
            .inner
            .writer
            .write(move |txn| {
                let replaced = insert_message(txn, &header, &record, inline_bytes.as_deref())?;
                record_source(txn, &header.id, from.as_ref(), at_ms)?;
                Ok(replaced)
            })
            .await;
        // The partial row held the quota for this message; if collection removed it meanwhile
        // (and gave its bytes back), the complete message counts them again.
        if let Ok(false) = result {
            store.inner.meter.add(self.header.length);
        }
        if inline {
            let path = store.partial_path(&id);
            blocking(move || super::remove_if_exists(&path)).await?;
        } else if result.is_err() {
            store.unfinish(id).await;
        }
        result?;
        tracing::debug!(id = %id.short(), length = stored.header.length, "stored message");
        Ok(stored)
    }

    /// Drops the partial data and its row, and gives back the quota the row held.
    async fn discard(&self) -> Result<(), Error> {
        let id = self.header.id;
        let removed = self
            .store
            .inner
            .writer
            .write(move |txn| {
                Ok(txn
                    .open_table(PARTIAL)?
                    .remove(id.as_bytes().as_slice())?
                    .is_some())
            })
            .await?;
        if removed {
            self.store.inner.meter.sub(self.header.length);
        }
        let path = self.store.partial_path(&id);
        blocking(move || super::remove_if_exists(&path)).await
    }
}

impl Store {
    /// Undoes [`Transfer::finish`]'s rename when the index row did not commit (the disk is full,
    /// say): the bytes go back to `partial/`, where the partial row, still committed, keeps them,
    /// and a later transfer resumes at the full length instead of receiving them again. If the
    /// row did commit after all, or the index cannot be read now, the file stays where it is;
    /// start-up recovery removes a content file without a row.
    async fn unfinish(&self, id: MessageId) {
        let store = self.clone();
        let result = blocking(move || {
            if store.get_blocking(&id)?.is_some() {
                return Ok(());
            }
            let (content, partial) = (store.content_path(&id), store.partial_path(&id));
            fs::rename(&content, &partial).map_err(Error::io(&partial))?;
            let dir = store.inner.dir.join(super::PARTIAL_DIR);
            crate::identity::sync_dir(&dir).map_err(Error::io(&dir))
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(id = %id.short(), error = %e, "could not move an uncommitted content file back; start-up recovery removes it");
        }
    }
}

/// Opens (or creates) a partial file and hashes the bytes it holds, so a resumed transfer's final
/// check covers every byte. A file longer than the declared `length` cannot be ours: it is
/// emptied rather than trusted.
fn open_partial(path: &Path, length: u64) -> Result<(fs::File, u64, Sha256), Error> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(Error::io(path))?;
    let mut held = file.metadata().map_err(Error::io(path))?.len();
    if held > length {
        file.set_len(0).map_err(Error::io(path))?;
        held = 0;
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = held;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        file.read_exact(&mut buf[..n]).map_err(Error::io(path))?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok((file, held, hasher))
}

trait ReadAll {
    fn read_exact_at_all(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()>;
}

impl ReadAll for fs::File {
    fn read_exact_at_all(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        self.seek(SeekFrom::Start(0))?;
        self.read_to_end(buf).map(|_| ())
    }
}
