//! The message store: a redb index plus content files, safe to kill at any instant.
//!
//! # Layout on disk
//! - `index.redb`: the tables in [`tables`](self) — complete messages, creation order, small
//!   contents inline, partial transfers, per-(message, peer) delivery state.
//! - `content/<id>`: content of complete messages too large to inline; read-only once there.
//! - `partial/<id>`: content being received; becomes visible only through [`Transfer::finish`],
//!   which checks the sha256, fsyncs, renames into `content/` and then commits the index row.
//!
//! # Crash safety
//! The index row is committed only after the content it points to is durable, and every
//! acknowledged write went through a durable commit ([`writer`](self)). [`Store::open`] sweeps
//! what a crash can leave behind: partial files without a row, rows without a file, content files
//! without a row. So after a restart no half message is visible and every finished one is intact.
//! Bytes of a partial transfer are not fsynced chunk by chunk: after a crash a transfer resumes
//! from the length the file kept, and the final sha256 check catches anything torn.
//!
//! All methods are async and run blocking disk work on tokio's blocking pool or the writer
//! thread, so callers on the runtime (the node, the network loop's helpers) never block it.

mod error;
mod tables;
mod transfer;
mod writer;

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

pub use error::Error;
pub use tables::{Delivery, Stored};
pub use transfer::Transfer;

use crate::message::{content_digest, Header, MessageId};
use tables::{PartialRecord, BY_CREATED, DELIVERY, INLINE, MESSAGES, META, PARTIAL};
use writer::WriterHandle;

/// Store settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Contents up to this size live inside the index: one commit stores the whole message,
    /// which is what makes many small messages per second possible.
    pub inline_max: u64,
    /// redb page cache.
    pub cache_bytes: usize,
}

impl Config {
    /// Default inline limit: 64 KiB.
    pub const DEFAULT_INLINE_MAX: u64 = 64 * 1024;
    /// Default cache: 64 MiB (redb's own default of 1 GiB is far too much for a phone).
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;
}

impl Default for Config {
    fn default() -> Self {
        Self {
            inline_max: Self::DEFAULT_INLINE_MAX,
            cache_bytes: Self::DEFAULT_CACHE_BYTES,
        }
    }
}

/// Where a message stands in this store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    /// Never seen (or collected).
    Unknown,
    /// Being received; this many bytes are held, so a transfer resumes here.
    Partial(u64),
    /// Stored complete.
    Complete,
}

/// What start-up recovery removed; logged, and returned for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Partial files with no index row.
    pub orphan_partial_files: usize,
    /// Partial rows whose file is gone.
    pub orphan_partial_rows: usize,
    /// Content files with no index row (a crash between rename and commit).
    pub orphan_content_files: usize,
    /// Message rows whose content file is missing (damage from outside).
    pub missing_content_rows: usize,
}

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    dir: PathBuf,
    config: Config,
    writer: WriterHandle,
    joiner: Mutex<Option<writer::Joiner>>,
    /// Ids with a live [`Transfer`]: a second writer gets [`Error::Busy`].
    active: Mutex<HashSet<MessageId>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, running crash recovery first.
    pub async fn open(dir: impl Into<PathBuf>, config: Config) -> Result<Self, Error> {
        let dir = dir.into();
        blocking(move || Self::open_blocking(dir, config)).await
    }

    fn open_blocking(dir: PathBuf, config: Config) -> Result<Self, Error> {
        for sub in [dir.clone(), dir.join("content"), dir.join("partial")] {
            fs::create_dir_all(&sub).map_err(Error::io(&sub))?;
        }
        let db = redb::Builder::new()
            .set_cache_size(config.cache_bytes)
            .create(dir.join("index.redb"))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(MESSAGES)?;
            txn.open_table(BY_CREATED)?;
            txn.open_table(INLINE)?;
            txn.open_table(PARTIAL)?;
            txn.open_table(DELIVERY)?;
            let mut meta = txn.open_table(META)?;
            let version = meta.get("schema_version")?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("schema_version", tables::SCHEMA_VERSION)?;
                }
                Some(v) if v == tables::SCHEMA_VERSION => {}
                Some(v) => {
                    return Err(Error::Corrupt {
                        table: "meta",
                        reason: format!(
                            "store schema version {v}; this mule reads version {}",
                            tables::SCHEMA_VERSION
                        ),
                    })
                }
            }
        }
        txn.commit()?;
        let db = Arc::new(db);
        let (writer, joiner) = WriterHandle::spawn(db.clone())?;
        let store = Self {
            inner: Arc::new(Inner {
                db,
                dir,
                config,
                writer,
                joiner: Mutex::new(Some(joiner)),
                active: Mutex::new(HashSet::new()),
            }),
        };
        let recovery = store.recover()?;
        if recovery != Recovery::default() {
            tracing::warn!(?recovery, "store recovered from an unclean shutdown");
        }
        Ok(store)
    }

    /// Closes the store and waits until the database file is released, so it can be reopened
    /// (by a restarted node in the same process, or a test). Other handles may still be finishing
    /// a read on the blocking pool; they are given [`Store::CLOSE_WAIT`] to drop, then
    /// [`Error::InUse`] is returned.
    pub async fn close(self) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + Self::CLOSE_WAIT;
        let mut arc = self.inner;
        let inner = loop {
            match Arc::try_unwrap(arc) {
                Ok(inner) => break inner,
                Err(still_shared) if tokio::time::Instant::now() < deadline => {
                    arc = still_shared;
                    // Nothing signals the drop of a clone; the wait is short and bounded.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(_) => return Err(Error::InUse),
            }
        };
        let Inner {
            db, writer, joiner, ..
        } = inner;
        drop(writer);
        let joiner = joiner.lock().unwrap_or_else(|p| p.into_inner()).take();
        tokio::task::spawn_blocking(move || {
            if let Some(j) = joiner {
                let _ = j.join();
            }
            drop(db);
        })
        .await
        .map_err(|_| Error::Shutdown)
    }

    /// How long [`Store::close`] waits for other handles to drop.
    pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn content_path(&self, id: &MessageId) -> PathBuf {
        self.inner.dir.join("content").join(id.to_string())
    }

    fn partial_path(&self, id: &MessageId) -> PathBuf {
        self.inner.dir.join("partial").join(id.to_string())
    }

    /// Sweeps what a crash can leave behind. Runs before the store is shared.
    fn recover(&self) -> Result<Recovery, Error> {
        let mut report = Recovery::default();
        let read = self.inner.db.begin_read()?;
        let messages = read.open_table(MESSAGES)?;
        let partial = read.open_table(PARTIAL)?;

        let mut dead_partial_rows = Vec::new();
        for row in partial.iter()? {
            let (key, _) = row?;
            let Some(id) = MessageId::from_slice(key.value()) else {
                dead_partial_rows.push(key.value().to_vec());
                continue;
            };
            if !self.partial_path(&id).exists() {
                dead_partial_rows.push(key.value().to_vec());
            }
        }
        let mut dead_messages = Vec::new();
        for row in messages.iter()? {
            let (key, value) = row?;
            let stored: Stored = tables::decode("messages-1", value.value())?;
            if !stored.inline && !self.content_path(&stored.header.id).exists() {
                dead_messages.push((stored.header.created_ms, key.value().to_vec()));
            }
        }
        for (sub, is_content) in [("partial", false), ("content", true)] {
            let dir = self.inner.dir.join(sub);
            for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                let entry = entry.map_err(Error::io(&dir))?;
                let name = entry.file_name();
                let id = name.to_str().and_then(|n| n.parse::<MessageId>().ok());
                let keep = match id {
                    Some(id) if is_content => messages.get(id.as_bytes().as_slice())?.is_some(),
                    Some(id) => partial.get(id.as_bytes().as_slice())?.is_some(),
                    None => false,
                };
                if !keep {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(Error::io(&path))?;
                    if is_content {
                        report.orphan_content_files += 1;
                    } else {
                        report.orphan_partial_files += 1;
                    }
                }
            }
        }
        drop((messages, partial, read));
        report.orphan_partial_rows = dead_partial_rows.len();
        report.missing_content_rows = dead_messages.len();
        if !dead_partial_rows.is_empty() || !dead_messages.is_empty() {
            let txn = self.inner.db.begin_write()?;
            {
                let mut partial = txn.open_table(PARTIAL)?;
                for key in &dead_partial_rows {
                    partial.remove(key.as_slice())?;
                }
            }
            for (created, key) in &dead_messages {
                remove_message_rows(&txn, *created, key)?;
            }
            txn.commit()?;
        }
        Ok(report)
    }

    /// Stores a complete message whose content is in memory, checking length and sha256.
    /// Small contents are stored inline in one group commit; larger ones go through a file.
    pub async fn put(&self, header: Header, content: Vec<u8>) -> Result<Stored, Error> {
        self.put_from(header, content, None).await
    }

    /// [`Store::put`] for a message received from `from` (a peer id in binary form): the same
    /// commit records that peer as having it, so it is never pushed back.
    pub async fn put_from(
        &self,
        header: Header,
        content: Vec<u8>,
        from: Option<Vec<u8>>,
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
        self.inner
            .writer
            .write(move |txn| {
                insert_message(txn, &header, &record, Some(&content))?;
                record_source(txn, &header.id, from.as_deref(), received_ms)
            })
            .await?;
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
        from: Option<Vec<u8>>,
    ) -> Result<Transfer, Error> {
        Transfer::begin(self.clone(), header, from).await
    }

    /// Records, for each id, its stored record and delivery state towards `peer` (one read
    /// transaction); ids not stored are left out.
    pub async fn with_delivery(
        &self,
        ids: Vec<MessageId>,
        peer: Vec<u8>,
    ) -> Result<Vec<(Stored, Option<Delivery>)>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            let messages = read.open_table(MESSAGES)?;
            let delivery = read.open_table(DELIVERY)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let key = id.as_bytes().as_slice();
                let Some(value) = messages.get(key)? else {
                    continue;
                };
                let stored: Stored = tables::decode("messages-1", value.value())?;
                let state = delivery
                    .get((key, peer.as_slice()))?
                    .map(|v| tables::decode("delivery-1", v.value()))
                    .transpose()?;
                out.push((stored, state));
            }
            Ok(out)
        })
        .await
    }

    /// Where a message stands: how many bytes of it are held, for resuming transfers.
    pub async fn offset(&self, id: MessageId) -> Result<Offset, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            if read
                .open_table(MESSAGES)?
                .get(id.as_bytes().as_slice())?
                .is_some()
            {
                return Ok(Offset::Complete);
            }
            if read
                .open_table(PARTIAL)?
                .get(id.as_bytes().as_slice())?
                .is_none()
            {
                return Ok(Offset::Unknown);
            }
            let path = store.partial_path(&id);
            match fs::metadata(&path) {
                Ok(m) => Ok(Offset::Partial(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Offset::Unknown),
                Err(e) => Err(Error::io(path)(e)),
            }
        })
        .await
    }

    /// Whether the message is stored complete.
    pub async fn exists(&self, id: MessageId) -> Result<bool, Error> {
        Ok(self.has(vec![id]).await?.first().copied().unwrap_or(false))
    }

    /// For each id, whether it is stored complete (one read transaction for the batch).
    pub async fn has(&self, ids: Vec<MessageId>) -> Result<Vec<bool>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            let messages = read.open_table(MESSAGES)?;
            ids.iter()
                .map(|id| Ok(messages.get(id.as_bytes().as_slice())?.is_some()))
                .collect()
        })
        .await
    }

    /// The index record of a complete message.
    pub async fn get(&self, id: MessageId) -> Result<Option<Stored>, Error> {
        let store = self.clone();
        blocking(move || store.get_blocking(&id)).await
    }

    fn get_blocking(&self, id: &MessageId) -> Result<Option<Stored>, Error> {
        let read = self.inner.db.begin_read()?;
        let messages = read.open_table(MESSAGES)?;
        let row = messages.get(id.as_bytes().as_slice())?;
        row.map(|v| tables::decode("messages-1", v.value()))
            .transpose()
    }

    /// Opens a complete message for reading: its record and a seekable content reader.
    pub async fn read(&self, id: MessageId) -> Result<(Stored, Content), Error> {
        let store = self.clone();
        blocking(move || store.read_blocking(&id)).await
    }

    fn read_blocking(&self, id: &MessageId) -> Result<(Stored, Content), Error> {
        let stored = self.get_blocking(id)?.ok_or(Error::NotFound(*id))?;
        let content = if stored.inline {
            let read = self.inner.db.begin_read()?;
            let inline = read.open_table(INLINE)?;
            let bytes = inline
                .get(id.as_bytes().as_slice())?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| Error::Corrupt {
                    table: "inline-content-1",
                    reason: format!("no content for message {id}"),
                })?;
            Content::Inline(io::Cursor::new(bytes))
        } else {
            let path = self.content_path(id);
            Content::File(fs::File::open(&path).map_err(Error::io(path))?)
        };
        Ok((stored, content))
    }

    /// The contents of inline (small) messages, in one read transaction; `None` for ids whose
    /// content is not inline. Lets a sender push a batch of small messages without one read each.
    pub async fn inline_contents(
        &self,
        ids: Vec<MessageId>,
    ) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            let inline = read.open_table(INLINE)?;
            ids.iter()
                .map(|id| {
                    Ok(inline
                        .get(id.as_bytes().as_slice())?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    /// Reads `len` bytes at `offset` of a complete message (pull requests, push senders).
    pub async fn read_range(&self, id: MessageId, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let store = self.clone();
        blocking(move || {
            let (stored, mut content) = store.read_blocking(&id)?;
            let length = stored.header.length;
            if offset > length || len > length - offset {
                return Err(Error::OutOfRange {
                    offset,
                    len,
                    length,
                });
            }
            let mut buf = vec![0u8; len as usize];
            let path = store.content_path(&id);
            content
                .seek(SeekFrom::Start(offset))
                .and_then(|_| content.read_exact(&mut buf))
                .map_err(Error::io(path))?;
            Ok(buf)
        })
        .await
    }

    /// Complete, unexpired messages in creation order, starting after `after`
    /// (a `(created_ms, id)` cursor from the previous page), at most `limit` of them.
    pub async fn manifest(
        &self,
        after: Option<(u64, MessageId)>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<Stored>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            let by_created = read.open_table(BY_CREATED)?;
            let messages = read.open_table(MESSAGES)?;
            let mut out = Vec::new();
            let range = match &after {
                Some((created, id)) => by_created.range((*created, id.as_bytes().as_slice())..)?,
                None => by_created.range::<(u64, &[u8])>(..)?,
            };
            for row in range {
                if out.len() >= limit {
                    break;
                }
                let (key, _) = row?;
                let (created, id) = key.value();
                if let Some((ac, aid)) = &after {
                    if created == *ac && id == aid.as_bytes().as_slice() {
                        continue;
                    }
                }
                let Some(value) = messages.get(id)? else {
                    continue;
                };
                let stored: Stored = tables::decode("messages-1", value.value())?;
                if stored.header.expires_ms() >= now_ms {
                    out.push(stored);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every complete, unexpired message with its delivery state towards `peer`, in creation
    /// order: the starting point of a sync with that peer.
    pub async fn deliveries_for(
        &self,
        peer: Vec<u8>,
        now_ms: u64,
    ) -> Result<Vec<(Stored, Option<Delivery>)>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            let by_created = read.open_table(BY_CREATED)?;
            let messages = read.open_table(MESSAGES)?;
            let delivery = read.open_table(DELIVERY)?;
            let mut out = Vec::new();
            for row in by_created.range::<(u64, &[u8])>(..)? {
                let (key, _) = row?;
                let (_, id) = key.value();
                let Some(value) = messages.get(id)? else {
                    continue;
                };
                let stored: Stored = tables::decode("messages-1", value.value())?;
                if stored.header.expires_ms() < now_ms {
                    continue;
                }
                let state = delivery
                    .get((id, peer.as_slice()))?
                    .map(|v| tables::decode("delivery-1", v.value()))
                    .transpose()?;
                out.push((stored, state));
            }
            Ok(out)
        })
        .await
    }

    /// What we know about handing `id` to `peer`.
    pub async fn delivery(&self, id: MessageId, peer: Vec<u8>) -> Result<Option<Delivery>, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            let table = read.open_table(DELIVERY)?;
            let row = table.get((id.as_bytes().as_slice(), peer.as_slice()))?;
            row.map(|v| tables::decode("delivery-1", v.value()))
                .transpose()
        })
        .await
    }

    /// Records delivery state; durable when this returns, so a restart neither loses nor repeats work.
    pub async fn set_delivery(
        &self,
        id: MessageId,
        peer: Vec<u8>,
        state: Delivery,
    ) -> Result<(), Error> {
        self.set_deliveries(vec![(id, peer, state)]).await
    }

    /// Records many delivery states in one commit.
    pub async fn set_deliveries(
        &self,
        states: Vec<(MessageId, Vec<u8>, Delivery)>,
    ) -> Result<(), Error> {
        let rows = states
            .into_iter()
            .map(|(id, peer, state)| Ok((id, peer, tables::encode(&state)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        self.inner
            .writer
            .write(move |txn| {
                let messages = txn.open_table(MESSAGES)?;
                let mut delivery = txn.open_table(DELIVERY)?;
                for (id, peer, value) in &rows {
                    // A message collected meanwhile gets no state.
                    if messages.get(id.as_bytes().as_slice())?.is_some() {
                        delivery.insert(
                            (id.as_bytes().as_slice(), peer.as_slice()),
                            value.as_slice(),
                        )?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Removes expired messages (and expired partial transfers that nobody is writing) with
    /// their files and delivery state. Returns how many messages were removed.
    pub async fn collect_expired(&self, now_ms: u64) -> Result<usize, Error> {
        let store = self.clone();
        let (expired, partial) = blocking(move || {
            let read = store.inner.db.begin_read()?;
            let mut expired = Vec::new();
            for row in read.open_table(MESSAGES)?.iter()? {
                let (_, value) = row?;
                let stored: Stored = tables::decode("messages-1", value.value())?;
                if stored.header.expires_ms() < now_ms {
                    expired.push((stored.header.created_ms, stored.header.id, stored.inline));
                }
            }
            let mut partial = Vec::new();
            for row in read.open_table(PARTIAL)?.iter()? {
                let (_, value) = row?;
                let record: PartialRecord = tables::decode("partial-1", value.value())?;
                if record.header.expires_ms() < now_ms {
                    partial.push(record.header.id);
                }
            }
            Ok::<_, Error>((expired, partial))
        })
        .await?;
        let partial: Vec<MessageId> = {
            let active = self.active_lock();
            partial
                .into_iter()
                .filter(|id| !active.contains(id))
                .collect()
        };
        if expired.is_empty() && partial.is_empty() {
            return Ok(0);
        }
        let rows = expired.clone();
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
        let count = expired.len();
        blocking(move || {
            // Rows are gone; files without rows are garbage (and swept at start-up if we crash here).
            for (_, id, inline) in &expired {
                if !inline {
                    remove_if_exists(&store.content_path(id))?;
                }
            }
            for id in &partial {
                remove_if_exists(&store.partial_path(id))?;
            }
            Ok::<_, Error>(())
        })
        .await?;
        if count > 0 {
            tracing::info!(count, "collected expired messages");
        }
        Ok(count)
    }

    /// Number of complete messages.
    pub async fn len(&self) -> Result<u64, Error> {
        let store = self.clone();
        blocking(move || {
            let read = store.inner.db.begin_read()?;
            Ok(read.open_table(MESSAGES)?.len()?)
        })
        .await
    }

    /// Whether the store holds no complete message.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }

    fn active_lock(&self) -> std::sync::MutexGuard<'_, HashSet<MessageId>> {
        // A poisoned lock only means a panic elsewhere; the set itself is still valid.
        self.inner
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A complete message's content: inline bytes or a file, both seekable.
#[derive(Debug)]
pub enum Content {
    /// Small content held in the index.
    Inline(io::Cursor<Vec<u8>>),
    /// Content in `content/<id>`.
    File(fs::File),
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::Inline(c) => c.read(buf),
            Content::File(f) => f.read(buf),
        }
    }
}

impl Seek for Content {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Content::Inline(c) => c.seek(pos),
            Content::File(f) => f.seek(pos),
        }
    }
}

/// Inserts a complete message's rows (and removes its partial row) in `txn`.
/// Fails with [`Error::AlreadyStored`] if it is already there.
fn insert_message(
    txn: &WriteTransaction,
    header: &Header,
    record: &[u8],
    inline: Option<&[u8]>,
) -> Result<(), Error> {
    let key = header.id.as_bytes().as_slice();
    let mut messages = txn.open_table(MESSAGES)?;
    if messages.get(key)?.is_some() {
        return Err(Error::AlreadyStored(header.id));
    }
    messages.insert(key, record)?;
    txn.open_table(BY_CREATED)?
        .insert((header.created_ms, key), ())?;
    if let Some(content) = inline {
        txn.open_table(INLINE)?.insert(key, content)?;
    }
    txn.open_table(PARTIAL)?.remove(key)?;
    Ok(())
}

/// Marks the peer a message came from as having it, in the transaction that stores it.
fn record_source(
    txn: &WriteTransaction,
    id: &MessageId,
    from: Option<&[u8]>,
    at_ms: u64,
) -> Result<(), Error> {
    if let Some(peer) = from {
        let value = tables::encode(&Delivery::Sent { at_ms })?;
        txn.open_table(DELIVERY)?
            .insert((id.as_bytes().as_slice(), peer), value.as_slice())?;
    }
    Ok(())
}

fn remove_message_rows(txn: &WriteTransaction, created: u64, key: &[u8]) -> Result<(), Error> {
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

fn remove_if_exists(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}

/// Runs blocking disk work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Shutdown)?
}

#[cfg(test)]
mod tests;
