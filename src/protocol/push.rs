//! `/mule/push/1`: hand a message over in resumable chunks. Spec: `protocols/push.md`.

use serde::{Deserialize, Serialize};

use super::WireError;
use crate::message::{Header, MessageId};

/// Protocol name.
pub const PROTOCOL: &str = "/mule/push/1";
/// Default chunk size: large enough for throughput, small enough to bound memory per stream.
pub const DEFAULT_CHUNK: usize = 256 * 1024;
/// Largest chunk a receiver accepts.
pub const MAX_CHUNK: usize = 1024 * 1024;
/// Largest request: a chunk plus the largest header plus framing.
pub const REQUEST_MAX: u64 = (MAX_CHUNK + Header::MAX_ENCODED_LEN + 1024) as u64;
/// Most messages in one batch.
pub const MAX_BATCH: usize = 256;
/// Largest response: a batch answer with an error for every message.
pub const RESPONSE_MAX: u64 = (MAX_BATCH * (crate::protocol::error::MAX_MESSAGE_LEN + 64)) as u64;

/// A small message carried whole inside a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whole {
    /// The header, with the pushing relay appended to `hops`.
    pub header: Header,
    /// The whole content.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A push request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Request {
    /// How many bytes of this message do you hold? Answered with [`Response::Offset`], or
    /// `already-seen` if complete.
    ResumeOffset {
        /// The message.
        id: MessageId,
    },
    /// Content bytes `[offset, offset + data.len())` of the message `header` describes.
    /// Every chunk carries the header, so any chunk can open (or reopen) a transfer.
    Chunk {
        /// The header, with the pushing relay appended to `hops`.
        header: Box<Header>,
        /// Where `data` starts in the content.
        offset: u64,
        /// At most [`MAX_CHUNK`] bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Several small messages, each whole, in one request (at most [`MAX_BATCH`], and within
    /// [`REQUEST_MAX`] bytes). Answered with [`Response::Batch`]. Each message is judged on its
    /// own, as if it came in a chunk of its own at offset 0.
    Batch(Vec<Whole>),
}

/// A push response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// The next offset the receiver expects; equal to the length once the message is stored.
    Offset(u64),
    /// One entry per message of a batch, in order: `null` if it is stored now, else why not
    /// (`already-seen` counts as delivered).
    Batch(Vec<Option<WireError>>),
    /// The request was refused.
    Error(WireError),
}
