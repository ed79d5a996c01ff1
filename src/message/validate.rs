//! Header validation: everything a node checks before it accepts a byte of content.

use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};

use super::{CertificateChain, Header, MessageId};

/// Bounds a node applies to headers. The `MAX_*` constants are format limits every node shares;
/// the fields are node policy (`mule node --max-hops`, ...).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most relays a message may have passed; more is `too many hops`.
    pub max_hops: usize,
    /// Largest content accepted, in bytes.
    pub max_length: u64,
    /// Longest lifespan accepted.
    pub max_lifespan: Duration,
    /// How far in the future a creation time may lie (clocks of offline devices drift).
    pub clock_skew: Duration,
}

impl Limits {
    /// Longest recipient string, in bytes.
    pub const MAX_RECIPIENT_LEN: usize = 256;
    /// Most hops any header may carry on the wire, whatever a node's policy.
    pub const MAX_HOPS: usize = 64;
    /// Longest hop entry (a peer id in binary form; ed25519 ids are 38 bytes).
    pub const MAX_HOP_LEN: usize = 64;
    /// Most certificate chains per header.
    pub const MAX_CHAINS: usize = 4;
    /// Most certificates per chain.
    pub const MAX_CHAIN_LEN: usize = 8;
    /// Largest single certificate, in bytes.
    pub const MAX_CERTIFICATE_LEN: usize = 1024;

    /// Default hop limit. Ring selection with the default L = 2 links each node to the next two
    /// in the ring, so a ring of N nodes has a diameter of about N/2 hops: 64 covers 128 nodes.
    pub const DEFAULT_MAX_HOPS: usize = 64;
    /// Default content limit: 2 GiB.
    pub const DEFAULT_MAX_LENGTH: u64 = 2 << 30;
    /// Default lifespan limit: 30 days.
    pub const DEFAULT_MAX_LIFESPAN: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Default clock skew: 5 minutes.
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(300);
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_hops: Self::DEFAULT_MAX_HOPS,
            max_length: Self::DEFAULT_MAX_LENGTH,
            max_lifespan: Self::DEFAULT_MAX_LIFESPAN,
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
        }
    }
}

/// Why a header is not acceptable. Each variant maps to a wire error code (`protocols/errors.md`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The recipient is empty or too long.
    #[error("recipient is {len} bytes; it must be 1 to {max} bytes")]
    BadRecipient {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More hops than allowed.
    #[error("message has passed {hops} hops, more than the limit of {max}")]
    TooManyHops {
        /// Hops in the header.
        hops: usize,
        /// The limit.
        max: usize,
    },
    /// A hop entry is empty or too long to be a peer id.
    #[error("hop {index} is {len} bytes, not a peer id")]
    BadHop {
        /// Position in the hop list.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// Certificate chains over the format limits.
    #[error("certificate chains over the limit ({chains} chains, longest {longest} certificates, largest {largest} bytes; limits {max_chains}, {max_chain_len}, {max_cert_len})")]
    BadCertificates {
        /// Number of chains.
        chains: usize,
        /// Certificates in the longest chain.
        longest: usize,
        /// Bytes in the largest certificate.
        largest: usize,
        /// Limit on chains.
        max_chains: usize,
        /// Limit on chain length.
        max_chain_len: usize,
        /// Limit on certificate size.
        max_cert_len: usize,
    },
    /// Content larger than this node accepts.
    #[error("content is {length} bytes, over the limit of {max}")]
    TooBig {
        /// Declared length.
        length: u64,
        /// The limit.
        max: u64,
    },
    /// Lifespan longer than this node accepts.
    #[error("lifespan of {lifespan_ms} ms is over the limit of {max_ms} ms")]
    LifespanTooLong {
        /// Declared lifespan.
        lifespan_ms: u64,
        /// The limit.
        max_ms: u64,
    },
    /// The sender field is not an ed25519 public key.
    #[error("sender is not a valid ed25519 public key")]
    BadSenderKey,
    /// The signature does not verify over the signed fields.
    #[error("invalid signature")]
    InvalidSignature,
    /// The id is not the hash of the signed header.
    #[error("message id {claimed} does not match its header (expected {actual})")]
    IdMismatch {
        /// The id carried.
        claimed: MessageId,
        /// The id the header hashes to.
        actual: MessageId,
    },
    /// Created further in the future than the allowed clock skew.
    #[error(
        "message created at {created_ms} ms, {ahead_ms} ms in the future (skew limit {skew_ms} ms)"
    )]
    FromTheFuture {
        /// Creation time.
        created_ms: u64,
        /// How far ahead of our clock.
        ahead_ms: u64,
        /// Allowed skew.
        skew_ms: u64,
    },
    /// Past its lifespan.
    #[error("message expired at {expired_ms} ms (now {now_ms} ms)")]
    Expired {
        /// Expiry time.
        expired_ms: u64,
        /// Our clock.
        now_ms: u64,
    },
    /// The header could not be encoded to check it.
    #[error("{0}")]
    Encoding(String),
}

impl Header {
    /// Checks bounds, signature, id and time against `limits` at `now_ms` (Unix ms).
    ///
    /// Cheap bounds come first so that oversized headers are refused before any hashing; the
    /// signature comes before the id so a tampered signed field reports `invalid signature`.
    /// Hops are bounded but not signed: relays append to them.
    pub fn validate(&self, now_ms: u64, limits: &Limits) -> Result<(), ValidationError> {
        self.check_bounds(limits)?;
        let key =
            VerifyingKey::from_bytes(&self.sender).map_err(|_| ValidationError::BadSenderKey)?;
        let input = self
            .signing_input()
            .map_err(|e| ValidationError::Encoding(e.to_string()))?;
        key.verify_strict(&input, &Signature::from_bytes(&self.signature))
            .map_err(|_| ValidationError::InvalidSignature)?;
        let actual = self
            .compute_id()
            .map_err(|e| ValidationError::Encoding(e.to_string()))?;
        if actual != self.id {
            return Err(ValidationError::IdMismatch {
                claimed: self.id,
                actual,
            });
        }
        self.check_time(now_ms, limits)
    }

    /// Bounds and time, without the signature: for a header this node just signed itself,
    /// where verifying would cost as much as signing and prove nothing.
    pub fn check_unsigned(&self, now_ms: u64, limits: &Limits) -> Result<(), ValidationError> {
        self.check_bounds(limits)?;
        self.check_time(now_ms, limits)
    }

    /// Only the time checks: a stored header is re-checked for expiry without re-verifying.
    pub fn check_time(&self, now_ms: u64, limits: &Limits) -> Result<(), ValidationError> {
        let skew_ms = limits.clock_skew.as_millis() as u64;
        if self.created_ms > now_ms.saturating_add(skew_ms) {
            return Err(ValidationError::FromTheFuture {
                created_ms: self.created_ms,
                ahead_ms: self.created_ms - now_ms,
                skew_ms,
            });
        }
        if self.expires_ms() < now_ms {
            return Err(ValidationError::Expired {
                expired_ms: self.expires_ms(),
                now_ms,
            });
        }
        Ok(())
    }

    fn check_bounds(&self, limits: &Limits) -> Result<(), ValidationError> {
        let len = self.recipient.len();
        if len == 0 || len > Limits::MAX_RECIPIENT_LEN {
            return Err(ValidationError::BadRecipient {
                len,
                max: Limits::MAX_RECIPIENT_LEN,
            });
        }
        let max_hops = limits.max_hops.min(Limits::MAX_HOPS);
        if self.hops.len() > max_hops {
            return Err(ValidationError::TooManyHops {
                hops: self.hops.len(),
                max: max_hops,
            });
        }
        if let Some((index, hop)) = self
            .hops
            .iter()
            .enumerate()
            .find(|(_, h)| h.is_empty() || h.len() > Limits::MAX_HOP_LEN)
        {
            return Err(ValidationError::BadHop {
                index,
                len: hop.len(),
            });
        }
        check_chains(&self.chains)?;
        if self.length > limits.max_length {
            return Err(ValidationError::TooBig {
                length: self.length,
                max: limits.max_length,
            });
        }
        let max_ms = limits.max_lifespan.as_millis() as u64;
        if self.lifespan_ms > max_ms {
            return Err(ValidationError::LifespanTooLong {
                lifespan_ms: self.lifespan_ms,
                max_ms,
            });
        }
        Ok(())
    }
}

/// Checks certificate chains against the format limits ([`Limits::MAX_CHAINS`],
/// [`Limits::MAX_CHAIN_LEN`], [`Limits::MAX_CERTIFICATE_LEN`]). Shared by the message header and
/// the names exchange, which carry chains under the same bounds.
pub fn check_chains(chains: &[CertificateChain]) -> Result<(), ValidationError> {
    let longest = chains.iter().map(Vec::len).max().unwrap_or(0);
    let largest = chains.iter().flatten().map(|c| c.len()).max().unwrap_or(0);
    if chains.len() > Limits::MAX_CHAINS
        || longest > Limits::MAX_CHAIN_LEN
        || largest > Limits::MAX_CERTIFICATE_LEN
    {
        return Err(ValidationError::BadCertificates {
            chains: chains.len(),
            longest,
            largest,
            max_chains: Limits::MAX_CHAINS,
            max_chain_len: Limits::MAX_CHAIN_LEN,
            max_cert_len: Limits::MAX_CERTIFICATE_LEN,
        });
    }
    Ok(())
}
