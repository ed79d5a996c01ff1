//! Messages: a signed header plus opaque content.
//!
//! The header says who sent what to whom, until when it matters, and how to check the content
//! (length and sha256). It is signed by the sender over a canonical CBOR encoding
//! ([`Header::signing_input`]) so any implementation can verify it offline, byte for byte; the
//! relays that carried it are listed in `hops`, which is not signed (relays append to it).
//! The format is specified in `protocols/message.md`; test vectors live in `protocols/vectors/`.
//!
//! This module knows neither the network nor the store: it builds, encodes and validates headers.

mod id;
mod validate;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

pub use id::{MessageId, ParseIdError};
pub use validate::{check_chains, Limits, ValidationError};

use crate::identity::Identity;

/// Domain separation tag, the first element of the signing input. Changing the format means a new tag.
pub const FORMAT_TAG: &str = "mule/message/1";
/// Recipient meaning "everyone".
pub const BROADCAST: &str = "*";

/// A certificate chain that gives the sender's key a name; opaque until access control lands.
/// Each element is one encoded certificate, leaf first.
pub type CertificateChain = Vec<ByteBuf>;

/// The signed header of a message. Field semantics and limits: `protocols/message.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// sha256 of the signed header bytes; see [`Header::compute_id`].
    pub id: MessageId,
    /// The sender's raw ed25519 public key (also its libp2p identity).
    #[serde(with = "serde_bytes")]
    pub sender: [u8; 32],
    /// Certificate chains naming the sender (empty until access control lands).
    pub chains: Vec<CertificateChain>,
    /// A peer id, a name, or `*` for everyone.
    pub recipient: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// How long the message stays worth carrying, in milliseconds after `created_ms`.
    pub lifespan_ms: u64,
    /// Content length in bytes.
    pub length: u64,
    /// sha256 of the content.
    #[serde(with = "serde_bytes")]
    pub sha256: [u8; 32],
    /// ed25519 signature over [`Header::signing_input`].
    #[serde(with = "serde_bytes")]
    pub signature: [u8; 64],
    /// Peer ids (their binary multihash form) of the relays that carried the message, in order.
    pub hops: Vec<ByteBuf>,
}

/// What a sender states about a new message; [`Draft::sign`] turns it into a [`Header`].
#[derive(Clone, Debug)]
pub struct Draft {
    /// Recipient: a peer id, a name, or `*`.
    pub recipient: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// Lifespan in milliseconds.
    pub lifespan_ms: u64,
    /// Certificate chains to attach.
    pub chains: Vec<CertificateChain>,
}

impl Draft {
    /// Signs a header for `content` with the sender's identity.
    pub fn sign(self, identity: &Identity, content: &[u8]) -> Result<Header, EncodeError> {
        self.sign_digest(
            identity,
            content.len() as u64,
            Sha256::digest(content).into(),
        )
    }

    /// Signs a header for content already hashed (large files are hashed while streaming).
    pub fn sign_digest(
        self,
        identity: &Identity,
        length: u64,
        sha256: [u8; 32],
    ) -> Result<Header, EncodeError> {
        let mut header = Header {
            id: MessageId([0; 32]),
            sender: identity.public_key(),
            chains: self.chains,
            recipient: self.recipient,
            created_ms: self.created_ms,
            lifespan_ms: self.lifespan_ms,
            length,
            sha256,
            signature: [0; 64],
            hops: Vec::new(),
        };
        header.signature = identity.sign(&header.signing_input()?);
        header.id = header.compute_id()?;
        Ok(header)
    }
}

/// Encoding a header failed; only possible when memory runs out.
#[derive(Debug, thiserror::Error)]
#[error("could not encode header: {0}")]
pub struct EncodeError(String);

/// Decoding a header failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than any valid header can have; refused before parsing.
    #[error("header is {len} bytes, over the limit of {limit}")]
    TooLong {
        /// Bytes offered.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a CBOR header.
    #[error("malformed header: {0}")]
    Malformed(String),
}

/// Borrowed signed fields in their canonical order (a CBOR array, see `protocols/message.md`).
type SignedFields<'a> = (
    &'static str,
    &'a serde_bytes::Bytes,
    &'a [CertificateChain],
    &'a str,
    u64,
    u64,
    u64,
    &'a serde_bytes::Bytes,
);

impl Header {
    /// The largest encoded header any valid message can have; decoders refuse more before parsing.
    pub const MAX_ENCODED_LEN: usize = 48 * 1024;

    fn signed_fields(&self) -> SignedFields<'_> {
        (
            FORMAT_TAG,
            serde_bytes::Bytes::new(&self.sender),
            &self.chains,
            &self.recipient,
            self.created_ms,
            self.lifespan_ms,
            self.length,
            serde_bytes::Bytes::new(&self.sha256),
        )
    }

    /// The exact bytes the sender signs: a definite-length CBOR array of the signed fields.
    pub fn signing_input(&self) -> Result<Vec<u8>, EncodeError> {
        to_cbor(&self.signed_fields())
    }

    /// The signed header bytes: the signing input's fields followed by the signature.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let f = self.signed_fields();
        to_cbor(&(
            f.0,
            f.1,
            f.2,
            f.3,
            f.4,
            f.5,
            f.6,
            f.7,
            serde_bytes::Bytes::new(&self.signature),
        ))
    }

    /// The id this header must carry: sha256 of [`Header::signed_bytes`].
    pub fn compute_id(&self) -> Result<MessageId, EncodeError> {
        Ok(MessageId(Sha256::digest(self.signed_bytes()?).into()))
    }

    /// When the message stops being worth carrying (Unix ms).
    pub fn expires_ms(&self) -> u64 {
        self.created_ms.saturating_add(self.lifespan_ms)
    }

    /// Whether the message is addressed to everyone.
    pub fn is_broadcast(&self) -> bool {
        self.recipient == BROADCAST
    }

    /// The wire and storage form: a CBOR map keyed by field name (see `protocols/message.md`).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        to_cbor(self)
    }

    /// Parses the wire form, refusing oversized input before parsing. Does not validate.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_ENCODED_LEN {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                limit: Self::MAX_ENCODED_LEN,
            });
        }
        cbor4ii::serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

fn to_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(|e| EncodeError(e.to_string()))
}

/// The current time as Unix milliseconds; the single place that reads the wall clock for headers.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// sha256 of content, for callers that hold it in memory.
pub fn content_digest(content: &[u8]) -> [u8; 32] {
    Sha256::digest(content).into()
}

#[cfg(test)]
pub(crate) mod tests;
