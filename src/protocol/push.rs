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
/// Largest response.
pub const RESPONSE_MAX: u64 = 4 * 1024;

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
}

/// A push response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// The next offset the receiver expects; equal to the length once the message is stored.
    Offset(u64),
    /// The request was refused.
    Error(WireError),
}
