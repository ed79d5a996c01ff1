//! `/mule/names/1`: two peers tell each other the certificate chains that name them.
//! Spec: `protocols/names-exchange.md` (the certificates themselves: `protocols/names.md`).
//!
//! Request and response have the same shape, [`Chains`]: a version and a list of certificate
//! chains, each a list of opaque certificates, leaf first. The bounds are those of a message
//! header's `chains` field ([`message::check_chains`](crate::message::check_chains)), and they
//! are enforced while decoding: a [`Chains`] value that exists is always within them.
//!
//! # Discrepancies
//!
//! None known.

use serde::{Deserialize, Serialize};

use crate::message::{check_chains, CertificateChain, Limits, ValidationError};

/// Protocol name.
pub const PROTOCOL: &str = "/mule/names/1";
/// The only version of the exchange body this node speaks (the `v` field).
pub const VERSION: u64 = 1;
/// Largest request: every chain full of the largest certificates (each with its 3-byte CBOR
/// head), plus 1 KiB for the map, keys and array heads.
pub const REQUEST_MAX: u64 =
    (Limits::MAX_CHAINS * Limits::MAX_CHAIN_LEN * (Limits::MAX_CERTIFICATE_LEN + 3) + 1024) as u64;
/// Largest response: the same shape as a request.
pub const RESPONSE_MAX: u64 = REQUEST_MAX;

/// A names-exchange body: the certificate chains that name the sending node.
///
/// Built by [`Chains::new`] or decoded; either way the version is [`VERSION`] and the chains
/// are within the header bounds, so a receiver never holds an oversized or unknown body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct Chains {
    v: u64,
    chains: Vec<CertificateChain>,
}

/// What the requester sends: its own chains.
pub type Request = Chains;
/// What the responder answers: its own chains.
pub type Response = Chains;

/// The wire form before validation.
#[derive(Deserialize)]
struct Unchecked {
    v: u64,
    chains: Vec<CertificateChain>,
}

impl TryFrom<Unchecked> for Chains {
    type Error = Error;

    fn try_from(raw: Unchecked) -> Result<Self, Error> {
        if raw.v != VERSION {
            return Err(Error::UnsupportedVersion { got: raw.v });
        }
        Self::new(raw.chains)
    }
}

impl Chains {
    /// A body carrying `chains`, checked against the header bounds.
    pub fn new(chains: Vec<CertificateChain>) -> Result<Self, Error> {
        check_chains(&chains)?;
        Ok(Self { v: VERSION, chains })
    }

    /// A body without chains: what a node without names sends.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            v: VERSION,
            chains: Vec::new(),
        }
    }

    /// The chains, leaf certificate first in each.
    #[must_use]
    pub fn chains(&self) -> &[CertificateChain] {
        &self.chains
    }

    /// Takes the chains out.
    #[must_use]
    pub fn into_chains(self) -> Vec<CertificateChain> {
        self.chains
    }
}

/// Why a names-exchange body was refused. The spec's rule for both sides: a peer whose body is
/// refused is treated as nameless.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body's `v` is not [`VERSION`].
    #[error("names exchange version {got} is not supported; this node speaks version {VERSION}")]
    UnsupportedVersion {
        /// The version received.
        got: u64,
    },
    /// More chains, longer chains or larger certificates than a header may carry.
    #[error(transparent)]
    BadChains(#[from] ValidationError),
}
