//! Certificate chains: decoding with bounds, and offline verification against trusted roots.
//!
//! A chain is leaf first: `chain[0]` names the subject, each certificate is issued by the
//! subject of the next, and the last one is issued by a root key the verifier trusts under a
//! name. [`verify`] checks every step in the order `protocols/names.md` section 4 lists and
//! reports the first failure; it is pure (time is an argument) so it can run anywhere.

use serde_bytes::ByteBuf;

use super::cert::{CaveatError, CertError, Certificate, Grant, Restrictions, MAX_CERTIFICATE_LEN};
use super::name::{Name, NameError};
use super::roots::Roots;
use crate::identity::Identity;
use crate::message::{CertificateChain, Limits};

/// Most certificates in one chain (the message header's bound).
pub const MAX_CHAIN_LEN: usize = Limits::MAX_CHAIN_LEN;
/// Largest encoded chain (a CBOR array of byte strings): eight full certificates with their
/// byte-string heads, plus the array head.
pub const MAX_ENCODED_CHAIN_LEN: usize = 1 + MAX_CHAIN_LEN * (3 + MAX_CERTIFICATE_LEN);

/// A name a chain proved for a key at some instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedName {
    /// The name granted, e.g. `campfire/alice/phone`.
    pub name: Name,
    /// The earliest `not_after_ms` in the chain: from this instant on the name no longer holds,
    /// so callers re-check by then. `u64::MAX` for a root's own name.
    pub not_after_ms: u64,
    /// The strictest restrictions of the chain's certificates.
    pub restrictions: Restrictions,
}

/// Why a chain does not name a key. The index counts from the leaf (0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The encoded chain is larger than any valid chain.
    #[error("certificate chain is {len} bytes, over the limit of {max}")]
    EncodedTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a CBOR array of byte strings.
    #[error("not a certificate chain (a CBOR array of certificate byte strings): {0}")]
    Undecodable(String),
    /// A chain without certificates names nobody.
    #[error("certificate chain is empty")]
    Empty,
    /// More certificates than allowed.
    #[error("certificate chain has {len} certificates; at most {max} are allowed")]
    TooLong {
        /// Certificates in the chain.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A certificate does not decode.
    #[error("certificate {index} of the chain: {source}")]
    Malformed {
        /// Its position, leaf = 0.
        index: usize,
        /// What is wrong with it.
        source: CertError,
    },
    /// The leaf names another key than the one asked about.
    #[error("the chain names {found}, not {expected}")]
    WrongSubject {
        /// The key asked about (peer id).
        expected: String,
        /// The leaf's subject (peer id).
        found: String,
    },
    /// Certificate `index` was not issued by the subject of certificate `index + 1`.
    #[error("certificate {index} was issued by {issuer}, but certificate {} names {next_subject}; the chain is broken", index + 1)]
    BrokenLink {
        /// The certificate whose issuer does not match.
        index: usize,
        /// Its issuer (peer id).
        issuer: String,
        /// The next certificate's subject (peer id).
        next_subject: String,
    },
    /// The last issuer is not among the verifier's roots.
    #[error("the chain's root key {issuer} is not a trusted root here (add it with `mule trust add NAME KEY`)")]
    UntrustedRoot {
        /// The root key (peer id).
        issuer: String,
    },
    /// A certificate carries a caveat this version does not know, so it is invalid.
    #[error("certificate {index} has caveat {caveat:?}, which this node does not understand; a certificate with an unknown restriction is invalid")]
    UnknownCaveat {
        /// The certificate.
        index: usize,
        /// The caveat's key.
        caveat: String,
    },
    /// A known caveat has a value of the wrong type.
    #[error("certificate {index}: {source}")]
    BadCaveat {
        /// The certificate.
        index: usize,
        /// What is wrong.
        source: CaveatError,
    },
    /// The granted name would be longer than a name may be.
    #[error("the chain grants a name of {len} bytes; a name is at most {max} bytes")]
    NameTooLong {
        /// The length it would have.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A signature does not verify with its issuer's key.
    #[error("certificate {index} has an invalid signature (forged or altered)")]
    BadSignature {
        /// The certificate.
        index: usize,
    },
    /// A certificate's window has not begun.
    #[error("certificate {index} is not valid before {not_before_ms} ms (now {now_ms} ms)")]
    NotYetValid {
        /// The certificate.
        index: usize,
        /// Its first valid instant.
        not_before_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// A certificate's window has ended.
    #[error("certificate {index} expired at {not_after_ms} ms (now {now_ms} ms)")]
    Expired {
        /// The certificate.
        index: usize,
        /// Its end of validity.
        not_after_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
}

/// The file and wire form of a chain: a CBOR array of certificate byte strings, leaf first.
pub fn encode_chain(chain: &[ByteBuf]) -> Result<Vec<u8>, CertError> {
    cbor4ii::serde::to_vec(Vec::new(), &chain).map_err(|e| CertError::Encoding(e.to_string()))
}

/// Parses [`encode_chain`]'s form, refusing oversized input before parsing and more than
/// [`MAX_CHAIN_LEN`] certificates or certificates over [`MAX_CERTIFICATE_LEN`] after.
pub fn decode_chain(bytes: &[u8]) -> Result<CertificateChain, ChainError> {
    if bytes.len() > MAX_ENCODED_CHAIN_LEN {
        return Err(ChainError::EncodedTooLarge {
            len: bytes.len(),
            max: MAX_ENCODED_CHAIN_LEN,
        });
    }
    let chain: CertificateChain =
        cbor4ii::serde::from_slice(bytes).map_err(|e| ChainError::Undecodable(e.to_string()))?;
    decode_certificates(&chain)?;
    Ok(chain)
}

/// Signs `grant` with `issuer` and puts the certificate in front of `parent`, the chain naming
/// the issuer (empty when the issuer signs as a root).
pub fn issue(
    issuer: &Identity,
    grant: Grant,
    parent: &[ByteBuf],
) -> Result<CertificateChain, ChainError> {
    let len = parent.len() + 1;
    if len > MAX_CHAIN_LEN {
        return Err(ChainError::TooLong {
            len,
            max: MAX_CHAIN_LEN,
        });
    }
    let cert = grant
        .sign(issuer)
        .and_then(|c| c.encode())
        .map_err(|source| ChainError::Malformed { index: 0, source })?;
    let mut chain = Vec::with_capacity(len);
    chain.push(ByteBuf::from(cert));
    chain.extend_from_slice(parent);
    Ok(chain)
}

/// Step 1 and 2 of verification: bounds, then every certificate decoded.
fn decode_certificates<C: AsRef<[u8]>>(chain: &[C]) -> Result<Vec<Certificate>, ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    if chain.len() > MAX_CHAIN_LEN {
        return Err(ChainError::TooLong {
            len: chain.len(),
            max: MAX_CHAIN_LEN,
        });
    }
    chain
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            Certificate::decode(bytes.as_ref())
                .map_err(|source| ChainError::Malformed { index, source })
        })
        .collect()
}

/// Checks that `chain` names `subject` at `now_ms` under one of `roots`, and which name it grants.
///
/// Steps, first failure reported: bounds and decoding; the leaf's subject; every link; the
/// root is trusted; caveats are known; the name fits; every signature; every validity window.
pub fn verify<C: AsRef<[u8]>>(
    chain: &[C],
    subject: &[u8; 32],
    roots: &Roots,
    now_ms: u64,
) -> Result<VerifiedName, ChainError> {
    let certs = decode_certificates(chain)?;
    check_links(&certs, subject)?;
    let (root, restrictions) = check_root_and_caveats(&certs, roots)?;
    let name = granted_name(&certs, root)?;
    if let Some(index) = certs.iter().position(|c| !c.signature_ok()) {
        return Err(ChainError::BadSignature { index });
    }
    let not_after_ms = check_windows(&certs, now_ms)?;
    Ok(VerifiedName {
        name,
        not_after_ms,
        restrictions,
    })
}

fn check_links(certs: &[Certificate], subject: &[u8; 32]) -> Result<(), ChainError> {
    if let Some(leaf) = certs.first() {
        if &leaf.subject != subject {
            return Err(ChainError::WrongSubject {
                expected: crate::identity::key_label(subject),
                found: crate::identity::key_label(&leaf.subject),
            });
        }
    }
    for (index, pair) in certs.windows(2).enumerate() {
        if let [cert, next] = pair {
            if cert.issuer != next.subject {
                return Err(ChainError::BrokenLink {
                    index,
                    issuer: crate::identity::key_label(&cert.issuer),
                    next_subject: crate::identity::key_label(&next.subject),
                });
            }
        }
    }
    Ok(())
}

fn check_root_and_caveats(
    certs: &[Certificate],
    roots: &Roots,
) -> Result<(Name, Restrictions), ChainError> {
    let last = certs.last().ok_or(ChainError::Empty)?;
    let root = roots
        .name_of(&last.issuer)
        .ok_or_else(|| ChainError::UntrustedRoot {
            issuer: crate::identity::key_label(&last.issuer),
        })?;
    let mut restrictions = Restrictions::default();
    for (index, cert) in certs.iter().enumerate() {
        let r = cert.restrictions().map_err(|source| match source {
            CaveatError::Unknown(caveat) => ChainError::UnknownCaveat { index, caveat },
            source => ChainError::BadCaveat { index, source },
        })?;
        restrictions = restrictions.tighten(r);
    }
    Ok((Name::root(root), restrictions))
}

/// Root name, then the extensions from the root side down to the leaf.
fn granted_name(certs: &[Certificate], root: Name) -> Result<Name, ChainError> {
    let len = root.as_str().len()
        + certs
            .iter()
            .map(|c| 1 + c.name.as_str().len())
            .sum::<usize>();
    certs
        .iter()
        .rev()
        .try_fold(root, |name, cert| name.child(&cert.name))
        .map_err(|e| match e {
            NameError::TooLong { max, .. } => ChainError::NameTooLong { len, max },
            other => ChainError::Undecodable(other.to_string()),
        })
}

/// Every window holds at `now_ms` (`not_before_ms <= now_ms < not_after_ms`); returns the
/// earliest end.
fn check_windows(certs: &[Certificate], now_ms: u64) -> Result<u64, ChainError> {
    for (index, cert) in certs.iter().enumerate() {
        if now_ms < cert.not_before_ms {
            return Err(ChainError::NotYetValid {
                index,
                not_before_ms: cert.not_before_ms,
                now_ms,
            });
        }
        if now_ms >= cert.not_after_ms {
            return Err(ChainError::Expired {
                index,
                not_after_ms: cert.not_after_ms,
                now_ms,
            });
        }
    }
    Ok(certs
        .iter()
        .map(|c| c.not_after_ms)
        .min()
        .unwrap_or(u64::MAX))
}

/// Every name a key holds at `now_ms`, and why each chain that failed did: the root name if
/// the key is itself a trusted root, then one name per chain that verifies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// The names proved, in the order of the chains (a root's own name first).
    pub verified: Vec<VerifiedName>,
    /// For each chain that failed: its position in the input and the reason.
    pub failed: Vec<(usize, ChainError)>,
}

/// Verifies every chain offered for `key` (a header's `chains`, a names exchange).
pub fn names_of<Ch: AsRef<[C]>, C: AsRef<[u8]>>(
    key: &[u8; 32],
    chains: &[Ch],
    roots: &Roots,
    now_ms: u64,
) -> Names {
    let mut names = Names::default();
    if let Some(root) = roots.name_of(key) {
        names.verified.push(VerifiedName {
            name: Name::root(root),
            not_after_ms: u64::MAX,
            restrictions: Restrictions::default(),
        });
    }
    for (i, chain) in chains.iter().enumerate() {
        match verify(chain.as_ref(), key, roots, now_ms) {
            Ok(v) => match names.verified.iter_mut().find(|n| n.name == v.name) {
                // Two chains for one name (a renewal): keep the one that lasts longer.
                Some(held) if held.not_after_ms < v.not_after_ms => *held = v,
                Some(_) => {}
                None => names.verified.push(v),
            },
            Err(e) => names.failed.push((i, e)),
        }
    }
    names
}
