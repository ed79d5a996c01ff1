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
    /// Asks for a [`Response::States`] answer: the receiver then tells, for each lacking id,
    /// whether another peer already claimed it (so several peers that learnt a message at
    /// once do not all push its content). Absent (false) in the original form of the request,
    /// which receivers without claims ignore and answer with [`Response::Has`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claim: bool,
}

impl Request {
    /// A request that asks for claims (what this node's sync passes send).
    #[must_use]
    pub fn claiming(ids: Vec<MessageId>) -> Self {
        Self { ids, claim: true }
    }
}

/// The answer to a diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// One boolean per offered id, in order: `true` if the receiver holds it complete. The
    /// answer to a request without `claim` (and the only answer of receivers without claims).
    Has(Vec<bool>),
    /// One [`State`] per offered id, in order: the answer to a request with `claim`.
    States(Vec<State>),
    /// The request was refused.
    Error(WireError),
}

/// What the receiver says about one offered id in a [`Response::States`] answer.
///
/// On the wire an unsigned integer; a value this node does not know reads as
/// [`State::Claimed`] ("not now, ask again later"), the answer that can never cause a
/// duplicate push nor a lost message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", from = "u8")]
pub enum State {
    /// Not held: push it. The receiver now holds the id claimed for this sender for a short
    /// time, during which other peers offering it are answered [`State::Claimed`].
    Lacks,
    /// Held complete: record it as delivered.
    Has,
    /// Not held, but another peer claimed it or is transferring it: do not push now, offer it
    /// again later (by then it is usually [`State::Has`]).
    Claimed,
}

impl From<State> for u8 {
    fn from(state: State) -> Self {
        match state {
            State::Lacks => 0,
            State::Has => 1,
            State::Claimed => 2,
        }
    }
}

impl From<u8> for State {
    fn from(value: u8) -> Self {
        match value {
            0 => State::Lacks,
            1 => State::Has,
            _ => State::Claimed,
        }
    }
}
