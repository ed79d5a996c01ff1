//! Where the store meets the disk: opening the redb file, writing content bytes, and telling a
//! full disk apart from other I/O failures.
//!
//! A full disk is not a broken store: nothing committed is lost, and writes work again once space
//! is freed. So every place that writes goes through here, and `ENOSPC`/`EDQUOT` become
//! [`Error::StorageFull`] (see `protocols/store.md`, "I/O errors").
//!
//! With the `testing` feature, `DiskFull` simulates a full disk without root or a small file
//! system: while it is on, every write that needs new space — past what a file already holds —
//! fails with `ENOSPC`, the way a real full disk refuses new blocks but lets a file's existing
//! blocks be overwritten. Its harsher setting refuses every write, as a full copy-on-write file
//! system (btrfs, zfs) does, where even an overwrite needs new blocks.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use redb::Database;

use super::{Config, Error};

/// Whether an I/O error means "no space left": the disk is full or the user's quota is used up.
pub(super) fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Bytes an unprivileged process may still write on the file system holding `path`.
pub(super) fn free_bytes(path: &Path) -> io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    // Both are `u64` on 64-bit Linux, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (
        u64::from(stat.blocks_available()),
        u64::from(stat.fragment_size()),
    );
    Ok(blocks.saturating_mul(size))
}

/// How an error involves the disk, which decides whether the database must be re-opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// No space left: the write was refused; it works again once space is freed.
    Full,
    /// Another I/O error.
    Io,
    /// redb refuses to go on after an earlier I/O error (or was closed under us): the work in
    /// hand never reached the disk, and succeeds on a re-opened database.
    Latched,
}

/// Whether `e` is a disk failure, and which.
pub(super) fn failure(e: &Error) -> Option<Failure> {
    match e {
        Error::StorageFull { .. } => Some(Failure::Full),
        Error::Db(redb::Error::Io(io)) if is_full(io) => Some(Failure::Full),
        Error::Db(redb::Error::Io(_)) => Some(Failure::Io),
        Error::Db(redb::Error::PreviousIo | redb::Error::DatabaseClosed) => Some(Failure::Latched),
        _ => None,
    }
}

/// Opens (or creates) the redb file at `path` with the store's settings.
pub(super) fn open_database(path: &Path, config: &Config) -> Result<Database, Error> {
    let builder = {
        let mut b = redb::Builder::new();
        b.set_cache_size(config.cache_bytes);
        b
    };
    #[cfg(any(test, feature = "testing"))]
    if let Some(switch) = &config.disk_full {
        let backend = fault::Backend::open(path, switch.clone())
            .map_err(|e| redb::DatabaseError::from(redb::StorageError::from(e)))?;
        return Ok(builder.create_with_backend(backend)?);
    }
    Ok(builder.create(path)?)
}

/// Writes `data` at `offset` of a content (or partial) file.
pub(super) fn write_content(
    config: &Config,
    file: &File,
    data: &[u8],
    offset: u64,
) -> io::Result<()> {
    #[cfg(any(test, feature = "testing"))]
    if let Some(switch) = &config.disk_full {
        if switch.refuses(
            offset.saturating_add(data.len() as u64),
            file.metadata()?.len(),
        ) {
            return Err(fault::no_space());
        }
    }
    #[cfg(not(any(test, feature = "testing")))]
    let _ = config;
    file.write_all_at(data, offset)
}

#[cfg(any(test, feature = "testing"))]
pub use fault::DiskFull;

#[cfg(any(test, feature = "testing"))]
mod fault {
    use std::fs::OpenOptions;
    use std::io;
    use std::ops::Bound;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
    use std::sync::Arc;

    use redb::backends::FileBackend;
    use redb::{BackendError, StorageBackend};

    /// A switch that makes the store's disk behave as if it were full (tests only; feature
    /// `testing`). Clones share the switch. Put one in [`super::Config::disk_full`], open the
    /// store, then turn it on and off.
    #[derive(Clone, Debug, Default)]
    pub struct DiskFull(Arc<AtomicU8>);

    /// [`DiskFull`] settings.
    const FREE: u8 = 0;
    const FULL: u8 = 1;
    const FULL_COPY_ON_WRITE: u8 = 2;

    impl DiskFull {
        /// A switch, off.
        pub fn new() -> Self {
            Self::default()
        }

        /// From now on, writes that need new space fail with `ENOSPC`.
        pub fn fill(&self) {
            self.0.store(FULL, Ordering::SeqCst);
        }

        /// From now on, every write fails with `ENOSPC`, even over bytes a file already holds,
        /// as on a full copy-on-write file system.
        pub fn fill_copy_on_write(&self) {
            self.0.store(FULL_COPY_ON_WRITE, Ordering::SeqCst);
        }

        /// From now on, writes succeed again (space was freed).
        pub fn free(&self) {
            self.0.store(FREE, Ordering::SeqCst);
        }

        /// Whether a write ending at `end` into a file holding `held` bytes is refused now.
        pub(super) fn refuses(&self, end: u64, held: u64) -> bool {
            match self.0.load(Ordering::SeqCst) {
                FREE => false,
                FULL => end > held,
                _ => true,
            }
        }
    }

    /// The error a full disk gives.
    pub(super) fn no_space() -> io::Error {
        io::Error::from(io::ErrorKind::StorageFull)
    }

    /// redb's file backend, refusing writes past the bytes the file already holds while the
    /// switch is on.
    #[derive(Debug)]
    pub(super) struct Backend {
        inner: FileBackend,
        switch: DiskFull,
        /// Bytes of the file known to be backed by disk blocks: its length at open and the end
        /// of the furthest successful write. Growing the length alone makes a sparse hole.
        held: AtomicU64,
    }

    impl Backend {
        pub(super) fn open(path: &Path, switch: DiskFull) -> io::Result<Self> {
            // As redb's own `Builder::create` opens it.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            let held = AtomicU64::new(file.metadata()?.len());
            let inner = FileBackend::new(file).map_err(io::Error::other)?;
            Ok(Self {
                inner,
                switch,
                held,
            })
        }
    }

    impl StorageBackend for Backend {
        fn len(&self) -> Result<u64, io::Error> {
            self.inner.len()
        }

        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
            self.inner.read(offset, out)
        }

        fn set_len(&self, len: u64) -> Result<(), io::Error> {
            self.inner.set_len(len)?;
            // Shrinking gives blocks back; growing only makes a hole.
            self.held.fetch_min(len, Ordering::SeqCst);
            Ok(())
        }

        fn sync_data(&self) -> Result<(), io::Error> {
            self.inner.sync_data()
        }

        fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
            let end = offset.saturating_add(data.len() as u64);
            if self.switch.refuses(end, self.held.load(Ordering::SeqCst)) {
                return Err(no_space());
            }
            self.inner.write(offset, data)?;
            self.held.fetch_max(end, Ordering::SeqCst);
            Ok(())
        }

        fn close(&self) -> Result<(), io::Error> {
            self.inner.close()
        }

        fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
            self.inner.try_lock_range(start, end)
        }

        fn try_lock_shared_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<bool, BackendError> {
            self.inner.try_lock_shared_range(start, end)
        }

        fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
            self.inner.lock_range(start, end)
        }

        fn lock_shared_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<(), BackendError> {
            self.inner.lock_shared_range(start, end)
        }

        fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
            self.inner.unlock_range(start, end)
        }

        fn query_lock_range(
            &self,
            start: Bound<u64>,
            end: Bound<u64>,
        ) -> Result<bool, BackendError> {
            self.inner.query_lock_range(start, end)
        }
    }
}
