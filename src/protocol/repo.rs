//! `/mule/repo/1`: list and pull what a node carries (a data mule's repository).
//! Spec: `protocols/repo.md`.

use serde::{Deserialize, Serialize};

use super::WireError;
use crate::message::{Header, MessageId};

/// Protocol name.
pub const PROTOCOL: &str = "/mule/repo/1";
/// Most headers in one manifest page.
pub const MAX_PAGE: u32 = 128;
/// Largest pull.
pub const MAX_PULL: u64 = 1024 * 1024;
/// Largest request.
pub const REQUEST_MAX: u64 = 4 * 1024;
/// Largest response: a full page of the largest headers, or a maximal pull.
pub const RESPONSE_MAX: u64 = MAX_PAGE as u64 * Header::MAX_ENCODED_LEN as u64 + 64 * 1024;

/// Where a manifest page starts: after this (creation time, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Creation time of the last header of the previous page.
    pub created_ms: u64,
    /// Its id.
    pub id: MessageId,
}

/// A repository request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Request {
    /// Complete, unexpired headers in creation order.
    Manifest {
        /// Start after this; `null` for the first page.
        after: Option<Cursor>,
        /// At most [`MAX_PAGE`].
        limit: u32,
    },
    /// Content bytes of a complete message.
    Pull {
        /// The message.
        id: MessageId,
        /// First byte.
        offset: u64,
        /// At most [`MAX_PULL`] bytes.
        length: u64,
    },
}

/// A repository response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// A page of headers; `next` is the cursor for the following page, `null` at the end.
    Manifest {
        /// The headers.
        headers: Vec<Header>,
        /// Where to continue.
        next: Option<Cursor>,
    },
    /// Pulled content.
    Chunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The request was refused.
    Error(WireError),
}
