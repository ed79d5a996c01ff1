//! `/mule/diff/1`: which of these messages do you lack? Spec: `protocols/diff.md`.

use serde::{Deserialize, Serialize};

use super::WireError;
use crate::message::MessageId;

/// Protocol name.
pub const PROTOCOL: &str = "/mule/diff/1";
/// Most ids in one request.
pub const MAX_IDS: usize = 256;
/// Largest request on the wire (256 ids of 34 bytes plus framing, with room to spare).
pub const REQUEST_MAX: u64 = 16 * 1024;
/// Largest response on the wire.
pub const RESPONSE_MAX: u64 = 4 * 1024;

/// The sender offers message ids it could push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// At most [`MAX_IDS`] ids.
    pub ids: Vec<MessageId>,
}

/// One boolean per offered id, in order: `true` if the receiver holds it complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// Answers, same length and order as the request's ids.
    Has(Vec<bool>),
    /// The request was refused.
    Error(WireError),
}
