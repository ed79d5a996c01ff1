//! How the node's typed errors become wire errors: one table from each refusal to the code a
//! peer sees (see `protocols/errors.md`).

use crate::message::ValidationError;
use crate::node::auth::Denied;
use crate::node::relay::Refusal;
use crate::protocol::{Code, WireError};
use crate::store;

/// A wire error with a message.
pub(super) fn err(code: Code, message: impl Into<String>) -> WireError {
    WireError::new(code, message)
}

/// A header that failed validation.
pub(super) fn invalid(e: &ValidationError) -> WireError {
    let code = match e {
        ValidationError::TooManyHops { .. } => Code::TooManyHops,
        ValidationError::TooBig { .. } => Code::TooBig,
        ValidationError::Expired { .. } => Code::Expired,
        ValidationError::FromTheFuture { .. } => Code::NotYetValid,
        ValidationError::InvalidSignature
        | ValidationError::IdMismatch { .. }
        | ValidationError::BadSenderKey => Code::InvalidSignature,
        _ => Code::BadRequest,
    };
    err(code, e.to_string())
}

/// A request or message the access policy refused.
pub(super) fn denied(e: Denied) -> WireError {
    if e.is_transient() {
        err(Code::RateLimitExceeded, e.to_string())
    } else {
        err(Code::NotAuthorized, e.to_string())
    }
}

/// A message the relay policy refused.
pub(super) fn refused(e: Refusal) -> WireError {
    match e {
        Refusal::NotForMe { .. } => err(Code::NoRoute, e.to_string()),
    }
}

/// A store failure while serving a request.
pub(super) fn store_error(e: store::Error) -> WireError {
    match e {
        store::Error::AlreadyStored(_) => err(Code::AlreadySeen, e.to_string()),
        store::Error::Busy(_) => err(Code::Busy, e.to_string()),
        store::Error::IncorrectOffset { have, .. } => {
            err(Code::IncorrectOffset { have }, e.to_string())
        }
        store::Error::TooLong { .. } => err(Code::BadRequest, e.to_string()),
        store::Error::ContentMismatch(_) => err(Code::ContentMismatch, e.to_string()),
        store::Error::NotFound(_) => err(Code::NotFound, e.to_string()),
        store::Error::OutOfRange { .. } => err(Code::BadRequest, e.to_string()),
        // Transient: the store takes writes again by itself once space is freed.
        store::Error::StorageFull { .. } => {
            tracing::warn!(error = %e, "refused a message: storage full");
            err(Code::StorageFull, "receiver storage is full; retry later")
        }
        // Transient too: room comes back as this node's own messages are delivered and others
        // expire. The local reasons (our quota, our unsent messages) are not the peer's business.
        store::Error::QuotaFull(ref full) => {
            tracing::warn!(error = %e, "refused a message: store quota full");
            err(
                Code::StorageFull,
                format!(
                    "receiver store is full: a {}-byte message does not fit in its quota; retry later",
                    full.length
                ),
            )
        }
        // Our own trouble (disk, shutdown): the peer may retry later.
        other => {
            tracing::error!(error = %other, "store failure while serving a request");
            err(Code::Busy, "receiver storage failure; retry later")
        }
    }
}
