//! Store errors: what went wrong, in words a person (or a peer, via the wire code) understands.

use std::io;
use std::path::PathBuf;

use crate::message::MessageId;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message is already stored complete; nothing to write.
    #[error("message {0} is already stored")]
    AlreadyStored(MessageId),
    /// Another writer is receiving this message right now.
    #[error("message {0} is busy: another transfer is writing it")]
    Busy(MessageId),
    /// A chunk did not start where the held bytes end.
    #[error("incorrect offset (got {got}, have {have})")]
    IncorrectOffset {
        /// Offset offered.
        got: u64,
        /// Bytes already held.
        have: u64,
    },
    /// More bytes than the header declares.
    #[error("chunk ends at {end}, past the declared length {length}")]
    TooLong {
        /// Where the chunk would end.
        end: u64,
        /// Declared content length.
        length: u64,
    },
    /// `finish` before every byte arrived.
    #[error("message incomplete: {held} of {length} bytes held")]
    Incomplete {
        /// Bytes held.
        held: u64,
        /// Declared length.
        length: u64,
    },
    /// The content does not hash to the header's sha256; the partial data was discarded.
    #[error("content mismatch: message {0} does not hash to its header's sha256")]
    ContentMismatch(MessageId),
    /// The message is not in the store.
    #[error("message {0} not found")]
    NotFound(MessageId),
    /// A read past the end of the content.
    #[error("range {offset}+{len} is outside the content of {length} bytes")]
    OutOfRange {
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Content length.
        length: u64,
    },
    /// Something read from disk is not what this code wrote: a record does not decode, a row
    /// another row promises is missing, or the schema version is not ours. The index is damaged
    /// (or from another mule); retrying will not help.
    #[error("corrupt store record in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What failed.
        reason: String,
    },
    /// A record we were about to write does not encode; nothing was written. Unlike
    /// [`Error::Corrupt`], the disk is fine: the value in memory is at fault.
    #[error("cannot encode a record for {table}: {source}")]
    Encode {
        /// The table the record was meant for.
        table: &'static str,
        /// The encoder's complaint.
        source: cbor4ii::serde::EncodeError<std::collections::TryReserveError>,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The disk holding the store is full (or the user's quota is used up), so the write was not
    /// made. Nothing stored before is lost, and reads go on. Transient: the store re-opens its
    /// index by itself and accepts writes again once space is freed, so retry later.
    #[error("no space left on the disk holding {path}: the write was not made; free some space and it will succeed again")]
    StorageFull {
        /// The file that could not grow (the index or a content file).
        path: PathBuf,
    },
    /// The message does not fit in the store's quota, even after evicting what may go; nothing
    /// was stored or evicted. On the wire: `storage-full`.
    #[error("{0}")]
    QuotaFull(super::Full),
    /// The index could not be re-opened after an I/O error; every use tries again. Nothing
    /// committed is lost.
    #[error("store index {path} is unavailable after an I/O error ({reason}); it is re-opened on the next use")]
    Unavailable {
        /// The redb file.
        path: PathBuf,
        /// Why the last re-open failed.
        reason: String,
    },
    /// `close` was called while other handles to the store are alive.
    #[error("store is still in use by other handles")]
    InUse,
    /// The store's writer thread is gone (the store is shutting down).
    #[error("store is shut down")]
    Shutdown,
}

impl Error {
    /// A file operation's failure on `path`; "no space left" becomes [`Error::StorageFull`].
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| {
            if super::disk::is_full(&source) {
                Error::StorageFull { path }
            } else {
                Error::Io { path, source }
            }
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
