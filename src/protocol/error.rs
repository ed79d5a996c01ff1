//! Wire error codes, shared by every mule protocol (`protocols/errors.md`).

use serde::{Deserialize, Serialize};

/// Longest error message carried on the wire; longer ones are cut.
pub const MAX_MESSAGE_LEN: usize = 512;

/// Why a peer refused a request. Serialized as a kebab-case string (or a one-key map for
/// `incorrect-offset`), so other implementations can match on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The receiver already holds the message complete. Counts as delivered.
    AlreadySeen,
    /// Another transfer is writing the message, or the receiver is overloaded. Retry later.
    Busy,
    /// The content does not hash to the header's sha256.
    ContentMismatch,
    /// The message is past its lifespan.
    Expired,
    /// The message was created further in the future than the receiver's clock skew allows;
    /// retry once the clocks agree.
    NotYetValid,
    /// A chunk did not start where the receiver's held bytes end; resume at `have`.
    IncorrectOffset {
        /// Bytes the receiver holds.
        have: u64,
    },
    /// The header's signature or id does not verify.
    InvalidSignature,
    /// The receiver will not carry messages for this recipient.
    NoRoute,
    /// The peer sent more than its access list allows; retry later.
    RateLimitExceeded,
    /// Content or request larger than the receiver accepts.
    TooBig,
    /// The message passed more relays than the receiver accepts.
    TooManyHops,
    /// The relaying peer or the original sender is not allowed.
    NotAuthorized,
    /// The request is malformed or violates the protocol.
    BadRequest,
    /// The requested message is not here (repository pulls).
    NotFound,
    /// The receiver's disk is full: it stored nothing. Unlike `busy`, it says the receiver will
    /// not take new messages until space is freed there, so retry much later; nothing is wrong
    /// with the message.
    StorageFull,
}

impl Code {
    /// Whether retrying the same message with this peer can never succeed.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Code::ContentMismatch
                | Code::Expired
                | Code::InvalidSignature
                | Code::NoRoute
                | Code::TooBig
                | Code::TooManyHops
                | Code::NotAuthorized
                | Code::BadRequest
        )
    }

    /// The stable kebab-case name, for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Code::AlreadySeen => "already-seen",
            Code::Busy => "busy",
            Code::ContentMismatch => "content-mismatch",
            Code::Expired => "expired",
            Code::NotYetValid => "not-yet-valid",
            Code::IncorrectOffset { .. } => "incorrect-offset",
            Code::InvalidSignature => "invalid-signature",
            Code::NoRoute => "no-route",
            Code::RateLimitExceeded => "rate-limit-exceeded",
            Code::TooBig => "too-big",
            Code::TooManyHops => "too-many-hops",
            Code::NotAuthorized => "not-authorized",
            Code::BadRequest => "bad-request",
            Code::NotFound => "not-found",
            Code::StorageFull => "storage-full",
        }
    }
}

/// An error answer: a code for programs and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} ({message})", code.name())]
pub struct WireError {
    /// What went wrong.
    pub code: Code,
    /// Why, in words; at most [`MAX_MESSAGE_LEN`] bytes.
    pub message: String,
}

impl WireError {
    /// An error with its message cut to the wire limit.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_LEN {
            let mut cut = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self { code, message }
    }
}
