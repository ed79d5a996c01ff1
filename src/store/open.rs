//! Opening the store: directories, tables, the schema check, and start-up recovery, which sweeps
//! what a crash can leave behind (see `protocols/store.md`, "Crash safety").

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, WriteTransaction};

use super::expiry::remove_message_rows;
use super::slot::Slot;
use super::tables::{
    self, name, Stored, BY_CREATED, DELIVERY, INLINE, INLINE_V1, MESSAGES, META, PARTIAL,
    SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};
use super::writer::WriterHandle;
use super::{blocking, Config, Error, Inner, Store, CONTENT_DIR, INDEX_FILE, PARTIAL_DIR};
use crate::message::MessageId;

/// What start-up recovery removed; logged, and returned for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Partial files with no index row.
    pub orphan_partial_files: usize,
    /// Partial rows whose file is gone.
    pub orphan_partial_rows: usize,
    /// Content files with no index row and no transfer to go back to.
    pub orphan_content_files: usize,
    /// Content files of a transfer that crashed between the rename into `content/` and the
    /// commit, moved back to `partial/`: the transfer resumes holding every byte.
    pub restored_content_files: usize,
    /// Message rows whose content file is missing (damage from outside).
    pub missing_content_rows: usize,
}

/// Index rows recovery found pointing at files that are gone.
#[derive(Default)]
struct DeadRows {
    /// Keys of `partial-1` rows.
    partial: Vec<Vec<u8>>,
    /// `(created_ms, id)` of `messages-1` rows.
    messages: Vec<(u64, Vec<u8>)>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, running crash recovery first.
    pub async fn open(dir: impl Into<PathBuf>, config: Config) -> Result<Self, Error> {
        let dir = dir.into();
        blocking(move || Self::open_blocking(dir, config)).await
    }

    fn open_blocking(dir: PathBuf, config: Config) -> Result<Self, Error> {
        for sub in [dir.clone(), dir.join(CONTENT_DIR), dir.join(PARTIAL_DIR)] {
            fs::create_dir_all(&sub).map_err(Error::io(&sub))?;
        }
        let db = Slot::open(dir.join(INDEX_FILE), config.clone())?;
        let txn = db.get()?.begin_write()?;
        prepare_tables(&txn)?;
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
                meter: Default::default(),
                evicting: tokio::sync::Mutex::new(()),
            }),
        };
        let recovery = store.recover()?;
        if recovery != Recovery::default() {
            tracing::warn!(?recovery, "store recovered from an unclean shutdown");
        }
        // Counted from the rows that survived recovery: the index is the only truth.
        store.inner.meter.set(store.measure()?);
        Ok(store)
    }

    /// Sweeps what a crash can leave behind. Runs before the store is shared.
    fn recover(&self) -> Result<Recovery, Error> {
        let mut report = Recovery::default();
        self.restore_uncommitted_content(&mut report)?;
        let dead = self.find_dead_rows()?;
        self.sweep_orphan_files(&mut report)?;
        report.orphan_partial_rows = dead.partial.len();
        report.missing_content_rows = dead.messages.len();
        if !dead.partial.is_empty() || !dead.messages.is_empty() {
            let txn = self.inner.db.get()?.begin_write()?;
            {
                let mut partial = txn.open_table(PARTIAL)?;
                for key in &dead.partial {
                    partial.remove(key.as_slice())?;
                }
            }
            for (created, key) in &dead.messages {
                remove_message_rows(&txn, *created, key)?;
            }
            txn.commit()?;
        }
        Ok(report)
    }

    /// A transfer's content file renamed into `content/` whose commit never happened (a crash
    /// in between): its `partial-1` row is still there and no `messages-1` row claims it. Moved
    /// back to `partial/<id>`, so the next transfer of the message resumes holding every byte
    /// (and only commits) instead of the sweep deleting a verified copy and the sender
    /// re-sending all of it (found by the crash loop, `tests/crash_loop.rs`).
    fn restore_uncommitted_content(&self, report: &mut Recovery) -> Result<(), Error> {
        let read = self.begin_read()?;
        let messages = read.open_table(MESSAGES)?;
        for row in read.open_table(PARTIAL)?.iter()? {
            let (key, _) = row?;
            let Some(id) = MessageId::from_slice(key.value()) else {
                continue;
            };
            let (partial, content) = (self.partial_path(&id), self.content_path(&id));
            if partial.exists()
                || !content.exists()
                || messages.get(id.as_bytes().as_slice())?.is_some()
            {
                continue;
            }
            fs::rename(&content, &partial).map_err(Error::io(&content))?;
            report.restored_content_files += 1;
        }
        Ok(())
    }

    /// Rows whose file is gone: partial rows without `partial/<id>` (or with a key that is no
    /// id), and file-backed message rows without `content/<id>`.
    fn find_dead_rows(&self) -> Result<DeadRows, Error> {
        let mut dead = DeadRows::default();
        let read = self.begin_read()?;
        for row in read.open_table(PARTIAL)?.iter()? {
            let (key, _) = row?;
            let alive = MessageId::from_slice(key.value())
                .is_some_and(|id| self.partial_path(&id).exists());
            if !alive {
                dead.partial.push(key.value().to_vec());
            }
        }
        for row in read.open_table(MESSAGES)?.iter()? {
            let (key, value) = row?;
            let stored: Stored = tables::decode(value.value())?;
            if !stored.inline && !self.content_path(&stored.header.id).exists() {
                dead.messages
                    .push((stored.header.created_ms, key.value().to_vec()));
            }
        }
        Ok(dead)
    }

    /// Removes files in `partial/` and `content/` that no row claims (or whose name is no id).
    fn sweep_orphan_files(&self, report: &mut Recovery) -> Result<(), Error> {
        let read = self.begin_read()?;
        let messages = read.open_table(MESSAGES)?;
        let partial = read.open_table(PARTIAL)?;
        for (sub, is_content) in [(PARTIAL_DIR, false), (CONTENT_DIR, true)] {
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
        Ok(())
    }
}

/// Creates every table (a never-created table cannot be opened for reading) and checks, or on
/// a new store records, the schema version.
fn prepare_tables(txn: &WriteTransaction) -> Result<(), Error> {
    txn.open_table(MESSAGES)?;
    txn.open_table(BY_CREATED)?;
    txn.open_table(INLINE)?;
    txn.open_table(PARTIAL)?;
    txn.open_table(DELIVERY)?;
    let mut meta = txn.open_table(META)?;
    let version = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
    match version {
        None => {
            meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
            Ok(())
        }
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(1) => {
            let moved = migrate_from_v1(txn)?;
            meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
            tracing::info!(
                moved,
                "store migrated from schema version 1 to {SCHEMA_VERSION}"
            );
            Ok(())
        }
        Some(v) => Err(Error::Corrupt {
            table: name::META,
            reason: format!("store schema version {v}; this mule reads version {SCHEMA_VERSION}"),
        }),
    }
}

/// Schema version 1 to 2 (`protocols/store.md` 7): inline contents are keyed by
/// `(created_ms, id)` instead of `id`. Runs in the transaction that opens the store, so a crash
/// leaves version 1 whole. Returns how many contents moved; a version-1 row without a message
/// record (which no version of mule leaves behind) is dropped.
fn migrate_from_v1(txn: &WriteTransaction) -> Result<u64, Error> {
    let messages = txn.open_table(MESSAGES)?;
    let mut inline = txn.open_table(INLINE)?;
    let mut moved = 0;
    {
        let old = txn.open_table(INLINE_V1)?;
        for row in old.iter()? {
            let (key, content) = row?;
            let Some(record) = messages.get(key.value())? else {
                continue;
            };
            let stored: Stored = tables::decode(record.value())?;
            inline.insert((stored.header.created_ms, key.value()), content.value())?;
            moved += 1;
        }
    }
    txn.delete_table(INLINE_V1)?;
    Ok(moved)
}
