//! The message store: a redb index plus content files, safe to kill at any instant.
//!
//! The on-disk layout, the commit order and the crash-safety argument are specified in
//! `protocols/store.md`; this is the summary.
//!
//! # Layout on disk
//! - `index.redb`: the tables in [`tables`](self) — complete messages, creation order, small
//!   contents inline, partial transfers, per-(message, peer) delivery state.
//! - `content/<id>`: content of complete messages too large to inline; read-only once there.
//! - `partial/<id>`: content being received; becomes visible only through [`Transfer::finish`],
//!   which checks the sha256, fsyncs, renames into `content/` and then commits the index row.
//!   Also `partial/staging-*`: this node's own content being written ([`Store::stage`]), which
//!   [`Store::adopt`] renames into `content/` the same way, without reading it again.
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
//!
//! # Files
//! - `open.rs`: opening, table creation, schema check, start-up recovery.
//! - `write.rs`: storing whole messages and starting transfers.
//! - `transfer.rs`: a resumable write of one message's content.
//! - `staged.rs`: this node's own content, hashed as it is written and adopted by renaming.
//! - `read.rs`: records, contents, manifests, offsets; `read_ahead.rs`: a sender's sequential
//!   reads on a thread of its own.
//! - `sink.rs`: a transfer's appends and hashing on a thread of its own (streamed content).
//! - `delivery.rs`: per-(message, peer) delivery state.
//! - `expiry.rs`: collecting expired messages and transfers; removing messages.
//! - `quota.rs`: the quota ([`Config::max_bytes`]) and making room; `evict.rs`: the pure
//!   eviction order.
//! - `writer.rs`: the single writer thread and its group commit.
//! - `slot.rs`: the database handle, re-opened after an I/O error (`protocols/store.md`, "I/O
//!   errors"); `disk.rs`: opening the file, content writes, telling a full disk apart.
//! - `tables.rs`: table definitions and record encoding; `error.rs`: [`Error`];
//!   `peer.rs`: [`PeerKey`].

mod delivery;
mod disk;
mod error;
mod evict;
mod expiry;
mod open;
mod peer;
mod quota;
mod read;
mod read_ahead;
mod sink;
mod slot;
mod staged;
mod tables;
mod transfer;
mod write;
mod writer;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[cfg(any(test, feature = "testing"))]
pub use disk::DiskFull;
pub use error::Error;
pub use open::Recovery;
pub use peer::PeerKey;
pub use quota::{Full, Size, Usage};
pub use read::{Content, Offset};
pub use read_ahead::{ReadAhead, READ_AHEAD};
pub use sink::{Sink, SINK_DEPTH};
pub use staged::Staged;
pub use tables::{Delivery, Stored};
pub use transfer::Transfer;

use crate::message::MessageId;
use slot::{Slot, Snapshot};
use writer::WriterHandle;

/// Store settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Contents up to this size live inside the index: one commit stores the whole message,
    /// which is what makes many small messages per second possible.
    pub inline_max: u64,
    /// redb page cache.
    pub cache_bytes: usize,
    /// The quota: content bytes of complete messages plus declared bytes of transfers in
    /// progress. A node relays for others only with the room its owner gives it; when a new
    /// message does not fit, relayed messages are evicted (`protocols/store.md`, "Quota and
    /// eviction"), and what still does not fit is refused with [`Error::QuotaFull`].
    pub max_bytes: u64,
    /// This node's public key: messages it signed that no peer has yet are never evicted, the
    /// store being their only copy. `None` keeps every message no peer has, whoever sent it.
    pub own_key: Option<[u8; 32]>,
    /// Simulates a full disk (tests only): see [`DiskFull`].
    #[cfg(any(test, feature = "testing"))]
    pub disk_full: Option<DiskFull>,
}

impl Config {
    /// Default inline limit: 64 KiB.
    pub const DEFAULT_INLINE_MAX: u64 = 64 * 1024;
    /// Default cache: 64 MiB (redb's own default of 1 GiB is far too much for a phone).
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;
    /// Default quota: 1 GiB. Enough for thousands of messages or a few large files, and small
    /// enough for a phone or a small SD card; a node with room to spare raises it.
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
}

impl Default for Config {
    fn default() -> Self {
        Self {
            inline_max: Self::DEFAULT_INLINE_MAX,
            cache_bytes: Self::DEFAULT_CACHE_BYTES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            own_key: None,
            #[cfg(any(test, feature = "testing"))]
            disk_full: None,
        }
    }
}

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The index; shared with the writer thread, which re-opens it after an I/O error.
    db: Arc<Slot>,
    dir: PathBuf,
    config: Config,
    writer: WriterHandle,
    joiner: Mutex<Option<writer::Joiner>>,
    /// Ids with a live [`Transfer`]: a second writer gets [`Error::Busy`].
    active: Mutex<HashSet<MessageId>>,
    /// Quota in use (see `quota.rs`).
    meter: quota::Meter,
    /// Held while evicting, so that two admissions do not evict for the same shortfall.
    evicting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// Sub-directory of complete contents.
const CONTENT_DIR: &str = "content";
/// Sub-directory of contents being received.
const PARTIAL_DIR: &str = "partial";
/// The redb file.
const INDEX_FILE: &str = "index.redb";

impl Store {
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
        blocking(move || {
            if let Some(j) = joiner {
                // A panicked writer thread has nothing left to flush; the database still closes.
                let _ = j.join();
            }
            drop(db);
            Ok(())
        })
        .await
    }

    /// How long [`Store::close`] waits for other handles to drop.
    pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A read snapshot of the index.
    fn begin_read(&self) -> Result<Snapshot, Error> {
        self.inner.db.begin_read()
    }

    fn content_path(&self, id: &MessageId) -> PathBuf {
        self.inner.dir.join(CONTENT_DIR).join(id.to_string())
    }

    fn partial_path(&self, id: &MessageId) -> PathBuf {
        self.inner.dir.join(PARTIAL_DIR).join(id.to_string())
    }

    fn active_lock(&self) -> std::sync::MutexGuard<'_, HashSet<MessageId>> {
        // A poisoned lock only means a panic elsewhere; the set itself is still valid.
        self.inner
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Removes a file that may already be gone (swept, collected, or never written).
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
