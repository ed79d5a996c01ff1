//! Certificates: an issuer key grants a subject key one name extension for a while.
//!
//! The wire form is a CBOR map like the message header; the signature covers a CBOR array that
//! starts with the domain tag [`CERT_TAG`] (`protocols/names.md` section 2). A certificate has
//! exactly one accepted byte form: the decoder re-encodes what it read and refuses any
//! difference, so no one can alter a certificate's bytes without breaking it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::name::Segment;
use crate::identity::Identity;
use crate::message::Limits;

/// Domain separation tag, the first element of the signing input.
pub const CERT_TAG: &str = "mule/cert/1";
/// The only certificate version this code reads and writes.
pub const VERSION: u64 = 1;
/// Largest encoded certificate, in bytes (the message header's bound on one certificate).
pub const MAX_CERTIFICATE_LEN: usize = Limits::MAX_CERTIFICATE_LEN;
/// The one caveat this version understands: the largest message content, in bytes.
pub const MAX_MESSAGE_SIZE: &str = "max-message-size";

/// A caveat's key. Ordered as deterministic CBOR orders text keys (shorter first, then by
/// bytes), so a caveat map always encodes the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaveatKey(pub String);

impl Ord for CaveatKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.len(), self.0.as_bytes()).cmp(&(other.0.len(), other.0.as_bytes()))
    }
}

impl PartialOrd for CaveatKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Restrictions on what the subject may do, keyed by caveat name; values are any CBOR so that
/// a caveat from a later version is read, recognised as unknown and refused, never ignored.
pub type Caveats = BTreeMap<CaveatKey, cbor4ii::core::Value>;

/// What the known caveats of a certificate (or a chain) restrict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// Largest message content the subject may send, in bytes (`max-message-size`).
    pub max_message_size: Option<u64>,
}

impl Restrictions {
    /// The stricter of two sets of restrictions: a chain is as restricted as its strictest link.
    pub fn tighten(self, other: Self) -> Self {
        let max_message_size = match (self.max_message_size, other.max_message_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self { max_message_size }
    }

    /// The caveat map that states these restrictions.
    pub fn to_caveats(self) -> Caveats {
        let mut caveats = Caveats::new();
        if let Some(size) = self.max_message_size {
            caveats.insert(
                CaveatKey(MAX_MESSAGE_SIZE.to_owned()),
                cbor4ii::core::Value::Integer(i128::from(size)),
            );
        }
        caveats
    }
}

/// Why a caveat map is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaveatError {
    /// A caveat this version does not know; the certificate is invalid rather than the
    /// restriction ignored.
    #[error("unknown caveat {0:?}")]
    Unknown(String),
    /// A known caveat with a value of the wrong type.
    #[error("caveat {caveat:?} must be {expected}")]
    BadValue {
        /// The caveat.
        caveat: String,
        /// What its value must be.
        expected: &'static str,
    },
}

/// Why bytes are not a certificate, or a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// More bytes than any certificate may have; refused before parsing.
    #[error("certificate is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a CBOR certificate map (missing field, wrong type, bad name segment, ...).
    #[error("not a certificate: {0}")]
    Malformed(String),
    /// A version this code does not read.
    #[error("certificate version {0} is not supported (only version 1 is)")]
    UnsupportedVersion(u64),
    /// Decodes, but is not in the one canonical byte form (other key order, long integer
    /// heads, extra keys or trailing bytes).
    #[error("certificate is not canonically encoded")]
    NotCanonical,
    /// Encoding failed (only when memory runs out).
    #[error("could not encode certificate: {0}")]
    Encoding(String),
}

/// A decoded certificate. Build one with [`Grant::sign`], read one with [`Certificate::decode`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// Always [`VERSION`].
    pub version: u64,
    /// The signer's raw ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub issuer: [u8; 32],
    /// The key being named.
    #[serde(with = "serde_bytes")]
    pub subject: [u8; 32],
    /// The one segment this certificate appends to the issuer's name.
    pub name: Segment,
    /// First instant of validity, Unix ms, inclusive.
    pub not_before_ms: u64,
    /// End of validity, Unix ms, exclusive.
    pub not_after_ms: u64,
    /// Restrictions; unknown ones make the certificate invalid.
    pub caveats: Caveats,
    /// ed25519 signature by `issuer` over [`Certificate::signing_input`].
    #[serde(with = "serde_bytes")]
    pub signature: [u8; 64],
}

/// What an issuer states; [`Grant::sign`] turns it into a [`Certificate`].
#[derive(Clone, Debug)]
pub struct Grant {
    /// The key being named.
    pub subject: [u8; 32],
    /// The name extension granted.
    pub name: Segment,
    /// First instant of validity, Unix ms, inclusive.
    pub not_before_ms: u64,
    /// End of validity, Unix ms, exclusive.
    pub not_after_ms: u64,
    /// Restrictions carried by the certificate.
    pub restrictions: Restrictions,
}

impl Grant {
    /// Signs the grant with the issuer's key and checks the result fits the size bound.
    pub fn sign(self, issuer: &Identity) -> Result<Certificate, CertError> {
        let mut cert = Certificate {
            version: VERSION,
            issuer: issuer.public_key(),
            subject: self.subject,
            name: self.name,
            not_before_ms: self.not_before_ms,
            not_after_ms: self.not_after_ms,
            caveats: self.restrictions.to_caveats(),
            signature: [0; 64],
        };
        cert.signature = issuer.sign(&cert.signing_input()?);
        let len = cert.encode()?.len();
        if len > MAX_CERTIFICATE_LEN {
            return Err(CertError::TooLarge {
                len,
                max: MAX_CERTIFICATE_LEN,
            });
        }
        Ok(cert)
    }
}

impl Certificate {
    /// The bytes the issuer signs: `[tag, version, issuer, subject, name, not_before_ms,
    /// not_after_ms, caveats]` as deterministic CBOR.
    pub fn signing_input(&self) -> Result<Vec<u8>, CertError> {
        to_cbor(&(
            CERT_TAG,
            self.version,
            serde_bytes::Bytes::new(&self.issuer),
            serde_bytes::Bytes::new(&self.subject),
            &self.name,
            self.not_before_ms,
            self.not_after_ms,
            &self.caveats,
        ))
    }

    /// The wire form: a CBOR map of every field in declaration order.
    pub fn encode(&self) -> Result<Vec<u8>, CertError> {
        to_cbor(self)
    }

    /// Parses the wire form: bounded, version 1 only, canonical only. Checks no signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.len() > MAX_CERTIFICATE_LEN {
            return Err(CertError::TooLarge {
                len: bytes.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let cert: Self =
            cbor4ii::serde::from_slice(bytes).map_err(|e| CertError::Malformed(e.to_string()))?;
        if cert.version != VERSION {
            return Err(CertError::UnsupportedVersion(cert.version));
        }
        if cert.encode()? != bytes {
            return Err(CertError::NotCanonical);
        }
        Ok(cert)
    }

    /// Whether the issuer's signature verifies (strict ed25519, as for message headers).
    pub fn signature_ok(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.issuer) else {
            return false;
        };
        let Ok(input) = self.signing_input() else {
            return false;
        };
        key.verify_strict(&input, &Signature::from_bytes(&self.signature))
            .is_ok()
    }

    /// The known restrictions, refusing unknown caveats and ill-typed values.
    pub fn restrictions(&self) -> Result<Restrictions, CaveatError> {
        let mut restrictions = Restrictions::default();
        for (key, value) in &self.caveats {
            match key.0.as_str() {
                MAX_MESSAGE_SIZE => {
                    let size = match value {
                        cbor4ii::core::Value::Integer(i) => u64::try_from(*i).ok(),
                        _ => None,
                    };
                    restrictions.max_message_size = Some(size.ok_or(CaveatError::BadValue {
                        caveat: key.0.clone(),
                        expected: "an unsigned integer",
                    })?);
                }
                other => return Err(CaveatError::Unknown(other.to_owned())),
            }
        }
        Ok(restrictions)
    }
}

fn to_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, CertError> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(|e| CertError::Encoding(e.to_string()))
}
