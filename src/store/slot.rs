//! The store's database handle, which can be replaced while the store runs.
//!
//! After one failed write redb refuses everything ("Previous I/O error occurred. Please close and
//! re-open the database") until it is re-opened. Its committed state is durable, so re-opening
//! loses nothing: redb rolls back the commit that failed and keeps every earlier one. The slot
//! holds the current [`Database`]; [`Slot::reopen`] swaps in a fresh one once every user of the
//! old one has let go (redb allows one open per file, so the old one must be closed first). If
//! the re-open fails too (the disk is still full), the slot stays down and the next
//! [`Slot::get`] tries again, so the store heals by itself once space is freed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase};

use super::{disk, Config, Error};

/// The current database, or why there is none.
pub(super) struct Slot {
    path: PathBuf,
    config: Config,
    state: RwLock<State>,
}

enum State {
    Open(Arc<Database>),
    /// The last re-open failed; the next [`Slot::get`] tries again.
    Down {
        /// It failed for lack of space.
        full: bool,
        /// The error, for people.
        reason: String,
    },
}

/// A read snapshot together with the database it reads, so the database is not closed under it:
/// [`Slot::reopen`] waits for every such handle to drop.
pub(super) struct Snapshot {
    // Dropped before `_db`: fields drop in declaration order.
    txn: ReadTransaction,
    _db: Arc<Database>,
}

impl std::ops::Deref for Snapshot {
    type Target = ReadTransaction;
    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

impl Slot {
    /// How long a re-open waits for readers of the old database to finish. Reads are short; a
    /// reader still busy after this leaves the slot down, and a later [`Slot::get`] retries.
    const DRAIN_WAIT: Duration = Duration::from_secs(5);

    /// Opens the database at `path`.
    pub(super) fn open(path: PathBuf, config: Config) -> Result<Self, Error> {
        let db = disk::open_database(&path, &config)?;
        Ok(Self {
            path,
            config,
            state: RwLock::new(State::Open(Arc::new(db))),
        })
    }

    /// The redb file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The current database; if it is down, tries to re-open it first.
    pub(super) fn get(&self) -> Result<Arc<Database>, Error> {
        if let State::Open(db) = &*self.read_state() {
            return Ok(db.clone());
        }
        let mut state = self.write_state();
        if let State::Down { .. } = &*state {
            *state = self.open_state();
        }
        match &*state {
            State::Open(db) => Ok(db.clone()),
            State::Down { full, reason } => Err(self.down_error(*full, reason)),
        }
    }

    /// A read snapshot of the current database.
    pub(super) fn begin_read(&self) -> Result<Snapshot, Error> {
        let db = self.get()?;
        let txn = db.begin_read()?;
        Ok(Snapshot { txn, _db: db })
    }

    /// Closes the current database and opens the file again, after an I/O error latched redb's
    /// failure flag. The caller must hold no [`Arc<Database>`] from [`Slot::get`]. Leaves the
    /// slot down if the old database is still in use after [`Self::DRAIN_WAIT`] or the open
    /// fails.
    pub(super) fn reopen(&self) {
        let mut state = self.write_state();
        let old = std::mem::replace(
            &mut *state,
            State::Down {
                full: false,
                reason: "being re-opened".into(),
            },
        );
        if let State::Open(db) = old {
            // Holding the write lock, no new user can appear; wait for the current ones.
            let deadline = Instant::now() + Self::DRAIN_WAIT;
            while Arc::strong_count(&db) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if Arc::strong_count(&db) > 1 {
                tracing::warn!(path = %self.path.display(), "store index still in use; re-open deferred");
                *state = State::Down {
                    full: false,
                    reason: "still in use by a reader".into(),
                };
                return;
            }
            // A failing close is expected here: the file is what failed.
            if let Some(db) = Arc::into_inner(db) {
                let _ = db.close();
            }
        }
        *state = self.open_state();
    }

    fn open_state(&self) -> State {
        match disk::open_database(&self.path, &self.config) {
            Ok(db) => {
                tracing::info!(path = %self.path.display(), "store index re-opened");
                State::Open(Arc::new(db))
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "store index re-open failed; retrying on next use");
                State::Down {
                    full: matches!(disk::failure(&e), Some(disk::Failure::Full)),
                    reason: e.to_string(),
                }
            }
        }
    }

    fn down_error(&self, full: bool, reason: &str) -> Error {
        if full {
            Error::StorageFull {
                path: self.path.clone(),
            }
        } else {
            Error::Unavailable {
                path: self.path.clone(),
                reason: reason.to_owned(),
            }
        }
    }

    // A poisoned lock only means a panic elsewhere; the state itself is always whole.
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}
