//! redb tables and the records they hold. Names carry a version: a format change gets new names
//! and a migration, never a silent reinterpretation. Every table name is spelled here once, in
//! [`name`]; code elsewhere refers to the definitions or to these constants.
//!
//! The layout is specified in `protocols/store.md`.

use redb::TableDefinition;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::Error;
use crate::message::Header;

/// The versioned names of the tables, the only place they are spelled.
pub(crate) mod name {
    /// See [`super::MESSAGES`].
    pub(crate) const MESSAGES: &str = "messages-1";
    /// See [`super::BY_CREATED`].
    pub(crate) const BY_CREATED: &str = "by-created-1";
    /// See [`super::INLINE`].
    pub(crate) const INLINE: &str = "inline-content-2";
    /// Version 1 of [`INLINE`], keyed by id alone; only read to migrate it.
    pub(crate) const INLINE_V1: &str = "inline-content-1";
    /// See [`super::PARTIAL`].
    pub(crate) const PARTIAL: &str = "partial-1";
    /// See [`super::DELIVERY`].
    pub(crate) const DELIVERY: &str = "delivery-1";
    /// See [`super::META`]. Unversioned: it says which version the others are.
    pub(crate) const META: &str = "meta";
}

/// id -> [`Stored`] (CBOR): every complete message.
pub(crate) const MESSAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name::MESSAGES);
/// (created_ms, id) -> (): creation order, for manifests and expiry.
pub(crate) const BY_CREATED: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new(name::BY_CREATED);
/// (created_ms, id) -> content, for messages small enough to live in the index (see
/// `Config::inline_max`). Keyed by creation time first so that messages arriving together,
/// mostly recent ones, land in the same pages: a commit of many rewrites a few pages instead
/// of one per message (`protocols/store.md` 2, version 2).
pub(crate) const INLINE: TableDefinition<(u64, &[u8]), &[u8]> = TableDefinition::new(name::INLINE);
/// id -> content: [`INLINE`] in schema version 1.
pub(crate) const INLINE_V1: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name::INLINE_V1);
/// id -> [`PartialRecord`] (CBOR): messages being received; their bytes are in `partial/<id>`.
pub(crate) const PARTIAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name::PARTIAL);
/// (id, peer) -> [`Delivery`] (CBOR): what we know about handing a message to a peer.
pub(crate) const DELIVERY: TableDefinition<(&[u8], &[u8]), &[u8]> =
    TableDefinition::new(name::DELIVERY);
/// name -> value: [`SCHEMA_VERSION_KEY`].
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new(name::META);

/// The key in [`META`] holding the schema version the tables are in.
pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";
/// The schema this code reads and writes.
pub(crate) const SCHEMA_VERSION: u64 = 2;

/// A complete message's index record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The header as received (with the hops it arrived with).
    pub header: Header,
    /// When this node finished storing it (Unix ms).
    pub received_ms: u64,
    /// Whether the content is in the `inline-content-1` table rather than a file.
    pub inline: bool,
}

/// A message being received.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PartialRecord {
    pub(crate) header: Header,
    pub(crate) started_ms: u64,
}

/// Delivery state of one message towards one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// The peer has it (it accepted our push, or told us it already had it).
    Sent {
        /// When we learned it (Unix ms).
        at_ms: u64,
    },
    /// The peer refused it for a reason that will not change; never retried.
    Failed {
        /// The peer's error, for `mule status` and logs.
        reason: String,
        /// When (Unix ms).
        at_ms: u64,
    },
    /// A transient failure; retry after `next_attempt_ms`.
    Retry {
        /// Attempts so far.
        attempts: u32,
        /// Earliest next attempt (Unix ms).
        next_attempt_ms: u64,
        /// The last error.
        last_error: String,
    },
}

impl Delivery {
    /// Whether nothing more is to be done for this (message, peer).
    pub fn is_final(&self) -> bool {
        matches!(self, Delivery::Sent { .. } | Delivery::Failed { .. })
    }
}

/// A CBOR record stored as a table value. Tying each record type to its table means an error
/// names the table without the caller spelling it, and a record cannot be decoded as another.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The table whose values are records of this type.
    const TABLE: &'static str;
}

impl Record for Stored {
    const TABLE: &'static str = name::MESSAGES;
}

impl Record for PartialRecord {
    const TABLE: &'static str = name::PARTIAL;
}

impl Record for Delivery {
    const TABLE: &'static str = name::DELIVERY;
}

/// Encodes a record to be written; a failure is [`Error::Encode`].
pub(crate) fn encode<T: Record>(value: &T) -> Result<Vec<u8>, Error> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(|source| Error::Encode {
        table: T::TABLE,
        source,
    })
}

/// Decodes a record read from disk; a failure is [`Error::Corrupt`].
pub(crate) fn decode<T: Record>(bytes: &[u8]) -> Result<T, Error> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| Error::Corrupt {
        table: T::TABLE,
        reason: e.to_string(),
    })
}
