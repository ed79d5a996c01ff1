//! redb tables and the records they hold. Names carry a version: a format change gets new names
//! and a migration, never a silent reinterpretation.

use redb::TableDefinition;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::Error;
use crate::message::Header;

/// id -> [`Stored`] (CBOR): every complete message.
pub(crate) const MESSAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("messages-1");
/// (created_ms, id) -> (): creation order, for manifests and expiry.
pub(crate) const BY_CREATED: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("by-created-1");
/// id -> content, for messages small enough to live in the index (see `Config::inline_max`).
pub(crate) const INLINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline-content-1");
/// id -> [`PartialRecord`] (CBOR): messages being received; their bytes are in `partial/<id>`.
pub(crate) const PARTIAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("partial-1");
/// (id, peer) -> [`Delivery`] (CBOR): what we know about handing a message to a peer.
pub(crate) const DELIVERY: TableDefinition<(&[u8], &[u8]), &[u8]> =
    TableDefinition::new("delivery-1");
/// name -> value: `schema_version`.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The schema this code reads and writes.
pub(crate) const SCHEMA_VERSION: u64 = 1;

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

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(|e| Error::Corrupt {
        table: "encode",
        reason: e.to_string(),
    })
}

pub(crate) fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, Error> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| Error::Corrupt {
        table,
        reason: e.to_string(),
    })
}
