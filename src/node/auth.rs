//! The one place where access is decided: every inbound request, every outgoing push and every
//! message's original sender pass through [`Authoriser`]. Today it allows everything; access
//! lists with names from certificate chains and rate limits plug in here without touching the
//! protocol handlers.

use libp2p::PeerId;

use crate::message::Header;

/// What is being asked, for the access decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// An inbound diff request.
    Diff,
    /// An inbound push (chunk or resume-offset).
    Push,
    /// An inbound repository request (manifest or pull).
    Repo,
}

/// Why access was refused; becomes `not-authorized` (or `rate-limit-exceeded`) on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The peer or sender is not on the access list.
    #[error("{0} is not authorized")]
    NotAuthorized(String),
    /// The peer is over its rate.
    #[error("{0} is over its rate limit")]
    RateLimited(String),
}

/// Access policy of a node.
#[derive(Clone, Debug, Default)]
pub struct Authoriser {
    _private: (),
}

impl Authoriser {
    /// A policy that allows every peer and sender.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// May `peer` make this request of us?
    pub fn inbound(&self, peer: &PeerId, action: Action) -> Result<(), Denied> {
        let _ = (peer, action);
        Ok(())
    }

    /// May we carry messages from this header's original sender (checked on receipt and send)?
    pub fn sender(&self, header: &Header) -> Result<(), Denied> {
        let _ = header;
        Ok(())
    }

    /// May we push this message to `peer`?
    pub fn push_to(&self, peer: &PeerId, header: &Header) -> Result<(), Denied> {
        let _ = (peer, header);
        Ok(())
    }
}
